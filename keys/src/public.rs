//! Ed25519 public keys: raw bytes, SubjectPublicKeyInfo PEM, hex.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use ota_format::KeyId;
use pkcs8::{EncodePublicKey, LineEnding};

use crate::error::KeyError;

/// A validated Ed25519 public key (a point on the curve).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl PublicKey {
    /// Checks that `bytes` is a valid compressed Edwards point; the trust set of a fleet
    /// must not contain a key that can never verify anything.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey {
            detail: "not a valid Ed25519 curve point".into(),
        })?;
        Ok(PublicKey { bytes: *bytes })
    }

    /// Parses 64 hex digits (upper or lower case, surrounding whitespace ignored).
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(KeyError::InvalidPublicKey {
                detail: format!("expected 64 hex digits, got {}", hex.len()),
            });
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]);
            let lo = hex_digit(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => bytes[i] = (hi << 4) | lo,
                _ => {
                    return Err(KeyError::InvalidPublicKey {
                        detail: format!("not a hex digit at position {}", i * 2),
                    });
                }
            }
        }
        Self::from_bytes(&bytes)
    }

    /// The raw 32 bytes, as firmware embeds them.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The key id used in signed objects.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.bytes)
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"), as `openssl pkey -pubout`
    /// writes it.
    pub fn to_pem(&self) -> String {
        self.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding a 32-byte key into a fixed SPKI structure cannot fail")
    }

    /// Verifies an Ed25519 signature (strict: rejects small-order keys and
    /// non-canonical signatures, the rules the device applies).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.verifying_key()
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(&self.bytes).expect("validated at construction")
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} id {})", self.to_hex(), self.key_id())
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 section 7.1, test 1.
    const RFC8032_PUB: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn hex_round_trip_and_key_id() {
        let k = PublicKey::from_hex(RFC8032_PUB).unwrap();
        assert_eq!(k.to_hex(), RFC8032_PUB);
        assert_eq!(k.key_id(), KeyId::of(&k.to_bytes()));
        let upper = PublicKey::from_hex(&RFC8032_PUB.to_uppercase()).unwrap();
        assert_eq!(upper, k);
    }

    #[test]
    fn hex_of_wrong_length_is_rejected() {
        let err = PublicKey::from_hex(&RFC8032_PUB[..62]).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidPublicKey { ref detail } if detail.contains("64 hex digits"))
        );
    }

    #[test]
    fn non_hex_is_rejected() {
        let bad = format!("zz{}", &RFC8032_PUB[2..]);
        let err = PublicKey::from_hex(&bad).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidPublicKey { ref detail } if detail.contains("position 0"))
        );
    }

    #[test]
    fn point_not_on_curve_is_rejected() {
        // y = 2 has no matching x on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert!(matches!(
            PublicKey::from_bytes(&bytes),
            Err(KeyError::InvalidPublicKey { .. })
        ));
    }

    #[test]
    fn pem_is_spki() {
        let k = PublicKey::from_hex(RFC8032_PUB).unwrap();
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        // The fixed 12-byte SPKI prefix for Ed25519 is "MCowBQYDK2VwAyEA" in base64.
        assert!(pem.contains("MCowBQYDK2VwAyEA"));
    }
}
