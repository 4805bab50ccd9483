//! `ota-sign extract`: the app image a device would install from a signed image.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_format::{Expectations, TrustedKeys};
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
    #[arg(long, value_name = "PUBKEY", required = true)]
    pub pubkey: Vec<String>,

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
    let keys = super::verify::trusted_keys(&args.pubkey, global)?;
    let bytes = output::read(&args.file)?;
    let subject = format!("image {}", args.file.display());
    let (verified, app) = super::verify::check_image(
        &subject,
        &bytes,
        TrustedKeys::new(&keys),
        Expectations::default(),
        global.config()?,
    )?;
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
