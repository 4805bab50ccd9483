//! Firmware for the tests: synthesized ESP32-C3 app images (ota-testkit), optionally
//! marked to fail in the simulator, and the real ESP32-C3 firmware ELF when it was built.

use std::path::PathBuf;

use ota_testkit::{Chip, TestFirmware};

/// A synthesized ESP32-C3 app image of project `device_type`, `version`, trusting `keys`.
/// `marker` (e.g. `OTA-SIM-BEHAVIOUR:health-fail`) is written into its read-only data.
pub fn app(device_type: &str, version: &str, keys: &[[u8; 32]], marker: Option<&str>) -> Vec<u8> {
    let seed = version
        .bytes()
        .fold(17u64, |s, b| s.wrapping_mul(131).wrapping_add(u64::from(b)));
    let mut firmware = TestFirmware::new(Chip::Esp32c3)
        .project_name(device_type)
        .version(version)
        .trusted_keys(keys)
        .payload_size(48 * 1024)
        .seed(seed);
    if let Some(marker) = marker {
        firmware = firmware.marker(marker);
    }
    firmware.app_image()
}

/// Seed of the published, insecure test key that `scripts/build-firmware.sh` builds the
/// real firmware to trust (firmware/esp32c3/README.md): SHA-256 of this text.
pub const TEST_KEY_TEXT: &str = "ota-sign INSECURE test key; never use in production";

/// The test key as an unencrypted PKCS#8 PEM file, as `ota-sign keygen --no-encrypt` writes.
pub fn test_key_pem() -> String {
    use sha2::{Digest, Sha256};
    let seed: [u8; 32] = Sha256::digest(TEST_KEY_TEXT.as_bytes()).into();
    let pem = ota_keys::PrivateKey::from_seed(&seed)
        .to_pkcs8_pem()
        .expect("an Ed25519 key encodes");
    pem.as_str().to_owned()
}

/// The real ESP32-C3 firmware ELF: `$OTA_ESP32C3_ELF`, else where
/// `scripts/build-firmware.sh` leaves it. `None` when it was not built, except in CI
/// (`CI=true`), where the build runs first and a missing ELF is a failure.
///
/// # Panics
/// In CI, when the ELF is missing.
pub fn real_elf() -> Option<PathBuf> {
    let path = std::env::var_os("OTA_ESP32C3_ELF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
                "../../firmware/esp32c3/target/riscv32imc-unknown-none-elf/release/ota-esp32c3",
            )
        });
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var_os("OTA_REQUIRE_ESP32C3_ELF").is_some();
    assert!(
        !required,
        "the ESP32-C3 firmware ELF is required (CI=true or OTA_REQUIRE_ESP32C3_ELF) but missing at {}: run scripts/build-firmware.sh first",
        path.display()
    );
    eprintln!(
        "note: {} not built (scripts/build-firmware.sh); the real-firmware part is skipped",
        path.display()
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_apps_stay_valid() {
        let image = app(
            "x",
            "1.0.0",
            &[[1; 32]],
            Some("OTA-SIM-BEHAVIOUR:health-fail"),
        );
        ota_format::esp::validate(&image, Default::default()).expect("valid");
    }
}
