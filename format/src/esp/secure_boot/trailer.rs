//! The streaming parser of what follows an app image: a Secure Boot V2 signature sector
//! (see the parent module for its layout), or bytes that are not one.

use sha2::{Digest, Sha256};

use super::{
    BLOCK_VERSION_ECDSA, BLOCK_VERSION_RSA, CRC_COVERED, CURVE_P192, CURVE_P256, ECDSA_KEY_END,
    KEY_START, MAX_SIGNATURE_BLOCKS, RSA_KEY_END, SIGNATURE_BLOCK_LEN, SIGNATURE_BLOCK_MAGIC,
    SIGNATURE_SECTOR_LEN, SecureBootError, SecureBootKeyDigest, SignatureBlock, SignatureScheme,
    SignatureSector, signature_sector_offset,
};
use crate::esp::crc::crc32_le;

/// What the bytes after an app image turned out to be, when they are not a sector.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(in crate::esp) enum NotASector {
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
pub(in crate::esp) struct Consumed {
    /// Bytes used from the input.
    pub n: usize,
    /// Whether they belong to the installed image (hashed, counted as image bytes).
    pub installed: bool,
}

/// Streaming parser of what follows an app image: a signature sector, or not.
#[derive(Clone)]
pub(in crate::esp) struct Trailer {
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
    pub(in crate::esp) fn new(image_end: u32, max_len: u32) -> Self {
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
    pub(in crate::esp) fn needs_image_digest(&self) -> bool {
        self.image_digest.is_none() && self.at == self.sector_start
    }

    pub(in crate::esp) fn set_image_digest(&mut self, digest: [u8; 32]) {
        self.image_digest = Some(digest);
    }

    /// Whether a complete sector has been read: nothing more belongs to the image.
    pub(in crate::esp) fn is_complete(&self) -> bool {
        self.phase == Phase::Complete
    }

    /// Consumes a prefix of `data` (never past the sector boundary before the image
    /// digest was handed over, never past the sector's end).
    pub(in crate::esp) fn step(&mut self, data: &[u8]) -> Result<Consumed, SecureBootError> {
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
    pub(in crate::esp) fn finish(&self) -> Result<Option<SignatureSector>, NotASector> {
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
