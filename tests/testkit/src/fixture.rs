//! Signed releases for the agent's unit tests: a synthetic ESP32-C3 app image (from
//! `ota-testkit`), packaged as an `.ota` image and named by a signed manifest by
//! [`ota_testkit::release`], with knobs to lie in exactly one place.

extern crate std;

use std::vec::Vec;

use ed25519_dalek::SigningKey;
use ota_format::{ChipId, DeviceType, TrustedKey};
pub use ota_testkit::release::{Release, Spec, build as release};
use ota_testkit::{Chip, TestFirmware};

pub const SEED: [u8; 32] = ota_testkit::release::SIGNER;
pub const OTHER_SEED: [u8; 32] = [8; 32];

pub fn key(seed: [u8; 32]) -> SigningKey {
    ota_testkit::release::signing_key(seed)
}

pub fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::new(key(SEED).verifying_key().to_bytes())]
}

pub fn device_type() -> DeviceType {
    DeviceType::new("sensor").unwrap()
}

pub fn chip() -> ChipId {
    ChipId(5)
}

pub fn app_image(version: &str, size: usize) -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .trusted_keys(&[key(SEED).verifying_key().to_bytes()])
        .payload_size(size)
        .seed(size as u64)
        .app_image()
}
