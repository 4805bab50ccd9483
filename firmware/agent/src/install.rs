//! Streaming an `.ota` image into the inactive slot, then proving what landed there.
//!
//! ```text
//! network chunks ─▶ ImageVerifier ─▶ (zstd) ─▶ SlotWriter ─▶ inactive slot
//!                   header + digest   window    fixed buffer, erase ahead
//! ```
//! Bytes reach flash before the payload digest is known; that is safe because nothing
//! points at the inactive slot until [`Installer::finish`] has verified the payload
//! digest, read the whole slot back, hashed it against the signed installed-image digest
//! and validated it as an ESP-IDF app image for this chip. `finish` is the only way to
//! obtain an [`InstalledImage`], and [`crate::boot`] switching consumes one.

use core::marker::PhantomData;

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use ota_format::esp::AppImageError;
use ota_format::esp::secure_boot::{SecureBootKeyDigest, SignatureSector};
use ota_format::{
    ChipId, Compression, DeviceType, Expectations, FormatError, ImageHeader, ImageVerifier,
    TrustedKeyDescriptor, TrustedKeys, VerifiedManifest, Version,
};

use crate::boot::VerifiedSlot;
pub use crate::contents::SlotContents;
use crate::contents::{AcceptedFirmware, ContentCheck, check_output_len, decode_window_log};
use crate::geometry::Region;
use crate::zstd::{DecompressError, ZstdStream};

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
    /// The write buffer is empty or not a multiple of the flash's write and read sizes.
    #[error("install buffer unsuitable: write buffer is not a multiple of the write size")]
    WriteBufferMisfit,
    /// The slot does not start on an erase-sector boundary of the flash.
    #[error("install buffer unsuitable: slot is not erase-aligned")]
    SlotNotEraseAligned,
    /// The staging buffer cannot hold a block of the largest window accepted.
    #[error("install buffer unsuitable: staging buffer below the window's block size")]
    StagingTooSmall,
    /// A host asked for a window log above what any agent accepts
    /// ([`crate::zstd::MAX_WINDOW_LOG`]).
    #[error("window log {0} is above what any agent accepts")]
    WindowLogAboveAgents(u8),
    /// An earlier error ended this install; feeding it more bytes cannot resume it.
    #[error("the install already failed")]
    AlreadyFailed,
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
    /// Largest zstd window log the device accepts (its staging buffer is sized for it).
    pub max_window_log: u8,
}

/// Caller-owned memory for one install: nothing else is allocated but ruzstd's window.
pub struct InstallBuffers<'b> {
    /// Compressed input staging: at least [`crate::zstd::staging_len`] of the window log.
    pub staging: &'b mut [u8],
    /// Decompressor output, any size (1 KiB is plenty).
    pub output: &'b mut [u8],
    /// Flash write buffer: a multiple of the flash write size; also used for read-back.
    pub write: &'b mut [u8],
}

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

/// Writes a stream into a slot through a fixed buffer, erasing each sector just before
/// the first write into it (NOR: erase to `0xFF`, writes only clear bits).
struct SlotWriter<'b> {
    slot: Region,
    buf: &'b mut [u8],
    filled: usize,
    flushed: u32,
    erased_to: u32,
    limit: u32,
}

impl<'b> SlotWriter<'b> {
    fn reset(&mut self) {
        self.filled = 0;
        self.flushed = 0;
        // Sectors written before the restart must be erased again.
        self.erased_to = 0;
    }

    fn push<F: NorFlash>(&mut self, flash: &mut F, mut data: &[u8]) -> Result<(), InstallError> {
        let total = self.flushed as u64 + self.filled as u64 + data.len() as u64;
        check_output_len(total, self.limit)?;
        while !data.is_empty() {
            let take = (self.buf.len() - self.filled).min(data.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == self.buf.len() {
                self.flush(flash)?;
            }
        }
        Ok(())
    }

    fn flush<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), InstallError> {
        if self.filled == 0 {
            return Ok(());
        }
        // Pad the tail to the write size with the erased value.
        let len = self.filled.next_multiple_of(F::WRITE_SIZE);
        self.buf[self.filled..len].fill(0xFF);
        let end = self.flushed + len as u32;
        let erase = F::ERASE_SIZE as u32;
        while self.erased_to < end {
            let at = self.slot.offset + self.erased_to;
            flash.erase(at, at + erase).map_err(flash_err::<F>)?;
            self.erased_to += erase;
        }
        flash
            .write(self.slot.offset + self.flushed, &self.buf[..len])
            .map_err(flash_err::<F>)?;
        self.flushed = end;
        self.filled = 0;
        Ok(())
    }
}

fn flash_err<F: NorFlash>(e: F::Error) -> InstallError {
    InstallError::Flash(e.kind())
}

enum Decoder<'b> {
    /// Header not verified yet; the buffers wait here.
    Pending(&'b mut [u8], &'b mut [u8]),
    Stored,
    Zstd(ZstdStream<'b>),
    /// Transient, while moving buffers between states.
    Empty,
}

/// One install in progress. Feed it the `.ota` file from its first byte; after a 200
/// answer to a resumed request call [`Installer::restart`] and feed from zero again.
pub struct Installer<'a, F> {
    keys: TrustedKeys<'a>,
    manifest: &'a VerifiedManifest,
    target: Target,
    verifier: ImageVerifier<'a, 'a>,
    decoder: Decoder<'a>,
    writer: SlotWriter<'a>,
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
        let w = buffers.write.len();
        if F::WRITE_SIZE == 0
            || w == 0
            || !w.is_multiple_of(F::WRITE_SIZE)
            || !w.is_multiple_of(F::READ_SIZE.max(1))
        {
            return Err(InstallError::WriteBufferMisfit);
        }
        if F::ERASE_SIZE == 0 || !target.slot.offset.is_multiple_of(F::ERASE_SIZE as u32) {
            return Err(InstallError::SlotNotEraseAligned);
        }
        if buffers.staging.len() < crate::zstd::staging_len(target.max_window_log) {
            return Err(InstallError::StagingTooSmall);
        }
        Ok(Installer {
            keys,
            manifest,
            target,
            verifier: ImageVerifier::new(keys, Self::expectations(manifest, &target)),
            decoder: Decoder::Pending(buffers.staging, buffers.output),
            writer: SlotWriter {
                slot: target.slot,
                buf: buffers.write,
                filled: 0,
                flushed: 0,
                erased_to: 0,
                limit: m.image_size,
            },
            received: 0,
            _flash: PhantomData,
        })
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

    /// Size of the whole `.ota` file, from the manifest.
    pub fn file_size(&self) -> u64 {
        u64::from(self.manifest.manifest().image_file_size)
    }

    /// Forgets everything received: verifier, decoder and writer start over (the slot
    /// is erased again as it is rewritten).
    pub fn restart(&mut self) {
        self.verifier =
            ImageVerifier::new(self.keys, Self::expectations(self.manifest, &self.target));
        if let Decoder::Zstd(z) = &mut self.decoder {
            z.reset();
        }
        self.writer.reset();
        self.received = 0;
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, flash: &mut F, data: &[u8]) -> Result<(), InstallError> {
        let payload = self.verifier.feed(data)?;
        self.received += data.len() as u64;
        if payload.is_empty() {
            return Ok(());
        }
        if matches!(self.decoder, Decoder::Pending(..)) {
            self.start_decoder()?;
        }
        let writer = &mut self.writer;
        match &mut self.decoder {
            Decoder::Stored => writer.push(flash, payload),
            Decoder::Zstd(z) => z.feed(payload, &mut |out: &[u8]| writer.push(flash, out)),
            // `start_decoder` failed and left no decoder.
            Decoder::Pending(..) | Decoder::Empty => Err(InstallError::AlreadyFailed),
        }
    }

    /// Picks the decoder once the verified header says how the payload is encoded.
    fn start_decoder(&mut self) -> Result<(), InstallError> {
        let header = self.verifier.header().ok_or(FormatError::Truncated)?;
        let compression = header.info.compression;
        let Decoder::Pending(staging, output) =
            core::mem::replace(&mut self.decoder, Decoder::Empty)
        else {
            return Ok(());
        };
        self.decoder = match compression {
            Compression::None => Decoder::Stored,
            Compression::Zstd { window_log } => {
                let log = decode_window_log(window_log, self.target.max_window_log);
                Decoder::Zstd(ZstdStream::new(log, staging, output)?)
            }
            Compression::ZstdFlashWindow { .. } => {
                return Err(DecompressError::UnsupportedMethod.into());
            }
        };
        Ok(())
    }

    /// Completes the install: payload digest, complete decompression, flush, then the
    /// read-back proof. Only an `Ok` here may be switched to.
    pub fn finish(mut self, flash: &mut F) -> Result<InstalledImage, InstallError> {
        let verified = self.verifier.finish()?;
        if let Decoder::Zstd(z) = &self.decoder {
            z.finish()?;
        }
        let written = self.writer.flushed as u64 + self.writer.filled as u64;
        if written != u64::from(verified.header.info.image_size) {
            return Err(InstallError::OutputTooShort);
        }
        self.writer.flush(flash)?;
        let slot = read_back_slot(
            flash,
            self.target.slot,
            &verified.header,
            self.target.chip,
            self.writer.buf,
        )?;
        let AcceptedFirmware {
            app_version,
            trusted_keys,
        } = slot.accept(&verified.header)?;
        Ok(InstalledImage {
            slot: VerifiedSlot::new(self.target.slot),
            header: verified.header,
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
