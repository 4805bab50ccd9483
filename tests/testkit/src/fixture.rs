//! The device the agent's tests update (unit tests inside `ota-agent` and its
//! integration tests alike, which is why it lives here and not beside them): an
//! ESP32-C3 `sensor` whose firmware trusts [`SEED`]'s key, and its signed releases
//! ([`release`], with knobs to lie in exactly one place).

use ed25519_dalek::SigningKey;
use ota_format::{ChipId, DeviceType, TrustedKey};

pub use crate::release::{Release, Spec, build as release};
use crate::{Chip, TestFirmware};

/// The seed of the key the device trusts and releases are signed with.
pub const SEED: [u8; 32] = crate::release::SIGNER;
/// The seed of a key the device does not trust.
pub const OTHER_SEED: [u8; 32] = [8; 32];

/// The signing key of `seed`.
pub fn key(seed: [u8; 32]) -> SigningKey {
    crate::release::signing_key(seed)
}

/// The keys the device trusts.
pub fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::new(key(SEED).verifying_key().to_bytes())]
}

/// The device type every release names.
pub fn device_type() -> DeviceType {
    DeviceType::new("sensor").unwrap()
}

/// ESP32-C3.
pub fn chip() -> ChipId {
    ChipId(5)
}

/// The device's app image at `version`, of about `size` bytes, trusting [`SEED`]'s key.
pub fn app_image(version: &str, size: usize) -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .trusted_keys(&[key(SEED).verifying_key().to_bytes()])
        .payload_size(size)
        .seed(size as u64)
        .app_image()
}
