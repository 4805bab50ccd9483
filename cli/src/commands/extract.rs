//! `ota-sign extract`: the app image a device would install from a signed image.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::exit::Failure;
use crate::output;

pub const ABOUT: &str = "\
Write the ESP-IDF app image that a device installs from a signed image: the payload,
decompressed, after the same checks `verify` makes (signature, digests, app image
structure). The result can be flashed with espflash or esptool for debugging.

Example:
  ota-sign extract --pubkey release.pub app.ota -o app.bin";

/// Write the app image a device would install from a signed image
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// Trusted public key: a .pub or .key file, or 64 hex digits (repeat for several)
    /// [default: `trusted_keys` of the device type in ota-sign.toml]
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: Vec<String>,

    /// The device type the image must be for [default: $OTA_SIGN_DEVICE_TYPE, then [defaults] device_type]
    #[arg(long, value_parser = crate::config::parse_device_type)]
    pub device_type: Option<ota_format::DeviceType>,

    /// The signed image (.ota)
    pub file: PathBuf,

    /// Where to write the app image (never overwritten unless --force)
    #[arg(short, long, value_name = "APP.bin")]
    pub output: PathBuf,

    /// Replace the output file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct Extracted {
    output: String,
    size: usize,
    image_sha256: String,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    if !args.force && args.output.exists() {
        return Err(output::exists(&args.output));
    }
    let (verified, app) =
        crate::checks::load_verified_image(&args.file, &args.pubkey, args.device_type, global)?;
    output::write(&args.output, &app, args.force)?;
    let result = Extracted {
        output: args.output.display().to_string(),
        size: app.len(),
        image_sha256: hex::encode(verified.header.info.image_sha256),
    };
    global.say(&format!(
        "wrote {} ({} bytes, sha256 {})",
        result.output, result.size, result.image_sha256
    ));
    global.json_result(&result);
    Ok(())
}
