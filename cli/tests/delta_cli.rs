//! `ota-sign delta` as a real process: a signed delta from one packaged image to the
//! next, checked by `verify --base` and shown by `inspect`; every bad input leaves no
//! output file.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};

/// Packages version `version` of `device_type` (firmware-like filler of `seed`, the
/// same bytes for the same seed apart from the version) into `out`.
fn package(
    s: &Scratch,
    key: &str,
    pk: [u8; 32],
    device_type: &str,
    version: &str,
    seed: u64,
    out: &str,
) {
    let app = TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .project_name(device_type)
        .trusted_keys(&[pk])
        .payload_size(120_000)
        .seed(seed)
        .marker(&format!("build {version}"))
        .app_image();
    let input = format!("{out}.bin");
    s.write(&input, &app);
    s.ok(&[
        "package",
        "--key",
        &format!("{key}.key"),
        "--device-type",
        device_type,
        "--app-image",
        &input,
        "-q",
        "-o",
        out,
    ]);
}

fn scratch() -> (Scratch, [u8; 32]) {
    let s = Scratch::new();
    let pk = s.keygen("release");
    package(&s, "release", pk, "lamp", "1.0.0", 1, "v1.ota");
    package(&s, "release", pk, "lamp", "1.1.0", 1, "v2.ota");
    (s, pk)
}

fn delta_args<'a>(from: &'a str, to: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "delta",
        "--key",
        "release.key",
        "--from",
        from,
        "--to",
        to,
        "-o",
        out,
    ]
}

#[test]
fn a_delta_is_small_verifies_against_its_base_and_shows_its_fields() {
    let (s, _) = scratch();
    let out = s.json(&delta_args("v1.ota", "v2.ota", "v2.otad"));
    let delta_size = out["delta_size"].as_u64().unwrap();
    let full_size = out["full_size"].as_u64().unwrap();
    assert_eq!(
        full_size,
        std::fs::metadata(s.path("v2.ota")).unwrap().len()
    );
    assert_eq!(
        delta_size,
        std::fs::metadata(s.path("v2.otad")).unwrap().len()
    );
    // Same filler, another version string: a few hundred bytes against ~60 KB.
    assert!(delta_size * 10 < full_size, "{out}");
    assert_eq!(
        (out["from_version"].as_str(), out["to_version"].as_str()),
        (Some("1.0.0"), Some("1.1.0"))
    );
    let suffix = out["file_name_suffix"].as_str().unwrap();
    assert!(
        suffix.starts_with('.') && suffix.ends_with(".otad") && suffix.len() == 22,
        "{suffix}"
    );

    let v = s.json(&[
        "verify",
        "--pubkey",
        "release.pub",
        "--base",
        "v1.ota",
        "v2.otad",
    ]);
    assert_eq!(
        (v["kind"].as_str(), v["base_checked"].as_bool()),
        (Some("delta"), Some(true))
    );
    assert_eq!(v["version"], "1.1.0");
    let v = s.json(&["verify", "--pubkey", "release.pub", "v2.otad"]);
    assert_eq!(v["base_checked"], false);

    let i = s.json(&["inspect", "v2.otad"]);
    assert_eq!(i["kind"], "delta");
    assert_eq!(i["target_version"], "1.1.0");
    assert_eq!(i["base_sha256"], out["base_sha256"]);
    assert_eq!(i["name_suffix"].as_str(), Some(suffix));
    assert_eq!(i["complete"], true);
    assert!(i["encoding"].as_str().unwrap().contains("in flash"), "{i}");

    // Another base: the delta is refused for it (exit 6), as a device running it would.
    let err = s.fails(
        &[
            "verify",
            "--pubkey",
            "release.pub",
            "--base",
            "v2.ota",
            "v2.otad",
        ],
        POLICY,
    );
    assert!(err.contains("another base image"), "{err}");
    // A flipped payload byte: the payload digest.
    let mut bad = std::fs::read(s.path("v2.otad")).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    s.write("bad.otad", &bad);
    s.fails(
        &[
            "verify",
            "--pubkey",
            "release.pub",
            "--base",
            "v1.ota",
            "bad.otad",
        ],
        INVALID,
    );
    // Signed by a key the verifier does not trust.
    s.keygen("other");
    s.fails(&["verify", "--pubkey", "other.pub", "v2.otad"], INVALID);
}

#[test]
fn both_encodings_verify_and_auto_keeps_the_smaller() {
    let (s, _) = scratch();
    let mut sizes = Vec::new();
    for encoding in ["patch-from", "difference", "auto"] {
        let out_name = format!("{encoding}.otad");
        let mut args = delta_args("v1.ota", "v2.ota", &out_name);
        args.extend(["--encoding", encoding]);
        let out = s.json(&args);
        let made = out["encoding"].as_str().unwrap().to_owned();
        if encoding != "auto" {
            assert_eq!(made, encoding, "{out}");
        }
        let v = s.json(&[
            "verify",
            "--pubkey",
            "release.pub",
            "--base",
            "v1.ota",
            &out_name,
        ]);
        assert_eq!(v["base_checked"], true, "{encoding}: {v}");
        let i = s.json(&["inspect", &out_name]);
        assert!(i["encoding"].as_str().unwrap().starts_with(&made), "{i}");
        sizes.push(out["delta_size"].as_u64().unwrap());
    }
    assert_eq!(sizes[2], sizes[0].min(sizes[1]), "{sizes:?}");
    s.fails(
        &[
            "delta",
            "--key",
            "release.key",
            "--from",
            "v1.ota",
            "--to",
            "v2.ota",
            "-o",
            "x.otad",
            "--encoding",
            "lzma",
        ],
        USAGE,
    );
    assert!(!s.path("x.otad").exists());
}

#[test]
fn bad_inputs_leave_no_output() {
    let (s, pk) = scratch();
    package(&s, "release", pk, "plug", "1.1.0", 1, "plug.ota");
    let other = s.keygen("other");
    package(&s, "other", other, "lamp", "1.2.0", 1, "foreign.ota");

    let err = s.fails(&delta_args("v1.ota", "plug.ota", "x.otad"), POLICY);
    assert!(err.contains("same device type"), "{err}");
    // Images are verified with the signing key's public key unless --pubkey says more.
    s.fails(&delta_args("v1.ota", "foreign.ota", "x.otad"), INVALID);
    let mut bad = std::fs::read(s.path("v2.ota")).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    s.write("tampered.ota", &bad);
    s.fails(&delta_args("v1.ota", "tampered.ota", "x.otad"), INVALID);
    s.fails(&delta_args("missing.ota", "v2.ota", "x.otad"), IO);
    assert_absent(&s.path("x.otad"));

    let mut trusting = delta_args("v1.ota", "foreign.ota", "x.otad");
    trusting.extend_from_slice(&["--pubkey", "release.pub", "--pubkey", "other.pub"]);
    s.ok(&trusting);
    // Never overwritten without --force.
    let before = std::fs::read(s.path("x.otad")).unwrap();
    s.fails(&delta_args("v1.ota", "v2.ota", "x.otad"), CONFLICT);
    assert_eq!(std::fs::read(s.path("x.otad")).unwrap(), before);
    let mut force = delta_args("v1.ota", "v2.ota", "x.otad");
    force.push("--force");
    s.ok(&force);
    s.ok(&[
        "verify",
        "--pubkey",
        "release.pub",
        "--base",
        "v1.ota",
        "x.otad",
    ]);
}
