//! The most recent output in a RAM ring; everything older is read back through
//! [`History`].

use crate::io::{History, Sink};
use crate::xxh64::Xxh64;
use crate::{Corruption, DecodeError};

/// The output ring. Invariants: `emitted` is a multiple of `R`, and
/// `produced - emitted < R`, so the ring always holds the last `min(produced, R)` bytes
/// and every older output byte has been handed to the sink.
#[derive(Clone, Debug)]
pub(crate) struct Window<const R: usize> {
    ring: [u8; R],
    /// Output bytes produced (all frames).
    pub(crate) produced: u64,
    emitted: u64,
    /// Output bytes already fed to the checksum.
    hashed: u64,
    pub(crate) hasher: Xxh64,
    pub(crate) hashing: bool,
    pub(crate) prefix_len: u64,
    /// Stream position (prefix included) before which the current frame may not reach.
    pub(crate) frame_floor: u64,
}

impl<const R: usize> Window<R> {
    /// Always inlined: [`crate::Decoder::new`] then builds the ring in the decoder's own
    /// storage. Out of line (or merely inlined by LLVM, after MIR), the window is built in
    /// a temporary and copied, which puts a second ring (4 KiB) on the caller's stack.
    #[inline(always)]
    pub(crate) const fn new(prefix_len: u64) -> Self {
        Self {
            ring: [0; R],
            produced: 0,
            emitted: 0,
            hashed: 0,
            hasher: Xxh64::new(),
            hashing: false,
            prefix_len,
            frame_floor: 0,
        }
    }

    /// Back to [`Window::new`]'s state, in place (assigning a new window would build it
    /// on the stack first).
    pub(crate) fn reset(&mut self, prefix_len: u64) {
        self.ring.fill(0);
        self.produced = 0;
        self.emitted = 0;
        self.hashed = 0;
        self.hasher = Xxh64::new();
        self.hashing = false;
        self.prefix_len = prefix_len;
        self.frame_floor = 0;
    }

    /// Starts a frame's checksum and history floor. The first frame may reach into the
    /// prefix; later ones only into their own output (RFC 8878 §3.1.1: frames are
    /// independent).
    pub(crate) fn start_frame(&mut self, first: bool, hashing: bool) {
        self.hasher = Xxh64::new();
        self.hashing = hashing;
        self.hashed = self.produced;
        self.frame_floor = if first {
            0
        } else {
            self.prefix_len + self.produced
        };
    }

    /// The frame's content checksum (low 32 bits of XXH64).
    pub(crate) fn frame_checksum(&mut self) -> u32 {
        self.hash_pending();
        self.hasher.digest() as u32
    }

    fn hash_pending(&mut self) {
        if self.hashing && self.hashed < self.produced {
            let from = (self.hashed - self.emitted) as usize;
            let to = (self.produced - self.emitted) as usize;
            self.hasher.update(&self.ring[from..to]);
        }
        self.hashed = self.produced;
    }

    /// Room before the ring is full of unemitted bytes, and the index it starts at.
    fn free(&self) -> (usize, usize) {
        let index = (self.produced - self.emitted) as usize;
        (index, R - index)
    }

    fn advance<O: Sink>(&mut self, count: usize, out: &mut O) -> Result<(), DecodeError> {
        self.produced += count as u64;
        if self.produced - self.emitted == R as u64 {
            self.hash_pending();
            out.write(&self.ring)?;
            self.emitted = self.produced;
        }
        Ok(())
    }

    /// Hands the unemitted tail to the sink (end of input).
    pub(crate) fn flush<O: Sink>(&mut self, out: &mut O) -> Result<(), DecodeError> {
        self.hash_pending();
        let pending = (self.produced - self.emitted) as usize;
        if pending > 0 {
            out.write(&self.ring[..pending])?;
            self.emitted = self.produced;
        }
        Ok(())
    }

    pub(crate) fn push_slice<O: Sink>(
        &mut self,
        mut bytes: &[u8],
        out: &mut O,
    ) -> Result<(), DecodeError> {
        while !bytes.is_empty() {
            let (index, room) = self.free();
            let count = room.min(bytes.len());
            self.ring[index..index + count].copy_from_slice(&bytes[..count]);
            bytes = &bytes[count..];
            self.advance(count, out)?;
        }
        Ok(())
    }

    pub(crate) fn push_fill<O: Sink>(
        &mut self,
        byte: u8,
        mut count: usize,
        out: &mut O,
    ) -> Result<(), DecodeError> {
        while count > 0 {
            let (index, room) = self.free();
            let take = room.min(count);
            self.ring[index..index + take].fill(byte);
            count -= take;
            self.advance(take, out)?;
        }
        Ok(())
    }

    /// Copies `length` bytes from `offset` bytes back (RFC 8878 §3.1.1.4): from the ring
    /// where it still holds them, otherwise from the history (straight into the ring).
    pub(crate) fn copy_match<O: Sink + History>(
        &mut self,
        offset: u64,
        length: usize,
        out: &mut O,
    ) -> Result<(), DecodeError> {
        let available = self.prefix_len + self.produced - self.frame_floor;
        if offset == 0 || offset > available {
            return Err(DecodeError::OffsetBeyondHistory { offset, available });
        }
        let mut remaining = length;
        // Each round copies at least one byte.
        while remaining > 0 {
            let (index, room) = self.free();
            let in_ring = self.produced.min(R as u64);
            let count = if offset <= in_ring {
                let source = ((self.produced - offset) % R as u64) as usize;
                // At most `offset` bytes at once, so the source is all from before this
                // round (an overlapping match repeats its period round by round).
                let count = remaining.min(offset as usize).min(R - source).min(room);
                self.ring.copy_within(source..source + count, index);
                count
            } else {
                let position = self.prefix_len + self.produced - offset;
                let ring_start = self.prefix_len + self.produced - in_ring;
                let count = (remaining as u64).min(ring_start - position) as usize;
                let count = count.min(room);
                out.read(position, &mut self.ring[index..index + count])?;
                count
            };
            remaining -= count;
            self.advance(count, out)?;
        }
        Ok(())
    }
}

impl From<Corruption> for DecodeError {
    fn from(corruption: Corruption) -> Self {
        DecodeError::Corrupt(corruption)
    }
}
