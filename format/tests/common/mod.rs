//! Fixtures shared by the integration tests: the TEST-ONLY keys, a valid image and
//! manifest, a device that should install them, and re-signing helpers for building
//! hostile variants that carry a *valid* signature (so the rule under test, not the
//! signature, is what rejects them).
#![allow(dead_code)] // each test binary uses a different subset

use ed25519_dalek::{Signer, SigningKey};
use ota_format::*;
use sha2::{Digest, Sha256};

/// Fixed reference time of every vector: 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600;

/// TEST ONLY: the key every vector trusts. Its seed is public; never trust it in production.
pub fn key_a() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(b"ota-sign test vectors: TEST ONLY key A").into())
}

/// TEST ONLY: a second key that no vector trusts.
pub fn key_b() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(b"ota-sign test vectors: TEST ONLY key B").into())
}

pub fn pk(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

pub fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::new(pk(&key_a()))]
}

pub fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The uncompressed payload of the valid image: 3000 bytes of a fixed pattern.
pub fn payload() -> Vec<u8> {
    (0..3000u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect()
}

pub fn info_for(payload: &[u8], key: &SigningKey) -> ImageInfo {
    ImageInfo {
        device_type: DeviceType::new("thermostat").unwrap(),
        chip: ChipId::ESP32C3,
        version: Version::parse("1.2.3").unwrap(),
        security_counter: 2,
        created: T0,
        image_size: payload.len() as u32,
        payload_size: payload.len() as u32,
        compression: Compression::None,
        payload_sha256: sha(payload),
        image_sha256: sha(payload),
        key_id: KeyId::of(&pk(key)),
        flags: 0,
    }
}

pub fn image(info: &ImageInfo, key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let mut file = info.sign(key).unwrap().to_vec();
    file.extend_from_slice(payload);
    file
}

/// The valid image: header signed by key A, then [`payload`].
pub fn valid_image() -> Vec<u8> {
    let p = payload();
    image(&info_for(&p, &key_a()), &key_a(), &p)
}

/// An image with a 97-byte payload, for the exhaustive (every offset, every length) tests:
/// debug-build Ed25519 costs milliseconds per verification.
pub fn small_image() -> Vec<u8> {
    let p = &payload()[..97];
    image(&info_for(p, &key_a()), &key_a(), p)
}

/// The manifest that names `image_file` (whose header is `IMAGE_HEADER_LEN` long),
/// signed by key A: ota-testkit's release manifest with sequence 7, created at [`T0`].
pub fn manifest_for(image_file: &[u8], info: &ImageInfo) -> Manifest {
    Manifest {
        sequence: 7,
        created: T0,
        key_id: KeyId::of(&pk(&key_a())),
        ..ota_testkit::release::manifest_for(
            info,
            &image_file[..IMAGE_HEADER_LEN],
            image_file.len(),
            "thermostat-1.2.3.ota",
        )
    }
}

pub fn valid_manifest() -> Manifest {
    let p = payload();
    manifest_for(&valid_image(), &info_for(&p, &key_a()))
}

/// A device one version behind that follows `stable` and should install the valid manifest.
pub fn device() -> Device<'static> {
    Device {
        device_type: DeviceType::new("thermostat").unwrap(),
        chip: ChipId::ESP32C3,
        channel: Channel::new("stable").unwrap(),
        running_version: Version::parse("1.2.2").unwrap(),
        security_counter: 2,
        last_sequence: Some(6),
        device_id: b"\x24\x0a\xc4\x00\x00\x01",
        now: Some(T0 + 3600),
        slot_size: 0x1_0000,
    }
}

/// Ed25519 over `domain || body`: lets a test sign bytes the encoders would refuse to write.
pub fn sign_raw(key: &SigningKey, domain: &[u8], body: &[u8]) -> [u8; 64] {
    let mut msg = domain.to_vec();
    msg.extend_from_slice(body);
    key.sign(&msg).to_bytes()
}

/// Re-signs a signed object in place (its signature is its last 64 bytes of `len`).
pub fn resign(object: &mut [u8], len: usize, key: &SigningKey, domain: &[u8]) {
    let sig = sign_raw(key, domain, &object[..len - 64]);
    object[len - 64..len].copy_from_slice(&sig);
}

/// Outcome of a verification as the vectors spell it: the `Debug` form of the decision
/// or error, or `valid` for a verified object with nothing further to decide.
pub fn outcome<T: core::fmt::Debug>(r: Result<T, FormatError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// The signed fields of a delta from the installed image `base` to the image file
/// `target_file` (its header first), carrying `payload`, signed by `key`.
pub fn delta_info_for(
    base: &[u8],
    target_file: &[u8],
    payload: &[u8],
    window_log: u8,
    key: &SigningKey,
) -> DeltaInfo {
    let (target, h) = inspect_header(target_file).unwrap();
    DeltaInfo {
        device_type: target.device_type,
        chip: target.chip,
        window_log,
        encoding: ota_format::DeltaEncoding::PatchFrom,
        base_size: base.len() as u32,
        payload_size: payload.len() as u32,
        base_sha256: sha(base),
        target_header_sha256: sha(&target_file[..h]),
        payload_sha256: sha(payload),
        key_id: KeyId::of(&pk(key)),
        flags: 0,
    }
}

/// A delta file: `info` signed by `key`, the target image's header verbatim, `payload`.
pub fn delta_file(
    info: &DeltaInfo,
    key: &SigningKey,
    target_file: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let (_, h) = inspect_header(target_file).unwrap();
    let mut file = info.sign(key).unwrap().to_vec();
    file.extend_from_slice(&target_file[..h]);
    file.extend_from_slice(payload);
    file
}
