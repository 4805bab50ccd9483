//! Secure Boot V2 signed apps through the real `ota-sign` binary, with esptool's
//! `espsecure` (PyPI) as the independent tool: what espsecure signs, ota-sign packages,
//! verifies, extracts byte for byte, flashes and the simulator boots; what ota-sign
//! signs, espsecure verifies.
//!
//! espsecure is found through `$OTA_ESPSECURE`, `PATH`, the venv that
//! `scripts/install-test-deps.sh` may create under `target/`, or `python3 -m espsecure`.
//! Without it these tests are skipped locally, and fail when `CI=true` or
//! `OTA_REQUIRE_ESPSECURE=1`. RSA 3072 keys are made at test time with openssl.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{BootResult, DeviceConfig, VirtualDevice};
use ota_testkit::{Chip, TestFirmware};

/// Where `ota_0` starts in the default layout `flash --output` writes.
const OTA_0: usize = 0x10000;

/// How to run espsecure: a program and the arguments before the subcommand.
struct Espsecure(PathBuf, Vec<&'static str>);

impl Espsecure {
    fn find() -> Option<Espsecure> {
        let works = |program: &std::path::Path, pre: &[&str]| {
            Command::new(program)
                .args(pre)
                .arg("--help")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let mut candidates: Vec<(PathBuf, Vec<&'static str>)> = Vec::new();
        if let Some(p) = std::env::var_os("OTA_ESPSECURE") {
            candidates.push((p.into(), vec![]));
        }
        candidates.push(("espsecure".into(), vec![]));
        let venv = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/espsecure-venv/bin/espsecure"
        );
        candidates.push((venv.into(), vec![]));
        candidates.push(("python3".into(), vec!["-m", "espsecure"]));
        if let Some((p, pre)) = candidates.into_iter().find(|(p, pre)| works(p, pre)) {
            return Some(Espsecure(p, pre));
        }
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("OTA_REQUIRE_ESPSECURE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "espsecure not found (CI=true or OTA_REQUIRE_ESPSECURE=1): run scripts/install-test-deps.sh or set OTA_ESPSECURE"
        );
        eprintln!("skipped: espsecure not found (scripts/install-test-deps.sh installs it)");
        None
    }

    /// Runs `espsecure ARGS` in `s`; returns whether it succeeded, and its output.
    fn run(&self, s: &Scratch, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.0)
            .args(&self.1)
            .args(args)
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, s: &Scratch, args: &[&str]) -> String {
        let (ok, text) = self.run(s, args);
        assert!(ok, "espsecure {args:?} failed:\n{text}");
        text
    }

    /// `espsecure sign-data --version 2 --keyfile KEY --output OUTPUT INPUT`.
    fn sign(&self, s: &Scratch, key: &str, input: &str, output: &str) {
        let args = [
            "sign-data",
            "--version",
            "2",
            "--keyfile",
            key,
            "--output",
            output,
            input,
        ];
        self.ok(s, &args);
    }

    /// Whether espsecure accepts `file`'s Secure Boot V2 signature under `pubkey`.
    fn verifies(&self, s: &Scratch, pubkey: &str, file: &str) -> bool {
        let args = [
            "verify-signature",
            "--version",
            "2",
            "--keyfile",
            pubkey,
            file,
        ];
        self.run(s, &args).0
    }
}

/// Runs openssl in `s`, which must succeed.
fn openssl(s: &Scratch, args: &[&str]) {
    run_tool(Command::new("openssl").args(args).current_dir(s.dir.path()));
}

/// Makes `NAME.pem` (RSA 3072, unencrypted, test-only) and `NAME.pub.pem` with openssl.
fn rsa_key(s: &Scratch, name: &str) {
    let key = format!("{name}.pem");
    openssl(s, &["genrsa", "-out", &key, "3072"]);
    let public = format!("{name}.pub.pem");
    openssl(s, &["rsa", "-in", &key, "-pubout", "-out", &public]);
}

/// Makes `NAME.pem` (ECDSA P-256, test-only) and `NAME.pub.pem` with openssl.
fn ecdsa_key(s: &Scratch, name: &str) {
    let key = format!("{name}.pem");
    let curve = ["ecparam", "-name", "prime256v1", "-genkey", "-noout"];
    openssl(s, &[&curve[..], &["-out", &key]].concat());
    let public = format!("{name}.pub.pem");
    openssl(s, &["ec", "-in", &key, "-pubout", "-out", &public]);
}

/// An ESP32-C3 app image of `version` trusting the release key `pk`, as `app.bin`.
fn app_bin(s: &Scratch, pk: [u8; 32], version: &str) -> Vec<u8> {
    let app = TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .project_name("thermostat")
        .trusted_keys(&[pk])
        .payload_size(30_000)
        .seed(9)
        .app_image();
    s.write("app.bin", &app);
    app
}

/// espsecure (`None` as [`Espsecure::find`] says), and a scratch
/// directory with the release key `release` made, whose public half comes along.
fn with_espsecure() -> Option<(Espsecure, Scratch, [u8; 32])> {
    let espsecure = Espsecure::find()?;
    let s = Scratch::new();
    let pk = s.keygen("release");
    Some((espsecure, s, pk))
}

/// `package` for thermostat from `app`, then `rest`.
fn package_args<'a>(app: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    [&PACKAGE_THERMOSTAT[..], &["--app-image", app], rest].concat()
}

#[test]
fn espsecure_signed_apps_package_verify_extract_identically_flash_and_boot() {
    let Some((espsecure, s, pk)) = with_espsecure() else {
        return;
    };
    rsa_key(&s, "rsa");
    ecdsa_key(&s, "ecdsa");
    app_bin(&s, pk, "1.4.0");
    // RSA-PSS 3072 (ESP32, -S3, -C3, ...) and ECDSA P-256 (ESP32-C2, -C6, -H2, ...).
    for scheme in ["rsa", "ecdsa"] {
        let (key, public) = (format!("{scheme}.pem"), format!("{scheme}.pub.pem"));
        let (signed_bin, ota) = (format!("{scheme}.bin"), format!("{scheme}.ota"));
        let (extracted, flash_bin) = (
            format!("{scheme}-extracted.bin"),
            format!("{scheme}-flash.bin"),
        );
        espsecure.sign(&s, &key, "app.bin", &signed_bin);
        let signed = std::fs::read(s.path(&signed_bin)).unwrap();

        s.ok(&package_args(&signed_bin, &["-o", &ota]));
        s.ok(&["verify", "--pubkey", "release.pub", &ota]);
        assert_eq!(
            s.extract("release.pub", &ota, &extracted),
            signed,
            "{scheme}"
        );
        assert!(espsecure.verifies(&s, &public, &extracted), "{scheme}");

        s.ok(&[
            "flash",
            "--image",
            &ota,
            "--pubkey",
            "release.pub",
            "--output",
            &flash_bin,
        ]);
        let flash = SimFlash::load(&s.path(&flash_bin)).unwrap();
        assert_eq!(&flash.bytes()[OTA_0..OTA_0 + signed.len()], &signed[..]);
        let mut device = VirtualDevice::new(flash, DeviceConfig::new("http://127.0.0.1:9/m", "d1"));
        match device.boot(|session| session.firmware.clone()).unwrap() {
            BootResult::Ran { firmware, .. } => {
                assert_eq!(firmware.version.to_string(), "1.4.0")
            }
            other => panic!("{scheme}: device did not boot: {other:?}"),
        }
    }
}

#[test]
fn junk_misplaced_truncated_or_damaged_sectors_after_the_app_image_are_refused() {
    let Some((espsecure, s, pk)) = with_espsecure() else {
        return;
    };
    rsa_key(&s, "sb");
    let app = app_bin(&s, pk, "1.4.0");
    espsecure.sign(&s, "sb.pem", "app.bin", "signed.bin");
    let signed = std::fs::read(s.path("signed.bin")).unwrap();
    let sector = &signed[signed.len() - 4096..];

    let mut junk = signed.clone();
    junk.push(0);
    let mut misplaced = app.clone();
    misplaced.extend_from_slice(sector);
    let truncated = signed[..signed.len() - 100].to_vec();
    let mut bad_crc = signed.clone();
    let crc_at = signed.len() - 4096 + 1196;
    bad_crc[crc_at] ^= 1;
    for (name, bytes, needle) in [
        ("junk", junk, "1 bytes follow the end of the app image"),
        ("misplaced", misplaced, "the sector must start at"),
        ("truncated", truncated, "truncated"),
        ("bad-crc", bad_crc, "CRC mismatch"),
    ] {
        let input = format!("{name}.bin");
        s.write(&input, &bytes);
        let err = s.fails(&package_args(&input, &["-o", "out.ota"]), FAILURE);
        assert!(
            err.contains(needle),
            "{name}: expected {needle:?} in:\n{err}"
        );
        assert_absent(&s.path("out.ota"));
    }
}

/// `espsecure digest-sbv2-public-key` of `pubkey`, as hex.
fn espsecure_digest(espsecure: &Espsecure, s: &Scratch, pubkey: &str) -> String {
    let out = format!("{pubkey}.digest");
    espsecure.ok(
        s,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            pubkey,
            "--output",
            &out,
        ],
    );
    hex::encode(std::fs::read(s.path(&out)).unwrap())
}

/// Makes the key `sb` with `make_key`, encrypts it (PBES2, AES-256-CBC) as `sb-enc.pem`,
/// and checks that `package` signs `app.bin` with it unlocked by `OTA_SIGN_PASSPHRASE`
/// (never printed), that espsecure verifies the result and computes the key digest ota-sign
/// shows, and that without the passphrase it is a key problem with no output. `None` when
/// espsecure is missing.
fn package_signs_with_an_encrypted_key(make_key: fn(&Scratch, &str)) -> Option<Scratch> {
    let espsecure = Espsecure::find()?;
    let s = Scratch::new();
    let pk = s.keygen("release");
    make_key(&s, "sb");
    let encrypt = ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "sb.pem"];
    let out = ["-out", "sb-enc.pem", "-passout", "pass:correct horse"];
    openssl(&s, &[&encrypt[..], &out].concat());
    let app = app_bin(&s, pk, "1.4.0");

    let args = package_args(
        "app.bin",
        &["--secure-boot-key", "sb-enc.pem", "-o", "fw.ota"],
    );
    let (out, err) = s.run_env(&args, &[("OTA_SIGN_PASSPHRASE", "correct horse")], 0);
    assert!(!format!("{out}{err}").contains("correct horse"));
    let extracted = s.extract("release.pub", "fw.ota", "extracted.bin");
    assert_eq!(&extracted[..app.len()], &app[..]);
    assert!(espsecure.verifies(&s, "sb.pub.pem", "extracted.bin"));

    // The key digest ota-sign writes (and `inspect` shows) is the one eFuse would hold.
    let report = s.json(&["inspect", "extracted.bin"]);
    assert_eq!(
        report["secure_boot_key_digests"][0],
        espsecure_digest(&espsecure, &s, "sb.pub.pem").as_str()
    );
    assert_eq!(report["size"], extracted.len());

    // Without the passphrase: a key problem, and no output.
    s.fails(
        &package_args(
            "app.bin",
            &["--secure-boot-key", "sb-enc.pem", "-o", "no.ota"],
        ),
        KEY,
    );
    assert_absent(&s.path("no.ota"));
    Some(s)
}

#[test]
fn package_signs_with_an_encrypted_secure_boot_key_and_espsecure_verifies_it() {
    package_signs_with_an_encrypted_key(rsa_key);
}

/// Makes keys `sb` and `fleet` with `make_key`, `signed.bin` (espsecure-signed with
/// `sb.pem`), and checks that `package` of it for a device type configured with
/// `fleet_key` is refused naming both key digests, with no output, and that
/// `--secure-boot-key sb.pub.pem` beats the configuration and passes it through. `None`
/// when espsecure is missing.
fn package_refuses_an_image_signed_with_another_key(
    make_key: fn(&Scratch, &str),
    fleet_key: &str,
) -> Option<Scratch> {
    let espsecure = Espsecure::find()?;
    let s = Scratch::new();
    let pk = s.keygen("release");
    make_key(&s, "sb");
    make_key(&s, "fleet");
    app_bin(&s, pk, "1.4.0");
    espsecure.sign(&s, "sb.pem", "app.bin", "signed.bin");
    let config = format!("[device.thermostat]\nsecure_boot_key = \"{fleet_key}\"\n");
    s.write("ota-sign.toml", config.as_bytes());
    let err = s.fails(&package_args("signed.bin", &["-o", "fw.ota"]), POLICY);
    for digest in [
        espsecure_digest(&espsecure, &s, "sb.pub.pem"),
        espsecure_digest(&espsecure, &s, "fleet.pub.pem"),
    ] {
        assert!(err.contains(&digest), "{digest} missing from:\n{err}");
    }
    assert_absent(&s.path("fw.ota"));
    s.ok(&package_args(
        "signed.bin",
        &["--secure-boot-key", "sb.pub.pem", "-o", "fw.ota"],
    ));
    Some(s)
}

#[test]
fn an_image_signed_with_another_secure_boot_key_than_configured_is_refused() {
    let Some(s) = package_refuses_an_image_signed_with_another_key(rsa_key, "fleet.pub.pem") else {
        return;
    };
    // A public key cannot sign an unsigned image.
    s.fails(&package_args("app.bin", &["-o", "unsigned.ota"]), KEY);
}

/// `package` of `app.bin` for thermostat signed with the Secure Boot key `key`, as `ota`;
/// returns the app image extracted from it (what the device writes), as `OTA.bin`.
fn package_secure_boot_signed(s: &Scratch, key: &str, ota: &str) -> Vec<u8> {
    s.ok(&package_args(
        "app.bin",
        &["--secure-boot-key", key, "-o", ota],
    ));
    let extracted = format!("{ota}.bin");
    s.extract("release.pub", ota, &extracted)
}

#[test]
fn package_signs_with_an_ecdsa_p256_key_deterministically_and_espsecure_verifies_it() {
    let Some((espsecure, s, pk)) = with_espsecure() else {
        return;
    };
    ecdsa_key(&s, "ec");
    let to_pkcs8 = ["pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem"];
    openssl(&s, &[&to_pkcs8[..], &["-out", "ec-pkcs8.pem"]].concat());
    let app = app_bin(&s, pk, "1.4.0");

    let signed = package_secure_boot_signed(&s, "ec.pem", "fw.ota");
    assert_eq!(&signed[..app.len()], &app[..]);
    assert_eq!(signed.len(), app.len().next_multiple_of(4096) + 4096);
    assert_eq!(
        &signed[signed.len() - 4096..][..2],
        &[0xE7, 3],
        "ECDSA block"
    );
    s.write("fw.bin", &signed);
    for key in ["ec.pem", "ec.pub.pem"] {
        assert!(espsecure.verifies(&s, key, "fw.bin"), "{key}");
    }
    let report = s.json(&["inspect", "fw.bin"]);
    assert_eq!(
        report["secure_boot_key_digests"][0],
        espsecure_digest(&espsecure, &s, "ec.pub.pem").as_str()
    );

    // RFC 6979: the same key (in either encoding) and image give the same bytes.
    let again = std::fs::read(s.path("fw.ota")).unwrap();
    s.ok(&package_args(
        "app.bin",
        &["--secure-boot-key", "ec-pkcs8.pem", "-o", "pkcs8.ota"],
    ));
    assert_eq!(std::fs::read(s.path("pkcs8.ota")).unwrap(), again);
}

#[test]
fn package_signs_with_an_encrypted_ecdsa_key_unlocked_by_ota_sign_passphrase() {
    let Some(s) = package_signs_with_an_encrypted_key(ecdsa_key) else {
        return;
    };
    let wrong = [("OTA_SIGN_PASSPHRASE", "wrong horse")];
    let args = package_args(
        "app.bin",
        &["--secure-boot-key", "sb-enc.pem", "-o", "no.ota"],
    );
    let (_, err) = s.run_env(&args, &wrong, KEY);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert_absent(&s.path("no.ota"));
}

#[test]
fn an_image_ecdsa_signed_with_another_secure_boot_key_than_configured_is_refused() {
    // A private EC key configured: checked by its digest, never used to re-sign.
    package_refuses_an_image_signed_with_another_key(ecdsa_key, "fleet.pem");
}

#[test]
fn p384_and_p192_secure_boot_keys_are_refused_as_key_problems() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    app_bin(&s, pk, "1.4.0");
    for curve in ["secp384r1", "prime192v1"] {
        let key = format!("{curve}.pem");
        let genkey = ["ecparam", "-name", curve, "-genkey", "-noout", "-out"];
        openssl(&s, &[&genkey[..], &[&key]].concat());
        let public = format!("{curve}.pub.pem");
        openssl(&s, &["ec", "-in", &key, "-pubout", "-out", &public]);
        for file in [&key, &public] {
            let args = package_args("app.bin", &["--secure-boot-key", file, "-o", "fw.ota"]);
            let err = s.fails(&args, KEY);
            assert!(
                err.contains("Secure Boot V2 signing takes RSA 3072 or ECDSA P-256"),
                "{file}: {err}"
            );
            assert_absent(&s.path("fw.ota"));
        }
    }
}
