//! Firmware input for `package` and `flash`: an ELF turned into an ESP-IDF app image with
//! espflash, or an app image checked as the bootloader would; then what the firmware says
//! about itself (app descriptor, trusted keys). [`load`] is the one entry for a file.
//!
//! Data flow: ELF --[`elf::to_app_image`]--> app image --[`app_image::inspect`]--> [`Firmware`].

mod app_image;
mod elf;
mod error;

#[cfg(test)]
mod tests;

use ota_format::esp::AppImageInfo;
use ota_format::{ChipId, TrustedKeyDescriptor, Version};

pub use app_image::inspect;
pub use elf::{ElfOptions, detect_elf_chips, to_app_image};
pub use error::FirmwareError;

/// A firmware ready to be packaged: a valid app image and what it says about itself.
#[derive(Clone, Debug)]
pub struct Firmware {
    /// The ESP-IDF app image a device installs (checksum and SHA-256 valid).
    pub app_image: Vec<u8>,
    /// What the validator found in it.
    pub info: AppImageInfo,
    /// The chip it is built for.
    pub chip: ChipId,
    /// The version from the app descriptor, parsed as semver.
    pub version: Version,
    /// The version string exactly as in the app descriptor.
    pub version_text: String,
    /// The project name from the app descriptor.
    pub project_name: String,
    /// ESP-IDF secure version from the app descriptor.
    pub secure_version: u32,
    /// The keys the firmware trusts; `None` when it carries no descriptor.
    pub trusted_keys: Option<TrustedKeyDescriptor>,
}

/// What a firmware file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// The ELF a build produced.
    Elf,
    /// A finished ESP-IDF app image.
    AppImage,
}

/// Loads a firmware file. An ELF is converted for `chip`, which it needs
/// ([`FirmwareError::ChipRequired`] lists the chips it fits); an app image is checked for
/// `chip`, or without one for the chip its header names.
pub fn load(
    bytes: Vec<u8>,
    kind: InputKind,
    chip: Option<ChipId>,
    elf: &ElfOptions,
) -> Result<Firmware, FirmwareError> {
    match kind {
        InputKind::Elf => {
            let Some(chip) = chip else {
                return Err(FirmwareError::ChipRequired {
                    candidates: detect_elf_chips(&bytes).unwrap_or_default(),
                });
            };
            load_elf(&bytes, chip, elf)
        }
        InputKind::AppImage => {
            let chip = match chip {
                Some(chip) => chip,
                None => app_image_chip(&bytes)?,
            };
            load_app_image(bytes, chip)
        }
    }
}

/// The chip an app image's header names.
pub fn app_image_chip(bytes: &[u8]) -> Result<ChipId, FirmwareError> {
    let header: &[u8; ota_format::esp::IMAGE_HEADER_LEN] = bytes
        .get(..ota_format::esp::IMAGE_HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(FirmwareError::AppImage(
            ota_format::esp::AppImageError::Truncated,
        ))?;
    Ok(ota_format::esp::ImageHeader::decode(header).chip_id)
}

/// Loads an ELF built for `chip` and converts it to an app image.
pub fn load_elf(elf: &[u8], chip: ChipId, opts: &ElfOptions) -> Result<Firmware, FirmwareError> {
    let image = to_app_image(elf, chip, opts)?;
    inspect(image, chip)
}

/// Loads an app image that must be built for `chip`.
pub fn load_app_image(image: Vec<u8>, chip: ChipId) -> Result<Firmware, FirmwareError> {
    inspect(image, chip)
}
