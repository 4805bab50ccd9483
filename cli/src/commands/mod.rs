//! One module per subcommand. Each has an `Args` struct (clap derive; its doc comment and
//! `long_about` are the command's help) and `run(args, &GlobalOpts) -> Result<(), Failure>`.
//! Adding a command is adding a module and one line in [`Command`] and [`Command::run`].
//! A command keeps arguments, progress and messages; what it does to files, devices and
//! hosts belongs in the library (`ota_sign_lib`, a module per domain, typed errors), and
//! each new library error gets its diagnostic and exit code in `crate::diagnostics`.
//! Commands never import each other: value parsers live in `crate::args`, trust checks
//! as failures in `crate::checks`.
//!
//! Helpers shared by several commands (finding the signing key) live here.

pub mod completions;
pub mod delta;
pub mod extract;
pub mod flash;
pub mod fleet;
pub mod inspect;
pub mod keygen;
pub mod man;
pub mod package;
pub mod pubkey;
pub mod publish;
pub mod release;
pub mod verify;

use std::path::Path;

use clap::Subcommand;
use ota_keys::{KeyLocation, KeyWarning, PublicKey, SigningKeySource};

use crate::cli::GlobalOpts;
use crate::diagnostics::PolicyRefusal;
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
    /// Make a signed delta update (.otad) from the image devices run to a new one
    #[command(long_about = delta::ABOUT)]
    Delta(delta::Args),
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
    /// Fleet status from the static host's access logs (no server)
    Fleet(fleet::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(long_about = completions::ABOUT)]
    Completions(completions::Args),
    /// Print the manual page (roff) of ota-sign or one of its commands
    #[command(long_about = man::ABOUT)]
    Man(man::Args),
}

impl Command {
    /// Runs the command.
    pub fn run(self, global: &GlobalOpts) -> Result<(), Failure> {
        match self {
            Command::Keygen(args) => keygen::run(args, global),
            Command::Pubkey(args) => pubkey::run(args, global),
            Command::Package(args) => package::run(args, global),
            Command::Delta(args) => delta::run(args, global),
            Command::Verify(args) => verify::run(args, global),
            Command::Inspect(args) => inspect::run(args, global),
            Command::Extract(args) => extract::run(args, global),
            Command::Flash(args) => flash::run(args, global),
            Command::Release(args) => release::run(args, global),
            Command::Publish(args) => publish::run(args, global),
            Command::Fleet(args) => fleet::run(args, global),
            Command::Completions(args) => completions::run(args, global),
            Command::Man(args) => man::run(args, global),
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
/// asking for its passphrase if it is encrypted. Commands see only the
/// [`SigningKeySource`] seam: a key in an HSM or a KMS is another implementation
/// returned here, and no command changes.
pub fn signing_key(
    flag: Option<&Path>,
    global: &GlobalOpts,
) -> Result<Box<dyn SigningKeySource>, Failure> {
    let location = key_location(flag, global)?.ok_or_else(no_key)?;
    global.detail(&format!("signing key: {}", location.origin()));
    let loaded = location
        .load_signing(&crate::passphrase::source())
        .map_err(|e| unreadable_key(e, None))?;
    report_warnings(global, &loaded.warnings);
    Ok(Box::new(loaded.value))
}

/// The public key of a key file (public or private) or of 64 hex digits.
pub fn public_key(spec: &str, global: &GlobalOpts) -> Result<PublicKey, Failure> {
    let loaded = ota_keys::load_public_key(spec, &crate::passphrase::source())
        .map_err(|e| unreadable_key(e, Some(spec)))?;
    report_warnings(global, &loaded.warnings);
    Ok(loaded.value)
}

/// A key that cannot be read is a key problem (exit 5), whatever the operating system
/// said; for a public-key argument the help says what was expected.
fn unreadable_key(error: ota_keys::KeyError, spec: Option<&str>) -> Failure {
    if !error.is_io() {
        return error.into();
    }
    let help = match spec {
        Some(spec) => format!(
            "{spec:?} is neither a readable key file nor 64 hex digits; expected a .pub or .key file, or a raw public key (`ota-sign pubkey KEY --format hex`)"
        ),
        None => "check the path of --key, $OTA_SIGN_KEY or `key` in ota-sign.toml".to_owned(),
    };
    Failure::new(
        crate::exit::KEY,
        crate::exit::Message::new(
            format!("cannot read key: {error}"),
            Some(help),
            "ota_sign::key::unreadable",
        ),
    )
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
    let mut keys = Vec::new();
    for spec in &device.trusted_keys {
        let key = match spec {
            crate::config::TrustedKeySpec::Hex(key) => *key,
            crate::config::TrustedKeySpec::File(path) => {
                public_key(&path.display().to_string(), global)?
            }
        };
        refuse_published_key(
            &key.to_bytes(),
            &format!("`trusted_keys` of [device.{device_type}] in ota-sign.toml lists"),
            global,
        )?;
        keys.push(key);
    }
    Ok(keys)
}

/// Refuses a key whose private half is public (see [`ota_keys::published_key_name`]) where
/// it would be trusted, unless `--allow-test-keys`; `role` says where it was found, e.g.
/// "the firmware trusts". Anyone can sign what such a key verifies.
pub fn refuse_published_key(
    key: &[u8; 32],
    role: &str,
    global: &GlobalOpts,
) -> Result<(), Failure> {
    let Some(name) = ota_keys::published_key_name(key) else {
        return Ok(());
    };
    let message = format!(
        "{role} key {} ({name}), whose private half is public: anyone can sign what it verifies",
        ota_format::KeyId::of(key)
    );
    if global.allow_test_keys {
        global.warn(&format!("{message} (accepted: --allow-test-keys)"));
        return Ok(());
    }
    Err(PolicyRefusal {
        message,
        help: "use a key of your own (`ota-sign keygen keys/release`), or pass --allow-test-keys in tests".to_owned(),
        code: "published_key",
    }
    .into())
}

/// Refuses firmware whose trusted-key descriptor contains a key whose private half is
/// public (unless `--allow-test-keys`): every device running it could be updated by anyone.
pub fn refuse_published_descriptor_keys(
    descriptor: Option<&ota_format::TrustedKeyDescriptor>,
    global: &GlobalOpts,
) -> Result<(), Failure> {
    for key in descriptor.map(|d| d.keys()).unwrap_or_default() {
        refuse_published_key(&key.public_key, "the firmware trusts", global)?;
    }
    Ok(())
}

/// Shows the library's warnings on stderr.
pub fn report_warnings(global: &GlobalOpts, warnings: &[KeyWarning]) {
    for w in warnings {
        global.warn(&w.to_string());
    }
}
