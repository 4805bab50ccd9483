//! Firmware input for `ota-sign package`: an ELF turned into an ESP-IDF app image with
//! espflash, or an app image checked as the bootloader would; then what the firmware says
//! about itself (app descriptor, trusted keys).
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

/// Loads an ELF built for `chip` and converts it to an app image.
pub fn load_elf(elf: &[u8], chip: ChipId, opts: &ElfOptions) -> Result<Firmware, FirmwareError> {
    let image = to_app_image(elf, chip, opts)?;
    inspect(image, chip)
}

/// Loads an app image that must be built for `chip`.
pub fn load_app_image(image: Vec<u8>, chip: ChipId) -> Result<Firmware, FirmwareError> {
    inspect(image, chip)
}
