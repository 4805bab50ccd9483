//! What the devices of each type decode, from `[device.NAME]` of ota-sign.toml: the
//! agent generation their fleet runs and the zstd window of method 1. An image that
//! verifies can still never install on devices whose agent does not decode it.

use std::collections::BTreeMap;

use ota_format::Compression;

/// Window log a device type's agents accept when nothing else is configured: what the
/// shipped firmware (`firmware/esp32c3`) configures, the agent's default.
pub const DEFAULT_MAX_WINDOW_LOG: u8 = ota_agent::agent::DEFAULT_WINDOW_LOG;

/// Which update agent a device type's fleet runs: what compression it decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentGeneration {
    /// The agent with its zstd window in RAM (ruzstd): methods 0 and 1 only, a window of
    /// at most `max_window_log`.
    One,
    /// The agent whose zstd window lives in flash: methods 0, 1 and 2, and deltas.
    Two,
}

impl AgentGeneration {
    /// What a device type gets when its table does not say: the current agent.
    pub const DEFAULT: AgentGeneration = AgentGeneration::Two;

    /// The generation numbered `n` in ota-sign.toml and on the command line.
    pub fn from_number(n: i64) -> Option<AgentGeneration> {
        match n {
            1 => Some(AgentGeneration::One),
            2 => Some(AgentGeneration::Two),
            _ => None,
        }
    }

    /// Its number in ota-sign.toml and on the command line.
    pub fn number(self) -> u8 {
        match self {
            AgentGeneration::One => 1,
            AgentGeneration::Two => 2,
        }
    }

    /// Whether its agents decode payloads compressed with `compression` (the window
    /// limit of method 1 is checked separately, by decoding).
    pub fn decodes(self, compression: Compression) -> bool {
        match compression {
            Compression::None | Compression::Zstd { .. } => true,
            Compression::ZstdFlashWindow { .. } => self == AgentGeneration::Two,
        }
    }
}

impl std::fmt::Display for AgentGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// Which payload encoding a delta is made in ([`crate::delta::make_with`];
/// `delta_encoding` of a device type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodingChoice {
    /// Both, keeping the smaller (ties go to patch-from, the cheaper one to install).
    #[default]
    Auto,
    /// Encoding 2: zstd with the base as raw prefix (`zstd --patch-from`).
    PatchFrom,
    /// Encoding 3: the difference stream (bsdiff-style, RISC-V address pairs normalised).
    Difference,
}

impl EncodingChoice {
    /// The choice named as `--encoding` and `delta_encoding` spell it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(EncodingChoice::Auto),
            "patch-from" => Some(EncodingChoice::PatchFrom),
            "difference" => Some(EncodingChoice::Difference),
            _ => None,
        }
    }
}

/// The settings of one device type (`[device.NAME]` of ota-sign.toml) that decide what
/// its devices can install; `None`: not configured, the default applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceSettings {
    /// Largest zstd window log of method 1 its agents accept (`max_window_log`).
    pub max_window_log: Option<u8>,
    /// The agent generation its fleet runs (`agent_generation`).
    pub agent_generation: Option<AgentGeneration>,
    /// How many earlier releases of a channel `release` makes deltas from (`deltas`).
    pub deltas: Option<u32>,
    /// Which payload encoding its deltas use (`delta_encoding`).
    pub delta_encoding: Option<EncodingChoice>,
}

impl DeviceSettings {
    /// `max_window_log`, else [`DEFAULT_MAX_WINDOW_LOG`].
    pub fn max_window_log(&self) -> u8 {
        self.max_window_log.unwrap_or(DEFAULT_MAX_WINDOW_LOG)
    }

    /// `agent_generation`, else [`AgentGeneration::DEFAULT`].
    pub fn agent_generation(&self) -> AgentGeneration {
        self.agent_generation.unwrap_or(AgentGeneration::DEFAULT)
    }
}

/// The [`DeviceSettings`] of every configured device type, detached from the file (a
/// `release` carries them for all the images it checks); other types get the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetSettings(BTreeMap<String, DeviceSettings>);

impl FleetSettings {
    /// Settings of the device types named in `devices`.
    pub fn new(devices: BTreeMap<String, DeviceSettings>) -> Self {
        FleetSettings(devices)
    }

    /// The settings of `device_type` (all defaults when it has no table).
    pub fn for_device_type(&self, device_type: &str) -> DeviceSettings {
        self.0.get(device_type).copied().unwrap_or_default()
    }

    /// The method-1 window limit of `device_type`.
    pub fn max_window_log(&self, device_type: &str) -> u8 {
        self.for_device_type(device_type).max_window_log()
    }
}

/// The zstd window log a header declares (`None`: stored payload).
pub fn declared_window_log(compression: Compression) -> Option<u8> {
    compression.window_log()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_one_decodes_methods_0_and_1_only() {
        let one = AgentGeneration::One;
        assert!(one.decodes(Compression::None));
        assert!(one.decodes(Compression::Zstd { window_log: 12 }));
        assert!(!one.decodes(Compression::ZstdFlashWindow { window_log: 20 }));
        assert!(AgentGeneration::Two.decodes(Compression::ZstdFlashWindow { window_log: 20 }));
    }

    #[test]
    fn numbers_round_trip_and_others_are_refused() {
        for g in [AgentGeneration::One, AgentGeneration::Two] {
            assert_eq!(AgentGeneration::from_number(g.number().into()), Some(g));
        }
        for n in [0, 3, -1, 256] {
            assert_eq!(AgentGeneration::from_number(n), None);
        }
    }

    #[test]
    fn unconfigured_device_types_get_the_defaults() {
        let mut m = BTreeMap::new();
        m.insert(
            "a".to_owned(),
            DeviceSettings {
                max_window_log: Some(14),
                agent_generation: Some(AgentGeneration::One),
                deltas: None,
                delta_encoding: None,
            },
        );
        let f = FleetSettings::new(m);
        assert_eq!(f.max_window_log("a"), 14);
        assert_eq!(
            f.for_device_type("a").agent_generation(),
            AgentGeneration::One
        );
        assert_eq!(f.max_window_log("b"), DEFAULT_MAX_WINDOW_LOG);
        assert_eq!(f.for_device_type("b").agent_generation, None);
        assert_eq!(
            f.for_device_type("b").agent_generation(),
            AgentGeneration::Two
        );
    }
}
