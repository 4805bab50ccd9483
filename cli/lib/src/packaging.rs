//! Turns a checked ESP-IDF app image into a signed `.ota` image.
//!
//! The app image is compressed with zstd using a window the device can afford (the
//! whole update path must fit 64 KiB of RAM), the header is signed by whatever key
//! source the caller holds, and the result is verified again before it is returned, so
//! a broken signer can never produce a file that `package` reports as good; its payload
//! then goes through the device agent's own decoder and install rules, so no file leaves
//! `package` that the target devices would refuse.

use std::io::Write;

use ota_format::{
    ChipId, Compression, DeviceType, Expectations, ImageInfo, KeyId, TrustedKey, TrustedKeys,
    Version, verify_image,
};
use ota_keys::SigningKeySource;

use crate::progress::Progress;
use sha2::{Digest, Sha256};

/// Largest window `package` will produce: no agent decodes a larger one. What a device
/// type accepts is configured ((`max_window_log` in ota-sign.toml)); by default the agent's
/// 2^12, which keeps the whole update path within the 64 KiB budget (measured in
/// firmware/agent/tests/ram.rs; 2^14 needs ~150 KiB).
pub const MAX_WINDOW_LOG: u8 = ota_agent::agent::MAX_WINDOW_LOG;
/// Default zstd level: slow to compress once, cheap to decompress on every device.
pub const DEFAULT_LEVEL: i32 = 19;

/// How to encode the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadEncoding {
    /// Store the app image as is.
    Stored,
    /// zstd at `level` with a window of `2^window_log` bytes.
    Zstd {
        /// Compression level, 1..=22.
        level: i32,
        /// Window log, 10..=[`MAX_WINDOW_LOG`].
        window_log: u8,
    },
}

impl Default for PayloadEncoding {
    fn default() -> Self {
        PayloadEncoding::Zstd {
            level: DEFAULT_LEVEL,
            window_log: crate::window::DEFAULT_MAX_WINDOW_LOG,
        }
    }
}

/// Everything the signed header says besides what is computed from the bytes.
#[derive(Clone, Copy, Debug)]
pub struct PackageSpec {
    /// Device type the image is for.
    pub device_type: DeviceType,
    /// Chip the image is for.
    pub chip: ChipId,
    /// Firmware version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u64,
    /// Creation time (Unix seconds); from `SOURCE_DATE_EPOCH` for reproducible builds.
    pub created: u64,
    /// Payload encoding.
    pub encoding: PayloadEncoding,
    /// Largest zstd window log the target devices decode; the finished image is checked
    /// against it as they would check it.
    pub max_window_log: u8,
}

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackagingError {
    /// The compressor failed or was given bad parameters.
    #[error("zstd compression failed: {0}")]
    Compression(#[source] std::io::Error),
    /// A window log outside what devices can afford.
    #[error("zstd window log {0} is outside 10..={max}", max = MAX_WINDOW_LOG)]
    WindowLog(u8),
    /// The image is larger than the format allows.
    #[error("app image is {0} bytes; the format's limit is {max} bytes", max = ota_format::MAX_IMAGE_SIZE)]
    TooLarge(usize),
    /// The signer failed.
    #[error("signing failed")]
    Signing(#[source] ota_keys::KeyError),
    /// The assembled image did not verify: the signer does not hold the key it claims.
    #[error(
        "the signed image does not verify with the signer's public key ({0}); the key source is broken"
    )]
    SelfCheck(ota_format::FormatError),
    /// The header could not be encoded.
    #[error("invalid header: {0}")]
    Header(ota_format::FormatError),
    /// The finished image breaks a rule devices apply after the signature.
    #[error("devices would refuse the packaged image: {0}")]
    NotInstallable(#[source] ota_agent::install::InstallError),
}

/// What [`package`] reports progress on: the app image bytes compressed so far.
pub const PROGRESS_COMPRESSING: &str = "compressing";

/// The signed `.ota` file and the facts a caller reports.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The complete `.ota` file.
    pub bytes: Vec<u8>,
    /// The signed header fields.
    pub info: ImageInfo,
    /// SHA-256 of the signed header (what manifests bind; its first 8 hex name the file).
    pub header_sha256: [u8; 32],
}

/// Compresses, signs and self-verifies an app image.
pub fn package(
    app_image: &[u8],
    spec: &PackageSpec,
    signer: &dyn SigningKeySource,
    progress: &dyn Progress,
) -> Result<Packaged, PackagingError> {
    let image_size = u32::try_from(app_image.len())
        .ok()
        .filter(|&n| n <= ota_format::MAX_IMAGE_SIZE)
        .ok_or(PackagingError::TooLarge(app_image.len()))?;
    let (payload, compression) = encode_payload(app_image, spec.encoding, progress)?;
    let public_key = signer.public_key();
    let info = ImageInfo {
        device_type: spec.device_type,
        chip: spec.chip,
        version: spec.version,
        security_counter: spec.security_counter,
        created: spec.created,
        image_size,
        payload_size: u32::try_from(payload.len())
            .map_err(|_| PackagingError::TooLarge(payload.len()))?,
        compression,
        payload_sha256: Sha256::digest(&payload).into(),
        image_sha256: Sha256::digest(app_image).into(),
        key_id: KeyId::of(&public_key),
        flags: 0,
    };
    let message = info.signing_message().map_err(PackagingError::Header)?;
    let signature = signer
        .sign(message.as_bytes())
        .map_err(PackagingError::Signing)?;
    let header = info.assemble(&signature).map_err(PackagingError::Header)?;
    let mut bytes = Vec::with_capacity(header.len() + payload.len());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&payload);

    let trusted = [TrustedKey::new(public_key)];
    let verified = verify_image(&bytes, TrustedKeys::new(&trusted), Expectations::default())
        .map_err(PackagingError::SelfCheck)?;
    let header = &verified.header;
    ota_agent::contents::check_payload(
        header,
        &bytes[header.header_len()..],
        spec.chip,
        spec.max_window_log,
    )
    .map_err(PackagingError::NotInstallable)?;
    Ok(Packaged {
        bytes,
        info,
        header_sha256: *verified.header.header_sha256(),
    })
}

fn encode_payload(
    app_image: &[u8],
    encoding: PayloadEncoding,
    progress: &dyn Progress,
) -> Result<(Vec<u8>, Compression), PackagingError> {
    let (level, window_log) = match encoding {
        PayloadEncoding::Stored => return Ok((app_image.to_vec(), Compression::None)),
        PayloadEncoding::Zstd { level, window_log } => (level, window_log),
    };
    if !(10..=MAX_WINDOW_LOG).contains(&window_log) {
        return Err(PackagingError::WindowLog(window_log));
    }
    let mut encoder =
        zstd::stream::Encoder::new(Vec::new(), level).map_err(PackagingError::Compression)?;
    let set = |e: &mut zstd::stream::Encoder<'_, Vec<u8>>, p| {
        e.set_parameter(p).map_err(PackagingError::Compression)
    };
    set(
        &mut encoder,
        zstd::zstd_safe::CParameter::WindowLog(u32::from(window_log)),
    )?;
    // Devices decode with ota-zstd, which holds one compressed block in RAM and refuses
    // blocks above 8 KiB (FORMAT.md, zstd payloads); agents in the field take them too.
    set(
        &mut encoder,
        zstd::zstd_safe::CParameter::MaxBlockSize(ota_format::FLASH_WINDOW_MAX_BLOCK),
    )?;
    // The content size lets a device check the frame against the header before
    // decoding; the checksum is redundant with the signed digests.
    set(
        &mut encoder,
        zstd::zstd_safe::CParameter::ContentSizeFlag(true),
    )?;
    set(
        &mut encoder,
        zstd::zstd_safe::CParameter::ChecksumFlag(false),
    )?;
    encoder
        .set_pledged_src_size(Some(app_image.len() as u64))
        .map_err(PackagingError::Compression)?;
    progress.start(PROGRESS_COMPRESSING, app_image.len() as u64);
    let mut done = 0u64;
    for chunk in app_image.chunks(256 * 1024) {
        encoder
            .write_all(chunk)
            .map_err(PackagingError::Compression)?;
        done += chunk.len() as u64;
        progress.advance(PROGRESS_COMPRESSING, done);
    }
    progress.finish(PROGRESS_COMPRESSING);
    let payload = encoder.finish().map_err(PackagingError::Compression)?;
    Ok((payload, Compression::Zstd { window_log }))
}
