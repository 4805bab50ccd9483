//! Why a first install was refused or failed.

use ota_format::ChipId;

/// A refused or failed first install.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// The partition table file is empty.
    #[error("partition table {origin} is empty")]
    EmptyTable {
        /// Where the table came from.
        origin: String,
    },
    /// esp-idf-part refused the table (syntax, overlap, alignment, duplicates).
    #[error("partition table {origin} is invalid: {error}")]
    InvalidTable {
        /// Where the table came from.
        origin: String,
        /// esp-idf-part's reason.
        error: String,
    },
    /// A partition is not aligned (64 KiB for apps, 4 KiB for data).
    #[error("partition {name} at {offset:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// Partition name.
        name: String,
        /// Its offset.
        offset: u32,
        /// The alignment it needs.
        align: u32,
    },
    /// A partition starts inside the bootloader or the partition table.
    #[error(
        "partition {name} at {offset:#x} overlaps the bootloader or the partition table (0x0-0x9000)"
    )]
    BeforeTableEnd {
        /// Partition name.
        name: String,
        /// Its offset.
        offset: u32,
    },
    /// A partition is empty or ends past the flash.
    #[error(
        "partition {name} ({offset:#x}, {size:#x} bytes) does not fit a flash of {flash_size:#x} bytes"
    )]
    OutsideFlash {
        /// Partition name.
        name: String,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
        /// The flash size.
        flash_size: u32,
    },
    /// Two partitions share bytes.
    #[error("partitions {first} and {second} overlap")]
    Overlap {
        /// One partition.
        first: String,
        /// The other.
        second: String,
    },
    /// No otadata partition: the bootloader could never switch slots.
    #[error(
        "the partition table has no otadata partition (data, ota): the device could never switch to an update"
    )]
    NoOtadata,
    /// Fewer than two OTA slots.
    #[error(
        "the partition table has {found} OTA slot(s); an updatable device needs ota_0 and ota_1"
    )]
    TooFewSlots {
        /// Consecutive `ota_N` slots found from `ota_0`.
        found: usize,
    },
    /// No `ota_state` partition.
    #[error(
        "the partition table has no `ota_state` partition: the update agent keeps its state (anti-rollback counter, trial boots, manifest sequence) there and refuses to run without it"
    )]
    NoStatePartition,
    /// `ota_state` is not a data partition of at least two sectors.
    #[error("the `ota_state` partition is {size:#x} bytes{}; the update agent needs a data partition of two or more whole 4 KiB sectors", if *is_data { "" } else { " and not a data partition" })]
    BadStatePartition {
        /// Its size.
        size: u32,
        /// Whether it has type data.
        is_data: bool,
    },
    /// The app does not fit where it goes.
    #[error("the app image is {app} bytes but partition {partition} holds {size} bytes")]
    AppTooLarge {
        /// App image size.
        app: usize,
        /// Partition it goes into.
        partition: String,
        /// Partition size.
        size: u32,
    },
    /// The image is for another chip.
    #[error("the firmware is for {image} but {expected_from} says {expected}")]
    WrongChip {
        /// The image's chip.
        image: String,
        /// The chip expected.
        expected: String,
        /// Who expects it.
        expected_from: String,
    },
    /// The flash is too small for a default layout.
    #[error("a flash of {flash_size:#x} bytes has no room for {apps} app partitions after 0x10000")]
    FlashTooSmall {
        /// The flash size.
        flash_size: u32,
        /// App partitions wanted.
        apps: u32,
    },
    /// espflash has no bootloader for this chip.
    #[error("no ESP-IDF bootloader for {chip}: {reason}")]
    Bootloader {
        /// The chip.
        chip: String,
        /// espflash's reason.
        reason: String,
    },
    /// The serial port or the chip behind it failed.
    #[error("serial flashing on {port} failed: {reason}")]
    Serial {
        /// The port.
        port: String,
        /// What failed.
        reason: String,
    },
    /// The serial port could not be opened.
    #[error("cannot open serial port {port}: {reason}")]
    Port {
        /// The port.
        port: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The connected device has less flash than planned.
    #[error(
        "the device on {port} has {detected:#x} bytes of flash, less than the {planned:#x} planned"
    )]
    DeviceFlashTooSmall {
        /// The port.
        port: String,
        /// Flash found.
        detected: u32,
        /// Flash planned.
        planned: u32,
    },
}

impl FlashError {
    /// A chip mismatch.
    pub fn wrong_chip(image: ChipId, expected: ChipId, expected_from: &str) -> Self {
        FlashError::WrongChip {
            image: image.to_string(),
            expected: expected.to_string(),
            expected_from: expected_from.to_owned(),
        }
    }
}
