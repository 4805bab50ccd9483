//! The history and the sink over embedded-storage NOR flash: the target slot holds the
//! output (and so the window), another region can hold the prefix (a delta's base image).

use embedded_storage::nor_flash::{NorFlash, NorFlashError, ReadNorFlash};

use crate::io::{History, IoError, Sink};

/// Largest read or write granularity the bounce buffer serves (ESP32 flash drivers use 4).
const MAX_GRANULARITY: usize = 64;

/// A byte range of the flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// History read from flash: the optional prefix region, then the output region.
#[derive(Debug)]
pub struct NorFlashHistory<F> {
    flash: F,
    prefix: Region,
    output_offset: u32,
}

impl<F: ReadNorFlash> NorFlashHistory<F> {
    /// The output starts at `output_offset`; `prefix` (length 0 for none) comes before it
    /// in the decoder's stream.
    pub fn new(flash: F, prefix: Region, output_offset: u32) -> Self {
        Self {
            flash,
            prefix,
            output_offset,
        }
    }

    /// The flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Reads `buf.len()` bytes at flash address `address`, whatever `READ_SIZE` is.
    fn read_flash(&mut self, address: u32, buf: &mut [u8]) -> Result<(), IoError> {
        let granularity = F::READ_SIZE;
        if granularity == 1 {
            return self.flash.read(address, buf).map_err(flash_error);
        }
        if granularity > MAX_GRANULARITY || !granularity.is_power_of_two() {
            return Err(IoError::Granularity {
                max: MAX_GRANULARITY,
            });
        }
        let mut done = 0usize;
        // At most three rounds: an unaligned head, the aligned middle read straight into
        // `buf`, an unaligned tail (head and tail through the bounce buffer).
        while done < buf.len() {
            let wanted = address + done as u32;
            let skip = wanted as usize % granularity;
            let left = buf.len() - done;
            if skip == 0 && left >= granularity {
                let middle = left / granularity * granularity;
                self.flash
                    .read(wanted, &mut buf[done..done + middle])
                    .map_err(flash_error)?;
                done += middle;
                continue;
            }
            let mut bounce = [0u8; MAX_GRANULARITY];
            let take = (granularity - skip).min(left);
            self.flash
                .read(wanted - skip as u32, &mut bounce[..granularity])
                .map_err(flash_error)?;
            buf[done..done + take].copy_from_slice(&bounce[skip..skip + take]);
            done += take;
        }
        Ok(())
    }
}

fn flash_error<E: NorFlashError>(error: E) -> IoError {
    IoError::Flash(error.kind())
}

impl<F: ReadNorFlash> History for NorFlashHistory<F> {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let prefix_len = u64::from(self.prefix.len);
        let end = position + buf.len() as u64;
        let in_prefix = (prefix_len.clamp(position, end) - position) as usize;
        if in_prefix > 0 {
            let (head, _) = buf.split_at_mut(in_prefix);
            self.read_flash(self.prefix.offset + position as u32, head)?;
        }
        if in_prefix < buf.len() {
            let output_position = position + in_prefix as u64 - prefix_len;
            let address = u32::try_from(u64::from(self.output_offset) + output_position)
                .map_err(|_| IoError::OutOfHistory)?;
            self.read_flash(address, &mut buf[in_prefix..])?;
        }
        Ok(())
    }
}

/// The output written into a flash region, erasing each sector as the output enters it,
/// and read back as the history. This is the shape the device's install takes.
#[derive(Debug)]
pub struct NorFlashOutput<F> {
    history: NorFlashHistory<F>,
    capacity: u32,
    written: u32,
    erased_to: u32,
}

impl<F: NorFlash> NorFlashOutput<F> {
    /// Output into `output` (offset aligned to the erase size), with `prefix` before it.
    pub fn new(flash: F, prefix: Region, output: Region) -> Self {
        Self {
            history: NorFlashHistory::new(flash, prefix, output.offset),
            capacity: output.len,
            written: 0,
            erased_to: 0,
        }
    }

    /// Bytes of output written.
    pub fn written(&self) -> u32 {
        self.written
    }

    /// The flash back.
    pub fn into_inner(self) -> F {
        self.history.into_inner()
    }
}

impl<F: NorFlash> Sink for NorFlashOutput<F> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let granularity = F::WRITE_SIZE;
        if granularity > MAX_GRANULARITY || !granularity.is_power_of_two() {
            return Err(IoError::Granularity {
                max: MAX_GRANULARITY,
            });
        }
        if !(self.written as usize).is_multiple_of(granularity) {
            // Only the last piece may be short; nothing can follow it.
            return Err(IoError::Granularity { max: granularity });
        }
        let end = u32::try_from(self.written as usize + bytes.len())
            .ok()
            .filter(|&end| end <= self.capacity)
            .ok_or(IoError::OutputFull)?;
        let base = self.history.output_offset;
        if end > self.erased_to {
            let erase_end = end
                .div_ceil(F::ERASE_SIZE as u32)
                .saturating_mul(F::ERASE_SIZE as u32)
                .min(self.capacity.div_ceil(F::ERASE_SIZE as u32) * F::ERASE_SIZE as u32);
            self.history
                .flash
                .erase(base + self.erased_to, base + erase_end)
                .map_err(flash_error)?;
            self.erased_to = erase_end;
        }
        let whole = bytes.len() / granularity * granularity;
        let flash = &mut self.history.flash;
        if whole > 0 {
            flash
                .write(base + self.written, &bytes[..whole])
                .map_err(flash_error)?;
        }
        if whole < bytes.len() {
            let mut padded = [0xFFu8; MAX_GRANULARITY];
            padded[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
            flash
                .write(base + self.written + whole as u32, &padded[..granularity])
                .map_err(flash_error)?;
        }
        self.written = end;
        Ok(())
    }
}

impl<F: NorFlash> History for NorFlashOutput<F> {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let readable = u64::from(self.history.prefix.len) + u64::from(self.written);
        if position + buf.len() as u64 > readable {
            return Err(IoError::OutOfHistory);
        }
        self.history.read(position, buf)
    }
}
