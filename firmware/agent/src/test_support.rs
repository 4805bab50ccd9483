//! Signed releases for the agent's unit tests: a synthetic ESP32-C3 app image (from
//! `ota-testkit`), packaged as an `.ota` image and named by a signed manifest, with
//! knobs to lie in exactly one place.

extern crate std;

use std::vec::Vec;

use ed25519_dalek::SigningKey;
use ota_format::{
    Channel, ChipId, Compression, DeviceType, FULL_ROLLOUT, ImageInfo, ImageName, KeyId, Manifest,
    TrustedKey, Version,
};
use ota_testkit::{Chip, TestFirmware};
use sha2::{Digest, Sha256};

pub const SEED: [u8; 32] = [7; 32];
pub const OTHER_SEED: [u8; 32] = [8; 32];

pub fn key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

pub fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::new(key(SEED).verifying_key().to_bytes())]
}

pub fn device_type() -> DeviceType {
    DeviceType::new("sensor").unwrap()
}

pub fn chip() -> ChipId {
    ChipId(5)
}

pub fn app_image(version: &str, size: usize) -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .trusted_keys(&[key(SEED).verifying_key().to_bytes()])
        .payload_size(size)
        .seed(size as u64)
        .app_image()
}

/// How to build a release; defaults are a correct one.
#[derive(Clone)]
pub struct Spec {
    pub version: &'static str,
    pub counter: u64,
    pub sequence: u64,
    /// `None`: stored; `Some(log)`: zstd with this window.
    pub window_log: Option<u8>,
    /// Window log written in the header, when it should differ from the real one.
    pub declared_window_log: Option<u8>,
    /// Installed size written in the header and manifest, when it should lie.
    pub declared_image_size: Option<u32>,
    /// Installed digest written in the header, when it should lie.
    pub declared_image_sha256: Option<[u8; 32]>,
    pub signer: [u8; 32],
    pub device_type: &'static str,
    pub chip: ChipId,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            version: "1.1.0",
            counter: 1,
            sequence: 2,
            window_log: Some(12),
            declared_window_log: None,
            declared_image_size: None,
            declared_image_sha256: None,
            signer: SEED,
            device_type: "sensor",
            chip: chip(),
        }
    }
}

pub struct Release {
    pub ota: Vec<u8>,
    pub manifest: Vec<u8>,
}

pub fn compress(app: &[u8], window_log: u8) -> Vec<u8> {
    use std::io::Write;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(u32::from(
        window_log,
    )))
    .unwrap();
    enc.set_pledged_src_size(Some(app.len() as u64)).unwrap();
    enc.write_all(app).unwrap();
    enc.finish().unwrap()
}

pub fn release(spec: &Spec, app: Vec<u8>) -> Release {
    let (payload, compression) = match spec.window_log {
        None => (app.clone(), Compression::None),
        Some(log) => (
            compress(&app, log),
            Compression::Zstd {
                window_log: spec.declared_window_log.unwrap_or(log),
            },
        ),
    };
    let signer = key(spec.signer);
    let image_sha256: [u8; 32] = Sha256::digest(&app).into();
    let info = ImageInfo {
        device_type: DeviceType::new(spec.device_type).unwrap(),
        chip: spec.chip,
        version: Version::parse(spec.version).unwrap(),
        security_counter: spec.counter,
        created: 1_700_000_000,
        image_size: spec.declared_image_size.unwrap_or(app.len() as u32),
        payload_size: payload.len() as u32,
        compression,
        payload_sha256: Sha256::digest(&payload).into(),
        image_sha256: spec.declared_image_sha256.unwrap_or(image_sha256),
        key_id: KeyId::of(&signer.verifying_key().to_bytes()),
        flags: 0,
    };
    let header = info.sign(&signer).unwrap();
    let mut ota = header.to_vec();
    ota.extend_from_slice(&payload);
    let manifest = Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel: Channel::new("stable").unwrap(),
        version: info.version,
        security_counter: info.security_counter,
        sequence: spec.sequence,
        created: 1_700_000_000,
        not_after: None,
        rollout: FULL_ROLLOUT,
        image_file_size: ota.len() as u32,
        image_size: info.image_size,
        image_header_sha256: Sha256::digest(header).into(),
        min_running_version: None,
        allow_downgrade: false,
        image_name: ImageName::new("sensor-1.1.0.ota").unwrap(),
        key_id: info.key_id,
    }
    .sign(&signer)
    .unwrap();
    Release {
        ota,
        manifest: manifest.to_vec(),
    }
}
