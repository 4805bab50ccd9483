//! The ESP32-C3 firmware's build-time configuration (`firmware/esp32c3/build/config.rs`),
//! tested on the host: the firmware crate only builds for the chip, and a value its
//! build script lets through would ship in every device built with it.

#[allow(dead_code)]
#[path = "../../esp32c3/build/config.rs"]
mod config;

use std::collections::HashMap;

use config::Config;

const KEY_A: &str = "6ff1e05de7d0807220aa4e83963a0f42f8e10ad78363ee00cfcd3f1d8d04c0db";
const KEY_B: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn configure(vars: &[(&str, &str)]) -> Result<Config, String> {
    let mut map: HashMap<&str, String> = HashMap::from([("CARGO_PKG_VERSION", "0.1.0".into())]);
    for (k, v) in vars {
        map.insert(k, v.to_string());
    }
    Config::from_vars(|name| map.get(name).cloned())
}

fn rust_of(vars: &[(&str, &str)]) -> String {
    configure(vars).unwrap().to_rust()
}

#[test]
fn a_full_configuration_becomes_these_constants() {
    let rust = rust_of(&[
        ("OTA_TRUSTED_KEYS", &format!("{KEY_A}, {KEY_B}")),
        ("WIFI_SSID", "lab"),
        ("WIFI_PASSWORD", "password123"),
        ("OTA_DEVICE_TYPE", "thermostat"),
        ("OTA_CHANNEL", "beta"),
        ("OTA_BASE_URL", "http://updates.example/fleet/"),
        ("OTA_FW_VERSION", "2.1.0-rc.1"),
        ("OTA_CHECK_INTERVAL_S", "60"),
        ("OTA_BOOTLOADER", "rollback"),
        ("OTA_BOOT_ATTEMPTS", "5"),
        ("OTA_NTP_SERVER", "time.example.net"),
    ]);
    for line in [
        "pub const FIRMWARE_VERSION: &str = \"2.1.0-rc.1\";",
        "pub const DEVICE_TYPE: &str = \"thermostat\";",
        "pub const CHANNEL: &str = \"beta\";",
        "pub const WIFI_SSID: &str = \"lab\";",
        // The trailing slash is dropped; the manifest name is device type and channel.
        "pub const MANIFEST_URL: Option<&str> = Some(\"http://updates.example/fleet/thermostat.beta.manifest\");",
        "pub const CHECK_INTERVAL_S: u32 = 60;",
        "pub const ROLLBACK_BOOTLOADER: bool = true;",
        "pub const BOOT_ATTEMPTS: u8 = 5;",
        "pub const NTP_SERVER: Option<&str> = Some(\"time.example.net\");",
        "pub const TRUSTED_KEYS_ARE_TEST_KEY: bool = false;",
        "pub const TRUSTED_KEYS: [[u8; 32]; 2] = [",
    ] {
        assert!(rust.contains(line), "missing {line:?} in\n{rust}");
    }
    // Real keys but offline: the two "not set" warnings, no test-key warning.
    let warnings = configure(&[("OTA_TRUSTED_KEYS", KEY_A)]).unwrap().warnings;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn defaults_are_offline_plain_and_loud_about_the_test_key() {
    let config = configure(&[]).unwrap();
    let rust = config.to_rust();
    for line in [
        "pub const FIRMWARE_VERSION: &str = \"0.1.0\";",
        "pub const DEVICE_TYPE: &str = \"ota-esp32c3\";",
        "pub const CHANNEL: &str = \"stable\";",
        "pub const MANIFEST_URL: Option<&str> = None;",
        "pub const CHECK_INTERVAL_S: u32 = 600;",
        "pub const ROLLBACK_BOOTLOADER: bool = false;",
        "pub const BOOT_ATTEMPTS: u8 = 3;",
        "pub const NTP_SERVER: Option<&str> = Some(\"pool.ntp.org\");",
        "pub const IDENTIFY: ota_agent::identity::Identify = ota_agent::identity::Identify::HashedId;",
        "pub const TRUSTED_KEYS_ARE_TEST_KEY: bool = true;",
        "pub const TRUSTED_KEYS: [[u8; 32]; 1] = [",
    ] {
        assert!(rust.contains(line), "missing {line:?} in\n{rust}");
    }
    let warnings = config.warnings.join("\n");
    for what in [
        "INSECURE TEST KEY",
        "WIFI_SSID is not set",
        "OTA_BASE_URL is not set",
    ] {
        assert!(warnings.contains(what), "{warnings}");
    }
}

#[test]
fn every_bad_value_is_refused_with_the_variable_named() {
    let long_url = format!("http://h/{}", "p".repeat(410));
    let nine_keys: Vec<String> = (0..9).map(|i| format!("{i:064x}")).collect();
    let nine_keys = nine_keys.join(",");
    let cases: &[(&str, &str, &str)] = &[
        ("OTA_TRUSTED_KEYS", "abcd", "64 hex chars"),
        ("OTA_TRUSTED_KEYS", &"zz".repeat(32), "not hex"),
        (
            "OTA_TRUSTED_KEYS",
            &format!("{KEY_A},,{KEY_B}"),
            "empty entry",
        ),
        ("OTA_TRUSTED_KEYS", &format!("{KEY_A},{KEY_A}"), "twice"),
        ("OTA_TRUSTED_KEYS", &nine_keys, "at most 8"),
        ("WIFI_SSID", &"s".repeat(33), "WIFI_SSID"),
        ("WIFI_PASSWORD", "short", "WIFI_PASSWORD"),
        ("WIFI_PASSWORD", &"p".repeat(65), "WIFI_PASSWORD"),
        ("OTA_DEVICE_TYPE", "Thermostat", "OTA_DEVICE_TYPE"),
        ("OTA_CHANNEL", "beta.1", "OTA_CHANNEL"),
        ("OTA_BASE_URL", "ftp://updates.example/fleet", "http://"),
        ("OTA_BASE_URL", &long_url, "OTA_BASE_URL"),
        ("OTA_FW_VERSION", "2.1", "OTA_FW_VERSION"),
        (
            "OTA_FW_VERSION",
            "1.0.0+build.20261125.0123456789abcdef",
            "app descriptor",
        ),
        ("OTA_CHECK_INTERVAL_S", "9", "OTA_CHECK_INTERVAL_S"),
        ("OTA_CHECK_INTERVAL_S", "ten", "OTA_CHECK_INTERVAL_S"),
        ("OTA_BOOTLOADER", "mcuboot", "OTA_BOOTLOADER"),
        ("OTA_BOOT_ATTEMPTS", "0", "OTA_BOOT_ATTEMPTS"),
        ("OTA_BOOT_ATTEMPTS", "11", "OTA_BOOT_ATTEMPTS"),
        ("OTA_NTP_SERVER", "ntp server", "OTA_NTP_SERVER"),
        ("OTA_NTP_SERVER", "-ntp.example", "OTA_NTP_SERVER"),
        ("OTA_NTP_SERVER", "ntp..example", "OTA_NTP_SERVER"),
        ("OTA_IDENTIFY", "plain", "OTA_IDENTIFY"),
    ];
    for (name, value, says) in cases {
        let err = configure(&[(name, value)])
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert!(err.contains(says), "{name}={value}: {err}");
    }
    // No SNTP: no wall clock, said out loud.
    let config = configure(&[("OTA_NTP_SERVER", "off")]).unwrap();
    assert!(
        config
            .to_rust()
            .contains("pub const NTP_SERVER: Option<&str> = None;")
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("expiry is not enforced"))
    );
    // https is spoken (TLS in ota-agent's client).
    let rust = rust_of(&[(
        "OTA_BASE_URL",
        "https://github.com/acme/fw/releases/latest/download",
    )]);
    assert!(rust.contains("Some(\"https://github.com/acme/fw/releases/latest/download/ota-esp32c3.stable.manifest\")"), "{rust}");
    // The longest base URL that leaves room for a 96-byte image name is accepted.
    let longest = format!("http://h/{}", "p".repeat(415 - 9));
    assert!(configure(&[("OTA_BASE_URL", &longest)]).is_ok());
}

#[test]
fn the_identity_token_can_show_the_mac_or_be_turned_off() {
    for (value, variant) in [("mac", "PlainId"), ("off", "Off"), ("hashed", "HashedId")] {
        let rust = rust_of(&[("OTA_IDENTIFY", value)]);
        let line = format!(
            "pub const IDENTIFY: ota_agent::identity::Identify = ota_agent::identity::Identify::{variant};"
        );
        assert!(rust.contains(&line), "OTA_IDENTIFY={value}: {rust}");
    }
}
