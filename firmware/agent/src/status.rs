//! What a device reports about itself (R6), serializable with serde without `std` or an
//! allocator (serde-json-core on the device, serde_json in the simulator).
//!
//! Text fields (versions, key ids, errors) are serialized through `Display`, so nothing
//! is formatted into buffers ahead of time.

use core::fmt::Display;

use ota_format::{ChipId, DeviceType, KeyId, MAX_TRUSTED_KEYS, Version};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::bootloader::BootloaderMode;
use crate::download::DownloadProgress;
use crate::error::AgentError;
use crate::geometry::BootTarget;
use crate::otadata::OtaState;

/// The agent's phase: where its state machine is. One vocabulary for the status it
/// reports and for where an error happened ([`LastError::phase`]); the agent changes it
/// in one place, which also publishes the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum UpdateState {
    /// Starting: reading state and otadata, counting or observing the trial boot, settling
    /// the last install. Left before [`crate::agent::Agent::start`] returns.
    Booting,
    /// Waiting for the next check.
    Idle,
    /// Fetching and verifying the manifest, and deciding on it.
    Checking,
    /// The manifest names an image to install.
    Decided {
        /// Its version.
        #[serde(serialize_with = "display")]
        version: Version,
    },
    /// Streaming the image into the inactive slot.
    Downloading {
        /// How far it got.
        progress: DownloadProgress,
    },
    /// Reading the slot back and checking it.
    Verifying,
    /// Pointing otadata at the new slot.
    Switching,
    /// The new image is in place (or a trial was rejected or used up); the device must
    /// reboot.
    RebootRequired,
    /// Running an unconfirmed image: waiting for the application's health check.
    TrialBoot,
}

impl UpdateState {
    /// The phase's name, as in the serialized `state` tag.
    pub const fn name(&self) -> &'static str {
        match self {
            UpdateState::Booting => "booting",
            UpdateState::Idle => "idle",
            UpdateState::Checking => "checking",
            UpdateState::Decided { .. } => "decided",
            UpdateState::Downloading { .. } => "downloading",
            UpdateState::Verifying => "verifying",
            UpdateState::Switching => "switching",
            UpdateState::RebootRequired => "reboot_required",
            UpdateState::TrialBoot => "trial_boot",
        }
    }
}

/// The outcome of the last completed check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum CheckResult {
    /// The manifest did not change (HTTP 304).
    NotModified,
    /// The manifest names the running version.
    UpToDate,
    /// A release exists, but this device is outside its staged rollout.
    NotInRollout {
        /// This device's bucket.
        bucket: u16,
        /// The rollout threshold.
        rollout: u16,
    },
    /// The release failed its trial boot here before; it is not retried.
    PreviouslyFailed {
        /// Its version.
        #[serde(serialize_with = "display")]
        version: Version,
    },
    /// Installing the release failed at an earlier check (network, a corrupted transfer);
    /// a later check tries again (see [`crate::release_retry`]).
    RetryLater {
        /// Its version.
        #[serde(serialize_with = "display")]
        version: Version,
        /// Failed installs so far.
        failures: u8,
    },
    /// Installing the release failed too often; it is not tried again until the manifest
    /// names another image or the device restarts.
    GaveUp {
        /// Its version.
        #[serde(serialize_with = "display")]
        version: Version,
        /// Failed installs.
        failures: u8,
    },
    /// The release was installed; a reboot starts its trial.
    Installed {
        /// Its version.
        #[serde(serialize_with = "display")]
        version: Version,
    },
    /// The check failed; see `last_error`.
    Failed,
}

/// The last check: when and what came of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LastCheck {
    /// Milliseconds since boot.
    pub at_ms: u64,
    /// Unix time, when the device has a clock.
    pub at_unix: Option<u64>,
    /// The outcome.
    pub result: CheckResult,
}

/// The last error: when, in which phase, and what, as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// Milliseconds since boot.
    pub at_ms: u64,
    /// The phase the agent was in when it failed (serialized as its name).
    #[serde(serialize_with = "phase_name")]
    pub phase: UpdateState,
    /// What happened.
    #[serde(serialize_with = "display")]
    pub error: AgentError,
}

fn phase_name<S: Serializer>(v: &UpdateState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// How an installed update arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateVia {
    /// A delta against the running image.
    Delta,
    /// The full `.ota` image (no delta for this base, or the delta failed).
    Full,
}

/// The last update this agent installed (until the reboot into it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LastUpdate {
    /// The version installed.
    #[serde(serialize_with = "display")]
    pub version: Version,
    /// Delta or full image.
    pub via: UpdateVia,
    /// Bytes of update files received for it in the check that installed it, a failed
    /// delta's included (HTTP headers not counted).
    pub bytes_downloaded: u64,
}

/// A slot as seen from the running firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// `factory`, `ota_0`, `ota_1`, ...
    #[serde(serialize_with = "target_name")]
    pub slot: BootTarget,
    /// Its otadata state, if an entry maps to it.
    #[serde(serialize_with = "state_name")]
    pub state: Option<OtaState>,
    /// Version in its app descriptor, if it holds a readable app image.
    #[serde(serialize_with = "opt_display")]
    pub version: Option<Version>,
}

/// Trial-boot bookkeeping of the running image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrialStatus {
    /// Boot attempts counted so far (agent counting), if counted.
    pub attempt: Option<u8>,
    /// The limit.
    pub max_attempts: u8,
}

/// Everything a device reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Version of the running firmware.
    #[serde(serialize_with = "display")]
    pub installed_version: Version,
    /// Device type.
    #[serde(serialize_with = "display_name")]
    pub device_type: DeviceType,
    /// Chip.
    #[serde(serialize_with = "chip_name")]
    pub chip: ChipId,
    /// How trial boots are protected.
    #[serde(serialize_with = "mode_name")]
    pub bootloader_mode: BootloaderMode,
    /// The slot running now.
    pub running: SlotStatus,
    /// The other OTA slot (the update target), if there is one.
    pub other: Option<SlotStatus>,
    /// Set while the running image is on trial.
    pub trial: Option<TrialStatus>,
    /// Highest confirmed security counter.
    pub security_counter: u64,
    /// Highest accepted manifest sequence.
    pub manifest_sequence: Option<u64>,
    /// Releases that failed their trial boot here (not retried).
    pub rolled_back_releases: u8,
    /// Where the update state machine is.
    pub update: UpdateState,
    /// The last completed check.
    pub last_check: Option<LastCheck>,
    /// The last error.
    pub last_error: Option<LastError>,
    /// Progress of the current or last download.
    pub download: Option<DownloadProgress>,
    /// The update installed by the last successful check, if any since boot.
    pub last_update: Option<LastUpdate>,
    /// Ids of the keys this firmware trusts.
    pub trusted_keys: KeyIds,
}

/// Up to [`MAX_TRUSTED_KEYS`] key ids, serialized as a list of hex strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KeyIds {
    ids: [Option<KeyId>; MAX_TRUSTED_KEYS],
}

impl KeyIds {
    /// Collects the ids (beyond [`MAX_TRUSTED_KEYS`] they are dropped).
    pub fn new(ids: impl IntoIterator<Item = KeyId>) -> Self {
        let mut out = KeyIds::default();
        for (slot, id) in out.ids.iter_mut().zip(ids) {
            *slot = Some(id);
        }
        out
    }

    /// The ids.
    pub fn iter(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.ids.iter().flatten().copied()
    }
}

impl Serialize for KeyIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.iter().count()))?;
        for id in self.iter() {
            seq.serialize_element(&Shown(id))?;
        }
        seq.end()
    }
}

/// Serializes any `Display` as a string.
struct Shown<T>(T);

impl<T: Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

fn display<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_display<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn display_name<S: Serializer>(v: &DeviceType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

fn chip_name<S: Serializer>(v: &ChipId, s: S) -> Result<S::Ok, S::Error> {
    match v.name() {
        Some(name) => s.serialize_str(name),
        None => s.serialize_u16(v.0),
    }
}

fn mode_name<S: Serializer>(v: &BootloaderMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match v {
        BootloaderMode::RollbackEnabled => "rollback",
        BootloaderMode::RollbackDisabled => "plain",
    })
}

/// `factory` or `ota_N`, the partition names of ESP-IDF.
pub fn target_label(t: BootTarget) -> TargetLabel {
    TargetLabel(t)
}

/// Display adapter for a [`BootTarget`].
pub struct TargetLabel(BootTarget);

impl Display for TargetLabel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            BootTarget::Factory => f.write_str("factory"),
            BootTarget::Ota(n) => write!(f, "ota_{n}"),
        }
    }
}

fn target_name<S: Serializer>(v: &BootTarget, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&TargetLabel(*v))
}

/// The ESP-IDF name of a state, lower case.
pub fn state_label(state: OtaState) -> &'static str {
    match state {
        OtaState::New => "new",
        OtaState::PendingVerify => "pending_verify",
        OtaState::Valid => "valid",
        OtaState::Invalid => "invalid",
        OtaState::Aborted => "aborted",
        OtaState::Undefined => "undefined",
        OtaState::Other(_) => "other",
    }
}

fn state_name<S: Serializer>(v: &Option<OtaState>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(state) => s.serialize_str(state_label(*state)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every phase, so a new one must be added here (and named) to compile.
    fn every_phase() -> [UpdateState; 9] {
        let version = Version::parse("1.2.3").unwrap();
        let phases = [
            UpdateState::Booting,
            UpdateState::Idle,
            UpdateState::Checking,
            UpdateState::Decided { version },
            UpdateState::Downloading {
                progress: DownloadProgress::default(),
            },
            UpdateState::Verifying,
            UpdateState::Switching,
            UpdateState::RebootRequired,
            UpdateState::TrialBoot,
        ];
        for phase in phases {
            match phase {
                UpdateState::Booting
                | UpdateState::Idle
                | UpdateState::Checking
                | UpdateState::Decided { .. }
                | UpdateState::Downloading { .. }
                | UpdateState::Verifying
                | UpdateState::Switching
                | UpdateState::RebootRequired
                | UpdateState::TrialBoot => {}
            }
        }
        phases
    }

    #[test]
    fn a_phase_is_reported_by_the_same_name_in_the_status_and_in_the_last_error() {
        for phase in every_phase() {
            let status = serde_json::to_value(phase).unwrap();
            assert_eq!(status["state"], phase.name(), "{phase:?}");
            let error = LastError {
                at_ms: 7,
                phase,
                error: AgentError::NoUpdateSlot,
            };
            let error = serde_json::to_value(error).unwrap();
            assert_eq!(error["phase"], phase.name(), "{phase:?}");
            assert_eq!(error["error"], "no OTA slot to update into");
        }
    }
}
