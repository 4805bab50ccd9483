//! What a new user meets first: the README's first command in an empty project, the
//! configuration file honoured by every command that checks images, refusals that name
//! the values involved, and the exit codes the README promises.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};

fn config_for_thermostat(s: &Scratch) {
    s.write(
        "ota-sign.toml",
        b"[defaults]\ndevice_type = \"thermostat\"\n\n[device.thermostat]\nchip = \"esp32c3\"\ntrusted_keys = [\"release.pub\"]\n",
    );
}

/// Firmware of `project` at `version` for `chip`, trusting `pk`.
fn firmware(chip: Chip, project: &str, version: &str, pk: [u8; 32]) -> TestFirmware {
    TestFirmware::new(chip)
        .version(version)
        .project_name(project)
        .trusted_keys(&[pk])
}

#[test]
fn keygen_creates_the_missing_key_directory_private_to_its_owner() {
    let s = Scratch::new();
    let out = s.ok(&["keygen", "--no-encrypt", "keys/release"]);
    assert!(out.contains("Created directory keys (mode 700"), "{out}");
    assert!(s.path("keys/release.key").is_file());
    assert!(s.path("keys/release.pub").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // An existing directory is used as it is, and not reported.
    let out = s.ok(&["keygen", "--no-encrypt", "keys/next"]);
    assert!(!out.contains("Created directory"), "{out}");
}

#[test]
fn verify_extract_and_flash_use_the_configured_device_type_and_keys() {
    let (s, pk) = packaged(&[(Build::new("thermostat", "1.0.0"), "t.ota")]);
    s.package("release", pk, &Build::new("gateway", "1.0.0"), "g.ota");
    config_for_thermostat(&s);
    let out = s.ok(&["verify", "t.ota"]);
    assert!(out.contains("valid image: thermostat 1.0.0"), "{out}");
    s.ok(&["extract", "t.ota", "-o", "app.bin"]);
    assert!(s.path("app.bin").is_file());
    s.ok(&["flash", "--image", "t.ota", "--output", "flash.bin"]);
    assert!(s.path("flash.bin").is_file());

    // The configured device type is an expectation too, and the refusal names both
    // values and where the expected one came from.
    for args in [
        vec!["verify", "g.ota"],
        vec!["extract", "g.ota", "-o", "g.bin"],
        vec!["flash", "--image", "g.ota", "--output", "g-flash.bin"],
    ] {
        let err = s.fails(&args, POLICY);
        assert!(
            err.contains("is for device type gateway, but [defaults] device_type in ota-sign.toml says thermostat"),
            "{args:?}: {err}"
        );
    }
    assert_absent(&s.path("g.bin"));
    assert_absent(&s.path("g-flash.bin"));
    s.ok(&[
        "verify",
        "--device-type",
        "gateway",
        "--pubkey",
        "release.pub",
        "g.ota",
    ]);
}

#[test]
fn refusals_name_the_expected_and_found_values() {
    let (s, release_pk) = packaged(&[(Build::new("thermostat", "1.0.0"), "t.ota")]);
    let err = s.fails(
        &[
            "verify",
            "--pubkey",
            "release.pub",
            "--chip",
            "esp32s3",
            "t.ota",
        ],
        POLICY,
    );
    assert!(
        err.contains("image t.ota is for chip esp32c3, but --chip says esp32s3"),
        "{err}"
    );
    // An image signed by a key that is not trusted names both key ids.
    let stranger = s.keygen("stranger");
    let err = s.fails(&["verify", "--pubkey", "stranger.pub", "t.ota"], INVALID);
    let signer = ota_format::KeyId::of(&release_pk).to_string();
    assert!(
        err.contains(&format!(
            "is signed by key {signer}, which is not trusted (trusted: [{}])",
            ota_format::KeyId::of(&stranger)
        )),
        "{err}"
    );
    // An ESP32-C3 ELF without esp-hal's metadata also fits the ESP32-C2's flash window;
    // the suggestion is the C3.
    let pk = s.keygen("other");
    let bare = firmware(Chip::Esp32c3, "thermostat", "1.0.0", pk)
        .without_build_metadata()
        .elf();
    s.write("bare.elf", &bare);
    for args in [
        vec![
            "package",
            "--key",
            "other.key",
            "--device-type",
            "thermostat",
            "--elf",
            "bare.elf",
            "-o",
            "x.ota",
        ],
        vec!["flash", "--elf", "bare.elf", "--output", "x.bin"],
    ] {
        let err = s.fails(&args, USAGE);
        assert!(err.contains("pass --chip esp32c3"), "{args:?}: {err}");
    }
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let (s, pk) = packaged(&[(Build::new("thermostat", "1.0.0"), "t.ota")]);
    // An ELF for another chip is refused by a safety rule (6), as `flash` does.
    let s3 = firmware(Chip::Esp32s3, "thermostat", "1.0.0", pk).elf();
    s.write("s3.elf", &s3);
    let package_s3 = [
        "package",
        "--key",
        "release.key",
        "--device-type",
        "thermostat",
        "--elf",
        "s3.elf",
        "--chip",
        "esp32c3",
        "-o",
        "x.ota",
    ];
    s.fails(&package_s3, POLICY);
    s.fails(
        &[
            "flash", "--elf", "s3.elf", "--chip", "esp32c3", "--output", "x.bin",
        ],
        POLICY,
    );

    // A key file that cannot be read is a key problem (5), and a --pubkey that is
    // neither a file nor 64 hex digits says what was expected.
    let package_missing_key = [
        "package",
        "--key",
        "missing.key",
        "--device-type",
        "thermostat",
        "--app-image",
        "t.ota.bin",
        "-o",
        "y.ota",
    ];
    let err = s.fails(&package_missing_key, KEY);
    assert!(err.contains("missing.key"), "{err}");
    let err = s.fails(&["verify", "--pubkey", "abcd", "t.ota"], KEY);
    assert!(
        err.contains("64 hex digits") && err.contains("\"abcd\""),
        "{err}"
    );

    // Publishing into something that cannot be written is an I/O failure (4).
    s.ok(&release_args(&["t.ota"]));
    s.write("www", b"a file where the web root should be");
    let err = s.fails(&["publish", "--repo", TREE, "--to", "www"], IO);
    assert!(err.contains("www"), "{err}");
}

#[test]
fn completions_and_manual_pages_come_from_the_command_definition() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = s.ok(&["completions", shell]);
        assert!(
            script.contains("ota-sign") && script.contains("allow-test-keys"),
            "{shell}: {script}"
        );
    }
    s.fails(&["completions", "tcsh"], USAGE);
    let page = s.ok(&["man"]);
    assert!(page.contains(".TH ota-sign 1"), "{page}");
    let page = s.ok(&["man", "release"]);
    assert!(
        page.contains(".TH ota-sign-release") && page.contains("ota\\-sign release"),
        "{page}"
    );
    let err = s.fails(&["man", "relase"], USAGE);
    assert!(err.contains("release"), "names the commands: {err}");
}

#[test]
fn a_negative_rollout_says_what_a_rollout_is() {
    let (s, _) = packaged(&[(Build::new("lamp", "1.0.0"), "a.ota")]);
    let err = s.fails(&release_args(&["--rollout", "-5", "a.ota"]), USAGE);
    assert!(
        err.contains("\"-5\" is not a rollout: a percentage from 0 to 100"),
        "{err}"
    );
    assert!(!err.contains("tip"), "{err}");
}

#[test]
fn inspect_shows_descriptors_iso_times_flash_images_in_reading_order() {
    let (s, pk) = packaged(&[(Build::new("thermostat", "1.0.0"), "t.ota")]);
    let elf = firmware(Chip::Esp32c3, "thermostat-fw", "2.1.0", pk).elf();
    s.write("fw.elf", &elf);
    let report = s.json(&["inspect", "fw.elf"]);
    assert_eq!(report["kind"], "elf");
    assert_eq!(report["version"], "2.1.0", "{report}");
    assert_eq!(report["project_name"], "thermostat-fw", "{report}");
    assert!(report["idf_version"].is_string(), "{report}");

    // SOURCE_DATE_EPOCH=1764000000 in every test run.
    let image = s.json(&["inspect", "t.ota"]);
    assert_eq!(image["created"], "2025-11-24T16:00:00Z", "{image}");
    assert_eq!(image["created_unix"], 1_764_000_000u64);
    let text = s.ok(&["inspect", "t.ota"]);
    let at = |field: &str| {
        text.find(&format!("  {field} "))
            .unwrap_or_else(|| panic!("{field}: {text}"))
    };
    assert!(
        at("device_type") < at("version") && at("version") < at("image_sha256"),
        "{text}"
    );
    assert!(!text.contains("created_unix"), "{text}");

    s.ok(&[
        "flash",
        "--image",
        "t.ota",
        "--pubkey",
        "release.pub",
        "--output",
        "flash.bin",
    ]);
    let flash = s.json(&["inspect", "flash.bin"]);
    assert_eq!(flash["kind"], "flash_image", "{flash}");
    assert_eq!(flash["boots"], "ota_0");
    assert_eq!(flash["version"], "1.0.0");
    assert_eq!(flash["flash_size"], 4 * 1024 * 1024);

    s.write("junk", b"hello");
    let err = s.fails(&["inspect", "junk"], INVALID);
    assert!(err.contains("not a kind of file ota-sign knows"), "{err}");
    assert!(
        !err.contains("ota-sign inspect"),
        "no advice to run itself: {err}"
    );
}
