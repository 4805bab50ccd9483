//! Huffman literals (RFC 8878 §4.2): the tree description and the decoding table.

use crate::Corruption;
use crate::bits::{BackwardBits, NormalizedCounts, read_normalized_counts};
use crate::fse::{FseState, FseTable};

/// RFC 8878 §4.2.1: prefix codes are at most 11 bits long.
pub(crate) const MAX_BITS: u8 = 11;
const TABLE_SIZE: usize = 1 << MAX_BITS;
/// The weights' own FSE table has an accuracy log of at most 6.
const WEIGHT_ACCURACY_LOG: u8 = 6;
const MAX_WEIGHT_SYMBOL: usize = 12;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HuffmanEntry {
    pub(crate) symbol: u8,
    pub(crate) bits: u8,
}

/// A single-symbol decoding table indexed by the next `max_bits` bits of a stream.
#[derive(Clone, Debug)]
pub(crate) struct HuffmanTable {
    entries: [HuffmanEntry; TABLE_SIZE],
    max_bits: u8,
    pub(crate) valid: bool,
}

impl HuffmanTable {
    /// Always inlined, so `Decoder::new` builds the table in place (see `Window::new`).
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Self {
            entries: [HuffmanEntry { symbol: 0, bits: 0 }; TABLE_SIZE],
            max_bits: 0,
            valid: false,
        }
    }

    /// Reads a tree description from the front of `data` and builds the table from it;
    /// returns the bytes the description took.
    pub(crate) fn read(&mut self, data: &[u8]) -> Result<usize, Corruption> {
        self.valid = false;
        let header = *data.first().ok_or(Corruption::HuffmanTable)?;
        let mut weights = [0u8; 256];
        let (count, used) = if header < 128 {
            let size = usize::from(header);
            let body = data.get(1..1 + size).ok_or(Corruption::HuffmanTable)?;
            (fse_weights(body, &mut weights)?, 1 + size)
        } else {
            let count = usize::from(header) - 127;
            let size = count.div_ceil(2);
            let body = data.get(1..1 + size).ok_or(Corruption::HuffmanTable)?;
            for (index, weight) in weights[..count].iter_mut().enumerate() {
                let byte = body[index / 2];
                *weight = if index % 2 == 0 { byte >> 4 } else { byte & 15 };
            }
            (count, 1 + size)
        };
        self.build(&mut weights, count)?;
        Ok(used)
    }

    /// Builds the table from the weights of all symbols but the last, whose weight
    /// completes the sum to a power of two (RFC 8878 §4.2.1.3).
    fn build(&mut self, weights: &mut [u8; 256], count: usize) -> Result<(), Corruption> {
        if count == 0 || count > 255 {
            return Err(Corruption::HuffmanTable);
        }
        let mut sum = 0u32;
        for &weight in &weights[..count] {
            if weight > MAX_BITS {
                return Err(Corruption::HuffmanTable);
            }
            if weight > 0 {
                sum += 1 << (weight - 1);
            }
        }
        if sum == 0 {
            return Err(Corruption::HuffmanTable);
        }
        let max_bits = (32 - sum.leading_zeros()) as u8;
        if max_bits > MAX_BITS {
            return Err(Corruption::HuffmanTable);
        }
        let rest = (1u32 << max_bits) - sum;
        if !rest.is_power_of_two() {
            return Err(Corruption::HuffmanTable);
        }
        weights[count] = (rest.trailing_zeros() + 1) as u8;
        let symbols = count + 1;
        let mut per_weight = [0u32; MAX_BITS as usize + 1];
        for &weight in &weights[..symbols] {
            per_weight[usize::from(weight)] += 1;
        }
        // libzstd's check: the longest codes come in pairs.
        if per_weight[1] < 2 || !per_weight[1].is_multiple_of(2) {
            return Err(Corruption::HuffmanTable);
        }
        let mut start = [0usize; MAX_BITS as usize + 1];
        let mut next = 0usize;
        for weight in 1..=usize::from(max_bits) {
            start[weight] = next;
            next += (per_weight[weight] as usize) << (weight - 1);
        }
        for (symbol, &weight) in weights[..symbols].iter().enumerate() {
            if weight == 0 {
                continue;
            }
            let length = 1usize << (weight - 1);
            let first = start[usize::from(weight)];
            let entry = HuffmanEntry {
                symbol: symbol as u8,
                bits: max_bits + 1 - weight,
            };
            self.entries[first..first + length].fill(entry);
            start[usize::from(weight)] += length;
        }
        self.max_bits = max_bits;
        self.valid = true;
        Ok(())
    }

    /// Decodes one literal; a code reaching past the stream's start is corruption.
    pub(crate) fn decode(&self, bits: &mut BackwardBits<'_>) -> Result<u8, Corruption> {
        let entry = self.entries[bits.peek(u32::from(self.max_bits)) as usize];
        bits.consume(u32::from(entry.bits));
        if bits.overflowed() {
            return Err(Corruption::HuffmanStream);
        }
        Ok(entry.symbol)
    }
}

/// Weights compressed with FSE: two interleaved states over one backward stream.
fn fse_weights(body: &[u8], weights: &mut [u8; 256]) -> Result<usize, Corruption> {
    let mut counts = NormalizedCounts::new();
    let used = read_normalized_counts(body, MAX_WEIGHT_SYMBOL, WEIGHT_ACCURACY_LOG, &mut counts)?;
    let mut table = FseTable::<{ 1 << WEIGHT_ACCURACY_LOG }>::new();
    table.build(&counts)?;
    let stream = body.get(used..).ok_or(Corruption::HuffmanTable)?;
    let mut bits = BackwardBits::new(stream, Corruption::HuffmanTable)?;
    let mut states = [
        FseState::init(&table, &mut bits),
        FseState::init(&table, &mut bits),
    ];
    if bits.overflowed() {
        return Err(Corruption::HuffmanTable);
    }
    let mut count = 0usize;
    let mut turn = 0usize;
    // Each round emits a weight; at most 255 weights exist, so the loop is bounded.
    loop {
        if count >= 255 {
            return Err(Corruption::HuffmanTable);
        }
        weights[count] = states[turn].symbol(&table);
        count += 1;
        states[turn].update(&table, &mut bits);
        if bits.overflowed() {
            // The stream ended: the other state holds the last weight.
            if count >= 255 {
                return Err(Corruption::HuffmanTable);
            }
            weights[count] = states[1 - turn].symbol(&table);
            count += 1;
            return Ok(count);
        }
        turn = 1 - turn;
    }
}
