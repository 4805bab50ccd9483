//! Signed releases: an app image packaged as an `.ota` file (signed header, stored or
//! zstd payload) and named by a signed manifest, with knobs to lie in exactly one place.
//!
//! The agent's unit tests and the simulator's tests both need releases that a real
//! `ota-sign` would never produce (a header declaring the wrong window or digest, a
//! manifest signed by someone else), so this builds them field by field instead of
//! going through the CLI.

use ed25519_dalek::SigningKey;
use ota_format::{
    Channel, ChipId, Compression, DeviceType, FULL_ROLLOUT, ImageInfo, ImageName, KeyId, Manifest,
    Version,
};
use sha2::{Digest, Sha256};

/// The seed of the key that signs releases by default.
pub const SIGNER: [u8; 32] = [7; 32];

/// The Ed25519 key derived from `seed`.
pub fn signing_key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// The raw public key derived from `seed`.
pub fn public_key(seed: [u8; 32]) -> [u8; 32] {
    signing_key(seed).verifying_key().to_bytes()
}

/// How to build a release; the default is a correct one. The names it borrows (version,
/// device type, image name) are literals in most tests and built strings in some.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    pub version: &'a str,
    pub counter: u64,
    pub sequence: u64,
    /// `None`: stored; `Some(log)`: zstd with this window.
    pub window_log: Option<u8>,
    /// Window log written in the header, when it should differ from the real one.
    pub declared_window_log: Option<u8>,
    /// With `window_log`: compression method 2 (zstd, window in flash, compressed blocks
    /// capped at 8 KiB) instead of method 1.
    pub flash_window: bool,
    /// Installed size written in the header and manifest, when it should lie.
    pub declared_image_size: Option<u32>,
    /// Installed digest written in the header, when it should lie.
    pub declared_image_sha256: Option<[u8; 32]>,
    /// Seed of the key that signs the header (and the manifest, unless
    /// `manifest_signer` says otherwise).
    pub signer: [u8; 32],
    pub manifest_signer: Option<[u8; 32]>,
    pub device_type: &'a str,
    pub chip: ChipId,
    /// `created` of both the header and the manifest.
    pub created: u64,
    /// Image file name in the manifest (default `<device_type>-<version>.ota`).
    pub image_name: Option<&'a str>,
    /// Bytes appended to the `.ota` file after signing its header, counted in the
    /// manifest's file size.
    pub trailing: usize,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            version: "1.1.0",
            counter: 1,
            sequence: 2,
            window_log: Some(12),
            declared_window_log: None,
            flash_window: false,
            declared_image_size: None,
            declared_image_sha256: None,
            signer: SIGNER,
            manifest_signer: None,
            device_type: "sensor",
            chip: ChipId::ESP32C3,
            created: 1_700_000_000,
            image_name: None,
            trailing: 0,
        }
    }
}

impl Spec<'_> {
    /// The image file name the manifest carries.
    pub fn image_name(&self) -> String {
        self.image_name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{}.ota", self.device_type, self.version))
    }
}

/// A built release.
pub struct Release {
    /// The app image the release installs.
    pub app: Vec<u8>,
    /// The `.ota` file: signed header, payload, then any trailing bytes.
    pub ota: Vec<u8>,
    /// The signed manifest.
    pub manifest: Vec<u8>,
    /// The image file name the manifest carries.
    pub image_name: String,
}

/// `app` compressed with zstd at level 19 with a `2^window_log` window, its size
/// pledged in the frame header and its compressed blocks within 8 KiB, as `ota-sign
/// package` does (agents decoding with ota-zstd refuse larger compressed blocks).
pub fn compress(app: &[u8], window_log: u8) -> Vec<u8> {
    compress_blocks(app, window_log, ota_format::FLASH_WINDOW_MAX_BLOCK)
}

/// `app` compressed with zstd level 19, a `2^window_log` window, its size pledged and
/// compressed blocks at most `max_block` bytes (8 KiB: what devices decode).
pub fn compress_blocks(app: &[u8], window_log: u8, max_block: u32) -> Vec<u8> {
    use std::io::Write;
    use zstd::zstd_safe::CParameter;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    enc.set_parameter(CParameter::WindowLog(u32::from(window_log)))
        .unwrap();
    enc.set_parameter(CParameter::MaxBlockSize(max_block))
        .unwrap();
    enc.set_pledged_src_size(Some(app.len() as u64)).unwrap();
    enc.write_all(app).unwrap();
    enc.finish().unwrap()
}

/// A skippable frame (RFC 8878 §3.1.2) carrying `content`: libzstd passes over it,
/// devices refuse it.
pub fn skippable_frame(content: &[u8]) -> Vec<u8> {
    let mut f = 0x184D_2A50u32.to_le_bytes().to_vec();
    f.extend_from_slice(&(content.len() as u32).to_le_bytes());
    f.extend_from_slice(content);
    f
}

/// `frame` (one zstd frame without a dictionary id) with a one-byte dictionary id
/// field holding `id` inserted into its header.
pub fn with_dictionary_id(frame: &[u8], id: u8) -> Vec<u8> {
    let fhd = frame[4];
    assert_eq!(fhd & 3, 0, "the frame already has a dictionary id");
    let single_segment = fhd & 0x20 != 0;
    let at = 5 + usize::from(!single_segment);
    let mut f = frame[..4].to_vec();
    f.push(fhd | 1);
    f.extend_from_slice(&frame[5..at]);
    f.push(id);
    f.extend_from_slice(&frame[at..]);
    f
}

/// Packages and signs `app` as `spec` says.
pub fn build(spec: &Spec, app: Vec<u8>) -> Release {
    let (payload, compression) = match spec.window_log {
        None => (app.clone(), Compression::None),
        Some(log) if spec.flash_window => (
            compress_blocks(&app, log, ota_format::FLASH_WINDOW_MAX_BLOCK),
            Compression::ZstdFlashWindow {
                window_log: spec.declared_window_log.unwrap_or(log),
            },
        ),
        Some(log) => (
            compress(&app, log),
            Compression::Zstd {
                window_log: spec.declared_window_log.unwrap_or(log),
            },
        ),
    };
    build_with_payload(spec, app, payload, compression)
}

/// Signs `payload` as the encoding of `app` under `compression`, whatever it holds:
/// for payloads no encoder makes (hostile zstd frames, a payload that is not an app
/// image). `spec`'s window fields are ignored.
pub fn build_with_payload(
    spec: &Spec,
    app: Vec<u8>,
    payload: Vec<u8>,
    compression: Compression,
) -> Release {
    let signer = signing_key(spec.signer);
    let image_sha256: [u8; 32] = Sha256::digest(&app).into();
    let info = ImageInfo {
        device_type: DeviceType::new(spec.device_type).unwrap(),
        chip: spec.chip,
        version: Version::parse(spec.version).unwrap(),
        security_counter: spec.counter,
        created: spec.created,
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
    ota.extend(std::iter::repeat_n(0u8, spec.trailing));
    let image_name = spec.image_name();
    let manifest = sign_manifest(spec, &info, &header, ota.len(), &image_name);
    Release {
        app,
        ota,
        manifest,
        image_name,
    }
}

/// The manifest naming an `.ota` file of `ota_len` bytes whose header is `header`
/// (describing `info`), on the `stable` channel, signed by `spec`'s manifest signer
/// with `spec`'s sequence and creation time.
pub fn sign_manifest(
    spec: &Spec,
    info: &ImageInfo,
    header: &[u8],
    ota_len: usize,
    image_name: &str,
) -> Vec<u8> {
    let signer = signing_key(spec.manifest_signer.unwrap_or(spec.signer));
    Manifest {
        sequence: spec.sequence,
        created: spec.created,
        key_id: KeyId::of(&signer.verifying_key().to_bytes()),
        ..manifest_for(info, header, ota_len, image_name)
    }
    .sign(&signer)
    .unwrap()
    .to_vec()
}

/// The unsigned manifest naming an `.ota` file of `ota_len` bytes whose header is
/// `header` (describing `info`): every release field copied from `info`, the `stable`
/// channel, full rollout, no expiry and no minimum running version. Its sequence is 1,
/// its creation time and key id are the header's; callers override what they test.
pub fn manifest_for(info: &ImageInfo, header: &[u8], ota_len: usize, image_name: &str) -> Manifest {
    Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel: Channel::new("stable").unwrap(),
        version: info.version,
        security_counter: info.security_counter,
        sequence: 1,
        created: info.created,
        not_after: None,
        rollout: FULL_ROLLOUT,
        image_file_size: ota_len as u32,
        image_size: info.image_size,
        image_header_sha256: Sha256::digest(header).into(),
        min_running_version: None,
        allow_downgrade: false,
        image_name: ImageName::new(image_name).unwrap(),
        key_id: info.key_id,
    }
}
