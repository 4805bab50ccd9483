//! A strict NOR flash for the host, with ESP32 SPI-flash geometry as
//! esp-storage exposes it: 4 KiB erase sectors, 4-byte write words, byte
//! reads, erased value `0xFF`.
//!
//! Rules enforced (each violation is a typed error and changes nothing):
//! erase only whole aligned sectors; write only whole aligned words; a write
//! may only clear bits (programming a 1 where the flash holds a 0 is refused,
//! as MCUboot's simflash refuses writes to unerased bytes); no access past the
//! end.
//!
//! Every erase and write that passes the checks is one *operation*, counted
//! from 0. [`SimFlash::cut_after`]`(n)` lets `n` operations complete and tears
//! operation `n`: a write lands a prefix of its bytes plus a random subset of
//! the bits of the next byte; an erase leaves its sectors untouched, fully
//! erased, or with random bits set (half erased). The damage is drawn from a
//! seeded generator. After the cut the flash is dead (every call fails with
//! [`SimFlashError::PowerLost`]) until [`SimFlash::power_cycle`].

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::rng::Rng;

/// Erase sector size.
pub const SECTOR_SIZE: usize = 4096;
/// Write granularity (esp-storage's word).
pub const WORD_SIZE: usize = 4;

/// A NOR-rule violation or a simulated power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimFlashError {
    /// Offset or length not a multiple of the erase or write unit.
    #[error("{op} at {offset:#x} len {len:#x} is not aligned")]
    NotAligned {
        /// `"erase"` or `"write"`.
        op: &'static str,
        /// Start offset.
        offset: u32,
        /// Length.
        len: usize,
    },
    /// Range past the end of the flash (or `to < from`).
    #[error("{op} at {offset:#x} len {len:#x} is out of bounds")]
    OutOfBounds {
        /// `"read"`, `"erase"` or `"write"`.
        op: &'static str,
        /// Start offset.
        offset: u32,
        /// Length.
        len: usize,
    },
    /// A write would turn a 0 bit into a 1 without an erase.
    #[error(
        "write would set bits at {offset:#x} (held {held:#04x}, wrote {wrote:#04x}); erase first"
    )]
    WriteOverZero {
        /// The first offending byte.
        offset: u32,
        /// What flash held there.
        held: u8,
        /// What the write asked for.
        wrote: u8,
    },
    /// The simulated power failed during this or an earlier operation.
    #[error("power lost")]
    PowerLost,
}

impl NorFlashError for SimFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned { .. } => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds { .. } => NorFlashErrorKind::OutOfBounds,
            Self::WriteOverZero { .. } | Self::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

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

/// The simulated flash chip.
#[derive(Clone, Debug)]
pub struct SimFlash {
    data: Vec<u8>,
    operations: u64,
    reads: u64,
    cut_at: Option<u64>,
    dead: bool,
    rng: Rng,
    log: Vec<FlashOp>,
}

impl SimFlash {
    /// An erased flash of `size` bytes (a whole number of sectors).
    pub fn new(size: usize) -> Self {
        assert!(
            size.is_multiple_of(SECTOR_SIZE) && size <= u32::MAX as usize,
            "flash size must be whole sectors"
        );
        Self::from_bytes(vec![0xFF; size])
    }

    /// A flash holding `data` (for example a full image file).
    pub fn from_bytes(data: Vec<u8>) -> Self {
        Self {
            data,
            operations: 0,
            reads: 0,
            cut_at: None,
            dead: false,
            rng: Rng::new(0),
            log: Vec::new(),
        }
    }

    /// Loads a flash image file; its length must be whole sectors.
    pub fn load(path: &Path) -> io::Result<Self> {
        let data = fs::read(path)?;
        if data.is_empty() || data.len() % SECTOR_SIZE != 0 || data.len() > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "flash image is {} bytes, not a whole number of 4 KiB sectors",
                    data.len()
                ),
            ));
        }
        Ok(Self::from_bytes(data))
    }

    /// Writes the current contents to a file (torn bytes included), so that a kill at any
    /// moment leaves either the previous file or the new one whole, as real flash keeps
    /// its contents: the bytes go to a temporary file beside `path` (one fixed name, so a
    /// killed save leaves no more than one), which is synced and then renamed over `path`;
    /// the directory is synced so the rename itself survives.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let temporary = temporary_path(path)?;
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&self.data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        fs::File::open(directory)?.sync_all()
    }

    /// Seeds the generator used for power-cut damage.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Rng::new(seed);
        self
    }

    /// Lets the operations numbered below `n`
    /// (counted since creation, see [`Self::operations`]) complete, and tears
    /// operation `n`.
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

    /// Power comes back: the flash answers again and any pending cut is
    /// dropped. Contents are whatever the cut left.
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

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Raw access that bypasses the NOR rules and the counter: for building
    /// fixtures (as a programmer that erases first would) and for planting
    /// corruption in tests.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Programs `bytes` at `offset` the way esptool does: erase the covered
    /// sectors, then write. Bypasses the counter and the cut.
    pub fn flash_image(&mut self, offset: u32, bytes: &[u8]) {
        let start = offset as usize / SECTOR_SIZE * SECTOR_SIZE;
        let end = (offset as usize + bytes.len()).div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
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

    /// Counts an operation that passed its checks; `Err` if it is the torn one.
    fn begin(&mut self, op: FlashOp) -> Result<(), ()> {
        let n = self.operations;
        self.operations += 1;
        self.log.push(op);
        if self.cut_at == Some(n) {
            self.dead = true;
            return Err(());
        }
        Ok(())
    }
}

/// `dir/.name.save-tmp` for `dir/name`: in the same directory, so the rename cannot cross
/// file systems.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut temporary = OsString::from(".");
    temporary.push(name);
    temporary.push(".save-tmp");
    Ok(path.with_file_name(temporary))
}

impl ErrorType for SimFlash {
    type Error = SimFlashError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if self.dead {
            return Err(SimFlashError::PowerLost);
        }
        self.check_range("read", offset, bytes.len())?;
        self.reads += 1;
        bytes.copy_from_slice(&self.data[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = WORD_SIZE;
    const ERASE_SIZE: usize = SECTOR_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if self.dead {
            return Err(SimFlashError::PowerLost);
        }
        let len = to.checked_sub(from).ok_or(SimFlashError::OutOfBounds {
            op: "erase",
            offset: from,
            len: 0,
        })? as usize;
        self.check_range("erase", from, len)?;
        if !(from as usize).is_multiple_of(SECTOR_SIZE) || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(SimFlashError::NotAligned {
                op: "erase",
                offset: from,
                len,
            });
        }
        let range = from as usize..to as usize;
        if self.begin(FlashOp::Erase { from, to }).is_err() {
            match self.rng.up_to(2) {
                0 => {}
                1 => self.data[range].fill(0xFF),
                _ => {
                    for b in &mut self.data[range] {
                        *b |= self.rng.byte();
                    }
                }
            }
            return Err(SimFlashError::PowerLost);
        }
        self.data[range].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if self.dead {
            return Err(SimFlashError::PowerLost);
        }
        self.check_range("write", offset, bytes.len())?;
        if !(offset as usize).is_multiple_of(WORD_SIZE) || !bytes.len().is_multiple_of(WORD_SIZE) {
            return Err(SimFlashError::NotAligned {
                op: "write",
                offset,
                len: bytes.len(),
            });
        }
        let start = offset as usize;
        let held = &self.data[start..start + bytes.len()];
        if let Some(i) = held.iter().zip(bytes).position(|(h, w)| w & !h != 0) {
            return Err(SimFlashError::WriteOverZero {
                offset: offset + i as u32,
                held: held[i],
                wrote: bytes[i],
            });
        }
        if self
            .begin(FlashOp::Write {
                offset,
                len: bytes.len(),
            })
            .is_err()
        {
            let landed = self.rng.up_to(bytes.len());
            self.data[start..start + landed].copy_from_slice(&bytes[..landed]);
            if landed < bytes.len() {
                // Some of the bits this byte was to clear got cleared.
                let keep = self.rng.byte();
                self.data[start + landed] &= bytes[landed] | keep;
            }
            return Err(SimFlashError::PowerLost);
        }
        // Only clearing bits, as checked above: the result is the new value.
        self.data[start..start + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

/// Writes may clear bits that are already programmed (1 -> 0 only), which is
/// what SPI NOR allows and what ESP-IDF's NVS and this project's boot-attempt
/// counter rely on.
impl MultiwriteNorFlash for SimFlash {}
