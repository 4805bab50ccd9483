//! Streaming verification of an `.ota` image: `ImageVerifier` of ota-format in storage
//! the caller provides, fed chunk by chunk as the download arrives.

use core::ffi::c_char;

use ota_format::{ChipId, Compression, DeviceType, Expectations, ImageHeader, ImageVerifier};

use crate::ffi::{self, TAG_IMAGE};
use crate::keys::{self, OtaTrustedKeys};
use crate::manifest::{self, OtaManifest};
use crate::status::{OtaStatus, status_of};
use crate::text::{OTA_DEVICE_TYPE_BUF, OTA_VERSION_BUF, Text, write};

/// Size of `ota_image_verifier_t` in 8-byte words.
pub const OTA_IMAGE_VERIFIER_WORDS: usize = 208;

/// The state of one streaming image verification (`ota_image_verifier_t`): a header
/// buffer (at most 1024 bytes) and a SHA-256 state. Opaque; it may live on the stack.
///
/// Between `ota_image_verifier_init()` and `ota_image_verifier_finish()` it must stay in
/// place (no `memcpy` to elsewhere), as must the keys and manifest given to `init`.
#[repr(C)]
pub struct OtaImageVerifier {
    opaque: [u64; OTA_IMAGE_VERIFIER_WORDS],
}

/// What the image must be, beyond carrying a valid signature (`ota_image_expectations_t`).
#[repr(C)]
pub struct OtaImageExpectations {
    /// The verified manifest that named the image, or NULL. With one, the image header
    /// must be exactly the one the manifest binds and agree with it field by field. An
    /// update always passes the manifest it decided on.
    pub manifest: *const OtaManifest,
    /// The device type the image must be for; an empty string checks none.
    pub device_type: [c_char; OTA_DEVICE_TYPE_BUF],
    /// Non-zero: the image must be for chip `chip`.
    pub has_chip: u8,
    /// See `has_chip`.
    pub chip: u16,
}

/// What a verified image header says (`ota_image_info_t`).
#[repr(C)]
pub struct OtaImageInfo {
    /// Header length: the payload starts at this file offset.
    pub header_len: u32,
    /// Payload size in bytes.
    pub payload_size: u32,
    /// Size of the installed image.
    pub image_size: u32,
    /// ESP-IDF chip id.
    pub chip: u16,
    /// 0: the payload is the installed image. 1: zstd frames that decompress to it. 2: the
    /// same with the window in flash and compressed blocks of at most 8 KiB (agents of
    /// generation 2). This library does not decompress: 1 and 2 are for the Rust agent.
    pub compression: u8,
    /// zstd window log with compression 1 (10..=31) or 2 (10..=25), else 0.
    pub window_log: u8,
    /// Security counter.
    pub security_counter: u64,
    /// Firmware version, e.g. `1.2.3`.
    pub version: [c_char; OTA_VERSION_BUF],
    /// SHA-256 of the installed image.
    pub image_sha256: [u8; 32],
}

type Verifier = ImageVerifier<'static, 'static>;

/// Starts verifying an image with the trusted `keys` and the expectations `expect`
/// (NULL: signature only). `state` needs no preparation and may be reused after
/// `ota_image_verifier_finish()`.
///
/// # Safety
/// `state` points to writable storage for an `ota_image_verifier_t`; `keys` to a parsed
/// `ota_trusted_keys_t`; `expect` is NULL or points to an `ota_image_expectations_t` whose
/// `manifest` is NULL or a verified `ota_manifest_t`. `keys` and that manifest must stay
/// in place and unchanged until the verifier is finished.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_image_verifier_init(
    state: *mut OtaImageVerifier,
    keys: *const OtaTrustedKeys,
    expect: *const OtaImageExpectations,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    status_of(unsafe { init(state, keys, expect) })
}

unsafe fn init(
    state: *mut OtaImageVerifier,
    keys: *const OtaTrustedKeys,
    expect: *const OtaImageExpectations,
) -> Result<(), OtaStatus> {
    if state.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // The 'static lifetimes stand for "until finish": the caller keeps keys and
    // manifest in place that long (the contract above), as C context structs require.
    // SAFETY: forwarded contract.
    let keys = unsafe { keys::trusted(keys) }?;
    let mut expectations = Expectations::default();
    // SAFETY: forwarded contract; NULL means no expectations.
    if let Some(e) = unsafe { expect.as_ref() } {
        if !e.manifest.is_null() {
            // SAFETY: forwarded contract.
            expectations.manifest = Some(unsafe { manifest::verified(e.manifest) }?);
        }
        let device_type = Text::read(&e.device_type)?;
        if !device_type.as_str().is_empty() {
            let t = DeviceType::new(device_type.as_str()).ok_or(OtaStatus::InvalidArgument)?;
            expectations.device_type = Some(t);
        }
        if e.has_chip != 0 {
            expectations.chip = Some(ChipId(e.chip));
        }
    }
    let verifier: Verifier = ImageVerifier::new(keys, expectations);
    // SAFETY: forwarded contract.
    unsafe { ffi::store(state, TAG_IMAGE, verifier) }
}

/// Feeds the next `len` bytes of the `.ota` file. On `OTA_STATUS_OK`,
/// `chunk[*payload_offset .. *payload_offset + *payload_len]` is payload to hand on (for
/// an uncompressed image: to `esp_ota_write`); the bytes before it were header. No
/// payload is handed out before the whole header verified.
///
/// Payload handed out is trustworthy only after `ota_image_verifier_finish()` accepted:
/// write it to the inactive slot only, and switch slots only after `finish`. After an
/// error the verifier stays failed and returns that error again.
///
/// # Safety
/// `state` points to an `ota_image_verifier_t` set up by `init`; `chunk` to `len`
/// readable bytes (NULL allowed when `len` is 0); `payload_offset` and `payload_len` to
/// writable `size_t`s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_image_verifier_update(
    state: *mut OtaImageVerifier,
    chunk: *const u8,
    len: usize,
    payload_offset: *mut usize,
    payload_len: *mut usize,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    status_of(unsafe { update(state, chunk, len, payload_offset, payload_len) })
}

unsafe fn update(
    state: *mut OtaImageVerifier,
    chunk: *const u8,
    len: usize,
    payload_offset: *mut usize,
    payload_len: *mut usize,
) -> Result<(), OtaStatus> {
    if payload_offset.is_null() || payload_len.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: forwarded contract.
    let verifier = unsafe { ffi::load_mut::<Verifier, _>(state, TAG_IMAGE) }?;
    // SAFETY: forwarded contract.
    let data = unsafe { ffi::bytes(chunk, len) }?;
    let payload = verifier.feed(data)?;
    // The payload is always the tail of the chunk: header bytes come first.
    let offset = data
        .len()
        .checked_sub(payload.len())
        .ok_or(OtaStatus::UnknownError)?;
    // SAFETY: forwarded contract (both checked non-null above).
    unsafe { ffi::write_out(payload_offset, offset) }?;
    // SAFETY: as above.
    unsafe { ffi::write_out(payload_len, payload.len()) }
}

/// Copies what the verified header says into `out`, once the whole header has been fed
/// and verified; `OTA_STATUS_TRUNCATED` before that. Use it to refuse a compressed
/// payload before writing a byte of it.
///
/// # Safety
/// `state` points to an `ota_image_verifier_t` set up by `init`; `out` to writable memory
/// for an `ota_image_info_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_image_verifier_header(
    state: *const OtaImageVerifier,
    out: *mut OtaImageInfo,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { ffi::load::<Verifier, _>(state, TAG_IMAGE) }.and_then(|v| {
        let header = v.header().ok_or(OtaStatus::Truncated)?;
        // SAFETY: forwarded contract.
        unsafe { ffi::write_out(out, info_of(header)) }
    });
    status_of(result)
}

/// Completes verification: the whole payload arrived and hashes to its signed digest.
/// Only after `OTA_STATUS_OK` may the device boot what it wrote. `out` (may be NULL)
/// receives the verified header. The verifier is finished whatever the result: a later
/// call with it returns `OTA_STATUS_BAD_STATE` until `init` sets it up again.
///
/// # Safety
/// `state` points to an `ota_image_verifier_t` set up by `init`; `out` is NULL or points
/// to writable memory for an `ota_image_info_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_image_verifier_finish(
    state: *mut OtaImageVerifier,
    out: *mut OtaImageInfo,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { ffi::take::<Verifier, _>(state, TAG_IMAGE) }.and_then(|v| {
        let verified = v.finish()?;
        if out.is_null() {
            return Ok(());
        }
        // SAFETY: forwarded contract; non-null checked above.
        unsafe { ffi::write_out(out, info_of(&verified.header)) }
    });
    status_of(result)
}

fn info_of(header: &ImageHeader) -> OtaImageInfo {
    let info = &header.info;
    let (compression, window_log) = match info.compression {
        Compression::None => (0, 0),
        Compression::Zstd { window_log } => (1, window_log),
        Compression::ZstdFlashWindow { window_log } => (2, window_log),
    };
    OtaImageInfo {
        // At most 1024 (MAX_HEADER_LEN).
        header_len: u32::try_from(header.header_len()).unwrap_or(u32::MAX),
        payload_size: info.payload_size,
        image_size: info.image_size,
        chip: info.chip.0,
        compression,
        window_log,
        security_counter: info.security_counter,
        version: write(info.version),
        image_sha256: info.image_sha256,
    }
}
