//! `ota-sign verify`: checks an image or a manifest exactly as a device would.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_agent::contents::{CheckedPayload, check_payload};
use ota_format::{
    ChipId, DeviceType, Expectations, FormatError, ImageHeader, Manifest, TrustedKey, TrustedKeys,
    VerifiedImage, VerifiedManifest, verify_image,
};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::config;
use crate::diagnostics::{FormatDiagnostic, InstallDiagnostic, declared_window_log};
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

Exit codes: 0 valid; 3 bad signature, digest or structure (including a payload that is
not an ESP-IDF app image); 6 valid but not for the given --device-type/--chip, or zstd
frames larger than the device type's window; 2 usage; 4 unreadable file.

Examples:
  ota-sign verify --pubkey release.pub app.ota
  ota-sign verify --pubkey release.pub --device-type thermostat app.ota
  ota-sign verify --pubkey release.pub thermostat.stable.manifest --image thermostat-1.2.0-1a2b3c4d.ota";

/// Verify a signed image or manifest
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// Trusted public key: a .pub or .key file, or 64 hex digits (repeat for several)
    /// [default: `trusted_keys` of the device type in ota-sign.toml]
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: Vec<String>,

    /// The device type the file must be for
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

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let mut keys = trusted_keys(&args.pubkey, global)?;
    if keys.is_empty() {
        let configured =
            super::configured_trusted_keys(args.device_type.as_ref().map(|t| t.as_str()), global)?;
        keys = configured
            .iter()
            .map(|k| TrustedKey::new(k.to_bytes()))
            .collect();
    }
    if keys.is_empty() {
        return Err(Failure::usage(
            "no trusted public key given",
            Some("pass --pubkey KEY.pub, or --device-type NAME with trusted_keys in [device.NAME] of ota-sign.toml".to_owned()),
        ));
    }
    let keys = TrustedKeys::new(&keys);
    let bytes = output::read(&args.file)?;
    let name = args.file.display().to_string();
    let verdict = if bytes.starts_with(&ota_format::MANIFEST_MAGIC) {
        let manifest = Manifest::verify(&bytes, &keys)
            .map_err(|e| FormatDiagnostic::new(format!("manifest {name}"), e))?;
        check_manifest_target(&manifest, args.device_type, args.chip)
            .map_err(|e| FormatDiagnostic::new(format!("manifest {name}"), e))?;
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
        let m = manifest.manifest();
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
        let expect = Expectations {
            manifest: None,
            device_type: args.device_type,
            chip: args.chip,
        };
        let (verified, _) = check_image(
            &format!("image {name}"),
            &bytes,
            keys,
            expect,
            global.config()?,
        )?;
        let info = verified.header.info;
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

fn check_manifest_target(
    manifest: &VerifiedManifest,
    device_type: Option<DeviceType>,
    chip: Option<ChipId>,
) -> Result<(), FormatError> {
    let m = manifest.manifest();
    if device_type.is_some_and(|t| t != m.device_type) {
        return Err(FormatError::WrongDeviceType);
    }
    if chip.is_some_and(|c| c != m.chip) {
        return Err(FormatError::WrongChip);
    }
    Ok(())
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
    let verified =
        verify_image(bytes, keys, expect).map_err(|e| FormatDiagnostic::new(subject, e))?;
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
