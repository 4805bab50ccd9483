//! Passphrase protection: encrypted PKCS#8 (PBES2) as OpenSSL 3 reads and writes it.
//!
//! We write scrypt + AES-256-CBC. We read PBES2 with scrypt or PBKDF2-HMAC-SHA256 (what
//! `openssl genpkey -aes256` writes) and AES-128/256 in CBC or GCM mode, after checking
//! that the file's cost parameters are within [`MAX_SCRYPT_MEMORY`] and
//! [`MAX_PBKDF2_ITERATIONS`]: the parameters come from the file, and a hostile file
//! could otherwise ask for terabytes of memory.

use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::{Decode, Reader, SliceReader};
use pkcs8::pkcs5::pbes2::{self, Kdf};
use pkcs8::pkcs5::{EncryptionScheme, scrypt};
use pkcs8::spki::AlgorithmIdentifierRef;
use pkcs8::{EncryptedPrivateKeyInfoRef, ObjectIdentifier, PrivateKeyInfoRef, SecretDocument};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::origin::KeyOrigin;

/// Upper bound on the memory (128 * r * N * p bytes) a key file may ask scrypt for.
pub const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
/// Upper bound on PBKDF2 iterations a key file may ask for.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Scrypt cost for encrypting a new key.
///
/// The default, `log_n` 14, `r` 8, `p` 1 (16 MiB, about 50 ms in a release build), is the
/// strongest setting OpenSSL 3 can read back: its PKCS#8 decryption caps scrypt at
/// 32 MiB, and `log_n` 15 needs just over that (`openssl pkey` then fails with
/// "memory limit exceeded"). It is also what `openssl pkcs8 -scrypt` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScryptCost {
    log_n: u8,
    r: u32,
    p: u32,
}

impl ScryptCost {
    /// The setting used unless a caller asks for another.
    pub const DEFAULT: ScryptCost = ScryptCost {
        log_n: 14,
        r: 8,
        p: 1,
    };

    /// A custom cost. Fails when scrypt rejects the combination or it needs more than
    /// [`MAX_SCRYPT_MEMORY`] (we could not read such a key back).
    pub fn new(log_n: u8, r: u32, p: u32) -> Result<Self, KeyError> {
        // N = 1 passes the scrypt crate but OpenSSL refuses it.
        if log_n == 0 {
            return Err(KeyError::InvalidKdfParams {
                detail: "log_n must be at least 1".into(),
            });
        }
        scrypt::Params::new(log_n, r, p).map_err(|e| KeyError::InvalidKdfParams {
            detail: e.to_string(),
        })?;
        let cost = ScryptCost { log_n, r, p };
        if cost.memory() > MAX_SCRYPT_MEMORY {
            return Err(KeyError::InvalidKdfParams {
                detail: format!("needs {} MiB, more than the limit", cost.memory() >> 20),
            });
        }
        Ok(cost)
    }

    /// log2 of the CPU/memory cost N.
    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    /// Bytes of memory scrypt needs.
    pub fn memory(&self) -> u64 {
        scrypt_memory(1u64 << self.log_n, u64::from(self.r), u64::from(self.p))
    }
}

impl Default for ScryptCost {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn scrypt_memory(n: u64, r: u64, p: u64) -> u64 {
    128u64.saturating_mul(r).saturating_mul(n).saturating_mul(p)
}

/// Encrypts a PKCS#8 `PrivateKeyInfo` DER document into `EncryptedPrivateKeyInfo` DER.
pub(crate) fn encrypt(
    plain_der: &[u8],
    passphrase: &str,
    cost: ScryptCost,
) -> Result<SecretDocument, KeyError> {
    if passphrase.is_empty() {
        return Err(KeyError::EmptyPassphrase);
    }
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    crate::private::fill_random(&mut salt)?;
    crate::private::fill_random(&mut iv)?;
    let params = scrypt::Params::new(cost.log_n, cost.r, cost.p).map_err(|e| {
        KeyError::InvalidKdfParams {
            detail: e.to_string(),
        }
    })?;
    let pbes2 = pbes2::Parameters::generate_scrypt_aes256cbc(params, &salt, iv)
        .map_err(|e| encode_err(&e))?;
    let info = PrivateKeyInfoRef::try_from(plain_der).map_err(|e| encode_err(&e))?;
    info.encrypt_with_params(pbes2, passphrase.as_bytes())
        .map_err(|e| encode_err(&e))
}

fn encode_err(e: &dyn std::fmt::Display) -> KeyError {
    KeyError::Encode {
        detail: e.to_string(),
    }
}

/// Parses an `EncryptedPrivateKeyInfo` and checks its algorithms and costs, before any
/// passphrase is asked for: a file we cannot open should fail without a prompt.
pub(crate) fn check_encrypted(der: &[u8], origin: &KeyOrigin) -> Result<(), KeyError> {
    // pkcs5 reports an unknown scheme (e.g. the PKCS#12 PBEs that `openssl pkcs8 -v1`
    // writes) as a DER error, so read the scheme's OID first to say what it is.
    let oid = scheme_oid(der).map_err(|e| KeyError::Malformed {
        origin: origin.clone(),
        what: "encrypted PKCS#8 private key",
        detail: e.to_string(),
    })?;
    if oid != pbes2::PBES2_OID {
        return Err(KeyError::UnsupportedEncryption {
            origin: origin.clone(),
            detail: format!(
                "scheme OID {oid} (only PBES2 is supported); re-encrypt with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
            ),
        });
    }
    let info = EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| {
        match e {
            // An unknown encryption OID surfaces as an unsupported algorithm.
            pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm {
                oid,
            }) => KeyError::UnsupportedEncryption {
                origin: origin.clone(),
                detail: format!("algorithm OID {oid}"),
            },
            other => KeyError::Malformed {
                origin: origin.clone(),
                what: "encrypted PKCS#8 private key",
                detail: other.to_string(),
            },
        }
    })?;
    let params = match &info.encryption_algorithm {
        EncryptionScheme::Pbes2(params) => params,
        _ => {
            return Err(KeyError::UnsupportedEncryption {
                origin: origin.clone(),
                detail: "PBES1 (obsolete DES/RC2 encryption); re-encrypt with \
                         `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                    .into(),
            });
        }
    };
    match &params.kdf {
        Kdf::Scrypt(s) => {
            let memory = scrypt_memory(
                s.cost_parameter,
                u64::from(s.block_size),
                u64::from(s.parallelization),
            );
            if memory > MAX_SCRYPT_MEMORY {
                return Err(KeyError::KdfTooExpensive {
                    origin: origin.clone(),
                    detail: format!(
                        "scrypt N={} r={} p={} needs {} MiB, limit {} MiB",
                        s.cost_parameter,
                        s.block_size,
                        s.parallelization,
                        memory >> 20,
                        MAX_SCRYPT_MEMORY >> 20
                    ),
                });
            }
        }
        Kdf::Pbkdf2(p) => {
            if p.iteration_count > MAX_PBKDF2_ITERATIONS {
                return Err(KeyError::KdfTooExpensive {
                    origin: origin.clone(),
                    detail: format!(
                        "PBKDF2 with {} iterations, limit {MAX_PBKDF2_ITERATIONS}",
                        p.iteration_count
                    ),
                });
            }
        }
        other => {
            return Err(KeyError::UnsupportedEncryption {
                origin: origin.clone(),
                detail: format!("key derivation {}", other.oid()),
            });
        }
    }
    Ok(())
}

/// The OID of `EncryptedPrivateKeyInfo.encryptionAlgorithm`.
fn scheme_oid(der: &[u8]) -> Result<ObjectIdentifier, pkcs8::der::Error> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|r| {
        let alg = AlgorithmIdentifierRef::decode(r)?;
        let _data = <&OctetStringRef>::decode(r)?;
        Ok(alg.oid)
    })
}

/// Decrypts an `EncryptedPrivateKeyInfo` already accepted by [`check_encrypted`].
pub(crate) fn decrypt(
    der: &[u8],
    passphrase: &str,
    origin: &KeyOrigin,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let info = EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| KeyError::Malformed {
        origin: origin.clone(),
        what: "encrypted PKCS#8 private key",
        detail: e.to_string(),
    })?;
    match info.decrypt(passphrase.as_bytes()) {
        Ok(doc) => Ok(Zeroizing::new(doc.as_bytes().to_vec())),
        // CBC padding is the only integrity check, so a wrong passphrase shows up either
        // as a padding failure or (1 time in ~256) as garbage that is not DER.
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed))
        | Err(pkcs8::Error::Asn1(_)) => Err(KeyError::WrongPassphrase {
            origin: origin.clone(),
        }),
        Err(pkcs8::Error::EncryptedPrivateKey(e)) => Err(KeyError::UnsupportedEncryption {
            origin: origin.clone(),
            detail: e.to_string(),
        }),
        Err(e) => Err(KeyError::Malformed {
            origin: origin.clone(),
            what: "encrypted PKCS#8 private key",
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cost_fits_openssl_limit() {
        // OpenSSL's default scrypt maxmem is 32 MiB, checked against 128*r*(N+2)+128*r*p.
        let c = ScryptCost::DEFAULT;
        let openssl_need = 128 * u64::from(c.r) * ((1u64 << c.log_n) + 2) + 128 * u64::from(c.r);
        assert!(openssl_need <= 32 * 1024 * 1024);
        let next = 128 * u64::from(c.r) * ((1u64 << (c.log_n + 1)) + 2);
        assert!(next > 32 * 1024 * 1024, "log_n could be raised");
    }

    #[test]
    fn cost_above_memory_limit_is_rejected() {
        assert!(matches!(
            ScryptCost::new(20, 8, 1),
            Err(KeyError::InvalidKdfParams { .. })
        ));
        assert_eq!(ScryptCost::new(10, 8, 1).unwrap().memory(), 1 << 20);
    }

    #[test]
    fn invalid_scrypt_params_are_rejected() {
        for (log_n, r, p) in [(0, 8, 1), (10, 0, 1), (10, 8, 0)] {
            assert!(
                matches!(
                    ScryptCost::new(log_n, r, p),
                    Err(KeyError::InvalidKdfParams { .. })
                ),
                "{log_n} {r} {p}"
            );
        }
    }
}
