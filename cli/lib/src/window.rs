//! The zstd window each device type decodes: an image whose frames need a larger window
//! verifies, yet can never install on those devices.

use std::collections::BTreeMap;

/// Window log a device type's agents accept when nothing else is configured: what the
/// shipped firmware (`firmware/esp32c3`) configures, the agent's default.
pub const DEFAULT_MAX_WINDOW_LOG: u8 = ota_agent::agent::DEFAULT_WINDOW_LOG;

/// The largest window log of each device type that has its own (`max_window_log` of
/// `[device.NAME]` in ota-sign.toml); the others get [`DEFAULT_MAX_WINDOW_LOG`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowLimits(BTreeMap<String, u8>);

impl WindowLimits {
    /// Limits of the device types named in `limits`.
    pub fn new(limits: BTreeMap<String, u8>) -> Self {
        WindowLimits(limits)
    }

    /// The limit for `device_type`, else [`DEFAULT_MAX_WINDOW_LOG`].
    pub fn for_device_type(&self, device_type: &str) -> u8 {
        self.0
            .get(device_type)
            .copied()
            .unwrap_or(DEFAULT_MAX_WINDOW_LOG)
    }
}

/// The zstd window log a header declares (`None`: stored payload).
pub fn declared_window_log(compression: ota_format::Compression) -> Option<u8> {
    compression.window_log()
}
