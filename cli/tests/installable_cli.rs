//! `verify` and `release` refuse every payload a device refuses after the signature,
//! because they run the agent's own decoder and install rules. Each image here is
//! correctly signed and passes the format's checks; only what a device does with its
//! payload (decode the zstd frames, count and hash the output, read it as an ESP-IDF app
//! image) refuses it. A release that passes the host and fails on every device is the
//! outcome these tests rule out.

mod common;

use common::*;
use ota_format::Compression;
use ota_testkit::release::{
    Spec, build, build_with_payload, compress, compress_blocks, skippable_frame, with_dictionary_id,
};
use ota_testkit::{Chip, TestFirmware};

/// Seed of this file's signing key (not one of the project's published test keys).
const SEED: [u8; 32] = *b"ota-sign cli host-rule tests 001";
const VERSION: &str = "1.1.0";
const MANIFEST: &str = "sensor.stable.manifest";

fn public_key() -> [u8; 32] {
    ota_testkit::release::public_key(SEED)
}

/// A scratch directory holding `signer.key`, the key of [`SEED`].
fn scratch() -> Scratch {
    let s = Scratch::new();
    let pem = ota_keys::PrivateKey::from_seed(&SEED)
        .to_pkcs8_pem()
        .unwrap();
    s.write("signer.key", pem.as_bytes());
    s
}

/// Firmware a device would install: the signed version, trusting the signer.
fn firmware(filler: usize) -> TestFirmware {
    TestFirmware::new(Chip::Esp32c3)
        .version(VERSION)
        .trusted_keys(&[public_key()])
        .payload_size(filler)
}

fn spec() -> Spec<'static> {
    Spec {
        version: VERSION,
        signer: SEED,
        ..Spec::default()
    }
}

/// Writes `ota` and expects `verify` to exit with `code`; returns stderr.
fn verify(s: &Scratch, ota: &[u8], code: i32) -> String {
    s.write("image.ota", ota);
    let pk = hex::encode(public_key());
    let out = s.run(&["verify", "--pubkey", &pk, "image.ota"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "verify: {stderr}");
    stderr
}

/// Expects `release` of `image.ota` to exit with `code` and, unless it succeeded, to
/// leave no manifest; returns stderr.
fn release_exits(s: &Scratch, code: i32) -> String {
    let stderr = s.fails(
        &[
            "release",
            "--key",
            "signer.key",
            "--repo",
            TREE,
            "--channel",
            "stable",
            "image.ota",
        ],
        code,
    );
    if code != 0 {
        assert_absent(&s.path(TREE).join(MANIFEST));
    }
    stderr
}

/// `verify` then `release` both refuse `ota` with `code`, naming `what`.
fn both_refuse(ota: &[u8], code: i32, what: &str) {
    let s = scratch();
    let err = verify(&s, ota, code);
    assert!(err.contains(what), "verify: {err}");
    let err = release_exits(&s, code);
    assert!(err.contains(what), "release: {err}");
}

#[test]
fn small_frame_declaring_a_window_above_the_header_is_refused() {
    // ~6.5 KiB compressed with a 2^14 window: zstd writes one single-segment frame whose
    // window is its content size, above the 2^12 the signed header declares.
    let spec = Spec {
        window_log: Some(14),
        declared_window_log: Some(12),
        ..spec()
    };
    let release = build(&spec, firmware(6_000).app_image());
    both_refuse(&release.ota, INVALID, "exceeds the allowed 4096");
}

#[test]
fn skippable_frame_at_the_start_is_refused() {
    let app = firmware(20_000).app_image();
    let mut payload = skippable_frame(b"not image data");
    payload.extend_from_slice(&compress(&app, 12));
    let release = build_with_payload(&spec(), app, payload, Compression::Zstd { window_log: 12 });
    both_refuse(&release.ota, INVALID, "not a zstd frame");
}

#[test]
fn frame_with_a_dictionary_id_is_refused() {
    let app = firmware(20_000).app_image();
    let payload = with_dictionary_id(&compress(&app, 12), 7);
    let release = build_with_payload(&spec(), app, payload, Compression::Zstd { window_log: 12 });
    both_refuse(&release.ota, INVALID, "needs a dictionary");
}

#[test]
fn output_longer_than_the_signed_image_size_is_refused() {
    // The installed digest covers the whole output, so only the length gives it away.
    let app = firmware(20_000).app_image();
    let spec = Spec {
        declared_image_size: Some(app.len() as u32 - 16),
        ..spec()
    };
    both_refuse(
        &build(&spec, app).ota,
        INVALID,
        "decompresses to more than the signed image size",
    );
}

#[test]
fn app_version_other_than_the_signed_one_is_refused() {
    let app = firmware(20_000).version("1.0.0").app_image();
    both_refuse(
        &build(&spec(), app).ota,
        INVALID,
        "app descriptor says version 1.0.0",
    );
}

#[test]
fn firmware_that_trusts_no_key_is_refused() {
    let app = TestFirmware::new(Chip::Esp32c3)
        .version(VERSION)
        .payload_size(20_000)
        .app_image();
    both_refuse(
        &build(&spec(), app).ota,
        INVALID,
        "no trusted-key descriptor",
    );
}

#[test]
fn payload_that_is_not_an_app_image_exits_3() {
    // Format-valid: stored, sizes and digests right, signed. `verify --help` promises 3
    // for a structure problem, and the device refuses it as an app image.
    let payload: Vec<u8> = (0..5_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let release = build_with_payload(
        &Spec {
            window_log: None,
            ..spec()
        },
        payload.clone(),
        payload,
        Compression::None,
    );
    both_refuse(&release.ota, INVALID, "app image");
}

#[test]
fn frame_window_above_the_device_type_limit_is_refused_unless_configured() {
    // The header declares 2^14 and the frames use it: well formed, but devices of the
    // default configuration (2^12) cannot decode it.
    let spec = Spec {
        window_log: Some(14),
        ..spec()
    };
    let release = build(&spec, firmware(40_000).app_image());
    let s = scratch();
    let err = verify(&s, &release.ota, POLICY);
    assert!(err.contains("max_window_log"), "{err}");
    let err = release_exits(&s, POLICY);
    assert!(err.contains("max_window_log"), "{err}");

    // Devices built to accept 2^14, said so in ota-sign.toml.
    s.write("ota-sign.toml", b"[device.sensor]\nmax_window_log = 14\n");
    verify(&s, &release.ota, 0);
    release_exits(&s, 0);
    assert!(s.path(TREE).join(MANIFEST).exists());
}

#[test]
fn method_2_block_above_the_decoders_8_kib_is_refused() {
    // zstd's default 128 KiB blocks: firmware-like data compresses each to far more than
    // the 8 KiB block buffer of the decoder that reads its window from flash.
    let app = firmware(200_000).app_image();
    let payload = compress_blocks(&app, 18, 128 * 1024);
    let release = build_with_payload(
        &spec(),
        app,
        payload,
        Compression::ZstdFlashWindow { window_log: 18 },
    );
    both_refuse(&release.ota, INVALID, "exceeds the maximum 8192");
    let s = scratch();
    let err = verify(&s, &release.ota, INVALID);
    assert!(err.contains("at most 8 KiB"), "{err}");
}
