//! Bit readers: the backward bitstreams of Huffman and FSE (RFC 8878 §4.1, §4.2) and the
//! forward one of FSE table descriptions (§4.1.1).

use crate::Corruption;

/// A bitstream read from its last bit towards its first, as zstd writes Huffman and
/// sequence streams: the highest set bit of the last byte marks where it starts.
pub(crate) struct BackwardBits<'a> {
    data: &'a [u8],
    /// Bits not yet read; negative once reads went past the start (they return zeros).
    remaining: isize,
}

impl<'a> BackwardBits<'a> {
    pub(crate) fn new(data: &'a [u8], err: Corruption) -> Result<Self, Corruption> {
        let last = *data.last().ok_or(err)?;
        if last == 0 {
            return Err(err);
        }
        let marker = 7 - last.leading_zeros() as isize;
        Ok(Self {
            data,
            remaining: (data.len() as isize - 1) * 8 + marker,
        })
    }

    /// `count` (≤ 56) bits starting at bit `start` of the stream as one little-endian number.
    fn extract(&self, start: usize, count: u32) -> u64 {
        let first = start / 8;
        let word = match self.data.get(first..first + 8) {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
            None => {
                let mut word = [0u8; 8];
                let tail = &self.data[first..];
                word[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(word)
            }
        };
        (word >> (start % 8)) & ((1u64 << count) - 1)
    }

    /// The next `count` (≤ 32) bits without consuming them; past the start they are zeros.
    pub(crate) fn peek(&self, count: u32) -> u64 {
        if count == 0 || self.remaining <= 0 {
            return 0;
        }
        let below = self.remaining - count as isize;
        if below >= 0 {
            self.extract(below as usize, count)
        } else {
            self.extract(0, self.remaining as u32) << (-below)
        }
    }

    pub(crate) fn consume(&mut self, count: u32) {
        self.remaining -= count as isize;
    }

    pub(crate) fn read(&mut self, count: u32) -> u64 {
        let value = self.peek(count);
        self.consume(count);
        value
    }

    /// Every bit read, none beyond.
    pub(crate) fn exactly_consumed(&self) -> bool {
        self.remaining == 0
    }

    /// Reads went past the start of the stream.
    pub(crate) fn overflowed(&self) -> bool {
        self.remaining < 0
    }
}

/// A decoded FSE table description: the normalized count of each symbol (-1 means
/// "less than one") and the accuracy log.
pub(crate) struct NormalizedCounts {
    pub(crate) counts: [i16; 64],
    pub(crate) symbols: usize,
    pub(crate) accuracy_log: u8,
}

impl NormalizedCounts {
    /// No symbols yet: what [`read_normalized_counts`] fills.
    pub(crate) const fn new() -> Self {
        Self {
            counts: [0; 64],
            symbols: 0,
            accuracy_log: 0,
        }
    }
}

/// Reads an FSE table description (RFC 8878 §4.1.1) from the front of `data` into
/// `table`; returns the bytes it took. The caller's table is filled in place rather than
/// returned: a returned one is built in this frame and copied, stacked on the caller's.
pub(crate) fn read_normalized_counts(
    data: &[u8],
    max_symbol: usize,
    max_accuracy_log: u8,
    table: &mut NormalizedCounts,
) -> Result<usize, Corruption> {
    let mut reader = ForwardBits { data, position: 0 };
    let accuracy_log = reader.read(4)? as u8 + 5;
    if accuracy_log > max_accuracy_log {
        return Err(Corruption::FseTable);
    }
    table.counts = [0; 64];
    table.symbols = 0;
    table.accuracy_log = accuracy_log;
    let table_size = 1i32 << accuracy_log;
    let mut remaining = table_size + 1;
    let mut threshold = table_size;
    let mut bits = u32::from(accuracy_log) + 1;
    let mut symbol = 0usize;
    while remaining > 1 {
        if symbol > max_symbol {
            return Err(Corruption::FseTable);
        }
        let max_small = 2 * threshold - 1 - remaining;
        let low = reader.peek(bits - 1)? as i32;
        let value = if low < max_small {
            reader.skip(bits - 1);
            low
        } else {
            let full = reader.peek(bits)? as i32;
            reader.skip(bits);
            if full >= threshold {
                full - max_small
            } else {
                full
            }
        };
        let count = value - 1;
        remaining -= count.abs();
        table.counts[symbol] = count as i16;
        symbol += 1;
        if count == 0 {
            // Zero probabilities are followed by 2-bit repeat flags for further zeros.
            loop {
                let repeat = reader.read(2)? as usize;
                symbol += repeat;
                if symbol > max_symbol + 1 {
                    return Err(Corruption::FseTable);
                }
                if repeat != 3 {
                    break;
                }
            }
        }
        while remaining < threshold && threshold > 1 {
            bits -= 1;
            threshold >>= 1;
        }
    }
    if remaining != 1 || symbol > max_symbol + 1 {
        return Err(Corruption::FseTable);
    }
    table.symbols = symbol;
    Ok(reader.position.div_ceil(8))
}

/// Little-endian bits from the front of a byte slice.
struct ForwardBits<'a> {
    data: &'a [u8],
    position: usize,
}

impl ForwardBits<'_> {
    fn peek(&self, count: u32) -> Result<u64, Corruption> {
        if self.position + count as usize > self.data.len() * 8 {
            return Err(Corruption::FseTable);
        }
        let first = self.position / 8;
        let end = (first + 8).min(self.data.len());
        let mut word = [0u8; 8];
        word[..end - first].copy_from_slice(&self.data[first..end]);
        Ok((u64::from_le_bytes(word) >> (self.position % 8)) & ((1u64 << count) - 1))
    }

    fn skip(&mut self, count: u32) {
        self.position += count as usize;
    }

    fn read(&mut self, count: u32) -> Result<u64, Corruption> {
        let value = self.peek(count)?;
        self.skip(count);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_reads_from_the_marker_down() {
        // Stream 0b0000_0001_1011_0010 (LE bytes 0xB2, 0x01): marker at bit 8.
        let mut bits = BackwardBits::new(&[0xB2, 0x01], Corruption::SequenceBitstream).unwrap();
        assert_eq!(bits.read(3), 0b101);
        assert_eq!(bits.read(5), 0b10010);
        assert!(bits.exactly_consumed());
        assert_eq!(bits.read(2), 0);
        assert!(bits.overflowed());
    }

    #[test]
    fn a_stream_without_marker_is_refused() {
        assert!(BackwardBits::new(&[0x12, 0x00], Corruption::SequenceBitstream).is_err());
        assert!(BackwardBits::new(&[], Corruption::SequenceBitstream).is_err());
    }
}
