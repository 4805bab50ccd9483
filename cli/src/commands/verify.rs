//! `ota-sign verify`: checks an image or a manifest exactly as a device would.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_agent::contents::{CheckedPayload, check_payload};
use ota_format::{
    ChipId, DeviceType, Expectations, FormatError, ImageHeader, Manifest, TrustedKey, TrustedKeys,
    VerifiedImage, verify_image,
};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::config;
use crate::diagnostics::{FormatDiagnostic, InstallDiagnostic, PolicyRefusal, declared_window_log};
use crate::exit::Failure;
use crate::output;

pub const ABOUT: &str = "\
Verify a signed image (.ota) or release manifest (.manifest) exactly as a device would.

For an image: the header signature against the given public keys, the payload digest,
then the payload goes through the device agent's own decoder and install rules: zstd
frames (no skippable frames, no dictionaries, a window within both the header's window
log and what the device type accepts: `max_window_log` in ota-sign.toml, default 12),
the decompressed length and digest, the ESP-IDF app image (magic, chip, checksum,
SHA-256), its version (the signed one) and its trusted-key descriptor. For a manifest:
its signature; with --image also that the image is exactly the one the manifest names.

Without --pubkey the keys are `trusted_keys` of the device type (--device-type, else
[defaults] device_type) in ota-sign.toml, and the file must be for that device type.

Exit codes: 0 valid; 3 bad signature, digest or structure (including a payload that is
not an ESP-IDF app image); 6 valid but not for the expected device type or chip, a
trusted key whose private half is public, or zstd frames larger than the device type's
window; 2 usage; 4 unreadable file; 5 unreadable or invalid key.

Examples:
  ota-sign verify --pubkey release.pub app.ota
  ota-sign verify --pubkey release.pub --device-type thermostat app.ota
  ota-sign verify app.ota      # keys and device type from ota-sign.toml
  ota-sign verify --pubkey release.pub thermostat.stable.manifest \\
      --image thermostat-1.2.0-1a2b3c4d.ota";

/// Verify a signed image or manifest
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// Trusted public key: a .pub or .key file, or 64 hex digits (repeat for several)
    /// [default: `trusted_keys` of the device type in ota-sign.toml]
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: Vec<String>,

    /// The device type the file must be for; its `trusted_keys` in ota-sign.toml are
    /// trusted when no --pubkey is given [default: $OTA_SIGN_DEVICE_TYPE, then [defaults] device_type]
    #[arg(long, value_parser = config::parse_device_type)]
    pub device_type: Option<DeviceType>,

    /// The chip the file must be for
    #[arg(long, value_parser = super::package::parse_chip)]
    pub chip: Option<ChipId>,

    /// With a manifest: the image it names, checked against it
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,

    /// The image (.ota) or manifest to verify
    pub file: PathBuf,
}

#[derive(Serialize)]
struct Verdict {
    valid: bool,
    kind: &'static str,
    file: String,
    device_type: String,
    chip: String,
    version: String,
    security_counter: u64,
    key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
}

/// Loads `--pubkey` values into a trusted key set.
pub fn trusted_keys(specs: &[String], global: &GlobalOpts) -> Result<Vec<TrustedKey>, Failure> {
    specs
        .iter()
        .map(|s| super::public_key(s, global).map(|k| TrustedKey::new(k.to_bytes())))
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
        let configured = super::configured_trusted_keys(device_type.map(|t| t.as_str()), global)?;
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
pub struct Target {
    /// The device type and its source ("--device-type", "[defaults] device_type ...").
    pub device_type: Option<(DeviceType, String)>,
    /// The chip and its source.
    pub chip: Option<(ChipId, String)>,
}

impl Target {
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
        let refuse = |what: &str, found: String, expected: String, from: &str, help: &str| {
            Failure::from(PolicyRefusal {
                message: format!("{subject} is for {what} {found}, but {from} says {expected}"),
                help: help.to_owned(),
                code: if what == "chip" {
                    "wrong_chip"
                } else {
                    "wrong_device_type"
                },
            })
        };
        if let Some((expected, from)) = &self.device_type
            && *expected != device_type
        {
            return Err(refuse(
                "device type",
                device_type.to_string(),
                expected.to_string(),
                from,
                "check that this is the right file, or pass the --device-type it was made for",
            ));
        }
        if let Some((expected, from)) = &self.chip
            && *expected != chip
        {
            return Err(refuse(
                "chip",
                chip.to_string(),
                expected.to_string(),
                from,
                "check that this is the right file, or pass the --chip it was made for",
            ));
        }
        Ok(())
    }
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let target = Target {
        device_type: Target::device_type(args.device_type, global)?,
        chip: args.chip.map(|c| (c, "--chip".to_owned())),
    };
    let keys = keys_to_trust(
        &args.pubkey,
        target.device_type.as_ref().map(|(t, _)| t),
        global,
    )?;
    let keys = TrustedKeys::new(&keys);
    let bytes = output::read(&args.file)?;
    let name = args.file.display().to_string();
    let verdict = if bytes.starts_with(&ota_format::MANIFEST_MAGIC) {
        let subject = format!("manifest {name}");
        let manifest = Manifest::verify(&bytes, &keys).map_err(|e| {
            let signer = Manifest::inspect(&bytes).ok().map(|m| m.key_id);
            format_failure(&subject, e, signer, &keys)
        })?;
        let m = manifest.manifest();
        target.check(&subject, m.device_type, m.chip)?;
        if let Some(image_path) = &args.image {
            let image = output::read(image_path)?;
            let expect = Expectations {
                manifest: Some(&manifest),
                ..Default::default()
            };
            check_image(
                &format!("image {}", image_path.display()),
                &image,
                keys,
                expect,
                global.config()?,
            )?;
        }
        Verdict {
            valid: true,
            kind: "manifest",
            file: name,
            device_type: m.device_type.to_string(),
            chip: m.chip.to_string(),
            version: m.version.to_string(),
            security_counter: m.security_counter,
            key_id: m.key_id.to_string(),
            sequence: Some(m.sequence),
            channel: Some(m.channel.to_string()),
        }
    } else {
        let subject = format!("image {name}");
        let (verified, _) = check_image(
            &subject,
            &bytes,
            keys,
            Expectations::default(),
            global.config()?,
        )?;
        let info = verified.header.info;
        target.check(&subject, info.device_type, info.chip)?;
        Verdict {
            valid: true,
            kind: "image",
            file: name,
            device_type: info.device_type.to_string(),
            chip: info.chip.to_string(),
            version: info.version.to_string(),
            security_counter: info.security_counter,
            key_id: info.key_id.to_string(),
            sequence: None,
            channel: None,
        }
    };
    global.say(&format!(
        "valid {}: {} {} for {}, security counter {}, signed by key {}",
        verdict.kind,
        verdict.device_type,
        verdict.version,
        verdict.chip,
        verdict.security_counter,
        verdict.key_id
    ));
    global.json_result(&verdict);
    Ok(())
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
    let target = Target {
        device_type: Target::device_type(device_type, global)?,
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
fn format_failure(
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

/// Verifies an image completely, as a device of its type would: signature, payload
/// digest, then the payload through the agent's own decoder and install rules (zstd
/// frames within the window the device type accepts, decompressed length, installed
/// digest, ESP-IDF app image for the header's chip, app version, trusted keys).
pub fn check_image(
    subject: &str,
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    expect: Expectations<'_>,
    config: Option<&config::Config>,
) -> Result<(VerifiedImage, Vec<u8>), Failure> {
    let verified = verify_image(bytes, keys, expect).map_err(|e| {
        let signer = ota_format::inspect_header(bytes)
            .ok()
            .map(|(info, _)| info.key_id);
        format_failure(subject, e, signer, &keys)
    })?;
    let max_window_log = config::max_window_log(config, verified.header.info.device_type.as_str());
    let checked = installable(subject, bytes, &verified.header, max_window_log)?;
    Ok((verified, checked.app_image))
}

/// Runs the agent's post-signature rules on the payload of a verified image for devices
/// that accept windows up to `2^max_window_log` bytes.
pub fn installable(
    subject: &str,
    bytes: &[u8],
    header: &ImageHeader,
    max_window_log: u8,
) -> Result<CheckedPayload, InstallDiagnostic> {
    let payload = &bytes[header.header_len()..];
    check_payload(header, payload, header.info.chip, max_window_log).map_err(|error| {
        InstallDiagnostic {
            subject: subject.to_owned(),
            error,
            declared_window_log: declared_window_log(header.info.compression),
            max_window_log,
        }
    })
}
