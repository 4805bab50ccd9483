//! FSE decoding tables (RFC 8878 §4.1): built from a table description, a predefined
//! distribution or a single RLE symbol.

use crate::Corruption;
use crate::bits::{BackwardBits, NormalizedCounts};

/// One decoding state: the symbol it emits and how to reach the next state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FseEntry {
    pub(crate) symbol: u8,
    pub(crate) bits: u8,
    pub(crate) baseline: u16,
}

/// A decoding table of up to `N` states; `valid` is false until one was built, which is
/// what the "repeat" mode of a later block needs.
#[derive(Clone, Debug)]
pub(crate) struct FseTable<const N: usize> {
    pub(crate) entries: [FseEntry; N],
    pub(crate) accuracy_log: u8,
    pub(crate) valid: bool,
}

impl<const N: usize> FseTable<N> {
    /// Always inlined, so `Decoder::new` builds the table in place (see `Window::new`).
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Self {
            entries: [FseEntry {
                symbol: 0,
                bits: 0,
                baseline: 0,
            }; N],
            accuracy_log: 0,
            valid: false,
        }
    }

    /// A one-state table that always emits `symbol` and reads no bits.
    pub(crate) fn set_rle(&mut self, symbol: u8) {
        self.entries[0] = FseEntry {
            symbol,
            bits: 0,
            baseline: 0,
        };
        self.accuracy_log = 0;
        self.valid = true;
    }

    /// Builds the table of a distribution (RFC 8878 §4.1.1, "FSE table construction").
    pub(crate) fn build(&mut self, counts: &NormalizedCounts) -> Result<(), Corruption> {
        let size = 1usize << counts.accuracy_log;
        if size > N {
            return Err(Corruption::FseTable);
        }
        self.valid = false;
        let mut next_state = [0u16; 64];
        let mut high = size;
        // "Less than one" symbols take the last states, one each.
        for (symbol, &count) in counts.counts[..counts.symbols].iter().enumerate() {
            if count == -1 {
                high -= 1;
                self.entries[high].symbol = symbol as u8;
                next_state[symbol] = 1;
            } else {
                next_state[symbol] = count as u16;
            }
        }
        let step = (size >> 1) + (size >> 3) + 3;
        let mask = size - 1;
        let mut position = 0usize;
        for (symbol, &count) in counts.counts[..counts.symbols].iter().enumerate() {
            for _ in 0..count.max(0) {
                self.entries[position].symbol = symbol as u8;
                position = (position + step) & mask;
                while position >= high {
                    position = (position + step) & mask;
                }
            }
        }
        // The spread must land back on state 0, or the counts did not sum to the size.
        if position != 0 {
            return Err(Corruption::FseTable);
        }
        for entry in &mut self.entries[..size] {
            let state = next_state[usize::from(entry.symbol)];
            next_state[usize::from(entry.symbol)] += 1;
            let bits = counts.accuracy_log - (15 - state.leading_zeros() as u8);
            entry.bits = bits;
            entry.baseline = ((u32::from(state) << bits) - size as u32) as u16;
        }
        self.accuracy_log = counts.accuracy_log;
        self.valid = true;
        Ok(())
    }
}

/// The position in an FSE table while decoding a stream.
pub(crate) struct FseState {
    state: usize,
}

impl FseState {
    pub(crate) fn init<const N: usize>(table: &FseTable<N>, bits: &mut BackwardBits<'_>) -> Self {
        Self {
            state: bits.read(u32::from(table.accuracy_log)) as usize,
        }
    }

    pub(crate) fn symbol<const N: usize>(&self, table: &FseTable<N>) -> u8 {
        table.entries[self.state].symbol
    }

    pub(crate) fn update<const N: usize>(
        &mut self,
        table: &FseTable<N>,
        bits: &mut BackwardBits<'_>,
    ) {
        let entry = table.entries[self.state];
        self.state = usize::from(entry.baseline) + bits.read(u32::from(entry.bits)) as usize;
    }
}

/// The predefined distributions of RFC 8878 §3.1.1.3.2.2.
pub(crate) fn predefined(counts: &[i16], accuracy_log: u8) -> NormalizedCounts {
    let mut table = NormalizedCounts {
        counts: [0; 64],
        symbols: counts.len(),
        accuracy_log,
    };
    table.counts[..counts.len()].copy_from_slice(counts);
    table
}

pub(crate) const LITERAL_LENGTH_DEFAULT: [i16; 36] = [
    4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
    -1, -1, -1, -1,
];
pub(crate) const MATCH_LENGTH_DEFAULT: [i16; 53] = [
    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
pub(crate) const OFFSET_DEFAULT: [i16; 29] = [
    1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
];
