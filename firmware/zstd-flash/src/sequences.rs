//! The sequences section (RFC 8878 §3.1.1.3.2) and its execution (§3.1.1.4).

use crate::bits::{BackwardBits, NormalizedCounts, read_normalized_counts};
use crate::fse::{
    FseState, FseTable, LITERAL_LENGTH_DEFAULT, MATCH_LENGTH_DEFAULT, OFFSET_DEFAULT, predefined,
};
use crate::huffman::HuffmanTable;
use crate::io::{History, Sink};
use crate::literals::Literals;
use crate::window::Window;
use crate::{Corruption, DecodeError};

/// Tables and repeat offsets that carry from block to block within a frame.
#[derive(Clone, Debug)]
pub(crate) struct Entropy {
    pub(crate) huffman: HuffmanTable,
    literal_lengths: FseTable<512>,
    match_lengths: FseTable<512>,
    offsets: FseTable<256>,
    repeat_offsets: [u64; 3],
}

const LITERAL_LENGTH_MAX: u8 = 35;
const MATCH_LENGTH_MAX: u8 = 52;
const OFFSET_MAX: u8 = 31;

/// (baseline, extra bits) of literal length codes 16-35 (codes below are the length).
const LITERAL_LENGTH_CODES: [(u32, u8); 20] = [
    (16, 1),
    (18, 1),
    (20, 1),
    (22, 1),
    (24, 2),
    (28, 2),
    (32, 3),
    (40, 3),
    (48, 4),
    (64, 6),
    (128, 7),
    (256, 8),
    (512, 9),
    (1024, 10),
    (2048, 11),
    (4096, 12),
    (8192, 13),
    (16384, 14),
    (32768, 15),
    (65536, 16),
];

/// (baseline, extra bits) of match length codes 32-52 (codes below are the length - 3).
const MATCH_LENGTH_CODES: [(u32, u8); 21] = [
    (35, 1),
    (37, 1),
    (39, 1),
    (41, 1),
    (43, 2),
    (47, 2),
    (51, 3),
    (59, 3),
    (67, 4),
    (83, 4),
    (99, 5),
    (131, 7),
    (259, 8),
    (515, 9),
    (1027, 10),
    (2051, 11),
    (4099, 12),
    (8195, 13),
    (16387, 14),
    (32771, 15),
    (65539, 16),
];

#[derive(Clone, Copy)]
enum Field {
    LiteralLength,
    Offset,
    MatchLength,
}

impl Entropy {
    /// Always inlined, so `Decoder::new` builds the table in place (see `Window::new`).
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Self {
            huffman: HuffmanTable::new(),
            literal_lengths: FseTable::new(),
            match_lengths: FseTable::new(),
            offsets: FseTable::new(),
            repeat_offsets: [1, 4, 8],
        }
    }

    /// A new frame: no table to repeat, initial repeat offsets.
    pub(crate) fn reset(&mut self) {
        self.huffman.valid = false;
        self.literal_lengths.valid = false;
        self.match_lengths.valid = false;
        self.offsets.valid = false;
        self.repeat_offsets = [1, 4, 8];
    }

    /// Reads one table per its compression mode from the front of `data`; returns the
    /// bytes taken.
    ///
    /// Never inlined: building a table needs ~0.5 KiB of temporaries (counts, spread
    /// state), once per block; inlined into the sequence loop's caller they would take
    /// stack for the whole block, under every literal and match copy.
    #[inline(never)]
    fn read_table(&mut self, field: Field, mode: u8, data: &[u8]) -> Result<usize, Corruption> {
        let (max_symbol, max_log, default, default_log) = match field {
            Field::LiteralLength => (LITERAL_LENGTH_MAX, 9, &LITERAL_LENGTH_DEFAULT[..], 6),
            Field::Offset => (OFFSET_MAX, 8, &OFFSET_DEFAULT[..], 5),
            Field::MatchLength => (MATCH_LENGTH_MAX, 9, &MATCH_LENGTH_DEFAULT[..], 6),
        };
        let mut table = match field {
            Field::LiteralLength => TableRef::Large(&mut self.literal_lengths),
            Field::MatchLength => TableRef::Large(&mut self.match_lengths),
            Field::Offset => TableRef::Small(&mut self.offsets),
        };
        match mode {
            0 => {
                table.build(&predefined(default, default_log))?;
                Ok(0)
            }
            1 => {
                let symbol = *data.first().ok_or(Corruption::SequencesHeader)?;
                if symbol > max_symbol {
                    return Err(Corruption::FseTable);
                }
                table.set_rle(symbol);
                Ok(1)
            }
            2 => {
                let mut counts = NormalizedCounts::new();
                let used =
                    read_normalized_counts(data, usize::from(max_symbol), max_log, &mut counts)?;
                table.build(&counts)?;
                Ok(used)
            }
            _ => {
                if table.valid() {
                    Ok(0)
                } else {
                    Err(Corruption::MissingFseTable)
                }
            }
        }
    }
}

enum TableRef<'a> {
    Large(&'a mut FseTable<512>),
    Small(&'a mut FseTable<256>),
}

impl TableRef<'_> {
    fn build(&mut self, counts: &NormalizedCounts) -> Result<(), Corruption> {
        match self {
            TableRef::Large(table) => table.build(counts),
            TableRef::Small(table) => table.build(counts),
        }
    }
    fn set_rle(&mut self, symbol: u8) {
        match self {
            TableRef::Large(table) => table.set_rle(symbol),
            TableRef::Small(table) => table.set_rle(symbol),
        }
    }
    fn valid(&self) -> bool {
        match self {
            TableRef::Large(table) => table.valid,
            TableRef::Small(table) => table.valid,
        }
    }
}

/// Decodes the sequences in `data` and executes them against the literals; then appends
/// the literals left over. `block_max` bounds the block's output.
pub(crate) fn execute<const R: usize, O: Sink + History>(
    data: &[u8],
    mut literals: Literals<'_>,
    entropy: &mut Entropy,
    window: &mut Window<R>,
    block_max: usize,
    out: &mut O,
) -> Result<(), DecodeError> {
    let header_err = Corruption::SequencesHeader;
    let first = *data.first().ok_or(header_err)?;
    let byte = |index: usize| data.get(index).copied().map(usize::from).ok_or(header_err);
    let (count, mut used) = match first {
        0..128 => (usize::from(first), 1),
        128..255 => (((usize::from(first) - 128) << 8) + byte(1)?, 2),
        255 => (byte(1)? + (byte(2)? << 8) + 0x7F00, 3),
    };
    let mut block_out = 0usize;
    if count > 0 {
        let modes = byte(used)? as u8;
        used += 1;
        if modes & 3 != 0 {
            return Err(header_err.into());
        }
        for (field, shift) in [
            (Field::LiteralLength, 6),
            (Field::Offset, 4),
            (Field::MatchLength, 2),
        ] {
            used += entropy.read_table(field, (modes >> shift) & 3, &data[used..])?;
        }
        let mut bits = BackwardBits::new(&data[used..], Corruption::SequenceBitstream)?;
        let mut ll_state = FseState::init(&entropy.literal_lengths, &mut bits);
        let mut of_state = FseState::init(&entropy.offsets, &mut bits);
        let mut ml_state = FseState::init(&entropy.match_lengths, &mut bits);
        for index in 0..count {
            let of_code = of_state.symbol(&entropy.offsets);
            let ml_code = ml_state.symbol(&entropy.match_lengths);
            let ll_code = ll_state.symbol(&entropy.literal_lengths);
            let offset_value = (1u64 << of_code) + bits.read(u32::from(of_code));
            let match_length = if ml_code < 32 {
                u32::from(ml_code) + 3
            } else {
                let (base, extra) = MATCH_LENGTH_CODES[usize::from(ml_code - 32)];
                base + bits.read(u32::from(extra)) as u32
            } as usize;
            let literal_length = if ll_code < 16 {
                u32::from(ll_code)
            } else {
                let (base, extra) = LITERAL_LENGTH_CODES[usize::from(ll_code - 16)];
                base + bits.read(u32::from(extra)) as u32
            } as usize;
            if index + 1 < count {
                ll_state.update(&entropy.literal_lengths, &mut bits);
                ml_state.update(&entropy.match_lengths, &mut bits);
                of_state.update(&entropy.offsets, &mut bits);
            }
            if bits.overflowed() {
                return Err(Corruption::SequenceBitstream.into());
            }
            let offset = resolve_offset(&mut entropy.repeat_offsets, offset_value, literal_length)?;
            block_out += literal_length + match_length;
            if block_out > block_max {
                return Err(Corruption::BlockOverflow.into());
            }
            literals.take(literal_length, &entropy.huffman, window, out)?;
            window.copy_match(offset, match_length, out)?;
        }
        if !bits.exactly_consumed() {
            return Err(Corruption::SequenceBitstream.into());
        }
    } else if used != data.len() {
        return Err(header_err.into());
    }
    let rest = literals.remaining();
    if block_out + rest > block_max {
        return Err(Corruption::BlockOverflow.into());
    }
    literals.take(rest, &entropy.huffman, window, out)?;
    literals.finish()?;
    Ok(())
}

/// RFC 8878 §3.1.1.5: offset values 1-3 name repeat offsets (shifted by one when the
/// sequence has no literals), larger ones are new offsets.
fn resolve_offset(
    repeat: &mut [u64; 3],
    offset_value: u64,
    literal_length: usize,
) -> Result<u64, Corruption> {
    if offset_value > 3 {
        let offset = offset_value - 3;
        *repeat = [offset, repeat[0], repeat[1]];
        return Ok(offset);
    }
    let index = offset_value as usize - 1 + usize::from(literal_length == 0);
    let offset = match index {
        0 => repeat[0],
        1 => repeat[1],
        2 => repeat[2],
        _ => repeat[0].wrapping_sub(1),
    };
    if offset == 0 {
        return Err(Corruption::ZeroOffset);
    }
    match index {
        0 => {}
        1 => *repeat = [offset, repeat[0], repeat[2]],
        _ => *repeat = [offset, repeat[0], repeat[1]],
    }
    Ok(offset)
}
