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
//! | 36           | 776  | n (384, LE), e (u32), R² mod n (384, LE; espsecure's `rinv`), M' (u32) | curve (1 P-192, 2 P-256), x‖y (64, LE) |
//! | 812 / 101    | 384 / 64 | signature (LE)                     | r‖s (LE), then zero up to 1196        |
//! | 1196         | 4    | CRC-32 (zlib) of bytes 0..1196, LE                                           ||
//! | 1200         | 16   | zero                                                                         ||
//!
//! The **key digest** burned into eFuse, and compared by the bootloader and by ESP-IDF's
//! OTA with the running app's blocks, is SHA-256 of the key material: block bytes
//! 36..812 for RSA, 36..101 for ECDSA. ECDSA blocks with SHA-384 (P-384) lay out
//! differently and are refused as unsupported.
//!
//! Parsing is streaming and allocation-free: [`super::AppImageValidator`] feeds the bytes
//! after the app image to the parser in `trailer.rs`.

mod trailer;

use sha2::{Digest, Sha256};

use super::crc::crc32_le;
pub(super) use trailer::{NotASector, Trailer};

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
pub(super) const CRC_COVERED: u16 = 1196;
/// Where the key material starts in a block.
pub(super) const KEY_START: u16 = 36;
/// Where the RSA key material ends (n, e, R² mod n, M').
pub(super) const RSA_KEY_END: u16 = 812;
/// Where the ECDSA (SHA-256) key material ends (curve id, x‖y).
pub(super) const ECDSA_KEY_END: u16 = 101;
/// ECDSA curve ids in a block.
pub(super) const CURVE_P192: u8 = 1;
pub(super) const CURVE_P256: u8 = 2;
/// Length of the ECDSA P-256 key material in a block: curve id `2`, then x and y (32
/// bytes each, each little-endian, as micro-ecc's native format).
pub const P256_KEY_MATERIAL_LEN: usize = (ECDSA_KEY_END - KEY_START) as usize;
/// Length of an ECDSA P-256 signature in a block: r and s, 32 bytes each, each
/// little-endian.
pub const P256_SIGNATURE_LEN: usize = 64;

/// Length of the RSA key material in a block: n (384 bytes, little-endian), e (u32 LE),
/// R² mod n with R = 2^3072 (384, LE; espsecure calls it `rinv`), M' = -n^-1 mod 2^32
/// (u32 LE), as the ESP32 RSA peripheral wants them.
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
    signature_block(BLOCK_VERSION_RSA, image_digest, key, signature)
}

/// A signature block of `version`: magic, version, hash scheme 0 (SHA-256), the image
/// digest, `key` from [`KEY_START`] and `signature` right after it, zero padding, CRC.
fn signature_block(
    version: u8,
    image_digest: &[u8; 32],
    key: &[u8],
    signature: &[u8],
) -> [u8; SIGNATURE_BLOCK_LEN as usize] {
    let mut block = [0u8; SIGNATURE_BLOCK_LEN as usize];
    block[0] = SIGNATURE_BLOCK_MAGIC;
    block[1] = version;
    block[4..36].copy_from_slice(image_digest);
    let key_end = KEY_START as usize + key.len();
    block[KEY_START as usize..key_end].copy_from_slice(key);
    block[key_end..key_end + signature.len()].copy_from_slice(signature);
    let crc = crc32_le(0, &block[..CRC_COVERED as usize]);
    block[CRC_COVERED as usize..CRC_COVERED as usize + 4].copy_from_slice(&crc.to_le_bytes());
    block
}

/// The key digest of RSA key material laid out as in [`rsa_block`].
pub fn rsa_key_digest(key: &[u8; RSA_KEY_MATERIAL_LEN]) -> SecureBootKeyDigest {
    SecureBootKeyDigest(Sha256::digest(key).into())
}

/// Encodes an ECDSA P-256 signature block (version 3, SHA-256) over an image whose bytes
/// before the sector hash to `image_digest`; `key` is the curve id and point, `signature`
/// r‖s, laid out as the block holds them ([`p256_key_material`], [`p256_signature`]). CRC and zero padding are filled in.
pub fn p256_block(
    image_digest: &[u8; 32],
    key: &[u8; P256_KEY_MATERIAL_LEN],
    signature: &[u8; P256_SIGNATURE_LEN],
) -> [u8; SIGNATURE_BLOCK_LEN as usize] {
    signature_block(BLOCK_VERSION_ECDSA, image_digest, key, signature)
}

/// The key material of a P-256 public key as [`p256_block`] holds it: curve id `2`, then
/// the big-endian affine coordinates `x` and `y`, each turned little-endian.
pub fn p256_key_material(x: &[u8; 32], y: &[u8; 32]) -> [u8; P256_KEY_MATERIAL_LEN] {
    let mut out = [0u8; P256_KEY_MATERIAL_LEN];
    out[0] = CURVE_P256;
    out[1..].copy_from_slice(&each_little_endian(x, y));
    out
}

/// A P-256 signature as [`p256_block`] holds it: the big-endian `r` and `s`, each turned
/// little-endian.
pub fn p256_signature(r: &[u8; 32], s: &[u8; 32]) -> [u8; P256_SIGNATURE_LEN] {
    each_little_endian(r, s)
}

/// Two big-endian 256-bit numbers, each byte-reversed: micro-ecc's "native little
/// endian" order, which the ROM's ECDSA code reads.
fn each_little_endian(a: &[u8; 32], b: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(a);
    out[32..].copy_from_slice(b);
    out[..32].reverse();
    out[32..].reverse();
    out
}

/// The key digest of P-256 key material laid out as in [`p256_block`] (SHA-256 of the
/// curve id and point, as ESP-IDF and `espsecure digest-sbv2-public-key` compute it).
pub fn p256_key_digest(key: &[u8; P256_KEY_MATERIAL_LEN]) -> SecureBootKeyDigest {
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
