//! Secure Boot V2 signature sectors for tests that need the *shape* of a signed image,
//! not a signature a bootloader would accept: the RSA key material and the signature
//! are filler chosen by a seed. The agent and the simulator compare key digests and
//! never verify the RSA signature, so this is enough for them; `espsecure`-checked
//! signatures come from `ota-sign package --secure-boot-key` in the CLI tests.

use ota_format::esp::secure_boot::{
    RSA_KEY_MATERIAL_LEN, RSA_SIGNATURE_LEN, SIGNATURE_SECTOR_LEN, SecureBootKeyDigest, rsa_block,
    rsa_key_digest, sector,
};
use sha2::{Digest, Sha256};

use crate::filler::filler;

/// The made-up RSA key material of "key" `seed`.
fn key_material(seed: u64) -> [u8; RSA_KEY_MATERIAL_LEN] {
    filler(RSA_KEY_MATERIAL_LEN, seed ^ 0x5B_5B)
        .try_into()
        .expect("filler length")
}

/// The key digest a block signed by "key" `seed` names.
pub fn secure_boot_key_digest(seed: u64) -> SecureBootKeyDigest {
    rsa_key_digest(&key_material(seed))
}

/// `image` padded with `0xFF` to 4 KiB and followed by a signature sector whose one RSA
/// block names "key" `seed`, laid out exactly as `espsecure sign-data --version 2` does.
pub fn secure_boot_signed(image: &[u8], seed: u64) -> Vec<u8> {
    let mut out = image.to_vec();
    out.resize(
        image.len().next_multiple_of(SIGNATURE_SECTOR_LEN as usize),
        0xFF,
    );
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let block = rsa_block(&digest, &key_material(seed), &[0x5A; RSA_SIGNATURE_LEN]);
    out.extend_from_slice(&sector(&[block]));
    out
}
