//! Flash errors as diagnostics: a stable code, a line of help and an exit code each.

use std::fmt;

use miette::Diagnostic;
use ota_sign_lib::flash::FlashError;

use crate::exit::{self, ExitStatus};

/// A refused or failed first install as a diagnostic.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FlashDiagnostic(pub FlashError);

crate::exit::failure_via!(FlashError => FlashDiagnostic);

/// The stable name of a flash error, used in diagnostic codes.
pub fn flash_error_name(e: &FlashError) -> &'static str {
    match e {
        FlashError::EmptyTable { .. } | FlashError::InvalidTable { .. } => "invalid_table",
        FlashError::Misaligned { .. } => "misaligned_partition",
        FlashError::BeforeTableEnd { .. } => "partition_before_table_end",
        FlashError::OutsideFlash { .. } => "partition_outside_flash",
        FlashError::Overlap { .. } => "overlapping_partitions",
        FlashError::NoOtadata => "no_otadata",
        FlashError::TooFewSlots { .. } => "too_few_slots",
        FlashError::NoStatePartition => "no_state_partition",
        FlashError::BadStatePartition { .. } => "bad_state_partition",
        FlashError::AppTooLarge { .. } => "app_too_large",
        FlashError::WrongChip { .. } => "wrong_chip",
        FlashError::FlashTooSmall { .. } => "flash_too_small",
        FlashError::Bootloader { .. } => "bootloader",
        FlashError::Serial { .. } => "serial",
        FlashError::Port { .. } => "port",
        FlashError::DeviceFlashTooSmall { .. } => "device_flash_too_small",
    }
}

impl Diagnostic for FlashDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        exit::diagnostic_code("flash", flash_error_name(&self.0))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match &self.0 {
            FlashError::EmptyTable { .. }
            | FlashError::InvalidTable { .. }
            | FlashError::Misaligned { .. }
            | FlashError::BeforeTableEnd { .. }
            | FlashError::OutsideFlash { .. }
            | FlashError::Overlap { .. } => {
                "fix the partition table (app partitions on 64 KiB boundaries, data on 4 KiB, none before 0x9000 or past the flash), or drop --partition-table for the default layout"
            }
            FlashError::NoOtadata | FlashError::TooFewSlots { .. } => {
                "add `otadata, data, ota, , 0x2000` and two app partitions `ota_0`/`ota_1` to the table, or drop --partition-table for the default layout"
            }
            FlashError::NoStatePartition | FlashError::BadStatePartition { .. } => {
                "add `ota_state, data, undefined, , 0x2000` to the table (ota-sign's default layout has it at 0xb000)"
            }
            FlashError::AppTooLarge { .. } => {
                "shrink the firmware, or use a partition table with bigger app slots (--partition-table, --flash-size)"
            }
            FlashError::WrongChip { .. } => {
                "flash firmware built for this chip, or correct --chip / `chip` in ota-sign.toml"
            }
            FlashError::FlashTooSmall { .. } => "pass the real --flash-size of the device",
            FlashError::Bootloader { .. } => return None,
            FlashError::Serial { .. } | FlashError::Port { .. } => {
                "check the cable and the --port; hold BOOT while pressing RESET to enter download mode if the chip does not answer"
            }
            FlashError::DeviceFlashTooSmall { .. } => {
                "pass the device's real --flash-size (or leave it out to use the detected size)"
            }
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for FlashDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.0 {
            // The device would not be able to update itself (or would not boot): refused
            // by a safety rule, like a lock-out.
            FlashError::NoOtadata
            | FlashError::TooFewSlots { .. }
            | FlashError::NoStatePartition
            | FlashError::BadStatePartition { .. }
            | FlashError::AppTooLarge { .. }
            | FlashError::WrongChip { .. }
            | FlashError::DeviceFlashTooSmall { .. } => exit::POLICY,
            FlashError::Port { .. } => exit::IO,
            FlashError::EmptyTable { .. }
            | FlashError::InvalidTable { .. }
            | FlashError::Misaligned { .. }
            | FlashError::BeforeTableEnd { .. }
            | FlashError::OutsideFlash { .. }
            | FlashError::Overlap { .. }
            | FlashError::FlashTooSmall { .. }
            | FlashError::Bootloader { .. }
            | FlashError::Serial { .. } => exit::FAILURE,
        }
    }
}
