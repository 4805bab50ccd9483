//! The example firmware the demo ships: either the real ESP32-C3 firmware of
//! `firmware/esp32c3`, built for its target with the demo's key embedded, or a
//! synthesized ESP32-C3 app image (ota-testkit) with the same descriptors a real build has.

use std::path::{Path, PathBuf};
use std::process::Command;

use ota_device_sim::device::Behaviour;
use ota_testkit::{Chip, TestFirmware};

/// What a firmware build produced.
#[derive(Clone, Debug)]
pub enum Build {
    /// An ESP-IDF app image (`--app-image`).
    AppImage(PathBuf),
    /// An ELF (`--elf`).
    Elf(PathBuf),
}

impl Build {
    /// The `ota-sign package` input flag and path.
    pub fn package_args(&self) -> [String; 2] {
        match self {
            Build::AppImage(p) => ["--app-image".into(), p.display().to_string()],
            Build::Elf(p) => ["--elf".into(), p.display().to_string()],
        }
    }
}

/// A synthesized ESP32-C3 app image: app descriptor (project `device_type`, `version`),
/// the trusted-key descriptor, `payload` bytes of firmware-like code and data, and the
/// simulator's behaviour marker when `behaviour` is not normal.
pub fn synthesize(
    device_type: &str,
    version: &str,
    keys: &[[u8; 32]],
    payload: usize,
    behaviour: Behaviour,
) -> Vec<u8> {
    // The same code in every version (a release changes its version string and, for the
    // broken one, a marker): what deltas are for, and what the demo shows them doing.
    let seed = 0xC3;
    let mut firmware = TestFirmware::new(Chip::Esp32c3)
        .project_name(device_type)
        .version(version)
        .trusted_keys(keys)
        .payload_size(payload)
        .seed(seed);
    if let Some(marker) = behaviour.marker() {
        firmware = firmware.marker(marker);
    }
    firmware.app_image()
}

/// The real firmware crate, if this is a checkout that has it.
pub fn real_firmware_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/esp32c3");
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// Whether the RISC-V target the ESP32-C3 needs is installed.
pub fn riscv_target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "riscv32imc-unknown-none-elf")
        })
}

/// Builds the real ESP32-C3 firmware as `version`, trusting `key_hex`, into its own
/// target directory under `target_root` (kept between runs, so only the first build is
/// slow). Returns the ELF, copied to `out`.
pub fn build_real(
    dir: &Path,
    target_root: &Path,
    device_type: &str,
    version: &str,
    key_hex: &str,
    out: &Path,
) -> Result<PathBuf, String> {
    let target_dir = target_root.join("demo-esp32c3");
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("OTA_TRUSTED_KEYS", key_hex)
        .env("OTA_FW_VERSION", version)
        .env("OTA_DEVICE_TYPE", device_type)
        .env_remove("WIFI_SSID")
        .env_remove("OTA_BASE_URL")
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building firmware/esp32c3 failed ({status})"));
    }
    let elf = target_dir.join("riscv32imc-unknown-none-elf/release/ota-esp32c3");
    std::fs::copy(&elf, out).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesized_images_are_valid_and_carry_their_behaviour() {
        let key = [9u8; 32];
        for behaviour in [Behaviour::Normal, Behaviour::HealthFail] {
            let image = synthesize("demo-sensor", "3.0.0", &[key], 20_000, behaviour);
            ota_format::esp::validate(&image, Default::default()).expect("valid app image");
            assert_eq!(Behaviour::find_in(&image), behaviour);
            let desc = ota_format::esp::find_descriptors(&image).unwrap();
            assert_eq!(desc.app.version(), "3.0.0");
            assert_eq!(desc.app.project_name(), "demo-sensor");
            assert_eq!(desc.trusted_keys.unwrap().keys()[0].public_key, key);
        }
    }
}
