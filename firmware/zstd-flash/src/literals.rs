//! The literals section of a compressed block (RFC 8878 §3.1.1.3.1), decoded lazily: the
//! sequences take literals in order, so Huffman streams are decoded as they are consumed
//! and no literal buffer exists.

use crate::bits::BackwardBits;
use crate::huffman::HuffmanTable;
use crate::io::Sink;
use crate::window::Window;
use crate::{Corruption, DecodeError};

/// Literals decoded per push into the window.
const BATCH: usize = 64;

pub(crate) enum Literals<'a> {
    Raw(&'a [u8]),
    Rle { byte: u8, remaining: usize },
    Huffman(HuffmanLiterals<'a>),
}

pub(crate) struct HuffmanLiterals<'a> {
    streams: [&'a [u8]; 4],
    stream_count: usize,
    segment_len: usize,
    total: usize,
    /// Literals taken so far.
    taken: usize,
    current: usize,
    bits: BackwardBits<'a>,
}

/// Parses the literals section at the front of `block` (reading a new Huffman table into
/// `huffman` when the section carries one); returns the literals and the rest of the block.
pub(crate) fn parse<'a>(
    block: &'a [u8],
    huffman: &mut HuffmanTable,
    block_max: usize,
) -> Result<(Literals<'a>, &'a [u8]), Corruption> {
    let err = Corruption::LiteralsHeader;
    let first = *block.first().ok_or(err)?;
    let kind = first & 3;
    let size_format = (first >> 2) & 3;
    let byte = |index: usize| block.get(index).copied().map(usize::from).ok_or(err);
    if kind < 2 {
        let (header, regenerated) = match size_format {
            0 | 2 => (1, usize::from(first >> 3)),
            1 => (2, usize::from(first >> 4) + (byte(1)? << 4)),
            _ => (
                3,
                usize::from(first >> 4) + (byte(1)? << 4) + (byte(2)? << 12),
            ),
        };
        if regenerated > block_max {
            return Err(err);
        }
        let body = &block[header..];
        return if kind == 0 {
            let raw = body.get(..regenerated).ok_or(err)?;
            Ok((Literals::Raw(raw), &body[regenerated..]))
        } else {
            let byte = *body.first().ok_or(err)?;
            Ok((
                Literals::Rle {
                    byte,
                    remaining: regenerated,
                },
                &body[1..],
            ))
        };
    }
    let (header, stream_count, field_bits) = match size_format {
        0 => (3, 1, 10),
        1 => (3, 4, 10),
        2 => (4, 4, 14),
        _ => (5, 4, 18),
    };
    let mut packed = 0u64;
    for index in (0..header).rev() {
        packed = (packed << 8) | byte(index)? as u64;
    }
    let mask = (1u64 << field_bits) - 1;
    let regenerated = ((packed >> 4) & mask) as usize;
    let compressed = ((packed >> (4 + field_bits)) & mask) as usize;
    if regenerated > block_max {
        return Err(err);
    }
    let body = block.get(header..header + compressed).ok_or(err)?;
    let rest = &block[header + compressed..];
    let streams_data = if kind == 2 {
        let used = huffman.read(body)?;
        &body[used..]
    } else if huffman.valid {
        body
    } else {
        return Err(Corruption::MissingHuffmanTable);
    };
    let mut streams: [&[u8]; 4] = [&[]; 4];
    if stream_count == 1 {
        streams[0] = streams_data;
    } else {
        let jump = streams_data.get(..6).ok_or(Corruption::HuffmanStream)?;
        let mut data = &streams_data[6..];
        for (index, stream) in streams.iter_mut().enumerate().take(3) {
            let size = usize::from(u16::from_le_bytes([jump[2 * index], jump[2 * index + 1]]));
            if size > data.len() {
                return Err(Corruption::HuffmanStream);
            }
            (*stream, data) = data.split_at(size);
        }
        streams[3] = data;
    }
    let segment_len = if stream_count == 1 {
        regenerated
    } else {
        regenerated.div_ceil(4)
    };
    // libzstd's bound: four streams carry at least six literals.
    if stream_count == 4 && (regenerated < 6 || segment_len * 3 > regenerated) {
        return Err(Corruption::HuffmanStream);
    }
    let bits = BackwardBits::new(streams[0], Corruption::HuffmanStream)?;
    Ok((
        Literals::Huffman(HuffmanLiterals {
            streams,
            stream_count,
            segment_len,
            total: regenerated,
            taken: 0,
            current: 0,
            bits,
        }),
        rest,
    ))
}

impl Literals<'_> {
    pub(crate) fn remaining(&self) -> usize {
        match self {
            Literals::Raw(bytes) => bytes.len(),
            Literals::Rle { remaining, .. } => *remaining,
            Literals::Huffman(huffman) => huffman.total - huffman.taken,
        }
    }

    /// Moves the next `count` literals into the window.
    pub(crate) fn take<const R: usize, O: Sink>(
        &mut self,
        count: usize,
        table: &HuffmanTable,
        window: &mut Window<R>,
        out: &mut O,
    ) -> Result<(), DecodeError> {
        if count > self.remaining() {
            return Err(Corruption::LiteralsOverrun.into());
        }
        match self {
            Literals::Raw(bytes) => {
                let (now, later) = bytes.split_at(count);
                window.push_slice(now, out)?;
                *bytes = later;
            }
            Literals::Rle { byte, remaining } => {
                window.push_fill(*byte, count, out)?;
                *remaining -= count;
            }
            Literals::Huffman(huffman) => huffman.take(count, table, window, out)?,
        }
        Ok(())
    }

    /// After the last sequence: every Huffman stream ended exactly where it should.
    pub(crate) fn finish(self) -> Result<(), Corruption> {
        match self {
            Literals::Huffman(mut huffman) => {
                // At most four streams to check.
                while huffman.current + 1 < huffman.stream_count {
                    huffman.next_stream()?;
                }
                if huffman.bits.exactly_consumed() {
                    Ok(())
                } else {
                    Err(Corruption::HuffmanStream)
                }
            }
            _ => Ok(()),
        }
    }
}

impl HuffmanLiterals<'_> {
    fn segment_end(&self) -> usize {
        if self.current + 1 == self.stream_count {
            self.total
        } else {
            (self.current + 1) * self.segment_len
        }
    }

    fn next_stream(&mut self) -> Result<(), Corruption> {
        if !self.bits.exactly_consumed() || self.current + 1 >= self.stream_count {
            return Err(Corruption::HuffmanStream);
        }
        self.current += 1;
        self.bits = BackwardBits::new(self.streams[self.current], Corruption::HuffmanStream)?;
        Ok(())
    }

    fn take<const R: usize, O: Sink>(
        &mut self,
        mut count: usize,
        table: &HuffmanTable,
        window: &mut Window<R>,
        out: &mut O,
    ) -> Result<(), DecodeError> {
        let mut batch = [0u8; BATCH];
        // Each round decodes at least one literal or moves to the next of four streams.
        while count > 0 {
            let in_segment = self.segment_end() - self.taken;
            if in_segment == 0 {
                self.next_stream()?;
                continue;
            }
            let now = count.min(in_segment).min(BATCH);
            for slot in &mut batch[..now] {
                *slot = table.decode(&mut self.bits)?;
            }
            window.push_slice(&batch[..now], out)?;
            self.taken += now;
            count -= now;
        }
        Ok(())
    }
}
