//! The `otadata` partition, byte-exact with ESP-IDF (`esp_ota_select_entry_t`).
//!
//! otadata is two 4 KiB flash sectors. Each sector starts with one 32-byte
//! entry; the rest of the sector stays erased:
//!
//! | offset | size | field       | meaning                                                        |
//! |-------:|-----:|-------------|----------------------------------------------------------------|
//! | 0      | 4    | `ota_seq`   | u32 LE; `0xFFFFFFFF` = empty; slot = `(seq - 1) % slot_count`  |
//! | 4      | 20   | `seq_label` | ignored by ESP-IDF; this crate keeps its boot-attempt counter here ([`crate::boot`]) |
//! | 24     | 4    | `ota_state` | u32 LE, see [`OtaState`]                                       |
//! | 28     | 4    | `crc`       | u32 LE, [`crate::crc::ota_seq_crc`] of `ota_seq` only          |
//! | 32     | 4064 | —           | erased (`0xFF`)                                                |
//!
//! Sector 0 holds `otadata[0]`, sector 1 holds `otadata[1]`. An entry counts
//! ("valid", in ESP-IDF's words) when its sequence number is not `0xFFFFFFFF`,
//! its state is neither INVALID nor ABORTED and its CRC matches; of two valid
//! entries the higher sequence number wins, and on a tie `otadata[0]`. Only
//! the CRC protects the sequence number: the state and label are trusted as
//! read, which is why every write path in this crate is designed so that a
//! torn write can only make an entry *less* valid.

use crate::crc::ota_seq_crc;

/// Size of one otadata entry in bytes.
pub const ENTRY_LEN: usize = 32;
/// Size of one otadata sector (the entry is at its start).
pub const SECTOR_SIZE: u32 = 4096;
/// The otadata partition must hold at least the two sectors.
pub const OTADATA_MIN_SIZE: u32 = 2 * SECTOR_SIZE;
/// Offset of `ota_seq` within the entry.
pub const SEQ_OFFSET: usize = 0;
/// Offset of `seq_label` within the entry.
pub const LABEL_OFFSET: usize = 4;
/// Length of `seq_label`.
pub const LABEL_LEN: usize = 20;
/// Offset of `ota_state` within the entry.
pub const STATE_OFFSET: usize = 24;
/// Offset of `crc` within the entry.
pub const CRC_OFFSET: usize = 28;

/// `esp_ota_img_states_t`, plus `Other` for values ESP-IDF never writes (for
/// example a state word torn by a power cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtaState {
    /// Written by `esp_ota_set_boot_partition` when the bootloader has app
    /// rollback enabled; the bootloader turns it into `PendingVerify`.
    New,
    /// First boot of a new app under a rollback-enabled bootloader; the next
    /// boot without confirmation turns it into `Aborted`.
    PendingVerify,
    /// Confirmed by the running app.
    Valid,
    /// Rejected by the app (rollback).
    Invalid,
    /// Rejected by the bootloader (booted once, never confirmed).
    Aborted,
    /// Written when the app was built without rollback support; also the
    /// erased value.
    Undefined,
    /// Any other value.
    Other(u32),
}

impl OtaState {
    /// Decodes the raw `ota_state` word.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::New,
            1 => Self::PendingVerify,
            2 => Self::Valid,
            3 => Self::Invalid,
            4 => Self::Aborted,
            u32::MAX => Self::Undefined,
            other => Self::Other(other),
        }
    }

    /// The raw `ota_state` word.
    pub const fn raw(self) -> u32 {
        match self {
            Self::New => 0,
            Self::PendingVerify => 1,
            Self::Valid => 2,
            Self::Invalid => 3,
            Self::Aborted => 4,
            Self::Undefined => u32::MAX,
            Self::Other(other) => other,
        }
    }

    /// States ESP-IDF treats as "never boot this entry".
    pub const fn is_rejected(self) -> bool {
        matches!(self, Self::Invalid | Self::Aborted)
    }
}

/// One `esp_ota_select_entry_t`, kept with its raw fields so that what is
/// written back is exactly what ESP-IDF would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OtaSelectEntry {
    /// `ota_seq`.
    pub seq: u32,
    /// `seq_label` (the boot-attempt counter of [`crate::boot`]).
    pub label: [u8; LABEL_LEN],
    /// `ota_state`, raw.
    pub state: u32,
    /// `crc`, raw.
    pub crc: u32,
}

impl OtaSelectEntry {
    /// An erased entry (all `0xFF`).
    pub const ERASED: Self = Self {
        seq: u32::MAX,
        label: [0xFF; LABEL_LEN],
        state: u32::MAX,
        crc: u32::MAX,
    };

    /// A fresh entry with a correct CRC and an erased label.
    pub const fn new(seq: u32, state: OtaState) -> Self {
        Self {
            seq,
            label: [0xFF; LABEL_LEN],
            state: state.raw(),
            crc: ota_seq_crc(seq),
        }
    }

    /// Decodes 32 bytes read from the start of an otadata sector.
    pub fn from_bytes(bytes: &[u8; ENTRY_LEN]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut label = [0u8; LABEL_LEN];
        label.copy_from_slice(&bytes[LABEL_OFFSET..LABEL_OFFSET + LABEL_LEN]);
        Self {
            seq: word(SEQ_OFFSET),
            label,
            state: word(STATE_OFFSET),
            crc: word(CRC_OFFSET),
        }
    }

    /// The 32 bytes ESP-IDF writes for this entry.
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[SEQ_OFFSET..SEQ_OFFSET + 4].copy_from_slice(&self.seq.to_le_bytes());
        out[LABEL_OFFSET..LABEL_OFFSET + LABEL_LEN].copy_from_slice(&self.label);
        out[STATE_OFFSET..STATE_OFFSET + 4].copy_from_slice(&self.state.to_le_bytes());
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// The decoded state.
    pub const fn ota_state(&self) -> OtaState {
        OtaState::from_raw(self.state)
    }

    /// Returns the entry with `ota_seq` replaced and its CRC recomputed, as
    /// ESP-IDF's `rewrite_ota_seq` does.
    pub const fn with_seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self.crc = ota_seq_crc(seq);
        self
    }

    /// Returns the entry with `ota_state` replaced.
    pub const fn with_state(mut self, state: OtaState) -> Self {
        self.state = state.raw();
        self
    }

    /// `bootloader_common_ota_select_invalid`: empty, INVALID or ABORTED. Note
    /// that this does not look at the CRC.
    pub const fn is_invalid(&self) -> bool {
        self.seq == u32::MAX || self.ota_state().is_rejected()
    }

    /// Whether the stored CRC matches `ota_seq`.
    pub const fn crc_matches(&self) -> bool {
        self.crc == ota_seq_crc(self.seq)
    }

    /// `bootloader_common_ota_select_valid`: not invalid and the CRC matches.
    pub const fn is_valid(&self) -> bool {
        !self.is_invalid() && self.crc_matches()
    }

    /// `seq == 0xFFFFFFFF || crc mismatch`: what the bootloader calls the
    /// "initial" contents of an entry (used for its first-boot bookkeeping).
    pub const fn is_initial(&self) -> bool {
        self.seq == u32::MAX || !self.crc_matches()
    }

    /// The OTA slot this entry selects among `slot_count` slots:
    /// `(seq - 1) % slot_count`, with ESP-IDF's unsigned wrap for seq 0.
    pub const fn slot(&self, slot_count: u8) -> Option<u8> {
        if slot_count == 0 {
            return None;
        }
        Some((self.seq.wrapping_sub(1) % slot_count as u32) as u8)
    }
}

/// `bootloader_common_select_otadata`: of the entries flagged in `valid`, the
/// one with the highest (`max`) or lowest sequence number; ties go to
/// `otadata[0]`.
pub fn select_otadata(entries: &[OtaSelectEntry; 2], valid: [bool; 2], max: bool) -> Option<usize> {
    match valid {
        [true, true] => {
            let (a, b) = (entries[0].seq, entries[1].seq);
            let pick = if max { a.max(b) } else { a.min(b) };
            Some(if pick == a { 0 } else { 1 })
        }
        [true, false] => Some(0),
        [false, true] => Some(1),
        [false, false] => None,
    }
}

/// `bootloader_common_get_active_otadata`: index of the valid entry with the
/// highest sequence number.
pub fn active_index(entries: &[OtaSelectEntry; 2]) -> Option<usize> {
    select_otadata(
        entries,
        [entries[0].is_valid(), entries[1].is_valid()],
        true,
    )
}

/// `compute_ota_seq_for_target_slot`: the smallest `base + i * slot_count`
/// (with `base = (slot + 1) % slot_count`) that is not below `current_seq`.
///
/// The result may *equal* `current_seq` (ESP-IDF's loop stops at `>=`); that
/// only happens when `current_seq` already selects `slot`, a case
/// [`crate::boot`] handles separately exactly as ESP-IDF does. Returns `None`
/// where ESP-IDF's `uint32_t` arithmetic would wrap or produce `0xFFFFFFFF`
/// (an empty entry).
pub const fn seq_for_target_slot(current_seq: u32, slot: u8, slot_count: u8) -> Option<u32> {
    if slot_count == 0 || slot >= slot_count {
        return None;
    }
    let count = slot_count as u32;
    let base = (slot as u32 + 1) % count;
    if current_seq <= base {
        return Some(base);
    }
    let steps = (current_seq - base).div_ceil(count);
    // 0xFFFFFFFF reads as an empty entry, so it is as unusable as a wrap.
    match steps.checked_mul(count) {
        Some(add) => match base.checked_add(add) {
            Some(u32::MAX) | None => None,
            seq => seq,
        },
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_layout() {
        let mut e = OtaSelectEntry::new(2, OtaState::New);
        e.label[0] = 0x12;
        let b = e.to_bytes();
        assert_eq!(&b[0..4], &[2, 0, 0, 0]);
        assert_eq!(b[4], 0x12);
        assert_eq!(&b[24..28], &[0, 0, 0, 0]);
        assert_eq!(&b[28..32], &0x55F6_3774u32.to_le_bytes());
        assert_eq!(OtaSelectEntry::from_bytes(&b), e);
        assert_eq!(OtaSelectEntry::ERASED.to_bytes(), [0xFF; 32]);
    }

    #[test]
    fn validity_rules() {
        assert!(!OtaSelectEntry::ERASED.is_valid());
        assert!(OtaSelectEntry::ERASED.is_invalid());
        assert!(OtaSelectEntry::new(1, OtaState::Undefined).is_valid());
        assert!(OtaSelectEntry::new(1, OtaState::New).is_valid());
        assert!(OtaSelectEntry::new(1, OtaState::PendingVerify).is_valid());
        assert!(OtaSelectEntry::new(1, OtaState::Valid).is_valid());
        assert!(OtaSelectEntry::new(1, OtaState::Other(7)).is_valid());
        assert!(!OtaSelectEntry::new(1, OtaState::Invalid).is_valid());
        assert!(!OtaSelectEntry::new(1, OtaState::Aborted).is_valid());
        let mut bad_crc = OtaSelectEntry::new(1, OtaState::Valid);
        bad_crc.crc ^= 1;
        assert!(!bad_crc.is_valid());
        assert!(
            !bad_crc.is_invalid(),
            "invalid() ignores the CRC, like ESP-IDF"
        );
        assert!(bad_crc.is_initial());
        // seq 0 with the erased CRC is valid for ESP-IDF and selects the last slot.
        let zero = OtaSelectEntry {
            seq: 0,
            ..OtaSelectEntry::ERASED
        };
        assert!(zero.is_valid());
        assert_eq!(zero.slot(2), Some(1));
        assert_eq!(zero.slot(3), Some(0));
    }

    #[test]
    fn slot_mapping() {
        assert_eq!(OtaSelectEntry::new(1, OtaState::Valid).slot(2), Some(0));
        assert_eq!(OtaSelectEntry::new(2, OtaState::Valid).slot(2), Some(1));
        assert_eq!(OtaSelectEntry::new(3, OtaState::Valid).slot(2), Some(0));
        assert_eq!(OtaSelectEntry::new(5, OtaState::Valid).slot(8), Some(4));
        assert_eq!(OtaSelectEntry::new(5, OtaState::Valid).slot(0), None);
    }

    #[test]
    fn seq_for_target_matches_esp_idf_loop() {
        fn esp_idf(current: u32, slot: u32, count: u32) -> u64 {
            let base = u64::from((slot + 1) % count);
            let mut i = 0u64;
            while u64::from(current) > base + i * u64::from(count) {
                i += 1;
            }
            base + i * u64::from(count)
        }
        for count in 1..=16u8 {
            for slot in 0..count {
                for current in 0..200u32 {
                    let want = esp_idf(current, u32::from(slot), u32::from(count));
                    assert_eq!(
                        seq_for_target_slot(current, slot, count).map(u64::from),
                        Some(want),
                        "current {current} slot {slot} count {count}"
                    );
                }
            }
        }
        // ESP-IDF's documented example: seqs 4 and 5 of 8 slots, switch to ota_7 -> 8.
        assert_eq!(seq_for_target_slot(5, 7, 8), Some(8));
        assert_eq!(seq_for_target_slot(1, 1, 2), Some(2));
        assert_eq!(seq_for_target_slot(2, 0, 2), Some(3));
        assert_eq!(
            seq_for_target_slot(u32::MAX - 1, 0, 2),
            None,
            "would be 0xFFFFFFFF"
        );
        assert_eq!(seq_for_target_slot(u32::MAX - 2, 1, 2), Some(u32::MAX - 1));
        assert_eq!(seq_for_target_slot(u32::MAX - 1, 1, 2), Some(u32::MAX - 1));
        assert_eq!(seq_for_target_slot(u32::MAX, 0, 3), None);
        assert_eq!(seq_for_target_slot(1, 2, 2), None);
        assert_eq!(seq_for_target_slot(1, 0, 0), None);
    }

    #[test]
    fn select_ties_and_min() {
        let a = OtaSelectEntry::new(3, OtaState::Valid);
        let b = OtaSelectEntry::new(3, OtaState::Valid);
        assert_eq!(select_otadata(&[a, b], [true, true], true), Some(0));
        let c = OtaSelectEntry::new(4, OtaState::Valid);
        assert_eq!(select_otadata(&[a, c], [true, true], true), Some(1));
        assert_eq!(select_otadata(&[a, c], [true, true], false), Some(0));
        assert_eq!(select_otadata(&[a, c], [false, true], false), Some(1));
        assert_eq!(select_otadata(&[a, c], [false, false], true), None);
    }
}
