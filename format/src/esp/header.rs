//! The fixed headers of an app image: `esp_image_header_t` and
//! `esp_image_segment_header_t`.
//!
//! `esp_image_header_t` (24 bytes, little-endian):
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0      | 1    | magic `0xE9`                                                 |
//! | 1      | 1    | segment count, `1..=16`                                      |
//! | 2      | 1    | SPI mode (`esp_image_spi_mode_t`)                            |
//! | 3      | 1    | low nibble SPI speed, high nibble flash size                 |
//! | 4      | 4    | entry point                                                  |
//! | 8      | 1    | WP pin (`0xEE` = disabled)                                   |
//! | 9      | 3    | SPI pin drive settings                                       |
//! | 12     | 2    | chip id (`esp_chip_id_t`)                                    |
//! | 14     | 1    | legacy minimum chip revision                                 |
//! | 15     | 2    | minimum chip revision, `major * 100 + minor`                 |
//! | 17     | 2    | maximum chip revision, `major * 100 + minor`                 |
//! | 19     | 4    | reserved                                                     |
//! | 23     | 1    | `hash_appended`: non-zero when a SHA-256 follows the checksum |
//!
//! Each segment starts with `esp_image_segment_header_t`: load address (u32) and data
//! length (u32).

use crate::chip::ChipId;

/// First byte of every app image (`ESP_IMAGE_HEADER_MAGIC`).
pub const IMAGE_MAGIC: u8 = 0xE9;
/// Size of `esp_image_header_t`.
pub const IMAGE_HEADER_LEN: usize = 24;
/// Size of `esp_image_segment_header_t`.
pub const SEGMENT_HEADER_LEN: usize = 8;
/// Most segments the bootloader accepts (`ESP_IMAGE_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 16;
/// Start value of the XOR checksum (`ESP_ROM_CHECKSUM_INITIAL`).
pub const CHECKSUM_SEED: u8 = 0xEF;
/// Size of the appended SHA-256.
pub const DIGEST_LEN: usize = 32;

/// A decoded `esp_image_header_t`. Decoding never fails: which values are acceptable
/// is the validator's decision.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ImageHeader {
    /// Magic byte, `0xE9` in a valid image.
    pub magic: u8,
    /// Number of segments.
    pub segment_count: u8,
    /// SPI flash mode (0 QIO, 1 QOUT, 2 DIO, 3 DOUT, ...).
    pub spi_mode: u8,
    /// SPI speed (low nibble of byte 3).
    pub spi_speed: u8,
    /// Flash size (high nibble of byte 3; 2 = 4 MB).
    pub spi_size: u8,
    /// Entry point address.
    pub entry_addr: u32,
    /// WP pin, `0xEE` when disabled.
    pub wp_pin: u8,
    /// SPI pin drive settings.
    pub spi_pin_drv: [u8; 3],
    /// Chip the image is built for.
    pub chip_id: ChipId,
    /// Legacy minimum chip revision.
    pub min_chip_rev: u8,
    /// Minimum chip revision, `major * 100 + minor`.
    pub min_chip_rev_full: u16,
    /// Maximum chip revision, `major * 100 + minor`.
    pub max_chip_rev_full: u16,
    /// Reserved bytes.
    pub reserved: [u8; 4],
    /// Raw `hash_appended` byte; the bootloader treats any non-zero value as set.
    pub hash_appended: u8,
}

impl ImageHeader {
    /// Decodes the 24 header bytes.
    pub fn decode(b: &[u8; IMAGE_HEADER_LEN]) -> Self {
        ImageHeader {
            magic: b[0],
            segment_count: b[1],
            spi_mode: b[2],
            spi_speed: b[3] & 0x0F,
            spi_size: b[3] >> 4,
            entry_addr: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            wp_pin: b[8],
            spi_pin_drv: [b[9], b[10], b[11]],
            chip_id: ChipId(u16::from_le_bytes([b[12], b[13]])),
            min_chip_rev: b[14],
            min_chip_rev_full: u16::from_le_bytes([b[15], b[16]]),
            max_chip_rev_full: u16::from_le_bytes([b[17], b[18]]),
            reserved: [b[19], b[20], b[21], b[22]],
            hash_appended: b[23],
        }
    }

    /// Encodes the header; the inverse of [`ImageHeader::decode`].
    pub fn encode(&self) -> [u8; IMAGE_HEADER_LEN] {
        let mut b = [0u8; IMAGE_HEADER_LEN];
        b[0] = self.magic;
        b[1] = self.segment_count;
        b[2] = self.spi_mode;
        b[3] = (self.spi_size << 4) | (self.spi_speed & 0x0F);
        b[4..8].copy_from_slice(&self.entry_addr.to_le_bytes());
        b[8] = self.wp_pin;
        b[9..12].copy_from_slice(&self.spi_pin_drv);
        b[12..14].copy_from_slice(&self.chip_id.0.to_le_bytes());
        b[14] = self.min_chip_rev;
        b[15..17].copy_from_slice(&self.min_chip_rev_full.to_le_bytes());
        b[17..19].copy_from_slice(&self.max_chip_rev_full.to_le_bytes());
        b[19..23].copy_from_slice(&self.reserved);
        b[23] = self.hash_appended;
        b
    }

    /// Whether a SHA-256 follows the checksum.
    pub fn has_digest(&self) -> bool {
        self.hash_appended != 0
    }
}

/// A decoded `esp_image_segment_header_t`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SegmentHeader {
    /// Address the bootloader loads (or maps) the segment at.
    pub load_addr: u32,
    /// Length of the data that follows.
    pub data_len: u32,
}

impl SegmentHeader {
    /// Decodes the 8 header bytes.
    pub fn decode(b: &[u8; SEGMENT_HEADER_LEN]) -> Self {
        SegmentHeader {
            load_addr: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data_len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[..4].copy_from_slice(&self.load_addr.to_le_bytes());
        b[4..].copy_from_slice(&self.data_len.to_le_bytes());
        b
    }
}
