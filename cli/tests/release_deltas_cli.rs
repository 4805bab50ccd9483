//! `release` lays signed deltas from the channel's last releases beside each new image,
//! lists them in index.json and SHA256SUMS, and `publish` uploads them: a device running
//! a recent release downloads a few percent of the image.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};
use sha2::{Digest, Sha256};

/// Packages version `version` of `lamp` into `v<version>.ota`: the same firmware-like
/// bytes for the same `seed` apart from the version, as consecutive builds are.
fn package(
    s: &Scratch,
    pk: [u8; 32],
    chip: Chip,
    version: &str,
    seed: u64,
    extra: &[&str],
) -> String {
    let app = TestFirmware::new(chip)
        .version(version)
        .project_name("lamp")
        .trusted_keys(&[pk])
        .payload_size(100_000)
        .seed(seed)
        .app_image();
    let out = format!("v{version}.ota");
    s.package_app(&app, "lamp", &out, extra);
    out
}

/// The installed SHA-256 an image's header declares: what a device running it hashes.
fn installed_sha256(s: &Scratch, ota: &str) -> String {
    s.json(&["inspect", ota])["image_sha256"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn release(s: &Scratch, extra: &[&str], image: &str) -> serde_json::Value {
    let out = s.json(&release_args(&[extra, &[image]].concat()));
    out["channels"][0].clone()
}

fn deltas_in_tree(s: &Scratch) -> Vec<String> {
    s.listing(TREE)
        .into_iter()
        .filter(|n| n.ends_with(".otad"))
        .collect()
}

#[test]
fn each_release_brings_deltas_from_the_last_three_and_publish_carries_them() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"];
    let images: Vec<String> = versions
        .iter()
        .map(|v| package(&s, pk, Chip::Esp32c3, v, 7, &[]))
        .collect();

    let first = release(&s, &[], &images[0]);
    assert_eq!(first["deltas"].as_array().unwrap().len(), 0, "{first}");
    for (i, image) in images.iter().enumerate().skip(1) {
        let ch = release(&s, &[], image);
        let deltas = ch["deltas"].as_array().unwrap();
        assert_eq!(deltas.len(), i.min(3), "{ch}");
        let target = ch["image"].as_str().unwrap();
        // Newest base first: the channel's previous head.
        assert_eq!(deltas[0]["from_version"], versions[i - 1], "{ch}");
        for d in deltas {
            let name = d["name"].as_str().unwrap();
            let from = d["from_version"].as_str().unwrap();
            let base = format!("v{from}.ota");
            // The device's naming rule: beside the image, 16 hex of the base's digest.
            let digest = installed_sha256(&s, &base);
            assert_eq!(name, format!("{target}.{}.otad", &digest[..16]));
            assert!(
                d["size"].as_u64().unwrap() * 10 < d["full_size"].as_u64().unwrap(),
                "{d}"
            );
            let path = format!("{TREE}/{name}");
            s.ok(&["verify", "--pubkey", "release.pub", "--base", &base, &path]);
        }
    }
    // 1 + 2 + 3 + 3 deltas for the four releases after the first.
    let names = deltas_in_tree(&s);
    assert_eq!(names.len(), 9, "{names:?}");

    // index.json and SHA256SUMS describe them.
    let index: serde_json::Value = serde_json::from_slice(&tree_file(&s, "index.json")).unwrap();
    let listed: Vec<&str> = index["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>());
    let sums = String::from_utf8(tree_file(&s, "SHA256SUMS")).unwrap();
    for name in &names {
        let digest = hex::encode(Sha256::digest(tree_file(&s, name)));
        assert!(sums.contains(&format!("{digest}  {name}\n")), "{sums}");
    }

    // Re-signing the head (a rollout change) makes no new deltas.
    let ch = release(&s, &["--rollout", "50"], &images[4]);
    assert_eq!(ch["change"], "resign", "{ch}");
    assert_eq!(deltas_in_tree(&s), names);

    // publish to a directory host serves every delta beside its image.
    s.ok(&["publish", "--repo", TREE, "--to", "www", "-q"]);
    let served = s.listing("www");
    for name in &names {
        assert!(served.contains(name), "{name} not in {served:?}");
        assert_eq!(
            std::fs::read(s.path("www").join(name)).unwrap(),
            tree_file(&s, name)
        );
    }
    let host_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("www/index.json")).unwrap()).unwrap();
    assert_eq!(host_index["deltas"].as_array().unwrap().len(), names.len());
}

#[test]
fn the_number_of_deltas_is_configurable_and_useless_ones_are_left_out() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let v1 = package(&s, pk, Chip::Esp32c3, "1.0.0", 7, &[]);
    let v2 = package(&s, pk, Chip::Esp32c3, "1.1.0", 7, &[]);
    let v3 = package(&s, pk, Chip::Esp32c3, "1.2.0", 7, &[]);
    // Other filler: nothing in common with the earlier builds.
    let v4 = package(&s, pk, Chip::Esp32c3, "1.3.0", 99, &[]);
    release(&s, &[], &v1);

    // Dry run: shows the delta, writes nothing.
    let out = s.json(&release_args(&["--dry-run", &v2]));
    assert_eq!(
        out["channels"][0]["deltas"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    assert!(deltas_in_tree(&s).is_empty());

    let ch = release(&s, &["--deltas", "0"], &v2);
    assert!(ch["deltas"].as_array().unwrap().is_empty(), "{ch}");
    assert!(deltas_in_tree(&s).is_empty());

    s.write("ota-sign.toml", b"[device.lamp]\ndeltas = 1\n");
    let ch = release(&s, &[], &v3);
    assert_eq!(ch["deltas"].as_array().unwrap().len(), 1, "{ch}");
    assert_eq!(ch["deltas"][0]["from_version"], "1.1.0");
    // The flag beats the file.
    let ch = release(&s, &["--deltas", "3"], &v4);
    assert!(ch["deltas"].as_array().unwrap().is_empty(), "{ch}");
    let notes: Vec<&str> = ch["delta_notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes.iter().all(|n| n.contains("would not save a tenth")),
        "{notes:?}"
    );
    assert_eq!(deltas_in_tree(&s).len(), 1);

    let err = s.fails(&release_args(&["--deltas", "17", &v4]), USAGE);
    assert!(err.contains("17"), "{err}");
}

#[test]
fn the_delta_encoding_follows_the_flag_then_the_file_then_auto() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    let images: Vec<String> = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
        .iter()
        .map(|v| package(&s, pk, Chip::Esp32c3, v, 7, &[]))
        .collect();
    release(&s, &[], &images[0]);
    let encodings = |ch: &serde_json::Value| -> Vec<String> {
        ch["deltas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["added"] == true)
            .map(|d| d["encoding"].as_str().unwrap().to_owned())
            .collect()
    };
    // Auto: whichever is smaller, and it is one of the two.
    let ch = release(&s, &[], &images[1]);
    let auto = encodings(&ch);
    assert_eq!(auto.len(), 1, "{ch}");
    assert!(
        ["difference", "patch-from"].contains(&auto[0].as_str()),
        "{ch}"
    );
    s.write(
        "ota-sign.toml",
        b"[device.lamp]\ndelta_encoding = \"patch-from\"\n",
    );
    let ch = release(&s, &[], &images[2]);
    assert_eq!(encodings(&ch), ["patch-from", "patch-from"], "{ch}");
    // The flag beats the file.
    let ch = release(&s, &["--delta-encoding", "difference"], &images[3]);
    assert_eq!(encodings(&ch), ["difference"; 3], "{ch}");
    for d in deltas_in_tree(&s) {
        let v = s.json(&["verify", "--pubkey", "release.pub", &format!("{TREE}/{d}")]);
        assert_eq!(v["kind"], "delta", "{d}");
    }
    let err = s.fails(
        &release_args(&["--delta-encoding", "lzma", &images[3]]),
        USAGE,
    );
    assert!(err.contains("lzma"), "{err}");
}

#[test]
fn generation_1_fleets_get_deltas_too_but_none_from_another_chip() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    // A mixed fleet: the oldest agent is generation 1, which never asks for a delta;
    // the newer agents beside it take one.
    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 1\n");
    let v1 = package(
        &s,
        pk,
        Chip::Esp32c3,
        "1.0.0",
        7,
        &["--agent-generation", "1"],
    );
    let v2 = package(
        &s,
        pk,
        Chip::Esp32c3,
        "1.1.0",
        7,
        &["--agent-generation", "1"],
    );
    release(&s, &[], &v1);
    let ch = release(&s, &[], &v2);
    assert_eq!(ch["deltas"].as_array().unwrap().len(), 1, "{ch}");
    assert_eq!(deltas_in_tree(&s).len(), 1);

    s.write("ota-sign.toml", b"[device.lamp]\nagent_generation = 2\n");
    let v3 = package(&s, pk, Chip::Esp32s3, "1.2.0", 7, &[]);
    let ch = release(&s, &["--deltas", "1"], &v3);
    assert!(ch["deltas"].as_array().unwrap().is_empty(), "{ch}");
    assert!(
        ch["delta_notes"][0].as_str().unwrap().contains("for chip"),
        "{ch}"
    );
}

#[test]
fn publish_to_s3_serves_the_deltas_and_keeps_listing_them() {
    use ota_test_servers::{http, s3::S3sFs};
    let Some(server) = S3sFs::start(&["firmware"]) else {
        return;
    };
    let s = Scratch::new();
    let pk = s.keygen("release");
    let images: Vec<String> = ["1.0.0", "1.1.0", "1.2.0"]
        .iter()
        .map(|v| package(&s, pk, Chip::Esp32c3, v, 7, &[]))
        .collect();
    let publish = |s: &Scratch| {
        s.run_env(&s3_publish("s3://firmware", &server.endpoint), &s3_env(), 0);
    };
    release(&s, &[], &images[0]);
    release(&s, &[], &images[1]);
    publish(&s);
    let first = deltas_in_tree(&s);
    assert_eq!(first.len(), 1);
    // A tree that no longer holds the published delta (cleaned up, or another
    // publisher's): the host's index describes it, and the host keeps serving it.
    let kept = tree_file(&s, &first[0]);
    std::fs::remove_file(s.path(TREE).join(&first[0])).unwrap();
    release(&s, &[], &images[2]);
    publish(&s);
    let mut all = deltas_in_tree(&s);
    assert_eq!(all.len(), 2, "{all:?}");
    all.push(first[0].clone());
    all.sort();
    s.write(&format!("{TREE}/{}", first[0]), &kept);
    for name in &all {
        let got = http::get(&server.presigned_get("firmware", name), &[]).unwrap();
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(got.body, tree_file(&s, name), "{name}");
    }
    // The host's index lists every delta it serves, the earlier ones included.
    let index = http::get(&server.presigned_get("firmware", "index.json"), &[]).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.body).unwrap();
    let listed: Vec<&str> = index["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, all.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn no_delta_when_its_name_would_break_the_name_rules() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    // A 32-byte device type and a 31-byte version: the image name is 77 bytes, its
    // delta's 99, above the 96 a file name may have, so no device could ask for it.
    let device_type = "a-very-long-device-type-name-x32";
    assert_eq!(device_type.len(), 32);
    let images: Vec<String> = [
        "100000.0.0-aaaaaaaaaaaaaaaaaaaa",
        "100000.0.1-aaaaaaaaaaaaaaaaaaaa",
    ]
    .iter()
    .map(|version| {
        let app = TestFirmware::new(Chip::Esp32c3)
            .version(version)
            .project_name("lamp")
            .trusted_keys(&[pk])
            .payload_size(60_000)
            .seed(7)
            .app_image();
        let out = format!("{version}.ota");
        s.package_app(&app, device_type, &out, &[]);
        out
    })
    .collect();
    release(&s, &[], &images[0]);
    let ch = release(&s, &[], &images[1]);
    assert!(ch["deltas"].as_array().unwrap().is_empty(), "{ch}");
    let note = ch["delta_notes"][0].as_str().unwrap();
    assert!(note.contains("96 characters"), "{note}");
    assert!(deltas_in_tree(&s).is_empty());
}
