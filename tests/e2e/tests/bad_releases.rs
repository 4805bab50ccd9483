//! Bad releases never reach a device's boot slot: a manifest for another device type, a
//! release with a lower security counter, a release signed by an untrusted key, and a
//! replayed old manifest. Each is made with the real `ota-sign` and put where the device
//! polls (as a compromised host or a careless operator would); the device, the real
//! `ota-device-sim`, refuses it before downloading and keeps running v2.

use ota_e2e::firmware::app;
use ota_e2e::{Work, release_args};

const DT: &str = "bad-node";
const MANIFEST: &str = "bad-node.stable.manifest";

fn package(
    w: &Work,
    key: &str,
    dt: &str,
    version: &str,
    keys: &[[u8; 32]],
    counter: u64,
) -> String {
    let bin = format!("{dt}-{version}.bin");
    std::fs::write(w.path(&bin), app(dt, version, keys, None)).unwrap();
    let out = format!("{dt}-{version}.ota");
    let counter = counter.to_string();
    w.package(key, dt, &bin, &out, &["--security-counter", &counter]);
    out
}

/// Releases `image` into `repo` and bumps its sequence `extra` times by re-signing the
/// rollout, so its manifest's sequence is above anything the device has seen.
fn release_into(w: &Work, key: &str, repo: &str, image: &str, extra: u32) {
    w.release(key, repo, &[image]);
    for n in 0..extra {
        let pct = if n % 2 == 0 { "99" } else { "100" };
        w.release(key, repo, &["--rollout", pct, image]);
    }
}

/// Copies a manifest and the image it names from `repo` into the web root, under the
/// name the device polls.
fn plant(w: &Work, repo: &str, manifest: &str) {
    let bytes = std::fs::read(w.path(&format!("{repo}/{manifest}"))).unwrap();
    let m = ota_format::Manifest::inspect(&bytes).unwrap();
    let image = m.image_name.as_str().to_owned();
    std::fs::copy(
        w.path(&format!("{repo}/{image}")),
        w.path(&format!("www/{image}")),
    )
    .unwrap();
    std::fs::write(w.path(&format!("www/{MANIFEST}")), bytes).unwrap();
}

fn assert_untouched(w: &Work, out: &[String], what: &str, bad_version: &str) {
    assert!(
        out.iter().all(|l| !l.contains("installed")),
        "{what}: {out:?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("check error")),
        "{what}: {out:?}"
    );
    assert!(
        out.iter()
            .all(|l| !l.starts_with("boot") || l == "boot running ota_1 version 2.0.0"),
        "{what}: {out:?}"
    );
    let status = w.flash_status("flash.bin");
    let slots = status["slots"].as_array().unwrap();
    assert_eq!(slots[0]["version"], "1.0.0", "{what}: {status:#}");
    assert_eq!(slots[1]["version"], "2.0.0", "{what}: {status:#}");
    assert!(
        slots.iter().all(|s| s["version"] != bad_version),
        "{what}: {status:#}"
    );
    assert_eq!(
        status["agent_state"]["security_counter"], 5,
        "{what}: {status:#}"
    );
}

#[test]
fn bad_releases_never_reach_the_boot_slot() {
    let w = Work::new();
    let Some(nginx) = w.serve_www() else {
        return;
    };
    let url = format!("{}/{MANIFEST}", nginx.url);
    let k = w.keygen("release");
    let v1 = package(&w, "release.key", DT, "1.0.0", &[k], 4);
    let v2 = package(&w, "release.key", DT, "2.0.0", &[k], 5);
    w.flash_image(&v1, "release.pub", "flash.bin");
    release_into(&w, "release.key", "repo", &v1, 0);
    w.publish("repo", "www", &[], &[]);
    let old_manifest = std::fs::read(w.path(&format!("www/{MANIFEST}"))).unwrap();
    release_into(&w, "release.key", "repo", &v2, 0);
    w.publish("repo", "www", &[], &[]);
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter().any(|l| l == "boot running ota_1 version 2.0.0"),
        "{out:?}"
    );

    // 1. Wrong device type: a correctly signed release for another type.
    let other = package(&w, "release.key", "other-node", "3.0.0", &[k], 6);
    release_into(&w, "release.key", "repo-other", &other, 3);
    plant(&w, "repo-other", "other-node.stable.manifest");
    let out = w.run_device("flash.bin", &url, 1);
    assert_untouched(&w, &out, "wrong device type", "3.0.0");

    // 2. Lower security counter: release refuses it outright ...
    let low = package(&w, "release.key", DT, "3.1.0", &[k], 1);
    let r = w.sign_env(
        &release_args("release.key", "repo", &["--allow-downgrade", &low]),
        &[],
    );
    assert_ne!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("security counter"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // ... and signed in another tree and planted, the device refuses it.
    release_into(&w, "release.key", "repo-low", &low, 3);
    plant(&w, "repo-low", MANIFEST);
    let out = w.run_device("flash.bin", &url, 1);
    assert_untouched(&w, &out, "lower counter", "3.1.0");

    // 3. Wrong key: everything signed by a key the firmware does not trust.
    let stranger = w.keygen("stranger");
    let foreign = package(&w, "stranger.key", DT, "3.2.0", &[stranger], 9);
    release_into(&w, "stranger.key", "repo-foreign", &foreign, 3);
    plant(&w, "repo-foreign", MANIFEST);
    let out = w.run_device("flash.bin", &url, 1);
    assert_untouched(&w, &out, "wrong key", "3.2.0");

    // 4. The v1 manifest replayed (older sequence, lower counter).
    std::fs::write(w.path(&format!("www/{MANIFEST}")), &old_manifest).unwrap();
    let out = w.run_device("flash.bin", &url, 1);
    assert_untouched(&w, &out, "replayed manifest", "1.0.0-never");

    // The genuine channel still updates the device afterwards.
    let v3 = package(&w, "release.key", DT, "3.3.0", &[k], 6);
    release_into(&w, "release.key", "repo", &v3, 0);
    // The planted files made the web root differ from the tree; publish rewrites the
    // manifest only when the tree changed, so put the genuine one back by hand.
    std::fs::copy(
        w.path(&format!("repo/{MANIFEST}")),
        w.path(&format!("www/{MANIFEST}")),
    )
    .unwrap();
    w.publish("repo", "www", &[], &[]);
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter().any(|l| l == "boot running ota_0 version 3.3.0"),
        "{out:?}"
    );
}
