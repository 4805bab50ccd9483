//! `ota-keys`: the Ed25519 signing keys of ota-sign.
//!
//! * [`PrivateKey`] / [`PublicKey`]: generation, signing, key ids ([`ota_format::KeyId`]).
//! * Files: private keys are PKCS#8 v1 PEM, exactly as `openssl genpkey -algorithm
//!   ed25519` writes them, optionally passphrase-encrypted (PBES2, scrypt + AES-256-CBC,
//!   readable by `openssl pkey -passin`); public keys are SubjectPublicKeyInfo PEM.
//!   Reading accepts PKCS#8 v1 and v2, encrypted or not, and public keys, and names
//!   what is wrong with anything else ([`KeyError`]).
//! * [`write_keypair`] creates key files exclusively (never overwriting) with mode 0600.
//! * [`SigningKeySource`]: what commands sign with, so a hardware or cloud signer can be
//!   added without touching them; [`KeyLocation`] picks a file or `$OTA_SIGN_KEY`.
//! * [`published_key_name`]: keys whose private half is public (RFC 8032, test keys),
//!   which must never be trusted.
//! * [`secure_boot`]: Secure Boot V2 RSA 3072 keys, and signing app images with them as
//!   espsecure does.
//! * [`export`]: public keys as PEM, hex, Rust or C source for a firmware's trusted keys.
//!
//! The crate never prints and never prompts: passphrases come through a
//! [`PassphraseSource`], warnings are returned as [`KeyWarning`] values.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
mod decode;
mod encrypt;
mod error;
pub mod export;
mod file;
mod insecure;
mod origin;
mod passphrase;
mod private;
mod public;
pub mod secure_boot;
mod source;

pub use decode::{KeyMaterial, parse_pem};
pub use encrypt::{MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, ScryptCost};
pub use error::{Algorithm, KeyError};
pub use file::{
    KeyPairPaths, KeyWarning, PRIVATE_KEY_MODE, PUBLIC_KEY_MODE, Protection, write_keypair,
    write_new_file,
};
pub use insecure::{published_key_name, published_keys};
pub use origin::KeyOrigin;
pub use passphrase::{
    EnvPassphrase, FixedPassphrase, NoPassphrase, PASSPHRASE_ENV, PassphraseRequest,
    PassphraseSource,
};
pub use private::PrivateKey;
pub use public::PublicKey;
pub use source::{KEY_ENV, KeyLocation, Loaded, LocalKey, SigningKeySource, load_public_key};

pub use ota_format::KeyId;
pub use zeroize::Zeroizing;
