//! Public keys as the verifier sees them: a raw Ed25519 key and its [`KeyId`].

use core::fmt;

use sha2::{Digest, Sha256};

/// Identifies a public key inside signed objects: the first 8 bytes of SHA-256 over the
/// 32-byte raw Ed25519 public key.
///
/// The id only selects which trusted key to try; it is not a security boundary (the
/// signature check is), so 64 bits are plenty.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The key id of a raw Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// One public key a device trusts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrustedKey {
    /// Raw 32-byte Ed25519 public key.
    pub public_key: [u8; 32],
}

impl TrustedKey {
    /// Wraps a raw Ed25519 public key.
    pub const fn new(public_key: [u8; 32]) -> Self {
        TrustedKey { public_key }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.public_key)
    }
}

/// The set of keys a verifier accepts signatures from, chosen by key id.
#[derive(Clone, Copy, Debug)]
pub struct TrustedKeys<'a> {
    keys: &'a [TrustedKey],
}

impl<'a> TrustedKeys<'a> {
    /// A key set over a slice of keys.
    pub const fn new(keys: &'a [TrustedKey]) -> Self {
        TrustedKeys { keys }
    }

    /// The keys, in order.
    pub fn keys(&self) -> &'a [TrustedKey] {
        self.keys
    }

    /// The key whose id is `id`, if trusted.
    pub fn find(&self, id: KeyId) -> Option<&'a TrustedKey> {
        self.keys.iter().find(|k| k.id() == id)
    }
}
