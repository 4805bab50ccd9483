//! The keys a firmware trusts, read from its trusted-key descriptor.

use ota_format::{TrustedKeyDescriptor, TrustedKeys};

use crate::ffi::{self, TAG_KEYS};
use crate::status::{OtaStatus, status_of};

/// Size of `ota_trusted_keys_t` in 8-byte words.
pub const OTA_TRUSTED_KEYS_WORDS: usize = 36;

/// The trusted keys of a firmware (`ota_trusted_keys_t`): fill it with
/// `ota_trusted_keys_parse()` from the descriptor `ota-sign pubkey --format c` printed.
/// Opaque: its bytes are not part of the API.
///
/// A manifest and an image verifier made with it keep a pointer to it: it must stay in
/// place, unchanged, as long as they are used (a `static` is the natural home).
#[repr(C)]
pub struct OtaTrustedKeys {
    opaque: [u64; OTA_TRUSTED_KEYS_WORDS],
}

/// The descriptor behind a C `ota_trusted_keys_t`.
///
/// # Safety
/// As [`ffi::load`].
pub(crate) unsafe fn descriptor<'a>(
    keys: *const OtaTrustedKeys,
) -> Result<&'a TrustedKeyDescriptor, OtaStatus> {
    // SAFETY: forwarded contract.
    unsafe { ffi::load::<TrustedKeyDescriptor, _>(keys, TAG_KEYS) }
}

/// The key set ota-format verifies with.
///
/// # Safety
/// As [`ffi::load`].
pub(crate) unsafe fn trusted<'a>(
    keys: *const OtaTrustedKeys,
) -> Result<TrustedKeys<'a>, OtaStatus> {
    // SAFETY: forwarded contract.
    let desc = unsafe { descriptor(keys) }?;
    Ok(TrustedKeys::new(desc.keys()))
}

/// Reads the trusted-key descriptor at `descriptor[0..len]` (at least
/// `OTA_DESCRIPTOR_LEN` bytes; bytes after the descriptor are ignored) into `out`.
///
/// Returns `OTA_STATUS_OK`, or the descriptor rule it breaks (`TRUNCATED`, `BAD_MAGIC`,
/// `UNSUPPORTED_VERSION`, `BAD_DESCRIPTOR`); `out` is usable only after `OTA_STATUS_OK`.
///
/// # Safety
/// `out` points to writable storage for an `ota_trusted_keys_t`; `descriptor` to `len`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_trusted_keys_parse(
    out: *mut OtaTrustedKeys,
    descriptor: *const u8,
    len: usize,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { parse(out, descriptor, len) };
    status_of(result)
}

unsafe fn parse(
    out: *mut OtaTrustedKeys,
    descriptor: *const u8,
    len: usize,
) -> Result<(), OtaStatus> {
    if out.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { ffi::bytes(descriptor, len) }?;
    let desc = TrustedKeyDescriptor::parse(bytes)?;
    // SAFETY: forwarded contract.
    unsafe { ffi::store(out, TAG_KEYS, desc) }
}

/// Finds the trusted-key descriptor inside a firmware file (an ELF or an app image, in
/// `firmware[0..len]`) as `ota-sign package` does, and reads it into `out`.
///
/// `*found` is set to 1 when a descriptor was found (then `out` holds it), 0 when the
/// firmware has none. Returns `OTA_STATUS_AMBIGUOUS_DESCRIPTOR` when it holds two
/// different ones.
///
/// # Safety
/// `out` points to writable storage for an `ota_trusted_keys_t`, `found` to a writable
/// byte, `firmware` to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_trusted_keys_find(
    out: *mut OtaTrustedKeys,
    found: *mut u8,
    firmware: *const u8,
    len: usize,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { find(out, found, firmware, len) };
    status_of(result)
}

unsafe fn find(
    out: *mut OtaTrustedKeys,
    found: *mut u8,
    firmware: *const u8,
    len: usize,
) -> Result<(), OtaStatus> {
    if out.is_null() || found.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { ffi::bytes(firmware, len) }?;
    let desc = TrustedKeyDescriptor::find_in(bytes)?;
    // SAFETY: forwarded contract (`found` checked non-null above).
    unsafe { ffi::write_out(found, u8::from(desc.is_some())) }?;
    match desc {
        // SAFETY: forwarded contract.
        Some(desc) => unsafe { ffi::store(out, TAG_KEYS, desc) },
        None => Ok(()),
    }
}

/// How many keys `keys` holds (1 to 8); 0 when `keys` is NULL or not parsed.
///
/// # Safety
/// `keys` is NULL or points to an `ota_trusted_keys_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_trusted_keys_count(keys: *const OtaTrustedKeys) -> usize {
    // SAFETY: forwarded contract.
    unsafe { descriptor(keys) }.map_or(0, |d| d.keys().len())
}

/// Copies key number `index` (0-based, in descriptor slot order) as its 32 raw Ed25519
/// bytes to `out`. `OTA_STATUS_INVALID_ARGUMENT` when `index` is not below the count.
///
/// # Safety
/// `keys` points to an `ota_trusted_keys_t`; `out` to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_trusted_keys_get(
    keys: *const OtaTrustedKeys,
    index: usize,
    out: *mut u8,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { descriptor(keys) }.and_then(|d| {
        let key = d.keys().get(index).ok_or(OtaStatus::InvalidArgument)?;
        // SAFETY: forwarded contract.
        unsafe { ffi::write_out(out.cast::<[u8; 32]>(), key.public_key) }
    });
    status_of(result)
}
