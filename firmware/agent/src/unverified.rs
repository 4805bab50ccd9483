//! otadata writes that select a slot on the caller's word, without proof of what the
//! slot holds: what a host with physical access does (a factory flasher, ESP-IDF's
//! `otatool.py switch_ota_partition`), and what the simulator's otadata scenarios need
//! to set up a device. Device firmware has no reason to call this; the agent never does.
//! On the device, [`crate::boot::BootState::activate`] is the only switch, and it takes
//! the proof an install returns.

use embedded_storage::nor_flash::NorFlash;

use crate::boot::{BootError, BootState};

/// Points the bootloader at OTA slot `slot` for the next boot, writing exactly what
/// [`BootState::activate`] writes (ESP-IDF's `esp_ota_set_boot_partition`), but for a
/// slot nothing verified.
pub fn select_slot<F: NorFlash>(
    state: &mut BootState,
    flash: &mut F,
    slot: u8,
) -> Result<(), BootError<F::Error>> {
    state.set_boot_slot(flash, slot)
}
