//! `ota-sign delta`: a signed delta (`.otad`) from an image devices run to a new one.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_format::{Expectations, TrustedKey, TrustedKeys};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::checks::{check_image, trusted_keys};
use crate::cli::GlobalOpts;
use crate::exit::Failure;
use crate::output;
use ota_sign_lib::delta::{self, DeltaSide};

pub const ABOUT: &str = "\
Make a signed delta update (.otad) from an image devices run (--from) to a new one (--to).

A device that runs exactly the --from image downloads the delta instead of the full
--to image: usually a few percent of its size. The delta carries the --to image's signed
header verbatim, so the manifest that names the full image also covers the delta, and
the device checks what it installed against the same installed-image digest. A device
running anything else, or one whose delta install fails, installs the full image.

Both images are verified first (with --pubkey, else the signing key's public key) and
must be for the same device type and chip. The payload is zstd (level 19) with the
--from image's installed bytes as its prefix (as `zstd --patch-from`), a window covering
both images and compressed blocks of at most 8 KiB, what generation-2 agents decode. The
delta is signed with --key, verified and decoded with the device's decoder against the
--from image before it is written (atomically: no partial file on an error or Ctrl-C).

Devices look for it beside the full image, named
  <image name>.<first 16 hex digits of the --from image's installed SHA-256>.otad
`ota-sign release` makes and names these by itself for the last releases of a channel
(`deltas` in ota-sign.toml, --deltas); this command is for one pair by hand.

Exit codes: 0 written; 6 the images are for different device types or chips; 3 an image
does not verify; 7 the output exists (--force replaces it); 5 key problem; 4 unreadable
file; 2 usage.

Examples:
  ota-sign delta --key release.key --from app-1.0.0.ota --to app-1.1.0.ota \\
      -o app-1.1.0.ota.0123456789abcdef.otad
  ota-sign delta --key release.key --pubkey old.pub --pubkey release.pub \\
      --from old.ota --to new.ota -o new.otad --json";

/// Make a signed delta update from one image to the next
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// Private key that signs the delta [default: $OTA_SIGN_KEY, then `key` in ota-sign.toml]
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,

    /// The image devices run now (the base)
    #[arg(long, value_name = "OLD.ota")]
    pub from: PathBuf,

    /// The image to update them to (the target)
    #[arg(long, value_name = "NEW.ota")]
    pub to: PathBuf,

    /// Public key the images are signed with (repeat for several) [default: the --key's]
    #[arg(long, value_name = "PUBKEY")]
    pub pubkey: Vec<String>,

    /// Output file (never overwritten unless --force)
    #[arg(short, long, value_name = "OUT.otad")]
    pub output: PathBuf,

    /// Replace the output file if it exists
    #[arg(long)]
    pub force: bool,

    /// Payload encoding: `auto` writes both and keeps the smaller; `patch-from` is zstd
    /// with the base as prefix (cheapest to install); `difference` is the bsdiff-style
    /// stream with RISC-V address pairs normalised (smallest when code moved; the device
    /// rewrites each sector of the slot a second time)
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    pub encoding: Encoding,
}

/// `--encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    Auto,
    PatchFrom,
    Difference,
}

impl From<Encoding> for delta::EncodingChoice {
    fn from(e: Encoding) -> Self {
        match e {
            Encoding::Auto => delta::EncodingChoice::Auto,
            Encoding::PatchFrom => delta::EncodingChoice::PatchFrom,
            Encoding::Difference => delta::EncodingChoice::Difference,
        }
    }
}

#[derive(Serialize)]
struct Summary {
    output: String,
    device_type: String,
    chip: String,
    from_version: String,
    to_version: String,
    base_sha256: String,
    /// What a device running the base asks for beside the full image.
    file_name_suffix: String,
    /// `patch-from` or `difference`.
    encoding: &'static str,
    window_log: u8,
    delta_size: usize,
    full_size: usize,
    percent_of_full: f64,
    key_id: String,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    if !args.force && args.output.exists() {
        return Err(output::exists(&args.output));
    }
    let signer = super::signing_key(args.key.as_deref(), global)?;
    let mut keys = trusted_keys(&args.pubkey, global)?;
    if keys.is_empty() {
        keys.push(TrustedKey::new(signer.public_key()));
    }
    let trusted: Vec<[u8; 32]> = keys.iter().map(|k| k.public_key).collect();
    let keys = TrustedKeys::new(&keys);
    let config = global.config()?;
    let load = |path: &PathBuf, role: &str| -> Result<_, Failure> {
        let bytes = output::read(path)?;
        let subject = format!("{role} image {}", path.display());
        let (verified, installed) =
            check_image(&subject, &bytes, keys, Expectations::default(), config)?;
        Ok((bytes, verified, installed))
    };
    let (base_ota, base, base_installed) = load(&args.from, "--from")?;
    let (target_ota, target, target_installed) = load(&args.to, "--to")?;
    let made = delta::make_with(
        DeltaSide {
            header: &base.header,
            ota: &base_ota,
            installed: &base_installed,
        },
        DeltaSide {
            header: &target.header,
            ota: &target_ota,
            installed: &target_installed,
        },
        &*signer,
        &trusted,
        args.encoding.into(),
    )?;
    output::write(&args.output, &made.bytes, args.force)?;

    let base_sha256: [u8; 32] = Sha256::digest(&base_installed).into();
    let info = &made.info;
    let summary = Summary {
        output: args.output.display().to_string(),
        device_type: info.device_type.to_string(),
        chip: info.chip.to_string(),
        from_version: base.header.info.version.to_string(),
        to_version: target.header.info.version.to_string(),
        base_sha256: hex::encode(base_sha256),
        file_name_suffix: delta::delta_name_suffix(&base_sha256),
        encoding: delta::encoding_name(info.encoding),
        window_log: info.window_log,
        delta_size: made.bytes.len(),
        full_size: target_ota.len(),
        percent_of_full: made.bytes.len() as f64 * 100.0 / target_ota.len() as f64,
        key_id: info.key_id.to_string(),
    };
    global.say(&format!(
        "delta {} {} -> {} for {} -> {}\n  {} bytes ({} encoding), {:.1}% of the full image's {} bytes, signed by key {}",
        summary.device_type,
        summary.from_version,
        summary.to_version,
        summary.chip,
        summary.output,
        summary.delta_size,
        summary.encoding,
        summary.percent_of_full,
        summary.full_size,
        summary.key_id
    ));
    global.json_result(&summary);
    Ok(())
}
