//! The difference stream of delta encoding 3 (`docs/FORMAT.md`, "Delta encoding 3"):
//! bsdiff-style control records and difference bytes, with RISC-V address pairs
//! normalised, so that code which only moved costs (almost) nothing.
//!
//! ```text
//! difference stream = diff (image_size bytes) ‖ zeros to a multiple of 4096 ‖ control records
//! control record    = add_len (LEB128) ‖ copy_len (LEB128) ‖ seek (zigzag LEB128)
//! ```
//!
//! Records are applied in order from target position 0 and base position 0: `add_len`
//! target bytes are the diff bytes added to the base bytes from the base position (both
//! advance), then `copy_len` target bytes are the diff bytes themselves, then the base
//! position moves by `seek`.
//!
//! **Address pairs.** When code moves, every `auipc`/`lui` + `jalr`/load/store/`addi`
//! pair that reaches across the move changes its 32-bit offset by the same amount, but
//! that amount is split between two instructions' scrambled immediate fields, so the
//! byte-wise differences vary from pair to pair and do not compress. Inside an add run,
//! the base bytes are walked as RV32IMC instructions from the run's start, and for each
//! pair the diff carries the difference of the pair's 32-bit values (and the XOR of the
//! other bits) instead: the same move then gives the same eight diff bytes everywhere.
//! The rule is a bijection for any bytes (data that merely looks like a pair still
//! round-trips), decided by the base bytes alone, so a device knows it before it has
//! the target.
//!
//! The device applies the stream in place: it decodes the stream into the target slot
//! (its zstd window then lives in flash), and [`DiffPatcher`] turns the diff into the
//! target sector by sector, reading ahead at most 7 diff bytes and never the control
//! records it has overwritten (they start at the first sector boundary after the image).

/// The control records start at the first multiple of this after the diff bytes: the
/// flash sector a device rewrites in place never holds control bytes.
pub const CONTROL_ALIGN: u32 = 4096;
/// Largest difference stream a header may declare (twice the largest image: a control
/// record per few bytes is already far beyond any real delta).
pub const MAX_STREAM_SIZE: u32 = 2 * crate::image::MAX_IMAGE_SIZE;
/// Largest encoded control record: three 5-byte LEB128 values.
pub const MAX_RECORD_LEN: usize = 15;
/// Target bytes an add run is processed in: the stack holds two such chunks (and the
/// 7-byte lookahead an instruction pair needs).
const CHUNK: usize = 256;
const LOOKAHEAD: usize = 7;

/// Where the control records start in a difference stream for an image of `image_size`.
pub const fn control_offset(image_size: u32) -> u32 {
    image_size.next_multiple_of(CONTROL_ALIGN)
}

/// One control record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Target bytes that are diff + base.
    pub add_len: u32,
    /// Target bytes that are the diff bytes themselves.
    pub copy_len: u32,
    /// How far the base position moves after the record.
    pub seek: i32,
}

impl Record {
    /// Encodes the record into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8; MAX_RECORD_LEN]) -> usize {
        let mut at = 0;
        let zigzag = ((self.seek << 1) ^ (self.seek >> 31)) as u32;
        for mut value in [self.add_len, self.copy_len, zigzag] {
            loop {
                let byte = (value & 0x7F) as u8;
                value >>= 7;
                if value == 0 {
                    out[at] = byte;
                    at += 1;
                    break;
                }
                out[at] = byte | 0x80;
                at += 1;
            }
        }
        at
    }
}

/// Why a difference stream was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiffCorruption {
    /// The declared stream is shorter than the image's diff bytes and their padding.
    #[error("the difference stream is shorter than the image it encodes")]
    StreamTooShort,
    /// The control records end before the image does.
    #[error("the control records end before the image")]
    ControlEnds,
    /// A LEB128 value is longer than 5 bytes or exceeds 32 bits.
    #[error("malformed control record")]
    BadRecord,
    /// An add run reaches past the end of the base.
    #[error("an add run reads past the end of the base")]
    BeyondBase,
    /// A seek moves the base position outside the base.
    #[error("a seek leaves the base")]
    SeekOutsideBase,
    /// A record's runs reach past the end of the image.
    #[error("a control record reaches past the end of the image")]
    BeyondImage,
    /// Control bytes remain after the image is complete.
    #[error("control records follow the end of the image")]
    TrailingControl,
}

/// A [`DiffPatcher`] refusal: the stream's, or its source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiffError<E> {
    /// The stream is malformed.
    #[error(transparent)]
    Corrupt(#[from] DiffCorruption),
    /// Reading the diff, the base or the control records failed.
    #[error("reading the difference stream or the base failed")]
    Source(E),
}

/// Where a [`DiffPatcher`] reads from. Reads never reach outside the image's diff bytes,
/// the base, or the control area.
pub trait DiffSource {
    /// A read failure.
    type Error;
    /// Diff bytes at target positions `position..position + buf.len()`.
    fn diff(&mut self, position: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Base bytes at `position..position + buf.len()`.
    fn base(&mut self, position: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Control-area bytes at `offset..offset + buf.len()` (relative to its start).
    fn control(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// The low instruction of an address pair: where its 12-bit immediate lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Low {
    /// I-type (`jalr`, loads, `addi`): bits 20..32.
    I,
    /// S-type (stores): bits 7..12 and 25..32.
    S,
}

impl Low {
    const fn mask(self) -> u32 {
        match self {
            Low::I => 0xFFF0_0000,
            Low::S => 0xFE00_0F80,
        }
    }

    const fn get(self, word: u32) -> u32 {
        match self {
            Low::I => word >> 20,
            Low::S => ((word >> 25) << 5) | ((word >> 7) & 0x1F),
        }
    }

    const fn put(self, field: u32) -> u32 {
        let field = field & 0xFFF;
        match self {
            Low::I => field << 20,
            Low::S => ((field >> 5) << 25) | ((field & 0x1F) << 7),
        }
    }
}

const fn sext12(field: u32) -> u32 {
    (((field << 20) as i32) >> 20) as u32
}

/// The address an `auipc`/`lui` + low instruction pair forms (relative to the `auipc`'s
/// own address, which cancels in a difference).
const fn pair_value(high: u32, low_word: u32, low: Low) -> u32 {
    (high & 0xFFFF_F000).wrapping_add(sext12(low.get(low_word)))
}

/// Whether `high`, `low_word` (as the base holds them) form an address pair.
fn pair(high: u32, low_word: u32) -> Option<Low> {
    const AUIPC: u32 = 0x17;
    const LUI: u32 = 0x37;
    let opcode = high & 0x7F;
    let rd = (high >> 7) & 0x1F;
    if (opcode != AUIPC && opcode != LUI) || rd == 0 || low_word & 3 != 3 {
        return None;
    }
    if (low_word >> 15) & 0x1F != rd {
        return None;
    }
    match low_word & 0x7F {
        // jalr, loads
        0x67 | 0x03 => Some(Low::I),
        // addi (funct3 0) only: other OP-IMM immediates are not address parts
        0x13 if (low_word >> 12) & 7 == 0 => Some(Low::I),
        // stores
        0x23 => Some(Low::S),
        _ => None,
    }
}

/// One step of the walk over an add run's base bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Fewer than 2 bytes left: the rest of the run is byte-wise.
    End,
    /// A 2- or 4-byte instruction (or data) handled byte-wise.
    Bytes(u32),
    /// An address pair: 8 bytes.
    Pair(Low),
}

/// The walk's rule at an instruction start; `rest` is the base bytes from there to the
/// end of the run (only the first 8 matter).
fn step(rest: &[u8]) -> Step {
    let word = |at: usize| {
        rest.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match rest {
        [] | [_] => Step::End,
        [first, ..] if first & 3 != 3 => Step::Bytes(2),
        _ => match (word(0), word(4)) {
            (Some(high), Some(low_word)) => pair(high, low_word).map_or(Step::Bytes(4), Step::Pair),
            _ => Step::Bytes(4),
        },
    }
}

fn read_pair(bytes: &[u8]) -> [u32; 2] {
    let w =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    [w(0), w(4)]
}

fn write_pair(out: &mut [u8], words: [u32; 2]) {
    out[..4].copy_from_slice(&words[0].to_le_bytes());
    out[4..8].copy_from_slice(&words[1].to_le_bytes());
}

/// The target pair from the base pair and the diff pair.
fn apply_pair(base: [u32; 2], diff: [u32; 2], low: Low) -> [u32; 2] {
    let delta = (diff[0] & 0xFFFF_F000) | low.get(diff[1]);
    let value = pair_value(base[0], base[1], low).wrapping_add(delta);
    let lo = value & 0xFFF;
    // `value` and `lo` agree modulo 4096, so this is the high part, low 12 bits zero.
    let hi = value.wrapping_sub(sext12(lo));
    [
        hi | ((base[0] ^ diff[0]) & 0xFFF),
        low.put(lo) | ((base[1] ^ diff[1]) & !low.mask()),
    ]
}

/// The diff pair that [`apply_pair`] turns back into `target`.
fn encode_pair(base: [u32; 2], target: [u32; 2], low: Low) -> [u32; 2] {
    let delta =
        pair_value(target[0], target[1], low).wrapping_sub(pair_value(base[0], base[1], low));
    [
        (delta & 0xFFFF_F000) | ((base[0] ^ target[0]) & 0xFFF),
        low.put(delta) | ((base[1] ^ target[1]) & !low.mask()),
    ]
}

/// The diff bytes of one add run: `target` against `base` (equal lengths), into `out`.
pub fn encode_add_run(base: &[u8], target: &[u8], out: &mut [u8]) {
    let len = base.len().min(target.len()).min(out.len());
    for i in 0..len {
        out[i] = target[i].wrapping_sub(base[i]);
    }
    let mut at = 0usize;
    loop {
        match step(base.get(at..len).unwrap_or(&[])) {
            Step::End => break,
            Step::Bytes(n) => at += n as usize,
            Step::Pair(low) => {
                let words = encode_pair(read_pair(&base[at..]), read_pair(&target[at..]), low);
                write_pair(&mut out[at..], words);
                at += 8;
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between records.
    Record,
    /// An add run of `len` bytes from target position `start` and base position `base`,
    /// then the record's copy run.
    Add {
        start: u32,
        base: u32,
        len: u32,
        copy: Copy,
    },
    /// Diff bytes copied up to target position `end`, then the base position moves to
    /// `then_base`.
    Copy(Copy),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Copy {
    end: u32,
    then_base: i64,
}

/// Applies a difference stream to a base, producing the target in order, a piece at a
/// time, in constant memory (this struct, and two 263-byte buffers on the stack).
#[derive(Clone, Debug)]
pub struct DiffPatcher {
    image_size: u32,
    base_size: u32,
    control_len: u32,
    control_read: u32,
    buffer: [u8; 32],
    buffer_len: u8,
    buffer_pos: u8,
    produced: u32,
    base_position: u32,
    phase: Phase,
    /// Next instruction start of the add run, relative to its start.
    walk: u32,
    /// Target bytes already computed for `produced..produced + carry_len`.
    carry: [u8; LOOKAHEAD],
    carry_len: u8,
}

impl DiffPatcher {
    /// A patcher for an image of `image_size` bytes from a base of `base_size`, with a
    /// difference stream of `stream_size` bytes.
    pub fn new(image_size: u32, base_size: u32, stream_size: u32) -> Result<Self, DiffCorruption> {
        // Checked: the control offset of an image size above 0xFFFF_F000 is 2^32, beyond
        // any stream.
        let control_len = image_size
            .checked_next_multiple_of(CONTROL_ALIGN)
            .and_then(|offset| stream_size.checked_sub(offset))
            .ok_or(DiffCorruption::StreamTooShort)?;
        Ok(DiffPatcher {
            image_size,
            base_size,
            control_len,
            control_read: 0,
            buffer: [0; 32],
            buffer_len: 0,
            buffer_pos: 0,
            produced: 0,
            base_position: 0,
            phase: Phase::Record,
            walk: 0,
            carry: [0; LOOKAHEAD],
            carry_len: 0,
        })
    }

    /// Target bytes produced so far.
    pub fn produced(&self) -> u32 {
        self.produced
    }

    /// The next `out.len()` target bytes.
    pub fn fill<S: DiffSource>(
        &mut self,
        source: &mut S,
        out: &mut [u8],
    ) -> Result<(), DiffError<S::Error>> {
        if u64::from(self.produced) + out.len() as u64 > u64::from(self.image_size) {
            return Err(DiffCorruption::BeyondImage.into());
        }
        let mut at = 0usize;
        while at < out.len() {
            if self.carry_len > 0 {
                let n = usize::from(self.carry_len).min(out.len() - at);
                out[at..at + n].copy_from_slice(&self.carry[..n]);
                self.carry.copy_within(n.., 0);
                self.carry_len -= n as u8;
                self.produced += n as u32;
                at += n;
                continue;
            }
            match self.phase {
                Phase::Record => self.next_record(source)?,
                Phase::Add {
                    start,
                    base,
                    len,
                    copy,
                } => {
                    let rel = self.produced - start;
                    if rel == len {
                        self.phase = Phase::Copy(copy);
                        continue;
                    }
                    let n = ((len - rel) as usize).min(out.len() - at).min(CHUNK);
                    self.add_chunk(source, base, rel, len, &mut out[at..at + n])?;
                    at += n;
                }
                Phase::Copy(Copy { end, then_base }) => {
                    if self.produced == end {
                        if then_base < 0 || then_base > i64::from(self.base_size) {
                            return Err(DiffCorruption::SeekOutsideBase.into());
                        }
                        self.base_position = then_base as u32;
                        self.phase = Phase::Record;
                        continue;
                    }
                    let n = ((end - self.produced) as usize).min(out.len() - at);
                    source
                        .diff(self.produced, &mut out[at..at + n])
                        .map_err(DiffError::Source)?;
                    self.produced += n as u32;
                    at += n;
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: the whole image was produced and every control byte used.
    pub fn finish(self) -> Result<(), DiffCorruption> {
        if self.produced != self.image_size {
            return Err(DiffCorruption::ControlEnds);
        }
        // The last record's seek, like every other.
        if let Phase::Copy(copy) | Phase::Add { copy, .. } = self.phase
            && (copy.then_base < 0 || copy.then_base > i64::from(self.base_size))
        {
            return Err(DiffCorruption::SeekOutsideBase);
        }
        let unread =
            self.control_len - self.control_read + u32::from(self.buffer_len - self.buffer_pos);
        if unread != 0 {
            return Err(DiffCorruption::TrailingControl);
        }
        Ok(())
    }

    /// Reads the next record and starts its add run.
    fn next_record<S: DiffSource>(&mut self, source: &mut S) -> Result<(), DiffError<S::Error>> {
        let add_len = self.varint(source)?.ok_or(DiffCorruption::ControlEnds)?;
        let copy_len = self.varint(source)?.ok_or(DiffCorruption::BadRecord)?;
        let seek = self.varint(source)?.ok_or(DiffCorruption::BadRecord)?;
        let seek = i64::from((seek >> 1) as i32 ^ -((seek & 1) as i32));
        let base_end = u64::from(self.base_position) + u64::from(add_len);
        if base_end > u64::from(self.base_size) {
            return Err(DiffCorruption::BeyondBase.into());
        }
        let end = u64::from(self.produced) + u64::from(add_len) + u64::from(copy_len);
        if end > u64::from(self.image_size) {
            return Err(DiffCorruption::BeyondImage.into());
        }
        self.walk = 0;
        self.phase = Phase::Add {
            start: self.produced,
            base: self.base_position,
            len: add_len,
            copy: Copy {
                end: end as u32,
                then_base: base_end as i64 + seek,
            },
        };
        Ok(())
    }

    /// The next control byte; `None` at the end of the control area.
    fn control_byte<S: DiffSource>(
        &mut self,
        source: &mut S,
    ) -> Result<Option<u8>, DiffError<S::Error>> {
        if self.buffer_pos == self.buffer_len {
            let n = (self.control_len - self.control_read).min(self.buffer.len() as u32) as usize;
            if n == 0 {
                return Ok(None);
            }
            source
                .control(self.control_read, &mut self.buffer[..n])
                .map_err(DiffError::Source)?;
            self.control_read += n as u32;
            self.buffer_len = n as u8;
            self.buffer_pos = 0;
        }
        let byte = self.buffer[usize::from(self.buffer_pos)];
        self.buffer_pos += 1;
        Ok(Some(byte))
    }

    /// A LEB128 value of at most 32 bits; `None` when the control area ends before it.
    fn varint<S: DiffSource>(
        &mut self,
        source: &mut S,
    ) -> Result<Option<u32>, DiffError<S::Error>> {
        let mut value = 0u32;
        for index in 0..5 {
            let Some(byte) = self.control_byte(source)? else {
                return if index == 0 {
                    Ok(None)
                } else {
                    Err(DiffCorruption::BadRecord.into())
                };
            };
            if index == 4 && byte > 0x0F {
                return Err(DiffCorruption::BadRecord.into());
            }
            value |= u32::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(DiffCorruption::BadRecord.into())
    }

    /// `out.len()` target bytes of the add run from run offset `rel`.
    fn add_chunk<S: DiffSource>(
        &mut self,
        source: &mut S,
        base: u32,
        rel: u32,
        len: u32,
        out: &mut [u8],
    ) -> Result<(), DiffError<S::Error>> {
        let n = out.len();
        // An instruction starting in this chunk may end up to 7 bytes after it.
        let span = (n + LOOKAHEAD).min((len - rel) as usize);
        let mut base_bytes = [0u8; CHUNK + LOOKAHEAD];
        let mut diff = [0u8; CHUNK + LOOKAHEAD];
        source
            .base(base + rel, &mut base_bytes[..span])
            .map_err(DiffError::Source)?;
        source
            .diff(self.produced, &mut diff[..span])
            .map_err(DiffError::Source)?;
        let (base_bytes, diff) = (&base_bytes[..span], &mut diff[..span]);
        // Pairs first, rewritten as the byte-wise diff that gives the same target, so
        // one byte-wise pass below finishes every byte.
        while (self.walk as usize) < rel as usize + n {
            let i = (self.walk - rel) as usize;
            match step(&base_bytes[i..]) {
                Step::End => self.walk = len,
                Step::Bytes(k) => self.walk += k,
                Step::Pair(low) => {
                    let b = read_pair(&base_bytes[i..]);
                    let target = apply_pair(b, read_pair(&diff[i..]), low);
                    let mut bytes = [0u8; 8];
                    write_pair(&mut bytes, target);
                    for k in 0..8 {
                        diff[i + k] = bytes[k].wrapping_sub(base_bytes[i + k]);
                    }
                    self.walk += 8;
                }
            }
        }
        for (d, b) in diff.iter_mut().zip(base_bytes) {
            *d = d.wrapping_add(*b);
        }
        out.copy_from_slice(&diff[..n]);
        self.produced += n as u32;
        // Bytes of an instruction that straddles the chunk's end are final now; the
        // next chunk starts at the instruction after it.
        let ahead = (self.walk.min(len) - rel) as usize;
        if ahead > n {
            self.carry[..ahead - n].copy_from_slice(&diff[n..ahead]);
            self.carry_len = (ahead - n) as u8;
        }
        Ok(())
    }
}

/// Why [`encode_stream`] refused its records.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "control record {index} does not fit the base ({base_len} bytes) and target ({target_len} bytes)"
)]
pub struct RecordsMisfit {
    /// Index of the first record that does not fit.
    pub index: usize,
    /// Base length.
    pub base_len: usize,
    /// Target length.
    pub target_len: usize,
}

/// The difference stream that turns `base` into `target` by `records` (from a bsdiff-style
/// matcher): the records must cover the target exactly and read inside the base.
#[cfg(feature = "std")]
pub fn encode_stream(
    base: &[u8],
    target: &[u8],
    records: &[Record],
) -> Result<std::vec::Vec<u8>, RecordsMisfit> {
    let image_size = u32::try_from(target.len())
        .ok()
        .filter(|n| *n <= crate::image::MAX_IMAGE_SIZE);
    let misfit = |index| RecordsMisfit {
        index,
        base_len: base.len(),
        target_len: target.len(),
    };
    let image_size = image_size.ok_or(misfit(0))?;
    let mut stream = std::vec![0u8; control_offset(image_size) as usize];
    let (mut t, mut b) = (0usize, 0i64);
    for (index, record) in records.iter().enumerate() {
        let (add, copy) = (record.add_len as usize, record.copy_len as usize);
        let start = usize::try_from(b).map_err(|_| misfit(index))?;
        let (Some(base_run), Some(target_run), Some(copied)) = (
            base.get(start..start + add),
            target.get(t..t + add),
            target.get(t + add..t + add + copy),
        ) else {
            return Err(misfit(index));
        };
        encode_add_run(base_run, target_run, &mut stream[t..t + add]);
        stream[t + add..t + add + copy].copy_from_slice(copied);
        t += add + copy;
        b = (start + add) as i64 + i64::from(record.seek);
        if b < 0 || b > base.len() as i64 {
            return Err(misfit(index));
        }
        let mut encoded = [0u8; MAX_RECORD_LEN];
        let len = record.encode(&mut encoded);
        stream.extend_from_slice(&encoded[..len]);
    }
    if t != target.len() {
        return Err(misfit(records.len()));
    }
    Ok(stream)
}

/// Why [`records_from_bsdiff`] refused a patch.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BsdiffPatchError {
    /// The patch ends inside an entry.
    #[error("the bsdiff patch ends inside an entry at byte {0}")]
    Truncated(usize),
    /// A length or seek does not fit a [`Record`].
    #[error("a bsdiff entry at byte {0} has a length or seek out of range")]
    OutOfRange(usize),
}

/// The control records of a raw bsdiff 4 patch without header or compression (what the
/// `bsdiff` crate writes): per entry three 8-byte little-endian sign-magnitude integers
/// (add length, copy length, seek), then that many difference and copied bytes, which
/// [`encode_stream`] recomputes and which are skipped here.
#[cfg(feature = "std")]
pub fn records_from_bsdiff(patch: &[u8]) -> Result<std::vec::Vec<Record>, BsdiffPatchError> {
    let int = |bytes: &[u8]| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        let raw = u64::from_le_bytes(raw);
        let magnitude = (raw & !(1 << 63)) as i64;
        if raw >> 63 == 1 {
            -magnitude
        } else {
            magnitude
        }
    };
    let mut records = std::vec::Vec::new();
    let mut at = 0usize;
    while at < patch.len() {
        let entry = patch
            .get(at..at + 24)
            .ok_or(BsdiffPatchError::Truncated(at))?;
        let (add, copy, seek) = (int(&entry[..8]), int(&entry[8..16]), int(&entry[16..]));
        let out_of_range = BsdiffPatchError::OutOfRange(at);
        let record = Record {
            add_len: u32::try_from(add).map_err(|_| out_of_range)?,
            copy_len: u32::try_from(copy).map_err(|_| out_of_range)?,
            seek: i32::try_from(seek).map_err(|_| out_of_range)?,
        };
        let end = at + 24 + record.add_len as usize + record.copy_len as usize;
        if end > patch.len() {
            return Err(BsdiffPatchError::Truncated(at));
        }
        at = end;
        records.push(record);
    }
    Ok(records)
}

/// A [`DiffSource`] over a decoded stream and a base in memory (hosts, tests).
#[derive(Clone, Copy, Debug)]
pub struct SliceSource<'a> {
    /// The whole difference stream.
    pub stream: &'a [u8],
    /// The base image.
    pub base: &'a [u8],
    /// Where the control records start in `stream`.
    pub control_offset: u32,
}

/// A read outside a [`SliceSource`]'s slices (a [`DiffPatcher`] never asks for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange;

impl SliceSource<'_> {
    fn copy(from: &[u8], at: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let start = usize::try_from(at).map_err(|_| OutOfRange)?;
        let bytes = from.get(start..start + buf.len()).ok_or(OutOfRange)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl DiffSource for SliceSource<'_> {
    type Error = OutOfRange;

    fn diff(&mut self, position: u32, buf: &mut [u8]) -> Result<(), OutOfRange> {
        Self::copy(self.stream, u64::from(position), buf)
    }

    fn base(&mut self, position: u32, buf: &mut [u8]) -> Result<(), OutOfRange> {
        Self::copy(self.base, u64::from(position), buf)
    }

    fn control(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), OutOfRange> {
        Self::copy(
            self.stream,
            u64::from(self.control_offset) + u64::from(offset),
            buf,
        )
    }
}
