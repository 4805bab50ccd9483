//! The signed image header: the first bytes of every `.ota` file.
//!
//! | offset | size | field                                                         |
//! |-------:|-----:|---------------------------------------------------------------|
//! | 0x00   | 4    | magic `"OTAI"`                                                |
//! | 0x04   | 2    | format version, `1`                                           |
//! | 0x06   | 2    | header length `H` (signature included), 256..=1024            |
//! | 0x08   | 4    | flags: bits 0–15 critical (none defined), 16–31 informational |
//! | 0x0C   | 2    | chip id (ESP-IDF `esp_chip_id_t`)                             |
//! | 0x0E   | 1    | compression: 0 none, 1 zstd, 2 zstd with a window in flash    |
//! | 0x0F   | 1    | zstd window log (1: 10..=31, 2: 10..=25), 0 when uncompressed |
//! | 0x10   | 32   | device type, zero padded                                      |
//! | 0x30   | 32   | firmware version (see [`Version`])                            |
//! | 0x50   | 8    | security counter                                              |
//! | 0x58   | 8    | creation time, Unix seconds                                   |
//! | 0x60   | 4    | installed image size                                          |
//! | 0x64   | 4    | payload size (bytes after the header)                         |
//! | 0x68   | 32   | SHA-256 of the payload                                        |
//! | 0x88   | 32   | SHA-256 of the installed image                                |
//! | 0xA8   | 8    | signer key id                                                 |
//! | 0xB0   | H−0xF0 | extension area: zero in version 1, ignored but signed      |
//! | H−64   | 64   | Ed25519 signature over `"ota-sign image v1\0"` ‖ bytes `0..H−64` |
//!
//! All integers are little-endian. Version-1 writers emit `H = 256`.

use sha2::{Digest, Sha256};

use crate::bytes::{Reader, Writer};
use crate::chip::ChipId;
use crate::error::{FieldError, FormatError};
use crate::key::{KeyId, TrustedKeys};
use crate::name::DeviceType;
use crate::signature::{self, SIGNATURE_LEN};
use crate::version::Version;

/// First four bytes of every image.
pub const IMAGE_MAGIC: [u8; 4] = *b"OTAI";
/// The image format version this crate writes and reads.
pub const IMAGE_FORMAT_VERSION: u16 = 1;
/// Header length written by this crate.
pub const IMAGE_HEADER_LEN: usize = 256;
/// Longest header a verifier accepts (later versions may add signed fields).
pub const MAX_HEADER_LEN: usize = 1024;
/// Prefix of the signed message, so an image signature is never valid for anything else.
pub const IMAGE_DOMAIN: &[u8] = b"ota-sign image v1\0";
/// Largest installed image: the largest flash an ESP32-family chip addresses.
pub const MAX_IMAGE_SIZE: u32 = 16 * 1024 * 1024;
/// Largest payload: an incompressible image plus zstd's framing overhead.
pub const MAX_PAYLOAD_SIZE: u32 = MAX_IMAGE_SIZE + 64 * 1024;
/// Bytes before the extension area.
pub(crate) const FIXED_FIELDS_LEN: usize = 0xB0;
const CRITICAL_FLAGS: u32 = 0x0000_FFFF;

/// How the payload encodes the installed image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    /// The payload is the image.
    None,
    /// One or more zstd frames whose window is at most `2^window_log` bytes.
    Zstd {
        /// Base-2 logarithm of the largest window any frame may use (10..=31).
        window_log: u8,
    },
    /// One or more zstd frames whose window is at most `2^window_log` bytes and whose
    /// compressed blocks are at most [`FLASH_WINDOW_MAX_BLOCK`] bytes: a device decodes it
    /// with a small RAM ring and reads older match sources back from the slot it writes,
    /// so the window costs flash reads, not RAM (agents of generation 2).
    ZstdFlashWindow {
        /// Base-2 logarithm of the largest window any frame may use (10..=25).
        window_log: u8,
    },
}

impl core::fmt::Display for Compression {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd { window_log } => write!(f, "zstd, window 2^{window_log}"),
            Compression::ZstdFlashWindow { window_log } => write!(
                f,
                "zstd, window 2^{window_log} in flash, blocks <= {} KiB",
                FLASH_WINDOW_MAX_BLOCK / 1024
            ),
        }
    }
}

/// Largest window log of [`Compression::ZstdFlashWindow`] and of delta payloads: a base
/// and a target image of 16 MiB each.
pub const FLASH_WINDOW_MAX_LOG: u8 = 25;
/// Largest compressed block of [`Compression::ZstdFlashWindow`] and of delta payloads: a
/// compressed block is decoded backwards from its end, so the device holds it whole.
pub const FLASH_WINDOW_MAX_BLOCK: u32 = 8 * 1024;

impl Compression {
    pub(crate) fn encode(self) -> (u8, u8) {
        match self {
            Compression::None => (0, 0),
            Compression::Zstd { window_log } => (1, window_log),
            Compression::ZstdFlashWindow { window_log } => (2, window_log),
        }
    }

    /// The zstd window log the payload declares (`None`: stored).
    pub fn window_log(self) -> Option<u8> {
        match self {
            Compression::None => None,
            Compression::Zstd { window_log } | Compression::ZstdFlashWindow { window_log } => {
                Some(window_log)
            }
        }
    }

    pub(crate) fn decode(method: u8, window_log: u8) -> Result<Self, FormatError> {
        match (method, window_log) {
            (0, 0) => Ok(Compression::None),
            (1, 10..=31) => Ok(Compression::Zstd { window_log }),
            (2, 10..=FLASH_WINDOW_MAX_LOG) => Ok(Compression::ZstdFlashWindow { window_log }),
            _ => Err(FormatError::InvalidField(FieldError::Compression)),
        }
    }
}

/// What an image header says about its image: every field the signature binds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ImageInfo {
    /// Device type the image is for.
    pub device_type: DeviceType,
    /// Chip the image is for.
    pub chip: ChipId,
    /// Firmware version.
    pub version: Version,
    /// Anti-rollback counter, independent of the version.
    pub security_counter: u64,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Size of the installed (decompressed) image.
    pub image_size: u32,
    /// Size of the payload that follows the header.
    pub payload_size: u32,
    /// How the payload encodes the image.
    pub compression: Compression,
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
    /// SHA-256 of the installed image.
    pub image_sha256: [u8; 32],
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Flags; no critical flag is defined in version 1.
    pub flags: u32,
}

impl ImageInfo {
    /// Checks the rules between fields that the format imposes.
    pub fn validate(&self) -> Result<(), FormatError> {
        let sizes = FormatError::InvalidField(FieldError::Sizes);
        if self.flags & CRITICAL_FLAGS != 0 {
            return Err(FormatError::UnknownCriticalFlag);
        }
        // The enum allows window logs the byte pair forbids (method 1 below 10, method 2
        // outside 10..=25): refuse to sign a header every verifier refuses.
        let (method, window_log) = self.compression.encode();
        Compression::decode(method, window_log)?;
        if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            return Err(sizes);
        }
        if self.payload_size == 0 || self.payload_size > MAX_PAYLOAD_SIZE {
            return Err(sizes);
        }
        if self.compression == Compression::None
            && (self.payload_size != self.image_size || self.payload_sha256 != self.image_sha256)
        {
            return Err(sizes);
        }
        Ok(())
    }

    /// The header bytes that the signature covers (everything but the signature).
    fn encode_signed_part(&self) -> [u8; IMAGE_HEADER_LEN - SIGNATURE_LEN] {
        let mut out = [0u8; IMAGE_HEADER_LEN - SIGNATURE_LEN];
        let mut w = Writer::new(&mut out);
        let (method, window_log) = self.compression.encode();
        w.put(&IMAGE_MAGIC);
        w.u16(IMAGE_FORMAT_VERSION);
        w.u16(IMAGE_HEADER_LEN as u16);
        w.u32(self.flags);
        w.u16(self.chip.0);
        w.u8(method);
        w.u8(window_log);
        w.put(&self.device_type.encode());
        w.put(&self.version.encode());
        w.u64(self.security_counter);
        w.u64(self.created);
        w.u32(self.image_size);
        w.u32(self.payload_size);
        w.put(&self.payload_sha256);
        w.put(&self.image_sha256);
        w.put(&self.key_id.0);
        debug_assert_eq!(w.position(), FIXED_FIELDS_LEN);
        out
    }

    /// The exact message an external signer (HSM, cloud KMS) must sign with Ed25519:
    /// [`IMAGE_DOMAIN`] followed by the header without its signature.
    pub fn signing_message(&self) -> Result<SigningMessage, FormatError> {
        SignedHeader::message(self)
    }

    /// Assembles the signed header from a signature made over [`Self::signing_message`].
    /// The signature is not checked here; verify the result before publishing it.
    pub fn assemble(
        &self,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<[u8; IMAGE_HEADER_LEN], FormatError> {
        SignedHeader::encode_with(self, signature)
    }

    /// Signs with a local key and returns the encoded header.
    #[cfg(feature = "sign")]
    pub fn sign(
        &self,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<[u8; IMAGE_HEADER_LEN], FormatError> {
        SignedHeader::sign_with(self, key)
    }
}

impl SignedHeader for ImageInfo {
    const DOMAIN: &'static [u8] = IMAGE_DOMAIN;

    fn check_fields(&self) -> Result<(), FormatError> {
        self.validate()
    }

    fn signed_part(&self) -> [u8; IMAGE_HEADER_LEN - SIGNATURE_LEN] {
        self.encode_signed_part()
    }
}

/// A 256-byte header signed in its own domain (the image's and the delta's): the fields
/// checked, then signed or assembled the same way.
pub(crate) trait SignedHeader {
    /// The signature's domain; as long as [`IMAGE_DOMAIN`], so both messages have one size.
    const DOMAIN: &'static [u8];

    /// The rules between fields.
    fn check_fields(&self) -> Result<(), FormatError>;

    /// The header without its signature.
    fn signed_part(&self) -> [u8; IMAGE_HEADER_LEN - SIGNATURE_LEN];

    /// The domain, then the header without its signature.
    fn message(&self) -> Result<SigningMessage, FormatError> {
        self.check_fields()?;
        Ok(SigningMessage {
            bytes: signature::concat(Self::DOMAIN, &self.signed_part()),
        })
    }

    /// The header with `signature` appended.
    fn encode_with(
        &self,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<[u8; IMAGE_HEADER_LEN], FormatError> {
        self.check_fields()?;
        Ok(signature::concat(&self.signed_part(), signature))
    }

    /// Signed with a local key.
    #[cfg(feature = "sign")]
    fn sign_with(
        &self,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<[u8; IMAGE_HEADER_LEN], FormatError> {
        let message = self.message()?;
        self.encode_with(&signature::sign(key, message.as_bytes()))
    }
}

/// A domain-prefixed message to be signed with Ed25519.
#[derive(Clone, Copy)]
pub struct SigningMessage {
    bytes: [u8; IMAGE_DOMAIN.len() + IMAGE_HEADER_LEN - SIGNATURE_LEN],
}

impl SigningMessage {
    /// The bytes to sign.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A decoded image header whose signature has been verified.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ImageHeader {
    /// The signed fields.
    pub info: ImageInfo,
    header_len: u16,
    header_sha256: [u8; 32],
}

impl ImageHeader {
    /// Length of the header in the file, signature included; the payload starts here.
    pub fn header_len(&self) -> usize {
        self.header_len as usize
    }

    /// SHA-256 of the whole encoded header, signature included: what a manifest binds.
    pub fn header_sha256(&self) -> &[u8; 32] {
        &self.header_sha256
    }

    /// Size of the whole `.ota` file: header plus payload.
    pub fn file_size(&self) -> u32 {
        // Cannot overflow: header_len <= 1024 and payload_size <= MAX_PAYLOAD_SIZE.
        self.header_len as u32 + self.info.payload_size
    }

    /// Checks a digest computed over the installed image (e.g. read back from flash).
    pub fn check_installed_digest(&self, digest: &[u8; 32]) -> Result<(), FormatError> {
        if digest == &self.info.image_sha256 {
            Ok(())
        } else {
            Err(FormatError::InstalledDigestMismatch)
        }
    }
}

/// Reads the fixed prefix (magic, version, header length) so a streaming verifier can
/// reject a wrong object at the earliest byte. Returns the declared header length once
/// the first 8 bytes are present.
pub(crate) fn check_prefix(prefix: &[u8]) -> Result<Option<usize>, FormatError> {
    check_object_prefix(prefix, &IMAGE_MAGIC, IMAGE_FORMAT_VERSION)
}

/// The prefix rule both streamed objects (image and delta) share: magic (compared as far
/// as it arrived), version, then a header length in `IMAGE_HEADER_LEN..=MAX_HEADER_LEN`.
pub(crate) fn check_object_prefix(
    prefix: &[u8],
    magic: &[u8; 4],
    version: u16,
) -> Result<Option<usize>, FormatError> {
    let magic_len = prefix.len().min(4);
    if prefix[..magic_len] != magic[..magic_len] {
        return Err(FormatError::BadMagic);
    }
    if prefix.len() >= 6 && u16::from_le_bytes([prefix[4], prefix[5]]) != version {
        return Err(FormatError::UnsupportedVersion);
    }
    if prefix.len() < 8 {
        return Ok(None);
    }
    let header_len = u16::from_le_bytes([prefix[6], prefix[7]]) as usize;
    if !(IMAGE_HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) {
        return Err(FormatError::BadLength);
    }
    Ok(Some(header_len))
}

/// Accumulates a streamed header of up to [`MAX_HEADER_LEN`] bytes whose first 8 bytes
/// say how long it is, taking no byte past the header.
pub(crate) struct HeaderBuffer {
    bytes: [u8; MAX_HEADER_LEN],
    filled: usize,
}

impl HeaderBuffer {
    pub(crate) const fn new() -> Self {
        HeaderBuffer {
            bytes: [0; MAX_HEADER_LEN],
            filled: 0,
        }
    }

    /// Copies header bytes in from `data`; returns the rest of `data` and, once the header
    /// is complete, the header. Until 8 bytes are in only the prefix is known, so at most
    /// what completes it is taken: a wrong magic or length fails before more is buffered.
    pub(crate) fn fill<'d>(
        &mut self,
        mut data: &'d [u8],
        check: fn(&[u8]) -> Result<Option<usize>, FormatError>,
    ) -> Result<(&'d [u8], Option<&[u8]>), FormatError> {
        loop {
            let want = check(&self.bytes[..self.filled])?.unwrap_or(8);
            let take = (want - self.filled).min(data.len());
            self.bytes[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            match check(&self.bytes[..self.filled])? {
                Some(len) if self.filled == len => return Ok((data, Some(&self.bytes[..len]))),
                _ if data.is_empty() => return Ok((data, None)),
                _ => {}
            }
        }
    }

    /// Empties the buffer for the next header of the stream.
    pub(crate) fn clear(&mut self) {
        self.filled = 0;
    }
}

/// Decodes a complete header (exactly its declared length) and verifies its signature.
pub(crate) fn decode_header(
    bytes: &[u8],
    keys: &TrustedKeys<'_>,
) -> Result<ImageHeader, FormatError> {
    let header_len = check_prefix(bytes)?.ok_or(FormatError::Truncated)?;
    if bytes.len() < header_len {
        return Err(FormatError::Truncated);
    }
    let bytes = &bytes[..header_len];
    let info = decode_info(bytes)?;
    let (body, sig) = bytes.split_at(header_len - SIGNATURE_LEN);
    let sig: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| FormatError::Truncated)?;
    signature::verify(keys, info.key_id, IMAGE_DOMAIN, body, sig)?;
    Ok(ImageHeader {
        info,
        header_len: header_len as u16,
        header_sha256: Sha256::digest(bytes).into(),
    })
}

/// Decodes the fields of a header without checking its signature (for inspection tools).
pub(crate) fn decode_info(bytes: &[u8]) -> Result<ImageInfo, FormatError> {
    let mut r = Reader::new(bytes);
    r.take::<4>()?;
    r.u16()?;
    r.u16()?;
    let flags = r.u32()?;
    // Before any other field: an unknown critical flag may change what they mean.
    if flags & CRITICAL_FLAGS != 0 {
        return Err(FormatError::UnknownCriticalFlag);
    }
    let chip = ChipId(r.u16()?);
    let method = r.u8()?;
    let window_log = r.u8()?;
    let device_type = DeviceType::decode(r.take()?, FieldError::DeviceType)?;
    let version = Version::decode(r.take()?)?;
    let info = ImageInfo {
        device_type,
        chip,
        version,
        security_counter: r.u64()?,
        created: r.u64()?,
        image_size: r.u32()?,
        payload_size: r.u32()?,
        compression: Compression::decode(method, window_log)?,
        payload_sha256: *r.take()?,
        image_sha256: *r.take()?,
        key_id: KeyId(*r.take()?),
        flags,
    };
    debug_assert_eq!(r.position(), FIXED_FIELDS_LEN);
    info.validate()?;
    Ok(info)
}

/// Decodes a header without verifying its signature: for tools that show what a file
/// claims. Nothing decoded this way may be trusted.
pub fn inspect_header(bytes: &[u8]) -> Result<(ImageInfo, usize), FormatError> {
    let header_len = check_prefix(bytes)?.ok_or(FormatError::Truncated)?;
    if bytes.len() < header_len {
        return Err(FormatError::Truncated);
    }
    Ok((decode_info(&bytes[..header_len])?, header_len))
}
