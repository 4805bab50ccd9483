//! The signed release manifest: "the current release of this device type on this channel
//! is this image".
//!
//! | offset | size | field                                                             |
//! |-------:|-----:|-------------------------------------------------------------------|
//! | 0x000  | 4    | magic `"OTAM"`                                                    |
//! | 0x004  | 2    | format version, `1`                                               |
//! | 0x006  | 2    | manifest length `M` (signature included), 368..=1024              |
//! | 0x008  | 4    | flags: bit 0 allow downgrade, bit 1 has minimum running version; other bits 2–15 critical, 16–31 informational |
//! | 0x00C  | 2    | chip id                                                           |
//! | 0x00E  | 2    | rollout, basis points 0..=10000                                   |
//! | 0x010  | 32   | device type, zero padded                                          |
//! | 0x030  | 16   | channel, zero padded                                              |
//! | 0x040  | 32   | version                                                           |
//! | 0x060  | 8    | security counter                                                  |
//! | 0x068  | 8    | sequence number                                                   |
//! | 0x070  | 8    | creation time, Unix seconds                                       |
//! | 0x078  | 8    | not-after time, Unix seconds; 0 = no expiry                       |
//! | 0x080  | 4    | image file size (header + payload)                                |
//! | 0x084  | 4    | installed image size                                              |
//! | 0x088  | 32   | SHA-256 of the image's signed header                              |
//! | 0x0A8  | 32   | minimum running version (zero unless flag bit 1)                  |
//! | 0x0C8  | 96   | image file name, zero padded                                      |
//! | 0x128  | 8    | signer key id                                                     |
//! | 0x130  | M−0x170 | extension area: none in version 1, ignored but signed         |
//! | M−64   | 64   | Ed25519 signature over `"ota-sign manifest v1\0"` ‖ bytes `0..M−64` |

use crate::bytes::{Reader, Writer};
use crate::chip::ChipId;
use crate::error::{FieldError, FormatError};
use crate::key::{KeyId, TrustedKeys};
use crate::name::{Channel, DeviceType, ImageName};
use crate::signature::{self, SIGNATURE_LEN};
use crate::version::Version;

/// First four bytes of every manifest.
pub const MANIFEST_MAGIC: [u8; 4] = *b"OTAM";
/// The manifest format version this crate writes and reads.
pub const MANIFEST_FORMAT_VERSION: u16 = 1;
/// Manifest length written by this crate.
pub const MANIFEST_LEN: usize = 368;
/// Longest manifest a verifier accepts.
pub const MAX_MANIFEST_LEN: usize = 1024;
/// Prefix of the signed message; differs from the image's so neither replays as the other.
pub const MANIFEST_DOMAIN: &[u8] = b"ota-sign manifest v1\0";
/// Rollout value meaning "every device".
pub const FULL_ROLLOUT: u16 = 10_000;

/// Flag: devices may install a lower version than they run (never a lower counter).
pub const FLAG_ALLOW_DOWNGRADE: u32 = 1 << 0;
/// Flag: the minimum-running-version field is set.
pub const FLAG_HAS_MIN_VERSION: u32 = 1 << 1;
const KNOWN_FLAGS: u32 = FLAG_ALLOW_DOWNGRADE | FLAG_HAS_MIN_VERSION;
const CRITICAL_FLAGS: u32 = 0x0000_FFFF;
const FIXED_FIELDS_LEN: usize = 0x130;

/// Every field a manifest signs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Manifest {
    /// Device type of the release.
    pub device_type: DeviceType,
    /// Chip of the release.
    pub chip: ChipId,
    /// Channel this manifest is the head of.
    pub channel: Channel,
    /// Version of the image.
    pub version: Version,
    /// Security counter of the image.
    pub security_counter: u64,
    /// Strictly increasing per device type and channel; devices refuse a lower one.
    pub sequence: u64,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Devices with a clock refuse the manifest after this time (Unix seconds).
    pub not_after: Option<u64>,
    /// Share of the fleet that installs, in basis points (10000 = everyone).
    pub rollout: u16,
    /// Size of the `.ota` file.
    pub image_file_size: u32,
    /// Installed image size.
    pub image_size: u32,
    /// SHA-256 of the image's signed header, which binds the payload in turn.
    pub image_header_sha256: [u8; 32],
    /// Devices running a lower version may not install this release.
    pub min_running_version: Option<Version>,
    /// Whether devices may install a lower version than they run.
    pub allow_downgrade: bool,
    /// File name of the image, relative to the manifest.
    pub image_name: ImageName,
    /// Id of the signing key.
    pub key_id: KeyId,
}

impl Manifest {
    /// Checks the rules between fields that the format imposes.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.rollout > FULL_ROLLOUT {
            return Err(FormatError::InvalidField(FieldError::Rollout));
        }
        let sizes = FormatError::InvalidField(FieldError::Sizes);
        if self.image_size == 0 || self.image_size > crate::image::MAX_IMAGE_SIZE {
            return Err(sizes);
        }
        let min_file = crate::image::IMAGE_HEADER_LEN as u32 + 1;
        let max_file = crate::image::MAX_HEADER_LEN as u32 + crate::image::MAX_PAYLOAD_SIZE;
        if !(min_file..=max_file).contains(&self.image_file_size) {
            return Err(sizes);
        }
        Ok(())
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.allow_downgrade {
            flags |= FLAG_ALLOW_DOWNGRADE;
        }
        if self.min_running_version.is_some() {
            flags |= FLAG_HAS_MIN_VERSION;
        }
        flags
    }

    fn encode_signed_part(&self) -> [u8; MANIFEST_LEN - SIGNATURE_LEN] {
        let mut out = [0u8; MANIFEST_LEN - SIGNATURE_LEN];
        let mut w = Writer::new(&mut out);
        w.put(&MANIFEST_MAGIC);
        w.u16(MANIFEST_FORMAT_VERSION);
        w.u16(MANIFEST_LEN as u16);
        w.u32(self.flags());
        w.u16(self.chip.0);
        w.u16(self.rollout);
        w.put(&self.device_type.encode());
        w.put(&self.channel.encode());
        w.put(&self.version.encode());
        w.u64(self.security_counter);
        w.u64(self.sequence);
        w.u64(self.created);
        w.u64(self.not_after.unwrap_or(0));
        w.u32(self.image_file_size);
        w.u32(self.image_size);
        w.put(&self.image_header_sha256);
        w.put(
            &self
                .min_running_version
                .map(|v| v.encode())
                .unwrap_or([0; 32]),
        );
        w.put(&self.image_name.encode());
        w.put(&self.key_id.0);
        debug_assert_eq!(w.position(), FIXED_FIELDS_LEN);
        out
    }

    /// The exact message an external signer must sign: [`MANIFEST_DOMAIN`] followed by
    /// the manifest without its signature.
    pub fn signing_message(&self) -> Result<ManifestSigningMessage, FormatError> {
        self.validate()?;
        Ok(ManifestSigningMessage {
            bytes: signature::concat(MANIFEST_DOMAIN, &self.encode_signed_part()),
        })
    }

    /// Assembles the signed manifest from a signature over [`Self::signing_message`].
    pub fn assemble(
        &self,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<[u8; MANIFEST_LEN], FormatError> {
        self.validate()?;
        Ok(signature::concat(&self.encode_signed_part(), signature))
    }

    /// Signs with a local key and returns the encoded manifest.
    #[cfg(feature = "sign")]
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Result<[u8; MANIFEST_LEN], FormatError> {
        let message = self.signing_message()?;
        let sig = signature::sign(key, message.as_bytes());
        self.assemble(&sig)
    }

    /// Decodes a manifest without verifying its signature: for tools that show what a
    /// file claims. Nothing decoded this way may be trusted.
    pub fn inspect(bytes: &[u8]) -> Result<Manifest, FormatError> {
        let len = check_prefix(bytes)?;
        decode(&bytes[..len])
    }

    /// Decodes and verifies a complete manifest. `bytes` must be exactly the manifest.
    pub fn verify(bytes: &[u8], keys: &TrustedKeys<'_>) -> Result<VerifiedManifest, FormatError> {
        let len = check_prefix(bytes)?;
        let manifest = decode(&bytes[..len])?;
        let (body, sig) = bytes.split_at(len - SIGNATURE_LEN);
        let sig: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| FormatError::Truncated)?;
        signature::verify(keys, manifest.key_id, MANIFEST_DOMAIN, body, sig)?;
        Ok(VerifiedManifest(manifest))
    }
}

/// A domain-prefixed manifest message to be signed with Ed25519.
#[derive(Clone, Copy)]
pub struct ManifestSigningMessage {
    bytes: [u8; MANIFEST_DOMAIN.len() + MANIFEST_LEN - SIGNATURE_LEN],
}

impl ManifestSigningMessage {
    /// The bytes to sign.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A manifest whose signature verified against a trusted key. Only [`Manifest::verify`]
/// makes one, so holding one proves the check happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedManifest(Manifest);

impl VerifiedManifest {
    /// The verified fields.
    pub fn manifest(&self) -> &Manifest {
        &self.0
    }
}

/// Checks magic, version and declared length against the whole input; returns the length.
fn check_prefix(bytes: &[u8]) -> Result<usize, FormatError> {
    let magic_len = bytes.len().min(4);
    if bytes[..magic_len] != MANIFEST_MAGIC[..magic_len] {
        return Err(FormatError::BadMagic);
    }
    if bytes.len() < 8 {
        return Err(FormatError::Truncated);
    }
    if u16::from_le_bytes([bytes[4], bytes[5]]) != MANIFEST_FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion);
    }
    let len = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    if !(MANIFEST_LEN..=MAX_MANIFEST_LEN).contains(&len) {
        return Err(FormatError::BadLength);
    }
    match bytes.len() {
        n if n < len => Err(FormatError::Truncated),
        n if n > len => Err(FormatError::TrailingBytes),
        _ => Ok(len),
    }
}

fn decode(bytes: &[u8]) -> Result<Manifest, FormatError> {
    let mut r = Reader::new(bytes);
    r.take::<4>()?;
    r.u16()?;
    r.u16()?;
    let flags = r.u32()?;
    if flags & CRITICAL_FLAGS & !KNOWN_FLAGS != 0 {
        return Err(FormatError::UnknownCriticalFlag);
    }
    let chip = ChipId(r.u16()?);
    let rollout = r.u16()?;
    let device_type = DeviceType::decode(r.take()?, FieldError::DeviceType)?;
    let channel = Channel::decode(r.take()?, FieldError::Channel)?;
    let version = Version::decode(r.take()?)?;
    let security_counter = r.u64()?;
    let sequence = r.u64()?;
    let created = r.u64()?;
    let not_after = match r.u64()? {
        0 => None,
        t => Some(t),
    };
    let image_file_size = r.u32()?;
    let image_size = r.u32()?;
    let image_header_sha256 = *r.take()?;
    let min_raw: &[u8; 32] = r.take()?;
    let min_running_version = if flags & FLAG_HAS_MIN_VERSION != 0 {
        Some(Version::decode(min_raw)?)
    } else if min_raw.iter().any(|&b| b != 0) {
        return Err(FormatError::InvalidField(FieldError::Version));
    } else {
        None
    };
    let image_name = ImageName::decode(r.take()?, FieldError::ImageName)?;
    let key_id = KeyId(*r.take()?);
    debug_assert_eq!(r.position(), FIXED_FIELDS_LEN);
    let manifest = Manifest {
        device_type,
        chip,
        channel,
        version,
        security_counter,
        sequence,
        created,
        not_after,
        rollout,
        image_file_size,
        image_size,
        image_header_sha256,
        min_running_version,
        allow_downgrade: flags & FLAG_ALLOW_DOWNGRADE != 0,
        image_name,
        key_id,
    };
    manifest.validate()?;
    Ok(manifest)
}
