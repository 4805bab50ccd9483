//! The update agent: boot-time trial handling, then check → decide → download →
//! verify → switch, one [`UpdateState`] (the agent's phase) at a time.
//!
//! ```text
//!  start() ─▶ Booting: count/observe the trial, settle the pending install
//!               ├─ a trial ────────────▶ TrialBoot ─┬─ confirm(Trial) ─▶ Idle
//!               │  (BootOutcome::Trial(token))      └─ reject(Trial) ──▶ RebootRequired
//!               ├─ trials used up ──────▶ Idle (BootOutcome::RebootRequired: reboot now)
//!               └─ otherwise ───────────▶ Idle
//!
//!  check(): Idle ─▶ Checking ─▶ Decided ─▶ Downloading ─▶ Verifying ─▶ Switching ─▶ RebootRequired
//!             ▲        │ 304 / up to date / not in rollout / refused          │ any failure
//!             └────────┴──────────────────────────────────────────────────────┘ (old firmware keeps running)
//! ```
//!
//! Every phase change goes through one transition (`Agent::enter`), which also
//! publishes the status; an error is recorded with the phase it interrupted. A trial boot
//! is a [`Trial`] token that only [`Agent::confirm`] or [`Agent::reject`] consume.
//!
//! What must survive a reboot is in [`crate::state`]: the highest manifest sequence (no
//! replayed manifest is accepted), the confirmed security counter, the install waiting
//! for its trial boot, and releases whose trial failed (not retried until a new one).
//! The image's signature is checked with the keys of the *running* firmware; the new
//! firmware's own key descriptor decides what is trusted after it is confirmed.
//!
//! The jobs live in submodules: [`config`] and [`buffers`] (what the agent is given),
//! `trial` (boot-time handling, confirm, reject), `check` (manifest and decision),
//! `update` (download, verify, switch) and `report` (the status).

use embedded_storage::nor_flash::MultiwriteNorFlash;

use crate::boot::BootState;
use crate::download::{Clock, DownloadProgress, Jitter};
use crate::http::ETag;
use crate::identity::Outcome;
use crate::install::Base;
use crate::release_retry::ReleaseRetries;
use crate::state::{AgentState, StateStore};
use crate::status::{LastCheck, LastError, LastUpdate, Status, TrialStatus, UpdateState};

pub mod buffers;
mod check;
pub mod config;
mod report;
mod trial;
mod update;

pub use self::buffers::{DefaultUpdateMemory, UpdateBuffers, UpdateMemory};
pub use self::config::{AgentConfig, DEFAULT_WINDOW_LOG, Firmware, MAX_URL_LEN, MAX_WINDOW_LOG};
pub use self::trial::{BootOutcome, Trial, slot_is_bootable};
pub use crate::error::AgentError;

/// Receives status changes, e.g. to serve them over HTTP from another task.
pub trait StatusSink {
    /// The whole status changed (a phase transition, an error).
    fn status(&mut self, status: &Status);
    /// Download progress (often; keep it cheap).
    fn progress(&mut self, progress: &DownloadProgress);
}

/// A sink that drops everything.
impl StatusSink for () {
    fn status(&mut self, _: &Status) {}
    fn progress(&mut self, _: &DownloadProgress) {}
}

/// The update agent over flash `F`, HTTP client `C`, delay `D` and clock `K`.
pub struct Agent<'a, F, C, D, K> {
    config: AgentConfig<'a>,
    firmware: Firmware<'a>,
    flash: F,
    client: C,
    delay: D,
    clock: K,
    /// Taken out while an install borrows them.
    buffers: Option<UpdateBuffers<'a>>,
    sink: &'a mut dyn StatusSink,
    boot: BootState,
    store: StateStore,
    saved: AgentState,
    /// Changed only by `Agent::enter` (and, within `Downloading`, by the progress).
    phase: UpdateState,
    trial: Option<TrialStatus>,
    etag: Option<ETag>,
    last_check: Option<LastCheck>,
    last_error: Option<LastError>,
    download: Option<DownloadProgress>,
    /// How the last installed update came, for the status.
    last_update: Option<LastUpdate>,
    /// The running image's installed size and digest (a delta's base): computed at the
    /// first update after boot (`None` inside: not a readable app image).
    running_image: Option<Option<Base>>,
    jitter: Jitter,
    /// Checks started since boot: retries of a failed release are counted in checks.
    checks: u32,
    /// When the running check must end, on `clock`.
    check_deadline_at: u64,
    retries: ReleaseRetries,
    /// What the next request reports about the last check.
    outcome: Outcome,
}

impl<'a, F: MultiwriteNorFlash, C, D, K: Clock> Agent<'a, F, C, D, K> {
    /// Starts the agent on boot: reads its state and otadata, counts or observes the
    /// trial boot, and settles what happened to the last install. Call it before anything
    /// that could crash.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: AgentConfig<'a>,
        firmware: Firmware<'a>,
        mut flash: F,
        client: C,
        delay: D,
        clock: K,
        buffers: UpdateBuffers<'a>,
        sink: &'a mut dyn StatusSink,
    ) -> Result<(Self, BootOutcome), AgentError> {
        if config.max_window_log > MAX_WINDOW_LOG {
            return Err(AgentError::WindowTooLarge);
        }
        let (store, saved) = StateStore::open(&mut flash, config.state_region)?;
        let boot =
            BootState::read_running(&mut flash, &config.geometry, config.boot, firmware.running)?;
        let seed = config
            .device_id
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let mut agent = Agent {
            config,
            firmware,
            flash,
            client,
            delay,
            jitter: Jitter::new(seed ^ clock.now_ms()),
            clock,
            buffers: Some(buffers),
            sink,
            boot,
            store,
            saved,
            phase: UpdateState::Booting,
            trial: None,
            etag: None,
            last_check: None,
            last_error: None,
            download: None,
            last_update: None,
            running_image: None,
            checks: 0,
            check_deadline_at: 0,
            retries: ReleaseRetries::default(),
            outcome: Outcome::default(),
        };
        match agent.on_boot() {
            Ok((outcome, phase)) => {
                agent.enter(phase);
                Ok((agent, outcome))
            }
            Err(e) => {
                agent.note_error(e);
                agent.enter(UpdateState::Idle);
                Err(e)
            }
        }
    }

    /// The one transition: the agent moves to `phase` and publishes its status.
    fn enter(&mut self, phase: UpdateState) {
        self.phase = phase;
        self.publish();
    }

    /// Records `error` with the phase it interrupted and hands it back.
    fn fail(&mut self, error: AgentError) -> AgentError {
        self.note_error(error);
        error
    }

    fn note_error(&mut self, error: AgentError) {
        log::warn!("{}: {error}", self.phase.name());
        self.last_error = Some(LastError {
            at_ms: self.clock.now_ms(),
            phase: self.phase,
            error,
        });
    }

    fn publish(&mut self) {
        let status = self.status();
        self.sink.status(&status);
    }

    fn save(&mut self) -> Result<(), AgentError> {
        self.store.save(&mut self.flash, &self.saved)?;
        Ok(())
    }

    /// The persistent state (for tests and diagnostics).
    pub fn saved_state(&self) -> &AgentState {
        &self.saved
    }

    /// The flash, e.g. for the application's own partitions.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Ends the agent (before a reboot), giving the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }
}
