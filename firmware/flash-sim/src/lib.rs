//! A strict NOR flash in memory, for the agent's tests and the device simulator.
//!
//! [`SimNorFlash<WRITE_SIZE, ERASE_SIZE>`](SimNorFlash) has its geometry in its type, as
//! `embedded-storage` wants it (`NorFlash::WRITE_SIZE` and `ERASE_SIZE` are constants):
//! the defaults are ESP32 SPI flash as esp-storage exposes it (4-byte write words,
//! 4 KiB erase sectors); other geometries let a test find code that assumes one (as
//! MCUboot's simulator runs over several flash devices). Reads are byte-granular and
//! the erased value is `0xFF`; the size is chosen at run time (whole sectors).
//!
//! Rules enforced (each violation is a typed [`SimFlashError`] and changes nothing):
//! erase only whole aligned sectors; write only whole aligned words; a write may only
//! clear bits (programming a 1 where the flash holds a 0 is refused, as MCUboot's
//! simflash refuses writes to unerased bytes); no access past the end. Optionally
//! ([`SimNorFlash::require_erase_outside`]) a write must find its bytes erased everywhere
//! but in one region, which catches a missing erase even when the same data is written
//! again.
//!
//! Every erase and write that passes the checks is one *operation*, counted from 0.
//! [`SimNorFlash::cut_after`]`(n)` lets `n` operations complete and tears operation `n`:
//! a write lands a prefix of its bytes plus a random subset of the bits of the next
//! byte; an erase leaves its sectors untouched, fully erased, or with random bits set
//! (half erased). The damage is drawn from a seeded generator, so a failing cut is
//! reproducible. After the cut the flash is dead (every call fails with
//! [`SimFlashError::PowerLost`]) until [`SimNorFlash::power_cycle`].
//!
//! Each sector counts its erases (torn ones included): [`SimNorFlash::erase_count`].
//!
//! `no_std` with `alloc`; the `std` feature (default) adds loading and atomically
//! saving image files ([`SimNorFlash::load`], [`SimNorFlash::save`]).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
#[cfg(feature = "std")]
mod file;
mod rng;

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use embedded_storage::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};

pub use error::SimFlashError;
use rng::Rng;

/// ESP32 SPI flash's erase sector (esp-storage's `ERASE_SIZE`).
pub const ESP32_SECTOR_SIZE: usize = 4096;
/// ESP32 SPI flash's write word (esp-storage's `WRITE_SIZE`).
pub const ESP32_WORD_SIZE: usize = 4;

/// What a flash operation was (for logs and assertions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashOp {
    /// `erase(from, to)`.
    Erase {
        /// Start.
        from: u32,
        /// End (exclusive).
        to: u32,
    },
    /// `write(offset, len bytes)`.
    Write {
        /// Start.
        offset: u32,
        /// Length.
        len: usize,
    },
}

/// ESP32 SPI flash: 4-byte words, 4 KiB sectors.
pub type SimFlash = SimNorFlash<ESP32_WORD_SIZE, ESP32_SECTOR_SIZE>;

/// The simulated flash chip: `WRITE_SIZE`-byte write words, `ERASE_SIZE`-byte sectors.
#[derive(Clone, Debug)]
pub struct SimNorFlash<const WRITE_SIZE: usize, const ERASE_SIZE: usize> {
    data: Vec<u8>,
    operations: u64,
    reads: u64,
    cut_at: Option<u64>,
    dead: bool,
    rng: Rng,
    log: Vec<FlashOp>,
    /// Erases per sector.
    wear: Vec<u32>,
    /// `Some(region)`: outside `region`, writes need erased bytes.
    reprogrammable: Option<Range<usize>>,
}

impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> SimNorFlash<WRITE_SIZE, ERASE_SIZE> {
    /// Checked when a flash is made: words are not empty and tile a sector.
    const GEOMETRY: () = assert!(
        WRITE_SIZE > 0 && ERASE_SIZE > 0 && ERASE_SIZE.is_multiple_of(WRITE_SIZE),
        "a sector must be a whole number of write words"
    );

    /// An erased flash of `size` bytes (a whole number of sectors).
    pub fn new(size: usize) -> Self {
        Self::from_bytes(vec![0xFF; size])
    }

    /// An erased flash of `size` bytes where every write needs erased bytes: catches a
    /// missing erase anywhere ([`Self::require_erase_outside`] with an empty region).
    pub fn strict(size: usize) -> Self {
        Self::new(size).require_erase_outside(0..0)
    }

    /// A flash holding `data` (for example a full image file); its length must be
    /// whole sectors.
    pub fn from_bytes(data: Vec<u8>) -> Self {
        let () = Self::GEOMETRY;
        assert!(
            data.len().is_multiple_of(ERASE_SIZE) && data.len() <= u32::MAX as usize,
            "flash size must be whole sectors"
        );
        Self {
            wear: vec![0; data.len() / ERASE_SIZE],
            data,
            operations: 0,
            reads: 0,
            cut_at: None,
            dead: false,
            rng: Rng::new(0),
            log: Vec::new(),
            reprogrammable: None,
        }
    }

    /// The same chip contents, counters, pending cut and wear, seen through another
    /// geometry: builds a fixture once and runs it over several devices. The size must
    /// be whole sectors of the new geometry.
    pub fn into_geometry<const W: usize, const E: usize>(self) -> SimNorFlash<W, E> {
        let mut other = SimNorFlash::<W, E>::from_bytes(self.data);
        other.operations = self.operations;
        other.reads = self.reads;
        other.cut_at = self.cut_at;
        other.dead = self.dead;
        other.rng = self.rng;
        other.log = self.log;
        other.reprogrammable = self.reprogrammable;
        // Sectors change size: each new sector has seen the most-erased old one it covers.
        let (old, new) = (ERASE_SIZE, E);
        for (index, count) in other.wear.iter_mut().enumerate() {
            let first = index * new / old;
            let last = ((index + 1) * new).div_ceil(old);
            *count = self.wear[first..last].iter().copied().max().unwrap_or(0);
        }
        other
    }

    /// Seeds the generator used for power-cut damage.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::new(seed);
        self
    }

    /// Outside `region`, a write must find its bytes erased (`0xFF`); inside it, a write
    /// may clear more bits of programmed bytes (ESP-IDF otadata's word updates). Without
    /// this, clearing bits is allowed everywhere, as on real NOR flash.
    pub fn require_erase_outside(mut self, region: Range<u32>) -> Self {
        self.reprogrammable = Some(region.start as usize..region.end as usize);
        self
    }

    /// Lets the operations numbered below `n` (counted since creation, see
    /// [`Self::operations`]) complete, and tears operation `n`.
    pub fn cut_after(&mut self, n: u64) {
        self.cut_at = Some(n);
    }

    /// Removes a pending cut.
    pub fn cancel_cut(&mut self) {
        self.cut_at = None;
    }

    /// Reserves room in the operation log for `ops` more operations, so that a memory
    /// measurement of the code under test does not count the simulator's bookkeeping.
    pub fn reserve_log(&mut self, ops: usize) {
        self.log.reserve(ops);
    }

    /// Power comes back: the flash answers again and any pending cut is dropped.
    /// Contents are whatever the cut left.
    pub fn power_cycle(&mut self) {
        self.dead = false;
        self.cut_at = None;
    }

    /// Whether a cut has happened and the power has not come back.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Erase and write operations so far (the torn one included).
    pub fn operations(&self) -> u64 {
        self.operations
    }

    /// Read calls so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Every operation so far, in order.
    pub fn log(&self) -> &[FlashOp] {
        &self.log
    }

    /// How many times sector `index` (offset `index * ERASE_SIZE`) was erased, a torn
    /// erase included; `None` past the end.
    pub fn erase_count(&self, index: usize) -> Option<u32> {
        self.wear.get(index).copied()
    }

    /// The erase count of the most-erased sector (what wears a chip out first).
    pub fn max_erase_count(&self) -> u32 {
        self.wear.iter().copied().max().unwrap_or(0)
    }

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Raw access that bypasses the NOR rules and the counter: for building fixtures
    /// (as a programmer that erases first would) and for planting corruption in tests.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Programs `bytes` at `offset` the way esptool does: erase the covered sectors,
    /// then write. Bypasses the counter and the cut.
    pub fn flash_image(&mut self, offset: u32, bytes: &[u8]) {
        let start = offset as usize / ERASE_SIZE * ERASE_SIZE;
        let end = (offset as usize + bytes.len()).div_ceil(ERASE_SIZE) * ERASE_SIZE;
        self.data[start..end].fill(0xFF);
        self.data[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    }

    fn check_range(&self, op: &'static str, offset: u32, len: usize) -> Result<(), SimFlashError> {
        let end = (offset as usize).checked_add(len);
        match end {
            Some(end) if end <= self.data.len() => Ok(()),
            _ => Err(SimFlashError::OutOfBounds { op, offset, len }),
        }
    }

    fn check_alive(&self) -> Result<(), SimFlashError> {
        if self.dead {
            Err(SimFlashError::PowerLost)
        } else {
            Ok(())
        }
    }

    /// What a write of `bytes` at `start` may not do: set bits, or (outside the
    /// re-programmable region) touch programmed bytes.
    fn check_programmable(&self, start: usize, bytes: &[u8]) -> Result<(), SimFlashError> {
        let held = &self.data[start..start + bytes.len()];
        let at = |i: usize| (start + i) as u32;
        if let Some(i) = held.iter().zip(bytes).position(|(h, w)| w & !h != 0) {
            return Err(SimFlashError::WriteOverZero {
                offset: at(i),
                held: held[i],
                wrote: bytes[i],
            });
        }
        match &self.reprogrammable {
            Some(region) if !region.contains(&start) => {
                match held.iter().position(|&h| h != 0xFF) {
                    Some(i) => Err(SimFlashError::NotErased {
                        offset: at(i),
                        held: held[i],
                    }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts an operation that passed its checks; `Err` if it is the torn one.
    fn begin(&mut self, op: FlashOp) -> Result<(), SimFlashError> {
        let n = self.operations;
        self.operations += 1;
        self.log.push(op);
        if self.cut_at == Some(n) {
            self.dead = true;
            return Err(SimFlashError::PowerLost);
        }
        Ok(())
    }

    /// A torn erase: untouched, fully erased, or with random bits set.
    fn tear_erase(&mut self, range: Range<usize>) {
        match self.rng.up_to(2) {
            0 => {}
            1 => self.data[range].fill(0xFF),
            _ => {
                for b in &mut self.data[range] {
                    *b |= self.rng.byte();
                }
            }
        }
    }

    /// A torn write: a prefix lands, then some of the bits the next byte was to clear.
    fn tear_write(&mut self, start: usize, bytes: &[u8]) {
        let landed = self.rng.up_to(bytes.len());
        self.data[start..start + landed].copy_from_slice(&bytes[..landed]);
        if landed < bytes.len() {
            let keep = self.rng.byte();
            self.data[start + landed] &= bytes[landed] | keep;
        }
    }
}

impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> ErrorType
    for SimNorFlash<WRITE_SIZE, ERASE_SIZE>
{
    type Error = SimFlashError;
}

impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> ReadNorFlash
    for SimNorFlash<WRITE_SIZE, ERASE_SIZE>
{
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.check_alive()?;
        self.check_range("read", offset, bytes.len())?;
        self.reads += 1;
        bytes.copy_from_slice(&self.data[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> NorFlash
    for SimNorFlash<WRITE_SIZE, ERASE_SIZE>
{
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.check_alive()?;
        let len = to.checked_sub(from).ok_or(SimFlashError::OutOfBounds {
            op: "erase",
            offset: from,
            len: 0,
        })? as usize;
        self.check_range("erase", from, len)?;
        if !(from as usize).is_multiple_of(ERASE_SIZE) || !len.is_multiple_of(ERASE_SIZE) {
            return Err(SimFlashError::NotAligned {
                op: "erase",
                offset: from,
                len,
            });
        }
        let range = from as usize..to as usize;
        for count in &mut self.wear[range.start / ERASE_SIZE..range.end / ERASE_SIZE] {
            *count = count.saturating_add(1);
        }
        if let Err(cut) = self.begin(FlashOp::Erase { from, to }) {
            self.tear_erase(range);
            return Err(cut);
        }
        self.data[range].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.check_alive()?;
        self.check_range("write", offset, bytes.len())?;
        if !(offset as usize).is_multiple_of(WRITE_SIZE) || !bytes.len().is_multiple_of(WRITE_SIZE)
        {
            return Err(SimFlashError::NotAligned {
                op: "write",
                offset,
                len: bytes.len(),
            });
        }
        let start = offset as usize;
        self.check_programmable(start, bytes)?;
        let len = bytes.len();
        if let Err(cut) = self.begin(FlashOp::Write { offset, len }) {
            self.tear_write(start, bytes);
            return Err(cut);
        }
        // Only clearing bits, as checked above: the result is the new value.
        self.data[start..start + len].copy_from_slice(bytes);
        Ok(())
    }
}

/// Writes may clear bits that are already programmed (1 -> 0 only), which is what SPI
/// NOR allows and what ESP-IDF's otadata and this project's boot-attempt counter rely on.
impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> MultiwriteNorFlash
    for SimNorFlash<WRITE_SIZE, ERASE_SIZE>
{
}
