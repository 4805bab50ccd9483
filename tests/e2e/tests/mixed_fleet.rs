//! Mixed fleets keep updating (issue 13, goal 3). Devices in the field run the
//! generation-1 agent: zstd with a window of at most 2^14 and no deltas. A device type
//! whose `ota-sign.toml` table says `agent_generation = 1` gets images every agent
//! decodes, and its releases still carry deltas, which only generation-2 agents ask for.
//! One old-agent device and one new-agent device, both real `ota-device-sim` processes,
//! poll the same nginx and end on the same release; the new one by delta, moving a
//! fraction of the bytes. A generation-2 device type gets the flash-window method.

use ota_e2e::{Work, release_args};
use ota_testkit::{Chip, TestFirmware};

const OLD_FLEET: &str = "mixed-node";
const NEW_FLEET: &str = "fresh-node";

/// An app image whose code (the seeded payload) is the same in every version: a new
/// release changes the version string and little else, as a small fix does.
fn app(device_type: &str, version: &str, key: [u8; 32]) -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .project_name(device_type)
        .version(version)
        .trusted_keys(&[key])
        .payload_size(64 * 1024)
        .seed(7)
        .app_image()
}

fn package(w: &Work, device_type: &str, version: &str, key: [u8; 32]) -> String {
    let bin = format!("{device_type}-{version}.bin");
    std::fs::write(w.path(&bin), app(device_type, version, key)).unwrap();
    let out = format!("{device_type}-{version}.ota");
    w.package("release.key", device_type, &bin, &out, &[]);
    out
}

fn compression_of(w: &Work, image: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&w.sign(&["inspect", "--json", image])).unwrap();
    json["compression"].as_str().unwrap_or_default().to_owned()
}

fn deltas_in(w: &Work, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(w.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".otad"))
        .collect();
    names.sort();
    names
}

#[test]
fn old_and_new_agents_reach_the_same_release() {
    let w = Work::new();
    let Some(nginx) = w.serve_www() else {
        return;
    };
    std::fs::write(
        w.path("ota-sign.toml"),
        format!("[device.{OLD_FLEET}]\nagent_generation = 1\n\n[device.{NEW_FLEET}]\nagent_generation = 2\n"),
    )
    .unwrap();
    let k = w.keygen("release");

    let v1 = package(&w, OLD_FLEET, "1.0.0", k);
    let v2 = package(&w, OLD_FLEET, "1.1.0", k);
    // Generation 1: method 1 with the agents' default window, which old agents decode.
    assert_eq!(compression_of(&w, &v2), "zstd, window 2^12");
    w.flash_image(&v1, "release.pub", "old-agent.bin");
    w.flash_image(&v1, "release.pub", "new-agent.bin");
    w.release("release.key", "repo", &[&v1]);
    w.publish("repo", "www", &[], &[]);
    w.release("release.key", "repo", &[&v2]);
    w.publish("repo", "www", &[], &[]);
    let deltas = deltas_in(&w, "www");
    assert_eq!(deltas.len(), 1, "one delta, 1.0.0 -> 1.1.0: {deltas:?}");

    let url = format!("{}/{OLD_FLEET}.stable.manifest", nginx.url);
    let old = w.run_device_with("old-agent.bin", &url, 2, &["--agent-generation", "1"]);
    let new = w.run_device_with("new-agent.bin", &url, 2, &[]);
    for (who, out) in [("old agent", &old), ("new agent", &new)] {
        assert!(
            out.iter().any(|l| l == "boot running ota_1 version 1.1.0"),
            "{who}: {out:?}"
        );
    }
    // `installed VERSION via delta|full (N bytes downloaded)`, the simulator's line.
    let installed = |out: &[String]| -> (String, u64) {
        let line = out
            .iter()
            .find(|l| l.starts_with("installed 1.1.0 via "))
            .unwrap_or_else(|| panic!("no install in {out:?}"));
        let rest = line.trim_start_matches("installed 1.1.0 via ");
        let (via, bytes) = rest.split_once(" (").unwrap();
        let bytes = bytes
            .trim_end_matches(" bytes downloaded)")
            .parse()
            .unwrap();
        (via.to_owned(), bytes)
    };
    let (old_via, old_bytes) = installed(&old);
    let (new_via, new_bytes) = installed(&new);
    assert_eq!(old_via, "full", "{old:?}");
    assert_eq!(new_via, "delta", "{new:?}");
    assert!(
        new_bytes * 10 < old_bytes,
        "the delta should move under a tenth of the full image's bytes: {new_bytes} vs {old_bytes}"
    );
    // The old agent never asked for the delta: nginx served it exactly once.
    let log = std::fs::read_to_string(nginx.access_log()).unwrap_or_default();
    assert_eq!(
        log.lines().filter(|l| l.contains(".otad")).count(),
        1,
        "{log}"
    );

    // A generation-2 device type gets the flash-window method ...
    let fresh = package(&w, NEW_FLEET, "1.0.0", k);
    let method = compression_of(&w, &fresh);
    assert!(method.contains("in flash"), "{method}");
    // ... and release refuses to serve such an image to the generation-1 fleet, leaving
    // its tree as it was.
    let bin = format!("{OLD_FLEET}-2.0.0.bin");
    std::fs::write(w.path(&bin), app(OLD_FLEET, "2.0.0", k)).unwrap();
    let misfit = format!("{OLD_FLEET}-2.0.0.ota");
    w.package(
        "release.key",
        OLD_FLEET,
        &bin,
        &misfit,
        &["--agent-generation", "2"],
    );
    let manifest = std::fs::read(w.path(&format!("repo/{OLD_FLEET}.stable.manifest"))).unwrap();
    let refused = w.sign_env(&release_args("release.key", "repo", &[&misfit]), &[]);
    assert_ne!(
        refused.code,
        Some(0),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stderr.contains("agent_generation"),
        "the refusal names the setting: {}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(w.path(&format!("repo/{OLD_FLEET}.stable.manifest"))).unwrap(),
        manifest
    );
}
