//! Key rotation through the real binaries: v2, signed with the old key, trusts only a new
//! key; v3, signed only with the new key, installs; an image signed with the retired key
//! after the rotation is refused and never reaches a slot.

use ota_e2e::Work;
use ota_e2e::firmware::app;

const DT: &str = "rot-node";

fn release(w: &Work, key: &str, image: &str, trust: Option<&str>) {
    match trust {
        Some(t) => w.release(key, "repo", &["--trust", t, image]),
        None => w.release(key, "repo", &[image]),
    };
    w.publish("repo", "www", &[], &[]);
}

#[test]
fn rotation_installs_new_key_releases_and_refuses_the_retired_key() {
    let w = Work::new();
    let Some(nginx) = w.serve_www() else {
        return;
    };
    let url = format!("{}/{DT}.stable.manifest", nginx.url);
    let old = w.keygen("old");
    let new = w.keygen("new");

    let build = |version: &str, keys: &[[u8; 32]], signer: &str, next: Option<&str>| {
        let bin = format!("{version}.bin");
        std::fs::write(w.path(&bin), app(DT, version, keys, None)).unwrap();
        let out = format!("{version}.ota");
        let next = next.map_or(Vec::new(), |n| vec!["--next-key", n]);
        w.package(signer, DT, &bin, &out, &next);
    };
    build("1.0.0", &[old], "old.key", None);
    // The rotation release: signed with the old key, its firmware trusts only the new one.
    build("2.0.0", &[new], "old.key", Some("new.pub"));
    // After the rotation: signed only with the new key.
    build("3.0.0", &[new], "new.key", None);
    // The retired key signs a newer release (stolen key, or a mistake).
    build("4.0.0", &[new], "old.key", Some("new.pub"));

    w.flash_image("1.0.0.ota", "old.pub", "flash.bin");
    release(&w, "old.key", "1.0.0.ota", None);
    release(&w, "old.key", "2.0.0.ota", None);
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter().any(|l| l == "boot running ota_1 version 2.0.0"),
        "{out:?}"
    );

    release(&w, "new.key", "3.0.0.ota", Some("old.pub"));
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter().any(|l| l == "boot running ota_0 version 3.0.0"),
        "{out:?}"
    );

    release(&w, "old.key", "4.0.0.ota", Some("new.pub"));
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter().all(|l| !l.contains("4.0.0")),
        "the retired key's release got somewhere: {out:?}"
    );
    assert!(
        out.iter().filter(|l| l.starts_with("check error")).count() == 2,
        "{out:?}"
    );
    let status = w.flash_status("flash.bin");
    assert_eq!(status["slots"][0]["version"], "3.0.0", "{status:#}");
    assert_eq!(status["slots"][1]["version"], "2.0.0", "{status:#}");
}
