//! A streaming Zstandard decoder (RFC 8878) for devices, whose window lives in flash.
//!
//! A zstd frame may copy matches from as far back as its window (up to 2^27 bytes here);
//! decoders normally keep the whole window in RAM. On a device installing firmware the
//! output is being written to a flash slot anyway, so this decoder keeps only the most
//! recent `RING` bytes in RAM and reads older ones back from what it already wrote,
//! through the [`History`] trait. RAM stays constant whatever the window: a larger window
//! costs flash reads, not memory.
//!
//! - **Streaming both ways.** [`Decoder::feed`] takes compressed input in pieces of any
//!   size (as the network delivers it); output goes to a [`Sink`] in `RING`-sized,
//!   `RING`-aligned pieces (one flash sector each for a 4 KiB ring), the last at
//!   [`Decoder::finish`].
//! - **Memory.** Everything lives in [`Decoder`]: the ring (`RING`), one compressed block
//!   (`BLOCK`), the Huffman table (4 KiB) and the three FSE tables (5 KiB).
//!   `Decoder<4096, 8192>` is 21,792 B and `Decoder<4096, 4096>` 17,696 B (checked by a
//!   test with `core::mem::size_of`); no heap, no `alloc`. The stack adds a 64-byte
//!   literal batch and a 64-byte flash bounce buffer to small locals (about 1.4 KiB at
//!   the deepest on RV32IMC, while a Huffman table is read). [`Decoder::new`] builds the
//!   decoder in the caller's place; [`Decoder::reset_with`] reuses one in place, where
//!   assigning a new decoder may build it on the stack first.
//! - **Blocks.** Literals and sequences are read backwards from the end of their block,
//!   so a compressed block must be whole in RAM: frames whose compressed blocks exceed
//!   `BLOCK` are refused ([`DecodeError::BlockBufferTooSmall`]). libzstd keeps blocks small
//!   with `ZSTD_c_maxBlockSize` (no zstd CLI flag sets it; the zstd crate's
//!   `CParameter::MaxBlockSize` with its `experimental` feature). Raw and RLE blocks
//!   stream through without the buffer. Decoded literals need no buffer: Huffman streams
//!   are decoded as the sequences consume them.
//! - **Window.** Frames declaring a window above [`DecoderConfig::max_window`] are refused
//!   ([`DecodeError::WindowTooLarge`]); match offsets may reach any byte of the frame's
//!   output (as libzstd allows), and no further ([`DecodeError::OffsetBeyondHistory`]).
//! - **Dictionaries.** Frames naming a dictionary ID are refused. A raw prefix is
//!   supported: [`DecoderConfig::prefix_len`] bytes that the history serves before the
//!   output, which is what `zstd --patch-from` and libzstd's `ZSTD_CCtx_refPrefix` compress
//!   against (for deltas: the base image in the other slot).
//! - **Checks.** The content checksum (XXH64) is verified when present, the declared
//!   content size is compared, and every malformed header, table or bitstream gives a
//!   typed [`DecodeError`], never a panic.
//!
//! Skippable frames are skipped (or refused, [`DecoderConfig::skippable_frames`]); concatenated frames decode one after the other, each
//! reaching back only into its own output (the first also into the prefix).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bits;
mod decoder;
mod flash;
mod fse;
mod huffman;
mod io;
mod literals;
mod sequences;
mod window;
mod xxh64;

pub use decoder::{DEFAULT_MAX_WINDOW, Decoder, DecoderConfig};
pub use flash::{NorFlashHistory, NorFlashOutput, Region};
pub use io::{History, IoError, Sink, SliceOutput, Split};

/// Why a frame was refused.
// Not `#[non_exhaustive]`: the agent maps every variant to its own refusal without a
// wildcard, so a new one does not build until someone says what it means there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither a zstd frame nor a skippable frame.
    #[error("not a zstd frame (magic {0:#010x})")]
    BadMagic(u32),
    /// The frame header's reserved bit is set.
    #[error("zstd frame header has its reserved bit set")]
    ReservedBit,
    /// The frame needs a dictionary; only a raw prefix is supported.
    #[error("zstd frame needs dictionary {0}")]
    DictionaryRequired(u32),
    /// The frame declares a larger window than the caller allows.
    #[error("zstd window of {window} bytes exceeds the allowed {max}")]
    WindowTooLarge {
        /// Window the frame declares.
        window: u64,
        /// The caller's maximum.
        max: u64,
    },
    /// A block is larger than its frame permits.
    #[error("zstd block of {size} bytes exceeds the frame's maximum {max}")]
    BlockTooLarge {
        /// Declared block size.
        size: u32,
        /// The frame's block maximum.
        max: u64,
    },
    /// A compressed block does not fit the decoder's block buffer.
    #[error("compressed zstd block of {size} bytes exceeds the {capacity}-byte block buffer")]
    BlockBufferTooSmall {
        /// Compressed size of the block.
        size: u32,
        /// The decoder's `BLOCK`.
        capacity: usize,
    },
    /// Block type 3.
    #[error("reserved zstd block type")]
    ReservedBlockType,
    /// A match reaches before the frame's history.
    #[error("match offset {offset} reaches past the {available} bytes of history")]
    OffsetBeyondHistory {
        /// The match offset.
        offset: u64,
        /// Bytes the frame can reach (its output so far, plus the prefix for the first).
        available: u64,
    },
    /// The frame's output differs from the content size in its header.
    #[error("zstd frame declares {declared} bytes of content but produced {produced}")]
    ContentSizeMismatch {
        /// From the frame header.
        declared: u64,
        /// Decoded.
        produced: u64,
    },
    /// The content checksum does not match the output.
    #[error("zstd content checksum {expected:#010x} does not match the output's {computed:#010x}")]
    ChecksumMismatch {
        /// From the frame.
        expected: u32,
        /// Of the output.
        computed: u32,
    },
    /// The input ended inside a frame, or held no zstd frame.
    #[error("zstd input ends inside a frame or holds none")]
    Truncated,
    /// A block's content is malformed.
    #[error("corrupt zstd block: {0}")]
    Corrupt(Corruption),
    /// The sink or the history failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Where a block was found malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The literals section header, or literals beyond the block.
    #[error("literals section header")]
    LiteralsHeader,
    /// The Huffman tree description.
    #[error("Huffman table")]
    HuffmanTable,
    /// Treeless literals without a previous Huffman table.
    #[error("treeless literals without a previous Huffman table")]
    MissingHuffmanTable,
    /// A Huffman stream: jump table, sizes, or a stream that does not end exactly.
    #[error("Huffman stream")]
    HuffmanStream,
    /// An FSE table description or RLE symbol.
    #[error("FSE table")]
    FseTable,
    /// A repeated FSE table without a previous one.
    #[error("repeated FSE table without a previous one")]
    MissingFseTable,
    /// The sequences section header.
    #[error("sequences section header")]
    SequencesHeader,
    /// The sequences bitstream ends early or has bits left over.
    #[error("sequences bitstream")]
    SequenceBitstream,
    /// Sequences take more literals than the section holds.
    #[error("sequences take more literals than the block has")]
    LiteralsOverrun,
    /// A repeat offset resolves to zero.
    #[error("repeat offset of zero")]
    ZeroOffset,
    /// The block regenerates more than the frame's block maximum.
    #[error("block output exceeds the block maximum")]
    BlockOverflow,
}
