//! Why an agent operation failed. In its own module, below both the agent and its
//! status report (which carries the last error), so that neither imports the other's
//! module to name it.

use embedded_storage::nor_flash::{NorFlashError, NorFlashErrorKind};
use ota_format::{FormatError, MAX_MANIFEST_LEN};

use crate::boot::BootError;
use crate::download::DownloadError;
use crate::http::HttpError;
use crate::install::InstallError;
use crate::state::StateError;
use crate::url::UrlError;

/// Why an agent operation failed. The running firmware is unaffected by all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The flash failed.
    #[error("flash error: {0:?}")]
    Flash(NorFlashErrorKind),
    /// otadata handling refused or failed.
    #[error("boot slots: {0}")]
    Boot(BootError<NorFlashErrorKind>),
    /// The persistent state region is unusable.
    #[error("agent state: {0}")]
    State(#[from] StateError),
    /// The manifest could not be fetched.
    #[error("manifest fetch: {0}")]
    Http(#[from] HttpError),
    /// The manifest URL answered with an unexpected status.
    #[error("manifest fetch: HTTP status {0}")]
    ManifestStatus(u16),
    /// The manifest is longer than any valid one.
    #[error("manifest is larger than {MAX_MANIFEST_LEN} bytes")]
    ManifestTooLarge,
    /// The manifest failed verification or the device's policy.
    #[error("manifest refused: {0}")]
    Manifest(#[from] FormatError),
    /// The image URL could not be built.
    #[error("image URL: {0}")]
    Url(#[from] UrlError),
    /// The download failed.
    #[error("download: {0}")]
    Download(#[from] DownloadError),
    /// The image was refused or could not be written.
    #[error("install: {0}")]
    Install(#[from] InstallError),
    /// An update cannot start while the running image is on trial.
    #[error("running image is on trial; confirm it first")]
    TrialInProgress,
    /// An installed image waits for the reboot into its trial; checking again would
    /// rewrite the slot otadata now points at.
    #[error("an installed update waits for a reboot")]
    RebootPending,
    /// The update buffers are lent to an install in progress (the agent lends them
    /// for the length of one install; no other step may run meanwhile).
    #[error("the update buffers are in use by an install")]
    BuffersInUse,
    /// The partition table has no slot to update into.
    #[error("no OTA slot to update into")]
    NoUpdateSlot,
    /// `max_window_log` is above [`crate::zstd::MAX_WINDOW_LOG`] or what the staging buffer holds.
    #[error("configured zstd window exceeds the agent's buffers")]
    WindowTooLarge,
}

impl<E: NorFlashError> From<BootError<E>> for AgentError {
    /// Keeps the flash error's kind: the agent's error is `Copy` and names no driver type.
    fn from(e: BootError<E>) -> Self {
        AgentError::Boot(match e {
            BootError::Flash(e) => BootError::Flash(e.kind()),
            BootError::UnsupportedFlash => BootError::UnsupportedFlash,
            BootError::BadAttemptLimit => BootError::BadAttemptLimit,
            BootError::NoOtaSlots => BootError::NoOtaSlots,
            BootError::SlotOutOfRange { slot, count } => BootError::SlotOutOfRange { slot, count },
            BootError::NoFactory => BootError::NoFactory,
            BootError::NoActiveEntry => BootError::NoActiveEntry,
            BootError::RunningNotSelected { running, selected } => {
                BootError::RunningNotSelected { running, selected }
            }
            BootError::RollbackNotPossible => BootError::RollbackNotPossible,
            BootError::SequenceExhausted => BootError::SequenceExhausted,
            BootError::NotAnOtaSlot(region) => BootError::NotAnOtaSlot(region),
        })
    }
}
