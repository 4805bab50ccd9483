//! `ota-sign keygen PATH`: a new Ed25519 key pair as PATH.key and PATH.pub.

use std::path::PathBuf;

use ota_keys::{
    KeyPairPaths, PASSPHRASE_ENV, PassphraseRequest, PassphraseSource, PrivateKey, Protection,
    ScryptCost,
};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::exit::Failure;

pub const LONG_ABOUT: &str = "\
Create a new Ed25519 signing key pair.

Writes PATH.key, the private key (PKCS#8 PEM, the format of `openssl genpkey -algorithm
ed25519`, file mode 0600), and PATH.pub, the public key (SubjectPublicKeyInfo PEM). Existing
files are never overwritten. The key id printed is how images, manifests and `inspect`
name the key.

The private key is encrypted with a passphrase (scrypt + AES-256-CBC, readable by `openssl
pkey`) unless you pass --no-encrypt. The passphrase is taken from $OTA_SIGN_PASSPHRASE, or
asked twice on the terminal. Without a terminal and without $OTA_SIGN_PASSPHRASE you must
choose --no-encrypt explicitly.";

pub const EXAMPLES: &str = "\
Examples:
  ota-sign keygen keys/release              # asks for a passphrase
  OTA_SIGN_PASSPHRASE=... ota-sign keygen keys/release --encrypt
  ota-sign keygen keys/dev --no-encrypt     # plain key, protected only by mode 0600
  ota-sign keygen keys/release --json       # {\"key_id\": ..., \"private_key_file\": ...}

Next: put the public key into the firmware, which decides whom the devices trust:
  ota-sign pubkey keys/release.pub --format rust";

/// Arguments of `ota-sign keygen`.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Args {
    /// Base path of the key pair: PATH.key and PATH.pub are written
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Encrypt the private key (passphrase from $OTA_SIGN_PASSPHRASE or the terminal)
    #[arg(long)]
    pub encrypt: bool,

    /// Write the private key unencrypted, protected only by its file mode
    #[arg(long, conflicts_with = "encrypt")]
    pub no_encrypt: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    key_id: String,
    public_key: String,
    private_key_file: &'a std::path::Path,
    public_key_file: &'a std::path::Path,
    encrypted: bool,
}

/// Runs `ota-sign keygen`.
pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let paths = KeyPairPaths::for_base(&args.path);
    // Encryption is the default; a plain key must be asked for by name. Without an
    // explicit choice and with no way to get a passphrase, refuse rather than guess.
    let passphrase_available = std::env::var_os(PASSPHRASE_ENV).is_some() || global.interactive();
    let encrypt = if args.no_encrypt {
        false
    } else if args.encrypt || passphrase_available {
        true
    } else {
        return Err(Failure::usage(
            "no passphrase available to encrypt the new key (no terminal, OTA_SIGN_PASSPHRASE not set)",
            Some(
                "set OTA_SIGN_PASSPHRASE, or pass --no-encrypt for a key protected only by its file mode"
                    .to_owned(),
            ),
        ));
    };

    // Refuse before asking for a passphrase that would be thrown away.
    for path in [&paths.private, &paths.public] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(ota_keys::KeyError::AlreadyExists { path: path.clone() }.into());
        }
    }

    let key = PrivateKey::generate()?;
    if encrypt {
        let passphrase =
            crate::passphrase::source().passphrase(PassphraseRequest::Protect(&paths.private))?;
        let protection = Protection::Passphrase {
            passphrase: &passphrase,
            cost: scrypt_cost()?,
        };
        ota_keys::write_keypair(&paths, &key, protection)?;
    } else {
        ota_keys::write_keypair(&paths, &key, Protection::Unencrypted)?;
    }

    let public = key.public_key();
    global.json_result(&Report {
        key_id: public.key_id().to_string(),
        public_key: public.to_hex(),
        private_key_file: &paths.private,
        public_key_file: &paths.public,
        encrypted: encrypt,
    });
    global.say(&format!("Created Ed25519 key {}", public.key_id()));
    global.say(&format!(
        "  private key: {} ({}, mode 0600)",
        paths.private.display(),
        if encrypt {
            "encrypted"
        } else {
            "NOT encrypted"
        }
    ));
    global.say(&format!("  public key:  {}", paths.public.display()));
    if !encrypt {
        global.warn(
            "the private key is not encrypted; keep it off shared disks and out of version control",
        );
    }
    Ok(())
}

/// The scrypt cost for new keys. Debug builds (the test binaries) honour
/// `OTA_SIGN_TEST_SCRYPT_LOG_N` so that CLI tests need not spend seconds in an
/// unoptimized scrypt; release builds always use the strong default.
fn scrypt_cost() -> Result<ScryptCost, Failure> {
    #[cfg(debug_assertions)]
    if let Ok(v) = std::env::var("OTA_SIGN_TEST_SCRYPT_LOG_N") {
        let log_n = v.parse::<u8>().map_err(|_| {
            Failure::usage(
                format!("OTA_SIGN_TEST_SCRYPT_LOG_N={v:?} is not a number"),
                None,
            )
        })?;
        return Ok(ScryptCost::new(log_n, 8, 1)?);
    }
    Ok(ScryptCost::DEFAULT)
}
