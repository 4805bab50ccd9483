//! Secure Boot V2 keys and signing an app image as `espsecure sign-data --version 2`
//! does: pad with `0xFF` to 4 KiB, sign SHA-256 of that, append one signature sector.
//! RSA 3072 keys sign with RSA-PSS (SHA-256, MGF1-SHA-256, salt 32; block version 2),
//! ECDSA P-256 keys with ECDSA over SHA-256 (block version 3, `ecdsa.rs`).
//!
//! Key files are PEM: PKCS#8 (`openssl genrsa` / `genpkey`, RSA or P-256), PKCS#1 (`RSA
//! PRIVATE KEY`, what `espsecure generate-signing-key --scheme rsa3072` writes), SEC1 (`EC
//! PRIVATE KEY`, what `--scheme ecdsa256` and `openssl ecparam -genkey` write),
//! passphrase-encrypted PKCS#8 (the same PBES2 as the Ed25519 keys), or a public key
//! (digest only: enough to check, not to sign). P-192 and P-384 keys are refused.

mod ecdsa;

use std::path::Path;

use ota_format::esp::secure_boot::{
    RSA_KEY_MATERIAL_LEN, RSA_SIGNATURE_LEN, SIGNATURE_BLOCK_LEN, SIGNATURE_SECTOR_LEN,
    SecureBootKeyDigest, rsa_block, rsa_key_digest, sector,
};
use pkcs8::PrivateKeyInfoRef;
use pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::{Digest, Sha256};
use rsa::signature::hazmat::PrehashSigner;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use zeroize::Zeroizing;

use crate::decode::{classify, first_key_block, pem_body, sec1_curve};
use crate::encrypt;
use crate::error::{Algorithm, KeyError};
use crate::origin::KeyOrigin;
use crate::passphrase::{PassphraseRequest, PassphraseSource};

/// Modulus size ESP-IDF's Secure Boot V2 RSA scheme uses.
pub const SECURE_BOOT_RSA_BITS: usize = 3072;
/// PSS salt length ESP-IDF uses.
const SALT_LEN: usize = 32;

/// A Secure Boot V2 key file: a private key signs, a public key only names its digest.
pub enum SecureBootKey {
    /// An RSA 3072 private key.
    RsaPrivate(Box<RsaPrivateKey>),
    /// An RSA 3072 public key.
    RsaPublic(RsaPublicKey),
    /// An ECDSA P-256 private key.
    P256Private(Box<p256::ecdsa::SigningKey>),
    /// An ECDSA P-256 public key.
    P256Public(p256::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for SecureBootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key's numbers.
        write!(f, "SecureBootKey({})", self.digest())
    }
}

impl SecureBootKey {
    /// Reads a key file; an encrypted one asks `passphrase`.
    pub fn load(path: &Path, passphrase: &dyn PassphraseSource) -> Result<Self, KeyError> {
        let origin = KeyOrigin::File(path.to_owned());
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                    origin: origin.clone(),
                    source,
                })?,
            );
        Self::parse(&text, &origin, passphrase)
    }

    /// Parses PEM text.
    pub fn parse(
        text: &str,
        origin: &KeyOrigin,
        passphrase: &dyn PassphraseSource,
    ) -> Result<Self, KeyError> {
        let block = first_key_block(text, origin)?;
        let der = pem_body(&block, origin)?;
        let key = match block.label {
            "PRIVATE KEY" => private_from_pkcs8(&der, origin)?,
            "RSA PRIVATE KEY" => SecureBootKey::RsaPrivate(Box::new(
                RsaPrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| malformed(origin, "PKCS#1 RSA private key", &e))?,
            )),
            "EC PRIVATE KEY" => match sec1_curve(&der) {
                Algorithm::P256 => SecureBootKey::P256Private(Box::new(
                    ecdsa::signing_key_from_sec1(&der)
                        .map_err(|e| malformed(origin, "SEC1 P-256 private key", &e))?,
                )),
                algorithm => return Err(unsupported(origin, algorithm)),
            },
            "ENCRYPTED PRIVATE KEY" => {
                encrypt::check_encrypted(&der, origin)?;
                let pass = passphrase.passphrase(PassphraseRequest::Unlock(origin))?;
                let plain = encrypt::decrypt(&der, &pass, origin)?;
                // Garbage from a wrong passphrase fails to decode: still a wrong passphrase.
                match private_from_pkcs8(&plain, origin) {
                    Err(KeyError::Malformed { .. }) => {
                        return Err(KeyError::WrongPassphrase {
                            origin: origin.clone(),
                        });
                    }
                    other => other?,
                }
            }
            "PUBLIC KEY" => public_from_spki(&der, origin)?,
            label => {
                return Err(KeyError::UnsupportedPemLabel {
                    origin: origin.clone(),
                    label: label.to_owned(),
                });
            }
        };
        let rsa_bits = match &key {
            SecureBootKey::RsaPrivate(k) => Some(k.n().bit_width()),
            SecureBootKey::RsaPublic(k) => Some(k.n().bit_width()),
            SecureBootKey::P256Private(_) | SecureBootKey::P256Public(_) => None,
        };
        if let Some(bits) = rsa_bits.map(|b| b as usize)
            && bits != SECURE_BOOT_RSA_BITS
        {
            return Err(KeyError::InvalidPublicKey {
                detail: format!(
                    "{origin}: a {bits}-bit RSA key; Secure Boot V2 needs RSA {SECURE_BOOT_RSA_BITS}"
                ),
            });
        }
        Ok(key)
    }

    /// The key digest eFuse holds (espsecure `digest-sbv2-public-key`).
    pub fn digest(&self) -> SecureBootKeyDigest {
        match self {
            SecureBootKey::RsaPrivate(k) => rsa_key_digest(&key_material(&k.to_public_key())),
            SecureBootKey::RsaPublic(k) => rsa_key_digest(&key_material(k)),
            SecureBootKey::P256Private(k) => ecdsa::key_digest(k.verifying_key()),
            SecureBootKey::P256Public(k) => ecdsa::key_digest(k),
        }
    }

    /// `image` signed for Secure Boot V2: `0xFF` padding to 4 KiB, then a signature
    /// sector with one block (RSA-PSS or ECDSA, as the key). Needs the private key.
    pub fn sign_app_image(&self, image: &[u8], origin: &KeyOrigin) -> Result<Vec<u8>, KeyError> {
        let mut out = image.to_vec();
        out.resize(
            image.len().next_multiple_of(SIGNATURE_SECTOR_LEN as usize),
            0xFF,
        );
        let digest: [u8; 32] = Sha256::digest(&out).into();
        let signer_failed = |detail: String| KeyError::Signer {
            signer: origin.to_string(),
            detail,
        };
        let block = match self {
            SecureBootKey::RsaPrivate(key) => {
                rsa_signature_block(key, &digest).map_err(|e| signer_failed(e.to_string()))?
            }
            SecureBootKey::P256Private(key) => {
                ecdsa::signature_block(key, &digest).map_err(|e| signer_failed(e.to_string()))?
            }
            SecureBootKey::RsaPublic(_) | SecureBootKey::P256Public(_) => {
                return Err(KeyError::PublicKeyOnly {
                    origin: origin.clone(),
                });
            }
        };
        out.extend_from_slice(&sector(&[block]));
        Ok(out)
    }
}

fn malformed(origin: &KeyOrigin, what: &'static str, e: &dyn std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        origin: origin.clone(),
        what,
        detail: e.to_string(),
    }
}

fn unsupported(origin: &KeyOrigin, algorithm: Algorithm) -> KeyError {
    KeyError::UnsupportedSecureBootKey {
        origin: origin.clone(),
        algorithm,
    }
}

/// A PKCS#8 `PrivateKeyInfo` holding an RSA or P-256 key.
fn private_from_pkcs8(der: &[u8], origin: &KeyOrigin) -> Result<SecureBootKey, KeyError> {
    const WHAT: &str = "PKCS#8 private key";
    let info = PrivateKeyInfoRef::try_from(der).map_err(|e| malformed(origin, WHAT, &e))?;
    match classify(&info.algorithm) {
        Algorithm::Rsa => Ok(SecureBootKey::RsaPrivate(Box::new(
            RsaPrivateKey::from_pkcs8_der(der).map_err(|e| malformed(origin, WHAT, &e))?,
        ))),
        // The PKCS#8 private key of an EC key is a SEC1 ECPrivateKey.
        Algorithm::P256 => Ok(SecureBootKey::P256Private(Box::new(
            ecdsa::signing_key_from_sec1(info.private_key.as_bytes())
                .map_err(|e| malformed(origin, WHAT, &e))?,
        ))),
        algorithm => Err(unsupported(origin, algorithm)),
    }
}

/// A SubjectPublicKeyInfo holding an RSA or P-256 key.
fn public_from_spki(der: &[u8], origin: &KeyOrigin) -> Result<SecureBootKey, KeyError> {
    const WHAT: &str = "public key";
    let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| malformed(origin, WHAT, &e))?;
    match classify(&spki.algorithm) {
        Algorithm::Rsa => Ok(SecureBootKey::RsaPublic(
            RsaPublicKey::from_public_key_der(der).map_err(|e| malformed(origin, WHAT, &e))?,
        )),
        Algorithm::P256 => Ok(SecureBootKey::P256Public(
            p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
                .map_err(|e| malformed(origin, WHAT, &e))?,
        )),
        algorithm => Err(unsupported(origin, algorithm)),
    }
}

/// The RSA-PSS block over an image hashing to `digest`.
fn rsa_signature_block(
    key: &RsaPrivateKey,
    digest: &[u8; 32],
) -> Result<[u8; SIGNATURE_BLOCK_LEN as usize], rsa::signature::Error> {
    let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(key.clone(), SALT_LEN);
    let signature: Box<[u8]> = signer.sign_prehash(digest)?.into();
    // The block holds the signature little-endian, for the ESP32's RSA peripheral.
    let mut le = [0u8; RSA_SIGNATURE_LEN];
    le[RSA_SIGNATURE_LEN - signature.len()..].copy_from_slice(&signature);
    le.reverse();
    Ok(rsa_block(digest, &key_material(&key.to_public_key()), &le))
}

/// The key material as a block holds it: n, e, R² mod n with R = 2^3072 (the Montgomery
/// constant the peripheral wants; espsecure names it `rinv`) and M' = -n^-1 mod 2^32,
/// numbers little-endian.
fn key_material(key: &RsaPublicKey) -> [u8; RSA_KEY_MATERIAL_LEN] {
    let n = Limbs::from_be(&key.n_bytes());
    let mut out = [0u8; RSA_KEY_MATERIAL_LEN];
    out[..384].copy_from_slice(&n.to_le());
    let e = key.e_bytes();
    let mut e_word = [0u8; 4];
    e_word[4 - e.len().min(4)..].copy_from_slice(&e[e.len().saturating_sub(4)..]);
    out[384..388].copy_from_slice(&u32::from_be_bytes(e_word).to_le_bytes());
    out[388..772].copy_from_slice(&n.r_squared().to_le());
    out[772..776].copy_from_slice(&n.neg_inverse_word().to_le_bytes());
    out
}

/// A 3072-bit number in 32-bit limbs, least significant first, with one spare limb for
/// the carry of a doubling: all the arithmetic the key material needs.
#[derive(Clone, PartialEq, Eq)]
struct Limbs([u32; 97]);

impl Limbs {
    fn from_be(bytes: &[u8]) -> Limbs {
        let mut limbs = [0u32; 97];
        for (i, &b) in bytes.iter().rev().take(384).enumerate() {
            limbs[i / 4] |= u32::from(b) << (8 * (i % 4));
        }
        Limbs(limbs)
    }

    fn to_le(&self) -> [u8; 384] {
        let mut out = [0u8; 384];
        for (chunk, limb) in out.chunks_exact_mut(4).zip(self.0.iter()) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    fn ge(&self, other: &Limbs) -> bool {
        for i in (0..97).rev() {
            if self.0[i] != other.0[i] {
                return self.0[i] > other.0[i];
            }
        }
        true
    }

    fn sub(&mut self, other: &Limbs) {
        let mut borrow = 0i64;
        for i in 0..97 {
            let d = i64::from(self.0[i]) - i64::from(other.0[i]) - borrow;
            self.0[i] = d as u32;
            borrow = i64::from(d < 0);
        }
    }

    fn double(&mut self) {
        let mut carry = 0u32;
        for limb in self.0.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
    }

    /// 2^6144 mod self, by doubling 1 and reducing: 6144 cheap steps, run once per key.
    fn r_squared(&self) -> Limbs {
        let mut r = Limbs([0; 97]);
        r.0[0] = 1;
        for _ in 0..2 * SECURE_BOOT_RSA_BITS {
            r.double();
            if r.ge(self) {
                r.sub(self);
            }
        }
        r
    }

    /// -n^-1 mod 2^32 (n odd), by Newton's iteration on the low limb.
    fn neg_inverse_word(&self) -> u32 {
        let n = self.0[0];
        let mut x = n; // correct to 3 bits for odd n; each step doubles that
        for _ in 0..5 {
            x = x.wrapping_mul(2u32.wrapping_sub(n.wrapping_mul(x)));
        }
        x.wrapping_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_inverse_word_inverts_the_low_limb() {
        for n in [1u32, 3, 0xFFFF_FFFF, 0x1234_5677] {
            let mut limbs = Limbs([0; 97]);
            limbs.0[0] = n;
            assert_eq!(n.wrapping_mul(limbs.neg_inverse_word()), u32::MAX, "{n:#x}");
        }
    }

    #[test]
    fn r_squared_reduces_like_small_numbers() {
        // 2^6144 mod 7 = 2^(6144 mod 3) = 1; mod 11: 2^(6144 mod 10) = 2^4 = 16 = 5.
        for (n, expected) in [(7u32, 1u32), (11, 5)] {
            let mut limbs = Limbs([0; 97]);
            limbs.0[0] = n;
            assert_eq!(limbs.r_squared().0[0], expected);
        }
    }
}
