//! The signed delta object (`.otad` file): a target image encoded against a base image
//! that the device already runs.
//!
//! ```text
//! .otad file = delta header (D bytes, signed) ‖ target image header (H bytes, verbatim) ‖ payload
//! ```
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! | 0x00   | 4    | magic `"OTAD"`                                                 |
//! | 0x04   | 2    | format version, `1`                                            |
//! | 0x06   | 2    | delta header length `D` (signature included), 256..=1024       |
//! | 0x08   | 4    | flags: bits 0–15 critical (none defined), 16–31 informational  |
//! | 0x0C   | 2    | chip id                                                        |
//! | 0x0E   | 1    | payload encoding: `2` patch-from, `3` difference stream         |
//! | 0x0F   | 1    | zstd window log, 10..=25                                       |
//! | 0x10   | 32   | device type, zero padded                                       |
//! | 0x30   | 4    | base image size                                                |
//! | 0x34   | 4    | payload size                                                   |
//! | 0x38   | 32   | SHA-256 of the base installed image                            |
//! | 0x58   | 32   | SHA-256 of the target image header (what a manifest binds)     |
//! | 0x78   | 32   | SHA-256 of the payload                                         |
//! | 0x98   | 8    | signer key id                                                  |
//! | 0xA0   | 4    | encoding 3: difference stream size (encoding 2: extension area) |
//! | 0xA4   | D−0xE4 | extension area: zero in version 1, ignored but signed        |
//! | D−64   | 64   | Ed25519 signature over `"ota-sign delta v1\0"` ‖ bytes `0..D−64` |
//!
//! The payload is zstd frames. With encoding 2 they decode to the target's installed
//! image when the base installed image is their raw prefix (`zstd --patch-from`); with
//! encoding 3 they decode to a difference stream that [`crate::diff`] turns into the
//! target with the base (bsdiff-style, RISC-V address pairs normalised). The target header is the
//! full image's own signed header, carried verbatim: the manifest's binding and the
//! installed-image digest stay the single source of truth for what gets installed, and
//! the delta's own signature only decides whether a device spends effort on the payload.

use sha2::{Digest, Sha256};

use crate::bytes::{Reader, Writer};
use crate::chip::ChipId;
use crate::error::{FieldError, FormatError};
use crate::image::{
    self, Compression, FLASH_WINDOW_MAX_LOG, HeaderBuffer, IMAGE_HEADER_LEN, ImageHeader,
    MAX_IMAGE_SIZE, MAX_PAYLOAD_SIZE, SignedHeader, SigningMessage,
};
use crate::key::{KeyId, TrustedKeys};
use crate::name::{DeviceType, ImageName, MAX_IMAGE_NAME_LEN};
use crate::signature::{self, SIGNATURE_LEN};
use crate::verifier::{self, Expectations, PayloadDigest};

/// First four bytes of every delta.
pub const DELTA_MAGIC: [u8; 4] = *b"OTAD";
/// The delta format version this crate writes and reads.
pub const DELTA_FORMAT_VERSION: u16 = 1;
/// Delta header length written by this crate.
pub const DELTA_HEADER_LEN: usize = 256;
/// Prefix of the signed message, so a delta signature is never valid for anything else.
pub const DELTA_DOMAIN: &[u8] = b"ota-sign delta v1\0";
/// Suffix of every delta's file name.
pub const DELTA_FILE_SUFFIX: &str = ".otad";

/// The file name of the delta to image `image` from the base whose installed SHA-256 is
/// `base_sha256`, in the image's directory: `IMAGE.<first 8 bytes of base_sha256, lowercase
/// hex>.otad`, what a device running that base asks for. `None` when that name breaks the
/// image name rules (too long): devices then fetch the full image.
pub fn delta_file_name(image: &str, base_sha256: &[u8; 32]) -> Option<ImageName> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut name = [0u8; MAX_IMAGE_NAME_LEN];
    let len = image.len() + 1 + 16 + DELTA_FILE_SUFFIX.len();
    let out = name.get_mut(..len)?;
    out[..image.len()].copy_from_slice(image.as_bytes());
    let mut at = image.len();
    out[at] = b'.';
    at += 1;
    for b in &base_sha256[..8] {
        out[at] = HEX[usize::from(b >> 4)];
        out[at + 1] = HEX[usize::from(b & 15)];
        at += 2;
    }
    out[at..].copy_from_slice(DELTA_FILE_SUFFIX.as_bytes());
    ImageName::new(core::str::from_utf8(out).ok()?)
}

/// Payload encoding byte of [`DeltaEncoding::PatchFrom`].
const ENCODING_PATCH_FROM: u8 = 2;
/// Payload encoding byte of [`DeltaEncoding::Difference`].
const ENCODING_DIFFERENCE: u8 = 3;

/// How a delta's payload turns into the target image (header byte 0x0E). Both are zstd
/// frames under the rules of [`Compression::ZstdFlashWindow`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeltaEncoding {
    /// `2`: the frames decode to the target, the base being their raw prefix.
    PatchFrom,
    /// `3`: the frames (no prefix) decode to a difference stream of `stream_size` bytes
    /// (header 0xA0), which [`crate::diff::DiffPatcher`] applies to the base.
    Difference {
        /// Decoded length of the difference stream.
        stream_size: u32,
    },
}
/// Bytes before the extension area.
const FIXED_FIELDS_LEN: usize = 0xA0;
const CRITICAL_FLAGS: u32 = 0x0000_FFFF;

/// What a delta header says: every field its signature binds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeltaInfo {
    /// Device type of the base and the target.
    pub device_type: DeviceType,
    /// Chip of the base and the target.
    pub chip: ChipId,
    /// Base-2 logarithm of the largest window a payload frame may use (10..=25); the
    /// window spans the base (the frame's prefix) and the output.
    pub window_log: u8,
    /// How the payload encodes the target.
    pub encoding: DeltaEncoding,
    /// Size of the base installed image.
    pub base_size: u32,
    /// Size of the payload that follows the target header.
    pub payload_size: u32,
    /// SHA-256 of the base installed image.
    pub base_sha256: [u8; 32],
    /// SHA-256 of the target image's whole header, signature included.
    pub target_header_sha256: [u8; 32],
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Flags; no critical flag is defined in version 1.
    pub flags: u32,
}

impl DeltaInfo {
    /// Checks the rules between fields that the format imposes.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.flags & CRITICAL_FLAGS != 0 {
            return Err(FormatError::UnknownCriticalFlag);
        }
        if !(10..=FLASH_WINDOW_MAX_LOG).contains(&self.window_log) {
            return Err(FormatError::InvalidField(FieldError::Compression));
        }
        let sizes = FormatError::InvalidField(FieldError::Sizes);
        if self.base_size == 0 || self.base_size > MAX_IMAGE_SIZE {
            return Err(sizes);
        }
        if self.payload_size == 0 || self.payload_size > MAX_PAYLOAD_SIZE {
            return Err(sizes);
        }
        if let DeltaEncoding::Difference { stream_size } = self.encoding
            && (stream_size == 0 || stream_size > crate::diff::MAX_STREAM_SIZE)
        {
            return Err(sizes);
        }
        Ok(())
    }

    /// The payload's frames follow the rules of [`Compression::ZstdFlashWindow`] with
    /// this window.
    pub fn compression(&self) -> Compression {
        Compression::ZstdFlashWindow {
            window_log: self.window_log,
        }
    }

    fn encode_signed_part(&self) -> [u8; DELTA_HEADER_LEN - SIGNATURE_LEN] {
        let mut out = [0u8; DELTA_HEADER_LEN - SIGNATURE_LEN];
        let mut w = Writer::new(&mut out);
        w.put(&DELTA_MAGIC);
        w.u16(DELTA_FORMAT_VERSION);
        w.u16(DELTA_HEADER_LEN as u16);
        w.u32(self.flags);
        w.u16(self.chip.0);
        w.u8(match self.encoding {
            DeltaEncoding::PatchFrom => ENCODING_PATCH_FROM,
            DeltaEncoding::Difference { .. } => ENCODING_DIFFERENCE,
        });
        w.u8(self.window_log);
        w.put(&self.device_type.encode());
        w.u32(self.base_size);
        w.u32(self.payload_size);
        w.put(&self.base_sha256);
        w.put(&self.target_header_sha256);
        w.put(&self.payload_sha256);
        w.put(&self.key_id.0);
        debug_assert_eq!(w.position(), FIXED_FIELDS_LEN);
        if let DeltaEncoding::Difference { stream_size } = self.encoding {
            w.u32(stream_size);
        }
        out
    }

    /// The exact message an external signer must sign with Ed25519: [`DELTA_DOMAIN`]
    /// followed by the header without its signature.
    pub fn signing_message(&self) -> Result<SigningMessage, FormatError> {
        SignedHeader::message(self)
    }

    /// Assembles the signed header from a signature over [`Self::signing_message`]. The
    /// signature is not checked here; verify the result before publishing it.
    pub fn assemble(
        &self,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<[u8; DELTA_HEADER_LEN], FormatError> {
        SignedHeader::encode_with(self, signature)
    }

    /// Signs with a local key and returns the encoded header.
    #[cfg(feature = "sign")]
    pub fn sign(
        &self,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<[u8; DELTA_HEADER_LEN], FormatError> {
        SignedHeader::sign_with(self, key)
    }
}

// One signing-message size for both signed headers.
const _: () = assert!(DELTA_DOMAIN.len() == crate::IMAGE_DOMAIN.len());
const _: () = assert!(DELTA_HEADER_LEN == IMAGE_HEADER_LEN);

impl SignedHeader for DeltaInfo {
    const DOMAIN: &'static [u8] = DELTA_DOMAIN;

    fn check_fields(&self) -> Result<(), FormatError> {
        self.validate()
    }

    fn signed_part(&self) -> [u8; IMAGE_HEADER_LEN - SIGNATURE_LEN] {
        self.encode_signed_part()
    }
}

/// A decoded delta header whose signature has been verified.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeltaHeader {
    /// The signed fields.
    pub info: DeltaInfo,
    header_len: u16,
}

impl DeltaHeader {
    /// Length of the delta header, signature included; the target header starts here.
    pub fn header_len(&self) -> usize {
        self.header_len as usize
    }
}

/// What the delta must be, beyond carrying valid signatures.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeltaExpectations<'m> {
    /// What the target image must be: the same expectations as for a full image (the
    /// manifest binds the target header, so a delta installs exactly the released image).
    pub target: Expectations<'m>,
    /// The image the device runs, `(size, SHA-256)`: the delta's base must be exactly it.
    pub base: Option<(u32, [u8; 32])>,
}

/// Verifies a delta fed in chunks of any size, holding at most one header in memory.
///
/// The delta header, then the target header are checked in full before a single payload
/// byte is handed out. As with [`crate::ImageVerifier`], payload bytes are trustworthy
/// only once [`DeltaVerifier::finish`] confirmed the payload digest, and the decoded
/// image only once its digest equals the target header's installed-image digest.
pub struct DeltaVerifier<'k, 'm> {
    keys: TrustedKeys<'k>,
    expect: DeltaExpectations<'m>,
    header_buf: HeaderBuffer,
    delta: Option<DeltaHeader>,
    target: Option<ImageHeader>,
    payload: PayloadDigest,
    failed: Option<FormatError>,
}

/// The result of a complete, successful delta verification.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedDelta {
    /// The verified delta header.
    pub delta: DeltaHeader,
    /// The verified target image header (what the decoded image must match).
    pub target: ImageHeader,
}

impl<'k, 'm> DeltaVerifier<'k, 'm> {
    /// A verifier accepting signatures from `keys` and checking `expect`.
    pub fn new(keys: TrustedKeys<'k>, expect: DeltaExpectations<'m>) -> Self {
        DeltaVerifier {
            keys,
            expect,
            header_buf: HeaderBuffer::new(),
            delta: None,
            target: None,
            payload: PayloadDigest::new(),
            failed: None,
        }
    }

    /// The verified delta header, once its bytes have been fed.
    pub fn delta_header(&self) -> Option<&DeltaHeader> {
        self.delta.as_ref()
    }

    /// The verified target header, once its bytes have been fed.
    pub fn target_header(&self) -> Option<&ImageHeader> {
        self.target.as_ref()
    }

    /// Payload bytes fed so far.
    pub fn payload_seen(&self) -> u32 {
        self.payload.seen()
    }

    /// Feeds the next bytes of the file and returns the part of `data` that is payload.
    ///
    /// After an error the verifier stays failed and returns that error again.
    pub fn feed<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], FormatError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.feed_inner(data);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn feed_inner<'d>(&mut self, mut data: &'d [u8]) -> Result<&'d [u8], FormatError> {
        let delta = match self.delta {
            Some(delta) => delta,
            None => {
                let (rest, complete) = self.header_buf.fill(data, check_prefix)?;
                data = rest;
                let Some(bytes) = complete else {
                    return Ok(&[]);
                };
                let delta = decode_header(bytes, &self.keys)?;
                check_delta_expectations(&delta.info, &self.expect)?;
                self.header_buf.clear();
                self.delta = Some(delta);
                delta
            }
        };
        if self.target.is_none() {
            let (rest, complete) = self.header_buf.fill(data, image::check_prefix)?;
            data = rest;
            let Some(bytes) = complete else {
                return Ok(&[]);
            };
            self.target = Some(check_target(bytes, &delta.info, &self.keys, &self.expect)?);
        }
        self.payload.take(data, delta.info.payload_size)
    }

    /// Completes verification: the whole payload arrived and matches its signed digest.
    pub fn finish(self) -> Result<VerifiedDelta, FormatError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (Some(delta), Some(target)) = (self.delta, self.target) else {
            return Err(FormatError::Truncated);
        };
        self.payload
            .finish(delta.info.payload_size, &delta.info.payload_sha256)?;
        Ok(VerifiedDelta { delta, target })
    }
}

/// Verifies a complete delta held in memory.
pub fn verify_delta(
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    expect: DeltaExpectations<'_>,
) -> Result<VerifiedDelta, FormatError> {
    let mut v = DeltaVerifier::new(keys, expect);
    v.feed(bytes)?;
    v.finish()
}

/// Decodes a delta header without verifying its signature: for tools that show what a
/// file claims. Nothing decoded this way may be trusted.
pub fn inspect_delta_header(bytes: &[u8]) -> Result<(DeltaInfo, usize), FormatError> {
    let header_len = check_prefix(bytes)?.ok_or(FormatError::Truncated)?;
    if bytes.len() < header_len {
        return Err(FormatError::Truncated);
    }
    Ok((decode_info(&bytes[..header_len])?, header_len))
}

fn check_prefix(prefix: &[u8]) -> Result<Option<usize>, FormatError> {
    image::check_object_prefix(prefix, &DELTA_MAGIC, DELTA_FORMAT_VERSION)
}

fn decode_header(bytes: &[u8], keys: &TrustedKeys<'_>) -> Result<DeltaHeader, FormatError> {
    let info = decode_info(bytes)?;
    let (body, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let sig: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| FormatError::Truncated)?;
    signature::verify(keys, info.key_id, DELTA_DOMAIN, body, sig)?;
    Ok(DeltaHeader {
        info,
        header_len: bytes.len() as u16,
    })
}

fn decode_info(bytes: &[u8]) -> Result<DeltaInfo, FormatError> {
    debug_assert!(bytes.len() >= IMAGE_HEADER_LEN);
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
    // Then the fields in the image header's order: device type, compression, sizes (in
    // `validate`). The method byte is checked with the window log, as the image's pair.
    let device_type = DeviceType::decode(r.take()?, FieldError::DeviceType)?;
    if method != ENCODING_PATCH_FROM && method != ENCODING_DIFFERENCE {
        return Err(FormatError::InvalidField(FieldError::Compression));
    }
    let mut info = DeltaInfo {
        device_type,
        chip,
        window_log,
        encoding: DeltaEncoding::PatchFrom,
        base_size: r.u32()?,
        payload_size: r.u32()?,
        base_sha256: *r.take()?,
        target_header_sha256: *r.take()?,
        payload_sha256: *r.take()?,
        key_id: KeyId(*r.take()?),
        flags,
    };
    debug_assert_eq!(r.position(), FIXED_FIELDS_LEN);
    if method == ENCODING_DIFFERENCE {
        info.encoding = DeltaEncoding::Difference {
            stream_size: r.u32()?,
        };
    }
    info.validate()?;
    Ok(info)
}

/// The caller's expectations that the delta header alone can answer: wrong device, chip
/// or base are refused before the target header is even read.
fn check_delta_expectations(
    info: &DeltaInfo,
    expect: &DeltaExpectations<'_>,
) -> Result<(), FormatError> {
    if let Some(t) = expect.target.device_type
        && info.device_type != t
    {
        return Err(FormatError::WrongDeviceType);
    }
    if let Some(c) = expect.target.chip
        && info.chip != c
    {
        return Err(FormatError::WrongChip);
    }
    if let Some((size, digest)) = expect.base
        && (info.base_size != size || info.base_sha256 != digest)
    {
        return Err(FormatError::DeltaBaseMismatch);
    }
    if let Some(m) = expect.target.manifest
        && info.target_header_sha256 != m.manifest().image_header_sha256
    {
        return Err(FormatError::ManifestImageMismatch);
    }
    Ok(())
}

/// The target header must be the one the delta header names, agree with it on device
/// type and chip, and pass every check a full image's header passes.
fn check_target(
    bytes: &[u8],
    delta: &DeltaInfo,
    keys: &TrustedKeys<'_>,
    expect: &DeltaExpectations<'_>,
) -> Result<ImageHeader, FormatError> {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if digest != delta.target_header_sha256 {
        return Err(FormatError::DeltaTargetMismatch);
    }
    let target = image::decode_header(bytes, keys)?;
    if target.info.device_type != delta.device_type || target.info.chip != delta.chip {
        return Err(FormatError::DeltaTargetMismatch);
    }
    verifier::check_expectations(&target, &expect.target)?;
    Ok(target)
}
