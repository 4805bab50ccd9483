//! The update agent: boot-time trial handling, then check → decide → download →
//! verify → switch, one explicit [`UpdateState`] at a time.
//!
//! ```text
//! boot ─▶ start(): count/observe the trial, settle the pending install
//!            │ trial? ─▶ app health check ─▶ confirm() │ reject() ─▶ reboot
//!            ▼
//! Idle ─▶ Checking ─▶ Decided ─▶ Downloading{progress} ─▶ Verifying ─▶ Switching ─▶ RebootRequired
//!   ▲         │ 304 / up to date / not in rollout / refused       │ any failure
//!   └─────────┴───────────────────────────────────────────────────┘ (old firmware keeps running)
//! ```
//!
//! What must survive a reboot is in [`crate::state`]: the highest manifest sequence (no
//! replayed manifest is accepted), the confirmed security counter, the install waiting
//! for its trial boot, and releases whose trial failed (not retried until a new one).
//! The image's signature is checked with the keys of the *running* firmware; the new
//! firmware's own key descriptor decides what is trusted after it is confirmed.

use embedded_hal_async::delay::DelayNs;
use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlashError, NorFlashErrorKind};
use ota_format::esp::{APP_DESC_LEN, APP_DESC_OFFSET, AppDescriptor};
use ota_format::esp::{AppImageValidator, DigestPolicy, SignatureSectorPolicy, ValidateOptions};
use ota_format::{
    Channel, ChipId, Decision, Device, DeviceType, FormatError, MAX_MANIFEST_LEN, Manifest,
    TrustedKey, TrustedKeys, VerifiedManifest, Version,
};

use crate::boot::{BootAttempt, BootConfig, BootError, BootState};
use crate::download::{Clock, DownloadError, DownloadProgress, Downloader, Jitter, RetryPolicy};
use crate::geometry::{BootTarget, Geometry, Region};
use crate::http::{ETag, HttpClient, HttpError, Request, read_to_end};
use crate::identity::{Identify, Identity, Outcome};
use crate::install::{InstallBuffers, InstallError, InstalledImage, Installer, Target};
use crate::otadata::OtaState;
use crate::release_retry::{ReleaseRetries, Verdict};
use crate::secure_boot::{check_new_image, slot_signature_sector};
use crate::state::{AgentState, PendingInstall, StateError, StateStore};
use crate::status::{
    CheckResult, KeyIds, LastCheck, LastError, SlotStatus, Stage, Status, TrialStatus, UpdateState,
};
use crate::url::{UrlError, resolve_sibling};
use crate::zstd::staging_len;

/// Largest zstd window log the agent accepts at all.
pub const MAX_WINDOW_LOG: u8 = 14;
/// Window log a 64 KiB update path affords with ruzstd (measured in `tests/ram.rs`:
/// window 4 KiB keeps buffers, decoder and agent near 60 KiB; 16 KiB needs ~150 KiB).
pub const DEFAULT_WINDOW_LOG: u8 = 12;
/// Longest image URL the agent builds.
pub const MAX_URL_LEN: usize = 512;

/// The update path's buffers, borrowed from wherever the caller keeps them (a `static`
/// on the device). With the decoder's window, this is all the RAM an update takes,
/// whatever the image size.
pub struct UpdateBuffers<'b> {
    /// Compressed input staging: at least [`staging_len`] of the window log accepted.
    pub staging: &'b mut [u8],
    /// Decompressor output.
    pub output: &'b mut [u8],
    /// Flash write (and read-back) buffer, a multiple of the flash write size.
    pub write: &'b mut [u8],
    /// Network receive buffer.
    pub recv: &'b mut [u8],
    /// The manifest.
    pub manifest: &'b mut [u8; MAX_MANIFEST_LEN],
    /// The image URL.
    pub url: &'b mut [u8],
}

/// Owned buffers for a window of up to `2^WINDOW_LOG` bytes; `STAGING` must be
/// `staging_len(WINDOW_LOG)`, see [`DefaultUpdateMemory`].
pub struct UpdateMemory<const STAGING: usize> {
    staging: [u8; STAGING],
    output: [u8; 1024],
    write: [u8; 1024],
    recv: [u8; 1024],
    manifest: [u8; MAX_MANIFEST_LEN],
    url: [u8; MAX_URL_LEN],
}

/// Buffers for [`DEFAULT_WINDOW_LOG`].
pub type DefaultUpdateMemory = UpdateMemory<{ staging_len(DEFAULT_WINDOW_LOG) }>;
/// Buffers for [`MAX_WINDOW_LOG`].
pub type LargeUpdateMemory = UpdateMemory<{ staging_len(MAX_WINDOW_LOG) }>;

impl<const STAGING: usize> UpdateMemory<STAGING> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        UpdateMemory {
            staging: [0; STAGING],
            output: [0; 1024],
            write: [0; 1024],
            recv: [0; 1024],
            manifest: [0; MAX_MANIFEST_LEN],
            url: [0; MAX_URL_LEN],
        }
    }

    /// Lends the buffers to an agent.
    pub fn buffers(&mut self) -> UpdateBuffers<'_> {
        UpdateBuffers {
            staging: &mut self.staging,
            output: &mut self.output,
            write: &mut self.write,
            recv: &mut self.recv,
            manifest: &mut self.manifest,
            url: &mut self.url,
        }
    }
}

impl<const STAGING: usize> Default for UpdateMemory<STAGING> {
    fn default() -> Self {
        Self::new()
    }
}

/// What the running firmware knows about itself, from its own descriptors.
#[derive(Clone, Copy, Debug)]
pub struct Firmware<'a> {
    /// Device type this firmware is built for.
    pub device_type: DeviceType,
    /// Chip this firmware is built for.
    pub chip: ChipId,
    /// Version from its app descriptor.
    pub version: Version,
    /// Keys from its trusted-key descriptor.
    pub trusted_keys: &'a [TrustedKey],
    /// The partition it runs from (told by the bootloader / the MMU mapping).
    pub running: BootTarget,
}

/// Device configuration.
#[derive(Clone, Copy, Debug)]
pub struct AgentConfig<'a> {
    /// The manifest URL as configured (images are resolved against it, not against
    /// where redirects lead).
    pub manifest_url: &'a str,
    /// A stable unique id (MAC address), for the rollout bucket and backoff jitter.
    pub device_id: &'a [u8],
    /// The channel the device follows.
    pub channel: Channel,
    /// otadata and app slots.
    pub geometry: Geometry,
    /// Two erase-aligned halves for [`crate::state`].
    pub state_region: Region,
    /// Bootloader mode and trial-boot limit.
    pub boot: BootConfig,
    /// Download retries and timeouts.
    pub retry: RetryPolicy,
    /// Largest zstd window log accepted (at most [`MAX_WINDOW_LOG`], and what the
    /// staging buffer holds; [`DEFAULT_WINDOW_LOG`] for a 64 KiB update path).
    pub max_window_log: u8,
    /// Lowest security counter this firmware accepts, whatever the state says.
    pub security_counter_floor: u64,
    /// What the device says about itself in every request's `User-Agent`
    /// ([`crate::identity`]).
    pub identify: Identify,
}

/// Receives status changes, e.g. to serve them over HTTP from another task.
pub trait StatusSink {
    /// The whole status changed (a state transition).
    fn status(&mut self, status: &Status);
    /// Download progress (often; keep it cheap).
    fn progress(&mut self, progress: &DownloadProgress);
}

/// A sink that drops everything.
impl StatusSink for () {
    fn status(&mut self, _: &Status) {}
    fn progress(&mut self, _: &DownloadProgress) {}
}

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
    /// The partition table has no slot to update into.
    #[error("no OTA slot to update into")]
    NoUpdateSlot,
    /// `max_window_log` is above [`MAX_WINDOW_LOG`] or what the staging buffer holds.
    #[error("configured zstd window exceeds the agent's buffers")]
    WindowTooLarge,
}

fn boot_err<E: NorFlashError>(e: BootError<E>) -> AgentError {
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
    })
}

/// What the application must do after [`Agent::start`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootOutcome {
    /// A confirmed image (or one nothing tracks): run normally.
    Normal,
    /// This is a trial boot: run the health check, then [`Agent::confirm`] or
    /// [`Agent::reject`].
    Trial,
    /// The trial boots are used up and otadata now points back: reboot at once.
    RebootRequired,
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
    update: UpdateState,
    trial: Option<TrialStatus>,
    etag: Option<ETag>,
    last_check: Option<LastCheck>,
    last_error: Option<LastError>,
    download: Option<DownloadProgress>,
    jitter: Jitter,
    /// Checks started since boot: retries of a failed release are counted in checks.
    checks: u32,
    /// When the running check must end, on `clock`.
    check_deadline_at: u64,
    retries: ReleaseRetries,
    /// What the next request reports about the last check.
    outcome: Outcome,
}

/// Whether `region` holds an app image the bootloader would start on `chip`.
pub fn slot_is_bootable<F: MultiwriteNorFlash>(
    flash: &mut F,
    region: Region,
    chip: ChipId,
) -> bool {
    let mut v = AppImageValidator::new(ValidateOptions {
        chip: Some(chip),
        digest: DigestPolicy::Required,
        max_len: region.size,
        signature_sector: SignatureSectorPolicy::StopAtImageEnd,
    });
    let mut buf = [0u8; 256];
    let mut at = 0u32;
    while !v.is_done() && at < region.size {
        let n = (region.size - at).min(buf.len() as u32) as usize;
        if flash.read(region.offset + at, &mut buf[..n]).is_err() || v.update(&buf[..n]).is_err() {
            return false;
        }
        at += n as u32;
    }
    v.finish().is_ok()
}

fn slot_version<F: MultiwriteNorFlash>(flash: &mut F, region: Region) -> Option<Version> {
    let mut buf = [0u8; APP_DESC_LEN];
    flash
        .read(region.offset + APP_DESC_OFFSET as u32, &mut buf)
        .ok()?;
    let desc = AppDescriptor::parse(&buf).ok()?;
    Version::parse(desc.version())
}

impl<'a, F, C, D, K> Agent<'a, F, C, D, K>
where
    F: MultiwriteNorFlash,
    C: HttpClient,
    D: DelayNs,
    K: Clock,
{
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
        if config.max_window_log > MAX_WINDOW_LOG
            || buffers.staging.len() < staging_len(config.max_window_log)
        {
            return Err(AgentError::WindowTooLarge);
        }
        let (store, saved) = StateStore::open(&mut flash, config.state_region)?;
        let boot =
            BootState::read_running(&mut flash, &config.geometry, config.boot, firmware.running)
                .map_err(boot_err)?;
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
            update: UpdateState::Idle,
            trial: None,
            etag: None,
            last_check: None,
            last_error: None,
            download: None,
            checks: 0,
            check_deadline_at: 0,
            retries: ReleaseRetries::default(),
            outcome: Outcome::default(),
        };
        let outcome = agent.on_boot();
        if let Err(e) = outcome {
            agent.note_error(Stage::Boot, e);
        }
        agent.publish();
        outcome.map(|o| (agent, o))
    }

    fn on_boot(&mut self) -> Result<BootOutcome, AgentError> {
        let chip = self.firmware.chip;
        let attempt = self
            .boot
            .record_boot_attempt(&mut self.flash, |f, _, region| {
                slot_is_bootable(f, region, chip)
            })
            .map_err(boot_err)?;
        log::info!("boot: {attempt:?}");
        self.settle_pending()?;
        let max = self.config.boot.max_boot_attempts;
        Ok(match attempt {
            BootAttempt::RolledBack => BootOutcome::RebootRequired,
            BootAttempt::Counted { attempt, .. } => {
                self.trial = Some(TrialStatus {
                    attempt: Some(attempt),
                    max_attempts: max,
                });
                self.update = UpdateState::TrialBoot;
                BootOutcome::Trial
            }
            BootAttempt::BootloaderTracked | BootAttempt::ExhaustedNoFallback => {
                self.trial = Some(TrialStatus {
                    attempt: None,
                    max_attempts: max,
                });
                self.update = UpdateState::TrialBoot;
                BootOutcome::Trial
            }
            _ => BootOutcome::Normal,
        })
    }

    /// Decides what became of the install that was waiting for its trial boot.
    fn settle_pending(&mut self) -> Result<(), AgentError> {
        let Some(p) = self.saved.pending else {
            return Ok(());
        };
        let count = self.config.geometry.slot_count();
        let switched = self.boot.entries().iter().find(|e| {
            e.crc_matches()
                && e.slot(count) == Some(p.slot)
                && e.seq > p.base_seq
                && e.seq != u32::MAX
        });
        let running_it = self.firmware.running == BootTarget::Ota(p.slot);
        match switched.map(|e| e.ota_state()) {
            Some(OtaState::Valid) if running_it => self.adopt(p),
            Some(_) if running_it => Ok(()), // still on trial
            Some(state) if state.is_rejected() || state == OtaState::Valid => {
                // Rolled back (by the bootloader, the agent or the app), or it never
                // started: do not try this release again.
                log::warn!("release {} failed its trial boot", p.version);
                // The first request of this boot already says so (`r=pf-<version>`).
                self.outcome
                    .note(CheckResult::PreviouslyFailed { version: p.version });
                self.saved.record_failed(p.image_id);
                self.saved.pending = None;
                self.save()
            }
            Some(_) => {
                // Selected but the bootloader started something else.
                self.saved.record_failed(p.image_id);
                self.saved.pending = None;
                self.save()
            }
            None => {
                // The switch never happened (power cut before otadata was written):
                // the slot may hold a complete image, but the release can simply be
                // installed again.
                self.saved.pending = None;
                self.save()
            }
        }
    }

    /// The pending image is confirmed: its counter becomes the floor.
    fn adopt(&mut self, p: PendingInstall) -> Result<(), AgentError> {
        self.saved.security_counter = self.saved.security_counter.max(p.security_counter);
        self.saved.pending = None;
        self.save()
    }

    fn save(&mut self) -> Result<(), AgentError> {
        self.store.save(&mut self.flash, &self.saved)?;
        Ok(())
    }

    /// The application's health check passed: keep this image.
    pub fn confirm(&mut self) -> Result<(), AgentError> {
        let r = self.confirm_inner();
        if let Err(e) = r {
            self.note_error(Stage::Confirm, e);
        }
        self.publish();
        r
    }

    fn confirm_inner(&mut self) -> Result<(), AgentError> {
        if self.trial.is_none() {
            return Ok(());
        }
        self.boot.confirm(&mut self.flash).map_err(boot_err)?;
        if let Some(p) = self.saved.pending
            && self.firmware.running == BootTarget::Ota(p.slot)
        {
            self.adopt(p)?;
        }
        self.trial = None;
        self.update = UpdateState::Idle;
        Ok(())
    }

    /// The application's health check failed: mark this image invalid so the next boot
    /// starts the previous one. The caller reboots.
    pub fn reject(&mut self) -> Result<(), AgentError> {
        let chip = self.firmware.chip;
        let r = self
            .boot
            .rollback(&mut self.flash, |f, _, region| {
                slot_is_bootable(f, region, chip)
            })
            .map_err(boot_err);
        match r {
            Ok(()) => self.update = UpdateState::RebootRequired,
            Err(e) => self.note_error(Stage::Confirm, e),
        }
        self.publish();
        r
    }

    /// One check: fetch the manifest and, if it names a release to install, install it
    /// and switch to it. On `Ok(CheckResult::Installed)` the caller reboots. It ends
    /// within [`RetryPolicy::worst_case_check_ms`] plus the flash work after the last
    /// network read, whatever the servers do.
    pub async fn check(&mut self) -> Result<CheckResult, AgentError> {
        self.checks = self.checks.wrapping_add(1);
        self.check_deadline_at = self
            .clock
            .now_ms()
            .saturating_add(self.config.retry.check_deadline_ms);
        let r = self.check_inner().await;
        let result = match &r {
            Ok(result) => *result,
            Err(_) => CheckResult::Failed,
        };
        self.outcome.note(result);
        self.last_check = Some(LastCheck {
            at_ms: self.clock.now_ms(),
            at_unix: self.clock.unix_time(),
            result,
        });
        self.update = match result {
            _ if self.saved.pending.is_some() => UpdateState::RebootRequired,
            _ if self.trial.is_some() => UpdateState::TrialBoot,
            _ => UpdateState::Idle,
        };
        self.publish();
        r
    }

    fn set_update(&mut self, update: UpdateState) {
        self.update = update;
        self.publish();
    }

    async fn check_inner(&mut self) -> Result<CheckResult, AgentError> {
        if self.trial.is_some() {
            return Err(self.fail(Stage::Check, AgentError::TrialInProgress));
        }
        if self.saved.pending.is_some() {
            return Err(self.fail(Stage::Check, AgentError::RebootPending));
        }
        self.set_update(UpdateState::Checking);
        // A release waiting for its retry must not hide behind a 304.
        let if_none_match = if self.retries.retry_due(self.checks) {
            None
        } else {
            self.etag
        };
        let (etag, len) = match self.fetch_manifest(if_none_match.as_ref()).await {
            Ok(Some(got)) => got,
            Ok(None) => return Ok(CheckResult::NotModified),
            Err(e) => return Err(self.fail(Stage::Check, e)),
        };
        let keys = TrustedKeys::new(self.firmware.trusted_keys);
        let Some(buffers) = self.buffers.as_ref() else {
            return Err(AgentError::TrialInProgress);
        };
        let decided = Manifest::verify(&buffers.manifest[..len], &keys)
            .and_then(|vm| Ok((vm, vm.decide(&self.device())?)));
        let (vm, decision) = match decided {
            Ok(d) => d,
            Err(e) => {
                self.etag = None;
                return Err(self.fail(Stage::Decide, e.into()));
            }
        };
        let m = vm.manifest();
        if self.saved.manifest_sequence.is_none_or(|s| m.sequence > s) {
            self.saved.manifest_sequence = Some(m.sequence);
            if let Err(e) = self.save() {
                return Err(self.fail(Stage::Decide, e));
            }
        }
        let image_id = m.image_header_sha256;
        let result = match decision {
            Decision::UpToDate => CheckResult::UpToDate,
            Decision::NotInRollout { bucket, rollout } => {
                CheckResult::NotInRollout { bucket, rollout }
            }
            Decision::Install if self.saved.has_failed(&image_id) => {
                CheckResult::PreviouslyFailed { version: m.version }
            }
            Decision::Install => match self.retries.verdict(&image_id, self.checks) {
                Verdict::Wait { failures } => CheckResult::RetryLater {
                    version: m.version,
                    failures,
                },
                Verdict::GaveUp { failures } => CheckResult::GaveUp {
                    version: m.version,
                    failures,
                },
                Verdict::Try => {
                    self.set_update(UpdateState::Decided { version: m.version });
                    let buffers = self.buffers.take();
                    let r = match buffers {
                        Some(mut b) => {
                            let r = self.install(&vm, &mut b).await;
                            self.buffers = Some(b);
                            r
                        }
                        None => Err((Stage::Install, AgentError::TrialInProgress)),
                    };
                    match r {
                        Ok(()) => {
                            self.retries.clear();
                            CheckResult::Installed { version: m.version }
                        }
                        Err((stage, e)) => {
                            // Whatever failed (the network, a corrupted transfer, a
                            // server starting over), a later check tries again: the
                            // retry record, not the ETag, decides when.
                            self.retries.failed(&image_id, self.checks);
                            self.etag = etag;
                            return Err(self.fail(stage, e));
                        }
                    }
                }
            },
        };
        self.etag = etag;
        Ok(result)
    }

    /// Fetches the manifest into the manifest buffer: `None` when unchanged. The whole
    /// fetch, redirects and body included, ends by the manifest deadline (or the check's).
    async fn fetch_manifest(
        &mut self,
        if_none_match: Option<&ETag>,
    ) -> Result<Option<(Option<ETag>, usize)>, AgentError> {
        let policy = self.config.retry;
        let deadline_ms = policy
            .manifest_deadline_ms
            .min(self.check_deadline_at.saturating_sub(self.clock.now_ms()));
        let identity = self.identity().token();
        let request = Request {
            url: self.config.manifest_url,
            if_none_match,
            range_from: None,
            identity: identity.as_ref().map(|t| t.as_str()),
            timeout_ms: policy.timeout_ms,
            head_timeout_ms: policy.head_timeout_ms,
            deadline_ms,
            follow: false,
        };
        let (head, mut body) = crate::get_following!(self.client, request)?;
        match head.status {
            304 if if_none_match.is_some() => return Ok(None),
            200 => {}
            status => return Err(AgentError::ManifestStatus(status)),
        }
        if head
            .content_length
            .is_some_and(|l| l > MAX_MANIFEST_LEN as u64)
        {
            return Err(AgentError::ManifestTooLarge);
        }
        let Some(buffers) = self.buffers.as_mut() else {
            return Err(AgentError::TrialInProgress);
        };
        let len = read_to_end(&mut body, &mut buffers.manifest[..])
            .await
            .map_err(|e| match e {
                HttpError::BodyTooLong => AgentError::ManifestTooLarge,
                e => AgentError::Http(e),
            })?;
        Ok(Some((head.etag, len)))
    }

    fn identity(&self) -> Identity<'a> {
        Identity {
            identify: self.config.identify,
            device_id: self.config.device_id,
            device_type: self.firmware.device_type,
            channel: self.config.channel,
            version: self.firmware.version,
            running: self.firmware.running,
            outcome: self.outcome,
        }
    }

    fn device(&self) -> Device<'a> {
        Device {
            device_type: self.firmware.device_type,
            chip: self.firmware.chip,
            channel: self.config.channel,
            running_version: self.firmware.version,
            security_counter: self
                .saved
                .security_counter
                .max(self.config.security_counter_floor),
            last_sequence: self.saved.manifest_sequence,
            device_id: self.config.device_id,
            now: self.clock.unix_time(),
            slot_size: self
                .boot
                .next_update_slot()
                .and_then(|s| self.config.geometry.region(BootTarget::Ota(s)))
                .map_or(0, |r| r.size),
        }
    }

    /// Downloading → Verifying → Switching → RebootRequired.
    async fn install(
        &mut self,
        vm: &VerifiedManifest,
        buffers: &mut UpdateBuffers<'_>,
    ) -> Result<(), (Stage, AgentError)> {
        let m = vm.manifest();
        let slot = self
            .boot
            .next_update_slot()
            .ok_or((Stage::Install, AgentError::NoUpdateSlot))?;
        let region = self
            .config
            .geometry
            .region(BootTarget::Ota(slot))
            .ok_or((Stage::Install, AgentError::NoUpdateSlot))?;
        let UpdateBuffers {
            staging,
            output,
            write,
            recv,
            url,
            ..
        } = buffers;
        let url = resolve_sibling(self.config.manifest_url, m.image_name.as_str(), url)
            .map_err(|e| (Stage::Download, e.into()))?;
        let target = Target {
            slot: region,
            device_type: self.firmware.device_type,
            chip: self.firmware.chip,
            max_window_log: self.config.max_window_log,
        };
        let mut installer = Installer::<F>::new(
            TrustedKeys::new(self.firmware.trusted_keys),
            vm,
            target,
            InstallBuffers {
                staging,
                output,
                write,
            },
        )
        .map_err(|e| (Stage::Install, e.into()))?;
        let start = DownloadProgress {
            total: u64::from(m.image_file_size),
            ..DownloadProgress::default()
        };
        self.update = UpdateState::Downloading { progress: start };
        self.download = Some(start);
        self.sink.progress(&start);
        let mut last = start;
        let identity = self.identity().token();
        let sink = &mut *self.sink;
        // The download gets what is left of the check when that is less than its own.
        let mut policy = self.config.retry;
        policy.deadline_ms = policy
            .deadline_ms
            .min(self.check_deadline_at.saturating_sub(self.clock.now_ms()));
        let mut downloader = Downloader {
            identity: identity.as_ref().map(|t| t.as_str()),
            client: &mut self.client,
            delay: &mut self.delay,
            clock: &self.clock,
            policy,
            jitter: &mut self.jitter,
            buf: recv,
        };
        let r = downloader
            .run(url, &mut installer, &mut self.flash, &mut |p| {
                last = *p;
                sink.progress(p);
            })
            .await;
        self.download = Some(last);
        self.update = UpdateState::Downloading { progress: last };
        r.map_err(|e| (Stage::Download, e.into()))?;
        self.set_update(UpdateState::Verifying);
        let installed = installer
            .finish(&mut self.flash)
            .map_err(|e| (Stage::Install, e.into()))?;
        self.check_secure_boot(&installed, recv)
            .map_err(|e| (Stage::Install, e.into()))?;
        self.set_update(UpdateState::Switching);
        let base_seq = self
            .boot
            .active_index()
            .map_or(0, |i| self.boot.entries()[i].seq);
        // Remember the install before otadata points at it, so that whatever happens
        // next (trial success, rollback, power cut) is settled on the next boot.
        self.saved.pending = Some(PendingInstall {
            slot,
            image_id: *installed.header.header_sha256(),
            security_counter: installed.header.info.security_counter,
            version: installed.header.info.version,
            base_seq,
        });
        self.save().map_err(|e| (Stage::Switch, e))?;
        self.boot
            .set_boot_slot(&mut self.flash, slot)
            .map_err(|e| (Stage::Switch, boot_err(e)))?;
        Ok(())
    }

    /// Refuses an image the Secure Boot V2 bootloader would refuse (see
    /// [`crate::secure_boot`]), before anything points at it.
    fn check_secure_boot(
        &mut self,
        installed: &InstalledImage,
        buf: &mut [u8],
    ) -> Result<(), InstallError> {
        let running = self
            .config
            .geometry
            .region(self.firmware.running)
            .and_then(|r| slot_signature_sector(&mut self.flash, r, self.firmware.chip, buf));
        check_new_image(installed.signature_sector.as_ref(), running.as_ref())
    }

    fn fail(&mut self, stage: Stage, error: AgentError) -> AgentError {
        self.note_error(stage, error);
        error
    }

    fn note_error(&mut self, stage: Stage, error: AgentError) {
        log::warn!("{stage:?}: {error}");
        self.last_error = Some(LastError {
            at_ms: self.clock.now_ms(),
            stage,
            error,
        });
    }

    fn publish(&mut self) {
        let status = self.status();
        self.sink.status(&status);
    }

    /// The device's status (R6).
    pub fn status(&mut self) -> Status {
        let running = self.firmware.running;
        let running_state = match running {
            BootTarget::Ota(n) => self.boot.slot_state(n),
            BootTarget::Factory => None,
        };
        let other = self.boot.next_update_slot().and_then(|n| {
            let target = BootTarget::Ota(n);
            if target == running {
                return None;
            }
            let region = self.config.geometry.region(target)?;
            Some(SlotStatus {
                slot: target,
                state: self.boot.slot_state(n),
                version: slot_version(&mut self.flash, region),
            })
        });
        Status {
            installed_version: self.firmware.version,
            device_type: self.firmware.device_type,
            chip: self.firmware.chip,
            bootloader_mode: self.config.boot.bootloader,
            running: SlotStatus {
                slot: running,
                state: running_state,
                version: Some(self.firmware.version),
            },
            other,
            trial: self.trial,
            security_counter: self
                .saved
                .security_counter
                .max(self.config.security_counter_floor),
            manifest_sequence: self.saved.manifest_sequence,
            rolled_back_releases: self.saved.failed_images().len() as u8,
            update: self.update,
            last_check: self.last_check,
            last_error: self.last_error,
            download: self.download,
            trusted_keys: KeyIds::new(self.firmware.trusted_keys.iter().map(TrustedKey::id)),
        }
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
