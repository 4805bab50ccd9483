//! `ota-sign keygen PATH`: a new Ed25519 key pair as PATH.key and PATH.pub.

use std::path::PathBuf;

use ota_keys::{
    KeyPairPaths, PASSPHRASE_ENV, PassphraseRequest, PassphraseSource, PrivateKey, Protection,
    ScryptCost,
};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::exit::{Failure, IoFailure};

pub const LONG_ABOUT: &str = "\
Create a new Ed25519 signing key pair.

Writes PATH.key, the private key (PKCS#8 PEM, the format of `openssl genpkey -algorithm
ed25519`, file mode 0600), and PATH.pub, the public key (SubjectPublicKeyInfo PEM). Existing
files are never overwritten. A missing directory (keys/ in a new project) is created with
mode 0700. The key id printed is how images, manifests and `inspect`
name the key.

The private key is encrypted with a passphrase (scrypt + AES-256-CBC, readable by `openssl
pkey`) unless you pass --no-encrypt. The passphrase is taken from $OTA_SIGN_PASSPHRASE, or
asked twice on the terminal. Without a terminal and without $OTA_SIGN_PASSPHRASE you must
choose --no-encrypt explicitly.";

pub const EXAMPLES: &str = "\
Examples:
  ota-sign keygen keys/release             # asks for a passphrase
  OTA_SIGN_PASSPHRASE=... ota-sign keygen keys/release --encrypt
  ota-sign keygen keys/dev --no-encrypt    # plain key, mode 0600 only
  ota-sign keygen keys/release --json      # {\"key_id\": ..., ...}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    created_directory: Option<&'a std::path::Path>,
}

/// Mode of a key directory keygen creates: the private key's directory is nobody else's
/// business either.
const KEY_DIRECTORY_MODE: u32 = 0o700;

/// Creates the directory a new key goes into when it does not exist yet (`ota-sign keygen
/// keys/release` in a new project), with [`KEY_DIRECTORY_MODE`]; returns it if created.
fn create_key_directory(private_key: &std::path::Path) -> Result<Option<PathBuf>, Failure> {
    let Some(dir) = private_key.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(None);
    };
    if dir.exists() {
        return Ok(None);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, KEY_DIRECTORY_MODE);
    builder.create(dir).map_err(|source| IoFailure {
        action: format!("creating the key directory {}", dir.display()),
        source,
    })?;
    Ok(Some(dir.to_path_buf()))
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
    let passphrase = if encrypt {
        Some(crate::passphrase::source().passphrase(PassphraseRequest::Protect(&paths.private))?)
    } else {
        None
    };
    let created_directory = create_key_directory(&paths.private)?;
    match &passphrase {
        Some(passphrase) => {
            let protection = Protection::Passphrase {
                passphrase,
                cost: scrypt_cost()?,
            };
            ota_keys::write_keypair(&paths, &key, protection)?;
        }
        None => ota_keys::write_keypair(&paths, &key, Protection::Unencrypted)?,
    }

    let public = key.public_key();
    global.json_result(&Report {
        key_id: public.key_id().to_string(),
        public_key: public.to_hex(),
        private_key_file: &paths.private,
        public_key_file: &paths.public,
        encrypted: encrypt,
        created_directory: created_directory.as_deref(),
    });
    if let Some(dir) = &created_directory {
        global.say(&format!(
            "Created directory {} (mode {KEY_DIRECTORY_MODE:o}: only you can list it)",
            dir.display()
        ));
    }
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
