//! `index.json` and `SHA256SUMS` describe what the host serves, on every host: two trees
//! published one after the other (and two publishers merging at once) end up both
//! listed. And a no-op republish to S3 costs the same few requests whatever the number
//! of images the prefix holds.

use std::collections::BTreeSet;

use ota_format::{DeviceType, Version, inspect_header};
use ota_test_servers::images::ImageSpec;
use ota_test_servers::{github::FakeGitHub, http, proxy::Proxy, s3};
use sha2::{Digest, Sha256};

use super::dir::DirDestination;
use super::host_tests::{Recorder, gh_dest, publish, released, s3_dest, s3_dest_at};
use super::plan::{execute, make_plan};
use super::{Destination, PublishError};
use crate::repo::{ReleaseTree, names};

/// The manifests and images of `trees`.
fn layout_files(trees: &[&ReleaseTree]) -> BTreeSet<String> {
    trees
        .iter()
        .flat_map(|t| t.files().unwrap())
        .filter(|(_, k)| *k != names::FileKind::Info)
        .map(|(n, _)| n)
        .collect()
}

/// Checks that the host's `index.json` lists exactly `files`' manifests and images, and
/// that its `SHA256SUMS` gives every one of them and `index.json` with the digest of the
/// bytes the host serves. `get` reads a file from the host.
fn assert_inventory(files: &BTreeSet<String>, get: &mut dyn FnMut(&str) -> Vec<u8>) {
    let index_bytes = get(names::INDEX_JSON);
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let listed = |key: &str, field: &str| -> BTreeSet<String> {
        index[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[field].as_str().unwrap().to_owned())
            .collect()
    };
    let manifests: BTreeSet<String> = files
        .iter()
        .filter(|n| n.ends_with(".manifest"))
        .cloned()
        .collect();
    let images: BTreeSet<String> = files
        .iter()
        .filter(|n| n.ends_with(".ota"))
        .cloned()
        .collect();
    assert_eq!(listed("channels", "manifest"), manifests);
    assert_eq!(listed("images", "name"), images);

    let sums = String::from_utf8(get(names::SHA256SUMS)).unwrap();
    let mut summed = BTreeSet::new();
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").unwrap();
        let served = if name == names::INDEX_JSON {
            index_bytes.clone()
        } else {
            get(name)
        };
        assert_eq!(digest, hex::encode(Sha256::digest(&served)), "{name}");
        summed.insert(name.to_owned());
    }
    let mut expected = files.clone();
    expected.insert(names::INDEX_JSON.to_owned());
    assert_eq!(summed, expected);
}

fn lamp_and_plug_trees() -> [(tempfile::TempDir, ReleaseTree); 2] {
    [
        released(&[ImageSpec::new("lamp", "1.0.0")]),
        released(&[ImageSpec::new("plug", "2.0.0")]),
    ]
}

#[test]
fn inventory_lists_what_a_directory_serves_after_two_trees() {
    let [(_a, lamp), (_b, plug)] = lamp_and_plug_trees();
    let www = tempfile::tempdir().unwrap();
    publish(&lamp, &mut DirDestination::new(www.path())).unwrap();
    publish(&plug, &mut DirDestination::new(www.path())).unwrap();
    assert_inventory(&layout_files(&[&lamp, &plug]), &mut |name| {
        std::fs::read(www.path().join(name)).unwrap()
    });
}

#[test]
fn inventory_lists_what_s3_serves_after_two_trees() {
    let Some(server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    let [(_a, lamp), (_b, plug)] = lamp_and_plug_trees();
    publish(
        &lamp,
        &mut s3_dest(&server, "firmware", "fw", s3::SECRET_KEY),
    )
    .unwrap();
    publish(
        &plug,
        &mut s3_dest(&server, "firmware", "fw", s3::SECRET_KEY),
    )
    .unwrap();
    let mut dest = s3_dest(&server, "firmware", "fw", s3::SECRET_KEY);
    assert_inventory(&layout_files(&[&lamp, &plug]), &mut |name| {
        dest.fetch(name).unwrap().unwrap()
    });
}

#[test]
fn inventory_lists_what_the_github_release_serves_after_two_trees() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let [(_a, lamp), (_b, plug)] = lamp_and_plug_trees();
    publish(&lamp, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    publish(&plug, &mut gh_dest(&gh, "t0k", "r2")).unwrap();
    assert_eq!(gh.latest().unwrap().tag, "r2");
    assert_inventory(&layout_files(&[&lamp, &plug]), &mut |name| {
        let (resp, _) = http::get_following(&gh.latest_download_url(name), &[]).unwrap();
        assert_eq!(resp.status, 200, "{name}");
        resp.body
    });
}

/// Plans both trees against the same host state, then executes one after the other: the
/// second finds the inventory changed under it and merges again.
fn publish_at_once(
    a: &ReleaseTree,
    b: &ReleaseTree,
    dest: &mut dyn FnMut() -> Box<dyn Destination>,
) {
    let (mut first, mut second) = (dest(), dest());
    let plan_a = make_plan(a, first.as_mut()).unwrap();
    let plan_b = make_plan(b, second.as_mut()).unwrap();
    execute(&plan_a, first.as_mut(), &Recorder::default()).unwrap();
    execute(&plan_b, second.as_mut(), &Recorder::default()).unwrap();
}

#[test]
fn publishers_of_two_device_types_at_once_are_both_listed() {
    let [(_a, lamp), (_b, plug)] = lamp_and_plug_trees();
    let files = layout_files(&[&lamp, &plug]);
    let www = tempfile::tempdir().unwrap();
    let root = www.path().to_owned();
    publish_at_once(&lamp, &plug, &mut || Box::new(DirDestination::new(&root)));
    assert_inventory(&files, &mut |name| std::fs::read(root.join(name)).unwrap());

    let Some(server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    publish_at_once(&lamp, &plug, &mut || {
        Box::new(s3_dest(&server, "firmware", "", s3::SECRET_KEY))
    });
    let mut dest = s3_dest(&server, "firmware", "", s3::SECRET_KEY);
    assert_inventory(&files, &mut |name| dest.fetch(name).unwrap().unwrap());
}

/// Adds `n` small images of lamp (versions 0.0.i) to the tree, as years of releases leave
/// behind.
fn add_history(tree: &ReleaseTree, n: usize) {
    let dt = DeviceType::new("lamp").unwrap();
    for i in 0..n {
        let bytes = ImageSpec::new("lamp", &format!("0.0.{i}")).size(64).bytes();
        let (_, header_len) = inspect_header(&bytes).unwrap();
        let header: [u8; 32] = Sha256::digest(&bytes[..header_len]).into();
        let version = Version::parse(&format!("0.0.{i}")).unwrap();
        let name = names::image_name(&dt, &version, &header).unwrap();
        std::fs::write(tree.path(name.as_str()), bytes).unwrap();
    }
}

#[test]
fn s3_noop_republish_costs_the_same_few_requests_with_1000_images() {
    let Some(server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    let proxy = Proxy::start(&server.endpoint);
    let noop_requests = |history: usize| {
        let (_work, tree) = released(&[ImageSpec::new("lamp", "1.0.0")]);
        add_history(&tree, history);
        let prefix = format!("h{history}");
        let dest = || s3_dest_at(&proxy.url, "firmware", &prefix, s3::SECRET_KEY);
        let first = publish(&tree, &mut dest()).unwrap();
        assert_eq!(
            first.len(),
            history + 4,
            "every image, the manifest, the inventory"
        );
        proxy.reset();
        assert!(publish(&tree, &mut dest()).unwrap().is_empty(), "no-op");
        proxy.requests()
    };
    let few = noop_requests(10);
    let many = noop_requests(1_010);
    let not_get: Vec<_> = many.iter().filter(|r| r.method != "GET").collect();
    assert!(
        not_get.is_empty(),
        "no HEAD per image, no write: {} such requests, first {:?}",
        not_get.len(),
        not_get.first()
    );
    // One listing page more for the larger prefix (S3 lists 1000 keys a page) at most.
    assert!(many.len() <= few.len() + 1, "{few:?}\n{many:?}");
    assert!(
        many.len() <= 3,
        "a listing page per 1000 keys and the state: {many:?}"
    );
}

#[test]
fn an_inventory_rewritten_before_every_attempt_ends_in_a_conflict_after_bounded_tries() {
    let (_work, lamp) = released(&[ImageSpec::new("lamp", "1.0.0")]);
    let www = tempfile::tempdir().unwrap();
    let mut dest = DirDestination::new(www.path());
    let plan = make_plan(&lamp, &mut dest).unwrap();
    // Another writer changes index.json right before each of our attempts.
    struct Meddler<'a>(&'a std::path::Path, std::cell::Cell<usize>);
    impl super::Progress for Meddler<'_> {
        fn start(&self, name: &str, _size: u64) {
            if name == names::INDEX_JSON {
                self.1.set(self.1.get() + 1);
                let other = format!("{{\"rewrite\": {}}}", self.1.get());
                std::fs::write(self.0.join(names::INDEX_JSON), other).unwrap();
            }
        }
    }
    let meddler = Meddler(www.path(), std::cell::Cell::new(0));
    let err = execute(&plan, &mut dest, &meddler).unwrap_err();
    assert!(matches!(err, PublishError::Concurrent(_)), "{err}");
    assert_eq!(meddler.1.get(), super::plan::INVENTORY_ATTEMPTS);
}
