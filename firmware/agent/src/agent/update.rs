//! The update proper: Decided → Downloading → Verifying → Switching. Nothing points at
//! the slot until the installer's read-back proof ([`InstalledImage`]) exists, and the
//! switch consumes it.

use embedded_hal_async::delay::DelayNs;
use embedded_storage::nor_flash::MultiwriteNorFlash;
use ota_format::{TrustedKeys, VerifiedManifest};

use super::{Agent, AgentError, UpdateBuffers};
use crate::download::{Clock, DownloadProgress, Downloader};
use crate::geometry::BootTarget;
use crate::http::HttpClient;
use crate::install::{
    Base, Generation, InstallBuffers, InstallError, InstalledImage, Installer, Target,
};
use crate::secure_boot::{check_new_image, slot_app_image, slot_signature_sector};
use crate::state::PendingInstall;
use crate::status::{LastUpdate, UpdateState, UpdateVia};
use crate::url::resolve_sibling;
use crate::zstd::FrameDecoder;

impl<F: MultiwriteNorFlash, C: HttpClient, D: DelayNs, K: Clock> Agent<'_, F, C, D, K> {
    /// Installs the release `vm` names and switches to it; on an error the phase it
    /// stopped in is where it failed.
    pub(super) async fn update(&mut self, vm: &VerifiedManifest) -> Result<(), AgentError> {
        let Some(mut buffers) = self.buffers.take() else {
            return Err(AgentError::BuffersInUse);
        };
        let r = self.update_with(vm, &mut buffers).await;
        self.buffers = Some(buffers);
        r
    }

    async fn update_with(
        &mut self,
        vm: &VerifiedManifest,
        buffers: &mut UpdateBuffers<'_>,
    ) -> Result<(), AgentError> {
        let m = vm.manifest();
        let slot = self
            .boot
            .next_update_slot()
            .ok_or(AgentError::NoUpdateSlot)?;
        let region = self
            .config
            .geometry
            .region(BootTarget::Ota(slot))
            .ok_or(AgentError::NoUpdateSlot)?;
        let target = Target {
            slot: region,
            device_type: self.firmware.device_type,
            chip: self.firmware.chip,
            max_window_log: self.config.max_window_log,
            generation: self.config.generation,
        };
        let UpdateBuffers {
            decoder, recv, url, ..
        } = buffers;
        let mut downloaded = 0u64;
        // A delta first, when this agent takes them and the running image is readable;
        // whatever goes wrong with it, the full image follows in this same check.
        let mut installed = None;
        if self.config.generation == Generation::Two
            && let Some(base) = self.running_image(recv)
            && let Some(name) = ota_format::delta_file_name(m.image_name.as_str(), &base.sha256)
        {
            let attempt = match resolve_sibling(self.config.manifest_url, name.as_str(), url) {
                Ok(url) => {
                    let io = (&mut **decoder, &mut **recv);
                    self.install_from(vm, url, target, Some(base), io, &mut downloaded)
                        .await
                }
                Err(e) => Err(e.into()),
            };
            match attempt {
                Ok(image) => installed = Some((image, UpdateVia::Delta)),
                Err(e) => log::info!("delta {} not installed ({e}): full image", name.as_str()),
            }
        }
        let (installed, via) = match installed {
            Some(done) => done,
            None => {
                let url = resolve_sibling(self.config.manifest_url, m.image_name.as_str(), url)?;
                let io = (&mut **decoder, &mut **recv);
                let image = self
                    .install_from(vm, url, target, None, io, &mut downloaded)
                    .await?;
                (image, UpdateVia::Full)
            }
        };
        self.check_secure_boot(&installed, recv)?;
        self.enter(UpdateState::Switching);
        let base_seq = self
            .boot
            .active_index()
            .map_or(0, |i| self.boot.entries()[i].seq);
        // Remember the install before otadata points at it, so that whatever happens
        // next (trial success, rollback, power cut) is settled on the next boot.
        let header = installed.header();
        self.saved.pending = Some(PendingInstall {
            slot,
            image_id: *header.header_sha256(),
            security_counter: header.info.security_counter,
            version: header.info.version,
            base_seq,
        });
        self.save()?;
        self.last_update = Some(LastUpdate {
            version: header.info.version,
            via,
            bytes_downloaded: downloaded,
        });
        self.boot
            .activate(&mut self.flash, installed.into_verified_slot())?;
        Ok(())
    }

    /// Downloads `url` into the update slot (a delta against `base`, or the full image)
    /// and proves what landed there; `downloaded` grows by the bytes received.
    async fn install_from(
        &mut self,
        vm: &VerifiedManifest,
        url: &str,
        target: Target,
        base: Option<Base>,
        (decoder, recv): (&mut FrameDecoder, &mut [u8]),
        downloaded: &mut u64,
    ) -> Result<InstalledImage, AgentError> {
        let keys = TrustedKeys::new(self.firmware.trusted_keys);
        let memory = InstallBuffers { decoder };
        let mut installer = match base {
            Some(base) => Installer::<F>::new_delta(keys, vm, target, memory, base)?,
            None => Installer::<F>::new(keys, vm, target, memory)?,
        };
        let start = DownloadProgress {
            total: installer.file_size().unwrap_or(0),
            ..DownloadProgress::default()
        };
        self.download = Some(start);
        if matches!(self.phase, UpdateState::Downloading { .. }) {
            // A delta that was not there: the same phase goes on with the full image.
            self.phase = UpdateState::Downloading { progress: start };
        } else {
            self.enter(UpdateState::Downloading { progress: start });
        }
        self.sink.progress(&start);
        let mut last = start;
        let identity = self.identity().token();
        let sink = &mut *self.sink;
        // The download gets what is left of the check when that is less than its own.
        let mut policy = self.config.retry;
        policy.deadline_ms = policy
            .deadline_ms
            .min(self.check_deadline_at.saturating_sub(self.clock.now_ms()));
        if base.is_some() {
            // The full image is the fallback: a delta whose host misbehaves gets one
            // retry and half the time left, so the full image still has the rest.
            policy.max_attempts = policy.max_attempts.min(2);
            policy.deadline_ms /= 2;
        }
        let mut downloader = Downloader {
            identity: identity.as_ref().map(|t| t.as_str()),
            client: &mut self.client,
            delay: &mut self.delay,
            clock: &self.clock,
            policy,
            jitter: &mut self.jitter,
            buf: recv,
        };
        let result = downloader
            .run(url, &mut installer, &mut self.flash, &mut |p| {
                last = *p;
                sink.progress(p);
            })
            .await;
        // The installer counts bytes its verifier took even when decoding them failed.
        *downloaded += last.received.max(installer.received());
        // Progress within a phase is not a transition: the sink had it through
        // `progress`; the status keeps the last of it.
        self.download = Some(last);
        self.phase = UpdateState::Downloading { progress: last };
        result?;
        self.enter(UpdateState::Verifying);
        let mut finishing = installer.finish_download(&mut self.flash)?;
        // An encoding-3 delta rewrites the slot in place, one sector erase per step
        // (45 ms typical, 400 ms at most): yield between steps, so the pass (tens of
        // seconds at worst for a large image) never starves the executor, its watchdog
        // or the network stack. At most one step per sector of the image.
        while !finishing.step(&mut self.flash)? {
            self.delay.delay_ms(1).await;
        }
        Ok(finishing.prove(&mut self.flash)?)
    }

    /// The running image as a delta's base, read from its slot once per boot.
    fn running_image(&mut self, buf: &mut [u8]) -> Option<Base> {
        if self.running_image.is_none() {
            let slot = self.config.geometry.region(self.firmware.running);
            let found = slot.and_then(|slot| {
                let info = slot_app_image(&mut self.flash, slot, self.firmware.chip, buf)?;
                Some(Base {
                    slot,
                    size: info.installed_len,
                    sha256: info.image_sha256,
                })
            });
            self.running_image = Some(found);
        }
        self.running_image.flatten()
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
        check_new_image(installed.signature_sector(), running.as_ref())
    }
}
