//! One module per subcommand. Each has an `Args` struct (clap derive; its doc comment and
//! `long_about` are the command's help) and `run(args, &GlobalOpts) -> Result<(), Failure>`.
//! Adding a command is adding a module and one line in [`Command`] and [`Command::run`].
//!
//! Helpers shared by several commands (finding the signing key) live here.

pub mod extract;
pub mod flash;
pub mod inspect;
pub mod keygen;
pub mod package;
pub mod pubkey;
pub mod publish;
pub mod release;
pub mod verify;

use std::path::Path;

use clap::Subcommand;
use ota_keys::{KeyLocation, KeyWarning, LocalKey, PublicKey};

use crate::cli::GlobalOpts;
use crate::exit::Failure;

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new Ed25519 signing key pair (KEY.key and KEY.pub)
    #[command(long_about = keygen::LONG_ABOUT, after_long_help = keygen::EXAMPLES)]
    Keygen(keygen::Args),
    /// Print the public key of a key file, for people or for firmware source code
    #[command(long_about = pubkey::LONG_ABOUT, after_long_help = pubkey::EXAMPLES)]
    Pubkey(pubkey::Args),
    /// Package an ESP32 build (ELF or app image) into a signed image
    #[command(long_about = package::ABOUT)]
    Package(package::Args),
    /// Verify a signed image or manifest as a device would
    #[command(long_about = verify::ABOUT)]
    Verify(verify::Args),
    /// Show what an image, manifest, app image or ELF contains (unverified)
    #[command(long_about = inspect::ABOUT)]
    Inspect(inspect::Args),
    /// Write the app image a device would install from a signed image
    #[command(long_about = extract::ABOUT)]
    Extract(extract::Args),
    /// Install bootloader, partition table and firmware on a new device (serial or flash image)
    // The variant's doc comment would replace the long help given on `flash::Args`.
    #[command(long_about = flash::ABOUT)]
    Flash(flash::Args),
    /// Sign channel manifests for images in a local release tree (offline)
    #[command(long_about = release::ABOUT)]
    Release(release::Args),
    /// Upload a release tree to a directory, S3 or GitHub Releases (no key needed)
    #[command(long_about = publish::ABOUT)]
    Publish(publish::Args),
}

impl Command {
    /// Runs the command.
    pub fn run(self, global: &GlobalOpts) -> Result<(), Failure> {
        match self {
            Command::Keygen(args) => keygen::run(args, global),
            Command::Pubkey(args) => pubkey::run(args, global),
            Command::Package(args) => package::run(args, global),
            Command::Verify(args) => verify::run(args, global),
            Command::Inspect(args) => inspect::run(args, global),
            Command::Extract(args) => extract::run(args, global),
            Command::Flash(args) => flash::run(args, global),
            Command::Release(args) => release::run(args, global),
            Command::Publish(args) => publish::run(args, global),
        }
    }
}

/// Where the key comes from: `flag`, else `$OTA_SIGN_KEY` (PEM text), else `[defaults]
/// key` in the configuration. `None` when none of them gives one.
pub fn key_location(
    flag: Option<&Path>,
    global: &GlobalOpts,
) -> Result<Option<KeyLocation>, Failure> {
    // The configuration is read only when needed, so a flag works even next to a
    // broken ota-sign.toml.
    let from_env = std::env::var(ota_keys::KEY_ENV).ok();
    if flag.is_none() && from_env.is_none() {
        let config = global.config()?;
        let key = config.and_then(|c| c.defaults.key.as_deref());
        return Ok(KeyLocation::resolve(None, None, key));
    }
    Ok(KeyLocation::resolve(flag, from_env, None))
}

fn no_key() -> Failure {
    Failure::usage(
        "no signing key given",
        Some(
            "pass --key FILE, set OTA_SIGN_KEY to the key's PEM text, or set `key` in \
             [defaults] of ota-sign.toml"
                .to_owned(),
        ),
    )
}

/// The signing key for commands that sign (see [`key_location`] for the precedence),
/// asking for its passphrase if it is encrypted.
pub fn signing_key(flag: Option<&Path>, global: &GlobalOpts) -> Result<LocalKey, Failure> {
    let location = key_location(flag, global)?.ok_or_else(no_key)?;
    global.detail(&format!("signing key: {}", location.origin()));
    let loaded = location.load_signing(&crate::passphrase::source())?;
    report_warnings(global, &loaded.warnings);
    Ok(loaded.value)
}

/// The public key of a key file (public or private) or of 64 hex digits.
pub fn public_key(spec: &str, global: &GlobalOpts) -> Result<PublicKey, Failure> {
    let loaded = ota_keys::load_public_key(spec, &crate::passphrase::source())?;
    report_warnings(global, &loaded.warnings);
    Ok(loaded.value)
}

/// The public keys `[device.<name>] trusted_keys` of ota-sign.toml lists for a device
/// type: the keys its firmware is expected to trust. Empty when there is no such table.
pub fn configured_trusted_keys(
    device_type: Option<&str>,
    global: &GlobalOpts,
) -> Result<Vec<PublicKey>, Failure> {
    let Some(device_type) = device_type else {
        return Ok(Vec::new());
    };
    let Some(device) = global.config()?.and_then(|c| c.device(device_type)) else {
        return Ok(Vec::new());
    };
    device
        .trusted_keys
        .iter()
        .map(|spec| match spec {
            crate::config::TrustedKeySpec::Hex(key) => Ok(*key),
            crate::config::TrustedKeySpec::File(path) => {
                public_key(&path.display().to_string(), global)
            }
        })
        .collect()
}

/// Shows the library's warnings on stderr.
pub fn report_warnings(global: &GlobalOpts, warnings: &[KeyWarning]) {
    for w in warnings {
        global.warn(&w.to_string());
    }
}
