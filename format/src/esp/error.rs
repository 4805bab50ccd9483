//! The ways an app image can be wrong. Small and `Copy` so firmware can keep the last one.

use super::secure_boot::SecureBootError;
use crate::chip::ChipId;
use crate::error::FormatError;

/// A violated rule of the ESP-IDF app image format.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AppImageError {
    /// The first byte is not `0xE9`.
    #[error("not an ESP-IDF app image: first byte is 0x{found:02x}, expected 0xe9")]
    BadMagic {
        /// The byte found instead.
        found: u8,
    },
    /// The header declares no segments; an application has at least one.
    #[error("app image declares no segments")]
    NoSegments,
    /// The header declares more segments than the bootloader accepts.
    #[error("app image declares {count} segments, the bootloader accepts at most 16")]
    TooManySegments {
        /// Declared segment count.
        count: u8,
    },
    /// A segment length is not a multiple of 4, which the bootloader rejects.
    #[error("segment {index} length {len} is not a multiple of 4")]
    SegmentMisaligned {
        /// Segment index.
        index: u8,
        /// Declared length.
        len: u32,
    },
    /// A segment would extend past the largest image allowed (or past 4 GiB).
    #[error("segment {index} length {len} runs past the largest allowed image")]
    SegmentTooLarge {
        /// Segment index.
        index: u8,
        /// Declared length.
        len: u32,
    },
    /// The image (with padding, checksum and digest) is longer than allowed.
    #[error("app image is longer than the {max} bytes allowed")]
    ImageTooLarge {
        /// The limit.
        max: u32,
    },
    /// Padding before the checksum holds something other than zero.
    #[error("padding byte at offset {offset} is not zero")]
    NonZeroPadding {
        /// Image offset of the first non-zero padding byte.
        offset: u32,
    },
    /// The XOR checksum over the segment data does not match the stored byte.
    #[error("checksum mismatch: computed 0x{computed:02x}, image says 0x{stored:02x}")]
    ChecksumMismatch {
        /// The checksum of the data.
        computed: u8,
        /// The checksum byte in the image.
        stored: u8,
    },
    /// The appended SHA-256 does not match the image.
    #[error("appended SHA-256 does not match the image")]
    DigestMismatch,
    /// The image has no appended SHA-256 but one is required.
    #[error("app image has no appended SHA-256 (hash_appended is 0)")]
    DigestMissing,
    /// The input ends before the image does.
    #[error("app image is truncated")]
    Truncated,
    /// Bytes follow the end of the image that are not a Secure Boot V2 signature sector
    /// (or follow that sector).
    #[error(
        "{len} bytes follow the end of the app image (only a Secure Boot V2 signature sector may, at the next 4 KiB boundary)"
    )]
    TrailingBytes {
        /// How many (saturated at `u32::MAX`).
        len: u32,
    },
    /// The image is built for another chip.
    #[error("app image is for {found}, expected {expected}")]
    WrongChip {
        /// The chip the caller asked for.
        expected: ChipId,
        /// The chip id in the image header.
        found: ChipId,
    },
    /// The first segment does not start with an `esp_app_desc_t`.
    #[error("no ESP-IDF app descriptor at the start of the first segment")]
    AppDescriptorMissing,
    /// A text field of the app descriptor is not valid UTF-8.
    #[error("app descriptor field `{field}` is not valid text")]
    AppDescriptorInvalid {
        /// The field name, as in `esp_app_desc_t`.
        field: &'static str,
    },
    /// The Secure Boot V2 signature sector after the image is malformed or misplaced.
    #[error("{0}")]
    SecureBoot(#[from] SecureBootError),
    /// The trusted-key descriptor is malformed or ambiguous.
    #[error("trusted-key descriptor: {0}")]
    KeyDescriptor(FormatError),
}
