//! One check: fetch the manifest, verify it, decide on it, and when it names a release
//! to install, hand over to the update (`super::update`).

use embedded_hal_async::delay::DelayNs;
use embedded_storage::nor_flash::MultiwriteNorFlash;
use ota_format::{Decision, Device, MAX_MANIFEST_LEN, Manifest, TrustedKeys};

use super::{Agent, AgentError};
use crate::download::{Clock, RetryPolicy};
use crate::geometry::BootTarget;
use crate::http::{ETag, HttpClient, HttpError, Request, read_to_end};
use crate::identity::Identity;
use crate::release_retry::Verdict;
use crate::status::{CheckResult, LastCheck, UpdateState};

impl<'a, F: MultiwriteNorFlash, C: HttpClient, D: DelayNs, K: Clock> Agent<'a, F, C, D, K> {
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
        let r = self.check_and_install().await;
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
        // A trial comes first: its own install is pending until it is confirmed, and a
        // device on trial must not be told to reboot because it checked.
        let next = if self.trial.is_some() {
            UpdateState::TrialBoot
        } else if self.saved.pending.is_some() {
            UpdateState::RebootRequired
        } else {
            UpdateState::Idle
        };
        self.enter(next);
        r
    }

    async fn check_and_install(&mut self) -> Result<CheckResult, AgentError> {
        if self.trial.is_some() {
            return Err(self.fail(AgentError::TrialInProgress));
        }
        if self.saved.pending.is_some() {
            return Err(self.fail(AgentError::RebootPending));
        }
        self.enter(UpdateState::Checking);
        // A release waiting for its retry must not hide behind a 304.
        let if_none_match = if self.retries.retry_due(self.checks) {
            None
        } else {
            self.etag
        };
        let (etag, len) = match self.fetch_manifest(if_none_match.as_ref()).await {
            Ok(Some(got)) => got,
            Ok(None) => return Ok(CheckResult::NotModified),
            Err(e) => return Err(self.fail(e)),
        };
        let keys = TrustedKeys::new(self.firmware.trusted_keys);
        let Some(buffers) = self.buffers.as_ref() else {
            return Err(self.fail(AgentError::BuffersInUse));
        };
        let decided = Manifest::verify(&buffers.manifest[..len], &keys)
            .and_then(|vm| Ok((vm, vm.decide(&self.device())?)));
        let (vm, decision) = match decided {
            Ok(d) => d,
            Err(e) => {
                self.etag = None;
                return Err(self.fail(e.into()));
            }
        };
        let m = vm.manifest();
        if self.saved.manifest_sequence.is_none_or(|s| m.sequence > s) {
            self.saved.manifest_sequence = Some(m.sequence);
            if let Err(e) = self.save() {
                return Err(self.fail(e));
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
                    self.enter(UpdateState::Decided { version: m.version });
                    if let Err(e) = self.update(&vm).await {
                        // Whatever failed (the network, a corrupted transfer, a server
                        // starting over), a later check tries again: the retry record,
                        // not the ETag, decides when.
                        self.retries.failed(&image_id, self.checks);
                        self.etag = etag;
                        return Err(self.fail(e));
                    }
                    self.retries.clear();
                    CheckResult::Installed { version: m.version }
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
        let policy: RetryPolicy = self.config.retry;
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
            return Err(AgentError::BuffersInUse);
        };
        let len = read_to_end(&mut body, &mut buffers.manifest[..])
            .await
            .map_err(|e| match e {
                HttpError::BodyTooLong => AgentError::ManifestTooLarge,
                e => AgentError::Http(e),
            })?;
        Ok(Some((head.etag, len)))
    }

    /// What the device says about itself in its requests' `User-Agent`.
    pub(super) fn identity(&self) -> Identity<'a> {
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

    /// The device as the manifest's policy sees it.
    fn device(&self) -> Device<'a> {
        Device {
            device_type: self.firmware.device_type,
            chip: self.firmware.chip,
            channel: self.config.channel,
            running_version: self.firmware.version,
            security_counter: self.security_counter(),
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
}
