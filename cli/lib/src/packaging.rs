//! Turns a checked ESP-IDF app image into a signed `.ota` image.
//!
//! The app image is compressed with zstd in the form the target devices' agent decodes:
//! method 2 (window in flash, compressed blocks of at most 8 KiB, a window covering the
//! whole image) for generation-2 agents, method 1 (window in RAM, 2^12 by default) for
//! generation-1 agents. The header is signed by whatever key
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

/// Largest method-1 window `package` will produce: no generation-1 agent decodes a
/// larger one. What a device type accepts is configured (`max_window_log` in
/// ota-sign.toml); by default the agent's 2^12, which keeps the whole update path within
/// the 64 KiB budget (measured in firmware/agent/tests/ram.rs; 2^14 needs ~150 KiB).
pub const MAX_WINDOW_LOG: u8 = ota_agent::agent::MAX_WINDOW_LOG;
/// Smallest zstd window log (zstd's own minimum).
pub const MIN_WINDOW_LOG: u8 = 10;
/// Largest compressed zstd block of every image `package` writes: the block buffer of
/// the generation-2 decoder. Method 1 keeps to it too, so a generation-2 agent that
/// decodes method 1 with the same decoder takes every image ota-sign ever wrote.
pub const MAX_BLOCK: u32 = ota_format::FLASH_WINDOW_MAX_BLOCK;
/// Default zstd level: slow to compress once, cheap to decompress on every device.
pub const DEFAULT_LEVEL: i32 = 19;

/// How to encode the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadEncoding {
    /// Store the app image as is (method 0).
    Stored,
    /// Method 1, for generation-1 agents: zstd at `level` with a window of
    /// `2^window_log` bytes held in the device's RAM.
    Zstd {
        /// Compression level, 1..=22.
        level: i32,
        /// Window log, 10..=[`MAX_WINDOW_LOG`].
        window_log: u8,
    },
    /// Method 2, for generation-2 agents: zstd at `level` whose window the device reads
    /// back from flash.
    ZstdFlashWindow {
        /// Compression level, 1..=22.
        level: i32,
        /// Window log, 10..=[`ota_format::FLASH_WINDOW_MAX_LOG`]; `None`: the smallest
        /// window covering the whole image ([`covering_window_log`]).
        window_log: Option<u8>,
    },
}

impl Default for PayloadEncoding {
    fn default() -> Self {
        PayloadEncoding::ZstdFlashWindow {
            level: DEFAULT_LEVEL,
            window_log: None,
        }
    }
}

/// The smallest window log whose window covers `len` bytes (so every match of the
/// image is in reach; a larger one gains nothing), within 10..=25.
pub fn covering_window_log(len: usize) -> u8 {
    let log = usize::BITS - len.saturating_sub(1).leading_zeros();
    (log as u8).clamp(MIN_WINDOW_LOG, ota_format::FLASH_WINDOW_MAX_LOG)
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
    /// Largest method-1 zstd window log the target devices decode; the finished image is
    /// checked against it as they would check it.
    pub max_window_log: u8,
}

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackagingError {
    /// The compressor failed or was given bad parameters.
    #[error("zstd compression failed: {0}")]
    Compression(#[source] std::io::Error),
    /// A window log outside what devices can afford.
    #[error("zstd window log {log} is outside 10..={max} for {method}")]
    WindowLog {
        /// The window log asked for.
        log: u8,
        /// The largest the method allows.
        max: u8,
        /// The compression method.
        method: &'static str,
    },
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
    crate::trust::check_payload(header, &bytes[header.header_len()..], spec.max_window_log)
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
    let (level, compression) = match encoding {
        PayloadEncoding::Stored => return Ok((app_image.to_vec(), Compression::None)),
        PayloadEncoding::Zstd { level, window_log } => {
            check_window_log(window_log, MAX_WINDOW_LOG, "method 1")?;
            (level, Compression::Zstd { window_log })
        }
        PayloadEncoding::ZstdFlashWindow { level, window_log } => {
            let window_log = window_log.unwrap_or(covering_window_log(app_image.len()));
            check_window_log(window_log, ota_format::FLASH_WINDOW_MAX_LOG, "method 2")?;
            (level, Compression::ZstdFlashWindow { window_log })
        }
    };
    let window_log = compression.window_log().unwrap_or(MIN_WINDOW_LOG);
    let params = ZstdParams::new(level, window_log);
    let mut encoder = params.encoder(&[]).map_err(PackagingError::Compression)?;
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
    Ok((payload, compression))
}

fn check_window_log(log: u8, max: u8, method: &'static str) -> Result<(), PackagingError> {
    if (MIN_WINDOW_LOG..=max).contains(&log) {
        Ok(())
    } else {
        Err(PackagingError::WindowLog { log, max, method })
    }
}

/// The libzstd settings of every payload ota-sign writes (images and deltas).
#[derive(Clone, Copy, Debug)]
pub struct ZstdParams {
    /// Compression level.
    pub level: i32,
    /// Window log.
    pub window_log: u8,
    /// libzstd's `ZSTD_c_maxBlockSize`: the most *decoded* bytes one block may carry.
    /// What the device needs is a *compressed* block of at most [`MAX_BLOCK`]; capping
    /// the decoded size at [`MAX_BLOCK`] guarantees it, a larger cap may still meet it
    /// (see `delta::encode`).
    pub max_block: u32,
}

impl ZstdParams {
    /// `level` with a `2^window_log` window and blocks of at most [`MAX_BLOCK`] bytes.
    pub fn new(level: i32, window_log: u8) -> Self {
        ZstdParams {
            level,
            window_log,
            max_block: MAX_BLOCK,
        }
    }

    /// A streaming encoder into a `Vec`, whose first frame may copy from `prefix`
    /// (libzstd's `ref_prefix`, as `zstd --patch-from`; empty: none).
    pub fn encoder<'p>(
        &self,
        prefix: &'p [u8],
    ) -> std::io::Result<zstd::stream::write::Encoder<'p, Vec<u8>>> {
        use zstd::zstd_safe::CParameter;
        let mut encoder = if prefix.is_empty() {
            zstd::stream::write::Encoder::new(Vec::new(), self.level)?
        } else {
            zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), self.level, prefix)?
        };
        for p in [
            CParameter::WindowLog(u32::from(self.window_log)),
            // Every compressed block must fit the generation-2 decoder's block buffer.
            CParameter::MaxBlockSize(self.max_block),
            // The content size lets a device check the frame against the header before
            // decoding; the checksum is redundant with the signed digests.
            CParameter::ContentSizeFlag(true),
            CParameter::ChecksumFlag(false),
        ] {
            encoder.set_parameter(p)?;
        }
        Ok(encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    /// Block_Size of every compressed block (Block_Type 2) of the single frame `frame`
    /// (RFC 8878 §3.1.1.2).
    fn compressed_block_sizes(frame: &[u8]) -> Vec<usize> {
        let fhd = frame[4];
        let single_segment = fhd & 0x20 != 0;
        let dictionary = [0, 1, 2, 4][usize::from(fhd & 3)];
        let content_size = [usize::from(single_segment), 2, 4, 8][usize::from(fhd >> 6)];
        let mut at = 5 + usize::from(!single_segment) + dictionary + content_size;
        let mut sizes = Vec::new();
        loop {
            let h = u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], 0]);
            let size = (h >> 3) as usize;
            at += 3 + if (h >> 1) & 3 == 1 { 1 } else { size };
            if (h >> 1) & 3 == 2 {
                sizes.push(size);
            }
            if h & 1 != 0 {
                break;
            }
        }
        assert_eq!(at + if fhd & 4 != 0 { 4 } else { 0 }, frame.len());
        sizes
    }

    #[test]
    fn method_1_compressed_blocks_are_at_most_8_kib_even_with_a_16_kib_window() {
        // Barely compressible bytes: libzstd's blocks would fill the 16 KiB window.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let app: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 40) as u8
            })
            .collect();
        let encoding = PayloadEncoding::Zstd {
            level: 19,
            window_log: 14,
        };
        let (payload, compression) = encode_payload(&app, encoding, &NoProgress).unwrap();
        assert_eq!(compression, Compression::Zstd { window_log: 14 });
        let sizes = compressed_block_sizes(&payload);
        assert!(sizes.len() > 20, "{} compressed blocks", sizes.len());
        let largest = sizes.iter().max().copied().unwrap();
        assert!(largest <= 8192, "a compressed block of {largest} bytes");
        assert!(
            largest > 4096,
            "blocks are not capped lower than 8 KiB: {largest}"
        );
    }
}
