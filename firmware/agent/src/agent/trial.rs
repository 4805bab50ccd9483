//! Boot-time trial handling: count or observe the trial boot, settle what became of the
//! last install, and end a trial with [`Agent::confirm`] or [`Agent::reject`].

use embedded_storage::nor_flash::MultiwriteNorFlash;
use ota_format::ChipId;
use ota_format::esp::{AppImageValidator, DigestPolicy, SignatureSectorPolicy, ValidateOptions};

use super::{Agent, AgentError};
use crate::boot::BootAttempt;
use crate::download::Clock;
use crate::geometry::{BootTarget, Region};
use crate::otadata::OtaState;
use crate::state::PendingInstall;
use crate::status::{CheckResult, TrialStatus, UpdateState};

/// What the application must do after [`Agent::start`].
#[derive(Debug, PartialEq, Eq)]
pub enum BootOutcome {
    /// A confirmed image (or one nothing tracks): run normally.
    Normal,
    /// This is a trial boot: run the health check, then hand the token to
    /// [`Agent::confirm`] or [`Agent::reject`].
    Trial(Trial),
    /// The trial boots are used up and otadata now points back: reboot at once.
    RebootRequired,
}

/// A trial boot in progress: the running image is not confirmed yet. Only
/// [`Agent::start`] makes one, and [`Agent::confirm`] (the health check passed) or
/// [`Agent::reject`] (it failed) consume it, so each trial is decided once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a trial boot ends with Agent::confirm or Agent::reject"]
pub struct Trial {
    _decided_by_the_agent_only: (),
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
    // At most region.size / 256 reads.
    while !v.is_done() && at < region.size {
        let n = (region.size - at).min(buf.len() as u32) as usize;
        if flash.read(region.offset + at, &mut buf[..n]).is_err() || v.update(&buf[..n]).is_err() {
            return false;
        }
        at += n as u32;
    }
    v.finish().is_ok()
}

impl<F: MultiwriteNorFlash, C, D, K: Clock> Agent<'_, F, C, D, K> {
    /// What this boot is, and the phase the agent leaves `Booting` for.
    pub(super) fn on_boot(&mut self) -> Result<(BootOutcome, UpdateState), AgentError> {
        let chip = self.firmware.chip;
        let attempt = self
            .boot
            .record_boot_attempt(&mut self.flash, |f, _, region| {
                slot_is_bootable(f, region, chip)
            })?;
        log::info!("boot: {attempt:?}");
        self.settle_pending()?;
        let max_attempts = self.config.boot.max_boot_attempts;
        let counted = match attempt {
            BootAttempt::RolledBack => {
                return Ok((BootOutcome::RebootRequired, UpdateState::Idle));
            }
            BootAttempt::Confirmed
            | BootAttempt::Untracked
            | BootAttempt::SelectedNotBooted { .. } => {
                return Ok((BootOutcome::Normal, UpdateState::Idle));
            }
            BootAttempt::Counted { attempt, .. } => Some(attempt),
            BootAttempt::BootloaderTracked | BootAttempt::ExhaustedNoFallback => None,
        };
        self.trial = Some(TrialStatus {
            attempt: counted,
            max_attempts,
        });
        let trial = Trial {
            _decided_by_the_agent_only: (),
        };
        Ok((BootOutcome::Trial(trial), UpdateState::TrialBoot))
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
                self.forget_pending(Some(p))
            }
            // Selected but the bootloader started something else.
            Some(_) => self.forget_pending(Some(p)),
            // The switch never happened (power cut before otadata was written): the slot
            // may hold a complete image, but the release can simply be installed again.
            None => self.forget_pending(None),
        }
    }

    /// Drops the pending install, remembering `failed` as a release not to retry.
    fn forget_pending(&mut self, failed: Option<PendingInstall>) -> Result<(), AgentError> {
        if let Some(p) = failed {
            self.saved.record_failed(p.image_id);
        }
        self.saved.pending = None;
        self.save()
    }

    /// The pending image is confirmed: its counter becomes the floor.
    fn adopt(&mut self, p: PendingInstall) -> Result<(), AgentError> {
        self.saved.security_counter = self.saved.security_counter.max(p.security_counter);
        self.saved.pending = None;
        self.save()
    }

    /// The application's health check passed: keep this image. The trial ends whatever
    /// the result; on an error the image stays unconfirmed and a later boot counts it
    /// again.
    pub fn confirm(&mut self, _trial: Trial) -> Result<(), AgentError> {
        match self.confirm_running() {
            Ok(()) => {
                self.trial = None;
                self.enter(UpdateState::Idle);
                Ok(())
            }
            Err(e) => {
                self.note_error(e);
                self.publish();
                Err(e)
            }
        }
    }

    fn confirm_running(&mut self) -> Result<(), AgentError> {
        self.boot.confirm(&mut self.flash)?;
        if let Some(p) = self.saved.pending
            && self.firmware.running == BootTarget::Ota(p.slot)
        {
            self.adopt(p)?;
        }
        Ok(())
    }

    /// The application's health check failed: mark this image invalid so the next boot
    /// starts the previous one. The caller reboots.
    pub fn reject(&mut self, _trial: Trial) -> Result<(), AgentError> {
        let chip = self.firmware.chip;
        let rolled_back = self.boot.rollback(&mut self.flash, |f, _, region| {
            slot_is_bootable(f, region, chip)
        });
        match rolled_back {
            Ok(()) => {
                self.enter(UpdateState::RebootRequired);
                Ok(())
            }
            Err(e) => {
                let e = self.fail(e.into());
                self.publish();
                Err(e)
            }
        }
    }
}
