//! Mixed fleets keep updating: `package` writes what the device type's agent generation
//! decodes (method 2, window in flash, for generation 2, the default; method 1 for
//! generation 1), and `release` refuses an image the configured agents cannot decode, or
//! a switch to method 2 while the configuration does not say which agent the fleet
//! runs. Every refusal leaves the release tree as it was.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};

/// A scratch directory with `release.key`.
fn scratch() -> (Scratch, [u8; 32]) {
    let s = Scratch::new();
    let pk = s.keygen("release");
    (s, pk)
}

/// Packages version `version` of device type `lamp` into `out` with `extra` flags.
fn package(s: &Scratch, pk: [u8; 32], version: &str, out: &str, extra: &[&str]) {
    let app = TestFirmware::new(Chip::Esp32c3)
        .version(version)
        .project_name("lamp")
        .trusted_keys(&[pk])
        .payload_size(60_000)
        .seed(u64::from(version.as_bytes()[2]))
        .app_image();
    s.package_app(&app, "lamp", out, extra);
}

/// What `inspect` says of an image's compression.
fn compression(s: &Scratch, ota: &str) -> String {
    s.json(&["inspect", ota])["compression"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The stable diagnostic code of a failed `release` (its `--json` error).
fn release_error_code(s: &Scratch, image: &str) -> String {
    let out = s.run(&release_args(&[image, "--json"]));
    assert_eq!(out.status.code(), Some(POLICY));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["code"].as_str().unwrap().to_owned()
}

/// Every file of the release tree with its bytes.
fn tree(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    s.listing(TREE)
        .into_iter()
        .map(|name| {
            let bytes = tree_file(s, &name);
            (name, bytes)
        })
        .collect()
}

#[test]
fn package_writes_method_2_by_default_and_method_1_for_generation_1() {
    let (s, pk) = scratch();
    // ~62 KB of app image: the smallest covering window is 2^16.
    package(&s, pk, "1.0.0", "default.ota", &[]);
    let c = compression(&s, "default.ota");
    assert_eq!(c, "zstd, window 2^16 in flash, blocks <= 8 KiB");
    let pubkey = hex::encode(pk);
    s.ok(&["verify", "--pubkey", &pubkey, "default.ota"]);

    package(&s, pk, "1.0.0", "gen1.ota", &["--agent-generation", "1"]);
    assert_eq!(compression(&s, "gen1.ota"), "zstd, window 2^12");
    s.ok(&["verify", "--pubkey", &pubkey, "gen1.ota"]);

    package(&s, pk, "1.0.0", "w20.ota", &["--zstd-window-log", "20"]);
    assert_eq!(
        compression(&s, "w20.ota"),
        "zstd, window 2^20 in flash, blocks <= 8 KiB"
    );

    // The device type's configuration decides when no flag does; the flag wins.
    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 1\n");
    package(&s, pk, "1.0.0", "cfg1.ota", &[]);
    assert_eq!(compression(&s, "cfg1.ota"), "zstd, window 2^12");
    package(&s, pk, "1.0.0", "flag2.ota", &["--agent-generation", "2"]);
    assert!(compression(&s, "flag2.ota").contains("in flash"));
}

#[test]
fn package_refuses_windows_and_generations_no_agent_decodes() {
    let (s, pk) = scratch();
    let app = TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .trusted_keys(&[pk])
        .payload_size(20_000)
        .app_image();
    s.write("app.bin", &app);
    let args = |extra: &[&'static str]| {
        let mut a = PACKAGE_THERMOSTAT.to_vec();
        a.extend_from_slice(&["--app-image", "app.bin", "-o", "out.ota"]);
        a.extend_from_slice(extra);
        a
    };
    let err = s.fails(&args(&["--zstd-window-log", "26"]), POLICY);
    assert!(err.contains("method 2 allows windows up to 2^25"), "{err}");
    let err = s.fails(
        &args(&["--agent-generation", "1", "--zstd-window-log", "13"]),
        POLICY,
    );
    assert!(err.contains("generation-1 agents"), "{err}");
    for bad in ["0", "3", "two"] {
        let err = s.fails(&args(&["--agent-generation", bad]), USAGE);
        assert!(err.contains("agent generation"), "{bad}: {err}");
    }
    s.write(
        "ota-sign.toml",
        b"[device.thermostat]\nagent_generation = 3\n",
    );
    let err = s.fails(&args(&[]), USAGE);
    assert!(err.contains("agent_generation"), "{err}");
    assert_absent(&s.path("out.ota"));
}

#[test]
fn release_refuses_method_2_for_a_generation_1_fleet() {
    let (s, pk) = scratch();
    package(&s, pk, "1.0.0", "new.ota", &[]);
    package(&s, pk, "1.0.0", "old.ota", &["--agent-generation", "1"]);
    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 1\n");

    for extra in [&[][..], &["--dry-run"][..]] {
        let err = s.fails(&release_args(&[extra, &["new.ota"]].concat()), POLICY);
        assert!(
            err.contains("agent generation 1") && err.contains("--agent-generation 1"),
            "{err}"
        );
        assert_absent(&s.path(TREE));
    }
    assert_eq!(
        release_error_code(&s, "new.ota"),
        "ota_sign::release::agent_cannot_decode"
    );
    assert_absent(&s.path(TREE));
    // What those devices decode goes out.
    let out = s.json(&release_args(&["old.ota"]));
    assert_eq!(out["channels"][0]["sequence"], 1, "{out}");
}

#[test]
fn switching_a_channel_to_method_2_needs_the_generation_configured() {
    let (s, pk) = scratch();
    package(&s, pk, "1.0.0", "v1.ota", &["--agent-generation", "1"]);
    package(&s, pk, "1.1.0", "v2.ota", &[]);
    s.json(&release_args(&["v1.ota"]));
    let before = tree(&s);

    // No agent_generation anywhere: the fleet may still run the first agent.
    let err = s.fails(&release_args(&["v2.ota"]), POLICY);
    assert!(
        err.contains("agent_generation")
            && err.contains("lamp.stable currently serves")
            && err.contains("1 to keep"),
        "{err}"
    );
    assert_eq!(
        release_error_code(&s, "v2.ota"),
        "ota_sign::release::agent_generation_unset"
    );
    assert_eq!(tree(&s), before);
    // A table without the key is no answer either.
    s.write("ota-sign.toml", b"[device.lamp]\nmax_window_log = 12\n");
    s.fails(&release_args(&["v2.ota"]), POLICY);
    assert_eq!(tree(&s), before);
    // Generation 1 configured: refused as undecodable, still nothing written.
    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 1\n");
    assert_eq!(
        release_error_code(&s, "v2.ota"),
        "ota_sign::release::agent_cannot_decode"
    );
    assert_eq!(tree(&s), before);

    // The operator says the whole fleet runs the new agent: it goes out.
    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 2\n");
    let out = s.json(&release_args(&["v2.ota"]));
    assert_eq!(out["channels"][0]["version"], "1.1.0", "{out}");
    assert_ne!(tree(&s), before);
}

#[test]
fn method_2_after_method_2_or_on_a_new_channel_needs_no_configuration() {
    let (s, pk) = scratch();
    package(&s, pk, "1.0.0", "v1.ota", &[]);
    package(&s, pk, "1.1.0", "v2.ota", &[]);
    package(&s, pk, "1.2.0", "v3.ota", &["--agent-generation", "1"]);
    s.json(&release_args(&["v1.ota"]));
    s.json(&release_args(&["v2.ota"]));
    // Going back to method 1 is always decodable.
    let out = s.json(&release_args(&["v3.ota"]));
    assert_eq!(out["channels"][0]["sequence"], 3, "{out}");
}
