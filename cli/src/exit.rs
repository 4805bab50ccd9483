//! Exit codes, and the one error type every command returns.
//!
//! Scripts branch on the exit code, so each code is a promise:
//!
//! | code | constant              | meaning                                                         |
//! |-----:|-----------------------|-----------------------------------------------------------------|
//! | 0    | [`OK`]                | success                                                         |
//! | 1    | [`FAILURE`]           | anything not listed below                                       |
//! | 2    | [`USAGE`]             | bad command line (clap) or a bad `ota-sign.toml`                |
//! | 3    | [`INVALID_SIGNATURE`] | a signature or digest does not verify                           |
//! | 4    | [`IO`]                | reading or writing a file failed (missing, permission, disk)    |
//! | 5    | [`KEY`]               | key problem: unreadable or corrupt key file, wrong passphrase or key type |
//! | 6    | [`POLICY`]            | refused by a safety rule (lock-out, downgrade, wrong device)    |
//! | 7    | [`CONFLICT`]          | the target already exists (key or output file, published release) |
//! | 8    | [`CREDENTIALS`]       | the host rejected the credentials (S3 keys, GitHub token)       |
//! | 9    | [`NOT_FOUND`]         | the bucket or repository to publish to does not exist           |
//! | 10   | [`NETWORK`]           | the host could not be reached, broke off, or rate-limits us     |
//!
//! A command returns [`Failure`]. Any error type that implements [`ExitStatus`] and
//! [`miette::Diagnostic`] converts into it with `?`, so a new command adds its own error
//! enum and one `impl ExitStatus` without touching this file.

use std::error::Error as StdError;
use std::fmt;

use miette::Diagnostic;
use ota_keys::KeyError;

/// Success.
pub const OK: u8 = 0;
/// A failure no other code describes.
pub const FAILURE: u8 = 1;
/// Bad command line or configuration file. clap exits with 2 on its own errors too.
pub const USAGE: u8 = 2;
/// A signature or digest check failed: the input is not what it claims to be.
pub const INVALID_SIGNATURE: u8 = 3;
/// An operating-system I/O error.
pub const IO: u8 = 4;
/// A key could not be used: wrong passphrase, not Ed25519, corrupt, missing passphrase.
pub const KEY: u8 = 5;
/// Refused by a safety rule: the result would lock devices out, downgrade, or target
/// the wrong device.
pub const POLICY: u8 = 6;
/// The thing to be created already exists and is never overwritten.
pub const CONFLICT: u8 = 7;
/// The host rejected the credentials (or they lack a permission).
pub const CREDENTIALS: u8 = 8;
/// The bucket or repository does not exist, or the credentials cannot see it.
pub const NOT_FOUND: u8 = 9;
/// The host could not be reached, the connection broke off, or the host asks to wait
/// longer than allowed (a rate limit): running again later finishes the job.
pub const NETWORK: u8 = 10;

/// Errors that know which exit code they mean.
pub trait ExitStatus {
    /// One of the constants of this module.
    fn exit_code(&self) -> u8;
}

/// A failed command: a diagnostic to show and the exit code to return.
pub struct Failure {
    code: u8,
    diagnostic: Box<dyn Diagnostic + Send + Sync + 'static>,
}

impl Failure {
    /// A failure with an explicit code.
    pub fn new(code: u8, diagnostic: impl Diagnostic + Send + Sync + 'static) -> Self {
        Failure {
            code,
            diagnostic: Box::new(diagnostic),
        }
    }

    /// A usage error found after parsing (e.g. a required value missing from both the
    /// flags and the configuration).
    pub fn usage(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        Failure::new(
            USAGE,
            Message {
                message: message.into(),
                help: help.into(),
                code: "ota_sign::usage",
            },
        )
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The diagnostic.
    pub fn diagnostic(&self) -> &(dyn Diagnostic + Send + Sync + 'static) {
        &*self.diagnostic
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({}, {})", self.code, self.diagnostic)
    }
}

impl<E> From<E> for Failure
where
    E: ExitStatus + Diagnostic + Send + Sync + 'static,
{
    fn from(e: E) -> Self {
        Failure::new(e.exit_code(), e)
    }
}

/// `?` on a library error reports it through its diagnostic wrapper:
/// `failure_via!(RepoError => RepoDiagnostic)` makes `RepoError` convert into [`Failure`]
/// as `RepoDiagnostic(error)`, whose `Diagnostic` and [`ExitStatus`] say what it means.
macro_rules! failure_via {
    ($error:ty => $diagnostic:ident) => {
        impl From<$error> for $crate::exit::Failure {
            fn from(e: $error) -> Self {
                $diagnostic(e).into()
            }
        }
    };
}
pub(crate) use failure_via;

/// A diagnostic code as scripts match it: `ota_sign::AREA::NAME`.
pub(crate) fn diagnostic_code<'a>(
    area: &str,
    name: impl fmt::Display,
) -> Option<Box<dyn fmt::Display + 'a>> {
    Some(Box::new(format!("ota_sign::{area}::{name}")))
}

/// A plain message with optional help.
#[derive(Debug)]
pub struct Message {
    message: String,
    help: Option<String>,
    code: &'static str,
}

impl Message {
    /// A message with optional help and a stable diagnostic code.
    pub fn new(message: impl Into<String>, help: Option<String>, code: &'static str) -> Self {
        Message {
            message: message.into(),
            help,
            code,
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Message {}

impl Diagnostic for Message {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

/// A key error as a diagnostic: a stable code and a line of help per variant.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct KeyDiagnostic(pub KeyError);

impl Diagnostic for KeyDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let (code, _, _) = key_meaning(&self.0);
        diagnostic_code("key", code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let (_, _, help) = key_meaning(&self.0);
        help.map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

impl ExitStatus for KeyDiagnostic {
    fn exit_code(&self) -> u8 {
        key_exit_code(&self.0)
    }
}

/// The exit code of a key error.
pub fn key_exit_code(e: &KeyError) -> u8 {
    let (_, exit_code, _) = key_meaning(e);
    exit_code
}

const PEM_HELP: &str = "expected a PEM file starting with \"-----BEGIN PRIVATE KEY-----\", \
     \"-----BEGIN ENCRYPTED PRIVATE KEY-----\" or \"-----BEGIN PUBLIC KEY-----\"";
const ALREADY_EXISTS_HELP: &str =
    "key files are never overwritten; choose another name or move the old files away";
const WRONG_ALGORITHM_HELP: &str = "create an Ed25519 key with `ota-sign keygen NAME` or \
     `openssl genpkey -algorithm ed25519`";
const OPENSSH_HELP: &str = "OpenSSH keys are not read; create a key with `ota-sign keygen NAME`";
const PASSPHRASE_REQUIRED_HELP: &str = "run in a terminal to be asked, or set OTA_SIGN_PASSPHRASE";
const WRONG_PASSPHRASE_HELP: &str = "check OTA_SIGN_PASSPHRASE or retype the passphrase";
const PUBLIC_KEY_ONLY_HELP: &str = "pass the .key file, not the .pub file";
const SECURE_BOOT_KEY_HELP: &str = "use an RSA 3072 or ECDSA P-256 key, e.g. \
     `espsecure generate-signing-key --version 2 --scheme ecdsa256 sb.pem`";
const EMPTY_PASSPHRASE_HELP: &str =
    "use a non-empty passphrase, or `--no-encrypt` for a key protected only by its file mode";

/// What a key error means to a user, one row per variant: the last part of its stable
/// diagnostic code, its exit code and its line of help.
fn key_meaning(e: &KeyError) -> (&'static str, u8, Option<&'static str>) {
    use KeyError as K;
    match e {
        K::Io { .. } => ("io", IO, None),
        K::AlreadyExists { .. } => ("already_exists", CONFLICT, Some(ALREADY_EXISTS_HELP)),
        K::NotPem { .. } => ("not_pem", KEY, Some(PEM_HELP)),
        K::CorruptPem { .. } => ("corrupt_pem", KEY, None),
        K::Malformed { .. } => ("malformed", KEY, None),
        K::WrongAlgorithm { .. } => ("wrong_algorithm", KEY, Some(WRONG_ALGORITHM_HELP)),
        K::UnsupportedPemLabel { label, .. } if label.contains("OPENSSH") => {
            ("unsupported_format", KEY, Some(OPENSSH_HELP))
        }
        K::UnsupportedPemLabel { .. } => ("unsupported_format", KEY, Some(PEM_HELP)),
        K::PassphraseRequired { .. } | K::PassphraseRequiredToEncrypt { .. } => {
            ("passphrase_required", KEY, Some(PASSPHRASE_REQUIRED_HELP))
        }
        K::WrongPassphrase { .. } => ("wrong_passphrase", KEY, Some(WRONG_PASSPHRASE_HELP)),
        K::UnsupportedEncryption { .. } => ("unsupported_encryption", KEY, None),
        K::KdfTooExpensive { .. } => ("kdf_too_expensive", KEY, None),
        K::PublicKeyOnly { .. } => ("public_key_only", KEY, Some(PUBLIC_KEY_ONLY_HELP)),
        K::KeyPairMismatch { .. } => ("key_pair_mismatch", KEY, None),
        K::PassphraseMismatch => ("passphrase_mismatch", KEY, None),
        K::EmptyPassphrase => ("empty_passphrase", KEY, Some(EMPTY_PASSPHRASE_HELP)),
        K::InvalidPublicKey { .. } => ("invalid_public_key", KEY, None),
        K::InvalidTrustedKeySet { .. } => ("invalid_trusted_key_set", KEY, None),
        K::UnsupportedSecureBootKey { .. } => (
            "unsupported_secure_boot_key",
            KEY,
            Some(SECURE_BOOT_KEY_HELP),
        ),
        // Named before these had codes of their own; scripts may match "other".
        K::InvalidKdfParams { .. } => ("other", KEY, None),
        K::Random { .. } | K::Encode { .. } | K::Signer { .. } => ("other", FAILURE, None),
    }
}

failure_via!(KeyError => KeyDiagnostic);

/// An I/O error with what was being done, for commands' own file handling.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{action}")]
#[diagnostic(code(ota_sign::io))]
pub struct IoFailure {
    /// What was being done, e.g. "reading firmware.elf".
    pub action: String,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

impl ExitStatus for IoFailure {
    fn exit_code(&self) -> u8 {
        IO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_keys::{Algorithm, KeyOrigin};
    use std::path::PathBuf;

    #[test]
    fn key_errors_map_to_documented_codes() {
        let origin = KeyOrigin::Memory;
        let cases = [
            (
                KeyError::Io {
                    origin: origin.clone(),
                    source: std::io::Error::other("x"),
                },
                IO,
            ),
            (
                KeyError::AlreadyExists {
                    path: PathBuf::from("k"),
                },
                CONFLICT,
            ),
            (
                KeyError::WrongPassphrase {
                    origin: origin.clone(),
                },
                KEY,
            ),
            (
                KeyError::WrongAlgorithm {
                    origin: origin.clone(),
                    algorithm: Algorithm::Rsa,
                },
                KEY,
            ),
            (KeyError::NotPem { origin }, KEY),
        ];
        for (err, code) in cases {
            let f = Failure::from(err);
            assert_eq!(f.code(), code, "{f:?}");
            assert!(f.diagnostic().code().is_some());
        }
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            OK,
            FAILURE,
            USAGE,
            INVALID_SIGNATURE,
            IO,
            KEY,
            POLICY,
            CONFLICT,
            CREDENTIALS,
            NOT_FOUND,
            NETWORK,
        ];
        let mut sorted = all.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert_eq!(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
}
