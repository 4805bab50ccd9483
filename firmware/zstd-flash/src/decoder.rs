//! The streaming frame state machine (RFC 8878 §3.1): input arrives in arbitrary
//! pieces; everything kept between pieces lives in [`Decoder`].

use crate::io::{History, Sink};
use crate::literals;
use crate::sequences::{Entropy, execute};
use crate::window::Window;
use crate::{Corruption, DecodeError};

const FRAME_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
/// RFC 8878 §3.1.1.2: no block regenerates more than 128 KiB.
const ABSOLUTE_BLOCK_MAX: u64 = 128 * 1024;
/// Largest window a decoder accepts unless told otherwise: libzstd's default limit.
pub const DEFAULT_MAX_WINDOW: u64 = 1 << 27;

/// What the caller decides before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Frames declaring a larger window are refused ([`DecodeError::WindowTooLarge`]).
    pub max_window: u64,
    /// Length of the prefix the history serves before the output (0: none). zstd's
    /// `ref_prefix` / `--patch-from` data: match copies of the first frame may reach it.
    pub prefix_len: u64,
    /// Whether skippable frames (RFC 8878 §3.1.2) are passed over (`true`, as libzstd
    /// does) or refused as [`DecodeError::BadMagic`] (`false`: a caller whose format
    /// allows nothing but data frames, like the `.ota` payload rules).
    pub skippable_frames: bool,
}

impl DecoderConfig {
    /// Windows up to 2^27 bytes, no prefix.
    pub const DEFAULT: Self = Self {
        max_window: DEFAULT_MAX_WINDOW,
        prefix_len: 0,
        skippable_frames: true,
    };
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Magic,
    SkippableSize,
    Skipping { remaining: u32 },
    FrameHeader,
    BlockHeader,
    RawBlock { remaining: u32, last: bool },
    RleBlock { size: u32, last: bool },
    CompressedBlock { size: u32, last: bool },
    Checksum,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    block_max: u64,
    content_size: Option<u64>,
    checksum: bool,
    output_start: u64,
}

/// A streaming Zstandard decoder whose RAM is this struct alone.
///
/// `RING` is the RAM window (the most recent output, and the size of each piece the
/// sink receives); `BLOCK` is the largest compressed block accepted (raw and RLE blocks
/// pass through without it). Older output is read back through [`History`].
#[derive(Clone, Debug)]
pub struct Decoder<const RING: usize = 4096, const BLOCK: usize = 8192> {
    config: DecoderConfig,
    state: State,
    /// Small fixed-size fields (magic, frame header, block header, checksum) being collected.
    header: [u8; 14],
    header_len: usize,
    frame: Frame,
    frames: u32,
    block: [u8; BLOCK],
    block_len: usize,
    window: Window<RING>,
    entropy: Entropy,
    failed: Option<DecodeError>,
}

impl<const RING: usize, const BLOCK: usize> Decoder<RING, BLOCK> {
    /// A decoder at the start of its input.
    pub const fn new(config: DecoderConfig) -> Self {
        const {
            assert!(
                RING > 0 && BLOCK > 0,
                "the ring and the block buffer need room"
            )
        };
        Self {
            config,
            state: State::Magic,
            header: [0; 14],
            header_len: 0,
            frame: Frame {
                block_max: 0,
                content_size: None,
                checksum: false,
                output_start: 0,
            },
            frames: 0,
            block: [0; BLOCK],
            block_len: 0,
            window: Window::new(config.prefix_len),
            entropy: Entropy::new(),
            failed: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> DecoderConfig {
        self.config
    }

    /// The compressed-block buffer as scratch memory, for a caller done with its input
    /// (a device reading its slot back after an install): the decoder starts over, so it
    /// may only be fed again from the start of an input.
    pub fn scratch(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.block
    }

    /// Back to the start of an input, keeping the configuration.
    pub fn reset(&mut self) {
        self.state = State::Magic;
        self.header_len = 0;
        self.frames = 0;
        self.block_len = 0;
        self.window.reset(self.config.prefix_len);
        self.entropy.reset();
        self.failed = None;
    }

    /// Back to the start of an input with a new configuration: the same decoder as
    /// [`Decoder::new`]`(config)` gives, without building one. Assigning
    /// `*decoder = Decoder::new(config)` may build the new decoder on the stack and copy
    /// it, which needs its size again in stack; this reuses the decoder in place (e.g. one
    /// in a `static` or a long-lived task, reused for a full image, then a delta).
    pub fn reset_with(&mut self, config: DecoderConfig) {
        self.config = config;
        self.reset();
    }

    /// Output bytes produced so far (some may still be in the ring, not yet in the sink).
    pub fn produced(&self) -> u64 {
        self.window.produced
    }

    /// Decodes all of `input`, writing output to `out` as the ring fills. After an error
    /// the decoder refuses further input with the same error.
    pub fn feed<O: Sink + History>(
        &mut self,
        input: &[u8],
        out: &mut O,
    ) -> Result<(), DecodeError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.feed_all(input, out);
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }

    /// The input ended: checks it ended between frames, hands the last output to the
    /// sink and returns the output length.
    pub fn finish<O: Sink + History>(&mut self, out: &mut O) -> Result<u64, DecodeError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.state != State::Magic || self.header_len != 0 || self.frames == 0 {
            self.failed = Some(DecodeError::Truncated);
            return Err(DecodeError::Truncated);
        }
        self.window.flush(out)?;
        Ok(self.window.produced)
    }

    /// Appends input to `header` until it holds `want` bytes; true when it does.
    fn collect(&mut self, input: &mut &[u8], want: usize) -> bool {
        let take = (want - self.header_len).min(input.len());
        self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
        self.header_len += take;
        *input = &input[take..];
        self.header_len == want
    }

    fn header_u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.header[at],
            self.header[at + 1],
            self.header[at + 2],
            self.header[at + 3],
        ])
    }

    fn feed_all<O: Sink + History>(
        &mut self,
        mut input: &[u8],
        out: &mut O,
    ) -> Result<(), DecodeError> {
        // Each round consumes input or completes a state that needs none; states that need
        // none (empty blocks, frame ends) are completed in the round that entered them.
        while !input.is_empty() {
            match self.state {
                State::Magic => {
                    if !self.collect(&mut input, 4) {
                        return Ok(());
                    }
                    let magic = self.header_u32(0);
                    self.header_len = 0;
                    if magic == FRAME_MAGIC {
                        self.state = State::FrameHeader;
                    } else if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC
                        && self.config.skippable_frames
                    {
                        self.state = State::SkippableSize;
                    } else {
                        return Err(DecodeError::BadMagic(magic));
                    }
                }
                State::SkippableSize => {
                    if !self.collect(&mut input, 4) {
                        return Ok(());
                    }
                    let remaining = self.header_u32(0);
                    self.header_len = 0;
                    self.state = if remaining == 0 {
                        State::Magic
                    } else {
                        State::Skipping { remaining }
                    };
                }
                State::Skipping { remaining } => {
                    let take = (remaining as usize).min(input.len());
                    input = &input[take..];
                    let remaining = remaining - take as u32;
                    self.state = if remaining == 0 {
                        State::Magic
                    } else {
                        State::Skipping { remaining }
                    };
                }
                State::FrameHeader => {
                    if self.header_len == 0 && !self.collect(&mut input, 1) {
                        return Ok(());
                    }
                    let want = frame_header_len(self.header[0]);
                    if !self.collect(&mut input, want) {
                        return Ok(());
                    }
                    self.start_frame()?;
                }
                State::BlockHeader => {
                    if !self.collect(&mut input, 3) {
                        return Ok(());
                    }
                    self.start_block()?;
                }
                State::RawBlock { remaining, last } => {
                    let take = (remaining as usize).min(input.len());
                    self.window.push_slice(&input[..take], out)?;
                    input = &input[take..];
                    let remaining = remaining - take as u32;
                    self.state = State::RawBlock { remaining, last };
                    if remaining == 0 {
                        self.end_block(last)?;
                    }
                }
                State::RleBlock { size, last } => {
                    self.window.push_fill(input[0], size as usize, out)?;
                    input = &input[1..];
                    self.end_block(last)?;
                }
                State::CompressedBlock { size, last } => {
                    let take = (size as usize - self.block_len).min(input.len());
                    self.block[self.block_len..self.block_len + take]
                        .copy_from_slice(&input[..take]);
                    self.block_len += take;
                    input = &input[take..];
                    if self.block_len == size as usize {
                        let block = &self.block[..self.block_len];
                        let (literals, sequences) = literals::parse(
                            block,
                            &mut self.entropy.huffman,
                            self.frame.block_max as usize,
                        )?;
                        execute(
                            sequences,
                            literals,
                            &mut self.entropy,
                            &mut self.window,
                            self.frame.block_max as usize,
                            out,
                        )?;
                        self.block_len = 0;
                        self.end_block(last)?;
                    }
                }
                State::Checksum => {
                    if !self.collect(&mut input, 4) {
                        return Ok(());
                    }
                    let expected = self.header_u32(0);
                    self.header_len = 0;
                    let computed = self.window.frame_checksum();
                    if expected != computed {
                        return Err(DecodeError::ChecksumMismatch { expected, computed });
                    }
                    self.state = State::Magic;
                }
            }
        }
        Ok(())
    }

    /// Parses the collected frame header (RFC 8878 §3.1.1.1).
    fn start_frame(&mut self) -> Result<(), DecodeError> {
        let descriptor = self.header[0];
        let header = &self.header[1..self.header_len];
        self.header_len = 0;
        if descriptor & 0x08 != 0 {
            return Err(DecodeError::ReservedBit);
        }
        let single_segment = descriptor & 0x20 != 0;
        let (window_byte, rest) = if single_segment {
            (None, header)
        } else {
            (Some(header[0]), &header[1..])
        };
        let dictionary_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
        let (dictionary, content) = rest.split_at(dictionary_len);
        let dictionary_id = le_bytes(dictionary) as u32;
        if dictionary_id != 0 {
            return Err(DecodeError::DictionaryRequired(dictionary_id));
        }
        let content_size = match content.len() {
            0 => None,
            2 => Some(le_bytes(content) + 256),
            _ => Some(le_bytes(content)),
        };
        let window = match window_byte {
            Some(byte) => {
                let log = 10 + u32::from(byte >> 3);
                let base = 1u64 << log;
                base + (base / 8) * u64::from(byte & 7)
            }
            None => content_size.unwrap_or(0),
        };
        if window > self.config.max_window {
            return Err(DecodeError::WindowTooLarge {
                window,
                max: self.config.max_window,
            });
        }
        self.frame = Frame {
            block_max: window.min(ABSOLUTE_BLOCK_MAX),
            content_size,
            checksum: descriptor & 0x04 != 0,
            output_start: self.window.produced,
        };
        self.window
            .start_frame(self.frames == 0, self.frame.checksum);
        self.entropy.reset();
        self.frames += 1;
        self.state = State::BlockHeader;
        Ok(())
    }

    /// Parses the collected block header (RFC 8878 §3.1.1.2).
    fn start_block(&mut self) -> Result<(), DecodeError> {
        let header = u32::from(self.header[0])
            | (u32::from(self.header[1]) << 8)
            | (u32::from(self.header[2]) << 16);
        self.header_len = 0;
        let last = header & 1 != 0;
        let size = header >> 3;
        if u64::from(size) > self.frame.block_max {
            return Err(DecodeError::BlockTooLarge {
                size,
                max: self.frame.block_max,
            });
        }
        match (header >> 1) & 3 {
            0 => {
                self.state = State::RawBlock {
                    remaining: size,
                    last,
                };
                if size == 0 {
                    self.end_block(last)?;
                }
            }
            1 => self.state = State::RleBlock { size, last },
            2 => {
                if size as usize > BLOCK {
                    return Err(DecodeError::BlockBufferTooSmall {
                        size,
                        capacity: BLOCK,
                    });
                }
                if size == 0 {
                    return Err(Corruption::LiteralsHeader.into());
                }
                self.state = State::CompressedBlock { size, last };
            }
            _ => return Err(DecodeError::ReservedBlockType),
        }
        Ok(())
    }

    fn end_block(&mut self, last: bool) -> Result<(), DecodeError> {
        if !last {
            self.state = State::BlockHeader;
            return Ok(());
        }
        let produced = self.window.produced - self.frame.output_start;
        if let Some(declared) = self.frame.content_size
            && declared != produced
        {
            return Err(DecodeError::ContentSizeMismatch { declared, produced });
        }
        self.state = if self.frame.checksum {
            State::Checksum
        } else {
            State::Magic
        };
        Ok(())
    }
}

/// Frame header length after the magic, from its descriptor byte.
fn frame_header_len(descriptor: u8) -> usize {
    let single_segment = descriptor & 0x20 != 0;
    let window = usize::from(!single_segment);
    let dictionary = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    1 + window + dictionary + content
}

fn le_bytes(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |value, &byte| (value << 8) | u64::from(byte))
}
