//! The stock ESP-IDF second-stage bootloader's otadata handling
//! (`bootloader_utility_get_selected_boot_partition`,
//! `bootloader_utility_load_boot_image`, `set_actual_ota_seq`), reproduced so
//! the simulator boots exactly like a device and tests can check the agent
//! against it. Image validation is the caller's: pass a closure.

use embedded_storage::nor_flash::NorFlash;

use crate::geometry::{BootTarget, Geometry, Region};
use crate::io::{read_entries, rewrite_entry};
use crate::otadata::{OtaSelectEntry, OtaState, active_index};

/// Which ESP-IDF bootloader build the device has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BootloaderMode {
    /// `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`: the bootloader turns NEW into
    /// PENDING_VERIFY when it boots an entry, and PENDING_VERIFY into ABORTED
    /// when it finds one still unconfirmed.
    RollbackEnabled,
    /// No app rollback (the bootloaders espflash ships): states are only read
    /// to skip INVALID/ABORTED entries; trial boots must be protected by the
    /// agent (see [`crate::boot`]).
    RollbackDisabled,
}

/// What `get_selected_boot_partition` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Where the load loop starts. `Factory` is ESP-IDF's `FACTORY_INDEX`,
    /// also used when no factory partition exists ("try all partitions").
    pub start: BootTarget,
    /// Both entries were empty or had a bad CRC and there is no factory: the
    /// bootloader will record the slot it boots as seq `slot + 1`, VALID.
    pub initial_otadata: bool,
}

/// The bootloader's selection, including the otadata writes a
/// rollback-enabled bootloader makes on the way.
pub fn select<F: NorFlash>(
    flash: &mut F,
    geometry: &Geometry,
    mode: BootloaderMode,
) -> Result<Selection, F::Error> {
    let mut otadata = read_entries(flash, geometry)?;
    if mode == BootloaderMode::RollbackEnabled {
        for (index, entry) in otadata.iter_mut().enumerate() {
            if entry.ota_state() == OtaState::PendingVerify {
                *entry = entry.with_state(OtaState::Aborted);
                rewrite_entry(flash, geometry, index, entry)?;
            }
        }
    }
    let slot_count = geometry.slot_count();
    let mut selection = Selection {
        start: BootTarget::Factory,
        initial_otadata: false,
    };
    if (otadata[0].is_invalid() && otadata[1].is_invalid()) || slot_count == 0 {
        if geometry.factory().is_none() {
            selection.start = BootTarget::Ota(0);
            selection.initial_otadata = otadata[0].is_initial() && otadata[1].is_initial();
        }
        return Ok(selection);
    }
    if let Some(active) = active_index(&otadata) {
        let entry: &mut OtaSelectEntry = &mut otadata[active];
        // slot_count != 0 here, so slot() is Some.
        selection.start = BootTarget::Ota(entry.slot(slot_count).unwrap_or(0));
        if mode == BootloaderMode::RollbackEnabled && entry.ota_state() == OtaState::New {
            *entry = entry.with_state(OtaState::PendingVerify);
            rewrite_entry(flash, geometry, active, entry)?;
        }
    }
    Ok(selection)
}

/// The order in which `bootloader_utility_load_boot_image` tries app
/// partitions: from `start` down to factory, then upwards from `start + 1`.
/// Partitions that do not exist are skipped (the test app is not modelled).
pub fn boot_order(start: BootTarget, geometry: &Geometry) -> impl Iterator<Item = BootTarget> + '_ {
    let start_index: i32 = match start {
        BootTarget::Factory => -1,
        BootTarget::Ota(n) => i32::from(n),
    };
    let to_target = |i: i32| {
        if i < 0 {
            BootTarget::Factory
        } else {
            BootTarget::Ota(i as u8)
        }
    };
    let down = (-1..=start_index).rev().map(to_target);
    let up = (start_index + 1..i32::from(geometry.slot_count())).map(to_target);
    down.chain(up)
        .filter(move |t| geometry.region(*t).is_some())
}

/// `set_actual_ota_seq`: after booting OTA slot `booted` from initial
/// otadata, write `otadata[0] = { seq: booted + 1, VALID }`.
pub fn record_initial_boot<F: NorFlash>(
    flash: &mut F,
    geometry: &Geometry,
    selection: &Selection,
    booted: BootTarget,
) -> Result<(), F::Error> {
    if let (true, BootTarget::Ota(slot)) = (selection.initial_otadata, booted) {
        let entry = OtaSelectEntry::new(u32::from(slot) + 1, OtaState::Valid);
        rewrite_entry(flash, geometry, 0, &entry)?;
    }
    Ok(())
}

/// A whole boot: select, try partitions in order with `is_bootable`, record
/// the initial seq. Returns the partition started, or `None` where the real
/// bootloader would reset forever ("No bootable app partitions").
pub fn boot<F, V>(
    flash: &mut F,
    geometry: &Geometry,
    mode: BootloaderMode,
    mut is_bootable: V,
) -> Result<Option<BootTarget>, F::Error>
where
    F: NorFlash,
    V: FnMut(&mut F, BootTarget, Region) -> bool,
{
    let selection = select(flash, geometry, mode)?;
    for target in boot_order(selection.start, geometry) {
        let Some(region) = geometry.region(target) else {
            continue;
        };
        if is_bootable(flash, target, region) {
            record_initial_boot(flash, geometry, &selection, target)?;
            return Ok(Some(target));
        }
    }
    Ok(None)
}
