//! `ota-sign pubkey [KEY]... [--format pem|hex|rust|c]`: the public key of a key file, or
//! the trusted-key descriptor of several for firmware source code.

use std::path::{Path, PathBuf};

use ota_keys::PublicKey;
use ota_keys::export::{self, PublicKeyFormat};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::commands::{key_location, report_warnings};
use crate::exit::Failure;

pub const LONG_ABOUT: &str = "\
Print the public key of a key file (private or public, encrypted or not), or the
trusted-key descriptor of up to 8 keys as firmware source code.

Formats:
  pem   SubjectPublicKeyInfo PEM, as `openssl pkey -pubout` writes it (default)
  hex   the raw 32-byte key as 64 hex digits (usable in ota-sign.toml trusted_keys)
  rust  a `const` array per key and the trusted-key descriptor static for a Rust firmware
  c     the trusted-key descriptor `ota_trusted_keys` for a C firmware (ESP-IDF, Arduino):
        placed and kept like ESP-IDF's esp_app_desc, so `package` finds it; pass it to
        ota_trusted_keys_parse() of the C API (capi/) to verify with the same keys

rust and c take several KEYs: the firmware trusts all of them (list every key you sign
with, e.g. the current and the next one). pem and hex take one.

Every format names the key id; for pem and hex it is printed on stderr so that stdout
stays a clean key file. Without KEY, the key comes from $OTA_SIGN_KEY, then from `key` in
[defaults] of ota-sign.toml.";

pub const EXAMPLES: &str = "\
Examples:
  ota-sign pubkey keys/release.key > keys/release.pub
  ota-sign pubkey keys/release.pub --format hex
  ota-sign pubkey keys/release.pub --format rust > firmware/src/trusted_keys.rs
  ota-sign pubkey keys/release.pub keys/next.pub -f c > main/trusted_keys.c";

/// Arguments of `ota-sign pubkey`.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Args {
    /// Private or public key files; several only with --format rust or c
    /// [default: $OTA_SIGN_KEY, then the configured key]
    #[arg(value_name = "KEY")]
    pub keys: Vec<PathBuf>,

    /// Output format: pem, hex, rust or c
    #[arg(long, short = 'f', default_value = "pem", value_name = "FORMAT", value_parser = parse_format)]
    pub format: PublicKeyFormat,
}

fn parse_format(s: &str) -> Result<PublicKeyFormat, String> {
    s.parse()
}

#[derive(Serialize)]
struct Report<'a> {
    /// The first (usually only) key, as before several keys were accepted.
    key_id: String,
    public_key: String,
    /// Every key, in descriptor slot order.
    keys: Vec<KeyEntry>,
    format: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct KeyEntry {
    key_id: String,
    public_key: String,
}

/// Runs `ota-sign pubkey`.
pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    if args.keys.len() > 1 && matches!(args.format, PublicKeyFormat::Pem | PublicKeyFormat::Hex) {
        return Err(Failure::usage(
            format!(
                "--format {} prints one key; {} were given",
                args.format.name(),
                args.keys.len()
            ),
            Some("run it once per key, or use --format c or rust for a descriptor of all".into()),
        ));
    }
    let keys = if args.keys.is_empty() {
        vec![load_public(None, global)?]
    } else {
        args.keys
            .iter()
            .map(|path| load_public(Some(path), global))
            .collect::<Result<Vec<_>, _>>()?
    };
    let text = match args.format {
        PublicKeyFormat::Rust => export::render_rust_trusted_keys(&keys)?,
        PublicKeyFormat::C => export::render_c_trusted_keys(&keys)?,
        PublicKeyFormat::Pem | PublicKeyFormat::Hex => export::render(&keys[0], args.format),
    };

    let first = &keys[0];
    global.json_result(&Report {
        key_id: first.key_id().to_string(),
        public_key: first.to_hex(),
        keys: keys
            .iter()
            .map(|k| KeyEntry {
                key_id: k.key_id().to_string(),
                public_key: k.to_hex(),
            })
            .collect(),
        format: args.format.name(),
        text: &text,
    });
    global.payload(&text);
    if matches!(args.format, PublicKeyFormat::Pem | PublicKeyFormat::Hex) && !global.json {
        global.note(&format!("key id {}", first.key_id()));
    }
    Ok(())
}

/// The public key of `path`, or of the default key when `None`.
fn load_public(path: Option<&Path>, global: &GlobalOpts) -> Result<PublicKey, Failure> {
    let location = key_location(path, global)?.ok_or_else(|| {
        Failure::usage(
            "no key given",
            Some(
                "pass a key file, set OTA_SIGN_KEY, or set `key` in [defaults] of ota-sign.toml"
                    .to_owned(),
            ),
        )
    })?;
    let loaded = location.load(&crate::passphrase::source())?;
    report_warnings(global, &loaded.warnings);
    Ok(loaded.value.public_key())
}
