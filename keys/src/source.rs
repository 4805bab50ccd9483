//! Signing keys as the commands see them: something that has a public key and can sign.
//! Files and environment variables are one implementation; an HSM or a cloud KMS would
//! be another, without touching the commands.

use std::fmt;
use std::path::{Path, PathBuf};

use ota_format::KeyId;
use zeroize::Zeroizing;

use crate::decode::{KeyMaterial, parse_pem};
use crate::error::KeyError;
use crate::file::{KeyWarning, permission_warning, read_key_file};
use crate::origin::KeyOrigin;
use crate::passphrase::PassphraseSource;
use crate::private::PrivateKey;
use crate::public::PublicKey;

/// The environment variable that may hold a private key's PEM text (for CI, where the key
/// is a secret rather than a file).
pub const KEY_ENV: &str = "OTA_SIGN_KEY";

/// Anything that can produce Ed25519 signatures for one key.
pub trait SigningKeySource {
    /// The raw 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// The key id signed objects carry.
    fn key_id(&self) -> KeyId {
        KeyId::of(&self.public_key())
    }

    /// An Ed25519 signature over `message`. Fallible because remote signers are.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError>;

    /// Where the key lives, for messages ("keys/release.key", "$OTA_SIGN_KEY").
    fn describe(&self) -> String;
}

impl SigningKeySource for PrivateKey {
    fn public_key(&self) -> [u8; 32] {
        PrivateKey::public_key(self).to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        Ok(PrivateKey::sign(self, message))
    }

    fn describe(&self) -> String {
        format!("in-memory key {}", self.key_id())
    }
}

/// A private key read from a file or an environment variable.
#[derive(Debug)]
pub struct LocalKey {
    key: PrivateKey,
    origin: KeyOrigin,
    encrypted: bool,
}

impl LocalKey {
    /// The key itself.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// Where it was read from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// Whether it was stored passphrase-encrypted.
    pub fn was_encrypted(&self) -> bool {
        self.encrypted
    }
}

impl SigningKeySource for LocalKey {
    fn public_key(&self) -> [u8; 32] {
        self.key.public_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        Ok(self.key.sign(message))
    }

    fn describe(&self) -> String {
        self.origin.to_string()
    }
}

/// A value together with warnings the caller should pass on to the user.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The value.
    pub value: T,
    /// Warnings (e.g. a private key file readable by others).
    pub warnings: Vec<KeyWarning>,
}

/// Where to read a key from, chosen by [`KeyLocation::resolve`].
#[derive(Clone)]
pub enum KeyLocation {
    /// A key file.
    File(PathBuf),
    /// PEM text from [`KEY_ENV`].
    Env(Zeroizing<String>),
}

impl fmt::Debug for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::File(p) => f.debug_tuple("File").field(p).finish(),
            KeyLocation::Env(_) => write!(f, "Env(${KEY_ENV})"),
        }
    }
}

impl KeyLocation {
    /// Picks the key by precedence: a path given as a flag, then PEM text in the
    /// environment (`env_pem`, normally `std::env::var(KEY_ENV)`), then a path from the
    /// configuration file. `None` when none is given.
    pub fn resolve(
        flag: Option<&Path>,
        env_pem: Option<String>,
        config: Option<&Path>,
    ) -> Option<Self> {
        if let Some(p) = flag {
            return Some(KeyLocation::File(p.to_path_buf()));
        }
        if let Some(pem) = env_pem {
            return Some(KeyLocation::Env(Zeroizing::new(pem)));
        }
        config.map(|p| KeyLocation::File(p.to_path_buf()))
    }

    /// [`KeyLocation::resolve`] with the environment read from [`KEY_ENV`].
    pub fn from_flag_env_config(flag: Option<&Path>, config: Option<&Path>) -> Option<Self> {
        Self::resolve(flag, std::env::var(KEY_ENV).ok(), config)
    }

    /// The origin used in messages.
    pub fn origin(&self) -> KeyOrigin {
        match self {
            KeyLocation::File(p) => KeyOrigin::File(p.clone()),
            KeyLocation::Env(_) => KeyOrigin::Env(KEY_ENV),
        }
    }

    /// Reads whatever key is there: private (possibly encrypted) or public.
    pub fn load(&self, passphrase: &dyn PassphraseSource) -> Result<Loaded<KeyMaterial>, KeyError> {
        let origin = self.origin();
        match self {
            KeyLocation::File(path) => {
                let file = read_key_file(path)?;
                let material = parse_pem(&file.text, &origin, passphrase)?;
                let warnings = match material {
                    KeyMaterial::Private { .. } => {
                        permission_warning(path, file.mode).into_iter().collect()
                    }
                    KeyMaterial::Public(_) => Vec::new(),
                };
                Ok(Loaded {
                    value: material,
                    warnings,
                })
            }
            KeyLocation::Env(pem) => Ok(Loaded {
                value: parse_pem(pem, &origin, passphrase)?,
                warnings: Vec::new(),
            }),
        }
    }

    /// Reads a private key for signing; a public-key file is
    /// [`KeyError::PublicKeyOnly`].
    pub fn load_signing(
        &self,
        passphrase: &dyn PassphraseSource,
    ) -> Result<Loaded<LocalKey>, KeyError> {
        let Loaded { value, warnings } = self.load(passphrase)?;
        match value {
            KeyMaterial::Private { key, encrypted } => Ok(Loaded {
                value: LocalKey {
                    key,
                    origin: self.origin(),
                    encrypted,
                },
                warnings,
            }),
            KeyMaterial::Public(_) => Err(KeyError::PublicKeyOnly {
                origin: self.origin(),
            }),
        }
    }
}

/// Reads the public key from a public-key file, a private-key file, or 64 hex digits:
/// the forms a trusted key may be given in (flags, `trusted_keys` in the configuration).
pub fn load_public_key(
    spec: &str,
    passphrase: &dyn PassphraseSource,
) -> Result<Loaded<PublicKey>, KeyError> {
    let looks_hex = spec.len() == 64 && spec.bytes().all(|b| b.is_ascii_hexdigit());
    if looks_hex && !Path::new(spec).exists() {
        return Ok(Loaded {
            value: PublicKey::from_hex(spec)?,
            warnings: Vec::new(),
        });
    }
    let Loaded { value, warnings } = KeyLocation::File(PathBuf::from(spec)).load(passphrase)?;
    Ok(Loaded {
        value: value.public_key(),
        warnings,
    })
}
