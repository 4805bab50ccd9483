//! ESP-IDF app images: the payload that ota-sign images carry.
//!
//! An app image is what the ESP-IDF second-stage bootloader loads from an app slot:
//!
//! | part                      | size       | notes                                             |
//! |---------------------------|-----------:|---------------------------------------------------|
//! | [`ImageHeader`]           | 24         | magic `0xE9`, segment count, flash settings, chip |
//! | segment header            | 8          | load address, data length (multiple of 4)         |
//! | segment data              | length     | repeated `segment_count` times (at most 16)       |
//! | padding                   | 0..=15     | zero, so that the checksum ends a 16-byte block   |
//! | checksum                  | 1          | XOR of all segment data bytes, seeded with `0xEF` |
//! | SHA-256                   | 32         | only when `hash_appended`: over everything above  |
//! | `0xFF` padding, signature sector | to 4 KiB, 4096 | only on Secure Boot V2 signed images ([`secure_boot`]) |
//!
//! The first segment of an application starts with its [`AppDescriptor`]
//! (`esp_app_desc_t`), so the descriptor sits at image offset 32.
//!
//! [`AppImageValidator`] checks an image streamed in chunks of any size in constant
//! memory (no allocator), the way the simulator and the device re-check a slot read back
//! from flash; [`validate`] is the one-shot form for a complete file.

mod app_desc;
mod crc;
mod error;
mod header;
mod image_info;
pub mod layout;
pub mod secure_boot;
mod validator;

#[cfg(test)]
mod tests;

pub use app_desc::{
    APP_DESC_LEN, APP_DESC_MAGIC, APP_DESC_OFFSET, AppDescriptor, FirmwareDescriptors,
    find_descriptors,
};
pub use crc::crc32_le;
pub use error::AppImageError;
pub use header::{
    CHECKSUM_SEED, DIGEST_LEN, IMAGE_HEADER_LEN, IMAGE_MAGIC, ImageHeader, MAX_SEGMENTS,
    SEGMENT_HEADER_LEN, SegmentHeader,
};
pub use image_info::{AppImageInfo, SegmentInfo};
pub use validator::{
    AppImageValidator, DEFAULT_MAX_IMAGE_LEN, DigestPolicy, SignatureSectorPolicy, ValidateOptions,
    validate,
};
