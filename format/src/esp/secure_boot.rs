//! The Secure Boot V2 signature sector that ESP-IDF (`espsecure sign-data --version 2`)
//! appends to a signed app image, and the key digests it names.
//!
//! Where it sits: the app image, then `0xFF` up to the next 4096-byte boundary, then one
//! 4096-byte sector (ESP-IDF `ets_secure_boot_signature_t`): 1 to 3 signature blocks of
//! 1216 bytes, then `0xFF` to the end of the sector. Nothing follows the sector.
//!
//! | block offset | size | RSA-PSS 3072 (version 2)              | ECDSA (version 3)                     |
//! |-------------:|-----:|---------------------------------------|---------------------------------------|
//! | 0            | 1    | magic `0xE7`                          | magic `0xE7`                          |
//! | 1            | 1    | version `2`                           | version `3`                           |
//! | 2            | 2    | zero                                  | hash `0` = SHA-256, then zero         |
//! | 4            | 32   | SHA-256 of everything before the sector (image and padding)                  ||
//! | 36           | 776  | n (384, LE), e (u32), R^-1 mod n (384, LE), M' (u32) | curve (1 P-192, 2 P-256), x‖y (64, LE) |
//! | 812 / 101    | 384 / 64 | signature (LE)                     | r‖s (LE), then zero up to 1196        |
//! | 1196         | 4    | CRC-32 (zlib) of bytes 0..1196, LE                                           ||
//! | 1200         | 16   | zero                                                                         ||
//!
//! The **key digest** burned into eFuse, and compared by the bootloader and by ESP-IDF's
//! OTA with the running app's blocks, is SHA-256 of the key material: block bytes
//! 36..812 for RSA, 36..101 for ECDSA. ECDSA blocks with SHA-384 (P-384) are refused
//! as unsupported: no chip ota-sign targets uses them.
//!
//! Parsing is streaming and allocation-free: [`super::AppImageValidator`] feeds the bytes
//! after the app image to a [`Trailer`].

use sha2::{Digest, Sha256};

use super::crc::crc32_le;

/// Size of the signature sector; also the alignment of its start.
pub const SIGNATURE_SECTOR_LEN: u32 = 4096;
/// Size of one signature block.
pub const SIGNATURE_BLOCK_LEN: u32 = 1216;
/// First byte of a signature block.
pub const SIGNATURE_BLOCK_MAGIC: u8 = 0xE7;
/// Most blocks a sector holds (ESP32 ECO3 reads only the first).
pub const MAX_SIGNATURE_BLOCKS: usize = 3;
/// Block version of RSA-PSS 3072 with SHA-256.
pub const BLOCK_VERSION_RSA: u8 = 2;
/// Block version of ECDSA.
pub const BLOCK_VERSION_ECDSA: u8 = 3;
/// Bytes of a block the CRC covers.
const CRC_COVERED: u16 = 1196;
/// Where the key material starts in a block.
const KEY_START: u16 = 36;
/// Where the RSA key material ends (n, e, R^-1, M').
const RSA_KEY_END: u16 = 812;
/// Where the ECDSA (SHA-256) key material ends (curve id, x‖y).
const ECDSA_KEY_END: u16 = 101;
/// ECDSA curve ids in a block.
const CURVE_P192: u8 = 1;
const CURVE_P256: u8 = 2;

/// Length of the RSA key material in a block: n (384 bytes, little-endian), e (u32 LE),
/// R^-1 mod n (384, LE), M' = -n^-1 mod 2^32 (u32 LE), as the ESP32 RSA peripheral
/// wants them.
pub const RSA_KEY_MATERIAL_LEN: usize = (RSA_KEY_END - KEY_START) as usize;
/// Length of an RSA-3072 signature.
pub const RSA_SIGNATURE_LEN: usize = 384;

/// Encodes an RSA-PSS 3072 signature block (version 2) over an image whose bytes before
/// the sector hash to `image_digest`; `signature` is little-endian, as the block holds
/// it. CRC and padding are filled in.
pub fn rsa_block(
    image_digest: &[u8; 32],
    key: &[u8; RSA_KEY_MATERIAL_LEN],
    signature: &[u8; RSA_SIGNATURE_LEN],
) -> [u8; SIGNATURE_BLOCK_LEN as usize] {
    let mut block = [0u8; SIGNATURE_BLOCK_LEN as usize];
    block[0] = SIGNATURE_BLOCK_MAGIC;
    block[1] = BLOCK_VERSION_RSA;
    block[4..36].copy_from_slice(image_digest);
    block[KEY_START as usize..RSA_KEY_END as usize].copy_from_slice(key);
    block[RSA_KEY_END as usize..CRC_COVERED as usize].copy_from_slice(signature);
    let crc = crc32_le(0, &block[..CRC_COVERED as usize]);
    block[CRC_COVERED as usize..CRC_COVERED as usize + 4].copy_from_slice(&crc.to_le_bytes());
    block
}

/// The key digest of RSA key material laid out as in [`rsa_block`].
pub fn rsa_key_digest(key: &[u8; RSA_KEY_MATERIAL_LEN]) -> SecureBootKeyDigest {
    SecureBootKeyDigest(Sha256::digest(key).into())
}

/// The 4096-byte sector holding `blocks` (1 to 3; more are left out), `0xFF` after them.
pub fn sector(
    blocks: &[[u8; SIGNATURE_BLOCK_LEN as usize]],
) -> [u8; SIGNATURE_SECTOR_LEN as usize] {
    let mut out = [0xFFu8; SIGNATURE_SECTOR_LEN as usize];
    for (chunk, block) in out
        .chunks_exact_mut(SIGNATURE_BLOCK_LEN as usize)
        .zip(blocks.iter().take(MAX_SIGNATURE_BLOCKS))
    {
        chunk.copy_from_slice(block);
    }
    out
}

/// Where a signature sector following an app image of `image_len` bytes starts.
pub fn signature_sector_offset(image_len: u32) -> Option<u32> {
    image_len.checked_next_multiple_of(SIGNATURE_SECTOR_LEN)
}

/// The signature scheme of one block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SignatureScheme {
    /// RSA-PSS, 3072-bit key, SHA-256, salt 32 (block version 2).
    RsaPss3072,
    /// ECDSA over NIST P-256 with SHA-256 (block version 3, curve 2).
    EcdsaP256,
    /// ECDSA over NIST P-192 with SHA-256 (block version 3, curve 1).
    EcdsaP192,
}

/// SHA-256 of a Secure Boot V2 public key, as eFuse holds it and espsecure's
/// `digest-sbv2-public-key` prints it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct SecureBootKeyDigest(pub [u8; 32]);

impl core::fmt::Display for SecureBootKeyDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One well-formed signature block: its scheme and the digest of the key it names.
///
/// Well-formed means magic, version, CRC, padding and the image digest it signs are
/// right; the signature itself is checked by the bootloader (and by `espsecure`), which
/// hold the public key's digest in eFuse.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignatureBlock {
    /// How the block is signed.
    pub scheme: SignatureScheme,
    /// Digest of the public key in the block.
    pub key_digest: SecureBootKeyDigest,
}

/// A well-formed signature sector after an app image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignatureSector {
    /// Image offset of the sector (a multiple of 4096).
    pub offset: u32,
    blocks: [Option<SignatureBlock>; MAX_SIGNATURE_BLOCKS],
}

impl SignatureSector {
    /// The blocks, in sector order (at least one).
    pub fn blocks(&self) -> impl Iterator<Item = &SignatureBlock> {
        self.blocks.iter().flatten()
    }

    /// Whether one of the blocks names the key with `digest`.
    pub fn names_key(&self, digest: &SecureBootKeyDigest) -> bool {
        self.blocks().any(|b| &b.key_digest == digest)
    }
}

/// Why the bytes after an app image are not an acceptable signature sector.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureBootError {
    /// A signature block starts before the 4096-byte boundary where ESP-IDF puts it.
    #[error(
        "a Secure Boot V2 signature block starts at offset {found:#x}; the sector must start at {expected:#x}, after 0xFF padding"
    )]
    Misplaced {
        /// Offset of the block's magic byte.
        found: u32,
        /// The 4096-byte boundary after the app image.
        expected: u32,
    },
    /// A block has a version other than RSA (2) or ECDSA (3).
    #[error(
        "Secure Boot V2 signature block {block} has version {version}, expected 2 (RSA) or 3 (ECDSA)"
    )]
    UnknownVersion {
        /// Block index.
        block: u8,
        /// The version byte.
        version: u8,
    },
    /// An ECDSA block uses SHA-384 or a curve ota-sign does not know.
    #[error(
        "Secure Boot V2 signature block {block} uses ECDSA with SHA-384 or an unknown curve, which is not supported"
    )]
    UnsupportedEcdsa {
        /// Block index.
        block: u8,
    },
    /// A block's CRC-32 does not match its contents.
    #[error("Secure Boot V2 signature block {block}: CRC mismatch")]
    CrcMismatch {
        /// Block index.
        block: u8,
    },
    /// A block signs another image (its image digest is not the SHA-256 of this one).
    #[error("Secure Boot V2 signature block {block} signs another image (image digest mismatch)")]
    ImageDigestMismatch {
        /// Block index.
        block: u8,
    },
    /// The 16 bytes after a block's CRC are not zero.
    #[error("Secure Boot V2 signature block {block}: padding after the CRC is not zero")]
    BlockPaddingNotZero {
        /// Block index.
        block: u8,
    },
    /// A byte of the sector after its last block is not `0xFF`.
    #[error(
        "byte at offset {offset:#x} of the Secure Boot V2 signature sector is not 0xFF after the last block"
    )]
    FillNotErased {
        /// Image offset of the byte.
        offset: u32,
    },
    /// The input ends inside the signature sector.
    #[error("the Secure Boot V2 signature sector is truncated at offset {offset:#x}")]
    Truncated {
        /// Image offset where the input ended.
        offset: u32,
    },
    /// The sector does not fit the largest image allowed (the slot).
    #[error("the Secure Boot V2 signature sector ends past the {max} bytes allowed")]
    TooLarge {
        /// The limit.
        max: u32,
    },
}

/// What the bytes after an app image turned out to be, when they are not a sector.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum NotASector {
    /// A sector that is malformed.
    Bad(SecureBootError),
    /// Something else: `len` bytes follow the image.
    Trailing {
        /// How many (saturated).
        len: u32,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// `0xFF` up to the sector boundary.
    Padding,
    /// At the start of block `index`: its first byte says whether one follows.
    BlockStart { index: u8 },
    /// Inside block `index`, at byte `pos` of it.
    Block { index: u8, pos: u16 },
    /// `0xFF` after the last block.
    Fill,
    /// The sector is complete.
    Complete,
    /// Not a signature sector: counted, not hashed. `first` is the first byte that was
    /// not `0xFF` (a block magic there means a misplaced sector).
    Junk { first: Option<(u32, u8)> },
}

/// One step of [`Trailer::step`].
pub(super) struct Consumed {
    /// Bytes used from the input.
    pub n: usize,
    /// Whether they belong to the installed image (hashed, counted as image bytes).
    pub installed: bool,
}

/// Streaming parser of what follows an app image: a signature sector, or not.
#[derive(Clone)]
pub(super) struct Trailer {
    image_end: u32,
    sector_start: u32,
    max_len: u32,
    /// Offset of the next byte.
    at: u32,
    phase: Phase,
    image_digest: Option<[u8; 32]>,
    crc: u32,
    key: Sha256,
    version: u8,
    curve: u8,
    stored_crc: [u8; 4],
    digest_matches: bool,
    padding_zero: bool,
    blocks: [Option<SignatureBlock>; MAX_SIGNATURE_BLOCKS],
}

impl Trailer {
    /// A parser for the bytes after an image of `image_end` bytes, in an image of at most
    /// `max_len` bytes.
    pub(super) fn new(image_end: u32, max_len: u32) -> Self {
        let sector_start = signature_sector_offset(image_end).unwrap_or(u32::MAX);
        Trailer {
            image_end,
            sector_start,
            max_len,
            at: image_end,
            phase: Phase::Padding,
            image_digest: None,
            crc: 0,
            key: Sha256::new(),
            version: 0,
            curve: 0,
            stored_crc: [0; 4],
            digest_matches: true,
            padding_zero: true,
            blocks: [None; MAX_SIGNATURE_BLOCKS],
        }
    }

    /// Whether the next byte is the sector's first: the caller must then hand over the
    /// SHA-256 of everything before it with [`Trailer::set_image_digest`].
    pub(super) fn needs_image_digest(&self) -> bool {
        self.image_digest.is_none() && self.at == self.sector_start
    }

    pub(super) fn set_image_digest(&mut self, digest: [u8; 32]) {
        self.image_digest = Some(digest);
    }

    /// Whether a complete sector has been read: nothing more belongs to the image.
    pub(super) fn is_complete(&self) -> bool {
        self.phase == Phase::Complete
    }

    /// Consumes a prefix of `data` (never past the sector boundary before the image
    /// digest was handed over, never past the sector's end).
    pub(super) fn step(&mut self, data: &[u8]) -> Result<Consumed, SecureBootError> {
        match self.phase {
            Phase::Padding if self.at == self.sector_start => {
                self.phase = Phase::BlockStart { index: 0 };
                self.step(data)
            }
            Phase::Padding => {
                let room = (self.sector_start - self.at) as usize;
                let n = room.min(data.len());
                if data[..n].iter().any(|&b| b != 0xFF) {
                    self.phase = Phase::Junk { first: None };
                    return self.step(data);
                }
                self.at += n as u32;
                Ok(Consumed { n, installed: true })
            }
            Phase::BlockStart { index } => {
                self.start_block(index, data[0])?;
                self.step(data)
            }
            Phase::Block { index, pos } => {
                let left = (SIGNATURE_BLOCK_LEN as u16 - pos) as usize;
                let n = left.min(data.len());
                for (i, &b) in data[..n].iter().enumerate() {
                    self.block_byte(index, pos + i as u16, b)?;
                }
                self.at += n as u32;
                let pos = pos + n as u16;
                self.phase = Phase::Block { index, pos };
                if pos == SIGNATURE_BLOCK_LEN as u16 {
                    self.end_block(index)?;
                }
                Ok(Consumed { n, installed: true })
            }
            Phase::Fill => {
                let end = self.sector_start + SIGNATURE_SECTOR_LEN;
                let n = ((end - self.at) as usize).min(data.len());
                if let Some(pos) = data[..n].iter().position(|&b| b != 0xFF) {
                    return Err(SecureBootError::FillNotErased {
                        offset: self.at + pos as u32,
                    });
                }
                self.at += n as u32;
                if self.at == end {
                    self.phase = Phase::Complete;
                }
                Ok(Consumed { n, installed: true })
            }
            Phase::Complete => Ok(Consumed {
                n: 0,
                installed: false,
            }),
            Phase::Junk { first } => {
                if first.is_none()
                    && let Some(pos) = data.iter().position(|&b| b != 0xFF)
                {
                    self.phase = Phase::Junk {
                        first: Some((self.at.saturating_add(pos as u32), data[pos])),
                    };
                }
                self.at = self
                    .at
                    .saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
                Ok(Consumed {
                    n: data.len(),
                    installed: false,
                })
            }
        }
    }

    /// The end of input: the sector, or why there is none (`Ok(None)`: nothing followed).
    pub(super) fn finish(&self) -> Result<Option<SignatureSector>, NotASector> {
        match self.phase {
            Phase::Complete => Ok(Some(SignatureSector {
                offset: self.sector_start,
                blocks: self.blocks,
            })),
            Phase::Padding if self.at == self.image_end => Ok(None),
            Phase::Junk {
                first: Some((found, SIGNATURE_BLOCK_MAGIC)),
            } => Err(NotASector::Bad(SecureBootError::Misplaced {
                found,
                expected: self.sector_start,
            })),
            Phase::Padding | Phase::Junk { .. } => Err(NotASector::Trailing {
                len: self.at - self.image_end,
            }),
            Phase::BlockStart { .. } | Phase::Block { .. } | Phase::Fill => {
                Err(NotASector::Bad(SecureBootError::Truncated {
                    offset: self.at,
                }))
            }
        }
    }

    /// At a block boundary: a block starts (magic), the sector fills up (`0xFF`, after
    /// the first block), or this is not a sector at all.
    fn start_block(&mut self, index: u8, byte: u8) -> Result<(), SecureBootError> {
        if byte == SIGNATURE_BLOCK_MAGIC {
            let end = u64::from(self.sector_start) + u64::from(SIGNATURE_SECTOR_LEN);
            if end > u64::from(self.max_len) {
                return Err(SecureBootError::TooLarge { max: self.max_len });
            }
            self.phase = Phase::Block { index, pos: 0 };
            self.crc = 0;
            self.key = Sha256::new();
            self.version = 0;
            self.curve = 0;
            self.digest_matches = true;
            self.padding_zero = true;
        } else if index == 0 {
            // Not a sector: count it all, and remember whether a block hides further on.
            self.phase = Phase::Junk { first: None };
        } else if byte == 0xFF {
            self.phase = Phase::Fill;
        } else {
            return Err(SecureBootError::FillNotErased { offset: self.at });
        }
        Ok(())
    }

    fn block_byte(&mut self, block: u8, pos: u16, b: u8) -> Result<(), SecureBootError> {
        if pos < CRC_COVERED {
            self.crc = crc32_le(self.crc, &[b]);
        }
        match pos {
            1 => {
                if b != BLOCK_VERSION_RSA && b != BLOCK_VERSION_ECDSA {
                    return Err(SecureBootError::UnknownVersion { block, version: b });
                }
                self.version = b;
            }
            // ECDSA: the hash byte; 0 is SHA-256 (SHA-384 blocks lay out differently).
            2 if self.version == BLOCK_VERSION_ECDSA && b != 0 => {
                return Err(SecureBootError::UnsupportedEcdsa { block });
            }
            4..36 => {
                let expected = self.image_digest.unwrap_or_default()[pos as usize - 4];
                self.digest_matches &= b == expected;
            }
            36 if self.version == BLOCK_VERSION_ECDSA => {
                if b != CURVE_P192 && b != CURVE_P256 {
                    return Err(SecureBootError::UnsupportedEcdsa { block });
                }
                self.curve = b;
            }
            1196..1200 => self.stored_crc[pos as usize - 1196] = b,
            1200.. => self.padding_zero &= b == 0,
            _ => {}
        }
        let key_end = if self.version == BLOCK_VERSION_RSA {
            RSA_KEY_END
        } else {
            ECDSA_KEY_END
        };
        if (KEY_START..key_end).contains(&pos) {
            self.key.update([b]);
        }
        Ok(())
    }

    fn end_block(&mut self, index: u8) -> Result<(), SecureBootError> {
        let block = index;
        if self.crc != u32::from_le_bytes(self.stored_crc) {
            return Err(SecureBootError::CrcMismatch { block });
        }
        if !self.padding_zero {
            return Err(SecureBootError::BlockPaddingNotZero { block });
        }
        if !self.digest_matches {
            return Err(SecureBootError::ImageDigestMismatch { block });
        }
        let scheme = match (self.version, self.curve) {
            (BLOCK_VERSION_RSA, _) => SignatureScheme::RsaPss3072,
            (_, CURVE_P256) => SignatureScheme::EcdsaP256,
            _ => SignatureScheme::EcdsaP192,
        };
        let key = core::mem::replace(&mut self.key, Sha256::new());
        self.blocks[index as usize] = Some(SignatureBlock {
            scheme,
            key_digest: SecureBootKeyDigest(key.finalize().into()),
        });
        let next = index + 1;
        self.phase = if (next as usize) < MAX_SIGNATURE_BLOCKS {
            Phase::BlockStart { index: next }
        } else {
            Phase::Fill
        };
        Ok(())
    }
}
