//! Signed synthetic `.ota` images, standing in for `ota-sign package` output: a header
//! signed with a key derived from a seed, followed by a stored ESP32-C3 app image from
//! `ota-testkit` that trusts that key (so `release` accepts it as installable).

use ed25519_dalek::SigningKey;
use ota_testkit::{Chip, TestFirmware, release};

/// A signing key from a one-byte seed, so tests name keys by number.
pub fn key(seed: u8) -> SigningKey {
    release::signing_key([seed; 32])
}

/// The raw public key of [`key`]`(seed)`.
pub fn public_key(seed: u8) -> [u8; 32] {
    release::public_key([seed; 32])
}

/// What to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Device type.
    pub device_type: String,
    /// Version.
    pub version: String,
    /// Security counter.
    pub security_counter: u64,
    /// Size of the app image's filler in bytes (the app image is a little larger).
    pub size: usize,
    /// Seed of the signing key.
    pub key_seed: u8,
    /// Varies the payload bytes, so two builds of one version differ.
    pub build: u8,
}

impl ImageSpec {
    /// An image of about 4 KiB signed with key 1.
    pub fn new(device_type: &str, version: &str) -> Self {
        ImageSpec {
            device_type: device_type.into(),
            version: version.into(),
            security_counter: 0,
            size: 4096,
            key_seed: 1,
            build: 0,
        }
    }

    /// Sets the app image's filler size.
    pub fn size(mut self, s: usize) -> Self {
        self.size = s;
        self
    }

    /// The signed `.ota` bytes: the app image stored (not compressed) under a header
    /// signed by [`key`]`(key_seed)`, built by [`ota_testkit::release`].
    pub fn bytes(&self) -> Vec<u8> {
        let app = TestFirmware::new(Chip::Esp32c3)
            .version(&self.version)
            .project_name(&self.device_type)
            .trusted_keys(&[public_key(self.key_seed)])
            .payload_size(self.size)
            .seed(u64::from(self.build) << 32 | self.size as u64)
            .app_image();
        let spec = release::Spec {
            version: &self.version,
            device_type: &self.device_type,
            counter: self.security_counter,
            window_log: None,
            signer: [self.key_seed; 32],
            ..release::Spec::default()
        };
        release::build(&spec, app).ota
    }

    /// Writes the image into `dir` and returns its path.
    pub fn write_to(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join(format!(
            "{}-{}-b{}.in.ota",
            self.device_type, self.version, self.build
        ));
        std::fs::write(&path, self.bytes()).expect("write image");
        path
    }
}
