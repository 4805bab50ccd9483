//! The result of every C API call: success, a rule of docs/FORMAT.md that was violated
//! (one value per error name there), or a misuse of the API.

use core::ffi::c_char;

use ota_format::{FieldError, FormatError, MismatchedField};

/// What a call returned. `OTA_STATUS_OK` is 0; every other value is a rejection.
/// `ota_status_name()` gives the error's name as docs/FORMAT.md spells it.
///
/// The values are fixed: new ones are only ever added at the end.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OtaStatus {
    /// Success.
    Ok = 0,
    /// The input ends before the object does.
    Truncated = 1,
    /// Bytes follow the end of the object.
    TrailingBytes = 2,
    /// The object does not start with its magic.
    BadMagic = 3,
    /// The format version is not 1.
    UnsupportedVersion = 4,
    /// A declared header or manifest length is out of range.
    BadLength = 5,
    /// A critical flag bit is set that version 1 does not define.
    UnknownCriticalFlag = 6,
    /// `InvalidField(DeviceType)`.
    InvalidDeviceType = 7,
    /// `InvalidField(Channel)`.
    InvalidChannel = 8,
    /// `InvalidField(Version)`.
    InvalidVersion = 9,
    /// `InvalidField(ImageName)`.
    InvalidImageName = 10,
    /// `InvalidField(Compression)`.
    InvalidCompression = 11,
    /// `InvalidField(Sizes)`.
    InvalidSizes = 12,
    /// `InvalidField(Rollout)`.
    InvalidRollout = 13,
    /// A malformed trusted-key descriptor.
    BadDescriptor = 14,
    /// Two different trusted-key descriptors in one firmware.
    AmbiguousDescriptor = 15,
    /// The signer key id is not among the trusted keys.
    UnknownKey = 16,
    /// The Ed25519 signature does not verify.
    SignatureInvalid = 17,
    /// The payload does not hash to the signed digest.
    PayloadDigestMismatch = 18,
    /// The installed image does not hash to the signed digest.
    InstalledDigestMismatch = 19,
    /// The image is not the one the manifest binds.
    ManifestImageMismatch = 20,
    /// `ManifestFieldMismatch(DeviceType)`.
    ManifestDeviceTypeMismatch = 21,
    /// `ManifestFieldMismatch(Chip)`.
    ManifestChipMismatch = 22,
    /// `ManifestFieldMismatch(Version)`.
    ManifestVersionMismatch = 23,
    /// `ManifestFieldMismatch(SecurityCounter)`.
    ManifestSecurityCounterMismatch = 24,
    /// `ManifestFieldMismatch(ImageSize)`.
    ManifestImageSizeMismatch = 25,
    /// Made for another device type.
    WrongDeviceType = 26,
    /// Made for another chip.
    WrongChip = 27,
    /// The manifest is for another channel.
    WrongChannel = 28,
    /// The manifest's not-after time has passed.
    Expired = 29,
    /// The manifest's sequence is lower than one already accepted (a replay).
    SequenceRollback = 30,
    /// The security counter is lower than the device's.
    CounterRollback = 31,
    /// A lower version, and the manifest does not allow downgrades.
    Downgrade = 32,
    /// The running version is below the release's minimum.
    BelowMinimumVersion = 33,
    /// The installed image does not fit the device's update slot.
    TooLarge = 34,
    /// A delta made against another image than the running one (no C API returns it yet:
    /// deltas are not in the C API).
    DeltaBaseMismatch = 35,
    /// A delta carrying another target header than it names (not returned yet either).
    DeltaTargetMismatch = 36,
    /// A required pointer argument was NULL (or a NULL buffer with a non-zero length).
    NullArgument = 100,
    /// An argument holds a value the API does not accept: a text field not
    /// NUL-terminated, a device type, channel or running version that is not valid.
    InvalidArgument = 101,
    /// The object was not initialised by its `init`/`parse`/`verify` function, or was
    /// already finished.
    BadState = 102,
    /// ota-format reported an error this version of the C API has no name for.
    UnknownError = 103,
}

impl From<FormatError> for OtaStatus {
    fn from(e: FormatError) -> Self {
        use OtaStatus as S;
        match e {
            FormatError::Truncated => S::Truncated,
            FormatError::TrailingBytes => S::TrailingBytes,
            FormatError::BadMagic => S::BadMagic,
            FormatError::UnsupportedVersion => S::UnsupportedVersion,
            FormatError::BadLength => S::BadLength,
            FormatError::UnknownCriticalFlag => S::UnknownCriticalFlag,
            FormatError::InvalidField(field) => match field {
                FieldError::DeviceType => S::InvalidDeviceType,
                FieldError::Channel => S::InvalidChannel,
                FieldError::Version => S::InvalidVersion,
                FieldError::ImageName => S::InvalidImageName,
                FieldError::Compression => S::InvalidCompression,
                FieldError::Sizes => S::InvalidSizes,
                FieldError::Rollout => S::InvalidRollout,
                _ => S::UnknownError,
            },
            FormatError::BadDescriptor => S::BadDescriptor,
            FormatError::AmbiguousDescriptor => S::AmbiguousDescriptor,
            FormatError::UnknownKey => S::UnknownKey,
            FormatError::SignatureInvalid => S::SignatureInvalid,
            FormatError::PayloadDigestMismatch => S::PayloadDigestMismatch,
            FormatError::InstalledDigestMismatch => S::InstalledDigestMismatch,
            FormatError::ManifestImageMismatch => S::ManifestImageMismatch,
            FormatError::ManifestFieldMismatch(field) => match field {
                MismatchedField::DeviceType => S::ManifestDeviceTypeMismatch,
                MismatchedField::Chip => S::ManifestChipMismatch,
                MismatchedField::Version => S::ManifestVersionMismatch,
                MismatchedField::SecurityCounter => S::ManifestSecurityCounterMismatch,
                MismatchedField::ImageSize => S::ManifestImageSizeMismatch,
                _ => S::UnknownError,
            },
            FormatError::WrongDeviceType => S::WrongDeviceType,
            FormatError::WrongChip => S::WrongChip,
            FormatError::WrongChannel => S::WrongChannel,
            FormatError::Expired => S::Expired,
            FormatError::SequenceRollback => S::SequenceRollback,
            FormatError::CounterRollback => S::CounterRollback,
            FormatError::Downgrade => S::Downgrade,
            FormatError::BelowMinimumVersion => S::BelowMinimumVersion,
            FormatError::TooLarge => S::TooLarge,
            FormatError::DeltaBaseMismatch => S::DeltaBaseMismatch,
            FormatError::DeltaTargetMismatch => S::DeltaTargetMismatch,
        }
    }
}

/// Every status with its name, NUL-terminated for C.
const NAMES: &[(OtaStatus, &core::ffi::CStr)] = &[
    (OtaStatus::Ok, c"Ok"),
    (OtaStatus::Truncated, c"Truncated"),
    (OtaStatus::TrailingBytes, c"TrailingBytes"),
    (OtaStatus::BadMagic, c"BadMagic"),
    (OtaStatus::UnsupportedVersion, c"UnsupportedVersion"),
    (OtaStatus::BadLength, c"BadLength"),
    (OtaStatus::UnknownCriticalFlag, c"UnknownCriticalFlag"),
    (OtaStatus::InvalidDeviceType, c"InvalidField(DeviceType)"),
    (OtaStatus::InvalidChannel, c"InvalidField(Channel)"),
    (OtaStatus::InvalidVersion, c"InvalidField(Version)"),
    (OtaStatus::InvalidImageName, c"InvalidField(ImageName)"),
    (OtaStatus::InvalidCompression, c"InvalidField(Compression)"),
    (OtaStatus::InvalidSizes, c"InvalidField(Sizes)"),
    (OtaStatus::InvalidRollout, c"InvalidField(Rollout)"),
    (OtaStatus::BadDescriptor, c"BadDescriptor"),
    (OtaStatus::AmbiguousDescriptor, c"AmbiguousDescriptor"),
    (OtaStatus::UnknownKey, c"UnknownKey"),
    (OtaStatus::SignatureInvalid, c"SignatureInvalid"),
    (OtaStatus::PayloadDigestMismatch, c"PayloadDigestMismatch"),
    (
        OtaStatus::InstalledDigestMismatch,
        c"InstalledDigestMismatch",
    ),
    (OtaStatus::ManifestImageMismatch, c"ManifestImageMismatch"),
    (
        OtaStatus::ManifestDeviceTypeMismatch,
        c"ManifestFieldMismatch(DeviceType)",
    ),
    (
        OtaStatus::ManifestChipMismatch,
        c"ManifestFieldMismatch(Chip)",
    ),
    (
        OtaStatus::ManifestVersionMismatch,
        c"ManifestFieldMismatch(Version)",
    ),
    (
        OtaStatus::ManifestSecurityCounterMismatch,
        c"ManifestFieldMismatch(SecurityCounter)",
    ),
    (
        OtaStatus::ManifestImageSizeMismatch,
        c"ManifestFieldMismatch(ImageSize)",
    ),
    (OtaStatus::WrongDeviceType, c"WrongDeviceType"),
    (OtaStatus::WrongChip, c"WrongChip"),
    (OtaStatus::WrongChannel, c"WrongChannel"),
    (OtaStatus::Expired, c"Expired"),
    (OtaStatus::SequenceRollback, c"SequenceRollback"),
    (OtaStatus::CounterRollback, c"CounterRollback"),
    (OtaStatus::Downgrade, c"Downgrade"),
    (OtaStatus::BelowMinimumVersion, c"BelowMinimumVersion"),
    (OtaStatus::TooLarge, c"TooLarge"),
    (OtaStatus::DeltaBaseMismatch, c"DeltaBaseMismatch"),
    (OtaStatus::DeltaTargetMismatch, c"DeltaTargetMismatch"),
    (OtaStatus::NullArgument, c"NullArgument"),
    (OtaStatus::InvalidArgument, c"InvalidArgument"),
    (OtaStatus::BadState, c"BadState"),
    (OtaStatus::UnknownError, c"UnknownError"),
];

/// The name of a status as docs/FORMAT.md spells it (`"InvalidField(Sizes)"`), as a
/// static NUL-terminated string; `"UnknownError"` for a value that is not a status.
///
/// Takes the status as a plain integer: C may pass any value, and only the ones listed
/// are statuses.
#[unsafe(no_mangle)]
pub extern "C" fn ota_status_name(status: u32) -> *const c_char {
    NAMES
        .iter()
        .find(|(s, _)| *s as u32 == status)
        .map_or(c"UnknownError", |(_, name)| name)
        .as_ptr()
}

/// Converts a ota-format result into the status C sees.
pub(crate) fn status_of(result: Result<(), OtaStatus>) -> OtaStatus {
    match result {
        Ok(()) => OtaStatus::Ok,
        Err(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_one_distinct_name() {
        for (i, (s, name)) in NAMES.iter().enumerate() {
            assert!(
                NAMES[..i].iter().all(|(t, n)| t != s && n != name),
                "{s:?} listed twice"
            );
            let got = unsafe { core::ffi::CStr::from_ptr(ota_status_name(*s as u32)) };
            assert_eq!(got, *name);
        }
        assert_eq!(NAMES.len(), 41, "a status was added without a name");
        let unknown = unsafe { core::ffi::CStr::from_ptr(ota_status_name(9999)) };
        assert_eq!(unknown, c"UnknownError");
    }

    #[test]
    fn format_error_names_match_format_md() {
        let e = FormatError::ManifestFieldMismatch(MismatchedField::SecurityCounter);
        let got = unsafe { core::ffi::CStr::from_ptr(ota_status_name(OtaStatus::from(e) as u32)) };
        assert_eq!(got, c"ManifestFieldMismatch(SecurityCounter)");
        let e = FormatError::InvalidField(FieldError::Rollout);
        assert_eq!(OtaStatus::from(e), OtaStatus::InvalidRollout);
        // The delta errors (no C delta API yet, but the numbers and names are fixed).
        for (e, status, name) in [
            (FormatError::DeltaBaseMismatch, 35, c"DeltaBaseMismatch"),
            (FormatError::DeltaTargetMismatch, 36, c"DeltaTargetMismatch"),
        ] {
            assert_eq!(OtaStatus::from(e) as u32, status);
            let got = unsafe { core::ffi::CStr::from_ptr(ota_status_name(status)) };
            assert_eq!(got, name);
        }
    }
}
