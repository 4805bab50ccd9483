//! Ed25519 private keys and their PKCS#8 encodings.

use std::fmt;

use ed25519_dalek::pkcs8::KeypairBytes;
use ed25519_dalek::{Signer, SigningKey};
use ota_format::KeyId;
use pkcs8::{EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

use crate::encrypt::{self, ScryptCost};
use crate::error::KeyError;
use crate::public::PublicKey;

/// An Ed25519 signing key. The secret is wiped from memory on drop and never appears in
/// `Debug` output.
#[derive(Clone)]
pub struct PrivateKey {
    signing: SigningKey,
}

impl PrivateKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose RFC 8032 secret (seed) is `seed`. Meant for test vectors and for
    /// signer backends that hold the seed themselves.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        PrivateKey {
            signing: SigningKey::from_bytes(seed),
        }
    }

    pub(crate) fn from_signing_key(signing: SigningKey) -> Self {
        PrivateKey { signing }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(&self.signing.verifying_key().to_bytes())
            .expect("a key derived from a secret is a valid point")
    }

    /// The key id of the public key.
    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// An Ed25519 signature over `message` (RFC 8032, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Unencrypted PKCS#8 **v1** PEM ("-----BEGIN PRIVATE KEY-----"), byte for byte the
    /// form `openssl genpkey -algorithm ed25519` writes. Not v2: OpenSSL 3.0 rejects the
    /// v2 form with the embedded public key.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_v1_der()?;
        pem(&der, "PRIVATE KEY")
    }

    /// Passphrase-encrypted PKCS#8 PEM ("-----BEGIN ENCRYPTED PRIVATE KEY-----"): PBES2
    /// with scrypt and AES-256-CBC, readable by `openssl pkey -passin`.
    pub fn to_encrypted_pkcs8_pem(
        &self,
        passphrase: &str,
        cost: ScryptCost,
    ) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_v1_der()?;
        let encrypted = encrypt::encrypt(der.as_bytes(), passphrase, cost)?;
        pem(&encrypted, "ENCRYPTED PRIVATE KEY")
    }

    fn pkcs8_v1_der(&self) -> Result<pkcs8::SecretDocument, KeyError> {
        let keypair = KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        keypair.to_pkcs8_der().map_err(|e| KeyError::Encode {
            detail: e.to_string(),
        })
    }
}

fn pem(doc: &pkcs8::SecretDocument, label: &'static str) -> Result<Zeroizing<String>, KeyError> {
    doc.to_pem(label, LineEnding::LF)
        .map_err(|e| KeyError::Encode {
            detail: e.to_string(),
        })
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Random {
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 section 7.1, test 1.
    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    const SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    #[test]
    fn rfc8032_vector_1() {
        let key = PrivateKey::from_seed(&SEED);
        assert_eq!(
            key.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, SIG_EMPTY);
        assert!(key.public_key().verify(b"", &sig));
        assert!(!key.public_key().verify(b"x", &sig));
    }

    #[test]
    fn pkcs8_v1_is_openssl_layout() {
        let pem = PrivateKey::from_seed(&SEED).to_pkcs8_pem().unwrap();
        // 48-byte v1 structure: version 0, OID 1.3.101.112, nested OCTET STRING.
        // The first 16 bytes base64-encode to this fixed prefix.
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = PrivateKey::from_seed(&SEED);
        let dbg = format!("{key:?}");
        assert!(dbg.contains(&key.key_id().to_string()));
        assert!(!dbg.contains("9d61"));
        assert!(!dbg.to_lowercase().contains("secret"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let key = PrivateKey::from_seed(&SEED);
        assert!(matches!(
            key.to_encrypted_pkcs8_pem("", ScryptCost::new(10, 8, 1).unwrap()),
            Err(KeyError::EmptyPassphrase)
        ));
    }
}
