//! Where passphrases come from. The library never prompts: a terminal prompt is the
//! CLI's [`PassphraseSource`]; this module has the non-interactive ones.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::origin::KeyOrigin;

/// The environment variable holding the passphrase in CI and scripts.
pub const PASSPHRASE_ENV: &str = "OTA_SIGN_PASSPHRASE";

/// Why a passphrase is wanted.
#[derive(Clone, Copy, Debug)]
pub enum PassphraseRequest<'a> {
    /// To decrypt an existing key. Asked only once the key is known to be encrypted.
    Unlock(&'a KeyOrigin),
    /// To encrypt a new key file; an interactive source should ask twice.
    Protect(&'a Path),
}

impl PassphraseRequest<'_> {
    /// The error for "a passphrase is needed and none can be had" (no terminal, no
    /// environment variable), naming [`PASSPHRASE_ENV`].
    pub fn unavailable(self) -> KeyError {
        required(self)
    }
}

/// Supplies passphrases on demand.
pub trait PassphraseSource {
    /// A passphrase for `request`, or an error (typically [`KeyError::PassphraseRequired`]
    /// when nothing can supply one).
    fn passphrase(&self, request: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError>;
}

/// Never has a passphrase: reading an encrypted key fails with
/// [`KeyError::PassphraseRequired`]. Use for public keys and unencrypted keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, request: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError> {
        Err(required(request))
    }
}

/// A passphrase known in advance (from a test, a secret store, or the environment).
pub struct FixedPassphrase(Zeroizing<String>);

impl FixedPassphrase {
    /// Wraps `passphrase`.
    pub fn new(passphrase: impl Into<String>) -> Self {
        FixedPassphrase(Zeroizing::new(passphrase.into()))
    }
}

impl std::fmt::Debug for FixedPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedPassphrase(..)")
    }
}

impl PassphraseSource for FixedPassphrase {
    fn passphrase(&self, _: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError> {
        Ok(self.0.clone())
    }
}

/// Takes the passphrase from [`PASSPHRASE_ENV`] when set, otherwise asks `fallback`
/// (a terminal prompt in the CLI, [`NoPassphrase`] elsewhere).
#[derive(Debug)]
pub struct EnvPassphrase<F> {
    fallback: F,
}

impl<F: PassphraseSource> EnvPassphrase<F> {
    /// Environment first, then `fallback`.
    pub fn or(fallback: F) -> Self {
        EnvPassphrase { fallback }
    }
}

impl<F: PassphraseSource> PassphraseSource for EnvPassphrase<F> {
    fn passphrase(&self, request: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError> {
        match std::env::var(PASSPHRASE_ENV) {
            Ok(p) => Ok(Zeroizing::new(p)),
            Err(_) => self.fallback.passphrase(request),
        }
    }
}

fn required(request: PassphraseRequest<'_>) -> KeyError {
    match request {
        PassphraseRequest::Unlock(origin) => KeyError::PassphraseRequired {
            origin: origin.clone(),
        },
        PassphraseRequest::Protect(path) => KeyError::PassphraseRequiredToEncrypt {
            path: path.to_path_buf(),
        },
    }
}
