//! The install pipeline as the device runs it, with `minstret` read between its stages.
//!
//! Full image: the `.ota` arrives in [`CHUNK`]-byte pieces; [`ImageVerifier`] checks the
//! header (Ed25519) before any payload byte passes, hashes the payload and hands it to the
//! zstd decoder, which writes the inactive slot through [`NorFlashOutput`] (erasing each
//! sector as the output enters it, reading older output back as its window). Then the
//! payload digest is checked and the slot is read back and hashed against the header's
//! image digest: nothing may boot the slot before that.
//!
//! Delta: the running slot holds the base; its digest is checked, then the frame is
//! decoded with the base as raw prefix (the history reads it from the running slot) into
//! the inactive slot, which is read back and hashed.
//!
//! Difference delta (encoding 3), as the agent installs one: the running slot's digest is
//! checked; pass 1 decodes the frame (no prefix) into the inactive slot exactly as a full
//! image's payload is decoded, leaving the difference stream there; pass 2 turns it into
//! the image in place, one 4 KiB sector at a time: [`DiffPatcher`] fills the decoder's
//! block buffer (free once decoding is done) from the sector's diff bytes, the running
//! slot and the control records, then the sector is erased and rewritten. Then the slot
//! is read back and hashed.

use core::fmt;

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use ota_format::diff::{
    CONTROL_ALIGN, DiffCorruption, DiffError, DiffPatcher, DiffSource, control_offset,
};
use ota_format::{
    ChipId, Compression, Expectations, FLASH_WINDOW_MAX_LOG, FormatError, ImageVerifier,
    TrustedKey, TrustedKeys, inspect_header,
};
use ota_zstd::{DEFAULT_MAX_WINDOW, DecodeError, Decoder, DecoderConfig, NorFlashOutput, Region};
use sha2::{Digest, Sha256};

use crate::flash::{FlashError, FlashMeter, RamFlash};
use crate::input::{Delta, Input};
use crate::rt::instret;

/// The decoder the agent will run: a 4 KiB ring (one flash sector), 8 KiB compressed blocks.
pub type InstallDecoder = Decoder<4096, 8192>;
/// The download piece: what one network read hands the pipeline.
pub const CHUNK: usize = 1024;
/// Bytes read from flash per step when hashing a slot back.
pub const READBACK: usize = 256;
/// Where the running slot (a delta's base) starts in the simulated flash.
const RUNNING_SLOT: u32 = 0;
/// Where the inactive slot (the install's target) starts.
const TARGET_SLOT: u32 = 4 << 20;
const SLOT_LEN: u32 = 4 << 20;

/// Why an install failed.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// The input file is unusable.
    Input(&'static str),
    /// The image was refused (signature, digest, header).
    Format(FormatError),
    /// The payload does not decode.
    Decode(DecodeError),
    /// The simulated flash refused an operation.
    Flash(FlashError),
    /// The payload is not zstd-compressed.
    NotZstd,
    /// The installed length differs from the header's.
    SizeMismatch,
    /// The running slot does not hold the base the delta was made against.
    WrongBase,
    /// The delta's output does not hash to its target digest.
    WrongOutput,
    /// The difference stream is malformed.
    Diff(DiffCorruption),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input(why) => f.write_str(why),
            Failure::Format(e) => write!(f, "image refused: {e}"),
            Failure::Decode(e) => write!(f, "zstd decode failed: {e}"),
            Failure::Flash(e) => write!(f, "flash refused an operation: {e:?}"),
            Failure::NotZstd => f.write_str("the payload is not zstd-compressed"),
            Failure::SizeMismatch => f.write_str("installed size differs from the header's"),
            Failure::WrongBase => f.write_str("the running slot is not the delta's base"),
            Failure::WrongOutput => f.write_str("the delta's output has the wrong digest"),
            Failure::Diff(e) => write!(f, "difference stream refused: {e}"),
        }
    }
}

impl From<FormatError> for Failure {
    fn from(e: FormatError) -> Self {
        Failure::Format(e)
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Self {
        Failure::Decode(e)
    }
}

impl From<FlashError> for Failure {
    fn from(e: FlashError) -> Self {
        Failure::Flash(e)
    }
}

impl From<DiffCorruption> for Failure {
    fn from(e: DiffCorruption) -> Self {
        Failure::Diff(e)
    }
}

impl From<DiffError<FlashError>> for Failure {
    fn from(e: DiffError<FlashError>) -> Self {
        match e {
            DiffError::Corrupt(e) => Failure::Diff(e),
            DiffError::Source(e) => Failure::Flash(e),
        }
    }
}

/// Retired instructions per stage of one install.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    /// Bytes fed to the decoder (compressed payload or delta frame).
    pub fed: u32,
    /// Bytes the decoder wrote: the image, or a difference delta's stream.
    pub decoded: u32,
    /// Bytes written to the target slot.
    pub installed: u32,
    /// Header check: parsing, its SHA-256 and the Ed25519 signature (full image only).
    pub header: u64,
    /// SHA-256 of the payload as it streams (full image only).
    pub payload_sha: u64,
    /// zstd decoding, including the flash erases, programs and history reads it causes.
    pub decode: u64,
    /// Of `decode`: the simulated flash driver's share (only when metered).
    pub flash: FlashMeter,
    /// A difference delta's pass 2: the stream applied in place (patcher, erases, writes).
    pub patch: u64,
    /// Of `patch`: the simulated flash driver's share (only when metered).
    pub patch_flash: FlashMeter,
    /// Slots read back and hashed: the target (and for a delta, the base first).
    pub readback: u64,
    /// Everything from the first byte to the accepted install.
    pub total: u64,
}

/// Runs the install `input` describes into `flash`; with `meter`, the flash driver's own
/// instructions during decoding are counted too (which costs a few per flash call).
pub fn install(
    input: &Input<'_>,
    flash: &mut RamFlash,
    keys: &[TrustedKey],
    meter: bool,
) -> Result<Cost, Failure> {
    match input {
        Input::Full { ota } => full(ota, flash, keys, meter),
        Input::Delta(delta) => delta_install(delta, flash, meter),
        Input::Difference { delta, stream_size } => {
            difference_install(delta, *stream_size, flash, meter)
        }
    }
}

/// Stage timer: each `lap` returns the instructions since the previous one.
struct Laps(u64);

impl Laps {
    fn start() -> Self {
        Laps(instret())
    }

    fn lap(&mut self) -> u64 {
        let now = instret();
        let spent = now - self.0;
        self.0 = now;
        spent
    }
}

// Not inlined (nor the delta's): each path's frame holds only its own state.
#[inline(never)]
fn full(
    ota: &[u8],
    flash: &mut RamFlash,
    keys: &[TrustedKey],
    meter: bool,
) -> Result<Cost, Failure> {
    // Unverified look at where the header ends, so its check is timed apart from the
    // payload's; the verifier below decides everything.
    let (_, header_len) = inspect_header(ota)?;
    let (header, payload) = ota.split_at(header_len);
    let mut cost = Cost::default();
    let start = instret();
    let mut verifier = ImageVerifier::new(
        TrustedKeys::new(keys),
        Expectations {
            chip: Some(ChipId::ESP32C3),
            ..Expectations::default()
        },
    );
    let window_log = check_header(&mut verifier, header)?;
    cost.header = instret() - start;

    let installed = decode_payload(&mut verifier, payload, window_log, flash, meter, &mut cost)?;
    let mut laps = Laps::start();
    let verified = verifier.finish()?;
    cost.payload_sha += laps.lap();
    if installed != u64::from(verified.header.info.image_size) {
        return Err(Failure::SizeMismatch);
    }
    cost.installed = verified.header.info.image_size;
    let digest = slot_sha256(flash, TARGET_SLOT, cost.installed)?;
    verified.header.check_installed_digest(&digest)?;
    cost.readback = laps.lap();
    cost.total = instret() - start;
    Ok(cost)
}

/// The header's signature and fields; returns the payload's window log. Its own frame, so
/// that the signature check's stack is not stacked on the decoder's (which comes after).
#[inline(never)]
fn check_header(verifier: &mut ImageVerifier<'_, '_>, header: &[u8]) -> Result<u8, Failure> {
    if !verifier.feed(header)?.is_empty() {
        return Err(Failure::Input("header length disagrees with the verifier"));
    }
    match verifier
        .header()
        .ok_or(FormatError::Truncated)?
        .info
        .compression
    {
        // Method 1 and 2 differ only in the limits a device checks (the decoder is the
        // same); the measured input is method 2, the flash-window default.
        Compression::ZstdFlashWindow { window_log } | Compression::Zstd { window_log } => {
            Ok(window_log)
        }
        Compression::None => Err(Failure::NotZstd),
    }
}

/// Streams the payload through the verifier's hash and the decoder into the target slot;
/// returns the installed length.
#[inline(never)]
fn decode_payload(
    verifier: &mut ImageVerifier<'_, '_>,
    payload: &[u8],
    window_log: u8,
    flash: &mut RamFlash,
    meter: bool,
    cost: &mut Cost,
) -> Result<u64, Failure> {
    let mut decoder = InstallDecoder::new(DecoderConfig {
        max_window: 1 << window_log,
        prefix_len: 0,
        // As the agent configures it: `.ota` payloads hold data frames only.
        skippable_frames: false,
    });
    decode_into_slot(&mut decoder, Some(verifier), payload, flash, meter, cost)
}

/// The decoding both a full image and a difference delta's pass 1 run: `payload` in
/// [`CHUNK`]-byte pieces (each through the verifier's hash first, when there is one) into
/// `decoder`, which writes the target slot with no prefix; returns the decoded length.
/// Inlined: a frame of its own would add to the full image's stack high-water mark.
#[inline(always)]
fn decode_into_slot(
    decoder: &mut InstallDecoder,
    mut verifier: Option<&mut ImageVerifier<'_, '_>>,
    payload: &[u8],
    flash: &mut RamFlash,
    meter: bool,
    cost: &mut Cost,
) -> Result<u64, Failure> {
    let mut laps = Laps::start();
    flash.set_metering(meter);
    let mut slot = NorFlashOutput::new(&mut *flash, NO_PREFIX, target());
    for chunk in payload.chunks(CHUNK) {
        let payload = match verifier.as_deref_mut() {
            Some(verifier) => {
                let payload = verifier.feed(chunk)?;
                cost.payload_sha += laps.lap();
                payload
            }
            None => chunk,
        };
        decoder.feed(payload, &mut slot)?;
        cost.fed += payload.len() as u32;
        cost.decode += laps.lap();
    }
    let decoded = decoder.finish(&mut slot)?;
    cost.flash = flash.set_metering(false);
    cost.decode += laps.lap();
    cost.decoded = u32::try_from(decoded).map_err(|_| Failure::SizeMismatch)?;
    Ok(decoded)
}

#[inline(never)]
fn delta_install(delta: &Delta<'_>, flash: &mut RamFlash, meter: bool) -> Result<Cost, Failure> {
    let base_len = install_base(delta, flash)?;

    let mut cost = Cost::default();
    let start = instret();
    let mut laps = Laps::start();
    if slot_sha256(flash, RUNNING_SLOT, base_len)? != delta.base_sha256 {
        return Err(Failure::WrongBase);
    }
    cost.readback = laps.lap();

    let mut decoder = InstallDecoder::new(DecoderConfig {
        max_window: DEFAULT_MAX_WINDOW,
        prefix_len: u64::from(base_len),
        skippable_frames: false,
    });
    let base = Region {
        offset: RUNNING_SLOT,
        len: base_len,
    };
    flash.set_metering(meter);
    let mut slot = NorFlashOutput::new(&mut *flash, base, target());
    for chunk in delta.frame.chunks(CHUNK) {
        decoder.feed(chunk, &mut slot)?;
    }
    let installed = decoder.finish(&mut slot)?;
    cost.flash = flash.set_metering(false);
    cost.fed = delta.frame.len() as u32;
    cost.decoded = u32::try_from(installed).map_err(|_| Failure::SizeMismatch)?;
    cost.decode = laps.lap();

    if installed != u64::from(delta.target_len) {
        return Err(Failure::SizeMismatch);
    }
    cost.installed = delta.target_len;
    if slot_sha256(flash, TARGET_SLOT, cost.installed)? != delta.target_sha256 {
        return Err(Failure::WrongOutput);
    }
    cost.readback += laps.lap();
    cost.total = instret() - start;
    Ok(cost)
}

/// Puts a delta's base in the running slot (before metering: the device already runs it);
/// returns its length.
fn install_base(delta: &Delta<'_>, flash: &mut RamFlash) -> Result<u32, Failure> {
    let base_len = u32::try_from(delta.base.len())
        .ok()
        .filter(|&len| len <= SLOT_LEN)
        .ok_or(Failure::Input("base larger than a slot"))?;
    write_running_slot(flash, delta.base)?;
    Ok(base_len)
}

/// A difference delta (encoding 3): the running slot's digest, pass 1 (the stream decoded
/// into the target slot), pass 2 ([`apply_difference`]), then the target read back.
#[inline(never)]
fn difference_install(
    delta: &Delta<'_>,
    stream_size: u32,
    flash: &mut RamFlash,
    meter: bool,
) -> Result<Cost, Failure> {
    if stream_size > SLOT_LEN {
        return Err(Failure::Input("difference stream larger than a slot"));
    }
    let base_len = install_base(delta, flash)?;

    let mut cost = Cost::default();
    let start = instret();
    let mut laps = Laps::start();
    if slot_sha256(flash, RUNNING_SLOT, base_len)? != delta.base_sha256 {
        return Err(Failure::WrongBase);
    }
    // As the agent refuses it at the delta header: a stream too short for the image.
    let patcher = DiffPatcher::new(delta.target_len, base_len, stream_size)?;
    cost.readback = laps.lap();

    // The window the agent allows a delta whose frames decode without a prefix.
    let mut decoder = InstallDecoder::new(DecoderConfig {
        max_window: 1 << FLASH_WINDOW_MAX_LOG,
        prefix_len: 0,
        skippable_frames: false,
    });
    let decoded = decode_into_slot(&mut decoder, None, delta.frame, flash, meter, &mut cost)?;
    if decoded != u64::from(stream_size) {
        return Err(Failure::SizeMismatch);
    }
    // Pass 1 is in `cost.decode` already (decode_into_slot's own laps).
    laps.lap();

    flash.set_metering(meter);
    let applied = apply_difference(patcher, flash, delta.target_len, decoder.scratch());
    cost.patch_flash = flash.set_metering(false);
    applied?;
    cost.patch = laps.lap();

    cost.installed = delta.target_len;
    if slot_sha256(flash, TARGET_SLOT, cost.installed)? != delta.target_sha256 {
        return Err(Failure::WrongOutput);
    }
    cost.readback += laps.lap();
    cost.total = instret() - start;
    Ok(cost)
}

/// What pass 2 reads: diff bytes and control records from the target slot pass 1 wrote,
/// base bytes from the running slot (the patcher keeps them inside the base, which is at
/// most a slot long).
struct SlotDiff<'f> {
    flash: &'f mut RamFlash,
    /// Flash address of the control records.
    control: u32,
}

impl DiffSource for SlotDiff<'_> {
    type Error = FlashError;

    fn diff(&mut self, position: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(TARGET_SLOT + position, buf)
    }

    fn base(&mut self, position: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(RUNNING_SLOT + position, buf)
    }

    fn control(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(self.control + offset, buf)
    }
}

/// Pass 2, as the agent's `apply_sector` (sector after sector): each 4 KiB sector of the image is computed
/// into `buf` (the decoder's block buffer), then erased and rewritten. The patcher has read
/// the sector's diff bytes by then (it reads at most 7 ahead, into the next sector), and
/// the control records start past the last sector rewritten.
fn apply_difference(
    mut patcher: DiffPatcher,
    flash: &mut RamFlash,
    image_size: u32,
    buf: &mut [u8],
) -> Result<(), Failure> {
    let mut source = SlotDiff {
        flash,
        control: TARGET_SLOT + control_offset(image_size),
    };
    let mut at = 0u32;
    while at < image_size {
        let n = (image_size - at).min(CONTROL_ALIGN) as usize;
        // The last piece padded to the write size with the erased value, as the agent's.
        let sector = buf
            .get_mut(..n.next_multiple_of(RamFlash::WRITE_SIZE))
            .ok_or(Failure::Input("the sector buffer is smaller than a sector"))?;
        patcher.fill(&mut source, &mut sector[..n])?;
        sector[n..].fill(0xFF);
        let address = TARGET_SLOT + at;
        source.flash.erase(address, address + CONTROL_ALIGN)?;
        source.flash.write(address, sector)?;
        at += n as u32;
    }
    Ok(patcher.finish()?)
}

const NO_PREFIX: Region = Region { offset: 0, len: 0 };

fn target() -> Region {
    Region {
        offset: TARGET_SLOT,
        len: SLOT_LEN,
    }
}

/// Puts the base image into the running slot (set-up, not timed).
fn write_running_slot(flash: &mut RamFlash, base: &[u8]) -> Result<(), FlashError> {
    let sector = RamFlash::ERASE_SIZE;
    flash.erase(RUNNING_SLOT, (base.len().div_ceil(sector) * sector) as u32)?;
    let whole = base.len() / RamFlash::WRITE_SIZE * RamFlash::WRITE_SIZE;
    flash.write(RUNNING_SLOT, &base[..whole])?;
    if whole < base.len() {
        let mut tail = [0xFF; RamFlash::WRITE_SIZE];
        tail[..base.len() - whole].copy_from_slice(&base[whole..]);
        flash.write(RUNNING_SLOT + whole as u32, &tail)?;
    }
    Ok(())
}

/// SHA-256 of `len` bytes of flash from `offset`, read as the agent reads a slot back.
fn slot_sha256(flash: &mut RamFlash, offset: u32, len: u32) -> Result<[u8; 32], FlashError> {
    let mut hash = Sha256::new();
    let mut buf = [0u8; READBACK];
    let mut done = 0u32;
    while done < len {
        let take = (len - done).min(READBACK as u32) as usize;
        flash.read(offset + done, &mut buf[..take])?;
        hash.update(&buf[..take]);
        done += take as u32;
    }
    Ok(hash.finalize().into())
}
