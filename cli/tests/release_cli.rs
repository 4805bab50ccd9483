//! `ota-sign release` as a real process: keygen -> package -> release, and the channel
//! rules a device relies on, read back from the signed manifests in the tree.

mod common;

use common::*;
use ota_format::{
    ChipId, Decision, Device, FormatError, Manifest, TrustedKey, TrustedKeys, VerifiedManifest,
    Version,
};
use sha2::{Digest, Sha256};

fn release(s: &Scratch, extra: &[&str], images: &[&str]) -> serde_json::Value {
    s.json(&release_args(&[extra, images].concat()))
}

fn release_fails(s: &Scratch, extra: &[&str], images: &[&str], code: i32) -> String {
    s.fails(&release_args(&[extra, images].concat()), code)
}

fn manifest(s: &Scratch, pk: [u8; 32], name: &str) -> VerifiedManifest {
    let keys = [TrustedKey::new(pk)];
    Manifest::verify(&tree_file(s, name), &TrustedKeys::new(&keys)).unwrap()
}

fn device(version: &str, now: u64) -> Device<'static> {
    Device {
        device_type: ota_format::DeviceType::new("lamp").unwrap(),
        chip: ChipId(5),
        channel: ota_format::Channel::new("stable").unwrap(),
        running_version: Version::parse(version).unwrap(),
        security_counter: 0,
        last_sequence: None,
        device_id: b"aa:bb:cc:dd:ee:ff",
        now: Some(now),
        slot_size: 4 << 20,
    }
}

#[test]
fn sequence_grows_and_a_rollout_change_re_signs_without_touching_the_image() {
    let (s, pk) = packaged(&[(Build::new("lamp", "1.0.0"), "lamp-1.0.0.ota")]);

    let first = release(&s, &[], &["lamp-1.0.0.ota"]);
    let ch = &first["channels"][0];
    assert_eq!(ch["manifest"], "lamp.stable.manifest");
    assert_eq!(
        (ch["sequence"].as_u64(), ch["rollout"].as_u64()),
        (Some(1), Some(10_000))
    );
    assert_eq!(ch["change"], "new");
    assert_eq!(ch["image_added"], true);
    let image = ch["image"].as_str().unwrap().to_owned();
    assert!(
        image.starts_with("lamp-1.0.0-") && image.ends_with(".ota"),
        "{image}"
    );
    assert_eq!(
        s.listing(TREE),
        ["SHA256SUMS", "index.json", &image, "lamp.stable.manifest"]
    );
    assert_eq!(
        tree_file(&s, &image),
        std::fs::read(s.path("lamp-1.0.0.ota")).unwrap()
    );
    let image_mtime = std::fs::metadata(s.path(TREE).join(&image))
        .unwrap()
        .modified()
        .unwrap();

    // 5% -> 50% -> 0% (paused) -> 100%: one new signed manifest each, same image.
    for (seq, pct, bp) in [
        (2, "5", 500),
        (3, "50%", 5000),
        (4, "0", 0),
        (5, "100", 10_000),
    ] {
        let out = release(&s, &["--rollout", pct], &["lamp-1.0.0.ota"]);
        let ch = &out["channels"][0];
        assert_eq!(ch["change"], "resign", "{out}");
        assert_eq!(ch["image_added"], false);
        assert_eq!(ch["image"], image.as_str());
        let m = manifest(&s, pk, "lamp.stable.manifest");
        assert_eq!((m.manifest().sequence, m.manifest().rollout), (seq, bp));
    }
    assert_eq!(
        std::fs::metadata(s.path(TREE).join(&image))
            .unwrap()
            .modified()
            .unwrap(),
        image_mtime,
        "a re-sign never rewrites the image"
    );

    // The same request again changes nothing, not even the signature.
    let before = tree_file(&s, "lamp.stable.manifest");
    let out = release(&s, &["--rollout", "100"], &["lamp-1.0.0.ota"]);
    assert_eq!(out["channels"][0]["change"], serde_json::Value::Null);
    assert_eq!(tree_file(&s, "lamp.stable.manifest"), before);

    // A new version moves the head and starts at 100% unless told otherwise.
    s.package(
        "release",
        pk,
        &Build::new("lamp", "1.1.0").seed(2),
        "lamp-1.1.0.ota",
    );
    let out = release(&s, &[], &["lamp-1.1.0.ota"]);
    let ch = &out["channels"][0];
    assert_eq!(
        (ch["change"].as_str(), ch["sequence"].as_u64()),
        (Some("upgrade"), Some(6))
    );
    let new_image = ch["image"].as_str().unwrap();
    s.ok(&[
        "verify",
        "--pubkey",
        "release.pub",
        &format!("{TREE}/lamp.stable.manifest"),
        "--image",
        &format!("{TREE}/{new_image}"),
    ]);
    // The old image stays for devices that read the old manifest a moment ago.
    assert!(s.path(TREE).join(&image).is_file());
}

#[test]
fn downgrade_needs_the_flag_and_a_lower_counter_is_always_refused() {
    let (s, pk) = packaged(&[
        (Build::new("lamp", "2.0.0").counter(3), "v2.ota"),
        (Build::new("lamp", "1.5.0").counter(3).seed(2), "v15.ota"),
        (Build::new("lamp", "3.0.0").counter(2).seed(3), "v3-low.ota"),
        (
            Build::new("lamp", "1.5.0").counter(3).seed(4),
            "v15-other.ota",
        ),
    ]);
    release(&s, &[], &["v2.ota"]);
    let head = tree_file(&s, "lamp.stable.manifest");
    let files = s.listing(TREE);

    let err = release_fails(&s, &[], &["v15.ota"], POLICY);
    assert!(err.contains("lower than the current 2.0.0"), "{err}");
    assert!(err.contains("--allow-downgrade"), "{err}");
    for flags in [&[][..], &["--allow-downgrade"][..]] {
        let err = release_fails(&s, flags, &["v3-low.ota"], POLICY);
        assert!(
            err.contains("security counter 2 is lower than the current 3"),
            "{err}"
        );
    }
    assert_eq!(
        tree_file(&s, "lamp.stable.manifest"),
        head,
        "refusals write nothing"
    );
    assert_eq!(s.listing(TREE), files);

    let out = release(&s, &["--allow-downgrade"], &["v15.ota"]);
    assert_eq!(out["channels"][0]["change"], "downgrade");
    let m = manifest(&s, pk, "lamp.stable.manifest");
    assert!(m.manifest().allow_downgrade);
    assert_eq!(m.manifest().sequence, 2);
    // The flag is what lets a device running 2.0.0 take 1.5.0.
    assert_eq!(
        m.decide(&device("2.0.0", m.manifest().created)),
        Ok(Decision::Install)
    );

    // Same version, different bytes: refused, the version must change.
    let err = release_fails(&s, &["--allow-downgrade"], &["v15-other.ota"], POLICY);
    assert!(
        err.contains("already released as a different image"),
        "{err}"
    );
}

#[test]
fn expires_takes_an_absolute_date_and_warns_when_short() {
    let (s, pk) = packaged(&[(Build::new("lamp", "1.0.0"), "a.ota")]);
    let (_, stderr) = s.run_env(&release_args(&["--expires", "2099-12-31", "a.ota"]), &[], 0);
    assert!(!stderr.contains("warning"), "{stderr}");
    let m = manifest(&s, pk, "lamp.stable.manifest");
    assert_eq!(
        m.manifest().not_after,
        Some(4_102_358_400),
        "2099-12-31T00:00:00Z"
    );
    release(&s, &["--expires", "2099-12-31T06:00:00Z"], &["a.ota"]);
    let m = manifest(&s, pk, "lamp.stable.manifest");
    assert_eq!(m.manifest().not_after, Some(4_102_358_400 + 6 * 3600));

    // Shorter than a publish and a staged rollout can take: signed, with the threshold.
    let (_, stderr) = s.run_env(&release_args(&["--expires", "2h", "a.ota"]), &[], 0);
    assert!(
        stderr.contains("warning: the manifest expires in 2h, less than 7days"),
        "{stderr}"
    );
    let err = release_fails(&s, &["--expires", "2020-01-01"], &["a.ota"], USAGE);
    assert!(err.contains("not in the future"), "{err}");
}

#[test]
fn expires_makes_devices_refuse_the_manifest_after_the_deadline() {
    let (s, pk) = packaged(&[(Build::new("lamp", "1.0.0"), "a.ota")]);
    release(&s, &["--expires", "1h"], &["a.ota"]);
    let m = manifest(&s, pk, "lamp.stable.manifest");
    let created = m.manifest().created;
    assert_eq!(m.manifest().not_after, Some(created + 3600));
    assert_eq!(
        m.decide(&device("0.9.0", created + 3600)),
        Ok(Decision::Install)
    );
    assert_eq!(
        m.decide(&device("0.9.0", created + 3601)),
        Err(FormatError::Expired)
    );
    // A rollout change keeps the deadline; a new --expires replaces it.
    release(&s, &["--rollout", "50"], &["a.ota"]);
    assert_eq!(
        manifest(&s, pk, "lamp.stable.manifest")
            .manifest()
            .not_after,
        Some(created + 3600)
    );
    let out = release(&s, &["--expires", "30d"], &["a.ota"]);
    let not_after = out["channels"][0]["not_after"].as_u64().unwrap();
    assert!(not_after >= created + 30 * 86_400, "{out}");
    let index: serde_json::Value = serde_json::from_slice(&tree_file(&s, "index.json")).unwrap();
    assert!(
        index["channels"][0]["expires"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    release_fails(&s, &["--expires", "soon"], &["a.ota"], USAGE);
    release_fails(&s, &["--rollout", "101"], &["a.ota"], USAGE);
    release_fails(&s, &["--rollout", "0.001"], &["a.ota"], USAGE);
}

#[test]
fn index_json_and_sha256sums_describe_the_tree() {
    let (s, _) = packaged(&[
        (Build::new("lamp", "1.0.0").counter(1), "lamp.ota"),
        (Build::new("plug", "2.1.0-rc.1").seed(5), "plug.ota"),
    ]);
    release(&s, &["--rollout", "12.5"], &["lamp.ota", "plug.ota"]);

    let index: serde_json::Value = serde_json::from_slice(&tree_file(&s, "index.json")).unwrap();
    assert_eq!(index["format"], 1);
    let channels = index["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    let lamp = &channels[0];
    assert_eq!(lamp["device_type"], "lamp");
    assert_eq!(lamp["channel"], "stable");
    assert_eq!(lamp["version"], "1.0.0");
    assert_eq!(lamp["security_counter"], 1);
    assert_eq!(lamp["sequence"], 1);
    assert_eq!(lamp["chip"], "esp32c3");
    assert_eq!(lamp["rollout_percent"], 12.5);
    assert_eq!(lamp["expires"], serde_json::Value::Null);
    assert_eq!(channels[1]["version"], "2.1.0-rc.1");
    let images = index["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for img in images {
        let name = img["name"].as_str().unwrap();
        let bytes = tree_file(&s, name);
        assert_eq!(img["size"], bytes.len() as u64);
        assert_eq!(img["sha256"], hex::encode(Sha256::digest(&bytes)));
    }
    assert_eq!(lamp["image"], images[0]["name"]);
    assert_eq!(lamp["image_file_size"], images[0]["size"]);

    // `sha256sum -c` format, covering every file but itself, index.json included.
    let sums = String::from_utf8(tree_file(&s, "SHA256SUMS")).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").unwrap();
        assert_eq!(
            digest,
            hex::encode(Sha256::digest(tree_file(&s, name))),
            "{name}"
        );
        listed.push(name.to_owned());
    }
    let mut expected = s.listing(TREE);
    expected.retain(|n| n != "SHA256SUMS");
    assert_eq!(listed, expected);
}

#[test]
fn bad_inputs_are_refused_before_anything_is_written() {
    let (s, _) = packaged(&[
        (Build::new("lamp", "1.0.0"), "lamp.ota"),
        (Build::new("lamp", "1.1.0").seed(2), "lamp2.ota"),
    ]);
    let other = s.keygen("other");
    s.package("other", other, &Build::new("plug", "1.0.0"), "foreign.ota");

    // Dry run: checks and signs, writes nothing.
    let out = s.json(&release_args(&["--dry-run", "lamp.ota"]));
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["channels"][0]["sequence"], 1);
    assert_absent(&s.path(TREE));

    let err = release_fails(&s, &[], &["lamp.ota", "lamp2.ota"], USAGE);
    assert!(err.contains("two images for device type lamp"), "{err}");
    let err = release_fails(&s, &[], &["foreign.ota"], INVALID);
    assert!(err.contains("--trust"), "{err}");
    let mut tampered = std::fs::read(s.path("lamp.ota")).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    s.write("tampered.ota", &tampered);
    release_fails(&s, &[], &["tampered.ota"], INVALID);
    release_fails(&s, &[], &["missing.ota"], IO);
    let err = s.fails(
        &[
            "release",
            "--key",
            "release.key",
            "--repo",
            TREE,
            "lamp.ota",
        ],
        USAGE,
    );
    assert!(err.contains("no channel given"), "{err}");
    assert_absent(&s.path(TREE));

    // An image signed before a key rotation is accepted with --trust.
    release(&s, &["--trust", "other.pub"], &["foreign.ota"]);
    // After a rotation the tree's manifests are signed by the old key: the new key
    // refuses to build on them unless the old key is trusted.
    let by_other = |trust: &[&'static str]| {
        let head = ["release", "--key", "other.key", "--repo", TREE];
        [
            &head[..],
            &["--channel", "stable", "--rollout", "5"],
            trust,
            &["foreign.ota"],
        ]
        .concat()
    };
    let err = s.fails(&by_other(&[]), INVALID);
    assert!(
        err.contains("signed by another key") || err.contains("--trust"),
        "{err}"
    );
    s.ok(&by_other(&["--trust", "release.pub"]));
    let m = manifest(&s, other, "plug.stable.manifest");
    assert_eq!((m.manifest().sequence, m.manifest().rollout), (2, 500));
}
