//! Streaming validation of an app image in constant memory.
//!
//! The validator follows the image's own structure (header, segments, padding, checksum,
//! digest). What may follow the image is [`SignatureSectorPolicy`]'s choice: a Secure
//! Boot V2 signature sector exactly where ESP-IDF places it (then input stops being
//! consumed at the sector's end), or nothing at all (input stops being consumed where the
//! image ends, so a whole flash slot can be fed and the bytes after the image are left to
//! the caller).

use sha2::{Digest, Sha256};

use super::app_desc::APP_DESC_LEN;
use super::error::AppImageError;
use super::header::{
    CHECKSUM_SEED, DIGEST_LEN, IMAGE_HEADER_LEN, IMAGE_MAGIC, ImageHeader, MAX_SEGMENTS,
    SEGMENT_HEADER_LEN, SegmentHeader,
};
use super::image_info::{AppImageInfo, SegmentInfo};
use super::secure_boot::{NotASector, Trailer};
use crate::chip::ChipId;

/// Largest image accepted unless the caller says otherwise: 16 MiB, the largest app
/// partition ESP-IDF supports.
pub const DEFAULT_MAX_IMAGE_LEN: u32 = 16 * 1024 * 1024;

/// Whether an appended SHA-256 is required. ota-sign requires it: it is the only check
/// that covers every byte, padding and headers included.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum DigestPolicy {
    /// `hash_appended` must be set and the digest must match.
    #[default]
    Required,
    /// Accept an image without a digest (checksum only), as the bootloader does; a digest
    /// that is present must still match.
    IfPresent,
}

/// What may follow the app image.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SignatureSectorPolicy {
    /// Nothing, or a well-formed Secure Boot V2 signature sector where ESP-IDF places it
    /// (see [`super::secure_boot`]); anything else is an error. The sector is part of the
    /// installed image: [`AppImageInfo::image_sha256`] covers it.
    #[default]
    Accept,
    /// Stop consuming where the app image ends: for scanning a flash slot, whose bytes
    /// after the image are whatever an earlier image left there.
    StopAtImageEnd,
}

/// What the validator checks beyond the format itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ValidateOptions {
    /// The chip the image must be built for; `None` accepts any chip id.
    pub chip: Option<ChipId>,
    /// Whether the appended SHA-256 is required.
    pub digest: DigestPolicy,
    /// Largest total image length accepted (for example the slot size), signature sector
    /// included.
    pub max_len: u32,
    /// What may follow the app image.
    pub signature_sector: SignatureSectorPolicy,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            chip: None,
            digest: DigestPolicy::Required,
            max_len: DEFAULT_MAX_IMAGE_LEN,
            signature_sector: SignatureSectorPolicy::Accept,
        }
    }
}

impl ValidateOptions {
    /// Requires the image to be built for `chip`.
    pub fn chip(mut self, chip: ChipId) -> Self {
        self.chip = Some(chip);
        self
    }

    /// Sets the digest policy.
    pub fn digest(mut self, policy: DigestPolicy) -> Self {
        self.digest = policy;
        self
    }

    /// Sets the largest accepted image length.
    pub fn max_len(mut self, max_len: u32) -> Self {
        self.max_len = max_len;
        self
    }

    /// Sets what may follow the app image.
    pub fn signature_sector(mut self, policy: SignatureSectorPolicy) -> Self {
        self.signature_sector = policy;
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Header,
    SegmentHeader {
        index: u8,
    },
    SegmentData {
        index: u8,
        remaining: u32,
    },
    Padding {
        remaining: u8,
    },
    Checksum,
    Digest,
    /// The app image ended; a signature sector may follow.
    ImageEnd,
    /// Bytes after the image, parsed by `trailer`.
    Trailer,
    /// Nothing more is consumed.
    Done,
    Failed(AppImageError),
}

/// Validates an app image fed in chunks of any size, in constant memory.
///
/// ```
/// # use ota_format::esp::{AppImageValidator, ValidateOptions, AppImageError};
/// # fn check(slot: &[u8]) -> Result<(), AppImageError> {
/// let mut v = AppImageValidator::new(ValidateOptions::default());
/// for chunk in slot.chunks(4096) {
///     if v.update(chunk)? < chunk.len() {
///         break; // the image ended inside this chunk
///     }
/// }
/// let info = v.finish()?;
/// # let _ = info; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AppImageValidator {
    opts: ValidateOptions,
    state: State,
    /// Bytes consumed so far (the image offset of the next byte).
    offset: u32,
    /// Collects the fixed-size parts (headers, digest) that may straddle chunks.
    buf: [u8; DIGEST_LEN],
    have: usize,
    header: Option<ImageHeader>,
    segments: [SegmentInfo; MAX_SEGMENTS],
    checksum: u8,
    stored_checksum: u8,
    sha: Sha256,
    appended: Option<[u8; DIGEST_LEN]>,
    desc: [u8; APP_DESC_LEN],
    desc_len: u16,
    image_len: u32,
    trailer: Option<Trailer>,
}

impl AppImageValidator {
    /// A validator at the start of an image.
    pub fn new(opts: ValidateOptions) -> Self {
        AppImageValidator {
            opts,
            state: State::Header,
            offset: 0,
            buf: [0; DIGEST_LEN],
            have: 0,
            header: None,
            segments: [SegmentInfo::default(); MAX_SEGMENTS],
            checksum: CHECKSUM_SEED,
            stored_checksum: 0,
            sha: Sha256::new(),
            appended: None,
            desc: [0; APP_DESC_LEN],
            desc_len: 0,
            image_len: 0,
            trailer: None,
        }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u32 {
        self.offset
    }

    /// Whether further input will not be consumed: the app image ended (with
    /// [`SignatureSectorPolicy::StopAtImageEnd`]) or its signature sector did.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
            || (self.state == State::ImageEnd
                && self.opts.signature_sector == SignatureSectorPolicy::StopAtImageEnd)
    }

    /// The app image's length, once it has ended (a signature sector may still follow).
    pub fn image_len(&self) -> Option<u32> {
        matches!(self.state, State::ImageEnd | State::Trailer | State::Done)
            .then_some(self.image_len)
    }

    /// Feeds the next bytes. Returns how many were part of the image: fewer than
    /// `data.len()` only once nothing more is consumed ([`Self::is_done`]). After the
    /// app image, with [`SignatureSectorPolicy::Accept`], everything is consumed until a
    /// signature sector is complete; what is not a sector is reported by
    /// [`Self::finish`]. An error is final: every later call returns it again.
    pub fn update(&mut self, data: &[u8]) -> Result<usize, AppImageError> {
        let mut used = 0;
        while used < data.len() {
            match self.step(&data[used..]) {
                Ok(0) => break,
                Ok(n) => used += n,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        }
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        Ok(used)
    }

    /// Ends validation: the report for a complete, valid image, or why it is not one.
    pub fn finish(self) -> Result<AppImageInfo, AppImageError> {
        let signature_sector = match self.state {
            State::ImageEnd => None,
            State::Trailer | State::Done => match self.trailer.as_ref().map(Trailer::finish) {
                Some(Ok(sector)) => sector,
                Some(Err(NotASector::Bad(e))) => return Err(e.into()),
                Some(Err(NotASector::Trailing { len })) => {
                    return Err(AppImageError::TrailingBytes { len });
                }
                None => None,
            },
            State::Failed(e) => return Err(e),
            _ => return Err(AppImageError::Truncated),
        };
        let header = self.header.ok_or(AppImageError::Truncated)?;
        Ok(AppImageInfo {
            header,
            len: self.image_len,
            installed_len: self.offset,
            signature_sector,
            checksum: self.stored_checksum,
            appended_digest: self.appended,
            image_sha256: self.sha.finalize().into(),
            segments: self.segments,
            desc: self.desc,
            desc_len: self.desc_len,
        })
    }

    /// Consumes a prefix of `data` for the current state; returns how much.
    fn step(&mut self, data: &[u8]) -> Result<usize, AppImageError> {
        match self.state {
            State::Header => {
                let n = self.collect(data, IMAGE_HEADER_LEN);
                if self.have == IMAGE_HEADER_LEN {
                    let mut raw = [0u8; IMAGE_HEADER_LEN];
                    raw.copy_from_slice(&self.buf[..IMAGE_HEADER_LEN]);
                    self.have = 0;
                    self.begin(&ImageHeader::decode(&raw))?;
                }
                Ok(n)
            }
            State::SegmentHeader { index } => {
                let n = self.collect(data, SEGMENT_HEADER_LEN);
                if self.have == SEGMENT_HEADER_LEN {
                    let mut raw = [0u8; SEGMENT_HEADER_LEN];
                    raw.copy_from_slice(&self.buf[..SEGMENT_HEADER_LEN]);
                    self.have = 0;
                    self.segment(index, SegmentHeader::decode(&raw))?;
                }
                Ok(n)
            }
            State::SegmentData { index, remaining } => {
                let n = (remaining as usize).min(data.len());
                let chunk = &data[..n];
                for &b in chunk {
                    self.checksum ^= b;
                }
                if index == 0 {
                    self.capture_descriptor(chunk);
                }
                self.advance(chunk);
                let remaining = remaining - n as u32;
                self.state = if remaining > 0 {
                    State::SegmentData { index, remaining }
                } else {
                    self.after_segment(index)?
                };
                Ok(n)
            }
            State::Padding { remaining } => {
                let n = (remaining as usize).min(data.len());
                if let Some(pos) = data[..n].iter().position(|&b| b != 0) {
                    return Err(AppImageError::NonZeroPadding {
                        offset: self.offset + pos as u32,
                    });
                }
                self.advance(&data[..n]);
                let remaining = remaining - n as u8;
                self.state = if remaining > 0 {
                    State::Padding { remaining }
                } else {
                    State::Checksum
                };
                Ok(n)
            }
            State::Checksum => {
                let stored = data[0];
                if stored != self.checksum {
                    return Err(AppImageError::ChecksumMismatch {
                        computed: self.checksum,
                        stored,
                    });
                }
                self.stored_checksum = stored;
                self.advance(&data[..1]);
                let digest = self.header.is_some_and(|h| h.has_digest());
                if digest {
                    self.state = State::Digest;
                } else {
                    self.end_image();
                }
                Ok(1)
            }
            State::Digest => {
                let n = self.collect(data, DIGEST_LEN);
                if self.have == DIGEST_LEN {
                    // The appended digest covers everything before it; `sha` has seen
                    // exactly that, and goes on to cover the digest for `image_sha256`.
                    let expected: [u8; 32] = self.sha.clone().finalize().into();
                    if expected != self.buf {
                        return Err(AppImageError::DigestMismatch);
                    }
                    self.appended = Some(self.buf);
                    let digest = self.buf;
                    self.advance(&digest);
                    self.end_image();
                }
                Ok(n)
            }
            State::ImageEnd if self.is_done() => Ok(0),
            State::ImageEnd => {
                self.trailer = Some(Trailer::new(self.offset, self.opts.max_len));
                self.state = State::Trailer;
                self.step(data)
            }
            State::Trailer => {
                let Some(trailer) = self.trailer.as_mut() else {
                    return Err(AppImageError::Truncated);
                };
                if trailer.needs_image_digest() {
                    // Every block signs the SHA-256 of all bytes before the sector.
                    trailer.set_image_digest(self.sha.clone().finalize().into());
                }
                let step = trailer.step(data)?;
                let complete = trailer.is_complete();
                if step.installed {
                    self.advance(&data[..step.n]);
                }
                if complete {
                    self.state = State::Done;
                }
                Ok(step.n)
            }
            State::Done => Ok(0),
            State::Failed(e) => Err(e),
        }
    }

    /// Copies up to `want - have` bytes into `buf`. Header and digest bytes are hashed
    /// when their part is complete (digest bytes by the caller), so `offset` counts only
    /// hashed bytes.
    fn collect(&mut self, data: &[u8], want: usize) -> usize {
        let n = (want - self.have).min(data.len());
        self.buf[self.have..self.have + n].copy_from_slice(&data[..n]);
        self.have += n;
        if self.have == want && !matches!(self.state, State::Digest) {
            let part = self.buf;
            self.advance(&part[..want]);
        }
        n
    }

    fn end_image(&mut self) {
        self.image_len = self.offset;
        self.state = State::ImageEnd;
    }

    fn advance(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        // Cannot overflow: every length was checked against `max_len` (a u32) before
        // its bytes are accepted.
        self.offset += bytes.len() as u32;
    }

    fn begin(&mut self, h: &ImageHeader) -> Result<(), AppImageError> {
        if h.magic != IMAGE_MAGIC {
            return Err(AppImageError::BadMagic { found: h.magic });
        }
        if h.segment_count == 0 {
            return Err(AppImageError::NoSegments);
        }
        if h.segment_count as usize > MAX_SEGMENTS {
            return Err(AppImageError::TooManySegments {
                count: h.segment_count,
            });
        }
        if let Some(expected) = self.opts.chip
            && expected != h.chip_id
        {
            return Err(AppImageError::WrongChip {
                expected,
                found: h.chip_id,
            });
        }
        if !h.has_digest() && self.opts.digest == DigestPolicy::Required {
            return Err(AppImageError::DigestMissing);
        }
        self.header = Some(*h);
        self.state = State::SegmentHeader { index: 0 };
        Ok(())
    }

    fn segment(&mut self, index: u8, s: SegmentHeader) -> Result<(), AppImageError> {
        if !s.data_len.is_multiple_of(4) {
            return Err(AppImageError::SegmentMisaligned {
                index,
                len: s.data_len,
            });
        }
        let too_large = AppImageError::SegmentTooLarge {
            index,
            len: s.data_len,
        };
        // The checksum byte must still fit after the data.
        let end = self
            .offset
            .checked_add(s.data_len)
            .and_then(|e| e.checked_add(1))
            .ok_or(too_large)?;
        if end > self.opts.max_len {
            return Err(too_large);
        }
        self.segments[index as usize] = SegmentInfo {
            load_addr: s.load_addr,
            data_offset: self.offset,
            len: s.data_len,
        };
        self.state = if s.data_len > 0 {
            State::SegmentData {
                index,
                remaining: s.data_len,
            }
        } else {
            self.after_segment(index)?
        };
        Ok(())
    }

    fn after_segment(&self, index: u8) -> Result<State, AppImageError> {
        let header = self.header.ok_or(AppImageError::Truncated)?;
        if index + 1 < header.segment_count {
            return Ok(State::SegmentHeader { index: index + 1 });
        }
        // The checksum is the last byte of a 16-byte block.
        let padding = 15 - (self.offset % 16) as u8;
        let digest = if header.has_digest() { DIGEST_LEN } else { 0 };
        let total = u64::from(self.offset) + u64::from(padding) + 1 + digest as u64;
        if total > u64::from(self.opts.max_len) {
            return Err(AppImageError::ImageTooLarge {
                max: self.opts.max_len,
            });
        }
        Ok(match padding {
            0 => State::Checksum,
            remaining => State::Padding { remaining },
        })
    }

    fn capture_descriptor(&mut self, chunk: &[u8]) {
        let have = self.desc_len as usize;
        let n = (APP_DESC_LEN - have).min(chunk.len());
        self.desc[have..have + n].copy_from_slice(&chunk[..n]);
        self.desc_len += n as u16;
    }
}

/// Validates a complete app image held in memory; bytes after the image are an error
/// unless they are a Secure Boot V2 signature sector that `opts` accepts.
pub fn validate(image: &[u8], opts: ValidateOptions) -> Result<AppImageInfo, AppImageError> {
    let mut v = AppImageValidator::new(opts);
    let used = v.update(image)?;
    let info = v.finish()?;
    if used < image.len() {
        let len = u32::try_from(image.len() - used).unwrap_or(u32::MAX);
        return Err(AppImageError::TrailingBytes { len });
    }
    Ok(info)
}
