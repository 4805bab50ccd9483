//! `package` never makes a method-1 image (for generation-1 agents, which hold the zstd
//! window in RAM) whose window those agents cannot decode: the limit is `max_window_log`
//! of the device type in ota-sign.toml, by default what the shipped firmware accepts
//! (2^12), and a larger `--zstd-window-log` is refused.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};

/// [`scratch`] with this `ota-sign.toml`.
fn configured(toml: &[u8]) -> Scratch {
    let s = scratch();
    s.write("ota-sign.toml", toml);
    s
}

/// A scratch directory with `release.key` and an app image `app.bin` trusting it.
fn scratch() -> Scratch {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let app = TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .trusted_keys(&[pk])
        .payload_size(40_000)
        .app_image();
    s.write("app.bin", &app);
    s
}

fn package_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = PACKAGE_THERMOSTAT.to_vec();
    args.extend_from_slice(&[
        "--app-image",
        "app.bin",
        "--agent-generation",
        "1",
        "-o",
        out,
    ]);
    args.extend_from_slice(extra);
    args
}

/// The window log `inspect` reports for a packaged image.
fn window_of(s: &Scratch, ota: &str) -> String {
    let v = s.json(&["inspect", ota]);
    let text = v.to_string();
    let at = text.find("window 2^").unwrap_or_else(|| panic!("{text}"));
    text[at + 9..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[test]
fn package_refuses_a_window_the_device_type_does_not_accept() {
    let s = scratch();
    for log in ["13", "15", "16"] {
        let err = s.fails(
            &package_args("big.ota", &["--zstd-window-log", log]),
            POLICY,
        );
        assert!(
            err.contains("could never install") && err.contains("max_window_log"),
            "{log}: {err}"
        );
        assert_absent(&s.path("big.ota"));
    }
    // The default is the device type's limit, which defaults to the shipped firmware's.
    s.ok(&package_args("default.ota", &[]));
    assert_eq!(window_of(&s, "default.ota"), "12");
    s.ok(&package_args("small.ota", &["--zstd-window-log", "10"]));
    s.ok(&["verify", "--pubkey", "release.pub", "small.ota"]);
}

#[test]
fn the_device_type_limit_comes_from_ota_sign_toml() {
    let s = configured(
        b"[device.thermostat]\nmax_window_log = 14\n\n[device.tiny]\nmax_window_log = 10\n",
    );
    s.ok(&package_args("wide.ota", &[]));
    assert_eq!(window_of(&s, "wide.ota"), "14");
    s.ok(&["verify", "--pubkey", "release.pub", "wide.ota"]);
    let err = s.fails(&package_args("x.ota", &["--zstd-window-log", "15"]), POLICY);
    assert!(err.contains("at most 14"), "{err}");

    let mut tiny = package_args("tiny.ota", &[]);
    tiny[4] = "tiny";
    s.ok(&tiny);
    assert_eq!(window_of(&s, "tiny.ota"), "10");
    tiny.extend_from_slice(&["--zstd-window-log", "12", "--force"]);
    s.fails(&tiny, POLICY);

    // No agent decodes more than 2^14: the file cannot claim it.
    s.write(
        "ota-sign.toml",
        b"[device.thermostat]\nmax_window_log = 15\n",
    );
    let err = s.fails(&package_args("y.ota", &[]), USAGE);
    assert!(err.contains("max_window_log"), "{err}");
}

#[test]
fn release_refuses_an_image_wider_than_the_device_type_accepts() {
    let s = configured(b"[device.thermostat]\nmax_window_log = 14\n");
    s.ok(&package_args("wide.ota", &[]));
    // The configuration that let `package` make it is gone: the fleet decodes 2^12.
    std::fs::remove_file(s.path("ota-sign.toml")).unwrap();
    let err = s.fails(&release_args(&["wide.ota"]), POLICY);
    assert!(err.contains("exceeds the allowed 4096"), "{err}");
    assert_absent(&s.path(TREE).join("thermostat.stable.manifest"));
}
