//! Trust checks as the commands run them: the keys a file must be signed by (`--pubkey`,
//! else `trusted_keys` of the device type in ota-sign.toml), the device type and chip it
//! must be for, and the library's checks ([`ota_sign_lib::trust`]) as failures.

use ota_format::{
    ChipId, DeviceType, Expectations, FormatError, TrustedKey, TrustedKeys, VerifiedImage,
};
use ota_sign_lib::trust::{self, ImageRejection};

use crate::cli::GlobalOpts;
use crate::config;
use crate::diagnostics::{FormatDiagnostic, InstallDiagnostic, PolicyRefusal};
use crate::exit::Failure;
use crate::output;

/// Loads `--pubkey` values into a trusted key set.
pub fn trusted_keys(specs: &[String], global: &GlobalOpts) -> Result<Vec<TrustedKey>, Failure> {
    specs
        .iter()
        .map(|s| crate::commands::public_key(s, global).map(|k| TrustedKey::new(k.to_bytes())))
        .collect()
}

/// The keys an image or manifest must be signed by: `--pubkey` values, else
/// `trusted_keys` of `device_type` in ota-sign.toml (as `package` and `release` use it).
pub fn keys_to_trust(
    pubkeys: &[String],
    device_type: Option<&DeviceType>,
    global: &GlobalOpts,
) -> Result<Vec<TrustedKey>, Failure> {
    let mut keys = trusted_keys(pubkeys, global)?;
    if keys.is_empty() {
        let configured =
            crate::commands::configured_trusted_keys(device_type.map(|t| t.as_str()), global)?;
        keys = configured
            .iter()
            .map(|k| TrustedKey::new(k.to_bytes()))
            .collect();
    }
    if keys.is_empty() {
        let help = match device_type {
            Some(t) => format!(
                "pass --pubkey KEY.pub, or list the fleet's keys in `trusted_keys` of [device.{t}] in ota-sign.toml"
            ),
            None => "pass --pubkey KEY.pub, or set [defaults] device_type and `trusted_keys` of [device.NAME] in ota-sign.toml".to_owned(),
        };
        return Err(Failure::usage("no trusted public key given", Some(help)));
    }
    Ok(keys)
}

/// What a file must be for, and where each expectation comes from (for messages).
#[derive(Clone, Debug, Default)]
pub struct ExpectedTarget {
    /// The device type and its source ("--device-type", "[defaults] device_type ...").
    pub device_type: Option<(DeviceType, String)>,
    /// The chip and its source.
    pub chip: Option<(ChipId, String)>,
}

impl ExpectedTarget {
    /// The device type from `--device-type`, `$OTA_SIGN_DEVICE_TYPE` or `[defaults]`.
    pub fn device_type(
        flag: Option<DeviceType>,
        global: &GlobalOpts,
    ) -> Result<Option<(DeviceType, String)>, Failure> {
        if let Some(t) = flag {
            return Ok(Some((t, "--device-type".to_owned())));
        }
        let resolved = config::device_type(None, global.config()?)?;
        Ok(resolved.map(|t| {
            let from = if std::env::var_os(config::DEVICE_TYPE_ENV).is_some() {
                format!("${}", config::DEVICE_TYPE_ENV)
            } else {
                "[defaults] device_type in ota-sign.toml".to_owned()
            };
            (t, from)
        }))
    }

    /// Refuses a file made for another device type or chip, naming both values.
    pub fn check(
        &self,
        subject: &str,
        device_type: DeviceType,
        chip: ChipId,
    ) -> Result<(), Failure> {
        // (what, flag, code, found, expected and where it was said)
        let mismatches = [
            (
                "device type",
                "--device-type",
                "wrong_device_type",
                device_type.to_string(),
                self.device_type
                    .as_ref()
                    .filter(|(expected, _)| *expected != device_type)
                    .map(|(expected, from)| (expected.to_string(), from)),
            ),
            (
                "chip",
                "--chip",
                "wrong_chip",
                chip.to_string(),
                self.chip
                    .as_ref()
                    .filter(|(expected, _)| *expected != chip)
                    .map(|(expected, from)| (expected.to_string(), from)),
            ),
        ];
        for (what, flag, code, found, mismatch) in mismatches {
            if let Some((expected, from)) = mismatch {
                return Err(PolicyRefusal {
                    message: format!("{subject} is for {what} {found}, but {from} says {expected}"),
                    help: format!(
                        "check that this is the right file, or pass the {flag} it was made for"
                    ),
                    code,
                }
                .into());
            }
        }
        Ok(())
    }
}

/// Reads and verifies the signed image at `path` for a command that installs or unpacks
/// it (`extract`, `flash --image`): keys from `--pubkey` or ota-sign.toml, then the
/// complete check, then the expected device type (flag, environment or `[defaults]`).
/// Returns the verified header and the app image a device would install.
pub fn load_verified_image(
    path: &std::path::Path,
    pubkeys: &[String],
    device_type: Option<DeviceType>,
    global: &GlobalOpts,
) -> Result<(VerifiedImage, Vec<u8>), Failure> {
    let target = ExpectedTarget {
        device_type: ExpectedTarget::device_type(device_type, global)?,
        chip: None,
    };
    let keys = keys_to_trust(pubkeys, target.device_type.as_ref().map(|(t, _)| t), global)?;
    let bytes = output::read(path)?;
    let subject = format!("image {}", path.display());
    let (verified, app) = check_image(
        &subject,
        &bytes,
        TrustedKeys::new(&keys),
        Expectations::default(),
        global.config()?,
    )?;
    let info = &verified.header.info;
    target.check(&subject, info.device_type, info.chip)?;
    Ok((verified, app))
}

/// A rejected file as a failure; "unknown key" names the signer's key id and the
/// trusted ones, so the operator sees which key is missing.
pub fn format_failure(
    subject: &str,
    error: FormatError,
    signer: Option<ota_format::KeyId>,
    keys: &TrustedKeys<'_>,
) -> Failure {
    match (error, signer) {
        (FormatError::UnknownKey, Some(signer)) => {
            let trusted: Vec<String> = keys.keys().iter().map(|k| k.id().to_string()).collect();
            Failure::new(
                crate::exit::INVALID_SIGNATURE,
                crate::exit::Message::new(
                    format!(
                        "{subject} is signed by key {signer}, which is not trusted (trusted: [{}])",
                        trusted.join(", ")
                    ),
                    Some("pass the signer's public key with --pubkey, or list it in `trusted_keys` of ota-sign.toml".to_owned()),
                    "ota_sign::format::unknown_key",
                ),
            )
        }
        (error, _) => FormatDiagnostic::new(subject, error).into(),
    }
}

/// Verifies an image completely, as a device of its type would (see
/// [`ota_sign_lib::trust::check_image`]), with the zstd window limits of ota-sign.toml.
/// Returns the verified header and the app image a device would install.
pub fn check_image(
    subject: &str,
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    expect: Expectations<'_>,
    config: Option<&config::Config>,
) -> Result<(VerifiedImage, Vec<u8>), Failure> {
    trust::check_image(bytes, keys, expect, &config::device_settings(config)).map_err(|rejection| {
        match rejection {
            ImageRejection::Format { error, signer } => {
                format_failure(subject, error, signer, &keys)
            }
            ImageRejection::NotInstallable {
                error,
                declared_window_log,
                max_window_log,
            } => InstallDiagnostic {
                subject: subject.to_owned(),
                error,
                declared_window_log,
                max_window_log,
            }
            .into(),
        }
    })
}
