//! Streaming an `.ota` image into the inactive slot, then proving what landed there.
//!
//! ```text
//! network chunks ─▶ ImageVerifier ─▶ (zstd) ──────────▶ SlotWriter ─▶ inactive slot
//!                   header + digest   4 KiB ring = one   erase ahead      │
//!                                     sector per piece                    │
//!                                        ▲ older window bytes read back ──┘
//! ```
//! The decoder ([`crate::zstd::FrameDecoder`]) keeps the last 4 KiB of output; its ring is
//! the writer's sector buffer, and match copies further back read the slot already
//! written. Bytes reach flash before the payload digest is known; that is safe because
//! nothing points at the inactive slot until [`Installer::finish`] has verified the
//! payload digest, read the whole slot back once (one SHA-256, computed by the app-image
//! validator, against the signed installed-image digest) and validated it as an ESP-IDF
//! app image for this chip. `finish` is the only way to obtain an [`InstalledImage`], and
//! [`crate::boot`] switching consumes one.
//!
//! The slot is erased ahead of the writes: the part of it the image will occupy that is
//! 64 KiB-aligned in one `erase` call as soon as the header is verified (a flash driver
//! turns aligned 64 KiB ranges into block erases, much faster than sectors), the rest
//! sector by sector as the output reaches it.
//!
//! A delta of encoding 3 ([`DeltaEncoding::Difference`]) takes two passes over the slot.
//! The payload's frames decode (no prefix) into the slot as a difference stream, exactly
//! as a full image decodes, its window in flash. Then [`Installer::finish`] turns the
//! stream into the image in place, sector by sector (or [`Finishing::step`], one sector a
//! call, for a caller that yields between them): [`DiffPatcher`] fills the decoder's
//! block buffer (free once decoding is done) from the sector's diff bytes, the running
//! slot and the control records, and the sector is erased and rewritten. The patcher
//! reads diff bytes at most 7 ahead of what it produced (the next sector, not rewritten
//! yet) and the control records start on the sector boundary after the image, so no
//! rewrite touches a byte still to be read. A power cut in either pass leaves only the
//! inactive slot unusable, like any interrupted install.

use core::marker::PhantomData;

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use ota_format::diff::{CONTROL_ALIGN, DiffError, DiffPatcher, DiffSource, control_offset};
use ota_format::esp::AppImageError;
use ota_format::esp::secure_boot::{SecureBootKeyDigest, SignatureSector};
use ota_format::{
    ChipId, Compression, DeltaEncoding, DeltaExpectations, DeltaVerifier, DeviceType, Expectations,
    FLASH_WINDOW_MAX_LOG, FieldError, FormatError, ImageHeader, ImageVerifier,
    TrustedKeyDescriptor, TrustedKeys, VerifiedManifest, Version,
};

use crate::boot::VerifiedSlot;
pub use crate::contents::SlotContents;
use crate::contents::{AcceptedFirmware, ContentCheck, check_output_len};
use crate::geometry::Region;
use crate::zstd::{DecompressError, FrameDecoder, RING, decoder_config, install_error};

/// Why an install failed. The slot may hold a partial image; nothing points at it.
// Not `#[non_exhaustive]`: ota-sign maps every variant to a diagnostic without a
// wildcard, so a new refusal does not build until someone says what it means.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InstallError {
    /// The image failed verification (signature, expectations, payload digest, trailing
    /// bytes) or its installed digest.
    #[error("image verification failed: {0}")]
    Format(#[from] FormatError),
    /// The compressed payload was refused.
    #[error("decompression failed: {0}")]
    Decompress(#[from] DecompressError),
    /// What was written is not a valid ESP-IDF app image for this device.
    #[error("installed app image is invalid: {0}")]
    AppImage(#[from] AppImageError),
    /// The flash failed.
    #[error("flash error: {0:?}")]
    Flash(NorFlashErrorKind),
    /// The image does not fit the slot.
    #[error("image of {image} bytes does not fit the {slot}-byte slot")]
    DoesNotFit {
        /// Installed image size.
        image: u32,
        /// Slot size.
        slot: u32,
    },
    /// Decompression produced more bytes than the signed image size.
    #[error("payload decompresses to more than the signed image size")]
    OutputTooLong,
    /// Decompression produced fewer bytes than the signed image size.
    #[error("payload decompresses to less than the signed image size")]
    OutputTooShort,
    /// The installed app image's descriptor names another version than the signed
    /// header: the device would report (and decide updates on) a version nobody signed.
    #[error("app descriptor says version {installed}, the signed image header {signed}")]
    AppVersionMismatch {
        /// Version in the signed `.ota` header.
        signed: Version,
        /// Version in the installed app descriptor.
        installed: Version,
    },
    /// The installed app image has no app descriptor, or its version is not semver: the
    /// device could not tell what it runs after the switch.
    #[error("installed app image has no semver version in its app descriptor")]
    NoAppVersion,
    /// The new firmware trusts no key: once running it could never be updated again.
    #[error("new firmware has no trusted-key descriptor: it would lock the device out")]
    NoTrustedKeys,
    /// The running image is Secure Boot V2 signed and the new one is not: the bootloader
    /// would refuse to start it.
    #[error(
        "the running firmware is Secure Boot V2 signed and the new image has no signature sector"
    )]
    SecureBootSignatureMissing,
    /// No Secure Boot V2 block of the new image names a key the running image's blocks
    /// name: the bootloader (whose eFuses hold those keys' digests) would refuse it.
    #[error(
        "the new image is Secure Boot signed with key {new}, the running firmware with key {running}"
    )]
    SecureBootKeyNotTrusted {
        /// Key digest of the new image's first block.
        new: SecureBootKeyDigest,
        /// Key digest of the running image's first block.
        running: SecureBootKeyDigest,
    },
    /// The flash's write or read size does not divide the decoder's 4 KiB pieces, or is
    /// above the 64 bytes the writer pads a last piece to.
    #[error("flash unsuitable: its write or read size does not divide 4 KiB or exceeds 64")]
    WriteBufferMisfit,
    /// The slot does not start on an erase-sector boundary of the flash.
    #[error("install buffer unsuitable: slot is not erase-aligned")]
    SlotNotEraseAligned,
    /// A host asked for a window log above what any agent accepts
    /// ([`crate::zstd::MAX_WINDOW_LOG`]).
    #[error("window log {0} is above what any agent accepts")]
    WindowLogAboveAgents(u8),
    /// An earlier error ended this install; feeding it more bytes cannot resume it.
    #[error("the install already failed")]
    AlreadyFailed,
}

/// Which agent behaviour an install follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Generation {
    /// Agents in the field before issue 13: compression methods 0 and 1 only (method 2
    /// is refused at the header, as their ota-format does: `InvalidField(Compression)`),
    /// no deltas, method-1 windows up to the device's `max_window_log` (2^12..2^14).
    One,
    /// This agent: method 2 and deltas as well.
    #[default]
    Two,
}

/// Where the image goes and what the device can afford.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The inactive OTA slot.
    pub slot: Region,
    /// This device's type.
    pub device_type: DeviceType,
    /// This device's chip.
    pub chip: ChipId,
    /// Largest method-1 zstd window log the device accepts (see [`crate::zstd`]; method 2
    /// has its own limit).
    pub max_window_log: u8,
    /// Which compression methods the device takes.
    pub generation: Generation,
}

/// The image a delta is decoded against: the running firmware, as installed in its slot.
/// Only ever read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Base {
    /// The running slot.
    pub slot: Region,
    /// Installed-image length (app image, and a Secure Boot signature sector).
    pub size: u32,
    /// Installed-image SHA-256: what a delta's base must be.
    pub sha256: [u8; 32],
}

/// What is being fed: a full `.ota` image, or a delta against the running image.
// Both verifiers are about the same size (1.4 and 1.7 KiB: a header buffer and SHA-256
// states); boxing is not an option without a heap, and the update path is measured whole
// by `tests/ram.rs`.
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    Full(ImageVerifier<'a, 'a>),
    Delta(DeltaVerifier<'a, 'a>, Base),
}

/// Caller-owned memory for one install; nothing is allocated.
pub struct InstallBuffers<'b> {
    /// The zstd decoder (its ring is the sector buffer, its block buffer the read-back
    /// buffer of `finish` and the sector buffer of an encoding-3 delta's in-place pass);
    /// reconfigured for each install.
    pub decoder: &'b mut FrameDecoder,
}

/// Largest flash write size the writer pads a short last piece to.
const MAX_WRITE_SIZE: usize = 64;
/// The erase unit the firmware's flash turns into one ROM block erase.
const BLOCK_ERASE: u32 = 64 * 1024;

/// Proof that a slot holds a verified image. Only [`Installer::finish`] makes one (its
/// fields are private and it is neither `Clone` nor `Copy`), and the only way to point
/// otadata at an OTA slot from the device is [`crate::boot::BootState::activate`], which
/// consumes the [`VerifiedSlot`] this proof yields: one verification, one switch.
///
/// ```compile_fail,E0451
/// // Built by hand, the proof would prove nothing: its fields are private.
/// fn forge(header: ota_format::ImageHeader) -> ota_agent::install::InstalledImage {
///     ota_agent::install::InstalledImage { header, ..todo!() }
/// }
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct InstalledImage {
    slot: VerifiedSlot,
    header: ImageHeader,
    app_version: Version,
    trusted_keys: TrustedKeyDescriptor,
    signature_sector: Option<SignatureSector>,
}

impl InstalledImage {
    /// The slot written.
    pub fn slot(&self) -> Region {
        self.slot.region()
    }

    /// The verified `.ota` header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// Version in the app image's descriptor (equal to the signed header's).
    pub fn app_version(&self) -> Version {
        self.app_version
    }

    /// The keys the new firmware trusts (what this device trusts once it is confirmed).
    pub fn trusted_keys(&self) -> &TrustedKeyDescriptor {
        &self.trusted_keys
    }

    /// The image's Secure Boot V2 signature sector, when it has one.
    pub fn signature_sector(&self) -> Option<&SignatureSector> {
        self.signature_sector.as_ref()
    }

    /// Gives up the proof for the one thing it allows: switching to the slot
    /// ([`crate::boot::BootState::activate`]).
    pub fn into_verified_slot(self) -> VerifiedSlot {
        self.slot
    }
}

/// Writes a stream into a slot, erasing ahead of the writes (NOR: erase to `0xFF`,
/// writes only clear bits). Output arrives as whole sectors from the decoder, or in any
/// pieces for a stored image: only a tail shorter than the write size waits in `tail`.
struct SlotWriter {
    slot: Region,
    limit: u32,
    /// Bytes written to flash (a multiple of the write size until the final flush).
    flushed: u32,
    tail: [u8; MAX_WRITE_SIZE],
    tail_len: usize,
    /// Erased up to here, relative to the slot; `None` until the first write.
    erased_to: Option<u32>,
    /// The 64 KiB-aligned span erased in one call, relative to the slot.
    block_span: (u32, u32),
}

impl SlotWriter {
    fn new(slot: Region, limit: u32) -> Self {
        SlotWriter {
            slot,
            limit,
            flushed: 0,
            tail: [0xFF; MAX_WRITE_SIZE],
            tail_len: 0,
            erased_to: None,
            block_span: (0, 0),
        }
    }

    fn reset(&mut self) {
        // Everything is erased again as it is rewritten.
        *self = SlotWriter::new(self.slot, self.limit);
    }

    fn written(&self) -> u64 {
        u64::from(self.flushed) + self.tail_len as u64
    }

    /// Erases the 64 KiB-aligned part of the range the image occupies in one call, the
    /// first time anything is written.
    fn start<F: NorFlash>(&mut self, flash: &mut F) -> Result<u32, InstallError> {
        if let Some(at) = self.erased_to {
            return Ok(at);
        }
        let sector = F::ERASE_SIZE as u32;
        let end = self.limit.next_multiple_of(sector);
        let first = self.slot.offset.next_multiple_of(BLOCK_ERASE);
        let last = (self.slot.offset + end) / BLOCK_ERASE * BLOCK_ERASE;
        self.block_span = (0, 0);
        if BLOCK_ERASE.is_multiple_of(sector) && last > first {
            flash.erase(first, last).map_err(flash_err::<F>)?;
            self.block_span = (first - self.slot.offset, last - self.slot.offset);
        }
        self.erased_to = Some(0);
        Ok(0)
    }

    /// Makes sure the slot is erased below `end` (relative).
    fn erase_to<F: NorFlash>(&mut self, flash: &mut F, end: u32) -> Result<(), InstallError> {
        let mut at = self.start(flash)?;
        let sector = F::ERASE_SIZE as u32;
        while at < end {
            let (from, to) = self.block_span;
            if at >= from && at < to {
                at = to;
                continue;
            }
            let abs = self.slot.offset + at;
            flash.erase(abs, abs + sector).map_err(flash_err::<F>)?;
            at += sector;
        }
        self.erased_to = Some(at);
        Ok(())
    }

    fn push<F: NorFlash>(&mut self, flash: &mut F, mut data: &[u8]) -> Result<(), InstallError> {
        check_output_len(self.written() + data.len() as u64, self.limit)?;
        let ws = F::WRITE_SIZE;
        if self.tail_len > 0 {
            let take = (ws - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < ws {
                return Ok(());
            }
            let tail = self.tail;
            self.write(flash, &tail[..ws])?;
            self.tail_len = 0;
        }
        let whole = data.len() / ws * ws;
        if whole > 0 {
            self.write(flash, &data[..whole])?;
        }
        let rest = &data[whole..];
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
        Ok(())
    }

    /// Writes `bytes` (a multiple of the write size) at the end of what is written.
    fn write<F: NorFlash>(&mut self, flash: &mut F, bytes: &[u8]) -> Result<(), InstallError> {
        let end = self.flushed + bytes.len() as u32;
        self.erase_to(flash, end)?;
        flash
            .write(self.slot.offset + self.flushed, bytes)
            .map_err(flash_err::<F>)?;
        self.flushed = end;
        Ok(())
    }

    /// Writes the tail, padded to the write size with the erased value.
    fn flush<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), InstallError> {
        if self.tail_len == 0 {
            return Ok(());
        }
        let ws = F::WRITE_SIZE;
        let mut padded = [0xFF; MAX_WRITE_SIZE];
        padded[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        let len = self.tail_len;
        self.write(flash, &padded[..ws])?;
        // Only the real bytes count.
        self.flushed -= (ws - len) as u32;
        self.tail_len = 0;
        Ok(())
    }
}

/// The decoder's view of the slot for one call: output goes to the writer, the window
/// comes back from what it wrote (and, before it, the prefix region).
struct SlotIo<'w, F> {
    flash: &'w mut F,
    writer: &'w mut SlotWriter,
    /// Where a delta's prefix is read from (length 0 for none).
    prefix: ota_zstd::Region,
}

impl<F: NorFlash> ota_zstd::Sink for SlotIo<'_, F> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ota_zstd::IoError> {
        self.writer.push(self.flash, bytes).map_err(|e| match e {
            InstallError::Flash(kind) => ota_zstd::IoError::Flash(kind),
            _ => ota_zstd::IoError::OutputFull,
        })
    }
}

impl<F: NorFlash> ota_zstd::History for SlotIo<'_, F> {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), ota_zstd::IoError> {
        ota_zstd::NorFlashHistory::new(&mut *self.flash, self.prefix, self.writer.slot.offset)
            .read(position, buf)
    }
}

/// No prefix: a full image's frames, and an encoding-3 delta's.
const NO_PREFIX: ota_zstd::Region = ota_zstd::Region { offset: 0, len: 0 };

/// What pass 2 of an encoding-3 delta reads ([`apply_sector`]): diff bytes and control
/// records from the slot pass 1 wrote, base bytes from the running slot.
struct SlotDiff<'f, F> {
    flash: &'f mut F,
    /// Flash address of the target slot (diff byte 0).
    slot: u32,
    /// Flash address of the running slot (base byte 0).
    base: u32,
    /// Flash address of the control records.
    control: u32,
}

impl<F: NorFlash> SlotDiff<'_, F> {
    /// `buf.len()` bytes at `start + position`, whatever the flash's read size (the
    /// decoder's history reader rounds reads to it).
    fn read(&mut self, start: u32, position: u32, buf: &mut [u8]) -> Result<(), ota_zstd::IoError> {
        let mut history = ota_zstd::NorFlashHistory::new(&mut *self.flash, NO_PREFIX, start);
        ota_zstd::History::read(&mut history, u64::from(position), buf)
    }
}

impl<F: NorFlash> DiffSource for SlotDiff<'_, F> {
    type Error = ota_zstd::IoError;

    fn diff(&mut self, position: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.read(self.slot, position, buf)
    }

    fn base(&mut self, position: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.read(self.base, position, buf)
    }

    fn control(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.read(self.control, offset, buf)
    }
}

/// A refused difference stream is a corrupt payload; a failed read, the flash's.
fn diff_error(error: DiffError<ota_zstd::IoError>) -> InstallError {
    match error {
        DiffError::Corrupt(_) => InstallError::Decompress(DecompressError::Corrupt),
        DiffError::Source(io) => install_error(ota_zstd::DecodeError::Io(io)),
    }
}

// Pass 2 builds each rewritten sector in the decoder's compressed-block buffer.
const _: () = assert!(crate::zstd::BLOCK >= CONTROL_ALIGN as usize);

/// One sector of pass 2 of an encoding-3 delta: the next (up to) 4 KiB of the image,
/// computed into `buf` (at least 4 KiB) from the stream pass 1 wrote to `slot` and the
/// base (only read), then erased and rewritten in place; returns the image bytes done.
/// The patcher has read the sector's diff bytes by then, reads at most 7 diff bytes
/// ahead (the next sector, not rewritten yet), and the control records lie past the last
/// sector rewritten.
fn apply_sector<F: NorFlash>(
    flash: &mut F,
    slot: Region,
    pass: &mut InPlace,
    image_size: u32,
    buf: &mut [u8],
) -> Result<u32, InstallError> {
    let mut source = SlotDiff {
        flash,
        slot: slot.offset,
        base: pass.base.slot.offset,
        control: slot.offset + control_offset(image_size),
    };
    let n = (image_size - pass.at).min(CONTROL_ALIGN) as usize;
    // The last piece is padded to the write size with the erased value, as the writer's
    // flush does (the write size divides 4 KiB: `Installer::new`).
    let sector = &mut buf[..n.next_multiple_of(F::WRITE_SIZE)];
    pass.patcher
        .fill(&mut source, &mut sector[..n])
        .map_err(diff_error)?;
    sector[n..].fill(0xFF);
    let address = slot.offset + pass.at;
    source
        .flash
        .erase(address, address + CONTROL_ALIGN)
        .map_err(flash_err::<F>)?;
    source
        .flash
        .write(address, sector)
        .map_err(flash_err::<F>)?;
    Ok(n as u32)
}

fn flash_err<F: NorFlash>(e: F::Error) -> InstallError {
    InstallError::Flash(e.kind())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Header not verified yet.
    Pending,
    Stored,
    Zstd,
}

/// One install in progress. Feed it the `.ota` file from its first byte; after a 200
/// answer to a resumed request call [`Installer::restart`] and feed from zero again.
pub struct Installer<'a, F> {
    keys: TrustedKeys<'a>,
    manifest: &'a VerifiedManifest,
    target: Target,
    source: Source<'a>,
    decoder: &'a mut FrameDecoder,
    mode: Mode,
    writer: SlotWriter,
    /// An encoding-3 delta's stream size, once its decoder started: pass 1 decodes that
    /// many bytes (no prefix), `finish` applies them.
    difference: Option<u32>,
    received: u64,
    _flash: PhantomData<F>,
}

impl<'a, F: NorFlash> Installer<'a, F> {
    /// Prepares an install of the image `manifest` names into `target.slot`.
    pub fn new(
        keys: TrustedKeys<'a>,
        manifest: &'a VerifiedManifest,
        target: Target,
        buffers: InstallBuffers<'a>,
    ) -> Result<Self, InstallError> {
        let m = manifest.manifest();
        if m.image_size > target.slot.size {
            return Err(InstallError::DoesNotFit {
                image: m.image_size,
                slot: target.slot.size,
            });
        }
        let fits = |size: usize| size > 0 && size <= MAX_WRITE_SIZE && RING.is_multiple_of(size);
        if !fits(F::WRITE_SIZE) || !fits(F::READ_SIZE.max(1)) {
            return Err(InstallError::WriteBufferMisfit);
        }
        if F::ERASE_SIZE == 0 || !target.slot.offset.is_multiple_of(F::ERASE_SIZE as u32) {
            return Err(InstallError::SlotNotEraseAligned);
        }
        Ok(Installer {
            keys,
            manifest,
            target,
            source: Source::Full(ImageVerifier::new(
                keys,
                Self::expectations(manifest, &target),
            )),
            decoder: buffers.decoder,
            mode: Mode::Pending,
            writer: SlotWriter::new(target.slot, m.image_size),
            difference: None,
            received: 0,
            _flash: PhantomData,
        })
    }

    /// Prepares an install of the image `manifest` names from a delta against `base`
    /// (the running image, whose slot is only read): the same checks as a full image,
    /// and the delta's own (its signature, its base, its payload digest).
    pub fn new_delta(
        keys: TrustedKeys<'a>,
        manifest: &'a VerifiedManifest,
        target: Target,
        buffers: InstallBuffers<'a>,
        base: Base,
    ) -> Result<Self, InstallError> {
        let mut installer = Self::new(keys, manifest, target, buffers)?;
        installer.source = Self::delta_source(keys, manifest, &target, base);
        Ok(installer)
    }

    fn delta_source(
        keys: TrustedKeys<'a>,
        manifest: &'a VerifiedManifest,
        target: &Target,
        base: Base,
    ) -> Source<'a> {
        let expect = DeltaExpectations {
            target: Self::expectations(manifest, target),
            base: Some((base.size, base.sha256)),
        };
        Source::Delta(DeltaVerifier::new(keys, expect), base)
    }

    /// Whether this install decodes a delta.
    pub fn is_delta(&self) -> bool {
        matches!(self.source, Source::Delta(..))
    }

    fn expectations(manifest: &'a VerifiedManifest, target: &Target) -> Expectations<'a> {
        Expectations {
            manifest: Some(manifest),
            device_type: Some(target.device_type),
            chip: Some(target.chip),
        }
    }

    /// Bytes of the `.ota` file accepted so far: where a resumed download continues.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Size of the whole file: for an image, from the manifest; for a delta, once its
    /// two headers are verified (the manifest does not list deltas).
    pub fn file_size(&self) -> Option<u64> {
        match &self.source {
            Source::Full(_) => Some(u64::from(self.manifest.manifest().image_file_size)),
            Source::Delta(v, _) => {
                let (delta, target) = (v.delta_header()?, v.target_header()?);
                Some(
                    delta.header_len() as u64
                        + target.header_len() as u64
                        + u64::from(delta.info.payload_size),
                )
            }
        }
    }

    /// Forgets everything received: verifier, decoder and writer start over (the slot
    /// is erased again as it is rewritten).
    pub fn restart(&mut self) {
        self.source = match self.source {
            Source::Full(_) => Source::Full(ImageVerifier::new(
                self.keys,
                Self::expectations(self.manifest, &self.target),
            )),
            Source::Delta(_, base) => {
                Self::delta_source(self.keys, self.manifest, &self.target, base)
            }
        };
        // The decoder is reconfigured when the payload starts again.
        self.mode = Mode::Pending;
        self.writer.reset();
        self.received = 0;
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, flash: &mut F, data: &[u8]) -> Result<(), InstallError> {
        let payload = match &mut self.source {
            Source::Full(v) => v.feed(data)?,
            Source::Delta(v, _) => v.feed(data)?,
        };
        self.received += data.len() as u64;
        if self.mode == Mode::Pending {
            // As soon as the delta header is verified: a stream that cannot fit is not
            // worth its payload's download.
            self.difference_size()?;
        }
        if payload.is_empty() {
            return Ok(());
        }
        if self.mode == Mode::Pending {
            self.start_decoder()?;
        }
        let prefix = self.prefix();
        match self.mode {
            Mode::Stored => self.writer.push(flash, payload),
            Mode::Zstd => {
                let mut io = SlotIo {
                    flash,
                    writer: &mut self.writer,
                    prefix,
                };
                self.decoder.feed(payload, &mut io)?;
                // The ring holds up to 4 KiB not yet written: refuse as soon as the
                // output outgrows the signed size, not a sector later.
                check_output_len(self.decoder.produced(), self.writer.limit)
            }
            // `start_decoder` failed.
            Mode::Pending => Err(InstallError::AlreadyFailed),
        }
    }

    /// Where the decoder finds its prefix: a patch-from delta's base in the running slot;
    /// nothing for a full image or a difference stream.
    fn prefix(&self) -> ota_zstd::Region {
        match (&self.source, self.difference) {
            (Source::Delta(_, base), None) => ota_zstd::Region {
                offset: base.slot.offset,
                len: base.size,
            },
            _ => NO_PREFIX,
        }
    }

    /// The stream size of an encoding-3 delta whose header is verified, once it is known
    /// to fit the slot and to be long enough for the image; `None` for anything else.
    fn difference_size(&self) -> Result<Option<u32>, InstallError> {
        let Source::Delta(v, base) = &self.source else {
            return Ok(None);
        };
        let Some(DeltaEncoding::Difference { stream_size }) =
            v.delta_header().map(|d| d.info.encoding)
        else {
            return Ok(None);
        };
        let slot = self.target.slot.size;
        if stream_size > slot {
            return Err(InstallError::DoesNotFit {
                image: stream_size,
                slot,
            });
        }
        // Pass 2 erases and rewrites 4 KiB sectors one at a time.
        if !CONTROL_ALIGN.is_multiple_of(F::ERASE_SIZE as u32) {
            return Err(InstallError::SlotNotEraseAligned);
        }
        // What `finish` would refuse after the whole download (a stream shorter than
        // the image's diff bytes), refused now.
        let image_size = self.manifest.manifest().image_size;
        DiffPatcher::new(image_size, base.size, stream_size)
            .map_err(|_| InstallError::Decompress(DecompressError::Corrupt))?;
        Ok(Some(stream_size))
    }

    /// Picks the decoder once the verified header says how the payload is encoded.
    fn start_decoder(&mut self) -> Result<(), InstallError> {
        // Set again for every start: after a restart the file may be another one.
        self.difference = self.difference_size()?;
        self.writer.limit = self
            .difference
            .unwrap_or(self.manifest.manifest().image_size);
        let config = match &self.source {
            Source::Full(v) => {
                let header = v.header().ok_or(FormatError::Truncated)?;
                if self.target.generation == Generation::One
                    && matches!(header.info.compression, Compression::ZstdFlashWindow { .. })
                {
                    // What an old agent's ota-format says of a method it does not know.
                    return Err(FormatError::InvalidField(FieldError::Compression).into());
                }
                decoder_config(header.info.compression, self.target.max_window_log, 0)
            }
            // A delta is always zstd, its window within the format's limit for windows
            // in flash: against the base as its prefix (encoding 2), or without one for
            // a difference stream (encoding 3).
            Source::Delta(v, _) => {
                let delta = v.delta_header().ok_or(FormatError::Truncated)?;
                Some(ota_zstd::DecoderConfig {
                    max_window: 1u64 << delta.info.window_log.min(FLASH_WINDOW_MAX_LOG),
                    prefix_len: u64::from(self.prefix().len),
                    skippable_frames: false,
                })
            }
        };
        self.mode = match config {
            None => Mode::Stored,
            Some(config) => {
                self.decoder.reset_with(config);
                Mode::Zstd
            }
        };
        Ok(())
    }

    /// Completes the install: payload digest, complete decompression, flush, for an
    /// encoding-3 delta the difference stream applied in place, then the read-back proof.
    /// Only an `Ok` here may be switched to. ([`Installer::finish_download`] and
    /// [`Finishing`] do the same in steps, for callers that must yield between them.)
    pub fn finish(self, flash: &mut F) -> Result<InstalledImage, InstallError> {
        self.finish_download(flash)?.prove(flash)
    }

    /// The download is complete: checks the payload digest, ends the decompression and
    /// flushes. What remains is in the returned [`Finishing`].
    pub fn finish_download(mut self, flash: &mut F) -> Result<Finishing<'a, F>, InstallError> {
        let prefix = self.prefix();
        let (header, base) = match self.source {
            Source::Full(v) => (v.finish()?.header, None),
            Source::Delta(v, base) => (v.finish()?.target, Some(base)),
        };
        if self.mode == Mode::Zstd {
            let mut io = SlotIo {
                flash: &mut *flash,
                writer: &mut self.writer,
                prefix,
            };
            self.decoder.finish(&mut io)?;
        }
        let image_size = header.info.image_size;
        let decoded = self.difference.unwrap_or(image_size);
        if self.writer.written() != u64::from(decoded) {
            return Err(InstallError::OutputTooShort);
        }
        self.writer.flush(flash)?;
        let in_place = match (self.difference, base) {
            (Some(stream_size), Some(base)) => Some(InPlace {
                patcher: DiffPatcher::new(image_size, base.size, stream_size)
                    .map_err(|_| InstallError::Decompress(DecompressError::Corrupt))?,
                base,
                at: 0,
            }),
            _ => None,
        };
        Ok(Finishing {
            target: self.target,
            decoder: self.decoder,
            header,
            in_place,
            _flash: PhantomData,
        })
    }
}

/// An encoding-3 delta's in-place pass, sector by sector ([`apply_sector`]).
struct InPlace {
    patcher: DiffPatcher,
    base: Base,
    /// Image bytes rewritten so far (a multiple of 4 KiB until the last sector).
    at: u32,
}

/// An install whose download is complete and whose payload checked out: what is left is
/// an encoding-3 delta's in-place pass ([`Finishing::step`], one sector per call) and
/// the read-back proof ([`Finishing::prove`]).
pub struct Finishing<'a, F> {
    target: Target,
    decoder: &'a mut FrameDecoder,
    header: ImageHeader,
    in_place: Option<InPlace>,
    _flash: PhantomData<F>,
}

impl<F: NorFlash> Finishing<'_, F> {
    /// Rewrites the next sector of an encoding-3 delta's image in place; `Ok(true)` when
    /// nothing is left (at once for anything else). Each call takes one sector erase (45
    /// ms typical on the ESP32-C3's flash, 400 ms at most), so a caller that must keep
    /// other work running (a watchdog, a network stack) yields between calls.
    pub fn step(&mut self, flash: &mut F) -> Result<bool, InstallError> {
        let image_size = self.header.info.image_size;
        let Some(pass) = &mut self.in_place else {
            return Ok(true);
        };
        if pass.at < image_size {
            pass.at += apply_sector(
                flash,
                self.target.slot,
                pass,
                image_size,
                self.decoder.scratch(),
            )?;
            return Ok(false);
        }
        let Some(done) = self.in_place.take() else {
            return Ok(true);
        };
        done.patcher
            .finish()
            .map_err(|_| InstallError::Decompress(DecompressError::Corrupt))?;
        Ok(true)
    }

    /// Completes what [`Finishing::step`] has not, then reads the slot back: the proof.
    /// Only an `Ok` here may be switched to.
    pub fn prove(mut self, flash: &mut F) -> Result<InstalledImage, InstallError> {
        while !self.step(flash)? {}
        let header = self.header;
        let slot = read_back_slot(
            flash,
            self.target.slot,
            &header,
            self.target.chip,
            self.decoder.scratch(),
        )?;
        let AcceptedFirmware {
            app_version,
            trusted_keys,
        } = slot.accept(&header)?;
        Ok(InstalledImage {
            slot: VerifiedSlot::new(self.target.slot),
            header,
            app_version,
            trusted_keys,
            signature_sector: slot.signature_sector,
        })
    }
}

/// Reads `header.info.image_size` bytes of `slot` back, once, through [`ContentCheck`]:
/// the same rules a host applies to a decoded payload.
pub fn read_back_slot<F: NorFlash>(
    flash: &mut F,
    slot: Region,
    header: &ImageHeader,
    chip: ChipId,
    buf: &mut [u8],
) -> Result<SlotContents, InstallError> {
    let size = header.info.image_size;
    let mut check = ContentCheck::new(chip, size);
    let mut at = 0u32;
    while at < size {
        let n = (size - at).min(buf.len() as u32) as usize;
        // Reads are rounded up to the read size; only `n` bytes count.
        let len = n.next_multiple_of(F::READ_SIZE.max(1)).min(buf.len());
        flash
            .read(slot.offset + at, &mut buf[..len])
            .map_err(flash_err::<F>)?;
        check.update(&buf[..n])?;
        at += n as u32;
    }
    check.finish(header)
}

#[cfg(test)]
pub(crate) mod tests;
