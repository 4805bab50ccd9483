//! Reading key text: PKCS#8 v1/v2 private keys (encrypted or not), SubjectPublicKeyInfo
//! public keys, and a precise diagnosis of everything else (RSA, EC, OpenSSH...).

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::KeypairBytes;
use pkcs8::der::pem;
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use zeroize::Zeroizing;

use crate::encrypt;
use crate::error::{Algorithm, KeyError};
use crate::origin::KeyOrigin;
use crate::passphrase::{PassphraseRequest, PassphraseSource};
use crate::private::PrivateKey;
use crate::public::PublicKey;

const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const X448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.111");
const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// What a key file holds.
#[derive(Debug)]
pub enum KeyMaterial {
    /// A private key (the public key derives from it).
    Private {
        /// The key.
        key: PrivateKey,
        /// Whether the file was passphrase-protected.
        encrypted: bool,
    },
    /// Only a public key.
    Public(PublicKey),
}

impl KeyMaterial {
    /// The public key, whichever kind of file this was.
    pub fn public_key(&self) -> PublicKey {
        match self {
            KeyMaterial::Private { key, .. } => key.public_key(),
            KeyMaterial::Public(p) => *p,
        }
    }
}

/// Parses PEM key text. The passphrase source is asked only when the key turns out to be
/// encrypted and its encryption is one we can open.
pub fn parse_pem(
    text: &str,
    origin: &KeyOrigin,
    passphrase: &dyn PassphraseSource,
) -> Result<KeyMaterial, KeyError> {
    let block = first_key_block(text, origin)?;
    // Refusals by label come before decoding the body: other tools' PEM dialects
    // (OpenSSH wraps at 70 columns, legacy OpenSSL adds headers) are not RFC 7468.
    match block.label {
        "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "PUBLIC KEY" | "EC PRIVATE KEY" => {}
        "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => return Err(wrong(origin, Algorithm::Rsa)),
        "DSA PRIVATE KEY" => return Err(wrong(origin, Algorithm::Dsa)),
        label => {
            return Err(KeyError::UnsupportedPemLabel {
                origin: origin.clone(),
                label: label.to_owned(),
            });
        }
    }
    if block.pem.contains("Proc-Type:") && block.label == "EC PRIVATE KEY" {
        return Err(wrong(origin, Algorithm::Ec));
    }
    let der = pem_body(&block, origin)?;
    match block.label {
        "PRIVATE KEY" => Ok(KeyMaterial::Private {
            key: private_from_der(&der, origin)?,
            encrypted: false,
        }),
        "ENCRYPTED PRIVATE KEY" => {
            encrypt::check_encrypted(&der, origin)?;
            let pass = passphrase.passphrase(PassphraseRequest::Unlock(origin))?;
            let plain = encrypt::decrypt(&der, &pass, origin)?;
            // A wrong passphrase can, rarely, leave valid CBC padding over garbage; the
            // garbage then fails here and is still a wrong passphrase.
            let key = match private_from_der(&plain, origin) {
                Err(KeyError::Malformed { .. }) => {
                    return Err(KeyError::WrongPassphrase {
                        origin: origin.clone(),
                    });
                }
                other => other?,
            };
            Ok(KeyMaterial::Private {
                key,
                encrypted: true,
            })
        }
        "PUBLIC KEY" => Ok(KeyMaterial::Public(public_from_der(&der, origin)?)),
        _ => Err(wrong(origin, sec1_curve(&der))),
    }
}

fn wrong(origin: &KeyOrigin, algorithm: Algorithm) -> KeyError {
    KeyError::WrongAlgorithm {
        origin: origin.clone(),
        algorithm,
    }
}

pub(crate) struct PemBlock<'a> {
    pub(crate) label: &'a str,
    /// From the BEGIN line through the END line.
    pem: &'a str,
}

/// The DER bytes of an RFC 7468 block without encryption headers.
pub(crate) fn pem_body(
    block: &PemBlock<'_>,
    origin: &KeyOrigin,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if block.pem.contains("Proc-Type:") {
        return Err(KeyError::UnsupportedEncryption {
            origin: origin.clone(),
            detail: "legacy OpenSSL PEM encryption (Proc-Type header); convert with \
                     `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                .into(),
        });
    }
    let (_, der) =
        pem::decode_vec(block.pem.as_bytes()).map_err(|e| corrupt(origin, &e.to_string()))?;
    Ok(Zeroizing::new(der))
}

/// The first PEM block that is not "EC PARAMETERS" (which `openssl ecparam -genkey`
/// writes before the key).
pub(crate) fn first_key_block<'a>(
    text: &'a str,
    origin: &KeyOrigin,
) -> Result<PemBlock<'a>, KeyError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = text;
    loop {
        let Some(start) = rest.find(BEGIN) else {
            return Err(KeyError::NotPem {
                origin: origin.clone(),
            });
        };
        let block = &rest[start..];
        let label_end = block[BEGIN.len()..]
            .find("-----")
            .ok_or_else(|| corrupt(origin, "unterminated BEGIN line"))?;
        let label = &block[BEGIN.len()..BEGIN.len() + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| corrupt(origin, &format!("no \"{end_marker}\" line")))?
            + end_marker.len();
        if label == "EC PARAMETERS" {
            rest = &block[end..];
            continue;
        }
        return Ok(PemBlock {
            label,
            pem: &block[..end],
        });
    }
}

fn corrupt(origin: &KeyOrigin, detail: &str) -> KeyError {
    KeyError::CorruptPem {
        origin: origin.clone(),
        detail: detail.to_owned(),
    }
}

fn malformed(origin: &KeyOrigin, what: &'static str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        origin: origin.clone(),
        what,
        detail: e.to_string(),
    }
}

/// A PKCS#8 `PrivateKeyInfo` (v1 or v2) that must hold an Ed25519 key.
pub(crate) fn private_from_der(der: &[u8], origin: &KeyOrigin) -> Result<PrivateKey, KeyError> {
    const WHAT: &str = "PKCS#8 private key";
    let info = PrivateKeyInfoRef::try_from(der).map_err(|e| malformed(origin, WHAT, e))?;
    if info.algorithm.oid != ED25519 {
        return Err(wrong(origin, classify(&info.algorithm)));
    }
    let keypair = KeypairBytes::try_from(info).map_err(|e| malformed(origin, WHAT, e))?;
    let signing = SigningKey::from_bytes(&keypair.secret_key);
    if let Some(stored) = &keypair.public_key
        && stored.0 != signing.verifying_key().to_bytes()
    {
        return Err(KeyError::KeyPairMismatch {
            origin: origin.clone(),
        });
    }
    Ok(PrivateKey::from_signing_key(signing))
}

/// A SubjectPublicKeyInfo that must hold an Ed25519 key.
fn public_from_der(der: &[u8], origin: &KeyOrigin) -> Result<PublicKey, KeyError> {
    const WHAT: &str = "public key";
    let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| malformed(origin, WHAT, e))?;
    if spki.algorithm.oid != ED25519 {
        return Err(wrong(origin, classify(&spki.algorithm)));
    }
    if spki.algorithm.parameters.is_some() {
        return Err(malformed(
            origin,
            WHAT,
            "Ed25519 takes no algorithm parameters",
        ));
    }
    let bytes: [u8; 32] = spki
        .subject_public_key
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(origin, WHAT, "an Ed25519 public key is 32 bytes"))?;
    PublicKey::from_bytes(&bytes).map_err(|e| malformed(origin, WHAT, e))
}

pub(crate) fn classify(alg: &AlgorithmIdentifierRef<'_>) -> Algorithm {
    match alg.oid {
        RSA | RSA_PSS => Algorithm::Rsa,
        DSA => Algorithm::Dsa,
        ED448 => Algorithm::Ed448,
        X25519 => Algorithm::X25519,
        // Only reached for Ed25519 where another key is needed (Secure Boot V2).
        ED25519 => Algorithm::Other(format!("{ED25519} (Ed25519)")),
        EC_PUBLIC_KEY => match alg.parameters_oid() {
            Ok(P256) => Algorithm::P256,
            Ok(P384) => Algorithm::P384,
            Ok(SECP256K1) => Algorithm::Secp256k1,
            _ => Algorithm::Ec,
        },
        other if other == X448 => Algorithm::Other(format!("{other} (X448)")),
        other => Algorithm::Other(other.to_string()),
    }
}

/// The curve of a SEC1 "EC PRIVATE KEY", found by its encoded named-curve OID.
pub(crate) fn sec1_curve(der: &[u8]) -> Algorithm {
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    let oid_tlv = |oid: &ObjectIdentifier| {
        let mut v = vec![0x06, oid.as_bytes().len() as u8];
        v.extend_from_slice(oid.as_bytes());
        v
    };
    if contains(&oid_tlv(&P256)) {
        Algorithm::P256
    } else if contains(&oid_tlv(&P384)) {
        Algorithm::P384
    } else if contains(&oid_tlv(&SECP256K1)) {
        Algorithm::Secp256k1
    } else {
        Algorithm::Ec
    }
}
