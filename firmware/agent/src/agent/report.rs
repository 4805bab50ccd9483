//! The device's status (R6), assembled from the agent's phase and records.

use embedded_storage::nor_flash::MultiwriteNorFlash;
use ota_format::esp::{APP_DESC_LEN, APP_DESC_OFFSET, AppDescriptor};
use ota_format::{TrustedKey, Version};

use super::Agent;
use crate::geometry::{BootTarget, Region};
use crate::status::{KeyIds, SlotStatus, Status};

/// The version in the app descriptor of the image in `region`, if it has one.
fn slot_version<F: MultiwriteNorFlash>(flash: &mut F, region: Region) -> Option<Version> {
    let mut buf = [0u8; APP_DESC_LEN];
    flash
        .read(region.offset + APP_DESC_OFFSET as u32, &mut buf)
        .ok()?;
    let desc = AppDescriptor::parse(&buf).ok()?;
    Version::parse(desc.version())
}

impl<F: MultiwriteNorFlash, C, D, K> Agent<'_, F, C, D, K> {
    /// The security counter in force: the confirmed one, never below the firmware's floor.
    pub(super) fn security_counter(&self) -> u64 {
        self.saved
            .security_counter
            .max(self.config.security_counter_floor)
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
            security_counter: self.security_counter(),
            manifest_sequence: self.saved.manifest_sequence,
            rolled_back_releases: self.saved.failed_images().len() as u8,
            update: self.phase,
            last_check: self.last_check,
            last_error: self.last_error,
            download: self.download,
            last_update: self.last_update,
            trusted_keys: KeyIds::new(self.firmware.trusted_keys.iter().map(TrustedKey::id)),
        }
    }
}
