//! What the agent must remember across reboots, in a small flash region that survives a
//! power cut at any moment.
//!
//! The region is split into two equal halves (each one or more erase sectors). Each half
//! holds at most one record at its start; the valid record with the higher generation
//! wins. Saving erases the half that does *not* hold the winner and writes the new record
//! there, so a cut during the erase or the write leaves the previous record intact, and a
//! torn record fails its CRC and is ignored.
//!
//! Record layout (little-endian, 256 bytes):
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0x00   | 4    | magic `"OTAS"`                                               |
//! | 0x04   | 4    | generation; the higher valid one wins                        |
//! | 0x08   | 8    | highest accepted manifest sequence (any `u64`); see flags    |
//! | 0x10   | 8    | security counter (highest confirmed; 0 before any)           |
//! | 0x18   | 1    | pending install: slot index, `0xFF` when there is none       |
//! | 0x19   | 1    | number of failed images listed (0..=4)                       |
//! | 0x1A   | 1    | layout: 1 (0 = written by an agent before presence flags)    |
//! | 0x1B   | 1    | presence flags: bit 0 sequence, bit 1 pending install        |
//! | 0x1C   | 4    | pending install: otadata sequence active when it was written |
//! | 0x20   | 8    | pending install: security counter                            |
//! | 0x28   | 32   | pending install: SHA-256 of the image's signed header        |
//! | 0x48   | 32   | pending install: version (ota-format encoding)               |
//! | 0x68   | 128  | failed images: 4 × SHA-256 of the signed header, newest first |
//! | 0xE8   | 20   | zero                                                         |
//! | 0xFC   | 4    | CRC-32 (zlib) of bytes `0x00..0xFC`                          |
//!
//! # Absent is its own encoding
//!
//! Every `u64` is a sequence a signed manifest can carry, so "no sequence accepted yet" is
//! a flag, never a reserved value (`u64::MAX` once meant "none", and a device that
//! accepted sequence 2^64−1 forgot it at the next boot and took replayed manifests again).
//! The security counter needs no flag: 0 is the lowest counter there is, so "none
//! confirmed" and "0 confirmed" admit exactly the same images. The pending slot keeps
//! `0xFF` beside its flag only for older agents (ESP-IDF has at most 16 OTA slots).
//!
//! Records stay readable in both directions across an update: an absent sequence is still
//! written as `u64::MAX` and an absent pending install as slot `0xFF`, which is what an
//! older agent (after a rollback to it) reads as "none". A layout-0 record, written by an
//! agent before the flags, is read the way that agent meant it: `u64::MAX` = none. The one
//! device it misreads is one whose older agent last accepted sequence 2^64−1; it takes
//! older manifests (never a lower security counter) until it accepts its next manifest,
//! exactly as it did before the upgrade. A layout this agent does not know is not trusted.
//!
//! Generations compare by serial-number arithmetic (RFC 1982), so the newer of the two
//! records still wins when the counter wraps.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use ota_format::Version;

use crate::crc::crc32_le;
use crate::geometry::Region;

/// Length of one record.
pub const RECORD_LEN: usize = 256;
/// Number of rolled-back images remembered.
pub const MAX_FAILED: usize = 4;
const MAGIC: [u8; 4] = *b"OTAS";
/// The slot byte of a record without a pending install, for agents before [`LAYOUT`] 1.
const NO_SLOT: u8 = 0xFF;
/// The sequence field of a record without a sequence, for agents before [`LAYOUT`] 1,
/// which read it as "none".
const LEGACY_NO_SEQUENCE: u64 = u64::MAX;
/// The record layout this agent writes: absent values are flags, not reserved values.
const LAYOUT: u8 = 1;
const HAS_SEQUENCE: u8 = 1 << 0;
const HAS_PENDING: u8 = 1 << 1;

/// An image written to a slot and switched to, waiting for its trial boot to confirm it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PendingInstall {
    /// The OTA slot index it was written to.
    pub slot: u8,
    /// SHA-256 of its signed header (what the manifest binds): its identity.
    pub image_id: [u8; 32],
    /// Its security counter, adopted once it is confirmed.
    pub security_counter: u64,
    /// Its version.
    pub version: Version,
    /// The active otadata sequence number when it was written: an otadata entry for
    /// its slot with a higher number is the switch to it; a lower one is stale.
    pub base_seq: u32,
}

/// The agent's persistent state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AgentState {
    /// Highest manifest sequence accepted; an older manifest is a replay.
    pub manifest_sequence: Option<u64>,
    /// Highest security counter of a confirmed image.
    pub security_counter: u64,
    /// The install awaiting its trial boot, if any.
    pub pending: Option<PendingInstall>,
    failed: [[u8; 32]; MAX_FAILED],
    failed_len: u8,
}

impl Default for AgentState {
    fn default() -> Self {
        AgentState {
            manifest_sequence: None,
            security_counter: 0,
            pending: None,
            failed: [[0; 32]; MAX_FAILED],
            failed_len: 0,
        }
    }
}

impl AgentState {
    /// Images (by signed-header digest) whose trial boot failed, newest first.
    pub fn failed_images(&self) -> &[[u8; 32]] {
        &self.failed[..self.failed_len as usize]
    }

    /// Whether this image already failed its trial boot here.
    pub fn has_failed(&self, image_id: &[u8; 32]) -> bool {
        self.failed_images().contains(image_id)
    }

    /// Remembers a failed image, forgetting the oldest beyond [`MAX_FAILED`].
    pub fn record_failed(&mut self, image_id: [u8; 32]) {
        if self.has_failed(&image_id) {
            return;
        }
        self.failed.copy_within(0..MAX_FAILED - 1, 1);
        self.failed[0] = image_id;
        self.failed_len = (self.failed_len + 1).min(MAX_FAILED as u8);
    }

    fn encode(&self, generation: u32) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[0..4].copy_from_slice(&MAGIC);
        r[4..8].copy_from_slice(&generation.to_le_bytes());
        let mut flags = 0;
        if self.manifest_sequence.is_some() {
            flags |= HAS_SEQUENCE;
        }
        let sequence = self.manifest_sequence.unwrap_or(LEGACY_NO_SEQUENCE);
        r[8..16].copy_from_slice(&sequence.to_le_bytes());
        r[16..24].copy_from_slice(&self.security_counter.to_le_bytes());
        r[0x19] = self.failed_len;
        r[0x1A] = LAYOUT;
        match &self.pending {
            Some(p) => {
                flags |= HAS_PENDING;
                r[0x18] = p.slot;
                r[0x1C..0x20].copy_from_slice(&p.base_seq.to_le_bytes());
                r[0x20..0x28].copy_from_slice(&p.security_counter.to_le_bytes());
                r[0x28..0x48].copy_from_slice(&p.image_id);
                r[0x48..0x68].copy_from_slice(&p.version.encode());
            }
            None => r[0x18] = NO_SLOT,
        }
        r[0x1B] = flags;
        for (i, id) in self.failed_images().iter().enumerate() {
            r[0x68 + i * 32..0x88 + i * 32].copy_from_slice(id);
        }
        seal(&mut r);
        r
    }

    /// Decodes a record; anything doubtful (magic, CRC, field ranges) is "no record".
    fn decode(r: &[u8; RECORD_LEN]) -> Option<(u32, Self)> {
        let crc = u32::from_le_bytes(r[RECORD_LEN - 4..].try_into().ok()?);
        if r[0..4] != MAGIC || crc32_le(0, &r[..RECORD_LEN - 4]) != crc {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(r[at..at + 8].try_into().unwrap_or([0; 8]));
        let generation = u32::from_le_bytes(r[4..8].try_into().ok()?);
        let failed_len = r[0x19];
        if failed_len as usize > MAX_FAILED {
            return None;
        }
        let sequence = u64_at(8);
        let (has_sequence, has_pending) = match (r[0x1A], r[0x1B]) {
            // Before the flags: the reserved values meant "none".
            (0, 0) => (sequence != LEGACY_NO_SEQUENCE, r[0x18] != NO_SLOT),
            (LAYOUT, flags) if flags & !(HAS_SEQUENCE | HAS_PENDING) == 0 => {
                let has_pending = flags & HAS_PENDING != 0;
                // This agent writes the legacy slot byte too; a record where they disagree
                // was not written by it.
                if has_pending == (r[0x18] == NO_SLOT) {
                    return None;
                }
                (flags & HAS_SEQUENCE != 0, has_pending)
            }
            _ => return None,
        };
        let pending = match has_pending {
            false => None,
            true => Some(PendingInstall {
                slot: r[0x18],
                security_counter: u64_at(0x20),
                image_id: r[0x28..0x48].try_into().ok()?,
                version: Version::decode(r[0x48..0x68].try_into().ok()?).ok()?,
                base_seq: u32::from_le_bytes(r[0x1C..0x20].try_into().ok()?),
            }),
        };
        let mut failed = [[0u8; 32]; MAX_FAILED];
        for (i, id) in failed.iter_mut().enumerate().take(failed_len as usize) {
            *id = r[0x68 + i * 32..0x88 + i * 32].try_into().ok()?;
        }
        Some((
            generation,
            AgentState {
                manifest_sequence: has_sequence.then_some(sequence),
                security_counter: u64_at(16),
                pending,
                failed,
                failed_len,
            },
        ))
    }
}

/// Writes the record's CRC over everything before it.
fn seal(r: &mut [u8; RECORD_LEN]) {
    let crc = crc32_le(0, &r[..RECORD_LEN - 4]);
    r[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// Whether generation `a` was written after `b`: serial-number arithmetic (RFC 1982), so
/// that `0` follows `u32::MAX` when the counter wraps.
fn is_newer_generation(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Why the state region could not be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The region cannot hold two erase-aligned halves of at least one record each, or
    /// the flash's write size does not divide a record.
    #[error("state region {offset:#x}+{size:#x} does not fit two erase-aligned halves")]
    Geometry {
        /// Region offset.
        offset: u32,
        /// Region size.
        size: u32,
    },
    /// The flash failed.
    #[error("flash error in the state region: {0:?}")]
    Flash(NorFlashErrorKind),
}

/// Where the state lives and which half holds the current record.
#[derive(Clone, Copy, Debug)]
pub struct StateStore {
    region: Region,
    /// Half holding the newest valid record and its generation.
    current: Option<(u8, u32)>,
}

impl StateStore {
    /// Reads the newest valid record from `region` (two halves). An empty or unreadable
    /// region yields the default state: nothing accepted yet, counter 0.
    pub fn open<F: NorFlash>(
        flash: &mut F,
        region: Region,
    ) -> Result<(Self, AgentState), StateError> {
        let half = region.size / 2;
        let erase = F::ERASE_SIZE as u32;
        if erase == 0
            || half < RECORD_LEN as u32
            || !half.is_multiple_of(erase)
            || !region.offset.is_multiple_of(erase)
            || region.end().is_none()
            || F::WRITE_SIZE == 0
            || !RECORD_LEN.is_multiple_of(F::WRITE_SIZE)
            || !RECORD_LEN.is_multiple_of(F::READ_SIZE.max(1))
        {
            return Err(StateError::Geometry {
                offset: region.offset,
                size: region.size,
            });
        }
        let mut store = StateStore {
            region,
            current: None,
        };
        let mut best: Option<(u8, u32, AgentState)> = None;
        for index in 0..2u8 {
            let mut buf = [0u8; RECORD_LEN];
            flash
                .read(store.half_offset(index), &mut buf)
                .map_err(|e| StateError::Flash(e.kind()))?;
            if let Some((generation, state)) = AgentState::decode(&buf)
                && best
                    .as_ref()
                    .is_none_or(|(_, g, _)| is_newer_generation(generation, *g))
            {
                best = Some((index, generation, state));
            }
        }
        let state = match best {
            Some((index, generation, state)) => {
                store.current = Some((index, generation));
                state
            }
            None => AgentState::default(),
        };
        Ok((store, state))
    }

    fn half_offset(&self, index: u8) -> u32 {
        self.region.offset + u32::from(index) * (self.region.size / 2)
    }

    /// Saves `state` power-cut safely: erase the other half, write the record there.
    /// Until the write completes, [`StateStore::open`] still finds the previous record.
    pub fn save<F: NorFlash>(
        &mut self,
        flash: &mut F,
        state: &AgentState,
    ) -> Result<(), StateError> {
        let (target, generation) = match self.current {
            Some((index, generation)) => (1 - index, generation.wrapping_add(1)),
            None => (0, 1),
        };
        let at = self.half_offset(target);
        let record = state.encode(generation);
        let fail = |e: F::Error| StateError::Flash(e.kind());
        flash.erase(at, at + self.region.size / 2).map_err(fail)?;
        flash.write(at, &record).map_err(fail)?;
        self.current = Some((target, generation));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
