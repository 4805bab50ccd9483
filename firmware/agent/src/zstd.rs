//! zstd decoding on the device: [`ota_zstd`]'s decoder, whose window is read back from
//! the slot being written (and, for a delta, from the running slot as its prefix).
//!
//! The decoder keeps the most recent 4 KiB of output in its ring (which is also the
//! slot writer's sector buffer: output leaves it in sector-sized, sector-aligned pieces)
//! and one compressed block of at most 8 KiB; match copies further back are read from
//! flash. Its RAM is [`FrameDecoder`] alone, whatever the window, so the window allowed is
//! a rule of the format and of the device's setting, not of its memory:
//!
//! - method 1 ([`Compression::Zstd`]): `2^min(header window_log, device max_window_log)`,
//!   the device's setting at most [`MAX_WINDOW_LOG`] (what agents in the field accept);
//! - method 2 ([`Compression::ZstdFlashWindow`]): `2^min(header window_log, 25)`.
//!
//! Both methods refuse compressed blocks above 8 KiB, skippable frames and dictionaries.

use ota_format::{Compression, FLASH_WINDOW_MAX_BLOCK, FLASH_WINDOW_MAX_LOG};
pub use ota_zstd::DecoderConfig;
use ota_zstd::{DecodeError, IoError};

use crate::install::InstallError;

/// The decoder's RAM window: one flash sector, so each piece it emits is one sector.
pub const RING: usize = 4096;
/// Largest compressed block decoded: the format's limit for method 2.
pub const BLOCK: usize = FLASH_WINDOW_MAX_BLOCK as usize;
/// The device's zstd decoder: 21,792 bytes, the same for every window and image size.
pub type FrameDecoder = ota_zstd::Decoder<RING, BLOCK>;

/// Largest method-1 window log the agent accepts at all (agents in the field accept
/// up to this; the packager keeps method-1 frames within it).
pub const MAX_WINDOW_LOG: u8 = 14;
/// Method-1 window log of the shipped firmware's setting (agents in the field decode
/// with ruzstd, whose heap grows with the window).
pub const DEFAULT_WINDOW_LOG: u8 = 12;

/// Why the compressed payload was refused.
// Not `#[non_exhaustive]`, for the same reason as `InstallError`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecompressError {
    /// Not a zstd frame (skippable frames included: nothing but image data is accepted).
    #[error("not a zstd frame")]
    BadFrameMagic,
    /// A reserved bit is set or a block type is reserved.
    #[error("malformed zstd frame or block header")]
    BadHeader,
    /// The frame needs a dictionary; images never use one.
    #[error("zstd frame needs a dictionary")]
    Dictionary,
    /// The frame's window is larger than the image header declares or the device allows.
    #[error("zstd window {requested} bytes exceeds the allowed {allowed}")]
    WindowTooLarge {
        /// Window the frame asks for.
        requested: u64,
        /// Largest window accepted.
        allowed: u64,
    },
    /// A block is larger than its frame permits, or a compressed block larger than the
    /// decoder's 8 KiB block buffer.
    #[error("zstd block of {size} bytes exceeds the maximum {max}")]
    BlockTooLarge {
        /// Declared block size.
        size: u32,
        /// Block maximum (the frame's, or 8 KiB for a compressed block).
        max: u32,
    },
    /// The block content is malformed, a match reaches before the frame's history, the
    /// frame's content size or content checksum does not match its output.
    #[error("corrupt zstd block")]
    Corrupt,
    /// The payload ends inside a frame, or holds no frame at all.
    #[error("compressed payload ends inside a frame")]
    Truncated,
}

/// The decoder's configuration for a payload compressed with `compression`, on a device
/// accepting method-1 windows up to `2^device_max_window_log`; `None` for a stored one.
/// `prefix_len` is a delta's base image length (0 for a full image).
pub fn decoder_config(
    compression: Compression,
    device_max_window_log: u8,
    prefix_len: u64,
) -> Option<DecoderConfig> {
    let log = match compression {
        Compression::None => return None,
        Compression::Zstd { window_log } => window_log.min(device_max_window_log),
        Compression::ZstdFlashWindow { window_log } => window_log.min(FLASH_WINDOW_MAX_LOG),
    };
    Some(DecoderConfig {
        max_window: 1u64 << log,
        prefix_len,
        // Format rule 1: nothing but data frames.
        skippable_frames: false,
    })
}

/// What a decoder refusal means for an install. The sink and history are the slot, so
/// their errors are the flash's or the output limit's.
pub fn install_error(error: DecodeError) -> InstallError {
    let refused = match error {
        DecodeError::BadMagic(_) => DecompressError::BadFrameMagic,
        DecodeError::ReservedBit | DecodeError::ReservedBlockType => DecompressError::BadHeader,
        DecodeError::DictionaryRequired(_) => DecompressError::Dictionary,
        DecodeError::WindowTooLarge { window, max } => DecompressError::WindowTooLarge {
            requested: window,
            allowed: max,
        },
        DecodeError::BlockTooLarge { size, max } => DecompressError::BlockTooLarge {
            size,
            // A frame's block maximum is at most 128 KiB.
            max: u32::try_from(max).unwrap_or(u32::MAX),
        },
        DecodeError::BlockBufferTooSmall { size, capacity } => DecompressError::BlockTooLarge {
            size,
            max: u32::try_from(capacity).unwrap_or(u32::MAX),
        },
        DecodeError::OffsetBeyondHistory { .. }
        | DecodeError::ContentSizeMismatch { .. }
        | DecodeError::ChecksumMismatch { .. }
        | DecodeError::Corrupt(_) => DecompressError::Corrupt,
        DecodeError::Truncated => DecompressError::Truncated,
        DecodeError::Io(io) => {
            return match io {
                IoError::OutputFull => InstallError::OutputTooLong,
                IoError::Flash(kind) => InstallError::Flash(kind),
                IoError::Granularity { .. } => InstallError::WriteBufferMisfit,
                // The decoder reads only what it wrote (or the prefix): a history that
                // cannot serve it is a frame the decoder should not have accepted.
                IoError::OutOfHistory => InstallError::Decompress(DecompressError::Corrupt),
            };
        }
    };
    InstallError::Decompress(refused)
}

impl From<DecodeError> for InstallError {
    fn from(error: DecodeError) -> Self {
        install_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_per_method() {
        let cfg = |c, device| decoder_config(c, device, 0).map(|c| c.max_window);
        assert_eq!(cfg(Compression::None, 12), None);
        assert_eq!(cfg(Compression::Zstd { window_log: 14 }, 12), Some(1 << 12));
        assert_eq!(cfg(Compression::Zstd { window_log: 11 }, 14), Some(1 << 11));
        // Method 2 ignores the device's method-1 setting: its window costs no RAM.
        assert_eq!(
            cfg(Compression::ZstdFlashWindow { window_log: 23 }, 12),
            Some(1 << 23)
        );
        let c = decoder_config(Compression::ZstdFlashWindow { window_log: 20 }, 12, 77).unwrap();
        assert_eq!((c.prefix_len, c.skippable_frames), (77, false));
    }

    #[test]
    fn decoder_refusals_map_to_install_errors() {
        use ota_zstd::Corruption;
        let d = |e| install_error(e);
        assert_eq!(
            d(DecodeError::BlockBufferTooSmall {
                size: 9000,
                capacity: 8192
            }),
            InstallError::Decompress(DecompressError::BlockTooLarge {
                size: 9000,
                max: 8192
            })
        );
        assert_eq!(
            d(DecodeError::BadMagic(0x184D_2A50)),
            DecompressError::BadFrameMagic.into()
        );
        assert_eq!(
            d(DecodeError::Corrupt(Corruption::HuffmanTable)),
            DecompressError::Corrupt.into()
        );
        assert_eq!(
            d(DecodeError::Io(IoError::OutputFull)),
            InstallError::OutputTooLong
        );
    }
}
