//! The application's side of the ESP-IDF boot flow: which slot runs, switch
//! to another slot, confirm a trial boot, roll back, and — for bootloaders
//! without app rollback — count trial boots.
//!
//! # Writes, and why a power cut cannot brick
//!
//! | operation | flash operations | a power cut in between leaves |
//! |---|---|---|
//! | [`BootState::activate`] | erase the *other* sector, write its 32-byte entry (ESP-IDF `esp_rewrite_ota_data`) | the other entry empty or torn: its CRC (written last, covering `ota_seq`) does not match, so the old entry still wins: old slot |
//! | [`BootState::confirm`] from UNDEFINED (no-rollback bootloader) | one word write `ota_state = VALID` (clears bits only) | a state word between UNDEFINED and VALID: still a valid entry, still unconfirmed (counted again, confirmed again); at worst INVALID: old slot |
//! | [`BootState::confirm`] from NEW / PENDING_VERIFY, [`BootState::rollback`] from a state that cannot be reached by clearing bits | erase the *active* sector, rewrite the entry (ESP-IDF `esp_ota_current_ota_is_workable`) | the active entry empty or torn: the other entry wins: old slot |
//! | [`BootState::rollback`] from UNDEFINED / counted trial | one word write `ota_state = INVALID` | INVALID (old slot) or a state that is still unconfirmed with attempts exhausted: rolled back again on the next boot; never VALID |
//! | [`BootState::record_boot_attempt`] | one word write in `seq_label` clearing one more counter bit | the counter increased or not; `ota_seq`, state and CRC are untouched, so the selection cannot change |
//!
//! # Boot-attempt counter (bootloader without rollback)
//!
//! The counter lives in the `seq_label` of the entry that selects the running
//! slot (entry bytes 4..24, see [`crate::otadata`]), which ESP-IDF neither
//! reads nor covers by the CRC. The 160 label bits start erased (1); each
//! counted boot clears the lowest bit still set, with one aligned 4-byte word
//! write. The count is the number of cleared bits, so a torn write counts at
//! most once, a half-programmed word reads as "more attempts" (the safe
//! direction), and a fresh entry written by [`BootState::activate`]
//! starts at zero. When a boot finds `max_boot_attempts` bits already
//! cleared, the entry is marked INVALID and the bootloader falls back to the
//! other entry's slot. This needs a flash that allows re-programming a word
//! (`MultiwriteNorFlash`: ESP32 SPI NOR through esp-storage does; ESP-IDF's
//! NVS relies on the same property). With flash encryption the 16-byte write
//! unit makes this impossible; such devices need the rollback bootloader.
//!
//! Longer than our usual file (~600 lines): every write to otadata is here, beside the
//! table above that argues each one power-cut safe; splitting the writes from their
//! argument would make the safety case harder to check.

use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlash};

pub use crate::bootloader::BootloaderMode;
use crate::geometry::{BootTarget, Geometry, Region};
use crate::io::{erase_otadata, flash_fits, read_entries, rewrite_entry, write_entry_word};
use crate::otadata::{
    LABEL_LEN, LABEL_OFFSET, OtaSelectEntry, OtaState, STATE_OFFSET, active_index,
    seq_for_target_slot,
};

/// Largest `max_boot_attempts`: one bit per attempt in `seq_label`.
pub const MAX_COUNTED_ATTEMPTS: u8 = (LABEL_LEN * 8) as u8;

/// How trial boots are protected on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BootConfig {
    /// The bootloader build on the device.
    pub bootloader: BootloaderMode,
    /// Boots an unconfirmed slot gets before the agent rolls it back, when the
    /// bootloader does not do it (1..=160).
    pub max_boot_attempts: u8,
}

impl BootConfig {
    /// A rollback-enabled ESP-IDF bootloader; the agent still counts if it
    /// finds the bootloader did not act (NEW at app start).
    pub const fn rollback_bootloader(max_boot_attempts: u8) -> Self {
        Self {
            bootloader: BootloaderMode::RollbackEnabled,
            max_boot_attempts,
        }
    }

    /// A bootloader without app rollback (espflash's): the agent counts.
    pub const fn counting(max_boot_attempts: u8) -> Self {
        Self {
            bootloader: BootloaderMode::RollbackDisabled,
            max_boot_attempts,
        }
    }

    /// The state [`BootState::activate`] writes: what ESP-IDF's
    /// `set_new_state_otadata` returns for this bootloader build.
    pub const fn new_entry_state(&self) -> OtaState {
        match self.bootloader {
            BootloaderMode::RollbackEnabled => OtaState::New,
            BootloaderMode::RollbackDisabled => OtaState::Undefined,
        }
    }
}

/// Why a boot-slot operation failed. Small and `Copy` when the flash error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootError<E> {
    /// The flash driver failed.
    #[error("flash: {0:?}")]
    Flash(E),
    /// The flash's read/write/erase sizes do not fit 32-byte entries, 4-byte
    /// words and 4 KiB sectors.
    #[error(
        "flash granularity does not fit otadata (needs write size dividing 32, erase size dividing 4096)"
    )]
    UnsupportedFlash,
    /// `max_boot_attempts` is 0 or above [`MAX_COUNTED_ATTEMPTS`].
    #[error("max_boot_attempts must be 1..=160")]
    BadAttemptLimit,
    /// The partition table has no OTA slots.
    #[error("no OTA app slots")]
    NoOtaSlots,
    /// The requested slot does not exist.
    #[error("OTA slot {slot} does not exist ({count} slots)")]
    SlotOutOfRange {
        /// Requested slot.
        slot: u8,
        /// Slots present.
        count: u8,
    },
    /// Asked to boot the factory app but there is none.
    #[error("no factory partition")]
    NoFactory,
    /// No valid otadata entry selects the running app (factory, or
    /// unformatted otadata): nothing to confirm or roll back.
    #[error("no valid otadata entry selects the running app")]
    NoActiveEntry,
    /// The app runs from another partition than otadata selects (the
    /// bootloader fell back): confirming would confirm the wrong image.
    #[error("running {running:?} but otadata selects {selected:?}")]
    RunningNotSelected {
        /// What runs.
        running: BootTarget,
        /// What otadata selects.
        selected: BootTarget,
    },
    /// Neither the other entry's slot nor a factory app can be booted.
    #[error("rollback not possible: no other bootable app")]
    RollbackNotPossible,
    /// The next sequence number would overflow 32 bits.
    #[error("otadata sequence number exhausted")]
    SequenceExhausted,
    /// The verified slot is not one of this geometry's OTA slots (the image was
    /// installed for another partition table).
    #[error("verified region at {:#x} ({:#x} bytes) is not an OTA slot", .0.offset, .0.size)]
    NotAnOtaSlot(Region),
}

/// An OTA slot whose contents passed verification: what [`BootState::activate`] needs
/// to point otadata at it. Only [`crate::install::Installer::finish`] makes one (inside
/// the [`crate::install::InstalledImage`] it returns); it is neither `Clone` nor `Copy`,
/// so one verification allows one switch.
///
/// ```compile_fail,E0624
/// // No slot is switched to on someone's word: the raw otadata write is private.
/// fn switch<F: embedded_storage::nor_flash::NorFlash>(state: &mut ota_agent::BootState, flash: &mut F) {
///     let _ = state.set_boot_slot(flash, 1);
/// }
/// ```
///
/// ```compile_fail,E0624
/// // Nor can the proof be made from a bare region.
/// fn forge(region: ota_agent::Region) -> ota_agent::boot::VerifiedSlot {
///     ota_agent::boot::VerifiedSlot::new(region)
/// }
/// ```
///
/// ```compile_fail,E0308
/// // `activate` takes the proof, not a slot number.
/// fn switch<F: embedded_storage::nor_flash::NorFlash>(state: &mut ota_agent::BootState, flash: &mut F) {
///     let _ = state.activate(flash, 1);
/// }
/// ```
///
/// What compiles: the proof an install returns, consumed by the switch.
///
/// ```
/// use embedded_storage::nor_flash::NorFlash;
/// use ota_agent::{BootError, BootState, install::InstalledImage};
///
/// fn switch<F: NorFlash>(
///     state: &mut BootState,
///     flash: &mut F,
///     installed: InstalledImage,
/// ) -> Result<(), BootError<F::Error>> {
///     state.activate(flash, installed.into_verified_slot())
/// }
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedSlot {
    region: Region,
}

impl VerifiedSlot {
    /// Only the installer's read-back proof calls this.
    pub(crate) const fn new(region: Region) -> Self {
        Self { region }
    }

    /// The verified slot's flash range.
    pub const fn region(&self) -> Region {
        self.region
    }
}

/// What [`BootState::record_boot_attempt`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootAttempt {
    /// The running slot is confirmed (VALID): nothing to protect.
    Confirmed,
    /// No otadata entry selects the running app (factory or first boot).
    Untracked,
    /// A rollback-enabled bootloader tracks this trial (PENDING_VERIFY): it
    /// aborts the slot if the app reboots without confirming.
    BootloaderTracked,
    /// Trial boot `attempt` of `max`, counted in flash by the agent.
    Counted {
        /// This boot's number, 1-based.
        attempt: u8,
        /// The limit.
        max: u8,
        /// The entry's state says the configured bootloader mode is wrong
        /// (NEW under a "rollback" bootloader, PENDING_VERIFY under a
        /// "no rollback" one).
        bootloader_mismatch: bool,
    },
    /// The attempts were used up: the entry is now INVALID. Reboot now; the
    /// bootloader will start the previous slot.
    RolledBack,
    /// The attempts were used up but nothing else can boot: the entry stays,
    /// the app should keep running and try to confirm.
    ExhaustedNoFallback,
    /// The bootloader started another partition than otadata selects (the
    /// selected image did not load). An unconfirmed selected entry was
    /// marked INVALID so otadata tells the truth again.
    SelectedNotBooted {
        /// What otadata selected.
        selected: BootTarget,
    },
}

/// otadata as read from flash, plus the device's geometry and boot config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootState {
    geometry: Geometry,
    config: BootConfig,
    entries: [OtaSelectEntry; 2],
    running: BootTarget,
}

type Result<T, E> = core::result::Result<T, BootError<E>>;

impl BootState {
    /// Reads otadata and assumes the app runs from the partition otadata
    /// selects (true unless the bootloader had to fall back; use
    /// [`Self::read_running`] when the platform knows better).
    pub fn read<F: NorFlash>(
        flash: &mut F,
        geometry: &Geometry,
        config: BootConfig,
    ) -> Result<Self, F::Error> {
        let mut state = Self::read_running(flash, geometry, config, BootTarget::Factory)?;
        state.running = state.select_boot_slot();
        Ok(state)
    }

    /// Reads otadata; `running` is the partition the app executes from.
    pub fn read_running<F: NorFlash>(
        flash: &mut F,
        geometry: &Geometry,
        config: BootConfig,
        running: BootTarget,
    ) -> Result<Self, F::Error> {
        if !flash_fits::<F>() {
            return Err(BootError::UnsupportedFlash);
        }
        if config.max_boot_attempts == 0 || config.max_boot_attempts > MAX_COUNTED_ATTEMPTS {
            return Err(BootError::BadAttemptLimit);
        }
        let entries = read_entries(flash, geometry).map_err(BootError::Flash)?;
        Ok(Self {
            geometry: *geometry,
            config,
            entries,
            running,
        })
    }

    /// Re-reads otadata (ESP-IDF re-reads before every operation too).
    pub fn refresh<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), F::Error> {
        self.entries = read_entries(flash, &self.geometry).map_err(BootError::Flash)?;
        Ok(())
    }

    /// The two entries, `otadata[0]` first.
    pub const fn entries(&self) -> &[OtaSelectEntry; 2] {
        &self.entries
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The boot configuration.
    pub const fn config(&self) -> &BootConfig {
        &self.config
    }

    /// Index of the valid entry with the highest sequence number.
    pub fn active_index(&self) -> Option<usize> {
        active_index(&self.entries)
    }

    /// The partition the app runs from.
    pub const fn running_slot(&self) -> BootTarget {
        self.running
    }

    /// What the bootloader will try first, from otadata alone
    /// (`esp_ota_get_boot_partition`): the active entry's slot; with no
    /// usable entry the factory app, or `ota_0` when there is none.
    pub fn select_boot_slot(&self) -> BootTarget {
        let count = self.geometry.slot_count();
        let default = if self.geometry.factory().is_some() || count == 0 {
            BootTarget::Factory
        } else {
            BootTarget::Ota(0)
        };
        if count == 0 || (self.entries[0].is_invalid() && self.entries[1].is_invalid()) {
            return default;
        }
        match self
            .active_index()
            .and_then(|i| self.entries[i].slot(count))
        {
            Some(slot) => BootTarget::Ota(slot),
            None => default,
        }
    }

    /// `esp_ota_get_state_partition`: the state of the first entry (by
    /// sector) that maps to `slot` and has a matching CRC.
    pub fn slot_state(&self, slot: u8) -> Option<OtaState> {
        let count = self.geometry.slot_count();
        self.entries
            .iter()
            .find(|e| e.slot(count) == Some(slot) && e.crc_matches())
            .map(OtaSelectEntry::ota_state)
    }

    /// The slot an update should be written to
    /// (`esp_ota_get_next_update_partition`): the OTA slot after the running
    /// one, wrapping; `ota_0` when running the factory app.
    pub fn next_update_slot(&self) -> Option<u8> {
        let count = self.geometry.slot_count();
        match (count, self.running) {
            (0, _) => None,
            (_, BootTarget::Factory) => Some(0),
            (_, BootTarget::Ota(n)) => Some((n + 1) % count),
        }
    }

    /// Boot attempts counted on the active entry (cleared label bits).
    pub fn boot_attempts(&self) -> Option<u8> {
        self.active_index()
            .map(|i| counted_attempts(&self.entries[i]))
    }

    /// Points the bootloader at the verified slot for the next boot, consuming the
    /// proof. The otadata write is ESP-IDF's `esp_ota_set_boot_partition`: if the
    /// active entry already selects the slot it is rewritten in place, otherwise the
    /// *other* sector gets the next sequence number that selects it (see the table
    /// at the top of this module for what a power cut leaves).
    pub fn activate<F: NorFlash>(
        &mut self,
        flash: &mut F,
        verified: VerifiedSlot,
    ) -> Result<(), F::Error> {
        let region = verified.region();
        let slot = self
            .geometry
            .slots()
            .iter()
            .position(|s| *s == region)
            .ok_or(BootError::NotAnOtaSlot(region))?;
        // At most MAX_OTA_SLOTS (16) slots, so the index fits.
        self.set_boot_slot(flash, slot as u8)
    }

    /// Points the bootloader at OTA slot `slot` for the next boot, exactly as
    /// `esp_ota_set_boot_partition` does: if the active entry already selects
    /// `slot`, rewrite it in place with the new-image state; otherwise write
    /// the *other* sector with the smallest sequence number `>=` the active
    /// one that selects `slot`; with no active entry write `otadata[0]` with
    /// `slot + 1`. The new state is NEW under a rollback bootloader and
    /// UNDEFINED otherwise. The label is written erased (ESP-IDF leaves
    /// whatever that sector held; nothing reads it), which resets the
    /// boot-attempt counter for the new image.
    ///
    /// Crate-private: the device switches through [`Self::activate`], hosts and
    /// simulators through [`crate::unverified::select_slot`].
    pub(crate) fn set_boot_slot<F: NorFlash>(
        &mut self,
        flash: &mut F,
        slot: u8,
    ) -> Result<(), F::Error> {
        let count = self.geometry.slot_count();
        if count == 0 {
            return Err(BootError::NoOtaSlots);
        }
        if slot >= count {
            return Err(BootError::SlotOutOfRange { slot, count });
        }
        self.refresh(flash)?;
        let (index, seq) = match self.active_index() {
            Some(active) => {
                let current = self.entries[active].seq;
                if self.entries[active].slot(count) == Some(slot) {
                    (active, current)
                } else {
                    let seq = seq_for_target_slot(current, slot, count)
                        .ok_or(BootError::SequenceExhausted)?;
                    (active ^ 1, seq)
                }
            }
            None => (0, u32::from(slot) + 1),
        };
        let entry = OtaSelectEntry::new(seq, self.config.new_entry_state());
        rewrite_entry(flash, &self.geometry, index, &entry).map_err(BootError::Flash)?;
        self.entries[index] = entry;
        Ok(())
    }

    /// Makes the factory app the boot target: erases otadata, as
    /// `esp_ota_set_boot_partition(factory)` does.
    pub fn set_boot_factory<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), F::Error> {
        if self.geometry.factory().is_none() {
            return Err(BootError::NoFactory);
        }
        erase_otadata(flash, &self.geometry).map_err(BootError::Flash)?;
        self.entries = [OtaSelectEntry::ERASED; 2];
        Ok(())
    }

    /// `esp_ota_mark_app_valid_cancel_rollback`: marks the running slot's
    /// entry VALID (no-op when it already is). Refuses when the app does not
    /// run from the slot otadata selects.
    pub fn confirm<F: MultiwriteNorFlash>(&mut self, flash: &mut F) -> Result<(), F::Error> {
        self.refresh(flash)?;
        let active = self.running_active_entry()?;
        if self.entries[active].ota_state() != OtaState::Valid {
            self.set_state(flash, active, OtaState::Valid)?;
        }
        Ok(())
    }

    /// `esp_ota_mark_app_invalid_rollback`: marks the running slot's entry
    /// INVALID so the next boot starts the previous slot (or factory). Refused
    /// (and nothing written) unless `is_bootable` accepts the partition the
    /// bootloader would fall back to. The caller reboots afterwards.
    pub fn rollback<F, V>(&mut self, flash: &mut F, is_bootable: V) -> Result<(), F::Error>
    where
        F: MultiwriteNorFlash,
        V: FnMut(&mut F, BootTarget, Region) -> bool,
    {
        self.refresh(flash)?;
        let active = self.running_active_entry()?;
        if !self.rollback_possible(flash, active, is_bootable) {
            return Err(BootError::RollbackNotPossible);
        }
        self.set_state(flash, active, OtaState::Invalid)
    }

    /// Call once per boot, before anything that could crash. Decides whether
    /// this boot is a trial, counts it when the bootloader does not, and rolls
    /// back when the trial boots are used up. See [`BootAttempt`].
    pub fn record_boot_attempt<F, V>(
        &mut self,
        flash: &mut F,
        is_bootable: V,
    ) -> Result<BootAttempt, F::Error>
    where
        F: MultiwriteNorFlash,
        V: FnMut(&mut F, BootTarget, Region) -> bool,
    {
        self.refresh(flash)?;
        let Some(active) = self.active_index() else {
            return Ok(BootAttempt::Untracked);
        };
        let selected = self.select_boot_slot();
        let entry = self.entries[active];
        let state = entry.ota_state();
        if selected != self.running {
            if state != OtaState::Valid {
                self.set_state(flash, active, OtaState::Invalid)?;
            }
            return Ok(BootAttempt::SelectedNotBooted { selected });
        }
        let mode = self.config.bootloader;
        let mismatch = match (mode, state) {
            (_, OtaState::Valid) => return Ok(BootAttempt::Confirmed),
            (BootloaderMode::RollbackEnabled, OtaState::PendingVerify) => {
                return Ok(BootAttempt::BootloaderTracked);
            }
            (BootloaderMode::RollbackEnabled, OtaState::New) => true,
            (BootloaderMode::RollbackDisabled, OtaState::PendingVerify) => true,
            _ => false,
        };
        let used = counted_attempts(&entry);
        let max = self.config.max_boot_attempts;
        if used >= max {
            if !self.rollback_possible(flash, active, is_bootable) {
                return Ok(BootAttempt::ExhaustedNoFallback);
            }
            self.set_state(flash, active, OtaState::Invalid)?;
            return Ok(BootAttempt::RolledBack);
        }
        self.count_attempt(flash, active)?;
        Ok(BootAttempt::Counted {
            attempt: used + 1,
            max,
            bootloader_mismatch: mismatch,
        })
    }

    /// The active entry, provided it selects the running partition.
    fn running_active_entry<E>(&self) -> Result<usize, E> {
        let active = match self.active_index() {
            Some(i) if self.geometry.slot_count() != 0 => i,
            _ => return Err(BootError::NoActiveEntry),
        };
        let selected = self.select_boot_slot();
        if selected != self.running {
            return Err(BootError::RunningNotSelected {
                running: self.running,
                selected,
            });
        }
        Ok(active)
    }

    /// `esp_ota_check_rollback_is_possible`: the other entry's slot if that
    /// entry is valid, otherwise the factory app, must pass `is_bootable`.
    fn rollback_possible<F, V>(&self, flash: &mut F, active: usize, mut is_bootable: V) -> bool
    where
        V: FnMut(&mut F, BootTarget, Region) -> bool,
    {
        let other = &self.entries[active ^ 1];
        let target = if other.is_valid() {
            other.slot(self.geometry.slot_count()).map(BootTarget::Ota)
        } else {
            self.geometry.factory().map(|_| BootTarget::Factory)
        };
        match target.and_then(|t| self.geometry.region(t).map(|r| (t, r))) {
            Some((t, region)) => is_bootable(flash, t, region),
            None => false,
        }
    }

    /// Writes a new state into entry `index`: one word write when the new
    /// value only clears bits of the stored state, otherwise ESP-IDF's erase
    /// and rewrite. Both end with the same 32 bytes in flash.
    fn set_state<F: MultiwriteNorFlash>(
        &mut self,
        flash: &mut F,
        index: usize,
        state: OtaState,
    ) -> Result<(), F::Error> {
        let old = self.entries[index];
        let new = old.with_state(state);
        if old.state & state.raw() == state.raw() {
            write_entry_word(
                flash,
                &self.geometry,
                index,
                STATE_OFFSET,
                state.raw().to_le_bytes(),
            )
        } else {
            rewrite_entry(flash, &self.geometry, index, &new)
        }
        .map_err(BootError::Flash)?;
        self.entries[index] = new;
        Ok(())
    }

    /// Clears the lowest still-set bit of the label of entry `index`.
    fn count_attempt<F: MultiwriteNorFlash>(
        &mut self,
        flash: &mut F,
        index: usize,
    ) -> Result<(), F::Error> {
        let mut entry = self.entries[index];
        let Some(byte) = entry.label.iter().position(|&b| b != 0) else {
            // All 160 bits used: already at any allowed limit.
            return Ok(());
        };
        let bit = entry.label[byte].trailing_zeros();
        entry.label[byte] &= !(1u8 << bit);
        let word = byte / 4 * 4;
        let mut value = [0u8; 4];
        value.copy_from_slice(&entry.label[word..word + 4]);
        write_entry_word(flash, &self.geometry, index, LABEL_OFFSET + word, value)
            .map_err(BootError::Flash)?;
        self.entries[index] = entry;
        Ok(())
    }
}

/// Boot attempts recorded in an entry's label: its cleared bits, capped.
pub fn counted_attempts(entry: &OtaSelectEntry) -> u8 {
    let zeros: u32 = entry.label.iter().map(|b| b.count_zeros()).sum();
    zeros.min(u32::from(MAX_COUNTED_ATTEMPTS)) as u8
}
