//! Library errors as diagnostics: a stable code, a line of help and an exit code each.

mod delta;
mod flash;
mod fleet;
mod publish;
mod repo;

pub use publish::PublishDiagnostic;

use std::fmt;

use miette::Diagnostic;
use ota_agent::install::InstallError;
use ota_agent::zstd::DecompressError;
use ota_format::FormatError;
use ota_format::esp::AppImageError;

use crate::exit::{self, ExitStatus};
use ota_sign_lib::input::FirmwareError;
use ota_sign_lib::packaging::PackagingError;

/// A rejected image or manifest, with the file it came from.
#[derive(Debug)]
pub struct FormatDiagnostic {
    /// What was being checked, e.g. "image build/app.ota".
    pub subject: String,
    /// The violated rule.
    pub error: FormatError,
}

impl FormatDiagnostic {
    /// Wraps `error` for `subject`.
    pub fn new(subject: impl Into<String>, error: FormatError) -> Self {
        FormatDiagnostic {
            subject: subject.into(),
            error,
        }
    }
}

impl fmt::Display for FormatDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.error)
    }
}

impl std::error::Error for FormatDiagnostic {}

/// The stable name of a format error, used in diagnostic codes and JSON output.
pub fn format_error_name(e: &FormatError) -> &'static str {
    use FormatError::*;
    match e {
        Truncated => "truncated",
        TrailingBytes => "trailing_bytes",
        BadMagic => "bad_magic",
        UnsupportedVersion => "unsupported_version",
        BadLength => "bad_length",
        UnknownCriticalFlag => "unknown_critical_flag",
        InvalidField(_) => "invalid_field",
        BadDescriptor => "bad_descriptor",
        AmbiguousDescriptor => "ambiguous_descriptor",
        UnknownKey => "unknown_key",
        SignatureInvalid => "signature_invalid",
        PayloadDigestMismatch => "payload_digest_mismatch",
        InstalledDigestMismatch => "installed_digest_mismatch",
        ManifestImageMismatch => "manifest_image_mismatch",
        ManifestFieldMismatch(_) => "manifest_field_mismatch",
        WrongDeviceType => "wrong_device_type",
        WrongChip => "wrong_chip",
        WrongChannel => "wrong_channel",
        Expired => "expired",
        SequenceRollback => "sequence_rollback",
        CounterRollback => "counter_rollback",
        Downgrade => "downgrade",
        BelowMinimumVersion => "below_minimum_version",
        TooLarge => "too_large",
        DeltaBaseMismatch => "delta_base_mismatch",
        DeltaTargetMismatch => "delta_target_mismatch",
    }
}

/// The exit code of a format error: signature and digest failures are
/// [`exit::INVALID_SIGNATURE`], policy refusals [`exit::POLICY`], malformed input
/// [`exit::INVALID_SIGNATURE`] too (it cannot be what it claims to be).
pub fn format_exit_code(e: &FormatError) -> u8 {
    use FormatError::*;
    match e {
        WrongDeviceType | WrongChip | WrongChannel | Expired | SequenceRollback
        | CounterRollback | Downgrade | BelowMinimumVersion | TooLarge => exit::POLICY,
        Truncated
        | TrailingBytes
        | BadMagic
        | UnsupportedVersion
        | BadLength
        | UnknownCriticalFlag
        | InvalidField(_)
        | BadDescriptor
        | AmbiguousDescriptor
        | UnknownKey
        | SignatureInvalid
        | PayloadDigestMismatch
        | InstalledDigestMismatch
        | ManifestImageMismatch
        | ManifestFieldMismatch(_)
        | DeltaTargetMismatch => exit::INVALID_SIGNATURE,
        DeltaBaseMismatch => exit::POLICY,
    }
}

impl Diagnostic for FormatDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        exit::diagnostic_code("format", format_error_name(&self.error))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        use FormatError::*;
        let help = match self.error {
            UnknownKey => {
                "the file was signed by a key you did not pass; check --pubkey (`ota-sign inspect FILE` shows the signer's key id)"
            }
            SignatureInvalid => {
                "the signed bytes were changed after signing, or the signature is forged: do not ship this file"
            }
            PayloadDigestMismatch | InstalledDigestMismatch => {
                "the payload was changed after signing: do not ship this file"
            }
            Truncated => "the file is incomplete: was the download or copy interrupted?",
            TrailingBytes => {
                "bytes were appended after the signed data; the format accepts nothing after the payload"
            }
            BadMagic => {
                "this is not an ota-sign image or manifest (`ota-sign inspect FILE` tells what it is)"
            }
            UnsupportedVersion => "made by a newer ota-sign; upgrade this tool",
            WrongDeviceType | WrongChip => "the file is for another kind of device",
            Downgrade => "pass --allow-downgrade to `release` to sign a deliberate downgrade",
            CounterRollback => {
                "a lower security counter can never be installed; raise --security-counter"
            }
            Expired => "re-sign the manifest with a later --expires",
            DeltaBaseMismatch => {
                "this delta applies to another firmware than the one given as its base; devices \
                 running other firmware install the full image"
            }
            DeltaTargetMismatch => {
                "the delta's target header was swapped or edited after signing: do not ship this file"
            }
            BadLength
            | UnknownCriticalFlag
            | InvalidField(_)
            | BadDescriptor
            | AmbiguousDescriptor
            | ManifestImageMismatch
            | ManifestFieldMismatch(_)
            | WrongChannel
            | SequenceRollback
            | BelowMinimumVersion
            | TooLarge => return None,
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for FormatDiagnostic {
    fn exit_code(&self) -> u8 {
        format_exit_code(&self.error)
    }
}

/// A signed image whose payload devices refuse: the rules the agent applies after the
/// signature (zstd frames, decompressed length, installed digest, app image, version,
/// trusted keys), run on the host with the agent's own code.
#[derive(Debug)]
pub struct InstallDiagnostic {
    /// What was being checked, e.g. "image build/app.ota".
    pub subject: String,
    /// The rule the payload breaks.
    pub error: InstallError,
    /// The zstd window log the signed header declares (`None`: stored payload).
    pub declared_window_log: Option<u8>,
    /// The window log devices of the image's type accept.
    pub max_window_log: u8,
}

impl fmt::Display for InstallDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: devices refuse it: {}", self.subject, self.error)
    }
}

impl std::error::Error for InstallDiagnostic {}

/// A frame within the header's declared window that the device type cannot afford: the
/// image is well formed, only not for these devices.
fn beyond_device_window(error: &InstallError, declared_window_log: Option<u8>) -> bool {
    match (error, declared_window_log) {
        (
            InstallError::Decompress(DecompressError::WindowTooLarge { requested, .. }),
            Some(declared),
        ) => *requested <= 1u64 << declared,
        _ => false,
    }
}

/// The stable name of an install refusal, used in diagnostic codes.
pub fn install_error_name(e: &InstallError) -> &'static str {
    use DecompressError as D;
    match e {
        InstallError::Format(f) => format_error_name(f),
        InstallError::Decompress(D::WindowTooLarge { .. }) => "zstd_window_too_large",
        InstallError::Decompress(D::BadFrameMagic) => "zstd_not_a_frame",
        InstallError::Decompress(D::Dictionary) => "zstd_dictionary",
        InstallError::Decompress(D::BlockTooLarge { .. }) => "zstd_block_too_large",
        InstallError::Decompress(D::Truncated) => "zstd_truncated",
        InstallError::Decompress(D::BadHeader | D::Corrupt) => "zstd_malformed",
        InstallError::AppImage(_) => "not_an_app_image",
        InstallError::OutputTooLong => "output_too_long",
        InstallError::OutputTooShort => "output_too_short",
        InstallError::AppVersionMismatch { .. } => "app_version_mismatch",
        InstallError::NoAppVersion => "no_app_version",
        InstallError::NoTrustedKeys => "no_trusted_keys",
        InstallError::Flash(_) => "flash",
        InstallError::DoesNotFit { .. } => "does_not_fit",
        InstallError::SecureBootSignatureMissing => "secure_boot_signature_missing",
        InstallError::SecureBootKeyNotTrusted { .. } => "secure_boot_key_not_trusted",
        InstallError::WriteBufferMisfit => "write_buffer_misfit",
        InstallError::SlotNotEraseAligned => "slot_not_erase_aligned",
        InstallError::WindowLogAboveAgents(_) => "window_log_above_agents",
        InstallError::AlreadyFailed => "already_failed",
    }
}

impl Diagnostic for InstallDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        exit::diagnostic_code("install", install_error_name(&self.error))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if beyond_device_window(&self.error, self.declared_window_log) {
            return Some(Box::new(format!(
                "devices of this type decode zstd windows up to 2^{} bytes (`max_window_log` of \
                 their [device.NAME] table in ota-sign.toml); package again with a smaller \
                 --zstd-window-log",
                self.max_window_log
            )));
        }
        let help = match self.error {
            InstallError::Decompress(DecompressError::BlockTooLarge { .. }) => {
                "a compressed zstd block is larger than the device's decoder holds (compression \
                 method 2: at most 8 KiB, its block buffer); `ota-sign package` caps blocks \
                 (ZSTD_c_maxBlockSize): package the firmware again with it"
            }
            InstallError::Decompress(_) => {
                "the payload is not what `ota-sign package` writes (one or more plain zstd frames within the declared window, compressed blocks of at most 8 KiB): package the firmware again"
            }
            InstallError::AppImage(_) => {
                "the payload is not an ESP-IDF app image for the header's chip: package the firmware again"
            }
            InstallError::AppVersionMismatch { .. } | InstallError::NoAppVersion => {
                "the firmware's app descriptor must carry the signed version: package the firmware again"
            }
            InstallError::NoTrustedKeys => {
                "the firmware embeds no trusted-key descriptor: devices would never accept another update"
            }
            _ => "the signed header does not describe this payload: do not ship this file",
        };
        Some(Box::new(help))
    }
}

/// The exit code of an install refusal: [`exit::POLICY`] for a frame only these devices
/// cannot decode, [`exit::INVALID_SIGNATURE`] for a payload no device can install.
pub fn install_exit_code(error: &InstallError, declared_window_log: Option<u8>) -> u8 {
    match error {
        _ if beyond_device_window(error, declared_window_log) => exit::POLICY,
        InstallError::Format(f) => format_exit_code(f),
        InstallError::Flash(_)
        | InstallError::WriteBufferMisfit
        | InstallError::SlotNotEraseAligned
        | InstallError::WindowLogAboveAgents(_)
        | InstallError::AlreadyFailed => exit::FAILURE,
        _ => exit::INVALID_SIGNATURE,
    }
}

impl ExitStatus for InstallDiagnostic {
    fn exit_code(&self) -> u8 {
        install_exit_code(&self.error, self.declared_window_log)
    }
}

/// A firmware input that cannot be packaged.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {error}")]
pub struct FirmwareDiagnostic {
    /// The input file.
    pub path: String,
    /// Why it was refused.
    #[source]
    pub error: FirmwareError,
}

impl Diagnostic for FirmwareDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("ota_sign::firmware"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match &self.error {
            FirmwareError::MissingAppDescriptor => {
                "build with ESP-IDF, or with esp-bootloader-esp-idf's `esp_app_desc!()` in a Rust firmware"
            }
            FirmwareError::VersionNotSemver(_) => {
                "set a semantic version (1.2.3) in the app descriptor, e.g. PROJECT_VER in ESP-IDF or the crate version"
            }
            FirmwareError::ElfChipMismatch { .. } | FirmwareError::AppImageChipMismatch { .. } => {
                "pass the --chip the firmware was built for"
            }
            FirmwareError::AppImage(
                AppImageError::ChecksumMismatch { .. } | AppImageError::DigestMismatch,
            ) => "the app image is corrupt; rebuild it",
            FirmwareError::AppImage(
                AppImageError::SecureBoot(_) | AppImageError::TrailingBytes { .. },
            ) => {
                "only a Secure Boot V2 signature sector may follow the app image: sign the unsigned image once with `espsecure sign-data --version 2` or `ota-sign package --secure-boot-key`"
            }
            FirmwareError::AppImage(_)
            | FirmwareError::NotElf(_)
            | FirmwareError::ElfArchMismatch { .. }
            | FirmwareError::UnsupportedChip(_)
            | FirmwareError::TooLargeForFlash { .. }
            | FirmwareError::Espflash(_)
            | FirmwareError::KeyDescriptor(_)
            | FirmwareError::ChipRequired { .. } => return None,
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for FirmwareDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.error {
            // Firmware for another chip is refused by a safety rule, as in `flash`.
            FirmwareError::ElfChipMismatch { .. }
            | FirmwareError::ElfArchMismatch { .. }
            | FirmwareError::AppImageChipMismatch { .. } => exit::POLICY,
            // Reported as a usage error by `firmware_failure`, never as this diagnostic.
            FirmwareError::ChipRequired { .. } => exit::USAGE,
            FirmwareError::NotElf(_)
            | FirmwareError::UnsupportedChip(_)
            | FirmwareError::TooLargeForFlash { .. }
            | FirmwareError::Espflash(_)
            | FirmwareError::AppImage(_)
            | FirmwareError::MissingAppDescriptor
            | FirmwareError::VersionNotSemver(_)
            | FirmwareError::KeyDescriptor(_) => exit::FAILURE,
        }
    }
}

/// A firmware input that cannot be loaded, as a failure: a missing `--chip` for an ELF is
/// a usage error whose help names the chips the ELF fits, likeliest first.
pub fn firmware_failure(path: &std::path::Path, error: FirmwareError) -> crate::exit::Failure {
    let FirmwareError::ChipRequired { candidates } = &error else {
        return FirmwareDiagnostic {
            path: path.display().to_string(),
            error,
        }
        .into();
    };
    let help = match candidates.as_slice() {
        [only] => format!("this ELF is for {only}; pass --chip {only}"),
        [first, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
            format!(
                "this ELF fits {first} or {}; pass --chip {first} (most likely), or the chip it was built for",
                rest.join(" or ")
            )
        }
        [] => "pass --chip (esp32, esp32c3, esp32c6, esp32s3, ...) or set chip in [device.NAME] of ota-sign.toml".to_owned(),
    };
    crate::exit::Failure::usage("--chip is required with --elf", Some(help))
}

/// A packaging failure.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error(transparent)]
#[diagnostic(code(ota_sign::package))]
pub struct PackagingDiagnostic(#[from] pub PackagingError);

impl ExitStatus for PackagingDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.0 {
            PackagingError::Signing(e) => exit::key_exit_code(e),
            PackagingError::SelfCheck(_) => exit::INVALID_SIGNATURE,
            // The firmware (e.g. one without a trusted-key descriptor under
            // --allow-lockout) makes an image every device would refuse.
            PackagingError::NotInstallable(_) => exit::POLICY,
            PackagingError::Compression(_)
            | PackagingError::WindowLog { .. }
            | PackagingError::TooLarge(_)
            | PackagingError::Header(_) => exit::FAILURE,
        }
    }
}

/// A refusal by a safety rule (lock-out, slot size), with help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PolicyRefusal {
    /// What is refused and why.
    pub message: String,
    /// How to proceed.
    pub help: String,
    /// Stable code suffix.
    pub code: &'static str,
}

impl Diagnostic for PolicyRefusal {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        exit::diagnostic_code("policy", self.code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
}

impl ExitStatus for PolicyRefusal {
    fn exit_code(&self) -> u8 {
        exit::POLICY
    }
}
