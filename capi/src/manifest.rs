//! Release manifests: verification against the trusted keys, what they say, and the
//! device's decision on them (`VerifiedManifest::decide`, docs/FORMAT.md "The device's
//! decision").

use core::ffi::c_char;

use ota_format::{
    Channel, ChipId, Decision, Device, DeviceType, Manifest, VerifiedManifest, Version,
};

use crate::ffi::{self, TAG_MANIFEST};
use crate::keys::{self, OtaTrustedKeys};
use crate::status::{OtaStatus, status_of};
use crate::text::{
    OTA_CHANNEL_BUF, OTA_DEVICE_TYPE_BUF, OTA_IMAGE_NAME_BUF, OTA_VERSION_BUF, Text, write,
};

/// Size of `ota_manifest_t` in 8-byte words.
pub const OTA_MANIFEST_WORDS: usize = 48;

/// A manifest whose signature verified against a trusted key (`ota_manifest_t`). Only
/// `ota_manifest_verify()` fills one, so holding one proves the check happened. Opaque.
///
/// An image verifier made with it keeps a pointer to it: it must stay in place,
/// unchanged, until that verifier is finished.
#[repr(C)]
pub struct OtaManifest {
    opaque: [u64; OTA_MANIFEST_WORDS],
}

/// What a verified manifest says (`ota_manifest_info_t`). Text fields are NUL-terminated.
#[repr(C)]
pub struct OtaManifestInfo {
    /// Device type of the release.
    pub device_type: [c_char; OTA_DEVICE_TYPE_BUF],
    /// Channel this manifest heads.
    pub channel: [c_char; OTA_CHANNEL_BUF],
    /// Version of the image, e.g. `1.2.3-rc.1`.
    pub version: [c_char; OTA_VERSION_BUF],
    /// File name of the image, relative to the manifest's own URL.
    pub image_name: [c_char; OTA_IMAGE_NAME_BUF],
    /// ESP-IDF chip id (`esp_chip_id_t`).
    pub chip: u16,
    /// Share of the fleet that installs, in basis points (10000 = every device).
    pub rollout: u16,
    /// Size of the `.ota` file (header and payload): what the download must total.
    pub image_file_size: u32,
    /// Size of the installed image.
    pub image_size: u32,
    /// Security counter of the image: store it after a successful installation.
    pub security_counter: u64,
    /// Sequence number: store it after a successful installation.
    pub sequence: u64,
    /// Not-after time, Unix seconds; 0 when the manifest does not expire.
    pub not_after: u64,
    /// SHA-256 of the image's signed header.
    pub image_header_sha256: [u8; 32],
}

/// What the device knows about itself when it decides (`ota_device_t`). Every field is
/// read; text fields are NUL-terminated within their array.
#[repr(C)]
pub struct OtaDevice {
    /// The device's type, e.g. `"thermostat"`.
    pub device_type: [c_char; OTA_DEVICE_TYPE_BUF],
    /// The channel it follows, e.g. `"stable"`.
    pub channel: [c_char; OTA_CHANNEL_BUF],
    /// The version it runs, as semver text (`esp_app_get_description()->version`).
    pub running_version: [c_char; OTA_VERSION_BUF],
    /// Its ESP-IDF chip id (`esp_chip_id_t`; ESP32-C3 is 5).
    pub chip: u16,
    /// Non-zero when `last_sequence` holds the highest manifest sequence accepted on this
    /// channel; 0 when none was accepted yet.
    pub has_last_sequence: u8,
    /// Non-zero when `now` is a trustworthy current time; 0 skips the expiry check.
    pub has_now: u8,
    /// The highest security counter it accepted.
    pub security_counter: u64,
    /// See `has_last_sequence`.
    pub last_sequence: u64,
    /// Current Unix time in seconds; see `has_now`.
    pub now: u64,
    /// A stable id for the rollout bucket (e.g. the 6-byte MAC); may be NULL when
    /// `device_id_len` is 0.
    pub device_id: *const u8,
    /// Length of `device_id`.
    pub device_id_len: usize,
    /// Size of the update slot in bytes.
    pub slot_size: u32,
}

/// What to do about a manifest that passed every check.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OtaDecisionKind {
    /// The manifest names the version already running: nothing to do.
    UpToDate = 0,
    /// A newer release exists but this device is outside its staged rollout for now.
    NotInRollout = 1,
    /// Download, verify and install the image.
    Install = 2,
}

/// The decision (`ota_decision_t`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OtaDecision {
    /// What to do.
    pub kind: OtaDecisionKind,
    /// With `NOT_IN_ROLLOUT`: this device's bucket for the image, 0..10000.
    pub bucket: u16,
    /// With `NOT_IN_ROLLOUT`: the rollout threshold in basis points.
    pub rollout: u16,
}

/// The verified manifest behind a C `ota_manifest_t`.
///
/// # Safety
/// As [`ffi::load`].
pub(crate) unsafe fn verified<'a>(
    m: *const OtaManifest,
) -> Result<&'a VerifiedManifest, OtaStatus> {
    // SAFETY: forwarded contract.
    unsafe { ffi::load::<VerifiedManifest, _>(m, TAG_MANIFEST) }
}

/// Verifies the complete manifest `manifest[0..len]` (exactly the downloaded file) with
/// the trusted `keys` and, on success, fills `out`. Runs every check of docs/FORMAT.md
/// "Manifest validation" in order and returns the first that fails.
///
/// # Safety
/// `keys` points to a parsed `ota_trusted_keys_t`; `manifest` to `len` readable bytes;
/// `out` to writable storage for an `ota_manifest_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_manifest_verify(
    keys: *const OtaTrustedKeys,
    manifest: *const u8,
    len: usize,
    out: *mut OtaManifest,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    status_of(unsafe { verify(keys, manifest, len, out) })
}

unsafe fn verify(
    keys: *const OtaTrustedKeys,
    manifest: *const u8,
    len: usize,
    out: *mut OtaManifest,
) -> Result<(), OtaStatus> {
    if out.is_null() {
        return Err(OtaStatus::NullArgument);
    }
    // SAFETY: forwarded contract.
    let keys = unsafe { keys::trusted(keys) }?;
    // SAFETY: forwarded contract.
    let bytes = unsafe { ffi::bytes(manifest, len) }?;
    let verified = Manifest::verify(bytes, &keys)?;
    // SAFETY: forwarded contract.
    unsafe { ffi::store(out, TAG_MANIFEST, verified) }
}

/// Copies what the verified manifest `manifest` says into `out`.
///
/// # Safety
/// `manifest` points to an `ota_manifest_t` filled by `ota_manifest_verify()`; `out` to
/// writable memory for an `ota_manifest_info_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_manifest_info(
    manifest: *const OtaManifest,
    out: *mut OtaManifestInfo,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    let result = unsafe { verified(manifest) }.and_then(|v| {
        let m = v.manifest();
        let info = OtaManifestInfo {
            device_type: write(m.device_type),
            channel: write(m.channel),
            version: write(m.version),
            image_name: write(m.image_name),
            chip: m.chip.0,
            rollout: m.rollout,
            image_file_size: m.image_file_size,
            image_size: m.image_size,
            security_counter: m.security_counter,
            sequence: m.sequence,
            not_after: m.not_after.unwrap_or(0),
            image_header_sha256: m.image_header_sha256,
        };
        // SAFETY: forwarded contract.
        unsafe { ffi::write_out(out, info) }
    });
    status_of(result)
}

/// Decides whether `device` should install the release `manifest` names: the checks of
/// docs/FORMAT.md "The device's decision", in order (device type, chip, channel, expiry,
/// sequence rollback, up to date, counter rollback, downgrade, minimum version, slot
/// size, rollout). On `OTA_STATUS_OK`, `out` says what to do; any other status forbids
/// the update and names the rule.
///
/// After `INSTALL` and a successful installation, store the manifest's `sequence` and
/// `security_counter` (`ota_manifest_info`), never lowering either.
///
/// # Safety
/// `manifest` points to an `ota_manifest_t` filled by `ota_manifest_verify()`; `device`
/// to an `ota_device_t` (whose `device_id` points to `device_id_len` readable bytes);
/// `out` to writable memory for an `ota_decision_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ota_manifest_decide(
    manifest: *const OtaManifest,
    device: *const OtaDevice,
    out: *mut OtaDecision,
) -> OtaStatus {
    // SAFETY: forwarded contract.
    status_of(unsafe { decide(manifest, device, out) })
}

unsafe fn decide(
    manifest: *const OtaManifest,
    device: *const OtaDevice,
    out: *mut OtaDecision,
) -> Result<(), OtaStatus> {
    // SAFETY: forwarded contract.
    let verified = unsafe { verified(manifest) }?;
    // SAFETY: forwarded contract.
    let d = unsafe { ffi::plain(device) }?;
    // SAFETY: forwarded contract.
    let device_id = unsafe { ffi::bytes(d.device_id, d.device_id_len) }?;
    let invalid = OtaStatus::InvalidArgument;
    let device = Device {
        device_type: DeviceType::new(Text::read(&d.device_type)?.as_str()).ok_or(invalid)?,
        chip: ChipId(d.chip),
        channel: Channel::new(Text::read(&d.channel)?.as_str()).ok_or(invalid)?,
        running_version: Version::parse(Text::read(&d.running_version)?.as_str()).ok_or(invalid)?,
        security_counter: d.security_counter,
        last_sequence: (d.has_last_sequence != 0).then_some(d.last_sequence),
        device_id,
        now: (d.has_now != 0).then_some(d.now),
        slot_size: d.slot_size,
    };
    let decision = match verified.decide(&device)? {
        Decision::UpToDate => OtaDecision {
            kind: OtaDecisionKind::UpToDate,
            bucket: 0,
            rollout: 0,
        },
        Decision::NotInRollout { bucket, rollout } => OtaDecision {
            kind: OtaDecisionKind::NotInRollout,
            bucket,
            rollout,
        },
        Decision::Install => OtaDecision {
            kind: OtaDecisionKind::Install,
            bucket: 0,
            rollout: 0,
        },
    };
    // SAFETY: forwarded contract.
    unsafe { ffi::write_out(out, decision) }
}
