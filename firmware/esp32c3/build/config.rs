//! The firmware's build-time configuration: read from environment variables, checked
//! with the rules of `ota-format` so that a bad value is a build error with a message
//! instead of a device that refuses every update, and turned into Rust constants.
//! `build.rs` includes this file; `firmware/sim/tests/esp32c3_build_config.rs` tests it
//! on the host, since the firmware crate itself only builds for the chip.
//!
//! | variable            | required | meaning                                                      |
//! |---------------------|----------|--------------------------------------------------------------|
//! | `OTA_TRUSTED_KEYS`  | yes*     | comma-separated hex Ed25519 public keys (64 hex chars each)  |
//! | `WIFI_SSID`         | no       | WiFi network; without it the firmware stays offline          |
//! | `WIFI_PASSWORD`     | no       | WPA2 passphrase; empty means an open network                 |
//! | `OTA_DEVICE_TYPE`   | no       | device type the agent accepts, default `ota-esp32c3`         |
//! | `OTA_CHANNEL`       | no       | release channel, default `stable`                            |
//! | `OTA_BASE_URL`      | no       | `http(s)://host/path` holding the manifests; unset = no polling |
//! | `OTA_FW_VERSION`    | no       | semver of this build, default the crate version              |
//! | `OTA_CHECK_INTERVAL_S` | no    | seconds between manifest checks, default 600, min 10         |
//! | `OTA_BOOTLOADER`    | no       | `plain` (espflash's, default) or `rollback` (app rollback on) |
//! | `OTA_BOOT_ATTEMPTS` | no       | boots an unconfirmed image gets before rollback, 1..=10, default 3 |
//! | `OTA_NTP_SERVER`    | no       | SNTP server for the wall clock (manifest expiry), default `pool.ntp.org`; `off` for none |
//! | `OTA_IDENTIFY`      | no       | what requests' `User-Agent` says (ota-agent `identity`): `hashed` (default), `mac` or `off` |
//!
//! (*) Without `OTA_TRUSTED_KEYS` the build falls back to the published, INSECURE test key
//! (its private half is in README.md) and says so on every build and every boot.

use std::fmt::Write as _;

use ota_format::{Channel, DeviceType, MAX_IMAGE_NAME_LEN, MAX_TRUSTED_KEYS, Version};

/// Public half of the test key whose 32-byte seed is
/// SHA-256("ota-sign INSECURE test key; never use in production"), see README.md.
const TEST_PUBLIC_KEY: &str = "6ff1e05de7d0807220aa4e83963a0f42f8e10ad78363ee00cfcd3f1d8d04c0db";

/// The app descriptor stores the version in 32 bytes, NUL-terminated.
const APP_DESC_VERSION_MAX: usize = 31;
const DEFAULT_CHECK_INTERVAL_S: u32 = 600;
const MIN_CHECK_INTERVAL_S: u32 = 10;
const DEFAULT_BOOT_ATTEMPTS: u8 = 3;
const MAX_BOOT_ATTEMPTS: u8 = 10;
const DEFAULT_NTP_SERVER: &str = "pool.ntp.org";
const SSID_MAX: usize = 32;
const PASSWORD_MAX: usize = 64;
/// ota-agent's `MAX_URL_LEN`: the buffer image URLs are built in.
const IMAGE_URL_MAX: usize = 512;

/// The variables read (besides cargo's `CARGO_PKG_VERSION`); changing one rebuilds.
pub const VARIABLES: [&str; 12] = [
    "OTA_TRUSTED_KEYS",
    "WIFI_SSID",
    "WIFI_PASSWORD",
    "OTA_DEVICE_TYPE",
    "OTA_CHANNEL",
    "OTA_BASE_URL",
    "OTA_FW_VERSION",
    "OTA_CHECK_INTERVAL_S",
    "OTA_BOOTLOADER",
    "OTA_BOOT_ATTEMPTS",
    "OTA_NTP_SERVER",
    "OTA_IDENTIFY",
];

/// A checked configuration.
pub struct Config {
    keys: Vec<[u8; 32]>,
    test_key: bool,
    ssid: String,
    password: String,
    device_type: String,
    channel: String,
    base_url: Option<String>,
    version: String,
    check_interval_s: u32,
    rollback_bootloader: bool,
    boot_attempts: u8,
    ntp_server: Option<String>,
    /// The `ota_agent::identity::Identify` variant.
    identify: &'static str,
    /// What the build should warn about (test key, offline, no polling).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and checks the configuration; `var` answers a variable's value, `None` when it
    /// is unset or blank.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut warnings = Vec::new();

        let (keys, test_key) = match var("OTA_TRUSTED_KEYS") {
            Some(list) => (parse_keys(&list)?, false),
            None => {
                warnings.push(
                    "OTA_TRUSTED_KEYS is not set: embedding the PUBLISHED INSECURE TEST KEY. \
                     Anyone can sign firmware this build accepts. Never ship this build."
                        .into(),
                );
                (vec![parse_key(TEST_PUBLIC_KEY)?], true)
            }
        };

        let ssid = var("WIFI_SSID").unwrap_or_default();
        if ssid.len() > SSID_MAX {
            return Err(format!(
                "WIFI_SSID is {} bytes, at most {SSID_MAX}",
                ssid.len()
            ));
        }
        if ssid.is_empty() {
            warnings.push("WIFI_SSID is not set: the firmware will stay offline".into());
        }
        let password = var("WIFI_PASSWORD").unwrap_or_default();
        if password.len() > PASSWORD_MAX {
            return Err(format!(
                "WIFI_PASSWORD is {} bytes, at most {PASSWORD_MAX}",
                password.len()
            ));
        }
        if !password.is_empty() && password.len() < 8 {
            return Err("WIFI_PASSWORD must be empty (open network) or 8..=64 bytes".into());
        }

        let device_type = var("OTA_DEVICE_TYPE").unwrap_or_else(|| "ota-esp32c3".into());
        if DeviceType::new(&device_type).is_none() {
            return Err(format!(
                "OTA_DEVICE_TYPE {device_type:?} is not a device type: \
                 1..=32 chars of [a-z0-9_-], starting with [a-z0-9]"
            ));
        }
        let channel = var("OTA_CHANNEL").unwrap_or_else(|| "stable".into());
        if Channel::new(&channel).is_none() {
            return Err(format!(
                "OTA_CHANNEL {channel:?} is not a channel: \
                 1..=16 chars of [a-z0-9_-], starting with [a-z0-9]"
            ));
        }

        let base_url = var("OTA_BASE_URL").map(|url| url.trim_end_matches('/').to_owned());
        match &base_url {
            Some(url) if !url.starts_with("http://") && !url.starts_with("https://") => {
                return Err(format!(
                    "OTA_BASE_URL {url:?} must start with http:// or https://"
                ));
            }
            // The agent builds image URLs (this directory + a name of up to
            // MAX_IMAGE_NAME_LEN bytes) in a 512-byte buffer (ota-agent's MAX_URL_LEN).
            Some(url) if url.len() + 1 + MAX_IMAGE_NAME_LEN > IMAGE_URL_MAX => {
                return Err(format!(
                    "OTA_BASE_URL is {} bytes; at most {} leave room for image names",
                    url.len(),
                    IMAGE_URL_MAX - 1 - MAX_IMAGE_NAME_LEN
                ));
            }
            Some(_) => {}
            None => warnings.push("OTA_BASE_URL is not set: the update agent will not poll".into()),
        }

        let version = var("OTA_FW_VERSION")
            .or_else(|| var("CARGO_PKG_VERSION"))
            .ok_or("CARGO_PKG_VERSION is not set (cargo sets it)")?;
        if Version::parse(&version).is_none() {
            return Err(format!(
                "OTA_FW_VERSION {version:?} is not a semantic version"
            ));
        }
        if version.len() > APP_DESC_VERSION_MAX {
            return Err(format!(
                "OTA_FW_VERSION {version:?} does not fit the app descriptor ({APP_DESC_VERSION_MAX} bytes)"
            ));
        }

        let check_interval_s = match var("OTA_CHECK_INTERVAL_S") {
            None => DEFAULT_CHECK_INTERVAL_S,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n >= MIN_CHECK_INTERVAL_S => n,
                _ => {
                    return Err(format!(
                        "OTA_CHECK_INTERVAL_S {s:?} must be a whole number of seconds >= {MIN_CHECK_INTERVAL_S}"
                    ));
                }
            },
        };

        // A wrong answer here is not a build error the compiler could catch: with
        // `rollback` on a bootloader without app rollback, nobody would count boots.
        let rollback_bootloader = match var("OTA_BOOTLOADER").as_deref() {
            None | Some("plain") => false,
            Some("rollback") => true,
            Some(other) => {
                return Err(format!(
                    "OTA_BOOTLOADER {other:?} must be `plain` (a bootloader without app \
                     rollback, as espflash installs) or `rollback` (ESP-IDF's \
                     CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE)"
                ));
            }
        };
        let boot_attempts = match var("OTA_BOOT_ATTEMPTS") {
            None => DEFAULT_BOOT_ATTEMPTS,
            Some(s) => match s.parse::<u8>() {
                Ok(n) if (1..=MAX_BOOT_ATTEMPTS).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "OTA_BOOT_ATTEMPTS {s:?} must be a whole number from 1 to {MAX_BOOT_ATTEMPTS}"
                    ));
                }
            },
        };

        let ntp_server = match var("OTA_NTP_SERVER").as_deref() {
            None => Some(DEFAULT_NTP_SERVER.to_owned()),
            Some("off") => {
                warnings.push(
                    "OTA_NTP_SERVER=off: no wall clock, so manifest expiry is not enforced".into(),
                );
                None
            }
            Some(host) if is_host_name(host) => Some(host.to_owned()),
            Some(other) => {
                return Err(format!(
                    "OTA_NTP_SERVER {other:?} is not a host name (letters, digits, '-' and '.', \
                     at most 253 bytes), nor `off`"
                ));
            }
        };

        // What every request tells the host's access log (SECURITY.md).
        let identify = match var("OTA_IDENTIFY").as_deref() {
            None | Some("hashed") => "HashedId",
            Some("mac") => "PlainId",
            Some("off") => "Off",
            Some(other) => {
                return Err(format!(
                    "OTA_IDENTIFY {other:?} must be `hashed` (a hash of the MAC address, the \
                     default), `mac` (the MAC address itself) or `off` (no device details)"
                ));
            }
        };

        Ok(Config {
            identify,
            keys,
            test_key,
            ssid,
            password,
            device_type,
            channel,
            base_url,
            version,
            check_interval_s,
            rollback_bootloader,
            boot_attempts,
            ntp_server,
            warnings,
        })
    }

    /// The Rust source of `build_config.rs`.
    pub fn to_rust(&self) -> String {
        let mut s = String::from("// Generated by build.rs from the build environment.\n");
        let _ = writeln!(s, "pub const FIRMWARE_VERSION: &str = {:?};", self.version);
        let _ = writeln!(s, "pub const DEVICE_TYPE: &str = {:?};", self.device_type);
        let _ = writeln!(s, "pub const CHANNEL: &str = {:?};", self.channel);
        let _ = writeln!(s, "pub const WIFI_SSID: &str = {:?};", self.ssid);
        let _ = writeln!(s, "pub const WIFI_PASSWORD: &str = {:?};", self.password);
        // The agent resolves image names against this URL, never against redirect targets.
        let manifest_url = self
            .base_url
            .as_ref()
            .map(|base| format!("{base}/{}.{}.manifest", self.device_type, self.channel));
        let _ = writeln!(
            s,
            "pub const MANIFEST_URL: Option<&str> = {manifest_url:?};"
        );
        let _ = writeln!(
            s,
            "pub const CHECK_INTERVAL_S: u32 = {};",
            self.check_interval_s
        );
        let _ = writeln!(
            s,
            "pub const ROLLBACK_BOOTLOADER: bool = {};",
            self.rollback_bootloader
        );
        let _ = writeln!(s, "pub const BOOT_ATTEMPTS: u8 = {};", self.boot_attempts);
        let _ = writeln!(
            s,
            "pub const NTP_SERVER: Option<&str> = {:?};",
            self.ntp_server
        );
        let _ = writeln!(
            s,
            "pub const IDENTIFY: ota_agent::identity::Identify = ota_agent::identity::Identify::{};",
            self.identify
        );
        let _ = writeln!(
            s,
            "pub const TRUSTED_KEYS_ARE_TEST_KEY: bool = {};",
            self.test_key
        );
        let _ = writeln!(
            s,
            "pub const TRUSTED_KEYS: [[u8; 32]; {}] = [",
            self.keys.len()
        );
        for key in &self.keys {
            let _ = writeln!(s, "    {key:?},");
        }
        s.push_str("];\n");
        s
    }
}

fn parse_keys(list: &str) -> Result<Vec<[u8; 32]>, String> {
    let mut keys = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("OTA_TRUSTED_KEYS has an empty entry".into());
        }
        let key = parse_key(item)?;
        if keys.contains(&key) {
            return Err(format!("OTA_TRUSTED_KEYS lists {item} twice"));
        }
        keys.push(key);
    }
    if keys.len() > MAX_TRUSTED_KEYS {
        return Err(format!(
            "OTA_TRUSTED_KEYS has {} keys, a firmware trusts at most {MAX_TRUSTED_KEYS}",
            keys.len()
        ));
    }
    Ok(keys)
}

fn parse_key(hex: &str) -> Result<[u8; 32], String> {
    if !hex.is_ascii() || hex.len() != 64 {
        return Err(format!(
            "trusted key {hex:?} is {} chars; a raw Ed25519 public key is 64 hex chars",
            hex.len()
        ));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("trusted key {hex:?} is not hex"))?;
    }
    Ok(key)
}

/// A DNS name or IPv4 address as the device's resolver takes it.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
