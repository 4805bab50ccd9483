//! `ota-sign.toml`: project defaults and device types, so that day-to-day commands need
//! few flags.
//!
//! The file is found by walking up from the current directory (like `Cargo.toml`), or
//! given with `--config` / `OTA_SIGN_CONFIG`. Paths inside it are relative to the file's
//! own directory. Every value can be overridden: a flag wins over the environment, the
//! environment over the file ([`resolve`]). Unknown keys are errors, so a typo does not
//! silently fall back to a default. See `examples/ota-sign.toml`.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use ota_format::{Channel, ChipId, DeviceType};
use ota_keys::PublicKey;
use serde::Deserialize;
use toml::Spanned;

use ota_sign_lib::devices::{AgentGeneration, DeviceSettings, FleetSettings};

use crate::exit::{ExitStatus, IO, USAGE};

/// The file name searched for.
pub const FILE_NAME: &str = "ota-sign.toml";
/// Environment variable naming the configuration file explicitly.
pub const CONFIG_ENV: &str = "OTA_SIGN_CONFIG";
/// Environment variable for the default channel.
#[allow(
    dead_code,
    reason = "for `publish` (channel) and trusted-key checks, which land separately"
)]
pub const CHANNEL_ENV: &str = "OTA_SIGN_CHANNEL";
/// Environment variable for the default device type.
pub const DEVICE_TYPE_ENV: &str = "OTA_SIGN_DEVICE_TYPE";

/// The value from the first source that has one: flag, then environment, then file.
pub fn resolve<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(env).or(file)
}

/// A parsed and checked configuration file.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[defaults]`.
    pub defaults: Defaults,
    /// `[device.<name>]` tables by name.
    pub devices: BTreeMap<String, Device>,
}

/// `[defaults]`: values used when neither a flag nor the environment gives one.
#[derive(Debug, Default)]
pub struct Defaults {
    /// Signing key file (resolved against the file's directory).
    pub key: Option<PathBuf>,
    /// Release channel.
    #[allow(
        dead_code,
        reason = "for `publish` (channel) and trusted-key checks, which land separately"
    )]
    pub channel: Option<Channel>,
    /// Device type.
    pub device_type: Option<DeviceType>,
}

/// `[device.<name>]`: what ota-sign knows about one device type.
#[derive(Debug)]
pub struct Device {
    /// The device type (the table's name).
    #[allow(
        dead_code,
        reason = "for `publish` (channel) and trusted-key checks, which land separately"
    )]
    pub name: DeviceType,
    /// The chip the firmware runs on.
    pub chip: Option<ChipId>,
    /// Size of one OTA app slot in bytes; images larger than this are refused.
    pub slot_size: Option<u32>,
    /// ESP-IDF partition table (CSV or binary) for `flash` (resolved against the file's
    /// directory).
    pub partition_table: Option<PathBuf>,
    /// Keys the fleet's firmware is expected to trust.
    pub trusted_keys: Vec<TrustedKeySpec>,
    /// What this device type's agents decode: `agent_generation` and `max_window_log`
    /// (their `AgentConfig::max_window_log`); see [`device_settings`].
    pub settings: DeviceSettings,
    /// Secure Boot V2 key (RSA 3072 or ECDSA P-256 PEM, private to sign, public to check)
    /// of the device type (resolved against the file's directory).
    pub secure_boot_key: Option<PathBuf>,
}

/// One entry of `trusted_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedKeySpec {
    /// A public- or private-key file (resolved against the file's directory).
    File(PathBuf),
    /// A raw public key given as 64 hex digits.
    Hex(PublicKey),
}

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}", path.display())]
    #[diagnostic(code(ota_sign::config::io))]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad value; `line` and `column` are 1-based.
    #[error("{}:{line}:{column}: {message}", path.display())]
    #[diagnostic(
        code(ota_sign::config::invalid),
        help("see examples/ota-sign.toml for every key")
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the offending value.
        line: usize,
        /// Column of the offending value.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value from the environment is invalid.
    #[error("${var}: {message}")]
    #[diagnostic(code(ota_sign::config::env))]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ExitStatus for ConfigError {
    fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Io { .. } => IO,
            ConfigError::Invalid { .. } | ConfigError::Env { .. } => USAGE,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    device: BTreeMap<String, Spanned<RawDevice>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    key: Option<Spanned<String>>,
    channel: Option<Spanned<String>>,
    device_type: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    chip: Option<Spanned<String>>,
    slot_size: Option<Spanned<SlotSize>>,
    partition_table: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
    max_window_log: Option<Spanned<i64>>,
    agent_generation: Option<Spanned<i64>>,
    deltas: Option<Spanned<i64>>,
    delta_encoding: Option<Spanned<String>>,
    secure_boot_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SlotSize {
    Bytes(i64),
    Text(String),
}

impl Config {
    /// Finds and reads the configuration: `explicit` (from `--config` or
    /// [`CONFIG_ENV`]) must exist; otherwise [`FILE_NAME`] is looked for in `start` and
    /// its ancestors, and `None` means there is none.
    pub fn discover(explicit: Option<&Path>, start: &Path) -> Result<Option<Config>, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path).map(Some);
        }
        for dir in start.ancestors() {
            let candidate = dir.join(FILE_NAME);
            if candidate.is_file() {
                return Config::load(&candidate).map(Some);
            }
        }
        Ok(None)
    }

    /// Reads and checks one file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (which anchors relative paths and names the
    /// file in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_col(text, span.map_or(0, |s| s.start));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));

        let defaults = Defaults {
            key: raw.defaults.key.map(|k| base.join(k.into_inner())),
            channel: field(raw.defaults.channel, "defaults.channel", &at, |c| {
                parse_channel(c)
            })?,
            device_type: field(raw.defaults.device_type, "defaults.device_type", &at, |d| {
                parse_device_type(d)
            })?,
        };

        let mut devices = BTreeMap::new();
        for (name, raw_device) in raw.device {
            let table_span = raw_device.span();
            let raw_device = raw_device.into_inner();
            let device_type = parse_device_type(&name)
                .map_err(|m| at(Some(table_span.clone()), format!("[device.{name}]: {m}")))?;
            let chip = field(raw_device.chip, &format!("device.{name}.chip"), &at, |c| {
                ChipId::from_name(c)
                    .ok_or_else(|| format!("unknown chip {c:?}; known: {}", known_chips()))
            })?;
            let slot_size = field(
                raw_device.slot_size,
                &format!("device.{name}.slot_size"),
                &at,
                parse_slot_size,
            )?;
            let max_window_log = field(
                raw_device.max_window_log,
                &format!("device.{name}.max_window_log"),
                &at,
                |w| parse_max_window_log(*w),
            )?;
            let agent_generation = field(
                raw_device.agent_generation,
                &format!("device.{name}.agent_generation"),
                &at,
                |g| parse_agent_generation(*g),
            )?;
            let deltas = field(
                raw_device.deltas,
                &format!("device.{name}.deltas"),
                &at,
                |n| {
                    u32::try_from(*n)
                        .ok()
                        .filter(|n| *n <= 16)
                        .ok_or_else(|| format!("{n} is outside 0..=16 (0: no deltas)"))
                },
            )?;
            let delta_encoding = field(
                raw_device.delta_encoding,
                &format!("device.{name}.delta_encoding"),
                &at,
                |e| {
                    ota_sign_lib::delta::EncodingChoice::from_name(e).ok_or_else(|| {
                        format!("{e:?} is not an encoding: auto, difference or patch-from")
                    })
                },
            )?;
            let mut trusted_keys = Vec::new();
            for spec in raw_device.trusted_keys {
                let value = spec.get_ref();
                let looks_hex = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
                trusted_keys.push(if looks_hex {
                    TrustedKeySpec::Hex(PublicKey::from_hex(value).map_err(|e| {
                        at(
                            Some(spec.span()),
                            format!("device.{name}.trusted_keys: {e}"),
                        )
                    })?)
                } else {
                    TrustedKeySpec::File(base.join(value))
                });
            }
            devices.insert(
                name,
                Device {
                    name: device_type,
                    chip,
                    slot_size,
                    partition_table: raw_device.partition_table.map(|p| base.join(p)),
                    trusted_keys,
                    settings: DeviceSettings {
                        max_window_log,
                        agent_generation,
                        deltas,
                        delta_encoding,
                    },
                    secure_boot_key: raw_device.secure_boot_key.map(|p| base.join(p)),
                },
            );
        }
        Ok(Config {
            path: path.to_path_buf(),
            defaults,
            devices,
        })
    }

    /// The `[device.<name>]` table for a device type, if any.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.get(name)
    }
}

/// The channel: `flag`, else [`CHANNEL_ENV`], else `[defaults] channel`.
#[allow(
    dead_code,
    reason = "for `publish` (channel) and trusted-key checks, which land separately"
)]
pub fn channel(
    flag: Option<Channel>,
    config: Option<&Config>,
) -> Result<Option<Channel>, ConfigError> {
    let env = env_value(CHANNEL_ENV, parse_channel)?;
    Ok(resolve(flag, env, config.and_then(|c| c.defaults.channel)))
}

/// The device type: `flag`, else [`DEVICE_TYPE_ENV`], else `[defaults] device_type`.
pub fn device_type(
    flag: Option<DeviceType>,
    config: Option<&Config>,
) -> Result<Option<DeviceType>, ConfigError> {
    let env = env_value(DEVICE_TYPE_ENV, parse_device_type)?;
    Ok(resolve(
        flag,
        env,
        config.and_then(|c| c.defaults.device_type),
    ))
}

fn env_value<T>(
    var: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    match std::env::var(var) {
        Ok(v) => parse(&v)
            .map(Some)
            .map_err(|message| ConfigError::Env { var, message }),
        Err(_) => Ok(None),
    }
}

/// Checks a channel name (also usable as a clap value parser).
pub fn parse_channel(s: &str) -> Result<Channel, String> {
    Channel::new(s).ok_or_else(|| {
        format!("{s:?} is not a channel name (1-16 characters of a-z 0-9 - _, starting with a letter or digit)")
    })
}

/// Checks a device-type name (also usable as a clap value parser).
pub fn parse_device_type(s: &str) -> Result<DeviceType, String> {
    DeviceType::new(s).ok_or_else(|| {
        format!("{s:?} is not a device type (1-32 characters of a-z 0-9 - _, starting with a letter or digit)")
    })
}

fn known_chips() -> String {
    ChipId::known()
        .map(|(_, n)| n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_slot_size(s: &SlotSize) -> Result<u32, String> {
    let bytes: u64 = match s {
        SlotSize::Bytes(n) => u64::try_from(*n).map_err(|_| "must be positive".to_owned())?,
        SlotSize::Text(t) => {
            let t = t.trim();
            let (digits, unit) = if let Some(d) = t.strip_suffix(['K', 'k']) {
                (d, 1024)
            } else if let Some(d) = t.strip_suffix(['M', 'm']) {
                (d, 1024 * 1024)
            } else {
                (t, 1)
            };
            let n = match digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => digits.parse::<u64>(),
            }
            .map_err(|_| {
                format!("{t:?} is not a size (e.g. 2031616, \"0x1f0000\", \"1984K\", \"2M\")")
            })?;
            n.checked_mul(unit).ok_or("too large")?
        }
    };
    if bytes == 0 || !bytes.is_multiple_of(4096) {
        return Err(format!(
            "{bytes} is not a positive multiple of the 4 KiB flash sector"
        ));
    }
    u32::try_from(bytes).map_err(|_| format!("{bytes} bytes is larger than any ESP32 flash"))
}

/// What every configured device type decodes, detached from the file (a `release`
/// carries it for all the images it checks); empty without a file.
pub fn device_settings(config: Option<&Config>) -> FleetSettings {
    FleetSettings::new(
        config
            .map(|c| {
                c.devices
                    .iter()
                    .map(|(name, d)| (name.clone(), d.settings))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// The optional value of `key`, parsed; a refusal names the key and points at the value.
fn field<V, T>(
    value: Option<Spanned<V>>,
    key: &str,
    at: &dyn Fn(Option<Range<usize>>, String) -> ConfigError,
    parse: impl Fn(&V) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    value
        .map(|v| parse(v.get_ref()).map_err(|m| at(Some(v.span()), format!("{key}: {m}"))))
        .transpose()
}

fn parse_max_window_log(n: i64) -> Result<u8, String> {
    let max = ota_agent::agent::MAX_WINDOW_LOG;
    u8::try_from(n)
        .ok()
        .filter(|n| (10..=max).contains(n))
        .ok_or_else(|| format!("{n} is outside 10..={max}: no agent decodes a larger window"))
}

fn parse_agent_generation(n: i64) -> Result<AgentGeneration, String> {
    AgentGeneration::from_number(n).ok_or_else(|| {
        format!(
            "{n} is not an agent generation: 1 (agents that decode zstd with the window in RAM, \
             methods 0 and 1) or 2 (window in flash, methods 0-2 and deltas)"
        )
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
