//! One error type for everything that can go wrong with a key, each variant naming the
//! check that failed so the CLI can map it to an exit code and a line of help.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::origin::KeyOrigin;

/// Why a key could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed at the operating-system level.
    #[error("{origin}: {source}")]
    Io {
        /// The file concerned.
        origin: KeyOrigin,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A key file to be created already exists; key files are never overwritten.
    #[error("{} already exists; refusing to overwrite a key file", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// The text has no PEM `-----BEGIN ...-----` line at all.
    #[error("{origin} is not a PEM key (no \"-----BEGIN ...-----\" line)")]
    NotPem {
        /// Where the text came from.
        origin: KeyOrigin,
    },

    /// The PEM armour or its base64 body is broken.
    #[error("{origin}: corrupt PEM: {detail}")]
    CorruptPem {
        /// Where the text came from.
        origin: KeyOrigin,
        /// What the decoder reported.
        detail: String,
    },

    /// The PEM decoded, but the DER structure inside is not a valid key of its kind.
    #[error("{origin}: malformed {what}: {detail}")]
    Malformed {
        /// Where the key came from.
        origin: KeyOrigin,
        /// Which structure failed to decode (e.g. "PKCS#8 private key").
        what: &'static str,
        /// What the decoder reported.
        detail: String,
    },

    /// A well-formed key, but not an Ed25519 one.
    #[error("{origin}: this is {algorithm} key; ota-sign needs Ed25519")]
    WrongAlgorithm {
        /// Where the key came from.
        origin: KeyOrigin,
        /// What it is instead.
        algorithm: Algorithm,
    },

    /// A PEM block of a kind ota-sign does not read (e.g. an OpenSSH key or a certificate).
    #[error("{origin}: \"{label}\" is not a key format ota-sign reads (PKCS#8 or public key PEM)")]
    UnsupportedPemLabel {
        /// Where the text came from.
        origin: KeyOrigin,
        /// The PEM type label found.
        label: String,
    },

    /// The key is encrypted and no passphrase could be obtained without a terminal.
    #[error("{origin}: key is encrypted: set OTA_SIGN_PASSPHRASE")]
    PassphraseRequired {
        /// The encrypted key.
        origin: KeyOrigin,
    },

    /// A new key is to be encrypted and no passphrase could be obtained without a terminal.
    #[error("{}: encrypting a key needs a passphrase: set OTA_SIGN_PASSPHRASE", path.display())]
    PassphraseRequiredToEncrypt {
        /// The key file to be written.
        path: PathBuf,
    },

    /// Decryption failed: the passphrase does not open this key.
    #[error("{origin}: wrong passphrase")]
    WrongPassphrase {
        /// The encrypted key.
        origin: KeyOrigin,
    },

    /// The key is encrypted with a scheme ota-sign does not implement (PBES1, DES, SHA-1...).
    #[error("{origin}: unsupported key encryption: {detail}")]
    UnsupportedEncryption {
        /// The encrypted key.
        origin: KeyOrigin,
        /// What was found.
        detail: String,
    },

    /// The key file asks for a key derivation so costly that honouring it would exhaust
    /// memory or time; a hostile file must not be able to do that.
    #[error("{origin}: key derivation parameters too expensive ({detail})")]
    KdfTooExpensive {
        /// The encrypted key.
        origin: KeyOrigin,
        /// The offending parameters.
        detail: String,
    },

    /// A signing key was needed but the file holds only a public key.
    #[error("{origin} holds only a public key; signing needs the private key")]
    PublicKeyOnly {
        /// The public-key file.
        origin: KeyOrigin,
    },

    /// A PKCS#8 v2 file whose embedded public key is not the one its private key derives.
    #[error("{origin}: the public key stored in the file does not belong to its private key")]
    KeyPairMismatch {
        /// The inconsistent key.
        origin: KeyOrigin,
    },

    /// The passphrase and its confirmation differ.
    #[error("passphrases do not match")]
    PassphraseMismatch,

    /// An empty passphrase was given for encrypting a key.
    #[error("empty passphrase; an encrypted key needs a passphrase")]
    EmptyPassphrase,

    /// A raw public key (hex or bytes) is not a valid Ed25519 public key.
    #[error("invalid public key: {detail}")]
    InvalidPublicKey {
        /// Why.
        detail: String,
    },

    /// A well-formed key that Secure Boot V2 signing does not take (ECDSA on another curve
    /// than P-256: P-192 is weak, P-384 needs SHA-384 blocks; or another algorithm).
    #[error(
        "{origin}: this is {algorithm} key; Secure Boot V2 signing takes RSA 3072 or ECDSA P-256 (P-192 and P-384 are not supported)"
    )]
    UnsupportedSecureBootKey {
        /// Where the key came from.
        origin: KeyOrigin,
        /// What it is instead.
        algorithm: Algorithm,
    },

    /// A list of trusted keys that no firmware descriptor can hold (none, more than 8,
    /// or duplicates).
    #[error("invalid trusted-key set: {detail}")]
    InvalidTrustedKeySet {
        /// Why.
        detail: String,
    },

    /// Scrypt cost parameters out of the range this crate writes.
    #[error("invalid scrypt parameters: {detail}")]
    InvalidKdfParams {
        /// Why.
        detail: String,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {detail}")]
    Random {
        /// What getrandom reported.
        detail: String,
    },

    /// Encoding or encrypting a key failed (should not happen with valid input).
    #[error("encoding the key failed: {detail}")]
    Encode {
        /// What the encoder reported.
        detail: String,
    },

    /// A signing backend (file, HSM, cloud) could not produce a signature.
    #[error("signer {signer} failed: {detail}")]
    Signer {
        /// Which signer.
        signer: String,
        /// What it reported.
        detail: String,
    },
}

impl KeyError {
    /// True when the failure is the operating system's (file missing, permission denied,
    /// disk full), as opposed to a problem with the key itself.
    pub fn is_io(&self) -> bool {
        matches!(self, KeyError::Io { .. })
    }

    /// True when an output file already exists.
    pub fn is_conflict(&self) -> bool {
        matches!(self, KeyError::AlreadyExists { .. })
    }
}

/// The algorithm of a key that is not Ed25519, for [`KeyError::WrongAlgorithm`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSA (PKCS#1 or PKCS#8).
    Rsa,
    /// ECDSA over NIST P-256 (prime256v1 / secp256r1).
    P256,
    /// ECDSA over NIST P-384.
    P384,
    /// ECDSA over secp256k1.
    Secp256k1,
    /// Elliptic-curve key on another or unknown curve.
    Ec,
    /// Ed448.
    Ed448,
    /// X25519 (key agreement, not signing).
    X25519,
    /// DSA.
    Dsa,
    /// Anything else, by OID.
    Other(String),
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Rsa => f.write_str("an RSA"),
            Algorithm::P256 => f.write_str("a P-256 (ECDSA)"),
            Algorithm::P384 => f.write_str("a P-384 (ECDSA)"),
            Algorithm::Secp256k1 => f.write_str("a secp256k1 (ECDSA)"),
            Algorithm::Ec => f.write_str("an elliptic-curve (ECDSA)"),
            Algorithm::Ed448 => f.write_str("an Ed448"),
            Algorithm::X25519 => f.write_str("an X25519"),
            Algorithm::Dsa => f.write_str("a DSA"),
            Algorithm::Other(oid) => write!(f, "an unknown (OID {oid})"),
        }
    }
}
