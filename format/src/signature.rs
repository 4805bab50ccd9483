//! Ed25519 over domain-separated bytes, shared by both signed objects.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::FormatError;
use crate::key::{KeyId, TrustedKeys};

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Verifies `signature` over `domain || body` with the trusted key named by `key_id`.
///
/// The message is assembled in a caller-sized stack buffer because Ed25519 (unlike
/// Ed25519ph) hashes the message twice; both objects are at most
/// [`MAX_SIGNED_LEN`] bytes, so this costs no allocation.
pub(crate) fn verify(
    keys: &TrustedKeys<'_>,
    key_id: KeyId,
    domain: &[u8],
    body: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), FormatError> {
    let key = keys.find(key_id).ok_or(FormatError::UnknownKey)?;
    let verifying_key =
        VerifyingKey::from_bytes(&key.public_key).map_err(|_| FormatError::UnknownKey)?;
    let mut message = [0u8; MAX_SIGNED_LEN];
    let len = domain
        .len()
        .checked_add(body.len())
        .ok_or(FormatError::BadLength)?;
    let message = message.get_mut(..len).ok_or(FormatError::BadLength)?;
    message[..domain.len()].copy_from_slice(domain);
    message[domain.len()..].copy_from_slice(body);
    // verify_strict rejects small-order keys and non-canonical signatures, so one key
    // and message admit exactly one valid signature encoding.
    verifying_key
        .verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| FormatError::SignatureInvalid)
}

/// The longest domain-prefixed message either object signs.
pub(crate) const MAX_SIGNED_LEN: usize = 32 + crate::MAX_HEADER_LEN;

/// Signs a message made by a `signing_message` method (encoders only).
#[cfg(feature = "sign")]
pub(crate) fn sign(key: &ed25519_dalek::SigningKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    use ed25519_dalek::Signer;
    key.sign(message).to_bytes()
}

/// `head || tail` in an array whose length the caller fixes; both signed objects build
/// their signing message (domain, body) and their encoding (body, signature) this way.
/// The lengths are constants at every call, so a mismatch panics in every test.
pub(crate) fn concat<const N: usize>(head: &[u8], tail: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..head.len()].copy_from_slice(head);
    out[head.len()..].copy_from_slice(tail);
    out
}
