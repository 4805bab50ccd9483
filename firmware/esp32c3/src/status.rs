//! What the device reports about itself (R6), shared between the tasks that learn it and
//! the status endpoint that serves it.
//!
//! The state is kept as enums in [`DeviceStatus`]; [`DeviceStatus::to_json`] renders a
//! snapshot. The agent part is the check loop's view for now; `ota-agent`'s own status
//! (other slot, security counter, download progress) replaces [`AgentStatus`] when wired.

use core::cell::RefCell;
use core::fmt::Write as _;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use esp_bootloader_esp_idf::ota::OtaImageState;
use heapless::{String, Vec};
use ota_format::MAX_TRUSTED_KEYS;
use serde::Serialize;

use crate::build_config;
use crate::flash::FlashLayout;
use crate::health::BootState;

/// Below this much free heap after start-up the app is not healthy: the update path could
/// not allocate its decompression window.
pub const MIN_FREE_HEAP: usize = 48 * 1024;

/// Longest error text kept for the report.
const ERROR_MAX: usize = 64;
/// An ETag as servers send it (S3 and nginx stay well below this).
pub const ETAG_MAX: usize = 80;

pub static STATUS: Mutex<CriticalSectionRawMutex, RefCell<DeviceStatus>> =
    Mutex::new(RefCell::new(DeviceStatus::new()));

/// Outcome of the application health check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HealthState {
    /// The check has not finished yet.
    Pending,
    /// Healthy, and there was no trial to confirm.
    Healthy,
    /// Healthy, and the trial boot was confirmed.
    Confirmed,
    /// Healthy, but writing the confirmation failed.
    ConfirmFailed,
    Unhealthy(&'static str),
}

/// Why the update agent is not doing its job.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgentError {
    NoOtaLayout,
    Transport,
    HttpStatus(u16),
    TooManyRedirects,
    ManifestTooLarge,
}

/// Result of the last manifest check.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// 304: the manifest did not change.
    NotModified,
    /// 200: a manifest arrived (verified and decided on by the agent).
    Fetched,
    Failed,
}

/// The update agent's part of the report.
#[derive(Clone, Debug)]
pub struct AgentStatus {
    pub polling: bool,
    pub last_check_uptime_s: Option<u64>,
    pub last_result: Option<CheckResult>,
    pub last_error: Option<AgentError>,
    pub manifest_etag: Option<String<ETAG_MAX>>,
}

impl AgentStatus {
    const fn new() -> Self {
        AgentStatus {
            polling: false,
            last_check_uptime_s: None,
            last_result: None,
            last_error: None,
            manifest_etag: None,
        }
    }

    pub fn set_error(&mut self, e: AgentError) {
        self.last_error = Some(e);
    }
}

/// Everything the device knows about itself.
pub struct DeviceStatus {
    pub running_slot: Option<&'static str>,
    pub boot: Option<BootState>,
    pub health: HealthState,
    pub trusted_key_ids: Vec<String<16>, MAX_TRUSTED_KEYS>,
    pub heap_free: usize,
    pub agent: AgentStatus,
}

impl DeviceStatus {
    const fn new() -> Self {
        DeviceStatus {
            running_slot: None,
            boot: None,
            health: HealthState::Pending,
            trusted_key_ids: Vec::new(),
            heap_free: 0,
            agent: AgentStatus::new(),
        }
    }

    pub fn set_trusted_keys(&mut self) {
        self.trusted_key_ids.clear();
        for id in crate::descriptor::key_ids() {
            let mut hex = String::new();
            // 16 hex digits always fit String<16>.
            let _ = write!(hex, "{id}");
            let _ = self.trusted_key_ids.push(hex);
        }
    }

    pub fn set_boot(&mut self, layout: Option<&FlashLayout>, boot: BootState) {
        self.running_slot = layout.and_then(|l| l.running).map(|s| s.name());
        self.boot = Some(boot);
    }

    /// Renders the report; `ip` and `uptime_s` are sampled by the caller at request time.
    pub fn to_json(
        &self,
        ip: Option<&str>,
        uptime_s: u64,
        out: &mut [u8],
    ) -> Result<usize, serde_json_core::ser::Error> {
        let (health, health_reason) = match self.health {
            HealthState::Pending => ("pending", None),
            HealthState::Healthy => ("healthy", None),
            HealthState::Confirmed => ("confirmed", None),
            HealthState::ConfirmFailed => ("confirm_failed", None),
            HealthState::Unhealthy(reason) => ("unhealthy", Some(reason)),
        };
        let mut last_error: String<ERROR_MAX> = String::new();
        if let Some(e) = self.agent.last_error {
            let _ = match e {
                AgentError::NoOtaLayout => write!(last_error, "no OTA partition layout"),
                AgentError::Transport => write!(last_error, "transport error"),
                AgentError::HttpStatus(code) => write!(last_error, "HTTP status {code}"),
                AgentError::TooManyRedirects => write!(last_error, "too many redirects"),
                AgentError::ManifestTooLarge => write!(last_error, "manifest too large"),
            };
        }
        let report = Report {
            firmware_version: build_config::FIRMWARE_VERSION,
            device_type: build_config::DEVICE_TYPE,
            channel: build_config::CHANNEL,
            chip: crate::chip::NAME,
            chip_id: crate::chip::ID.0,
            running_slot: self.running_slot,
            slot_state: self.boot.map(slot_state),
            health,
            health_reason,
            trusted_key_ids: &self.trusted_key_ids,
            test_key: build_config::TRUSTED_KEYS_ARE_TEST_KEY,
            ip,
            uptime_s,
            heap_free: self.heap_free,
            agent: AgentReport {
                polling: self.agent.polling,
                last_check_uptime_s: self.agent.last_check_uptime_s,
                last_result: self.agent.last_result,
                last_error: self.agent.last_error.map(|_| last_error.as_str()),
                manifest_etag: self.agent.manifest_etag.as_deref(),
            },
        };
        serde_json_core::to_slice(&report, out)
    }
}

fn slot_state(boot: BootState) -> &'static str {
    match boot {
        BootState::Default => "blank_otadata",
        BootState::UnknownSlot => "unknown_slot",
        BootState::Unreadable(_) => "unreadable",
        BootState::Selected { state, .. } => match state {
            OtaImageState::New => "new",
            OtaImageState::PendingVerify => "pending_verify",
            OtaImageState::Valid => "valid",
            OtaImageState::Invalid => "invalid",
            OtaImageState::Aborted => "aborted",
            OtaImageState::Undefined => "undefined",
        },
    }
}

#[derive(Serialize)]
struct AgentReport<'a> {
    polling: bool,
    last_check_uptime_s: Option<u64>,
    last_result: Option<CheckResult>,
    last_error: Option<&'a str>,
    manifest_etag: Option<&'a str>,
}

#[derive(Serialize)]
struct Report<'a> {
    firmware_version: &'a str,
    device_type: &'a str,
    channel: &'a str,
    chip: &'a str,
    chip_id: u16,
    running_slot: Option<&'a str>,
    slot_state: Option<&'a str>,
    health: &'a str,
    health_reason: Option<&'a str>,
    trusted_key_ids: &'a [String<16>],
    test_key: bool,
    ip: Option<&'a str>,
    uptime_s: u64,
    heap_free: usize,
    agent: AgentReport<'a>,
}
