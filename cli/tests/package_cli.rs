//! `ota-sign package`, `verify`, `inspect` and `extract` as real processes over ESP
//! firmware synthesized by ota-testkit.

mod common;

use std::path::Path;

use common::*;
use ota_testkit::{Chip, Corruption, TestFirmware, corrupt};

fn firmware(chip: Chip, keys: &[[u8; 32]]) -> TestFirmware {
    TestFirmware::new(chip)
        .version("1.4.0")
        .project_name("thermostat")
        .trusted_keys(keys)
        .payload_size(120_000)
        .seed(3)
}

fn package_args<'a>(elf: &'a str, chip: &'a str, out: &'a str) -> Vec<&'a str> {
    [
        &PACKAGE_THERMOSTAT[..],
        &["--elf", elf, "--chip", chip, "-o", out],
    ]
    .concat()
}

/// `package --app-image APP`, then `rest`.
fn app_image_args<'a>(app: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    [&PACKAGE_THERMOSTAT[..], &["--app-image", app], rest].concat()
}

/// Packages the ESP32-C3 ELF at `elf` into `out` with `extra` flags, expecting exit `code`.
fn package_fails(s: &Scratch, elf: &Path, out: &str, extra: &[&str], code: i32) -> String {
    let args = package_args(elf.to_str().unwrap(), "esp32c3", out);
    s.fails(&[&args[..], extra].concat(), code)
}

#[test]
fn elf_for_every_chip_packages_verifies_and_extracts() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    for chip in Chip::ALL {
        let elf = s.write(
            &format!("{}.elf", chip.name()),
            &firmware(chip, &[pk]).elf(),
        );
        let out = format!("{}.ota", chip.name());
        let json = s.ok(&[
            &package_args(elf.to_str().unwrap(), chip.name(), &out)[..],
            &["--json"],
        ]
        .concat());
        let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(summary["version"], "1.4.0");
        assert_eq!(summary["chip"], chip.name());
        assert!(summary["file_size"].as_u64().unwrap() < summary["input_size"].as_u64().unwrap());

        let verdict = s.ok(&[
            "verify",
            "--pubkey",
            "release.pub",
            "--device-type",
            "thermostat",
            &out,
            "--json",
        ]);
        let verdict: serde_json::Value = serde_json::from_str(&verdict).unwrap();
        assert_eq!(verdict["valid"], true);

        let app = format!("{}.bin", chip.name());
        let app_bytes = s.extract("release.pub", &out, &app);
        let info = ota_format::esp::validate(&app_bytes, Default::default()).unwrap();
        assert_eq!(info.chip(), chip.id());
        assert_eq!(summary["image_sha256"], hex::encode(info.image_sha256));
    }
}

#[test]
fn output_is_deterministic_under_source_date_epoch() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let elf = s.write("fw.elf", &firmware(Chip::Esp32c3, &[pk]).elf());
    s.ok(&package_args(elf.to_str().unwrap(), "esp32c3", "a.ota"));
    s.ok(&package_args(elf.to_str().unwrap(), "esp32c3", "b.ota"));
    assert_eq!(
        std::fs::read(s.path("a.ota")).unwrap(),
        std::fs::read(s.path("b.ota")).unwrap()
    );
}

#[test]
fn app_image_input_is_checked_and_packaged() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let image = firmware(Chip::Esp32s3, &[pk]).app_image();
    s.write("app.bin", &image);
    s.ok(&app_image_args("app.bin", &["-o", "ok.ota"]));
    s.ok(&[
        "verify",
        "--pubkey",
        "release.pub",
        "--chip",
        "esp32s3",
        "ok.ota",
    ]);

    let err = s.fails(
        &app_image_args("app.bin", &["--chip", "esp32c3", "-o", "wrong-chip.ota"]),
        POLICY,
    );
    assert!(err.contains("esp32s3"), "{err}");
    assert_absent(&s.path("wrong-chip.ota"));

    for (name, corruption) in [
        ("checksum", Corruption::Checksum),
        ("digest", Corruption::Digest),
        ("magic", Corruption::Magic(0x00)),
        ("truncated", Corruption::Truncate(image.len() / 2)),
    ] {
        s.write(&format!("{name}.bin"), &corrupt(&image, corruption));
        let (app, out) = (format!("{name}.bin"), format!("{name}.ota"));
        s.fails(
            &app_image_args(&app, &["--chip", "esp32s3", "-o", &out]),
            FAILURE,
        );
        assert_absent(&s.path(&format!("{name}.ota")));
    }
}

#[test]
fn firmware_that_would_lock_the_fleet_out_is_refused() {
    let s = Scratch::new();
    s.keygen("release");
    let other = s.keygen("other");
    let elf = s.write("fw.elf", &firmware(Chip::Esp32c3, &[other]).elf());
    let args = package_args(elf.to_str().unwrap(), "esp32c3", "out.ota");
    let err = s.fails(&args, POLICY);
    assert!(err.contains("refuse every later update"), "{err}");
    assert_absent(&s.path("out.ota"));

    // A planned rotation: the firmware trusts the next key, which we hold.
    s.ok(&[&args[..], &["--next-key", "other.pub"]].concat());
    std::fs::remove_file(s.path("out.ota")).unwrap();
    // A deliberate hand-over.
    let out = s.run(&[&args[..], &["--allow-lockout"]].concat());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));

    let bare = s.write(
        "bare.elf",
        &TestFirmware::new(Chip::Esp32c3).version("1.0.0").elf(),
    );
    let err = package_fails(&s, &bare, "bare.ota", &[], POLICY);
    assert!(err.contains("no trusted-key descriptor"), "{err}");
    assert_absent(&s.path("bare.ota"));
}

#[test]
fn bad_firmware_inputs_get_clear_errors_and_no_output() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let no_desc = s.write(
        "nodesc.elf",
        &TestFirmware::new(Chip::Esp32c3)
            .trusted_keys(&[pk])
            .without_app_descriptor()
            .elf(),
    );
    let err = package_fails(&s, &no_desc, "a.ota", &[], FAILURE);
    assert!(err.contains("app descriptor"), "{err}");

    let not_semver = s.write(
        "v.elf",
        &TestFirmware::new(Chip::Esp32c3)
            .version("v1.2-dirty")
            .trusted_keys(&[pk])
            .elf(),
    );
    let err = package_fails(&s, &not_semver, "b.ota", &[], FAILURE);
    assert!(err.contains("semver") || err.contains("semantic"), "{err}");

    let xtensa = s.write("s3.elf", &firmware(Chip::Esp32s3, &[pk]).elf());
    let err = package_fails(&s, &xtensa, "c.ota", &[], POLICY);
    assert!(err.contains("Xtensa"), "{err}");

    let good = s.write("fw.elf", &firmware(Chip::Esp32c3, &[pk]).elf());
    let err = package_fails(&s, &good, "d.ota", &["--version", "2.0.0"], POLICY);
    assert!(err.contains("contradicts"), "{err}");
    let err = package_fails(&s, &good, "e.ota", &["--slot-size", "64K"], POLICY);
    assert!(err.contains("slot"), "{err}");
    s.write("junk.elf", b"not an elf at all");
    package_fails(&s, Path::new("junk.elf"), "f.ota", &[], FAILURE);
    package_fails(&s, Path::new("missing.elf"), "g.ota", &[], IO);
    // Without --chip the ELF is not guessed at, but the error names the chip it found.
    let mut no_chip = package_args(good.to_str().unwrap(), "esp32c3", "h.ota");
    no_chip.retain(|a| *a != "--chip" && *a != "esp32c3");
    let err = s.fails(&no_chip, USAGE);
    assert!(err.contains("pass --chip esp32c3"), "{err}");
    // Without esp-hal's build metadata an ELF fits more than one chip: all are named.
    let bare = s.write(
        "bare.elf",
        &firmware(Chip::Esp32c3, &[pk])
            .without_build_metadata()
            .elf(),
    );
    let at = no_chip.iter().position(|a| a.ends_with("fw.elf")).unwrap();
    no_chip[at] = bare.to_str().unwrap();
    let err = s.fails(&no_chip, USAGE);
    assert!(
        err.contains("fits esp32c3 or esp32c2; pass --chip esp32c3"),
        "{err}"
    );
    for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        assert_absent(&s.path(&format!("{name}.ota")));
    }
}

#[test]
fn an_existing_output_is_never_overwritten_without_force() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let elf = s.write("fw.elf", &firmware(Chip::Esp32c3, &[pk]).elf());
    s.write("out.ota", b"precious");
    let args = package_args(elf.to_str().unwrap(), "esp32c3", "out.ota");
    s.fails(&args, CONFLICT);
    assert_eq!(std::fs::read(s.path("out.ota")).unwrap(), b"precious");
    s.ok(&[&args[..], &["--force"]].concat());
    s.ok(&["verify", "--pubkey", "release.pub", "out.ota"]);
}

#[test]
fn verify_rejects_tampering_wrong_keys_and_wrong_targets() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    s.keygen("stranger");
    let elf = s.write("fw.elf", &firmware(Chip::Esp32c3, &[pk]).elf());
    s.ok(&package_args(elf.to_str().unwrap(), "esp32c3", "good.ota"));
    let good = std::fs::read(s.path("good.ota")).unwrap();

    let err = s.fails(&["verify", "--pubkey", "stranger.pub", "good.ota"], INVALID);
    assert!(err.contains("not trusted"), "{err}");
    let err = s.fails(
        &[
            "verify",
            "--pubkey",
            "release.pub",
            "--device-type",
            "doorbell",
            "good.ota",
        ],
        POLICY,
    );
    assert!(err.contains("device type"), "{err}");
    s.fails(
        &[
            "verify",
            "--pubkey",
            "release.pub",
            "--chip",
            "esp32",
            "good.ota",
        ],
        POLICY,
    );

    let mut header_flip = good.clone();
    header_flip[0x50] ^= 1; // the security counter: only the signature catches it
    let mut payload_flip = good.clone();
    let last = payload_flip.len() - 1;
    payload_flip[last] ^= 0x80;
    let mut trailing = good.clone();
    trailing.push(0);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("header.ota", header_flip, "signature"),
        ("payload.ota", payload_flip, "digest"),
        ("trailing.ota", trailing, "trailing"),
        (
            "truncated.ota",
            good[..good.len() - 10].to_vec(),
            "truncated",
        ),
    ];
    for (name, bytes, what) in cases {
        s.write(name, &bytes);
        let err = s.fails(&["verify", "--pubkey", "release.pub", name], INVALID);
        assert!(err.contains(what), "{name}: {err}");
        s.fails(
            &["extract", "--pubkey", "release.pub", name, "-o", "x.bin"],
            INVALID,
        );
        assert_absent(&s.path("x.bin"));
    }
}

#[test]
fn inspect_describes_every_kind_of_file() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let fw = firmware(Chip::Esp32c3, &[pk]);
    let elf = s.write("fw.elf", &fw.elf());
    s.write("app.bin", &fw.app_image());
    s.ok(&package_args(elf.to_str().unwrap(), "esp32c3", "fw.ota"));
    let key_id = ota_format::KeyId::of(&pk).to_string();

    let image: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspect", "--json", "fw.ota"])).unwrap();
    assert_eq!(image["kind"], "image");
    assert_eq!(image["verified"], false);
    assert_eq!(image["key_id"], key_id.as_str());
    assert_eq!(image["complete"], true);

    let app: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspect", "--json", "app.bin"])).unwrap();
    assert_eq!(app["kind"], "app_image");
    assert_eq!(app["version"], "1.4.0");
    assert_eq!(app["trusted_key_ids"][0], key_id.as_str());

    let elf_report: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspect", "--json", "fw.elf"])).unwrap();
    assert_eq!(elf_report["kind"], "elf");
    assert_eq!(elf_report["chips"][0], "esp32c3");

    let text = s.ok(&["inspect", "fw.ota"]);
    assert!(text.contains("signature not checked"), "{text}");
    s.write("junk", b"hello");
    s.fails(&["inspect", "junk"], INVALID);
}

#[test]
fn ota_sign_toml_supplies_defaults_and_flags_win() {
    let s = Scratch::new();
    s.keygen("release");
    let next = s.keygen("next");
    s.write(
        "ota-sign.toml",
        br#"
[defaults]
key = "release.key"
device_type = "thermostat"

[device.thermostat]
chip = "esp32c3"
slot_size = "1M"
trusted_keys = ["release.pub", "next.pub"]
"#,
    );
    // The firmware trusts only the next key, which the configuration lists as planned.
    let elf = s.write("fw.elf", &firmware(Chip::Esp32c3, &[next]).elf());
    let summary: serde_json::Value = serde_json::from_str(&s.ok(&[
        "package",
        "--elf",
        elf.to_str().unwrap(),
        "-o",
        "fw.ota",
        "--json",
    ]))
    .unwrap();
    assert_eq!(summary["device_type"], "thermostat");
    assert_eq!(summary["chip"], "esp32c3");
    // verify takes its keys from the device type's trusted_keys.
    s.ok(&["verify", "--device-type", "thermostat", "fw.ota"]);
    // ... and so does the default device type ([defaults] device_type).
    s.ok(&["verify", "fw.ota"]);
    // A flag beats the file: the slot size from the command line refuses the image.
    s.fails(
        &[
            "package",
            "--elf",
            elf.to_str().unwrap(),
            "--slot-size",
            "4K",
            "-o",
            "small.ota",
        ],
        POLICY,
    );
    assert_absent(&s.path("small.ota"));
}

#[test]
fn every_command_help_teaches_with_examples() {
    let s = Scratch::new();
    for cmd in [
        "keygen", "pubkey", "package", "verify", "inspect", "extract", "release", "publish",
        "flash",
    ] {
        let help = s.ok(&[cmd, "--help"]);
        assert!(
            help.contains("Example"),
            "`ota-sign {cmd} --help` has no examples:\n{help}"
        );
        assert!(
            help.lines().count() > 15,
            "`ota-sign {cmd} --help` is too short:\n{help}"
        );
    }
}
