//! Keys whose private half is public (RFC 8032's test vectors, ota-sign's test keys) are
//! never trusted without `--allow-test-keys`: not in ota-sign.toml's `trusted_keys`, not
//! in a firmware's trusted-key descriptor, and never as a key "you hold".

mod common;

use common::*;
use ota_format::KeyId;
use ota_testkit::{Chip, TestFirmware};

/// RFC 8032 section 7.1, TEST 1: its secret key is printed in the RFC.
const RFC8032_TEST1_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_TEST1_PUBLIC: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn rfc_public() -> [u8; 32] {
    hex::decode(RFC8032_TEST1_PUBLIC)
        .unwrap()
        .try_into()
        .unwrap()
}

fn key_id(pk: &[u8; 32]) -> String {
    KeyId::of(pk).to_string()
}

fn app_trusting(s: &Scratch, name: &str, keys: &[[u8; 32]]) -> String {
    let app = TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .project_name("thermostat")
        .trusted_keys(keys)
        .payload_size(20_000)
        .app_image();
    s.write(name, &app);
    name.to_owned()
}

fn package(s: &Scratch, key: &str, app: &str, extra: &[&str]) -> std::process::Output {
    let args = [
        &[
            "package",
            "--key",
            key,
            "--device-type",
            "thermostat",
            "--app-image",
            app,
            "--force",
            "-o",
            "out.ota",
        ][..],
        extra,
    ]
    .concat();
    s.run(&args)
}

fn code_and_stderr(out: &std::process::Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trusted_keys_in_the_configuration_refuse_a_published_key() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let app = app_trusting(&s, "app.bin", &[pk]);
    assert!(package(&s, "release.key", &app, &[]).status.success());
    s.write(
        "ota-sign.toml",
        format!(
            "[defaults]\ndevice_type = \"thermostat\"\n[device.thermostat]\ntrusted_keys = [\"{RFC8032_TEST1_PUBLIC}\"]\n"
        )
        .as_bytes(),
    );
    let err = s.fails(&["verify", "out.ota"], POLICY);
    assert!(err.contains("RFC 8032"), "{err}");
    assert!(err.contains(&key_id(&rfc_public())), "names the key: {err}");
    assert!(err.contains("--allow-test-keys"), "{err}");
    // With the flag the key is trusted (and warned about): the image, signed by another
    // key, then fails as unknown-key instead.
    let err = s.fails(&["verify", "--allow-test-keys", "out.ota"], INVALID);
    assert!(err.contains("warning") && err.contains("RFC 8032"), "{err}");
}

#[test]
fn firmware_trusting_a_published_key_is_refused_by_package_and_flash() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let app = app_trusting(&s, "app.bin", &[pk, rfc_public()]);
    let (code, err) = code_and_stderr(&package(&s, "release.key", &app, &[]));
    assert_eq!(code, Some(POLICY), "{err}");
    assert!(
        err.contains("the firmware trusts key") && err.contains("RFC 8032 test vector TEST 1"),
        "{err}"
    );
    assert_absent(&s.path("out.ota"));
    let err = s.fails(
        &["flash", "--app-image", &app, "--output", "flash.bin"],
        POLICY,
    );
    assert!(err.contains("RFC 8032"), "{err}");
    assert_absent(&s.path("flash.bin"));

    let (code, err) = code_and_stderr(&package(&s, "release.key", &app, &["--allow-test-keys"]));
    assert_eq!(code, Some(0), "{err}");
    s.ok(&[
        "flash",
        "--allow-test-keys",
        "--app-image",
        &app,
        "--output",
        "flash.bin",
    ]);
}

#[test]
fn the_lockout_guard_never_counts_a_published_key_as_held_and_names_each_key_once() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    // The firmware trusts only the RFC key; the configuration "holds" it and the
    // release key (twice: as a file and through the signing key).
    let app = app_trusting(&s, "app.bin", &[rfc_public()]);
    s.write(
        "ota-sign.toml",
        format!(
            "[device.thermostat]\ntrusted_keys = [\"release.pub\", \"{RFC8032_TEST1_PUBLIC}\"]\n"
        )
        .as_bytes(),
    );
    let (code, err) = code_and_stderr(&package(
        &s,
        "release.key",
        &app,
        &["--allow-test-keys", "--next-key", "release.pub"],
    ));
    assert_eq!(code, Some(POLICY), "{err}");
    let expected = format!(
        "the firmware trusts keys [{}] but you hold [{}]",
        key_id(&rfc_public()),
        key_id(&pk)
    );
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn a_published_key_signs_firmware_trusting_it_only_with_the_flag() {
    let s = Scratch::new();
    let seed: [u8; 32] = hex::decode(RFC8032_TEST1_SEED).unwrap().try_into().unwrap();
    let pem = ota_keys::PrivateKey::from_seed(&seed)
        .to_pkcs8_pem()
        .unwrap();
    s.write("rfc.key", pem.as_bytes());
    let app = app_trusting(&s, "app.bin", &[rfc_public()]);
    let (code, err) = code_and_stderr(&package(&s, "rfc.key", &app, &[]));
    assert_eq!(code, Some(POLICY), "{err}");
    let (code, err) = code_and_stderr(&package(&s, "rfc.key", &app, &["--allow-test-keys"]));
    assert_eq!(code, Some(0), "{err}");
}
