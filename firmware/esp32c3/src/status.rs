//! What the device reports about itself (R6): ota-agent's [`Status`] as the agent last
//! published it, plus what only the firmware knows (health check, test key, uptime,
//! network). Shared between the task that runs the agent and the status endpoint.

use core::cell::RefCell;
use core::fmt;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use ota_agent::agent::{AgentError, StatusSink};
use ota_agent::download::DownloadProgress;
use ota_agent::status::{Status, UpdateState};
use serde::{Serialize, Serializer};

use crate::build_config;
use crate::flash::LayoutError;

pub static STATUS: Mutex<CriticalSectionRawMutex, RefCell<DeviceStatus>> =
    Mutex::new(RefCell::new(DeviceStatus::new()));

/// Outcome of the application health check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HealthState {
    /// The check has not finished yet.
    Pending,
    /// Healthy, and there was no trial to confirm.
    Healthy,
    /// Healthy, and the agent confirmed the trial boot.
    Confirmed,
    /// Healthy, but the agent could not confirm (see the agent's `last_error`).
    ConfirmFailed,
    /// Unhealthy; on a trial boot the agent rejected the image.
    Unhealthy(&'static str),
}

/// Why there is no update agent on this boot.
#[derive(Clone, Copy, Debug)]
pub enum AgentUnavailable {
    Layout(LayoutError),
    /// A build-time value does not parse at run time (build.rs checks them all).
    BuildConfig,
    Start(AgentError),
}

impl fmt::Display for AgentUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentUnavailable::Layout(e) => write!(f, "flash layout: {e}"),
            AgentUnavailable::BuildConfig => f.write_str("build configuration does not parse"),
            AgentUnavailable::Start(e) => write!(f, "agent start: {e}"),
        }
    }
}

/// Everything the device knows about itself.
pub struct DeviceStatus {
    /// The agent's report as last published; `None` until it started, or when it could not.
    pub agent: Option<Status>,
    pub agent_unavailable: Option<AgentUnavailable>,
    pub health: HealthState,
}

impl DeviceStatus {
    const fn new() -> Self {
        DeviceStatus {
            agent: None,
            agent_unavailable: None,
            health: HealthState::Pending,
        }
    }

    /// Renders the report: the agent's status object with a `firmware` object added (the
    /// same shape as the simulator's report with its `sim` object). Values sampled at
    /// request time come from the caller.
    pub fn to_json(
        &self,
        now: &Sampled<'_>,
        out: &mut [u8],
    ) -> Result<usize, serde_json_core::ser::Error> {
        use serde_json_core::ser::Error::BufferFull;

        let mut at = match &self.agent {
            Some(status) => {
                // `{...}` becomes `{...,` so the firmware object can follow.
                let n = serde_json_core::to_slice(status, out)?;
                n - 1
            }
            None => 0,
        };
        let opening: &[u8] = if self.agent.is_some() { b"," } else { b"{" };
        for part in [opening, b"\"firmware\":"] {
            out.get_mut(at..at + part.len())
                .ok_or(BufferFull)?
                .copy_from_slice(part);
            at += part.len();
        }
        let (health, health_reason) = match self.health {
            HealthState::Pending => ("pending", None),
            HealthState::Healthy => ("healthy", None),
            HealthState::Confirmed => ("confirmed", None),
            HealthState::ConfirmFailed => ("confirm_failed", None),
            HealthState::Unhealthy(reason) => ("unhealthy", Some(reason)),
        };
        let report = FirmwareReport {
            version: build_config::FIRMWARE_VERSION,
            channel: build_config::CHANNEL,
            manifest_url: now.manifest_url,
            check_interval_s: build_config::CHECK_INTERVAL_S,
            test_key: build_config::TRUSTED_KEYS_ARE_TEST_KEY,
            agent: self.agent_unavailable.map_or("running", |_| "unavailable"),
            agent_error: self.agent_unavailable.as_ref(),
            health,
            health_reason,
            uptime_s: now.uptime_s,
            ip: now.ip,
            heap_free: now.heap_free,
        };
        at += serde_json_core::to_slice(&report, out.get_mut(at..).ok_or(BufferFull)?)?;
        *out.get_mut(at).ok_or(BufferFull)? = b'}';
        Ok(at + 1)
    }
}

/// Values the status endpoint samples when it answers.
pub struct Sampled<'a> {
    pub uptime_s: u64,
    pub ip: Option<&'a str>,
    pub heap_free: usize,
    pub manifest_url: Option<&'a str>,
}

#[derive(Serialize)]
struct FirmwareReport<'a> {
    version: &'a str,
    channel: &'a str,
    manifest_url: Option<&'a str>,
    check_interval_s: u32,
    /// The build trusts the published insecure test key.
    test_key: bool,
    agent: &'a str,
    #[serde(serialize_with = "opt_display")]
    agent_error: Option<&'a AgentUnavailable>,
    health: &'a str,
    health_reason: Option<&'a str>,
    uptime_s: u64,
    ip: Option<&'a str>,
    heap_free: usize,
}

fn opt_display<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Where the agent publishes: the shared [`STATUS`].
pub struct Publisher;

impl StatusSink for Publisher {
    fn status(&mut self, status: &Status) {
        STATUS.lock(|s| s.borrow_mut().agent = Some(*status));
    }

    fn progress(&mut self, progress: &DownloadProgress) {
        STATUS.lock(|s| {
            if let Some(status) = s.borrow_mut().agent.as_mut() {
                status.download = Some(*progress);
                status.update = UpdateState::Downloading {
                    progress: *progress,
                };
            }
        });
    }
}
