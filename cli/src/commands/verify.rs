//! `ota-sign verify`: checks an image or a manifest exactly as a device would.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_format::{ChipId, DeviceType, Expectations, Manifest, TrustedKeys};
use serde::Serialize;

use crate::checks::{ExpectedTarget, check_image, format_failure, keys_to_trust};
use crate::cli::GlobalOpts;
use crate::config;
use crate::exit::Failure;
use crate::output;

pub const ABOUT: &str = "\
Verify a signed image (.ota) or release manifest (.manifest) exactly as a device would.

For an image: the header signature against the given public keys, the payload digest,
then the payload goes through the device's own decoder and install rules: zstd frames
(method 1: no skippable frames, no dictionaries, a window within both the header's window
log and what the device type accepts: `max_window_log` in ota-sign.toml, default 12;
method 2: a window within the header's, compressed blocks of at most 8 KiB),
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
    #[arg(long, value_parser = crate::args::parse_chip)]
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

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let target = ExpectedTarget {
        device_type: ExpectedTarget::device_type(args.device_type, global)?,
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
