//! Builds every test vector and its index entry, deterministically (fixed keys, fixed
//! times, deterministic Ed25519). Each hostile variant states the exact outcome it must
//! produce; the label is written here by hand, never computed by the verifier under test.
//!
//! Longer than any other file (~1 150 lines), on purpose: it is the list of ~120 vectors,
//! each with its hand-written outcome and attack description; the repeated logic lives in
//! a few helpers (`patched`, `resigned`, ...), and splitting the list would only scatter
//! what a reviewer reads top to bottom.

use ota_format::*;
use serde_json::{Value, json};

use crate::common::payload as common_payload;
use crate::common::*;

pub struct Vectors {
    pub files: Vec<(String, Vec<u8>)>,
    pub index: Value,
}

/// The group order of Ed25519, little-endian: adding it to S gives the same signature
/// equation with a non-canonical S.
pub const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn device_json(d: &Device<'_>) -> Value {
    json!({
        "device_type": d.device_type.as_str(),
        "chip": d.chip.0,
        "channel": d.channel.as_str(),
        "running_version": d.running_version.to_string(),
        "security_counter": d.security_counter,
        "last_sequence": d.last_sequence,
        "device_id": hex(d.device_id),
        "now": d.now,
        "slot_size": d.slot_size,
    })
}

/// Adds L to the S half of a signature that ends at `end`.
fn non_canonical_s(object: &mut [u8], end: usize) {
    let s = &mut object[end - 32..end];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(ED25519_L) {
        let sum = *b as u16 + l as u16 + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
}

/// A signature by `key` over `domain || body` whose `R` is the identity (a small-order
/// point): with `S = k·a`, `[S]B = R + [k]A` holds, so only the small-order rule refuses
/// it. Only the holder of the secret can make one; the vector checks that verifiers
/// agree on the rule, not an attack on honest keys.
fn small_order_r_signature(
    key: &ed25519_dalek::SigningKey,
    domain: &[u8],
    body: &[u8],
) -> [u8; 64] {
    use curve25519_dalek::Scalar;
    use sha2::{Digest, Sha512};
    let mut r = [0u8; 32];
    r[0] = 1; // the identity (0, 1)
    let k: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(pk(key))
        .chain_update(domain)
        .chain_update(body)
        .finalize()
        .into();
    let expanded: [u8; 64] = Sha512::digest(key.to_bytes()).into();
    let mut a = [0u8; 32];
    a.copy_from_slice(&expanded[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let s = Scalar::from_bytes_mod_order_wide(&k) * Scalar::from_bytes_mod_order(a);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    let message = [domain, body].concat();
    let signature = ed25519_dalek::Signature::from_bytes(&sig);
    let public = key.verifying_key();
    assert!(
        ed25519_dalek::Verifier::verify(&public, &message, &signature).is_ok(),
        "the cofactorless equation must hold"
    );
    assert!(public.verify_strict(&message, &signature).is_err());
    sig
}

/// A zstd frame built by hand: one raw block (`head`) and one RLE block (`fill` repeated
/// `fill_len` times), with a 2-byte frame content size and no checksum.
fn zstd_frame(head: &[u8], fill: u8, fill_len: u32) -> Vec<u8> {
    let total = head.len() as u32 + fill_len;
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x60];
    f.extend_from_slice(&((total - 256) as u16).to_le_bytes());
    let raw = (head.len() as u32) << 3;
    f.extend_from_slice(&raw.to_le_bytes()[..3]);
    f.extend_from_slice(head);
    let rle = (fill_len << 3) | (1 << 1) | 1;
    f.extend_from_slice(&rle.to_le_bytes()[..3]);
    f.push(fill);
    f
}

/// An app-like installed image: 4-byte RISC-V-like instruction words from a small
/// vocabulary with varying operands, and now and then a string constant, so that zstd
/// finds matches as it does in code. Deterministic (xorshift64).
fn app_like(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(16) {
            out.extend_from_slice(b"thermostat: sensor read failed\0");
        } else {
            let opcode = [0x13, 0x33, 0x03, 0x23, 0x6F, 0x63, 0xB7][(x >> 8) as usize % 7];
            let b = x.to_le_bytes();
            out.extend_from_slice(&[opcode, b[2] & 0x0F, b[3] & 0x3F, b[4] & 0x07]);
        }
    }
    out.truncate(len);
    out
}

/// The largest compressed block (Block_Type 2) of the single zstd frame `frame`, walking
/// its block headers (RFC 8878 §3.1.1.2); panics if anything follows the frame.
fn largest_compressed_block(frame: &[u8]) -> usize {
    assert_eq!(frame[..4], [0x28, 0xB5, 0x2F, 0xFD]);
    let fhd = frame[4];
    let single_segment = fhd & 0x20 != 0;
    let dictionary = [0, 1, 2, 4][usize::from(fhd & 3)];
    let content_size = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut at = 5 + usize::from(!single_segment) + dictionary + content_size;
    let mut largest = 0;
    loop {
        let h = u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], 0]);
        at += 3;
        let size = (h >> 3) as usize;
        match (h >> 1) & 3 {
            1 => at += 1,
            2 => {
                largest = largest.max(size);
                at += size;
            }
            _ => at += size,
        }
        if h & 1 != 0 {
            break;
        }
    }
    if fhd & 4 != 0 {
        at += 4;
    }
    assert_eq!(at, frame.len(), "one frame and nothing else");
    largest
}

/// libzstd level 19 as ota-sign writes method 2 and deltas: window `2^window_log`, blocks
/// of at most [`FLASH_WINDOW_MAX_BLOCK`] bytes, content size, no checksum, and `prefix`
/// (the delta's base) as a raw prefix. Checked to decode back with libzstd.
fn zstd_flash(data: &[u8], window_log: u8, prefix: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    use zstd::zstd_safe::{CParameter, DParameter};
    let mut e = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, prefix).unwrap();
    for p in [
        CParameter::WindowLog(u32::from(window_log)),
        CParameter::MaxBlockSize(FLASH_WINDOW_MAX_BLOCK),
        CParameter::ChecksumFlag(false),
        CParameter::ContentSizeFlag(true),
    ] {
        e.set_parameter(p).unwrap();
    }
    e.set_pledged_src_size(Some(data.len() as u64)).unwrap();
    e.write_all(data).unwrap();
    let frame = e.finish().unwrap();
    let largest = largest_compressed_block(&frame);
    assert!(0 < largest && largest <= FLASH_WINDOW_MAX_BLOCK as usize);
    let mut d = zstd::stream::read::Decoder::with_ref_prefix(&frame[..], prefix).unwrap();
    d.set_parameter(DParameter::WindowLogMax(u32::from(window_log)))
        .unwrap();
    let mut back = Vec::new();
    d.read_to_end(&mut back).unwrap();
    assert!(back == data, "libzstd decodes it back");
    frame
}

struct Builder {
    files: Vec<(String, Vec<u8>)>,
    entries: Vec<Value>,
}

impl Builder {
    fn file(&mut self, name: &str, bytes: Vec<u8>) {
        assert!(
            !self.files.iter().any(|(n, _)| n == name),
            "duplicate {name}"
        );
        self.files.push((name.to_string(), bytes));
    }

    fn entry(&mut self, mut e: Value) {
        e.as_object_mut()
            .unwrap()
            .retain(|_, v| !v.is_null() && v != &json!(""));
        self.entries.push(e);
    }

    fn image(&mut self, name: &str, bytes: Vec<u8>, expect: &str, attack: &str) {
        let file = format!("images/{name}");
        self.file(&file, bytes);
        self.entry(json!({"file": file, "kind": "image", "expect": expect, "attack": attack}));
    }

    fn manifest(&mut self, name: &str, bytes: Vec<u8>, expect: &str, attack: &str) {
        let file = format!("manifests/{name}");
        self.file(&file, bytes);
        self.entry(json!({"file": file, "kind": "manifest", "expect": expect, "attack": attack}));
    }

    /// An image checked against a manifest and/or the device's type and chip.
    fn bound_image(
        &mut self,
        image: &str,
        manifest: Option<&str>,
        device: Option<(&str, u16)>,
        expect: &str,
        attack: &str,
    ) {
        self.entry(json!({
            "file": format!("images/{image}"), "kind": "image", "expect": expect, "attack": attack,
            "manifest": manifest.map(|m| format!("manifests/{m}")),
            "expect_device_type": device.map(|d| d.0), "expect_chip": device.map(|d| d.1),
        }));
    }

    /// A delta checked with the given base (the device's running installed image, a
    /// vector file), manifest and device type and chip; `bytes` is its file, if new.
    fn delta(
        &mut self,
        name: &str,
        bytes: Option<Vec<u8>>,
        bound: (Option<&str>, Option<&str>, Option<(&str, u16)>),
        expect: &str,
        attack: &str,
    ) {
        let file = format!("deltas/{name}");
        if let Some(bytes) = bytes {
            self.file(&file, bytes);
        }
        let (base, manifest, device) = bound;
        self.entry(json!({
            "file": file, "kind": "delta", "expect": expect, "attack": attack,
            "base": base,
            "manifest": manifest.map(|m| format!("manifests/{m}")),
            "expect_device_type": device.map(|d| d.0), "expect_chip": device.map(|d| d.1),
        }));
    }

    /// A difference stream (delta encoding 3) applied to `base` for an image of
    /// `image_size` bytes; `target` (a vector file) is the image a valid one gives.
    fn diff(
        &mut self,
        name: &str,
        stream: Vec<u8>,
        (base, image_size, target): (&str, u32, Option<&str>),
        expect: &str,
        attack: &str,
    ) {
        let file = format!("diffs/{name}.stream");
        self.file(&file, stream);
        self.entry(json!({
            "file": file, "kind": "diff", "expect": expect, "attack": attack,
            "base": base, "image_size": image_size, "target": target,
        }));
    }

    /// A manifest decided on by a device.
    fn decide(&mut self, manifest: &str, device: &Device<'_>, expect: &str, attack: &str) {
        self.entry(json!({
            "file": format!("manifests/{manifest}"), "kind": "manifest", "expect": expect,
            "attack": attack, "device": device_json(device),
        }));
    }
}

const DESCRIPTOR_ATTACKS: &[(&str, &str)] = &[
    ("two-keys.bin", "none: descriptor trusting keys A and B"),
    (
        "firmware-with-descriptor.bin",
        "none: 4 KiB firmware, descriptor at offset 1000",
    ),
    (
        "firmware-same-descriptor-twice.bin",
        "none: the same descriptor at 1000 and 3000",
    ),
    (
        "firmware-two-descriptors.bin",
        "a second, different descriptor (key B only) at 3000",
    ),
    (
        "firmware-reordered-descriptors.bin",
        "descriptors trusting keys A, B at 1000 and B, A at 3000: the same key set in other bytes",
    ),
    (
        "firmware-without-descriptor.bin",
        "none: firmware without a descriptor",
    ),
    ("zero-keys.bin", "key count 0"),
    ("nine-keys.bin", "key count 9"),
    ("unused-slot-not-zero.bin", "a byte set in unused slot 2"),
    ("reserved-not-zero.bin", "reserved byte 18 set"),
    ("version-2.bin", "descriptor version 2"),
    ("truncated.bin", "last byte missing"),
    (
        "firmware-bare-magic-and-descriptor.bin",
        "none: a bare copy of the magic at 200 (skipped), the descriptor at 1000",
    ),
    (
        "firmware-damaged-descriptor.bin",
        "the only descriptor has key count 0: no descriptor (package refuses it)",
    ),
    (
        "firmware-descriptor-cut-off.bin",
        "firmware ends inside its descriptor: no descriptor",
    ),
];

pub fn generate() -> Vectors {
    let a = key_a();
    let b = key_b();
    let mut v = Builder {
        files: Vec::new(),
        entries: Vec::new(),
    };
    const H: usize = IMAGE_HEADER_LEN;
    const M: usize = MANIFEST_LEN;

    // --- keys ---
    v.file(
        "keys/TEST-ONLY-key-a.seed.hex",
        (hex(&a.to_bytes()) + "\n").into_bytes(),
    );
    v.file(
        "keys/TEST-ONLY-key-a.public.hex",
        (hex(&pk(&a)) + "\n").into_bytes(),
    );
    v.file(
        "keys/TEST-ONLY-key-b.seed.hex",
        (hex(&b.to_bytes()) + "\n").into_bytes(),
    );
    v.file(
        "keys/TEST-ONLY-key-b.public.hex",
        (hex(&pk(&b)) + "\n").into_bytes(),
    );

    // --- images ---
    let payload = payload();
    let info = info_for(&payload, &a);
    let valid = image(&info, &a, &payload);
    let with_header = |header: &[u8]| {
        let mut f = header.to_vec();
        f.extend_from_slice(&payload);
        f
    };
    // Change the signed part of the valid header and sign it again with key A.
    // Change the valid image without signing it again.
    let patched = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut f = valid.clone();
        patch(&mut f);
        f
    };
    let resigned = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut f = patched(patch);
        resign(&mut f, H, &a, IMAGE_DOMAIN);
        f
    };
    v.image(
        "valid.ota",
        valid.clone(),
        "valid",
        "none: the reference image (uncompressed)",
    );

    let head: Vec<u8> = payload[..1000].to_vec();
    let mut installed = head.clone();
    installed.resize(3000, 0xFF);
    let frame = zstd_frame(&head, 0xFF, 2000);
    let zinfo = ImageInfo {
        compression: Compression::Zstd { window_log: 12 },
        payload_size: frame.len() as u32,
        payload_sha256: sha(&frame),
        image_size: installed.len() as u32,
        image_sha256: sha(&installed),
        ..info
    };
    v.file("images/valid-zstd.installed.bin", installed);
    v.image(
        "valid-zstd.ota",
        image(&zinfo, &a, &frame),
        "valid",
        "none: zstd payload (raw + RLE block) of valid-zstd.installed.bin",
    );

    let mut ext = valid[..H - 64].to_vec();
    ext[6..8].copy_from_slice(&320u16.to_le_bytes());
    ext.resize(320 - 64, 0);
    let sig = sign_raw(&a, IMAGE_DOMAIN, &ext);
    ext.extend_from_slice(&sig);
    v.image(
        "valid-extended-header.ota",
        with_header(&ext),
        "valid",
        "none: header length 320 with a zero extension area (forward compatibility)",
    );
    v.image(
        "extension-area-not-zero.ota",
        resigned(&|f| f[0xB0..0xC0].fill(0xA5)),
        "valid",
        "none: the 16-byte extension area of a 256-byte header is ignored (but signed)",
    );
    v.image(
        "informational-flag.ota",
        resigned(&|f| f[0x0A] = 0x01),
        "valid",
        "none: informational flag bit 16 set, ignored",
    );

    v.image(
        "bad-magic.ota",
        patched(&|f| f[0] = b'X'),
        "BadMagic",
        "first byte changed",
    );
    v.image(
        "unsupported-version.ota",
        resigned(&|f| f[4] = 2),
        "UnsupportedVersion",
        "format version 2, re-signed",
    );
    v.image(
        "header-length-255.ota",
        patched(&|f| f[6..8].copy_from_slice(&255u16.to_le_bytes())),
        "BadLength",
        "header length below 256",
    );
    v.image(
        "header-length-1025.ota",
        patched(&|f| f[6..8].copy_from_slice(&1025u16.to_le_bytes())),
        "BadLength",
        "header length above 1024",
    );
    v.image(
        "header-length-288.ota",
        patched(&|f| f[6..8].copy_from_slice(&288u16.to_le_bytes())),
        "SignatureInvalid",
        "header length raised to 288 so payload bytes are read as header",
    );
    v.image("empty.ota", Vec::new(), "Truncated", "zero bytes");
    v.image(
        "truncated-header.ota",
        valid[..H - 1].to_vec(),
        "Truncated",
        "header cut one byte short",
    );
    v.image(
        "header-only.ota",
        valid[..H].to_vec(),
        "Truncated",
        "payload missing",
    );
    v.image(
        "truncated-payload.ota",
        valid[..valid.len() - 1].to_vec(),
        "Truncated",
        "last payload byte missing",
    );
    v.image(
        "trailing-byte.ota",
        patched(&|f| f.push(0)),
        "TrailingBytes",
        "one byte appended",
    );
    v.image(
        "bad-signature.ota",
        patched(&|f| f[H - 64] ^= 0x01),
        "SignatureInvalid",
        "one signature bit flipped",
    );
    v.image(
        "tampered-counter.ota",
        patched(&|f| f[0x50] = 3),
        "SignatureInvalid",
        "security counter raised without re-signing",
    );
    v.image(
        "tampered-payload.ota",
        patched(&|f| f[H + 100] ^= 0x80),
        "PayloadDigestMismatch",
        "one payload bit flipped",
    );
    v.image(
        "wrong-key.ota",
        image(&info_for(&payload, &b), &b, &payload),
        "UnknownKey",
        "signed by untrusted key B, naming key B",
    );
    v.image(
        "wrong-key-claims-trusted-id.ota",
        image(&info, &b, &payload),
        "SignatureInvalid",
        "signed by untrusted key B, naming trusted key A",
    );
    v.image(
        "non-canonical-signature.ota",
        patched(&|f| non_canonical_s(f, H)),
        "SignatureInvalid",
        "L added to the signature's S (malleated signature)",
    );
    let sig = small_order_r_signature(&a, IMAGE_DOMAIN, &valid[..H - 64]);
    v.image(
        "small-order-r.ota",
        patched(&|f| f[H - 64..H].copy_from_slice(&sig)),
        "SignatureInvalid",
        "signature with R = identity and S = k·a: the cofactorless equation holds, the small-order R is refused",
    );
    v.image(
        "unknown-critical-flag.ota",
        resigned(&|f| f[0x08] = 0x01),
        "UnknownCriticalFlag",
        "critical flag bit 0 set, re-signed",
    );
    v.image(
        "bad-compression.ota",
        resigned(&|f| f[0x0E] = 3),
        "InvalidField(Compression)",
        "compression method 3, re-signed",
    );
    v.image(
        "bad-window-log.ota",
        resigned(&|f| {
            f[0x0E] = 1;
            f[0x0F] = 9;
        }),
        "InvalidField(Compression)",
        "zstd with window log 9, re-signed",
    );
    v.image(
        "bad-device-type.ota",
        resigned(&|f| f[0x10] = b'T'),
        "InvalidField(DeviceType)",
        "upper-case device type, re-signed",
    );
    v.image(
        "bad-version.ota",
        resigned(&|f| f[0x30 + 12..0x30 + 15].copy_from_slice(b"rc!")),
        "InvalidField(Version)",
        "pre-release with '!', re-signed",
    );
    v.image(
        "size-mismatch.ota",
        resigned(&|f| f[0x60..0x64].copy_from_slice(&2999u32.to_le_bytes())),
        "InvalidField(Sizes)",
        "uncompressed but image size != payload size, re-signed",
    );
    v.image(
        "oversized-payload.ota",
        resigned(&|f| {
            f[0x0E] = 1;
            f[0x0F] = 12;
            f[0x64..0x68].copy_from_slice(&(MAX_PAYLOAD_SIZE + 1).to_le_bytes());
        }),
        "InvalidField(Sizes)",
        "payload size above the limit (endless data), re-signed",
    );

    // --- manifests ---
    let manifest = manifest_for(&valid, &info);
    let vm = manifest.sign(&a).unwrap();
    let m_patched = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut m = vm.to_vec();
        patch(&mut m);
        m
    };
    let m_resigned = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut m = m_patched(patch);
        resign(&mut m, M, &a, MANIFEST_DOMAIN);
        m
    };
    let signed = |m: &Manifest| m.sign(&a).unwrap().to_vec();
    v.manifest(
        "valid.manifest",
        vm.to_vec(),
        "valid",
        "none: names images/valid.ota",
    );

    v.image(
        "manifest-signature-replayed.ota",
        patched(&|f| f[H - 64..H].copy_from_slice(&vm[M - 64..])),
        "SignatureInvalid",
        "header signature replaced by the valid manifest's signature",
    );
    v.image(
        "signed-with-manifest-domain.ota",
        patched(&|f| resign(f, H, &a, MANIFEST_DOMAIN)),
        "SignatureInvalid",
        "header signed by key A under the manifest's domain string",
    );

    // Images checked against expectations.
    v.bound_image(
        "valid.ota",
        Some("valid.manifest"),
        Some(("thermostat", ChipId::ESP32C3.0)),
        "valid",
        "none: the image the manifest names",
    );
    let other = info_for(&payload, &a);
    let doorbell = ImageInfo {
        device_type: DeviceType::new("doorbell").unwrap(),
        ..other
    };
    v.image(
        "wrong-device-type.ota",
        image(&doorbell, &a, &payload),
        "valid",
        "none on its own: a valid image for device type doorbell",
    );
    v.bound_image(
        "wrong-device-type.ota",
        None,
        Some(("thermostat", ChipId::ESP32C3.0)),
        "WrongDeviceType",
        "validly signed image for another device type",
    );
    let s3 = ImageInfo {
        chip: ChipId::ESP32S3,
        ..other
    };
    v.image(
        "wrong-chip.ota",
        image(&s3, &a, &payload),
        "valid",
        "none on its own: a valid image for chip esp32s3",
    );
    v.bound_image(
        "wrong-chip.ota",
        None,
        Some(("thermostat", ChipId::ESP32C3.0)),
        "WrongChip",
        "validly signed image for another chip",
    );
    let mut old_payload = payload.clone();
    old_payload[0] ^= 0xFF;
    let old = ImageInfo {
        version: Version::parse("1.2.2").unwrap(),
        ..info_for(&old_payload, &a)
    };
    v.image(
        "swapped.ota",
        image(&old, &a, &old_payload),
        "valid",
        "none on its own: a valid older image",
    );
    v.bound_image(
        "swapped.ota",
        Some("valid.manifest"),
        None,
        "ManifestImageMismatch",
        "another validly signed image served in place of the named one",
    );
    let bind_variant = |v: &mut Builder, name: &str, m: Manifest, expect: &str, attack: &str| {
        v.file(&format!("manifests/{name}"), signed(&m));
        v.bound_image("valid.ota", Some(name), None, expect, attack);
    };
    bind_variant(
        &mut v,
        "binds-wrong-file-size.manifest",
        Manifest {
            image_file_size: manifest.image_file_size + 1,
            ..manifest
        },
        "ManifestImageMismatch",
        "manifest binds the header but a different file size",
    );
    bind_variant(
        &mut v,
        "binds-wrong-version.manifest",
        Manifest {
            version: Version::parse("1.3.0").unwrap(),
            ..manifest
        },
        "ManifestFieldMismatch(Version)",
        "manifest binds the header but claims another version",
    );
    bind_variant(
        &mut v,
        "binds-wrong-counter.manifest",
        Manifest {
            security_counter: 9,
            ..manifest
        },
        "ManifestFieldMismatch(SecurityCounter)",
        "manifest binds the header but claims another counter",
    );

    // Structural manifest rejections.
    v.manifest("empty.manifest", Vec::new(), "Truncated", "zero bytes");
    v.manifest(
        "bad-magic.manifest",
        m_patched(&|m| m[1] = b'X'),
        "BadMagic",
        "second byte changed",
    );
    v.manifest(
        "unsupported-version.manifest",
        m_resigned(&|m| m[4] = 2),
        "UnsupportedVersion",
        "format version 2, re-signed",
    );
    v.manifest(
        "length-367.manifest",
        m_patched(&|m| m[6..8].copy_from_slice(&367u16.to_le_bytes())),
        "BadLength",
        "declared length below 368",
    );
    v.manifest(
        "length-1025.manifest",
        m_patched(&|m| m[6..8].copy_from_slice(&1025u16.to_le_bytes())),
        "BadLength",
        "declared length above 1024",
    );
    v.manifest(
        "truncated.manifest",
        vm[..M - 1].to_vec(),
        "Truncated",
        "last byte missing",
    );
    v.manifest(
        "trailing-byte.manifest",
        m_patched(&|m| m.push(0)),
        "TrailingBytes",
        "one byte appended",
    );
    v.manifest(
        "bad-signature.manifest",
        m_patched(&|m| m[M - 1] ^= 0x40),
        "SignatureInvalid",
        "one signature bit flipped",
    );
    v.manifest(
        "tampered-sequence.manifest",
        m_patched(&|m| m[0x68] = 99),
        "SignatureInvalid",
        "sequence raised without re-signing",
    );
    v.manifest(
        "non-canonical-signature.manifest",
        m_patched(&|m| non_canonical_s(m, M)),
        "SignatureInvalid",
        "L added to the signature's S",
    );
    let mut mb = manifest;
    mb.key_id = KeyId::of(&pk(&b));
    v.manifest(
        "wrong-key.manifest",
        mb.sign(&b).unwrap().to_vec(),
        "UnknownKey",
        "signed by untrusted key B, naming key B",
    );
    v.manifest(
        "wrong-key-claims-trusted-id.manifest",
        manifest.sign(&b).unwrap().to_vec(),
        "SignatureInvalid",
        "signed by untrusted key B, naming trusted key A",
    );
    v.manifest(
        "image-signature-replayed.manifest",
        m_patched(&|m| m[M - 64..].copy_from_slice(&valid[H - 64..H])),
        "SignatureInvalid",
        "signature replaced by the valid image header's signature",
    );
    v.manifest(
        "signed-with-image-domain.manifest",
        m_patched(&|m| resign(m, M, &a, IMAGE_DOMAIN)),
        "SignatureInvalid",
        "manifest signed by key A under the image's domain string",
    );
    v.manifest(
        "unknown-critical-flag.manifest",
        m_resigned(&|m| m[0x08] = 0x04),
        "UnknownCriticalFlag",
        "critical flag bit 2 set, re-signed",
    );
    v.manifest(
        "informational-flag.manifest",
        m_resigned(&|m| m[0x0B] = 0x80),
        "valid",
        "none: informational flag bit 31 set, ignored",
    );
    v.manifest(
        "bad-rollout.manifest",
        m_resigned(&|m| m[0x0E..0x10].copy_from_slice(&10_001u16.to_le_bytes())),
        "InvalidField(Rollout)",
        "rollout 10001 basis points, re-signed",
    );
    v.manifest(
        "bad-device-type.manifest",
        m_resigned(&|m| m[0x10 + 10] = b'.'),
        "InvalidField(DeviceType)",
        "device type with '.', re-signed",
    );
    v.manifest(
        "bad-channel.manifest",
        m_resigned(&|m| m[0x30 + 1] = 0),
        "InvalidField(Channel)",
        "channel with a NUL followed by non-zero padding, re-signed",
    );
    v.manifest(
        "bad-image-name.manifest",
        m_resigned(&|m| {
            m[0xC8..0xC8 + 96].fill(0);
            m[0xC8..0xC8 + 11].copy_from_slice(b"../evil.ota");
        }),
        "InvalidField(ImageName)",
        "image name escapes the directory (../), re-signed",
    );
    v.manifest(
        "image-name-with-slash.manifest",
        m_resigned(&|m| m[0xC8 + 4] = b'/'),
        "InvalidField(ImageName)",
        "image name with a '/', re-signed",
    );
    v.manifest(
        "min-version-without-flag.manifest",
        m_resigned(&|m| m[0xA8] = 1),
        "InvalidField(Version)",
        "minimum running version set while flag bit 1 is clear, re-signed",
    );
    v.manifest(
        "zero-image-size.manifest",
        m_resigned(&|m| m[0x84..0x88].fill(0)),
        "InvalidField(Sizes)",
        "installed image size 0, re-signed",
    );
    v.manifest(
        "file-size-too-small.manifest",
        m_resigned(&|m| m[0x80..0x84].copy_from_slice(&256u32.to_le_bytes())),
        "InvalidField(Sizes)",
        "image file size 256 (no payload), re-signed",
    );
    let mut ext = vm[..M - 64].to_vec();
    ext[6..8].copy_from_slice(&400u16.to_le_bytes());
    ext.resize(400 - 64, 0);
    let sig = sign_raw(&a, MANIFEST_DOMAIN, &ext);
    ext.extend_from_slice(&sig);
    v.manifest(
        "valid-extended.manifest",
        ext,
        "valid",
        "none: manifest length 400 with a zero extension area",
    );

    // --- policy: the device decides ---
    let d = device();
    v.decide(
        "valid.manifest",
        &d,
        "Install",
        "none: a device one version behind",
    );
    v.decide(
        "valid.manifest",
        &Device {
            last_sequence: Some(7),
            ..d
        },
        "Install",
        "none: the same sequence seen again is not a replay",
    );
    v.decide(
        "valid.manifest",
        &Device {
            running_version: Version::parse("1.2.3").unwrap(),
            ..d
        },
        "UpToDate",
        "none: the device already runs 1.2.3",
    );
    v.decide(
        "valid.manifest",
        &Device {
            device_type: DeviceType::new("doorbell").unwrap(),
            ..d
        },
        "WrongDeviceType",
        "manifest for another device type",
    );
    v.decide(
        "valid.manifest",
        &Device {
            chip: ChipId::ESP32S3,
            ..d
        },
        "WrongChip",
        "manifest for another chip",
    );
    v.decide(
        "valid.manifest",
        &Device {
            channel: Channel::new("beta").unwrap(),
            ..d
        },
        "WrongChannel",
        "manifest for another channel",
    );
    v.decide(
        "valid.manifest",
        &Device {
            last_sequence: Some(8),
            ..d
        },
        "SequenceRollback",
        "device already accepted sequence 8 (freeze / replay)",
    );
    v.decide(
        "valid.manifest",
        &Device {
            security_counter: 3,
            ..d
        },
        "CounterRollback",
        "device counter 3 above the release's 2",
    );
    v.decide(
        "valid.manifest",
        &Device {
            running_version: Version::parse("1.3.0").unwrap(),
            ..d
        },
        "Downgrade",
        "device runs 1.3.0, release is 1.2.3",
    );
    v.decide(
        "valid.manifest",
        &Device {
            slot_size: 2999,
            ..d
        },
        "TooLarge",
        "update slot smaller than the image",
    );

    let expiring = Manifest {
        not_after: Some(T0 + 86_400),
        ..manifest
    };
    v.file("manifests/expiring.manifest", signed(&expiring));
    v.decide(
        "expiring.manifest",
        &Device {
            now: Some(T0 + 86_401),
            ..d
        },
        "Expired",
        "clock one second past not-after",
    );
    v.decide(
        "expiring.manifest",
        &Device {
            now: Some(T0 + 86_400),
            ..d
        },
        "Install",
        "none: clock exactly at not-after is still valid",
    );
    v.decide(
        "expiring.manifest",
        &Device { now: None, ..d },
        "Install",
        "none: a device without a clock cannot check expiry",
    );
    let replayed = Manifest {
        sequence: 5,
        version: Version::parse("1.2.2").unwrap(),
        ..manifest
    };
    v.file("manifests/replayed-old.manifest", signed(&replayed));
    v.decide(
        "replayed-old.manifest",
        &d,
        "SequenceRollback",
        "validly signed older manifest (sequence 5) replayed",
    );
    let counter = Manifest {
        version: Version::parse("1.3.0").unwrap(),
        security_counter: 1,
        sequence: 8,
        ..manifest
    };
    v.file("manifests/counter-rollback.manifest", signed(&counter));
    v.decide(
        "counter-rollback.manifest",
        &d,
        "CounterRollback",
        "newer version carrying a lower security counter",
    );
    let downgrade = Manifest {
        version: Version::parse("1.1.0").unwrap(),
        sequence: 8,
        ..manifest
    };
    v.file("manifests/downgrade.manifest", signed(&downgrade));
    v.decide(
        "downgrade.manifest",
        &d,
        "Downgrade",
        "older version without the allow-downgrade flag",
    );
    let allowed = Manifest {
        allow_downgrade: true,
        ..downgrade
    };
    v.file("manifests/downgrade-allowed.manifest", signed(&allowed));
    v.decide(
        "downgrade-allowed.manifest",
        &d,
        "Install",
        "none: older version with allow-downgrade (counter equal)",
    );
    v.decide(
        "downgrade-allowed.manifest",
        &Device {
            security_counter: 3,
            ..d
        },
        "CounterRollback",
        "allow-downgrade never lowers the security counter",
    );
    let min = Manifest {
        min_running_version: Some(Version::parse("1.2.0").unwrap()),
        ..manifest
    };
    v.file("manifests/min-version.manifest", signed(&min));
    v.decide(
        "min-version.manifest",
        &Device {
            running_version: Version::parse("1.1.9").unwrap(),
            ..d
        },
        "BelowMinimumVersion",
        "device runs 1.1.9, release needs at least 1.2.0",
    );
    v.decide(
        "min-version.manifest",
        &Device {
            running_version: Version::parse("1.2.0-rc.1").unwrap(),
            ..d
        },
        "BelowMinimumVersion",
        "pre-release 1.2.0-rc.1 is below 1.2.0",
    );
    v.decide(
        "min-version.manifest",
        &d,
        "Install",
        "none: 1.2.2 >= 1.2.0",
    );

    // Staged rollout: find one device id inside 10% and one outside, from a fixed list.
    let staged = Manifest {
        rollout: 1000,
        ..manifest
    };
    v.file("manifests/rollout-10pct.manifest", signed(&staged));
    let ids: Vec<[u8; 6]> = (0..64u8).map(|i| [0x24, 0x0a, 0xc4, 0, 1, i]).collect();
    let bucket = |id: &[u8]| rollout_bucket(&manifest.image_header_sha256, id);
    let inside = ids.iter().find(|id| bucket(&id[..]) < 1000).unwrap();
    let outside = ids.iter().find(|id| bucket(&id[..]) >= 1000).unwrap();
    v.decide(
        "rollout-10pct.manifest",
        &Device {
            device_id: &inside[..],
            ..d
        },
        "Install",
        "none: device bucket below 1000",
    );
    v.decide(
        "rollout-10pct.manifest",
        &Device {
            device_id: &outside[..],
            ..d
        },
        &format!(
            "NotInRollout {{ bucket: {}, rollout: 1000 }}",
            bucket(&outside[..])
        ),
        "device bucket at or above 1000 waits",
    );
    let rollout: Vec<Value> = ids[..8]
        .iter()
        .map(|id| {
            json!({
                "image_header_sha256": hex(&manifest.image_header_sha256),
                "device_id": hex(id),
                "bucket": bucket(&id[..]),
            })
        })
        .collect();

    // --- trusted-key descriptors ---
    let desc = TrustedKeyDescriptor::new(&[pk(&a), pk(&b)]).to_bytes();
    let keys_ab = json!([hex(&pk(&a)), hex(&pk(&b))]);
    let desc_entry = |v: &mut Builder, name: &str, bytes: Vec<u8>, kind: &str, expect: &str| {
        let file = format!("descriptors/{name}");
        v.file(&file, bytes);
        let keys = if expect == "valid" {
            keys_ab.clone()
        } else {
            Value::Null
        };
        let attack = DESCRIPTOR_ATTACKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .unwrap();
        v.entry(
            json!({"file": file, "kind": kind, "expect": expect, "keys": keys, "attack": attack}),
        );
    };
    desc_entry(&mut v, "two-keys.bin", desc.to_vec(), "descriptor", "valid");
    let mut fw: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    fw[1000..1000 + DESCRIPTOR_LEN].copy_from_slice(&desc);
    desc_entry(
        &mut v,
        "firmware-with-descriptor.bin",
        fw.clone(),
        "firmware",
        "valid",
    );
    let mut twice = fw.clone();
    twice[3000..3000 + DESCRIPTOR_LEN].copy_from_slice(&desc);
    desc_entry(
        &mut v,
        "firmware-same-descriptor-twice.bin",
        twice.clone(),
        "firmware",
        "valid",
    );
    let other_desc = TrustedKeyDescriptor::new(&[pk(&b)]).to_bytes();
    twice[3000..3000 + DESCRIPTOR_LEN].copy_from_slice(&other_desc);
    desc_entry(
        &mut v,
        "firmware-two-descriptors.bin",
        twice,
        "firmware",
        "AmbiguousDescriptor",
    );
    let mut reordered = fw.clone();
    let desc_ba = TrustedKeyDescriptor::new(&[pk(&b), pk(&a)]).to_bytes();
    reordered[3000..3000 + DESCRIPTOR_LEN].copy_from_slice(&desc_ba);
    desc_entry(
        &mut v,
        "firmware-reordered-descriptors.bin",
        reordered,
        "firmware",
        "AmbiguousDescriptor",
    );
    let plain: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    desc_entry(
        &mut v,
        "firmware-without-descriptor.bin",
        plain,
        "firmware",
        "None",
    );
    let mut d0 = desc;
    d0[17] = 0;
    desc_entry(
        &mut v,
        "zero-keys.bin",
        d0.to_vec(),
        "descriptor",
        "BadDescriptor",
    );
    let mut d9 = desc;
    d9[17] = 9;
    desc_entry(
        &mut v,
        "nine-keys.bin",
        d9.to_vec(),
        "descriptor",
        "BadDescriptor",
    );
    let mut dslot = desc;
    dslot[20 + 2 * 32] = 1;
    desc_entry(
        &mut v,
        "unused-slot-not-zero.bin",
        dslot.to_vec(),
        "descriptor",
        "BadDescriptor",
    );
    let mut dres = desc;
    dres[18] = 1;
    desc_entry(
        &mut v,
        "reserved-not-zero.bin",
        dres.to_vec(),
        "descriptor",
        "BadDescriptor",
    );
    let mut dver = desc;
    dver[16] = 2;
    desc_entry(
        &mut v,
        "version-2.bin",
        dver.to_vec(),
        "descriptor",
        "UnsupportedVersion",
    );
    desc_entry(
        &mut v,
        "truncated.bin",
        desc[..DESCRIPTOR_LEN - 1].to_vec(),
        "descriptor",
        "Truncated",
    );
    let mut bare = fw.clone();
    bare[200..216].copy_from_slice(&DESCRIPTOR_MAGIC);
    desc_entry(
        &mut v,
        "firmware-bare-magic-and-descriptor.bin",
        bare,
        "firmware",
        "valid",
    );
    let mut damaged = fw.clone();
    damaged[1000 + 17] = 0;
    desc_entry(
        &mut v,
        "firmware-damaged-descriptor.bin",
        damaged,
        "firmware",
        "None",
    );
    let mut truncated_fw = fw;
    truncated_fw.truncate(1000 + DESCRIPTOR_LEN - 1);
    desc_entry(
        &mut v,
        "firmware-descriptor-cut-off.bin",
        truncated_fw,
        "firmware",
        "None",
    );

    flash_window_and_delta_vectors(&mut v, &info);
    difference_vectors(&mut v, &info);

    let key_json = |k: &ed25519_dalek::SigningKey, trusted: bool| {
        json!({
            "seed": hex(&k.to_bytes()),
            "public": hex(&pk(k)),
            "key_id": KeyId::of(&pk(k)).to_string(),
            "trusted": trusted,
        })
    };
    let index = json!({
        "comment": "ota-sign test vectors. The keys below are TEST ONLY: their seeds are public. \
                    Never trust them in production. Regenerate with OTA_REGENERATE_VECTORS=1 \
                    cargo test -p ota-format --test vectors.",
        "keys": {"a": key_json(&a, true), "b": key_json(&b, false)},
        "trusted_keys": [hex(&pk(&a))],
        "vectors": v.entries,
        "rollout_buckets": rollout,
    });
    Vectors {
        files: v.files,
        index,
    }
}

/// Compression method 2 (a window in flash, blocks <= 8 KiB) and the delta object: a
/// 16 KiB app-like base, a target that changes a string and inserts 200 bytes of code in
/// the middle (so later code moves), the target as a method-2 image with its manifest, and
/// the delta from base to target with its hostile variants.
fn flash_window_and_delta_vectors(v: &mut Builder, info: &ImageInfo) {
    const D: usize = DELTA_HEADER_LEN;
    const H: usize = IMAGE_HEADER_LEN;
    let a = key_a();
    let b = key_b();
    let base = app_like(16 * 1024, 0x5EED_0001);
    let mut target = base.clone();
    target[0x100..0x10B].copy_from_slice(b"ota-sign-ci");
    let inserted = app_like(200, 0x5EED_0002);
    target.splice(8000..8000, inserted);

    // --- a method-2 image ---
    let payload = zstd_flash(&target, 15, &[]);
    let finfo = ImageInfo {
        compression: Compression::ZstdFlashWindow { window_log: 15 },
        payload_size: payload.len() as u32,
        payload_sha256: sha(&payload),
        image_size: target.len() as u32,
        image_sha256: sha(&target),
        ..*info
    };
    let flash = image(&finfo, &a, &payload);
    v.file("images/valid-zstd-flash.installed.bin", target.clone());
    v.image(
        "valid-zstd-flash.ota",
        flash.clone(),
        "valid",
        "none: method 2, window 2^15, libzstd level 19 with blocks <= 8 KiB, of valid-zstd-flash.installed.bin",
    );
    for (log, name) in [
        (9u8, "flash-window-log-9.ota"),
        (26, "flash-window-log-26.ota"),
    ] {
        let mut f = flash.clone();
        f[0x0F] = log;
        resign(&mut f, H, &a, IMAGE_DOMAIN);
        v.image(
            name,
            f,
            "InvalidField(Compression)",
            &format!("method 2 with window log {log} (outside 10..=25), re-signed"),
        );
    }
    let fmanifest = manifest_for(&flash, &finfo).sign(&a).unwrap().to_vec();
    v.manifest(
        "valid-zstd-flash.manifest",
        fmanifest,
        "valid",
        "none: names images/valid-zstd-flash.ota",
    );

    // --- the delta ---
    let dpayload = zstd_flash(&target, 16, &base);
    let dinfo = delta_info_for(&base, &flash, &dpayload, 16, &a);
    let valid = delta_file(&dinfo, &a, &flash, &dpayload);
    v.file("deltas/base.installed.bin", base.clone());
    let base_file = Some("deltas/base.installed.bin");
    let none = (None, None, None);
    let device = Some(("thermostat", ChipId::ESP32C3.0));
    v.delta(
        "valid.otad",
        Some(valid.clone()),
        none,
        "valid",
        "none: base.installed.bin to valid-zstd-flash.ota, window 2^16, libzstd level 19 with the base as raw prefix, blocks <= 8 KiB",
    );
    v.delta(
        "valid.otad",
        None,
        (base_file, Some("valid-zstd-flash.manifest"), device),
        "valid",
        "none: a device running base.installed.bin, offered valid-zstd-flash.manifest",
    );
    v.delta(
        "valid.otad",
        None,
        (Some("images/valid-zstd.installed.bin"), None, None),
        "DeltaBaseMismatch",
        "the device runs another image than the delta's base",
    );
    v.delta(
        "valid.otad",
        None,
        (base_file, Some("valid.manifest"), None),
        "ManifestImageMismatch",
        "the manifest names another image (valid.ota) than the delta's target",
    );
    v.delta(
        "valid.otad",
        None,
        (None, None, Some(("doorbell", ChipId::ESP32C3.0))),
        "WrongDeviceType",
        "a doorbell device offered a thermostat delta",
    );

    let patched = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut f = valid.clone();
        patch(&mut f);
        f
    };
    let resigned = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut f = patched(patch);
        resign(&mut f, D, &a, DELTA_DOMAIN);
        f
    };
    let set_u32 = |f: &mut Vec<u8>, at: usize, value: u32| {
        f[at..at + 4].copy_from_slice(&value.to_le_bytes());
    };
    let mut hostile: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad-magic.otad",
            patched(&|f| f[3] = b'I'),
            "BadMagic",
            "magic OTAI (an image's) instead of OTAD",
        ),
        (
            "unsupported-version.otad",
            resigned(&|f| f[4] = 2),
            "UnsupportedVersion",
            "format version 2, re-signed",
        ),
        (
            "header-length-255.otad",
            patched(&|f| f[6..8].copy_from_slice(&255u16.to_le_bytes())),
            "BadLength",
            "delta header length below 256",
        ),
        (
            "truncated-delta-header.otad",
            valid[..100].to_vec(),
            "Truncated",
            "ends inside the delta header",
        ),
        (
            "truncated-target-header.otad",
            valid[..D + 100].to_vec(),
            "Truncated",
            "ends inside the target header",
        ),
        (
            "truncated-payload.otad",
            valid[..valid.len() - 1].to_vec(),
            "Truncated",
            "last payload byte missing",
        ),
        (
            "trailing-byte.otad",
            patched(&|f| f.push(0)),
            "TrailingBytes",
            "one byte after the payload",
        ),
        (
            "unknown-critical-flag.otad",
            resigned(&|f| f[0x08] = 1),
            "UnknownCriticalFlag",
            "critical flag bit 0 set, re-signed",
        ),
        (
            "informational-flag.otad",
            resigned(&|f| f[0x0A] = 1),
            "valid",
            "none: informational flag bit 16 set, ignored",
        ),
        (
            "extension-area-not-zero.otad",
            resigned(&|f| f[0xA0..D - 64].fill(0xA5)),
            "valid",
            "none: the extension area is ignored (but signed)",
        ),
        (
            "bad-device-type.otad",
            resigned(&|f| f[0x10] = b'T'),
            "InvalidField(DeviceType)",
            "upper-case device type, re-signed",
        ),
        (
            "method-1.otad",
            resigned(&|f| f[0x0E] = 1),
            "InvalidField(Compression)",
            "payload encoding 1 (only 2 and 3 are defined), re-signed",
        ),
        (
            "window-log-9.otad",
            resigned(&|f| f[0x0F] = 9),
            "InvalidField(Compression)",
            "window log 9, re-signed",
        ),
        (
            "window-log-26.otad",
            resigned(&|f| f[0x0F] = 26),
            "InvalidField(Compression)",
            "window log 26, re-signed",
        ),
        (
            "base-size-0.otad",
            resigned(&|f| set_u32(f, 0x30, 0)),
            "InvalidField(Sizes)",
            "base size 0, re-signed",
        ),
        (
            "base-size-too-large.otad",
            resigned(&|f| set_u32(f, 0x30, MAX_IMAGE_SIZE + 1)),
            "InvalidField(Sizes)",
            "base size above 16 MiB, re-signed",
        ),
        (
            "payload-size-0.otad",
            resigned(&|f| set_u32(f, 0x34, 0)),
            "InvalidField(Sizes)",
            "payload size 0, re-signed",
        ),
        (
            "payload-size-too-large.otad",
            resigned(&|f| set_u32(f, 0x34, MAX_PAYLOAD_SIZE + 1)),
            "InvalidField(Sizes)",
            "payload size above 16 MiB + 64 KiB, re-signed",
        ),
        (
            "signature-bit.otad",
            patched(&|f| f[D - 1] ^= 1),
            "SignatureInvalid",
            "last signature byte changed",
        ),
        (
            "image-domain.otad",
            patched(&|f| resign(f, D, &a, IMAGE_DOMAIN)),
            "SignatureInvalid",
            "delta header signed by key A under the image's domain string",
        ),
        (
            "target-header-edited.otad",
            patched(&|f| f[D + 0x30] ^= 1),
            "DeltaTargetMismatch",
            "a byte of the carried target header changed (its version)",
        ),
        (
            "target-other-chip.otad",
            resigned(&|f| f[0x0C] = ChipId::ESP32S3.0 as u8),
            "DeltaTargetMismatch",
            "delta header says ESP32-S3, the target header ESP32-C3, re-signed",
        ),
        (
            "payload-edited.otad",
            patched(&|f| *f.last_mut().unwrap() ^= 1),
            "PayloadDigestMismatch",
            "last payload byte changed",
        ),
    ];
    let by_b = delta_file(
        &delta_info_for(&base, &flash, &dpayload, 16, &b),
        &b,
        &flash,
        &dpayload,
    );
    hostile.push((
        "signed-by-key-b.otad",
        by_b,
        "UnknownKey",
        "delta header signed by untrusted key B",
    ));
    // Another validly signed image's header carried in place of the named one.
    let other = image(info, &a, &common_payload());
    let mut swapped = valid.clone();
    swapped[D..D + H].copy_from_slice(&other[..H]);
    hostile.push((
        "target-header-swapped.otad",
        swapped,
        "DeltaTargetMismatch",
        "valid.ota's header carried in place of the named target header",
    ));
    // A delta naming (and carrying) a doorbell image's header, but saying thermostat.
    let doorbell = image(
        &ImageInfo {
            device_type: DeviceType::new("doorbell").unwrap(),
            ..finfo
        },
        &a,
        &payload,
    );
    let f = delta_file(
        &delta_info_for(&base, &doorbell, &dpayload, 16, &a),
        &a,
        &doorbell,
        &dpayload,
    );
    let mut f = f;
    f[0x10..0x30].copy_from_slice(&DeviceType::new("thermostat").unwrap().encode());
    resign(&mut f, D, &a, DELTA_DOMAIN);
    hostile.push((
        "target-other-device-type.otad",
        f,
        "DeltaTargetMismatch",
        "names a doorbell image's header but says thermostat, re-signed",
    ));
    // The named target header is signed by an untrusted key: the delta's signature does
    // not stand in for the image's.
    let untrusted = image(
        &ImageInfo {
            key_id: KeyId::of(&pk(&b)),
            ..finfo
        },
        &b,
        &payload,
    );
    hostile.push((
        "target-signed-by-key-b.otad",
        delta_file(
            &delta_info_for(&base, &untrusted, &dpayload, 16, &a),
            &a,
            &untrusted,
            &dpayload,
        ),
        "UnknownKey",
        "names and carries a target header signed by untrusted key B",
    ));
    for (name, bytes, expect, attack) in hostile {
        v.delta(name, Some(bytes), none, expect, attack);
    }
}

/// RV32 instruction encodings for the difference-stream vectors (RISC-V unprivileged ISA,
/// RV32I base formats).
mod rv {
    pub const RA: u32 = 1;
    pub const T0: u32 = 5;
    pub const A0: u32 = 10;
    pub const A1: u32 = 11;
    pub const A2: u32 = 12;
    pub const A4: u32 = 14;
    pub const A5: u32 = 15;

    /// `offset` as an upper part (low 12 bits zero) and a 12-bit low field with
    /// `hi + sext12(lo) == offset`, as an assembler splits `%hi`/`%lo`.
    pub fn split(offset: u32) -> (u32, u32) {
        let hi = offset.wrapping_add(0x800) & 0xFFFF_F000;
        (hi, offset.wrapping_sub(hi) & 0xFFF)
    }
    pub fn auipc(rd: u32, hi: u32) -> u32 {
        hi | (rd << 7) | 0x17
    }
    pub fn lui(rd: u32, hi: u32) -> u32 {
        hi | (rd << 7) | 0x37
    }
    pub fn i_type(opcode: u32, funct3: u32, rd: u32, rs1: u32, lo: u32) -> u32 {
        (lo << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
    }
    pub fn jalr(rd: u32, rs1: u32, lo: u32) -> u32 {
        i_type(0x67, 0, rd, rs1, lo)
    }
    pub fn addi(rd: u32, rs1: u32, lo: u32) -> u32 {
        i_type(0x13, 0, rd, rs1, lo)
    }
    pub fn lw(rd: u32, rs1: u32, lo: u32) -> u32 {
        i_type(0x03, 2, rd, rs1, lo)
    }
    pub fn sw(rs2: u32, rs1: u32, lo: u32) -> u32 {
        ((lo >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((lo & 0x1F) << 7) | 0x23
    }
}

/// One item of a generated RISC-V program.
#[derive(Clone, Copy)]
enum Insn {
    /// A 4-byte instruction that starts no address pair.
    Word(u32),
    /// A 2-byte (compressed) instruction.
    Half(u16),
    /// `auipc ra` + `jalr ra`: a call to the function with this id.
    Call(usize),
    /// `lui a0` + `addi a0, a0`: the absolute address of a data item.
    Address(usize),
    /// `auipc a5` + `lw a4, (a5)`: a data item's first word, PC-relative.
    Load(usize),
    /// `lui t0` + `sw a1, (t0)`: a store to a fixed RAM address (it never moves).
    Store(u32),
}

/// Where the image's bytes are mapped (ESP32-C3 instruction/data bus, after the header).
const IMAGE_ADDRESS: u32 = 0x4200_0020;

/// Lays out `functions` (id, instructions) in order, then `data` (4-byte aligned), and
/// assembles them; also returns the offsets of the address pairs.
fn assemble(functions: &[(usize, Vec<Insn>)], data: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let size = |i: &Insn| match i {
        Insn::Word(_) => 4,
        Insn::Half(_) => 2,
        _ => 8,
    };
    let mut at = 0usize;
    let mut function_at = std::collections::HashMap::new();
    for (id, body) in functions {
        function_at.insert(*id, at);
        at += body.iter().map(size).sum::<usize>();
    }
    let mut data_at = Vec::new();
    at = at.next_multiple_of(4);
    for d in data {
        data_at.push(at);
        at += d.len().next_multiple_of(4);
    }
    let mut out = Vec::with_capacity(at);
    let mut pairs = Vec::new();
    for (_, body) in functions {
        for insn in body {
            let pc = out.len();
            let relative = |to: usize| (to as u32).wrapping_sub(pc as u32);
            let words = match *insn {
                Insn::Word(w) => {
                    out.extend_from_slice(&w.to_le_bytes());
                    continue;
                }
                Insn::Half(h) => {
                    out.extend_from_slice(&h.to_le_bytes());
                    continue;
                }
                Insn::Call(id) => {
                    let (hi, lo) = rv::split(relative(function_at[&id]));
                    [rv::auipc(rv::RA, hi), rv::jalr(rv::RA, rv::RA, lo)]
                }
                Insn::Address(d) => {
                    let (hi, lo) = rv::split(IMAGE_ADDRESS + data_at[d] as u32);
                    [rv::lui(rv::A0, hi), rv::addi(rv::A0, rv::A0, lo)]
                }
                Insn::Load(d) => {
                    let (hi, lo) = rv::split(relative(data_at[d]));
                    [rv::auipc(rv::A5, hi), rv::lw(rv::A4, rv::A5, lo)]
                }
                Insn::Store(address) => {
                    let (hi, lo) = rv::split(address);
                    [rv::lui(rv::T0, hi), rv::sw(rv::A1, rv::T0, lo)]
                }
            };
            pairs.push(pc);
            out.extend_from_slice(&words[0].to_le_bytes());
            out.extend_from_slice(&words[1].to_le_bytes());
        }
    }
    out.resize(out.len().next_multiple_of(4), 0);
    for d in data {
        out.extend_from_slice(d);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    assert_eq!(out.len(), at);
    (out, pairs)
}

/// A function of `len` instructions: plain 4- and 2-byte instructions, calls to the
/// functions `0..functions`, data addresses and loads of `0..data`, stores to RAM.
fn riscv_function(x: &mut u64, len: usize, functions: usize, data: usize) -> Vec<Insn> {
    let mut next = || {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    };
    (0..len)
        .map(|_| {
            let r = next();
            let pick = (r >> 32) as usize;
            match r % 100 {
                // add/addi/lw/sw/beq on small registers: opcodes that start no pair.
                0..55 => {
                    let opcode = [0x33, 0x13, 0x03, 0x23, 0x63][pick % 5];
                    Insn::Word(opcode | ((r as u32 >> 8) & 0x01FF_FF80))
                }
                // Low two bits 00, 01 or 10: a compressed instruction.
                55..75 => Insn::Half(((r >> 16) as u16 & !3) | (pick % 3) as u16),
                75..85 => Insn::Call(pick % functions),
                85..92 => Insn::Address(pick % data),
                92..96 => Insn::Load(pick % data),
                _ => Insn::Store(0x3FC8_0000 + (pick % 0x4000) as u32 * 4),
            }
        })
        .collect()
}

/// A base and a target image of RISC-V code in which code moved: the target inserts a
/// function in the middle (a multiple of 4 bytes, so the data after the code moves by the
/// same amount) and changes a version string. Returns base, target, where the inserted
/// function starts, its length, and the target's pair offsets.
fn moved_code() -> (Vec<u8>, Vec<u8>, usize, usize, Vec<usize>) {
    const FUNCTIONS: usize = 40;
    let mut x = 0x5EED_0003u64;
    let mut data: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("thermostat: message {i:02} of the firmware\0").into_bytes())
        .collect();
    data[0] = b"fw 1.0.0\0".to_vec();
    let mut functions: Vec<(usize, Vec<Insn>)> = (0..FUNCTIONS)
        .map(|id| {
            let len = 20 + (id * 7) % 31;
            (id, riscv_function(&mut x, len, FUNCTIONS, data.len()))
        })
        .collect();
    let (base, _) = assemble(&functions, &data);
    let mut inserted = riscv_function(&mut x, 24, FUNCTIONS, data.len());
    // Keep the data 4-byte aligned at the same distance from the code.
    let bytes = |f: &[Insn]| {
        f.iter()
            .map(|i| match i {
                Insn::Word(_) => 4,
                Insn::Half(_) => 2,
                _ => 8,
            })
            .sum::<usize>()
    };
    if bytes(&inserted) % 4 != 0 {
        inserted.push(Insn::Half(0x0001)); // c.nop
    }
    let at = FUNCTIONS / 2;
    let insert_len = bytes(&inserted);
    let insert_at: usize = functions[..at].iter().map(|(_, f)| bytes(f)).sum();
    functions.insert(at, (FUNCTIONS, inserted));
    data[0] = b"fw 1.1.0\0".to_vec();
    let (target, pairs) = assemble(&functions, &data);
    assert_eq!(target.len(), base.len() + insert_len);
    (base, target, insert_at, insert_len, pairs)
}

/// The bytes of a difference stream for an image of `image_size`: `diff`, zeros to the
/// control offset, `control`.
fn raw_stream(image_size: u32, diff: &[u8], control: &[u8]) -> Vec<u8> {
    let mut s = diff.to_vec();
    s.resize(diff::control_offset(image_size) as usize, 0);
    s.extend_from_slice(control);
    s
}

/// LEB128 of each value, as `Record::encode` writes them (shortest form).
fn leb128(values: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        let mut v = v;
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

fn zigzag(seek: i32) -> u32 {
    ((seek << 1) ^ (seek >> 31)) as u32
}

/// The control records of `records`, encoded.
fn control(records: &[(u32, u32, i32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(add_len, copy_len, seek) in records {
        out.extend(leb128(&[add_len, copy_len, zigzag(seek)]));
    }
    out
}

/// The small hand-made base of the `diffs/` vectors: every kind of address pair, words
/// that resemble one but are not, compressed instructions, and a pair at offset 60.
fn pairs_base() -> Vec<u32> {
    use rv::*;
    let (call_hi, call_lo) = split(0x0000_17F0);
    let (la_hi, la_lo) = split(0x3C00_1123);
    let (st_hi, st_lo) = split(0x3FC8_07FC);
    let (ld_hi, ld_lo) = split(0xFFFF_FFFC);
    vec![
        0x4501_0001, // c.nop, c.li a0, 0: two 2-byte instructions
        auipc(RA, call_hi),
        jalr(RA, RA, call_lo), // I-type pair (jalr)
        lui(A0, la_hi),
        addi(A0, A0, la_lo), // I-type pair (addi)
        lui(T0, st_hi),
        sw(A1, T0, st_lo), // S-type pair (store)
        auipc(A5, ld_hi),
        lw(A4, A5, ld_lo), // I-type pair (load)
        lui(A0, la_hi),
        i_type(0x13, 2, A0, A0, 5), // slti: OP-IMM with funct3 2, not a pair
        lui(A0, la_hi),
        addi(A1, A2, 5), // rs1 is not the lui's rd: not a pair
        lui(0, la_hi),
        addi(0, 0, 1), // rd 0: not a pair
        auipc(RA, call_hi),
        jalr(RA, RA, call_lo), // a pair at 60 that the first add run cuts after 6 bytes
        0x0000_8082,           // c.ret, c.unimp
        auipc(A5, ld_hi),
        lw(A4, A5, ld_lo),
        lui(A0, la_hi),
        addi(A0, A0, la_lo),
        0x0013_0001, // c.nop, then the first half of a 4-byte instruction the base ends in
        0x0000_0000,
    ]
}

/// The target words of `pairs_base` after a change: every pair's address moves, a
/// register or two differ (the bits a pair carries beside its address), look-alikes
/// change their immediates.
fn pairs_target(base: &[u32]) -> Vec<u32> {
    use rv::*;
    let mut t = base.to_vec();
    let set_pair = |t: &mut Vec<u32>, at: usize, w: [u32; 2]| {
        t[at] = w[0];
        t[at + 1] = w[1];
    };
    // The call reaches 0x40 further; the address crosses a 4 KiB boundary downwards.
    let (hi, lo) = split(0x0000_1830);
    set_pair(&mut t, 1, [auipc(RA, hi), jalr(RA, RA, lo)]);
    let (hi, lo) = split(0x3C00_0FFC);
    set_pair(&mut t, 3, [lui(A0, hi), addi(A0, A0, lo)]);
    // The store's low part turns from 0x7FC to -0x7FC (its high part carries).
    let (hi, lo) = split(0x3FC8_0804);
    set_pair(&mut t, 5, [lui(T0, hi), sw(A2, T0, lo)]);
    // The load's base register and its destination change with its address.
    let (hi, lo) = split(0xFFFF_FFF4);
    set_pair(&mut t, 7, [auipc(A4, hi), lw(A5, A4, lo)]);
    t[10] = i_type(0x13, 2, A0, A0, 9);
    t[12] = addi(A1, A2, 9);
    t[14] = addi(0, 0, 3);
    let (hi, lo) = split(0x0000_2000);
    set_pair(&mut t, 15, [auipc(RA, hi), jalr(RA, RA, lo)]);
    let (hi, lo) = split(0x0001_0000);
    set_pair(&mut t, 18, [auipc(A5, hi), lw(A4, A5, lo)]);
    t
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Delta encoding 3: a RISC-V base and a target in which code moved, the target as a
/// method-2 image, the encoding-3 delta between them with hostile headers, and the
/// difference-stream vectors (`diffs/`), valid and corrupt.
fn difference_vectors(v: &mut Builder, info: &ImageInfo) {
    const D: usize = DELTA_HEADER_LEN;
    let a = key_a();
    let (base, target, insert_at, insert_len, target_pairs) = moved_code();
    let payload = zstd_flash(&target, 15, &[]);
    let tinfo = ImageInfo {
        version: Version::parse("1.3.0").unwrap(),
        compression: Compression::ZstdFlashWindow { window_log: 15 },
        payload_size: payload.len() as u32,
        payload_sha256: sha(&payload),
        image_size: target.len() as u32,
        image_sha256: sha(&target),
        ..*info
    };
    let timage = image(&tinfo, &a, &payload);
    v.file("images/valid-riscv.installed.bin", target.clone());
    v.image(
        "valid-riscv.ota",
        timage.clone(),
        "valid",
        "none: method 2, window 2^15, of valid-riscv.installed.bin (RISC-V code whose middle function is new)",
    );

    // The records a bsdiff-style matcher finds: the code before the new function, the
    // new function's bytes, the rest (moved by insert_len).
    let records = [
        diff::Record {
            add_len: insert_at as u32,
            copy_len: insert_len as u32,
            seek: 0,
        },
        diff::Record {
            add_len: (base.len() - insert_at) as u32,
            copy_len: 0,
            seek: 0,
        },
    ];
    let stream = diff::encode_stream(&base, &target, &records).unwrap();
    // Why encoding 3 exists: every pair that reaches across the move carries one of a
    // few 8-byte diffs (+insert_len or -insert_len, I- or S-type), whatever its address.
    let mut pair_diffs: Vec<&[u8]> = target_pairs
        .iter()
        .filter(|&&at| at < insert_at || at >= insert_at + insert_len)
        .map(|&at| &stream[at..at + 8])
        .filter(|d| d.iter().any(|b| *b != 0))
        .collect();
    assert!(pair_diffs.len() > 20);
    pair_diffs.sort();
    pair_diffs.dedup();
    assert!(pair_diffs.len() <= 3, "{pair_diffs:02x?}");

    let window_log = 14;
    assert!(stream.len() <= 1 << window_log);
    let dpayload = zstd_flash(&stream, window_log, &[]);
    let dinfo = DeltaInfo {
        encoding: DeltaEncoding::Difference {
            stream_size: stream.len() as u32,
        },
        ..delta_info_for(&base, &timage, &dpayload, window_log, &a)
    };
    let valid = delta_file(&dinfo, &a, &timage, &dpayload);
    v.file("deltas/riscv-base.installed.bin", base.clone());
    v.diff(
        "moved-code",
        stream.clone(),
        (
            "deltas/riscv-base.installed.bin",
            target.len() as u32,
            Some("images/valid-riscv.installed.bin"),
        ),
        "valid",
        "none: the difference stream deltas/valid-difference.otad's payload decodes to; code moved, so pairs reaching across the move share their diff bytes",
    );
    let none = (None, None, None);
    v.delta(
        "valid-difference.otad",
        Some(valid.clone()),
        none,
        "valid",
        "none: encoding 3, riscv-base.installed.bin to valid-riscv.ota, window 2^14, libzstd level 19 of diffs/moved-code.stream (no prefix), blocks <= 8 KiB",
    );
    v.delta(
        "valid-difference.otad",
        None,
        (
            Some("deltas/riscv-base.installed.bin"),
            None,
            Some(("thermostat", ChipId::ESP32C3.0)),
        ),
        "valid",
        "none: a device running riscv-base.installed.bin",
    );
    let resigned = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut f = valid.clone();
        patch(&mut f);
        resign(&mut f, D, &a, DELTA_DOMAIN);
        f
    };
    let set_u32 = |f: &mut Vec<u8>, at: usize, value: u32| {
        f[at..at + 4].copy_from_slice(&value.to_le_bytes());
    };
    let hostile: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "difference-extension-area-not-zero.otad",
            resigned(&|f| f[0xA4..D - 64].fill(0xA5)),
            "valid",
            "none: with encoding 3 the extension area starts at 0xA4 and is ignored (but signed)",
        ),
        (
            "encoding-4.otad",
            resigned(&|f| f[0x0E] = 4),
            "InvalidField(Compression)",
            "payload encoding 4 (only 2 and 3 are defined), re-signed",
        ),
        (
            "difference-stream-size-0.otad",
            resigned(&|f| set_u32(f, 0xA0, 0)),
            "InvalidField(Sizes)",
            "encoding 3 with stream size 0, re-signed",
        ),
        (
            "difference-stream-size-too-large.otad",
            resigned(&|f| set_u32(f, 0xA0, diff::MAX_STREAM_SIZE + 1)),
            "InvalidField(Sizes)",
            "encoding 3 with stream size above 32 MiB, re-signed",
        ),
    ];
    for (name, bytes, expect, attack) in hostile {
        v.delta(name, Some(bytes), none, expect, attack);
    }

    // --- difference streams by hand ---
    let pbase = pairs_base();
    let ptarget = pairs_target(&pbase);
    let (pbase, ptarget) = (words(&pbase), words(&ptarget));
    v.file("diffs/pairs.base", pbase.clone());
    let n = pbase.len();
    assert_eq!(n, 96);
    // The target: base 0..66 (the pair at 60 cut after 6 bytes), 5 new bytes, base 2..18
    // again (the walk restarts at the run), 3 new bytes and a seek to the base's end, then
    // base 58..96 after a seek back (the run starts inside the look-alike at 52), 2 new bytes.
    let mut target = ptarget[..66].to_vec();
    target.extend_from_slice(b"NEW!!");
    target.extend_from_slice(&ptarget[2..18]);
    target.extend_from_slice(b"abc");
    target.extend_from_slice(&ptarget[58..96]);
    target.extend_from_slice(b"yz");
    let records = [(66, 5, -64), (16, 3, 78), (0, 0, -38), (38, 2, 0)];
    let precords: Vec<diff::Record> = records
        .iter()
        .map(|&(add_len, copy_len, seek)| diff::Record {
            add_len,
            copy_len,
            seek,
        })
        .collect();
    let stream = diff::encode_stream(&pbase, &target, &precords).unwrap();
    // Each pair of the first run is normalised: its diff bytes are not the byte-wise ones.
    for at in [4usize, 12, 20, 28] {
        let bytewise: Vec<u8> = (at..at + 8)
            .map(|i| target[i].wrapping_sub(pbase[i]))
            .collect();
        assert_ne!(stream[at..at + 8], bytewise[..], "pair at {at}");
    }
    // ... and the look-alikes are not.
    for i in 36..60 {
        assert_eq!(stream[i], target[i].wrapping_sub(pbase[i]), "byte {i}");
    }
    assert_eq!(
        stream[diff::control_offset(target.len() as u32) as usize..],
        control(&records)
    );
    v.file("diffs/pairs.target", target.clone());
    let image_size = target.len() as u32;
    v.diff(
        "pairs",
        stream.clone(),
        ("diffs/pairs.base", image_size, Some("diffs/pairs.target")),
        "valid",
        "none: I- and S-type pairs, look-alikes (slti, rs1 != rd, rd 0), a pair cut by its run's end, runs restarting the walk mid-base, seeks back and to the base's end",
    );

    // The same records with LEB128 values in longer forms: all that counts is the value.
    let mut long_forms = Vec::new();
    long_forms.extend([0xC2, 0x80, 0x00]); // 66 in 3 bytes
    long_forms.extend([0x85, 0x00]); // 5 in 2 bytes
    long_forms.extend([0xFF, 0x80, 0x80, 0x80, 0x00]); // zigzag(-64) = 127 in 5 bytes
    long_forms.extend(control(&records[1..2]));
    long_forms.extend([0x80, 0x80, 0x80, 0x80, 0x00, 0x00]); // 0 in 5 bytes, 0
    long_forms.extend(leb128(&[zigzag(-38)]));
    long_forms.extend(control(&records[3..]));
    let long = raw_stream(image_size, &stream[..target.len()], &long_forms);
    v.diff(
        "long-leb128",
        long,
        ("diffs/pairs.base", image_size, Some("diffs/pairs.target")),
        "valid",
        "none: pairs.stream with LEB128 values in longer forms (3, 2 and 5 bytes, a 5-byte zero)",
    );

    // A 4096-byte image: the control records start right after it, no padding.
    let sector: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 253) as u8).collect();
    v.file("diffs/sector.target", sector.clone());
    v.diff(
        "sector",
        raw_stream(4096, &sector, &control(&[(0, 4096, 0)])),
        ("diffs/pairs.base", 4096, Some("diffs/sector.target")),
        "valid",
        "none: one copy run of 4096 bytes; the control records start at 4096, without padding",
    );

    // Corrupt streams, each for a 100-byte image from pairs.base (96 bytes).
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 13 % 256) as u8).collect();
    let corrupt = |c: &[u8]| raw_stream(100, &garbage, c);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "stream-too-short",
            corrupt(&[])[..4095].to_vec(),
            "StreamTooShort",
            "4095 bytes: less than the diff bytes of a 100-byte image and their padding",
        ),
        (
            "control-empty",
            corrupt(&[]),
            "ControlEnds",
            "no control records at all",
        ),
        (
            "control-ends",
            corrupt(&control(&[(10, 10, 0)])),
            "ControlEnds",
            "the records give 20 of the 100 bytes",
        ),
        (
            "record-cut",
            corrupt(&leb128(&[10, 10])),
            "BadRecord",
            "the control area ends after a record's copy length",
        ),
        (
            "leb128-cut",
            corrupt(&[0x8A]),
            "BadRecord",
            "the control area ends inside a LEB128 value",
        ),
        (
            "leb128-fifth-byte-0x10",
            corrupt(&[0x80, 0x80, 0x80, 0x80, 0x10, 0, 0]),
            "BadRecord",
            "a 5-byte LEB128 value of 2^32 (fifth byte above 0x0F)",
        ),
        (
            "leb128-six-bytes",
            corrupt(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0]),
            "BadRecord",
            "a 6-byte LEB128 value (of 0)",
        ),
        (
            "beyond-base",
            corrupt(&control(&[(97, 3, 0)])),
            "BeyondBase",
            "an add run of 97 bytes from a 96-byte base",
        ),
        (
            "beyond-base-and-image",
            corrupt(&control(&[(10, 0, 80), (7, 90, 0)])),
            "BeyondBase",
            "a record that reads past the base and writes past the image: the base is checked first",
        ),
        (
            "beyond-image",
            corrupt(&control(&[(50, 51, 0)])),
            "BeyondImage",
            "a record of 101 bytes for a 100-byte image",
        ),
        (
            "seek-before-base",
            corrupt(&control(&[(10, 10, -11), (80, 0, 0)])),
            "SeekOutsideBase",
            "a seek to base position -1",
        ),
        (
            "seek-past-base",
            corrupt(&control(&[(10, 0, 87), (0, 90, 0)])),
            "SeekOutsideBase",
            "a seek to base position 97 of a 96-byte base (96 is allowed)",
        ),
        (
            "seek-min",
            corrupt(&[0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 100, 0]),
            "SeekOutsideBase",
            "a seek of -2^31 (zigzag 0xFFFFFFFF, the largest 5-byte LEB128 value)",
        ),
        (
            "last-seek-outside-base",
            corrupt(&control(&[(96, 4, 1)])),
            "SeekOutsideBase",
            "the last record's seek leaves the base: checked like every other",
        ),
        (
            "trailing-record",
            corrupt(&control(&[(96, 4, 0), (0, 0, 0)])),
            "TrailingControl",
            "an empty record after the image is complete",
        ),
        (
            "trailing-byte",
            corrupt(&[control(&[(96, 4, -96)]), vec![0]].concat()),
            "TrailingControl",
            "one control byte after the image is complete",
        ),
    ];
    for (name, stream, expect, attack) in cases {
        v.diff(
            name,
            stream,
            ("diffs/pairs.base", 100, None),
            expect,
            attack,
        );
    }
}
