//! Release + publish against real hosts started here: a directory served by nginx,
//! s3s-fs with signature checking, and the GitHub fake. A device-like client checks that
//! every host serves byte-identical signed files.
//!
//! Why one file of ~750 lines: each scenario runs the same contract against the three
//! hosts side by side (and docs/SECURITY.md cites them by this path), so splitting by
//! host would separate the cases that must agree.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::Signer as _;
use ota_format::{Channel, Manifest, TrustedKey, TrustedKeys};
use ota_test_servers::images::{self, ImageSpec};
use ota_test_servers::{github::FakeGitHub, http, nginx::Nginx, s3};

use super::dir::DirDestination;
use super::github::{GitHubDestination, GitHubLimits, GitHubOptions};
use super::plan::{execute, make_plan};
use super::s3::{S3Destination, S3Options};
use super::{Destination, FailureKind, Progress, PublishError};
use crate::repo::ReleaseTree;
use crate::repo::channel::ReleaseOptions;
use crate::repo::release::{ReleaseRequest, release};

struct TestSigner(ed25519_dalek::SigningKey);

impl ota_keys::SigningKeySource for TestSigner {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], ota_keys::KeyError> {
        Ok(self.0.sign(message).to_bytes())
    }
    fn describe(&self) -> String {
        "test key".to_owned()
    }
}

#[derive(Default)]
pub(super) struct Recorder(pub(super) RefCell<Vec<String>>);
impl Progress for Recorder {
    fn finish(&self, name: &str) {
        self.0.borrow_mut().push(name.to_owned());
    }
}

pub(super) fn do_release(
    tree: &ReleaseTree,
    work: &Path,
    channel: &str,
    specs: &[ImageSpec],
    rollout: Option<u16>,
) {
    let images = specs.iter().map(|s| s.write_to(work)).collect();
    let req = ReleaseRequest {
        channel: Channel::new(channel).unwrap(),
        images,
        options: ReleaseOptions {
            rollout,
            ..Default::default()
        },
        extra_trusted: Vec::new(),
        now: 1_750_000_000,
        devices: Default::default(),
        // These tests count and order uploads; deltas (repo::deltas, and
        // cli/tests/release_deltas_cli.rs) would add files to every release.
        deltas: Some(0),
        delta_encoding: None,
    };
    release(tree, &TestSigner(images::key(1)), &req).unwrap();
}

/// A tree with `specs` released to stable, in a temporary work dir.
pub(super) fn released(specs: &[ImageSpec]) -> (tempfile::TempDir, ReleaseTree) {
    let work = tempfile::tempdir().unwrap();
    let tree = ReleaseTree::new(work.path().join("tree"));
    do_release(&tree, work.path(), "stable", specs, None);
    (work, tree)
}

/// Releases lamp `version` (a small image) to stable.
pub(super) fn release_lamp(tree: &ReleaseTree, work: &Path, version: &str) {
    do_release(
        tree,
        work,
        "stable",
        &[ImageSpec::new("lamp", version)],
        None,
    );
}

/// A second tree, `work/name`, that knows only lamp 2.0.0-rc.1 on beta: publishing it
/// must leave every other device type and channel served.
pub(super) fn lamp_beta_only_tree(work: &Path, name: &str) -> ReleaseTree {
    let tree = ReleaseTree::new(work.join(name));
    let spec = ImageSpec::new("lamp", "2.0.0-rc.1");
    do_release(&tree, work, "beta", &[spec], None);
    tree
}

/// A tree with lamp 1.0.0 released to stable, in a temporary work dir.
pub(super) fn lamp_released() -> (tempfile::TempDir, ReleaseTree) {
    released(&[ImageSpec::new("lamp", "1.0.0")])
}

/// Every image went up before the first manifest that could name it.
fn assert_images_first(order: &[String]) {
    let first_manifest = order.iter().position(|n| n.ends_with(".manifest")).unwrap();
    assert!(
        order[..first_manifest].iter().all(|n| n.ends_with(".ota")),
        "{order:?}"
    );
}

pub(super) fn publish(
    tree: &ReleaseTree,
    dest: &mut dyn Destination,
) -> Result<Vec<String>, PublishError> {
    let plan = make_plan(tree, dest)?;
    let rec = Recorder::default();
    execute(&plan, dest, &rec)?;
    Ok(rec.0.into_inner())
}

/// Checks the device's view: the manifest verifies, names an image that exists at the
/// URL next to it, and both are byte-identical to the tree's files.
pub(super) fn device_check(tree: &ReleaseTree, manifest_url: &str, base: &str) {
    let (resp, _) = http::get_following(manifest_url, &[]).unwrap();
    assert_eq!(resp.status, 200, "{manifest_url}");
    let keys = [TrustedKey::new(images::public_key(1))];
    let m = *Manifest::verify(&resp.body, &TrustedKeys::new(&keys))
        .unwrap()
        .manifest();
    let name = manifest_url.rsplit('/').next().unwrap();
    let name = name.split('?').next().unwrap();
    assert_eq!(resp.body, tree.read(name).unwrap().unwrap());
    let image_url = format!("{base}/{}", m.image_name);
    let (img, _) = http::get_following(&image_url, &[]).unwrap();
    assert_eq!(img.status, 200, "{image_url}");
    assert_eq!(img.body, tree.read(m.image_name.as_str()).unwrap().unwrap());
}

#[test]
fn directory_served_by_nginx_etag_range_and_idempotent() {
    let (work, tree) = lamp_released();
    let www = work.path().join("www");
    let mut dest = DirDestination::new(&www);
    let order = publish(&tree, &mut dest).unwrap();
    assert_eq!(
        order
            .iter()
            .map(|n| n.rsplit('.').next().unwrap())
            .collect::<Vec<_>>(),
        ["ota", "manifest", "json", "SHA256SUMS"]
    );
    assert!(publish(&tree, &mut dest).unwrap().is_empty(), "idempotent");

    let Some(nginx) = Nginx::serve(&www) else {
        return;
    };
    device_check(
        &tree,
        &format!("{}/lamp.stable.manifest", nginx.url),
        &nginx.url,
    );
    let url = format!("{}/lamp.stable.manifest", nginx.url);
    let first = http::get(&url, &[]).unwrap();
    assert_eq!(
        first.header("cache-control"),
        Some("no-cache, no-transform")
    );
    let etag = first.header("etag").unwrap().to_owned();
    let again = http::get(&url, &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    let m = Manifest::inspect(&first.body).unwrap();
    let image_url = format!("{}/{}", nginx.url, m.image_name);
    let part = http::get(&image_url, &[("Range", "bytes=256-1279")]).unwrap();
    assert_eq!(part.status, 206);
    let full = tree.read(m.image_name.as_str()).unwrap().unwrap();
    assert_eq!(part.body, full[256..1280]);
    let head = http::get(&image_url, &[]).unwrap();
    assert_eq!(
        head.header("cache-control"),
        Some("public, max-age=31536000, immutable, no-transform")
    );

    // Rollout 100% -> 5%: only the manifest changes on the host.
    do_release(
        &tree,
        work.path(),
        "stable",
        &[ImageSpec::new("lamp", "1.0.0")],
        Some(500),
    );
    let order = publish(&tree, &mut dest).unwrap();
    assert_eq!(order[0], "lamp.stable.manifest");
    assert!(!order.iter().any(|n| n.ends_with(".ota")));
    let changed = http::get(&url, &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(Manifest::inspect(&changed.body).unwrap().rollout, 500);
}

#[test]
fn directory_publish_deletes_temporary_files_a_killed_publish_left() {
    let (work, tree) = lamp_released();
    let www = work.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let prefix = crate::repo::atomic::TEMP_PREFIX;
    let stale = format!("{prefix}4242-0-lamp.stable.manifest");
    let fresh = format!("{prefix}4343-0-lamp.stable.manifest");
    // Someone's own hidden file that merely looks similar is not ours.
    let foreign = ".ota-tmp.notes";
    for name in [&stale, &fresh, &foreign.to_owned()] {
        std::fs::write(www.join(name), b"partial").unwrap();
    }
    let old = std::time::SystemTime::now() - super::dir::STALE_TEMP_AGE;
    std::fs::File::options()
        .write(true)
        .open(www.join(&stale))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let mut dest = DirDestination::new(&www);
    let plan = make_plan(&tree, &mut dest).unwrap();
    let names: Vec<_> = plan
        .leftovers
        .iter()
        .map(|l| (l.kind, l.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [(super::LeftoverKind::TemporaryFile, stale.as_str())]
    );
    // Planning alone (a dry run) deletes nothing.
    assert!(www.join(&stale).exists());

    execute(&plan, &mut dest, &Recorder::default()).unwrap();
    assert!(!www.join(&stale).exists());
    // A temporary file this young may be a live publish's, mid-write.
    assert!(www.join(&fresh).exists());
    assert!(www.join(foreign).exists());
    assert!(www.join("lamp.stable.manifest").exists());
}

#[test]
fn directory_refuses_to_replace_an_image_and_detects_a_channel_ahead() {
    let (work, tree) = lamp_released();
    let www = work.path().join("www");
    let mut dest = DirDestination::new(&www);
    publish(&tree, &mut dest).unwrap();

    // Another publisher's tree moved the channel to sequence 2 on the host.
    let other = ReleaseTree::new(work.path().join("other"));
    std::fs::create_dir_all(other.root()).unwrap();
    for (name, _) in tree.files().unwrap() {
        std::fs::copy(tree.path(&name), other.path(&name)).unwrap();
    }
    release_lamp(&other, work.path(), "1.1.0");
    publish(&other, &mut DirDestination::new(&www)).unwrap();
    // ours is at sequence 1 with 1.0.0 -> refused
    let err = publish(&tree, &mut dest).unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::ChannelAhead {
                remote: 2,
                local: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Conflict);

    // An image with the same name but other bytes on the host is never replaced.
    let name = tree
        .files()
        .unwrap()
        .into_keys()
        .find(|n| n.ends_with(".ota"))
        .unwrap();
    let mut bytes = std::fs::read(www.join(&name)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(www.join(&name), &bytes).unwrap();
    let err = publish(&other, &mut dest).unwrap_err();
    assert!(
        matches!(err, PublishError::ImageConflict(ref n) if *n == name),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Conflict);
}

pub(super) fn s3_dest(
    server: &s3::S3sFs,
    bucket: &str,
    prefix: &str,
    secret: &str,
) -> S3Destination {
    s3_dest_at(&server.endpoint, bucket, prefix, secret)
}

pub(super) fn s3_dest_at(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    secret: &str,
) -> S3Destination {
    let opts = S3Options {
        endpoint: Some(endpoint.to_owned()),
        access_key: Some(s3::ACCESS_KEY.into()),
        secret_key: Some(secret.into()),
        region: Some(s3::REGION.into()),
        instance_metadata: false,
    };
    S3Destination::new(bucket, prefix, &opts).unwrap()
}

#[test]
fn s3_objects_headers_order_and_device_view() {
    let Some(server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    let (_work, tree) = released(&[
        ImageSpec::new("lamp", "1.0.0"),
        ImageSpec::new("plug", "2.0.0"),
    ]);
    let mut dest = s3_dest(&server, "firmware", "prod", s3::SECRET_KEY);
    let order = publish(&tree, &mut dest).unwrap();
    assert_images_first(&order);
    assert_eq!(order.iter().filter(|n| n.ends_with(".ota")).count(), 2);
    assert!(server.has_object("firmware", "prod/lamp.stable.manifest"));

    for name in ["lamp.stable.manifest", "plug.stable.manifest"] {
        let url = server.presigned_get("firmware", &format!("prod/{name}"));
        let resp = http::get(&url, &[]).unwrap();
        assert_eq!(resp.status, 200, "{url}");
        assert_eq!(resp.header("cache-control"), Some("no-cache, no-transform"));
        assert_eq!(
            resp.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(resp.body, tree.read(name).unwrap().unwrap());
        let m = Manifest::inspect(&resp.body).unwrap();
        let img = http::get(
            &server.presigned_get("firmware", &format!("prod/{}", m.image_name)),
            &[],
        )
        .unwrap();
        assert_eq!(img.status, 200);
        assert_eq!(
            img.header("cache-control"),
            Some("public, max-age=31536000, immutable, no-transform")
        );
        assert_eq!(img.body, tree.read(m.image_name.as_str()).unwrap().unwrap());
    }
    // Anonymous requests are refused: signature checking is on.
    let anon = http::get(
        &format!("{}/firmware/prod/lamp.stable.manifest", server.endpoint),
        &[],
    )
    .unwrap();
    assert_eq!(anon.status, 403);
    assert!(publish(&tree, &mut dest).unwrap().is_empty(), "idempotent");
}

#[test]
fn s3_wrong_credentials_missing_bucket_and_dead_server() {
    let Some(mut server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    let (_work, tree) = lamp_released();

    let err = publish(&tree, &mut s3_dest(&server, "firmware", "", "wrong-secret")).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Credentials, "{err}");
    assert_eq!(
        std::fs::read_dir(server.bucket_dir("firmware"))
            .unwrap()
            .count(),
        0
    );

    let err = publish(&tree, &mut s3_dest(&server, "nope", "", s3::SECRET_KEY)).unwrap_err();
    assert_eq!(err.kind(), FailureKind::NotFound, "{err}");

    server.kill();
    let err = publish(&tree, &mut s3_dest(&server, "firmware", "", s3::SECRET_KEY)).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
}

#[test]
fn s3_interrupted_publish_leaves_the_previous_release_whole() {
    let Some(mut server) = s3::S3sFs::start(&["firmware"]) else {
        return;
    };
    let (work, tree) = lamp_released();
    publish(&tree, &mut s3_dest(&server, "firmware", "", s3::SECRET_KEY)).unwrap();
    let v1 = tree.read("lamp.stable.manifest").unwrap().unwrap();

    // Release 1.1.0, then the server dies after the image is up and before the manifest.
    do_release(
        &tree,
        work.path(),
        "stable",
        &[ImageSpec::new("lamp", "1.1.0").size(1 << 20)],
        None,
    );
    let mut dest = s3_dest(&server, "firmware", "", s3::SECRET_KEY);
    let plan = make_plan(&tree, &mut dest).unwrap();
    struct KillAfterImage<'a>(RefCell<Option<&'a mut s3::S3sFs>>);
    impl Progress for KillAfterImage<'_> {
        fn finish(&self, name: &str) {
            if name.ends_with(".ota")
                && let Some(s) = self.0.borrow_mut().take()
            {
                s.kill();
            }
        }
    }
    let killer = KillAfterImage(RefCell::new(Some(&mut server)));
    let err = execute(&plan, &mut dest, &killer).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
    server.restart();
    let dest = s3_dest(&server, "firmware", "", s3::SECRET_KEY);
    // Devices still get the complete previous release.
    let url = server.presigned_get("firmware", "lamp.stable.manifest");
    let resp = http::get(&url, &[]).unwrap();
    assert_eq!(resp.body, v1);
    let m = Manifest::inspect(&resp.body).unwrap();
    let img = http::get(
        &server.presigned_get("firmware", m.image_name.as_str()),
        &[],
    )
    .unwrap();
    assert_eq!(img.status, 200);
    // Running publish again completes the new release.
    let mut dest = dest;
    let order = publish(&tree, &mut dest).unwrap();
    assert_eq!(
        order[0], "lamp.stable.manifest",
        "image already up: {order:?}"
    );
    let resp = http::get(
        &server.presigned_get("firmware", "lamp.stable.manifest"),
        &[],
    )
    .unwrap();
    assert_eq!(
        resp.body,
        tree.read("lamp.stable.manifest").unwrap().unwrap()
    );
}

/// Limits small enough for tests: 2 s of rate-limit waiting, no pacing, 10 ms retries.
pub(super) fn test_limits() -> GitHubLimits {
    GitHubLimits {
        max_wait: Duration::from_secs(2),
        write_interval: Duration::ZERO,
        retry_delay: Duration::from_millis(10),
    }
}

/// Options for publishing to the fake's `acme/fw` as release `tag`.
pub(super) fn gh_options(
    gh: &FakeGitHub,
    token: &str,
    tag: &str,
    limits: GitHubLimits,
) -> GitHubOptions {
    GitHubOptions {
        token: token.into(),
        api_url: gh.api_url.clone(),
        upload_url: None,
        tag: Some(tag.into()),
        limits,
        on_wait: None,
    }
}

pub(super) fn gh_dest_with(
    gh: &FakeGitHub,
    token: &str,
    tag: &str,
    limits: GitHubLimits,
) -> GitHubDestination {
    GitHubDestination::new("acme", "fw", gh_options(gh, token, tag, limits)).unwrap()
}

pub(super) fn gh_dest(gh: &FakeGitHub, token: &str, tag: &str) -> GitHubDestination {
    gh_dest_with(gh, token, tag, test_limits())
}

#[test]
fn github_draft_then_publish_and_other_channels_carried() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (work, tree) = released(&[
        ImageSpec::new("lamp", "1.0.0"),
        ImageSpec::new("plug", "1.0.0"),
    ]);
    let order = publish(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    assert_images_first(&order);
    let log = gh.log();
    let create = log
        .iter()
        .position(|l| l.method == "POST" && l.path.ends_with("/releases"))
        .unwrap();
    let publish_at = log.iter().position(|l| l.method == "PATCH").unwrap();
    let uploads: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.host == ota_test_servers::github::Host::Upload)
        .map(|(i, _)| i)
        .collect();
    assert!(uploads.iter().all(|&i| create < i && i < publish_at));
    assert_eq!(gh.latest().unwrap().tag, "r1");
    for dt in ["lamp", "plug"] {
        let url = gh.latest_download_url(&format!("{dt}.stable.manifest"));
        let (_, hops) = http::get_following(&url, &[]).unwrap();
        assert_eq!(hops.len(), 3, "302 -> 302 -> signed URL: {hops:?}");
        assert!(hops[2].starts_with(&gh.objects_url));
        device_check(
            &tree,
            &url,
            gh.latest_download_url("").trim_end_matches('/'),
        );
    }
    assert!(
        publish(&tree, &mut gh_dest(&gh, "t0k", "r1b"))
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    assert_eq!(gh.releases().len(), 1);

    // A second tree that only knows lamp/beta publishes: plug and lamp/stable stay served.
    let tree2 = lamp_beta_only_tree(work.path(), "tree2");
    publish(&tree2, &mut gh_dest(&gh, "t0k", "r2")).unwrap();
    let latest = gh.latest().unwrap();
    assert_eq!(latest.tag, "r2");
    let names: Vec<&str> = latest.assets.iter().map(|a| a.name.as_str()).collect();
    for m in [
        "lamp.beta.manifest",
        "lamp.stable.manifest",
        "plug.stable.manifest",
    ] {
        assert!(names.contains(&m), "{m} missing from {names:?}");
    }
    device_check(
        &tree,
        &gh.latest_download_url("plug.stable.manifest"),
        gh.latest_download_url("").trim_end_matches('/'),
    );
    device_check(
        &tree2,
        &gh.latest_download_url("lamp.beta.manifest"),
        gh.latest_download_url("").trim_end_matches('/'),
    );
}

#[test]
fn github_killed_mid_publish_keeps_latest_and_bad_token_is_credentials() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let err = publish(
        &ReleaseTree::new("/nonexistent-ota-tree"),
        &mut gh_dest(&gh, "bad", "x"),
    )
    .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Credentials, "{err}");
    let (work, tree) = lamp_released();
    publish(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    let v1 = tree.read("lamp.stable.manifest").unwrap().unwrap();

    release_lamp(&tree, work.path(), "1.1.0");
    gh.die_at_upload(2);
    let err = publish(&tree, &mut gh_dest(&gh, "t0k", "r2")).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
    gh.revive();
    assert_eq!(gh.latest().unwrap().tag, "r1");
    let (resp, _) =
        http::get_following(&gh.latest_download_url("lamp.stable.manifest"), &[]).unwrap();
    assert_eq!(resp.body, v1);
    let m = Manifest::inspect(&resp.body).unwrap();
    let (img, _) =
        http::get_following(&gh.latest_download_url(m.image_name.as_str()), &[]).unwrap();
    assert_eq!(img.status, 200);

    publish(&tree, &mut gh_dest(&gh, "t0k", "r3")).unwrap();
    assert_eq!(gh.latest().unwrap().tag, "r3");
    let (resp, _) =
        http::get_following(&gh.latest_download_url("lamp.stable.manifest"), &[]).unwrap();
    assert_eq!(
        resp.body,
        tree.read("lamp.stable.manifest").unwrap().unwrap()
    );
    // The old image stays in the new release for devices that read the old manifest.
    let (img, _) =
        http::get_following(&gh.latest_download_url(m.image_name.as_str()), &[]).unwrap();
    assert_eq!(img.status, 200);
}

/// The GitHub fake serving lamp 1.0.0 as release `r1`.
pub(super) fn github_serving_lamp() -> (FakeGitHub, tempfile::TempDir, ReleaseTree) {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (work, tree) = lamp_released();
    publish(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    (gh, work, tree)
}

/// Releases lamp 1.1.0 and publishes it as `tag`, with the fake dying at the second
/// upload: what a publish killed mid-upload leaves is its draft, never published.
/// Returns the draft's id.
fn publish_killed_mid_upload(gh: &FakeGitHub, work: &Path, tree: &ReleaseTree, tag: &str) -> u64 {
    release_lamp(tree, work, "1.1.0");
    // The fake counts uploads over its whole life.
    let uploaded = gh
        .log()
        .iter()
        .filter(|l| l.host == ota_test_servers::github::Host::Upload)
        .count();
    gh.die_at_upload(uploaded + 2);
    let err = publish(tree, &mut gh_dest(gh, "t0k", tag)).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
    gh.revive();
    let orphan = gh.releases().into_iter().find(|r| r.tag == tag).unwrap();
    assert!(orphan.draft && !orphan.assets.is_empty(), "{orphan:?}");
    assert!(
        orphan.body.contains(super::github::DRAFT_MARKER),
        "{orphan:?}"
    );
    orphan.id
}

pub(super) fn drafts(gh: &FakeGitHub) -> Vec<String> {
    gh.releases()
        .into_iter()
        .filter(|r| r.draft)
        .map(|r| r.tag)
        .collect()
}

/// The DELETE requests after the first `skip` requests of the fake's log.
fn deletes(gh: &FakeGitHub, skip: usize) -> Vec<String> {
    gh.log()
        .into_iter()
        .skip(skip)
        .filter(|l| l.method == "DELETE")
        .map(|l| l.path)
        .collect()
}

#[test]
fn github_publish_deletes_the_draft_a_killed_publish_left_and_keeps_human_drafts() {
    let (gh, work, tree) = github_serving_lamp();
    let r2 = publish_killed_mid_upload(&gh, work.path(), &tree, "r2");
    let notes = gh.add_release("notes", true, "Changelog for the next release, WIP");
    // What ota-sign wrote into a draft's body before it had the marker.
    let legacy = gh.add_release("ota-1", true, "Signed OTA release published by ota-sign.");
    assert_eq!(drafts(&gh), ["r2", "notes", "ota-1"]);
    let mark = gh.log().len();

    let mut dest = gh_dest(&gh, "t0k", "r3");
    let plan = make_plan(&tree, &mut dest).unwrap();
    let names: Vec<&str> = plan.leftovers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["ota-1", "r2"], "newest first");
    assert!(
        plan.leftovers
            .iter()
            .all(|l| l.kind == super::LeftoverKind::DraftRelease)
    );
    execute(&plan, &mut dest, &Recorder::default()).unwrap();

    assert_eq!(gh.latest().unwrap().tag, "r3");
    assert_eq!(drafts(&gh), ["notes"], "the person's draft stays");
    assert!(gh.releases().iter().any(|r| r.id == notes));
    let expected = [legacy, r2].map(|id| format!("/repos/acme/fw/releases/{id}"));
    assert_eq!(deletes(&gh, mark), expected);
    // The orphans go before the new draft is made.
    let log = gh.log();
    let last_delete = log.iter().rposition(|l| l.method == "DELETE").unwrap();
    let create = log
        .iter()
        .rposition(|l| l.method == "POST" && l.path.ends_with("/releases"))
        .unwrap();
    assert!(last_delete < create, "{log:?}");
    assert!(
        publish(&tree, &mut gh_dest(&gh, "t0k", "r4"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(deletes(&gh, mark).len(), 2, "nothing left to delete");
}

#[test]
fn github_dry_run_lists_orphan_drafts_and_deletes_nothing() {
    let (gh, work, tree) = github_serving_lamp();
    publish_killed_mid_upload(&gh, work.path(), &tree, "r2");
    let before = gh.releases().len();
    let mark = gh.log().len();

    // A dry run is the plan without execute().
    let plan = make_plan(&tree, &mut gh_dest(&gh, "t0k", "r3")).unwrap();
    assert_eq!(plan.leftovers.len(), 1);
    assert_eq!(plan.leftovers[0].name, "r2");
    assert_eq!(gh.releases().len(), before);
    assert_eq!(drafts(&gh), ["r2"]);
    assert_eq!(deletes(&gh, mark), Vec::<String>::new());
}

#[test]
fn github_orphan_drafts_are_found_past_the_first_page() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let orphan = format!("old\n\n{}", super::github::DRAFT_MARKER);
    gh.add_release("ota-0", true, &orphan);
    // Earlier publishes' releases, ota-sign's own.
    for i in 0..120 {
        gh.add_release(&format!("v{i}"), false, &orphan);
    }
    let (_work, tree) = lamp_released();
    let plan = make_plan(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    let names: Vec<&str> = plan.leftovers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["ota-0"]);
}

#[test]
fn github_publisher_whose_draft_another_deleted_stops_with_a_conflict() {
    let (gh, work, tree) = github_serving_lamp();
    release_lamp(&tree, work.path(), "1.1.0");
    let mut slow = gh_dest(&gh, "t0k", "slow");
    let slow_plan = make_plan(&tree, &mut slow).unwrap();

    // The second publisher starts while the first one is uploading into its draft.
    struct Meanwhile<'a>(&'a FakeGitHub, &'a ReleaseTree, RefCell<bool>);
    impl Progress for Meanwhile<'_> {
        fn finish(&self, _name: &str) {
            if !self.2.replace(true) {
                publish(self.1, &mut gh_dest(self.0, "t0k", "fast")).unwrap();
            }
        }
    }
    let meanwhile = Meanwhile(&gh, &tree, RefCell::new(false));
    let err = execute(&slow_plan, &mut slow, &meanwhile).unwrap_err();
    assert!(
        matches!(err, PublishError::Concurrent(ref what) if what == "draft release slow"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Conflict);
    assert_eq!(gh.latest().unwrap().tag, "fast");
    assert!(drafts(&gh).is_empty());
}
