//! The chip this build is for, chosen by exactly one cargo feature.

use ota_format::ChipId;

#[cfg(not(any(feature = "esp32c3", feature = "esp32", feature = "esp32s3")))]
compile_error!("enable exactly one chip feature: esp32c3 (default), esp32 or esp32s3");

#[cfg(any(
    all(feature = "esp32c3", feature = "esp32"),
    all(feature = "esp32c3", feature = "esp32s3"),
    all(feature = "esp32", feature = "esp32s3"),
))]
compile_error!(
    "more than one chip feature is enabled; for an Xtensa chip build with --no-default-features"
);

/// The ESP-IDF chip id an image for this build must carry.
#[cfg(feature = "esp32c3")]
pub const ID: ChipId = ChipId::ESP32C3;
#[cfg(feature = "esp32")]
pub const ID: ChipId = ChipId::ESP32;
#[cfg(feature = "esp32s3")]
pub const ID: ChipId = ChipId::ESP32S3;

/// The chip's conventional lower-case name, as `ota-sign` prints it.
#[cfg(feature = "esp32c3")]
pub const NAME: &str = "esp32c3";
#[cfg(feature = "esp32")]
pub const NAME: &str = "esp32";
#[cfg(feature = "esp32s3")]
pub const NAME: &str = "esp32s3";
