//! ECDSA P-256 Secure Boot V2 keys (the ESP32-C2 and other chips whose ROM verifies
//! ECDSA): the block version 3 that `espsecure sign-data --version 2` writes for such a
//! key, and the key digest eFuse holds for it.
//!
//! Signatures are RFC 6979 deterministic, so `package` gives the same bytes for the same
//! inputs (espsecure's own signatures are randomized; the bootloader accepts both).

use ota_format::esp::secure_boot::{
    P256_KEY_MATERIAL_LEN, SIGNATURE_BLOCK_LEN, SecureBootKeyDigest, p256_block, p256_key_digest,
    p256_key_material, p256_signature,
};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

/// A P-256 private key from a SEC1 `ECPrivateKey` (the `EC PRIVATE KEY` PEM body, or the
/// private key inside a PKCS#8 `PrivateKeyInfo`).
pub(super) fn signing_key_from_sec1(
    der: &[u8],
) -> Result<SigningKey, p256::elliptic_curve::DecodeError> {
    p256::SecretKey::from_sec1_der(der).map(SigningKey::from)
}

/// The key material a block holds for `key`: curve id, then x and y little-endian.
pub(super) fn key_material(key: &VerifyingKey) -> [u8; P256_KEY_MATERIAL_LEN] {
    let point = key.to_sec1_point(false);
    // A verifying key is never the identity, so its uncompressed encoding is 0x04‖x‖y.
    let (x, y) = point.as_bytes()[1..].split_at(32);
    p256_key_material(
        x.try_into().expect("32-byte coordinate"),
        y.try_into().expect("32-byte coordinate"),
    )
}

/// The key digest eFuse holds (espsecure `digest-sbv2-public-key`).
pub(super) fn key_digest(key: &VerifyingKey) -> SecureBootKeyDigest {
    p256_key_digest(&key_material(key))
}

/// The signature block over an image (and padding) hashing to `image_digest`: ECDSA over
/// that SHA-256 as the prehashed message, as espsecure signs.
pub(super) fn signature_block(
    key: &SigningKey,
    image_digest: &[u8; 32],
) -> Result<[u8; SIGNATURE_BLOCK_LEN as usize], p256::ecdsa::Error> {
    let signature: Signature = key.sign_prehash(image_digest)?;
    let (r, s) = signature.split_bytes();
    Ok(p256_block(
        image_digest,
        &key_material(key.verifying_key()),
        &p256_signature(&r.into(), &s.into()),
    ))
}
