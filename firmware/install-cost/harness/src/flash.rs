//! NOR flash in RAM with the ESP32-C3's geometry as esp-storage presents it to the agent
//! (4 KiB erase, 4-byte program, byte reads), strict about the NOR rules so that a
//! pipeline that cheats (writes unerased bytes, misaligns) fails here as on the chip.
//! Optionally meters the instructions spent in its own operations, so the decoder's cost
//! can be told apart from the flash driver's.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::rt::instret;

/// A NOR rule a caller broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// Address or length not a multiple of the operation's granularity.
    NotAligned,
    /// Beyond the end of the flash.
    OutOfBounds,
    /// A program would have to turn a 0 bit into 1 (the sector was not erased).
    NotErased,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotErased => NorFlashErrorKind::Other,
        }
    }
}

/// Instructions spent inside the flash operations, when metering is on.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlashMeter {
    /// Erase and program.
    pub write: u64,
    /// Reads (the decoder's history, the digest read-back).
    pub read: u64,
    /// Read calls: on the chip each is a flash transaction with its own set-up time.
    pub read_calls: u32,
    /// Bytes read.
    pub read_bytes: u32,
}

/// The simulated flash.
pub struct RamFlash {
    bytes: &'static mut [u8],
    metering: bool,
    meter: FlashMeter,
}

impl RamFlash {
    /// Flash over `bytes`, unmetered.
    pub fn new(bytes: &'static mut [u8]) -> Self {
        Self {
            bytes,
            metering: false,
            meter: FlashMeter::default(),
        }
    }

    /// Starts metering from zero (`on`) or stops it; returns what was metered so far.
    pub fn set_metering(&mut self, on: bool) -> FlashMeter {
        let meter = self.meter;
        self.metering = on;
        self.meter = FlashMeter::default();
        meter
    }

    fn range(&self, offset: u32, len: usize, align: usize) -> Result<(usize, usize), FlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FlashError::NotAligned);
        }
        let end = start.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if end > self.bytes.len() {
            return Err(FlashError::OutOfBounds);
        }
        Ok((start, end))
    }

    fn metered<T>(&mut self, write: bool, op: impl FnOnce(&mut Self) -> T) -> T {
        if !self.metering {
            return op(self);
        }
        let start = instret();
        let result = op(self);
        let spent = instret() - start;
        if write {
            self.meter.write += spent;
        } else {
            self.meter.read += spent;
        }
        result
    }
}

impl ErrorType for RamFlash {
    type Error = FlashError;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        if self.metering {
            self.meter.read_calls += 1;
            self.meter.read_bytes += bytes.len() as u32;
        }
        self.metered(false, |flash| {
            let (start, end) = flash.range(offset, bytes.len(), Self::READ_SIZE)?;
            bytes.copy_from_slice(&flash.bytes[start..end]);
            Ok(())
        })
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        self.metered(true, |flash| {
            let len = to.checked_sub(from).ok_or(FlashError::OutOfBounds)? as usize;
            let (start, end) = flash.range(from, len, Self::ERASE_SIZE)?;
            flash.bytes[start..end].fill(0xFF);
            Ok(())
        })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.metered(true, |flash| {
            let (start, end) = flash.range(offset, bytes.len(), Self::WRITE_SIZE)?;
            for (cell, &new) in flash.bytes[start..end].iter_mut().zip(bytes) {
                // Programming only clears bits; a 1 over a 0 means the sector was not erased.
                if new & !*cell != 0 {
                    return Err(FlashError::NotErased);
                }
                *cell = new;
            }
            Ok(())
        })
    }
}
