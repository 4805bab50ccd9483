//! `ota-sign pubkey [KEY] [--format pem|hex|rust|c]`: the public key of a key file.

use std::path::PathBuf;

use ota_keys::export::{self, PublicKeyFormat};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::commands::{key_location, report_warnings};
use crate::exit::Failure;

pub const LONG_ABOUT: &str = "\
Print the public key of a key file (private or public, encrypted or not).

Formats:
  pem   SubjectPublicKeyInfo PEM, as `openssl pkey -pubout` writes it (default)
  hex   the raw 32-byte key as 64 hex digits (usable in ota-sign.toml trusted_keys)
  rust  a `const` array and the trusted-key descriptor static for a Rust firmware
  c     a `static const uint8_t[32]` array for a C firmware

Every format names the key id; for pem and hex it is printed on stderr so that stdout
stays a clean key file. Without KEY, the key comes from $OTA_SIGN_KEY, then from `key` in
[defaults] of ota-sign.toml.";

pub const EXAMPLES: &str = "\
Examples:
  ota-sign pubkey keys/release.key > keys/release.pub
  ota-sign pubkey keys/release.pub --format hex
  ota-sign pubkey keys/release.pub --format rust > firmware/src/trusted_keys.rs
  ota-sign pubkey keys/release.pub --format c > main/trusted_keys.h";

/// Arguments of `ota-sign pubkey`.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Args {
    /// Private or public key file [default: $OTA_SIGN_KEY, then the configured key]
    #[arg(value_name = "KEY")]
    pub key: Option<PathBuf>,

    /// Output format: pem, hex, rust or c
    #[arg(long, short = 'f', default_value = "pem", value_name = "FORMAT", value_parser = parse_format)]
    pub format: PublicKeyFormat,
}

fn parse_format(s: &str) -> Result<PublicKeyFormat, String> {
    s.parse()
}

#[derive(Serialize)]
struct Report<'a> {
    key_id: String,
    public_key: String,
    format: &'a str,
    text: &'a str,
}

/// Runs `ota-sign pubkey`.
pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let location = key_location(args.key.as_deref(), global)?.ok_or_else(|| {
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
    let public = loaded.value.public_key();
    let text = export::render(&public, args.format);

    global.json_result(&Report {
        key_id: public.key_id().to_string(),
        public_key: public.to_hex(),
        format: args.format.name(),
        text: &text,
    });
    global.payload(&text);
    if matches!(args.format, PublicKeyFormat::Pem | PublicKeyFormat::Hex) && !global.json {
        global.note(&format!("key id {}", public.key_id()));
    }
    Ok(())
}
