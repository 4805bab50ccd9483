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
use ota_sign_lib::delta::Checked;

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
For a delta (.otad, `ota-sign delta`): its signature, the target image header it carries
(signature, and that it is the header the delta names) and the payload digest; with
--base OLD.ota also that it applies to that image (size and installed SHA-256), and the
payload is decoded against it with the device's decoder and checked against the target's
installed-image digest, as a device running OLD.ota would.

Without --pubkey the keys are `trusted_keys` of the device type (--device-type, else
[defaults] device_type) in ota-sign.toml, and the file must be for that device type.

Exit codes: 0 valid; 3 bad signature, digest or structure (including a payload that is
not an ESP-IDF app image, or a delta that does not decode to its target); 6 valid but
not for the expected device type or chip, a delta for another base than --base, a
trusted key whose private half is public, or zstd frames larger than the device type's
window; 2 usage; 4 unreadable file; 5 unreadable or invalid key.

Examples:
  ota-sign verify --pubkey release.pub app.ota
  ota-sign verify --pubkey release.pub --device-type thermostat app.ota
  ota-sign verify app.ota      # keys and device type from ota-sign.toml
  ota-sign verify --pubkey release.pub thermostat.stable.manifest \\
      --image thermostat-1.2.0-1a2b3c4d.ota
  ota-sign verify --pubkey release.pub --base thermostat-1.1.0-99aa88bb.ota \\
      thermostat-1.2.0-1a2b3c4d.ota.0123456789abcdef.otad";

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

    /// With a delta: the image (.ota) it must apply to; the delta is then decoded
    /// against it as a device running it would
    #[arg(long, value_name = "OLD.ota")]
    pub base: Option<PathBuf>,

    /// The image (.ota), delta (.otad) or manifest to verify
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
    /// A delta's base: the installed SHA-256 it applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    base_sha256: Option<String>,
    /// A delta: whether it was decoded against --base.
    #[serde(skip_serializing_if = "Option::is_none")]
    base_checked: Option<bool>,
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
            base_sha256: None,
            base_checked: None,
        }
    } else if bytes.starts_with(&ota_format::DELTA_MAGIC) {
        let subject = format!("delta {name}");
        let config = global.config()?;
        let delta_failure = |e: Checked| match e {
            Checked::Format(e) => {
                let signer = ota_format::inspect_delta_header(&bytes)
                    .ok()
                    .map(|(info, _)| info.key_id);
                format_failure(&subject, e, signer, &keys)
            }
            Checked::Decode(reason) => Failure::new(
                crate::exit::INVALID_SIGNATURE,
                crate::exit::Message::new(
                    format!("{subject}: its payload does not decode against the base: {reason}"),
                    Some(
                        "do not ship this file; make the delta again with `ota-sign delta`"
                            .to_owned(),
                    ),
                    "ota_sign::delta::decode",
                ),
            ),
        };
        let verified = match &args.base {
            Some(base_path) => {
                let base = output::read(base_path)?;
                let (_, base_installed) = check_image(
                    &format!("base image {}", base_path.display()),
                    &base,
                    keys,
                    Expectations::default(),
                    config,
                )?;
                ota_sign_lib::delta::check(&bytes, keys, &base_installed)
                    .map_err(delta_failure)?
                    .0
            }
            None => ota_format::verify_delta(&bytes, keys, Default::default())
                .map_err(|e| delta_failure(Checked::Format(e)))?,
        };
        let d = verified.delta.info;
        let t = verified.target.info;
        target.check(&subject, d.device_type, d.chip)?;
        Verdict {
            valid: true,
            kind: "delta",
            file: name,
            device_type: d.device_type.to_string(),
            chip: d.chip.to_string(),
            version: t.version.to_string(),
            security_counter: t.security_counter,
            key_id: d.key_id.to_string(),
            sequence: None,
            channel: None,
            base_sha256: Some(hex::encode(d.base_sha256)),
            base_checked: Some(args.base.is_some()),
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
            base_sha256: None,
            base_checked: None,
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
