//! Streaming zstd decompression in bounded memory.
//!
//! ruzstd decodes whole blocks from a slice, so bytes arriving in arbitrary network
//! chunks are staged until one complete block is present; the block is handed over
//! alone and its output drained before the next, which keeps ruzstd's buffer at one
//! window plus one block. Frame and block headers are parsed here first (RFC 8878
//! §3.1.1), so that a frame asking for a larger window than the image header declares,
//! or than the device can afford, is refused before anything is allocated, and a block
//! larger than the frame allows is refused before it is staged.

use alloc::boxed::Box;

use ruzstd::decoding::FrameDecoder;

/// Largest zstd window log the agent accepts at all.
pub const MAX_WINDOW_LOG: u8 = 14;
/// Window log a 64 KiB update path affords with ruzstd (measured in `tests/ram.rs`:
/// window 4 KiB keeps buffers, decoder and agent near 60 KiB; 16 KiB needs ~150 KiB).
pub const DEFAULT_WINDOW_LOG: u8 = 12;

const FRAME_MAGIC: u32 = 0xFD2F_B528;
const BLOCK_HEADER_LEN: usize = 3;
const MAX_FRAME_HEADER_LEN: usize = 18;
const CHECKSUM_LEN: usize = 4;
/// zstd's absolute block limit.
const MAX_BLOCK: u64 = 128 * 1024;

/// Why the compressed payload was refused.
// Not `#[non_exhaustive]`, for the same reason as `InstallError`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecompressError {
    /// Not a zstd frame (skippable frames included: nothing but image data is accepted).
    #[error("not a zstd frame")]
    BadFrameMagic,
    /// A reserved bit is set or a block type is reserved.
    #[error("malformed zstd frame or block header")]
    BadHeader,
    /// The frame needs a dictionary; images never use one.
    #[error("zstd frame needs a dictionary")]
    Dictionary,
    /// The frame's window is larger than the image header declares or the device allows.
    #[error("zstd window {requested} bytes exceeds the allowed {allowed}")]
    WindowTooLarge {
        /// Window the frame asks for.
        requested: u64,
        /// Largest window accepted.
        allowed: u64,
    },
    /// A block is larger than its frame permits.
    #[error("zstd block of {size} bytes exceeds the frame's maximum {max}")]
    BlockTooLarge {
        /// Declared block size.
        size: u32,
        /// Block maximum for the frame.
        max: u32,
    },
    /// The staging buffer cannot hold a block of the largest window accepted.
    #[error("staging buffer of {have} bytes is below the {need} bytes needed")]
    StagingTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes provided.
        have: usize,
    },
    /// The decoder refused the block content.
    #[error("corrupt zstd block")]
    Corrupt,
    /// The payload ends inside a frame, or holds no frame at all.
    #[error("compressed payload ends inside a frame")]
    Truncated,
    /// The header names a compression method this agent does not decode.
    #[error("compression method not supported by this agent")]
    UnsupportedMethod,
}

/// Staging space needed to accept frames with windows up to `2^window_log` bytes.
pub const fn staging_len(window_log: u8) -> usize {
    let window = 1u64 << window_log;
    let block = if window < MAX_BLOCK {
        window
    } else {
        MAX_BLOCK
    };
    // A block is staged with its header, and the last one with the frame checksum.
    // The frame header is staged alone, and is smaller.
    block as usize + BLOCK_HEADER_LEN + CHECKSUM_LEN
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FrameInfo {
    header_len: usize,
    window: u64,
    checksum: bool,
}

/// Parses a frame header from the start of `b`. `Ok(None)`: more bytes needed.
fn parse_frame_header(b: &[u8]) -> Result<Option<FrameInfo>, DecompressError> {
    if b.len() < 5 {
        return Ok(None);
    }
    if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != FRAME_MAGIC {
        return Err(DecompressError::BadFrameMagic);
    }
    let fhd = b[4];
    if fhd & 0x08 != 0 {
        return Err(DecompressError::BadHeader);
    }
    let single_segment = fhd & 0x20 != 0;
    let did_len = [0usize, 1, 2, 4][(fhd & 3) as usize];
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let wd_len = usize::from(!single_segment);
    let header_len = 5 + wd_len + did_len + fcs_len;
    if b.len() < header_len {
        return Ok(None);
    }
    let did_at = 5 + wd_len;
    if b[did_at..did_at + did_len].iter().any(|&x| x != 0) {
        return Err(DecompressError::Dictionary);
    }
    let window = if single_segment {
        let mut fcs = [0u8; 8];
        fcs[..fcs_len].copy_from_slice(&b[did_at + did_len..header_len]);
        let fcs = u64::from_le_bytes(fcs);
        if fcs_len == 2 { fcs + 256 } else { fcs }
    } else {
        let wd = b[5];
        let log = 10 + u64::from(wd >> 3);
        let base = 1u64 << log;
        base + (base / 8) * u64::from(wd & 7)
    };
    Ok(Some(FrameInfo {
        header_len,
        window,
        checksum: fhd & 0x04 != 0,
    }))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    FrameHeader,
    Blocks { block_max: u32, checksum: bool },
}

/// A zstd decoder fed in chunks of any size; output goes to a callback in pieces of at
/// most the output buffer's length.
pub struct ZstdStream<'b> {
    decoder: Box<FrameDecoder>,
    allowed_window: u64,
    staging: &'b mut [u8],
    staged: usize,
    output: &'b mut [u8],
    stage: Stage,
    frames: u32,
}

impl<'b> ZstdStream<'b> {
    /// A decoder accepting windows up to `2^window_log` bytes, staging input in `staging`
    /// (at least [`staging_len`]) and emitting output through `output`.
    pub fn new(
        window_log: u8,
        staging: &'b mut [u8],
        output: &'b mut [u8],
    ) -> Result<Self, DecompressError> {
        let need = staging_len(window_log);
        if staging.len() < need {
            return Err(DecompressError::StagingTooSmall {
                need,
                have: staging.len(),
            });
        }
        if output.is_empty() {
            return Err(DecompressError::StagingTooSmall { need: 1, have: 0 });
        }
        let allowed_window = 1u64 << window_log;
        let mut decoder = Box::new(FrameDecoder::new());
        decoder.set_max_window_size(allowed_window);
        Ok(ZstdStream {
            decoder,
            allowed_window,
            staging,
            staged: 0,
            output,
            stage: Stage::FrameHeader,
            frames: 0,
        })
    }

    /// Back to the start of a payload, keeping the buffers (and ruzstd's allocation).
    pub fn reset(&mut self) {
        self.staged = 0;
        self.stage = Stage::FrameHeader;
        self.frames = 0;
    }

    /// Feeds compressed bytes; decompressed bytes go to `sink`.
    pub fn feed<E>(
        &mut self,
        mut data: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<DecompressError>,
    {
        while !data.is_empty() {
            let take = (self.staging.len() - self.staged).min(data.len());
            self.staging[self.staged..self.staged + take].copy_from_slice(&data[..take]);
            self.staged += take;
            data = &data[take..];
            let before = self.staged;
            self.process(sink)?;
            if take == 0 && self.staged == before {
                // Cannot happen with a staging buffer of `staging_len`: blocks are
                // checked against the frame's maximum before they are staged.
                return Err(DecompressError::StagingTooSmall {
                    need: self.staging.len() + 1,
                    have: self.staging.len(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Ends the payload: every frame must be complete.
    pub fn finish(&self) -> Result<(), DecompressError> {
        if self.staged != 0 || self.stage != Stage::FrameHeader || self.frames == 0 {
            return Err(DecompressError::Truncated);
        }
        Ok(())
    }

    /// Decodes every complete unit at the front of the staging buffer.
    fn process<E: From<DecompressError>>(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = 0;
        loop {
            let pending = &self.staging[at..self.staged];
            match self.stage {
                Stage::FrameHeader => {
                    let Some(frame) =
                        parse_frame_header(&pending[..pending.len().min(MAX_FRAME_HEADER_LEN)])?
                    else {
                        break;
                    };
                    if frame.window > self.allowed_window {
                        return Err(DecompressError::WindowTooLarge {
                            requested: frame.window,
                            allowed: self.allowed_window,
                        }
                        .into());
                    }
                    self.decoder
                        .reset(&pending[..frame.header_len])
                        .map_err(|_| DecompressError::BadHeader)?;
                    at += frame.header_len;
                    self.stage = Stage::Blocks {
                        block_max: frame.window.min(MAX_BLOCK) as u32,
                        checksum: frame.checksum,
                    };
                }
                Stage::Blocks {
                    block_max,
                    checksum,
                } => {
                    if pending.len() < BLOCK_HEADER_LEN {
                        break;
                    }
                    let raw = u32::from_le_bytes([pending[0], pending[1], pending[2], 0]);
                    let last = raw & 1 != 0;
                    let size = raw >> 3;
                    let content = match (raw >> 1) & 3 {
                        0 | 2 => size,
                        1 => 1, // RLE: one byte repeated `size` times
                        _ => return Err(DecompressError::BadHeader.into()),
                    };
                    if size > block_max {
                        return Err(DecompressError::BlockTooLarge {
                            size,
                            max: block_max,
                        }
                        .into());
                    }
                    let unit = BLOCK_HEADER_LEN
                        + content as usize
                        + if last && checksum { CHECKSUM_LEN } else { 0 };
                    if pending.len() < unit {
                        break;
                    }
                    self.decode_unit(at, unit, sink)?;
                    at += unit;
                    if last {
                        self.stage = Stage::FrameHeader;
                        self.frames += 1;
                    }
                }
            }
        }
        self.staging.copy_within(at..self.staged, 0);
        self.staged -= at;
        Ok(())
    }

    /// Decodes one block (with the frame checksum if it is the last) and drains it.
    fn decode_unit<E: From<DecompressError>>(
        &mut self,
        at: usize,
        unit: usize,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (read, written) = self
            .decoder
            .decode_from_to(&self.staging[at..at + unit], self.output)
            .map_err(|_| DecompressError::Corrupt)?;
        if read != unit {
            return Err(DecompressError::Corrupt.into());
        }
        sink(&self.output[..written])?;
        loop {
            let (_, written) = self
                .decoder
                .decode_from_to(&[], self.output)
                .map_err(|_| DecompressError::Corrupt)?;
            if written == 0 {
                return Ok(());
            }
            sink(&self.output[..written])?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_window_rules() {
        // Window descriptor 0x20: log 14, mantissa 0 -> 16 KiB.
        let h = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x20];
        let f = parse_frame_header(&h).unwrap().unwrap();
        assert_eq!((f.header_len, f.window, f.checksum), (6, 16384, false));
        // Mantissa 7 on log 10: 1024 + 7 * 128.
        let f = parse_frame_header(&[0x28, 0xB5, 0x2F, 0xFD, 0x04, 0x07])
            .unwrap()
            .unwrap();
        assert_eq!((f.window, f.checksum), (1024 + 7 * 128, true));
        // Single segment with a 2-byte content size: window = size + 256.
        let f = parse_frame_header(&[0x28, 0xB5, 0x2F, 0xFD, 0x60, 0x00, 0x01])
            .unwrap()
            .unwrap();
        assert_eq!((f.header_len, f.window), (7, 256 + 256));
        // Incomplete headers ask for more.
        assert_eq!(parse_frame_header(&h[..4]), Ok(None));
        assert_eq!(
            parse_frame_header(&[0x28, 0xB5, 0x2F, 0xFD, 0xC0]),
            Ok(None)
        );
    }

    #[test]
    fn frame_header_refusals() {
        assert_eq!(
            parse_frame_header(&[0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]),
            Err(DecompressError::BadFrameMagic)
        );
        assert_eq!(
            parse_frame_header(&[0x28, 0xB5, 0x2F, 0xFD, 0x08, 0x20]),
            Err(DecompressError::BadHeader)
        );
        assert_eq!(
            parse_frame_header(&[0x28, 0xB5, 0x2F, 0xFD, 0x01, 0x20, 0x05]),
            Err(DecompressError::Dictionary)
        );
    }

    #[test]
    fn staging_sizes() {
        assert_eq!(staging_len(14), 16384 + 7);
        assert_eq!(staging_len(20), 128 * 1024 + 7);
    }
}
