//! What can be wrong with a firmware input, in words a person can act on.

use ota_format::esp::AppImageError;
use ota_format::{ChipId, FormatError};

/// Why a firmware input cannot be packaged.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// The input is not a 32-bit ELF file.
    #[error("input is not a 32-bit ELF file: {0}")]
    NotElf(String),
    /// The ELF's architecture is not the chip's.
    #[error("ELF is for {arch} (e_machine {machine}) but --chip {given} is a {expected_arch} chip")]
    ElfArchMismatch {
        /// Architecture of the ELF.
        arch: &'static str,
        /// Raw `e_machine`.
        machine: u16,
        /// Architecture of the requested chip.
        expected_arch: &'static str,
        /// The chip asked for.
        given: ChipId,
    },
    /// The ELF is built for another chip of the same architecture.
    #[error("ELF is for {elf} but --chip {given} was given")]
    ElfChipMismatch {
        /// The chip(s) the ELF fits, e.g. `esp32s3` or `esp32c2 or esp32c3`.
        elf: String,
        /// The chip asked for.
        given: ChipId,
    },
    /// espflash has no image support for this chip.
    #[error("cannot build app images for {0}")]
    UnsupportedChip(ChipId),
    /// The app image does not fit the app partition espflash assumes for the flash size.
    #[error(
        "app image is {size} bytes but the app partition for this flash size holds {partition}; give the real flash size"
    )]
    TooLargeForFlash {
        /// Image size.
        size: u32,
        /// Partition size.
        partition: u32,
    },
    /// espflash failed to build the app image.
    #[error("espflash could not turn the ELF into an app image: {0}")]
    Espflash(#[source] Box<espflash::Error>),
    /// The app image is built for another chip.
    #[error("app image is for {image} but --chip {given} was given")]
    AppImageChipMismatch {
        /// Chip id in the image header.
        image: ChipId,
        /// The chip asked for.
        given: ChipId,
    },
    /// The app image is malformed.
    #[error("invalid app image: {0}")]
    AppImage(#[source] AppImageError),
    /// The firmware has no ESP-IDF app descriptor.
    #[error(
        "firmware has no ESP-IDF app descriptor (esp_app_desc_t); esp-hal firmware adds it with esp_bootloader_esp_idf::esp_app_desc!()"
    )]
    MissingAppDescriptor,
    /// The app descriptor's version is not semver.
    #[error(
        "app descriptor version {0:?} is not a semantic version (MAJOR.MINOR.PATCH[-PRE]); set the firmware's package version"
    )]
    VersionNotSemver(String),
    /// The trusted-key descriptor is malformed or there are two.
    #[error("trusted-key descriptor: {0}")]
    KeyDescriptor(#[source] FormatError),
    /// An ELF was given without the chip it is built for (an ELF's headers do not tell
    /// the ESP32 variants apart reliably).
    #[error("the chip an ELF is built for must be given")]
    ChipRequired {
        /// The chips the ELF fits, likeliest first (empty when none could be told).
        candidates: Vec<ChipId>,
    },
}

impl From<AppImageError> for FirmwareError {
    fn from(e: AppImageError) -> Self {
        match e {
            AppImageError::WrongChip { expected, found } => FirmwareError::AppImageChipMismatch {
                image: found,
                given: expected,
            },
            AppImageError::AppDescriptorMissing => FirmwareError::MissingAppDescriptor,
            AppImageError::KeyDescriptor(e) => FirmwareError::KeyDescriptor(e),
            e => FirmwareError::AppImage(e),
        }
    }
}
