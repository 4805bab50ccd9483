//! Where the decoder's output goes and where its window comes back from.
//!
//! The decoder sees one byte stream: the prefix (empty unless a delta names a base
//! image), then the output. Positions in [`History::read`] count from the start of that
//! stream, so a match copy reaching past the output's start reads the prefix.

use embedded_storage::nor_flash::NorFlashErrorKind;

/// Why the output or the history failed; the decoder hands it on in
/// [`DecodeError::Io`](crate::DecodeError::Io).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    /// The output does not fit in its region.
    #[error("output exceeds its region")]
    OutputFull,
    /// A read asked for bytes the history does not hold.
    #[error("history read outside the prefix and the written output")]
    OutOfHistory,
    /// The flash driver's alignment is one this crate cannot serve.
    #[error("flash read/write granularity above {max} bytes is unsupported")]
    Granularity {
        /// The largest granularity supported.
        max: usize,
    },
    /// The flash driver failed.
    #[error("flash error: {0:?}")]
    Flash(NorFlashErrorKind),
}

/// Receives the output in order.
///
/// The decoder hands out its ring buffer whenever it fills: every piece is `RING` bytes
/// long, starts at a multiple of `RING`, and only the last piece (at
/// [`Decoder::finish`](crate::Decoder::finish)) may be shorter. With a ring of one flash
/// sector, a sink can program each piece as a sector.
pub trait Sink {
    /// Appends `bytes` to the output.
    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError>;
}

/// Reads back what the decoder can no longer hold in RAM.
///
/// Contract: the decoder only asks for positions below the prefix length plus the
/// output already handed to [`Sink::write`]; once `write` has returned, those bytes must
/// be readable.
pub trait History {
    /// Fills `buf` with the stream bytes starting at `position` (prefix first, then
    /// output).
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError>;
}

/// A sink and a history that are separate objects (the decoder takes one value that is
/// both, because a flash slot usually is).
#[derive(Debug)]
pub struct Split<S, H> {
    /// Where output goes.
    pub sink: S,
    /// Where the window is read from.
    pub history: H,
}

impl<S: Sink, H> Sink for Split<S, H> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        self.sink.write(bytes)
    }
}

impl<S, H: History> History for Split<S, H> {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.history.read(position, buf)
    }
}

/// Output into a caller's RAM buffer, with an optional prefix: the in-RAM stand-in for a
/// flash slot (tests, host tools).
#[derive(Debug)]
pub struct SliceOutput<'a> {
    prefix: &'a [u8],
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceOutput<'a> {
    /// Output into `buf`, no prefix.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self::with_prefix(&[], buf)
    }

    /// Output into `buf`, with match copies able to reach into `prefix` before it.
    pub fn with_prefix(prefix: &'a [u8], buf: &'a mut [u8]) -> Self {
        Self {
            prefix,
            buf,
            len: 0,
        }
    }

    /// The output written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Sink for SliceOutput<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(IoError::OutputFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl History for SliceOutput<'_> {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError> {
        read_joined(self.prefix, &self.buf[..self.len], position, buf)
    }
}

/// Reads `buf.len()` bytes at `position` of `first` followed by `second`.
fn read_joined(first: &[u8], second: &[u8], position: u64, buf: &mut [u8]) -> Result<(), IoError> {
    let start = usize::try_from(position).map_err(|_| IoError::OutOfHistory)?;
    let end = start.checked_add(buf.len()).ok_or(IoError::OutOfHistory)?;
    if end > first.len() + second.len() {
        return Err(IoError::OutOfHistory);
    }
    let split = first.len().clamp(start, end) - start;
    if split > 0 {
        buf[..split].copy_from_slice(&first[start..start + split]);
    }
    if split < buf.len() {
        let from = start + split - first.len();
        let count = buf.len() - split;
        buf[split..].copy_from_slice(&second[from..from + count]);
    }
    Ok(())
}
