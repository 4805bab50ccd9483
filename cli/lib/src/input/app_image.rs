//! Checking an app image and reading what it says about itself.

use ota_format::esp::{DigestPolicy, ValidateOptions, find_descriptors, validate};
use ota_format::{ChipId, Version};

use super::{Firmware, FirmwareError};

/// Validates `image` for `chip` (magic, chip id, segments, checksum, appended SHA-256,
/// nothing after it but a Secure Boot V2 signature sector where ESP-IDF puts it) and extracts its app descriptor and trusted-key descriptor.
pub fn inspect(image: Vec<u8>, chip: ChipId) -> Result<Firmware, FirmwareError> {
    let opts = ValidateOptions::default()
        .chip(chip)
        .digest(DigestPolicy::Required);
    let info = validate(&image, opts)?;
    let desc = info.app_descriptor()?;
    let found = find_descriptors(&image)?;
    debug_assert_eq!(found.app, desc);
    let version_text = desc.version().to_owned();
    let version = Version::parse(&version_text)
        .ok_or_else(|| FirmwareError::VersionNotSemver(version_text.clone()))?;
    Ok(Firmware {
        chip: info.chip(),
        version,
        version_text,
        project_name: desc.project_name().to_owned(),
        secure_version: desc.secure_version(),
        trusted_keys: found.trusted_keys,
        info,
        app_image: image,
    })
}
