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
use crate::install::{InstallBuffers, InstallError, InstalledImage, Installer, Target};
use crate::secure_boot::{check_new_image, slot_signature_sector};
use crate::state::PendingInstall;
use crate::status::UpdateState;
use crate::url::resolve_sibling;

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
        let UpdateBuffers {
            decoder, recv, url, ..
        } = buffers;
        let url = resolve_sibling(self.config.manifest_url, m.image_name.as_str(), url)?;
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
            InstallBuffers { decoder },
        )?;
        let start = DownloadProgress {
            total: u64::from(m.image_file_size),
            ..DownloadProgress::default()
        };
        self.download = Some(start);
        self.enter(UpdateState::Downloading { progress: start });
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
        let downloaded = downloader
            .run(url, &mut installer, &mut self.flash, &mut |p| {
                last = *p;
                sink.progress(p);
            })
            .await;
        // Progress within a phase is not a transition: the sink had it through
        // `progress`; the status keeps the last of it.
        self.download = Some(last);
        self.phase = UpdateState::Downloading { progress: last };
        downloaded?;
        self.enter(UpdateState::Verifying);
        let installed = installer.finish(&mut self.flash)?;
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
        self.boot
            .activate(&mut self.flash, installed.into_verified_slot())?;
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
        check_new_image(installed.signature_sector(), running.as_ref())
    }
}
