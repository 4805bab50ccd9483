//! The application health check and the trial-boot confirmation it gates.
//!
//! A freshly installed firmware boots on trial. Only this firmware can tell whether it
//! works, so it runs [`check`] and confirms the slot through a [`TrialBoot`] when the check
//! passes. An unconfirmed slot is rolled back: by a rollback-enabled bootloader
//! (PENDING_VERIFY -> ABORTED on the next reset), or, with the stock espflash bootloader,
//! by the update agent's boot-attempt counter.
//!
//! [`BootloaderTrialBoot`] is the interim confirmation over esp-bootloader-esp-idf's
//! otadata code. `ota-agent`'s boot module replaces it with one call once it is wired:
//! it validates entries by CRC the way the bootloader does and also resets the attempt
//! counter, which this implementation cannot.

use embassy_time::{Duration, with_timeout};
use esp_bootloader_esp_idf::ota::OtaImageState;
use esp_bootloader_esp_idf::ota_updater::OtaUpdater;
use esp_bootloader_esp_idf::partitions::{self, AppPartitionSubType, PARTITION_TABLE_MAX_LEN};
use esp_storage::FlashStorage;

use crate::flash::RunningSlot;
use crate::net::Network;

/// What the otadata partition says about the running boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BootState {
    /// Both otadata entries are blank: the bootloader picked its default slot (a board
    /// flashed over the cable). Nothing to confirm.
    Default,
    /// otadata selects `slot` and records `state` for it.
    Selected {
        slot: RunningSlot,
        state: OtaImageState,
    },
    /// otadata selects an OTA slot beyond ota_1, which this two-slot layout does not have.
    UnknownSlot,
    /// otadata could not be read.
    Unreadable(partitions::Error),
}

impl BootState {
    /// Whether this boot awaits confirmation. Only a rollback-enabled bootloader leaves
    /// NEW or PENDING_VERIFY for the app to settle.
    pub fn is_trial(self) -> bool {
        matches!(
            self,
            BootState::Selected {
                state: OtaImageState::New | OtaImageState::PendingVerify,
                ..
            }
        )
    }
}

/// Confirms or reads the trial state of the running slot.
pub trait TrialBoot {
    type Error: core::fmt::Debug;

    fn state(&mut self) -> BootState;

    /// Marks the running slot as working so the bootloader keeps it.
    fn confirm(&mut self) -> Result<(), Self::Error>;
}

/// Why [`BootloaderTrialBoot::confirm`] refused or failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfirmError {
    /// otadata selects a different slot than the one running: the bootloader fell back, and
    /// marking the selected entry VALID would bless the firmware that just failed.
    NotRunningSelectedSlot,
    UnknownSlot,
    Otadata(partitions::Error),
}

/// [`TrialBoot`] through esp-bootloader-esp-idf's otadata accessors.
pub struct BootloaderTrialBoot<'a, 'd> {
    flash: &'a mut FlashStorage<'d>,
    running: Option<RunningSlot>,
}

impl<'a, 'd> BootloaderTrialBoot<'a, 'd> {
    pub fn new(flash: &'a mut FlashStorage<'d>, running: Option<RunningSlot>) -> Self {
        BootloaderTrialBoot { flash, running }
    }

    fn with_updater<T>(
        &mut self,
        f: impl FnOnce(&mut OtaUpdater<'_, 'd>) -> Result<T, partitions::Error>,
    ) -> Result<T, partitions::Error> {
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        let mut updater = OtaUpdater::new(self.flash, &mut buf)?;
        f(&mut updater)
    }
}

fn running_slot(sub: AppPartitionSubType) -> Option<RunningSlot> {
    match sub {
        AppPartitionSubType::Factory => Some(RunningSlot::Factory),
        AppPartitionSubType::Ota0 => Some(RunningSlot::Ota(0)),
        AppPartitionSubType::Ota1 => Some(RunningSlot::Ota(1)),
        _ => None,
    }
}

impl TrialBoot for BootloaderTrialBoot<'_, '_> {
    type Error = ConfirmError;

    fn state(&mut self) -> BootState {
        let read = self.with_updater(|u| {
            let selected = u.selected_partition()?;
            if selected == AppPartitionSubType::Factory {
                // esp-bootloader-esp-idf reports blank otadata as "factory".
                return Ok(None);
            }
            Ok(Some((selected, u.current_ota_state()?)))
        });
        match read {
            Ok(None) => BootState::Default,
            Ok(Some((sub, state))) => match running_slot(sub) {
                Some(slot) => BootState::Selected { slot, state },
                None => BootState::UnknownSlot,
            },
            Err(e) => BootState::Unreadable(e),
        }
    }

    fn confirm(&mut self) -> Result<(), ConfirmError> {
        match self.state() {
            BootState::Selected { slot, .. } if Some(slot) == self.running => self
                .with_updater(|u| u.set_current_ota_state(OtaImageState::Valid))
                .map_err(ConfirmError::Otadata),
            BootState::Selected { .. } => Err(ConfirmError::NotRunningSelectedSlot),
            BootState::Default => Ok(()),
            BootState::UnknownSlot => Err(ConfirmError::UnknownSlot),
            BootState::Unreadable(e) => Err(ConfirmError::Otadata(e)),
        }
    }
}

/// The application's verdict on this boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HealthVerdict {
    Healthy,
    Unhealthy(&'static str),
}

/// This application is healthy when it reaches its network: the one thing every later
/// update depends on. A firmware that cannot get an address within `timeout` must not be
/// kept, or the device could never be updated again.
pub async fn check(network: Network, timeout: Duration) -> HealthVerdict {
    let stack = match network {
        // A build without WiFi credentials is a bench build flashed by cable; there is no
        // trial to protect and nothing network-related to check.
        Network::Disabled => return HealthVerdict::Healthy,
        Network::Failed(reason) => return HealthVerdict::Unhealthy(reason),
        Network::Up(stack) => stack,
    };
    if with_timeout(timeout, stack.wait_config_up()).await.is_err() {
        return HealthVerdict::Unhealthy("no IPv4 address from DHCP in time");
    }
    if esp_alloc::HEAP.free() < crate::status::MIN_FREE_HEAP {
        return HealthVerdict::Unhealthy("heap nearly exhausted after start-up");
    }
    HealthVerdict::Healthy
}
