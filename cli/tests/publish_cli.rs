//! `ota-sign publish` as a real process against real hosts started here: a directory
//! served by nginx, s3s-fs with signature checking, and the GitHub fake. A plain HTTP
//! client, as a device would, gets the signed bytes through each host; failures get
//! their exit codes and leave the previous release served; a publish killed half-way
//! leaves every device with a consistent release, and running it again finishes.

mod common;

use std::process::Child;

use common::*;
use ota_format::{Manifest, TrustedKey, TrustedKeys};
use ota_test_servers::github::{FakeGitHub, Fault, Requests};
use ota_test_servers::http;
use ota_test_servers::nginx::Nginx;
use ota_test_servers::proxy::Proxy;
use ota_test_servers::s3::{self, S3sFs};

/// keygen, package lamp and plug at `version`, release both to stable.
fn released(version: &str) -> (Scratch, [u8; 32]) {
    let s = Scratch::new();
    let pk = s.keygen("release");
    release_version(&s, pk, version, 1);
    (s, pk)
}

fn release_version(s: &Scratch, pk: [u8; 32], version: &str, seed: u64) {
    for dt in ["lamp", "plug"] {
        let out = format!("{dt}-{version}.ota");
        s.package("release", pk, &Build::new(dt, version).seed(seed), &out);
    }
    // These tests count and order uploads; deltas (tested in release_deltas_cli.rs)
    // would add files to every release.
    s.ok(&release_args(&[
        "--deltas",
        "0",
        &format!("lamp-{version}.ota"),
        &format!("plug-{version}.ota"),
    ]));
}

/// What a device does: fetch the manifest (following redirects), verify it with the key
/// its firmware trusts, fetch the image it names, and compare both with the tree's
/// signed files. `url` maps a file name to the URL the host serves it at. Returns the
/// manifest's bytes.
fn device_fetch(
    s: &Scratch,
    pk: [u8; 32],
    manifest: &str,
    url: &dyn Fn(&str) -> String,
) -> Vec<u8> {
    let (resp, _) = http::get_following(&url(manifest), &[]).unwrap();
    assert_eq!(resp.status, 200, "{manifest}");
    let keys = [TrustedKey::new(pk)];
    let m = *Manifest::verify(&resp.body, &TrustedKeys::new(&keys))
        .unwrap()
        .manifest();
    let (img, _) = http::get_following(&url(m.image_name.as_str()), &[]).unwrap();
    assert_eq!(img.status, 200, "{}", m.image_name);
    assert_eq!(img.body.len() as u64, u64::from(m.image_file_size));
    assert_eq!(img.body, tree_file(s, m.image_name.as_str()), "image bytes");
    resp.body
}

/// ETag -> 304 on the manifest, Range -> 206 on its image.
fn conditional_and_range(manifest_url: &str, image_url: &str, image: &[u8]) {
    let first = http::get(manifest_url, &[]).unwrap();
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("manifest ETag").to_owned();
    let again = http::get(manifest_url, &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(again.status, 304, "{manifest_url}");
    assert!(again.body.is_empty());
    range(image_url, image);
}

/// Range -> 206 with exactly those bytes, as a resuming device asks.
fn range(image_url: &str, image: &[u8]) {
    let part = http::get(image_url, &[("Range", "bytes=256-4351")]).unwrap();
    assert_eq!(part.status, 206, "{image_url}");
    assert_eq!(part.body, image[256..4352]);
}

fn uploads(out: &serde_json::Value) -> Vec<String> {
    out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["upload"] == true)
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn image_of(s: &Scratch, manifest: &str) -> String {
    Manifest::inspect(&tree_file(s, manifest))
        .unwrap()
        .image_name
        .to_string()
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "publish finished before it was killed");
}

#[test]
fn directory_served_by_nginx() {
    let (s, pk) = released("1.0.0");
    let www = s.path("www");
    let www_arg = format!("file://{}", www.display());

    let plan = s.json(&["publish", "--repo", TREE, "--to", "www", "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    let order = uploads(&plan);
    let kinds: Vec<&str> = order
        .iter()
        .map(|n| n.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ota", "ota", "manifest", "manifest", "json", "SHA256SUMS"]
    );
    assert_absent(&www);

    let out = s.json(&["publish", "--repo", TREE, "--to", &www_arg]);
    assert_eq!(out["uploads"], 6);
    assert_eq!(s.listing("www"), s.listing(TREE));

    let Some(nginx) = Nginx::serve(&www) else {
        return;
    };
    let url = |name: &str| format!("{}/{name}", nginx.url);
    for m in ["lamp.stable.manifest", "plug.stable.manifest"] {
        assert_eq!(device_fetch(&s, pk, m, &url), tree_file(&s, m));
    }
    let image = image_of(&s, "lamp.stable.manifest");
    conditional_and_range(
        &url("lamp.stable.manifest"),
        &url(&image),
        &tree_file(&s, &image),
    );
    let manifest = http::get(&url("lamp.stable.manifest"), &[]).unwrap();
    assert_eq!(
        manifest.header("cache-control"),
        Some("no-cache, no-transform")
    );
    let etag = manifest.header("etag").unwrap().to_owned();

    let again = s.json(&["publish", "--repo", TREE, "--to", &www_arg]);
    assert_eq!(again["uploads"], 0, "idempotent");

    // 100% -> 5%: only the manifest (and the informational files) change on the host,
    // and a device's conditional poll sees it at once.
    s.ok(&release_args(&["--rollout", "5", "lamp-1.0.0.ota"]));
    let out = s.json(&["publish", "--repo", TREE, "--to", &www_arg]);
    assert_eq!(
        uploads(&out),
        ["lamp.stable.manifest", "index.json", "SHA256SUMS"]
    );
    let changed = http::get(&url("lamp.stable.manifest"), &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(Manifest::inspect(&changed.body).unwrap().rollout, 500);
    assert_eq!(
        device_fetch(&s, pk, "lamp.stable.manifest", &url),
        changed.body
    );
}

#[test]
fn s3s_fs_with_signature_checking() {
    let Some(server) = S3sFs::start(&["firmware"]) else {
        return;
    };
    let (s, pk) = released("1.0.0");
    let ep = server.endpoint.as_str();

    // Wrong secret: exit 8, and not one object written.
    let bad = [
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("AWS_REGION", s3::REGION),
    ];
    let (_, err) = s.run_env(&s3_publish("s3://firmware/prod", ep), &bad, CREDENTIALS);
    assert!(err.contains("credentials rejected"), "{err}");
    assert_eq!(
        std::fs::read_dir(server.bucket_dir("firmware"))
            .unwrap()
            .count(),
        0
    );

    let (out, _) = s.run_env(&s3_publish("s3://firmware/prod", ep), &s3_env(), 0);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["uploads"], 6);
    assert_eq!(out["destination"], "s3://firmware/prod");

    let url = |name: &str| server.presigned_get("firmware", &format!("prod/{name}"));
    let mut v1 = Vec::new();
    for m in ["lamp.stable.manifest", "plug.stable.manifest"] {
        let bytes = device_fetch(&s, pk, m, &url);
        assert_eq!(bytes, tree_file(&s, m));
        v1.push(bytes);
    }
    let image = image_of(&s, "lamp.stable.manifest");
    let head = http::get(&url("lamp.stable.manifest"), &[]).unwrap();
    assert_eq!(head.header("cache-control"), Some("no-cache, no-transform"));
    let img = http::get(&url(&image), &[]).unwrap();
    assert_eq!(
        img.header("cache-control"),
        Some("public, max-age=31536000, immutable, no-transform")
    );
    // s3s-fs 0.14 ignores If-None-Match on GET (AWS answers 304), so only the stable
    // ETag devices would send is checked here; Range works as on AWS.
    let etag = |name: &str| {
        http::get(&url(name), &[])
            .unwrap()
            .header("etag")
            .map(str::to_owned)
    };
    assert!(etag("lamp.stable.manifest").is_some());
    assert_eq!(etag("lamp.stable.manifest"), etag("lamp.stable.manifest"));
    range(&url(&image), &img.body);

    let (out, _) = s.run_env(&s3_publish("s3://firmware/prod", ep), &s3_env(), 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["uploads"],
        0
    );

    // A new release with a bad secret: refused before the first byte, v1 stays whole.
    release_version(&s, pk, "1.1.0", 2);
    s.run_env(&s3_publish("s3://firmware/prod", ep), &bad, CREDENTIALS);
    for (m, before) in ["lamp.stable.manifest", "plug.stable.manifest"]
        .iter()
        .zip(&v1)
    {
        let now = http::get(&url(m), &[]).unwrap();
        assert_eq!(&now.body, before, "{m}");
    }
    assert!(!server.has_object(
        "firmware",
        &format!("prod/{}", image_of(&s, "lamp.stable.manifest"))
    ));

    let (_, err) = s.run_env(&s3_publish("s3://no-such-bucket", ep), &s3_env(), NOT_FOUND);
    assert!(err.contains("not found"), "{err}");
    let dead = format!("http://127.0.0.1:{}", ota_test_servers::free_port());
    let (_, err) = s.run_env(&s3_publish("s3://firmware/prod", &dead), &s3_env(), NETWORK);
    assert!(
        err.contains("run the same command again") || err.contains("again"),
        "{err}"
    );
}

fn gh_publish<'a>(gh: &'a FakeGitHub, tag: &'a str) -> [&'a str; 13] {
    [
        "publish",
        "--repo",
        TREE,
        "--to",
        "github://acme/fw",
        "--github-api-url",
        &gh.api_url,
        "--github-tag",
        tag,
        // GitHub's pacing (1 s between writes) is tested on its own.
        "--github-write-interval",
        "0s",
        "--json",
        "-q",
    ]
}

#[test]
fn github_releases_fake_with_redirects() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (s, pk) = released("1.0.0");

    let (_, err) = s.run_env(
        &gh_publish(&gh, "r0"),
        &[("GITHUB_TOKEN", "wrong")],
        CREDENTIALS,
    );
    assert!(err.contains("credentials rejected"), "{err}");
    assert!(
        gh.releases().is_empty(),
        "nothing half-published: {:?}",
        gh.releases()
    );
    s.fails(&gh_publish(&gh, "r0"), USAGE);

    let (out, _) = s.run_env(&gh_publish(&gh, "r1"), &[("GITHUB_TOKEN", "t0k")], 0);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["uploads"], 6);
    assert_eq!(gh.latest().unwrap().tag, "r1");

    let url = |name: &str| gh.latest_download_url(name);
    for m in ["lamp.stable.manifest", "plug.stable.manifest"] {
        let (_, hops) = http::get_following(&url(m), &[]).unwrap();
        assert_eq!(
            hops.len(),
            3,
            "latest/download -> download/TAG -> signed URL: {hops:?}"
        );
        assert!(hops[1].contains("/releases/download/r1/"), "{hops:?}");
        assert!(hops[2].starts_with(&gh.objects_url), "{hops:?}");
        assert_eq!(device_fetch(&s, pk, m, &url), tree_file(&s, m));
    }
    let image = image_of(&s, "lamp.stable.manifest");
    let (_, m_hops) = http::get_following(&url("lamp.stable.manifest"), &[]).unwrap();
    let (img, i_hops) = http::get_following(&url(&image), &[]).unwrap();
    conditional_and_range(&m_hops[2], &i_hops[2], &img.body);

    let (out, _) = s.run_env(&gh_publish(&gh, "r1b"), &[("GITHUB_TOKEN", "t0k")], 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["uploads"],
        0
    );
    assert_eq!(gh.releases().len(), 1, "an unchanged tree makes no release");

    let missing = [
        "publish",
        "--repo",
        TREE,
        "--to",
        "github://acme/nope",
        "--github-api-url",
        &gh.api_url,
    ];
    s.run_env(&missing, &[("GITHUB_TOKEN", "t0k")], NOT_FOUND);
}

#[test]
fn github_rate_limit_exits_10_and_a_foreign_latest_release_exits_6() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (s, _) = released("1.0.0");
    let token = [("GITHUB_TOKEN", "t0k")];
    gh.inject(
        Requests::ApiAndUploads,
        Fault::PrimaryRateLimit { reset_in: 3600 },
        1,
    );
    let mut args = gh_publish(&gh, "r1").to_vec();
    args.extend(["--github-max-wait", "1s"]);
    let (_, err) = s.run_env(&args, &token, NETWORK);
    assert!(
        err.contains("rate limit") && err.contains("--github-max-wait"),
        "{err}"
    );
    assert!(gh.releases().is_empty());

    gh.add_release("app-v2.0", false, "Release notes of the companion app");
    let (_, err) = s.run_env(&gh_publish(&gh, "r1"), &token, POLICY);
    assert!(
        err.contains("app-v2.0") && err.contains("repository dedicated to"),
        "{err}"
    );
}

#[test]
fn killed_s3_publish_leaves_devices_consistent_and_a_rerun_completes() {
    let Some(server) = S3sFs::start(&["firmware"]) else {
        return;
    };
    let proxy = Proxy::start(&server.endpoint);
    let (s, pk) = released("1.0.0");
    s.run_env(&s3_publish("s3://firmware", &proxy.url), &s3_env(), 0);
    let url = |name: &str| server.presigned_get("firmware", name);
    let v1_plug = device_fetch(&s, pk, "plug.stable.manifest", &url);

    // PUTs go lamp image, plug image, lamp manifest, plug manifest, ...: hold the 4th and
    // kill the process while it waits, so lamp moved to 1.1.0 and plug did not.
    release_version(&s, pk, "1.1.0", 2);
    proxy.stall_at("PUT", 4);
    let child = s
        .cmd(&s3_publish("s3://firmware", &proxy.url))
        .envs(s3_env())
        .spawn()
        .unwrap();
    wait_until("the 4th PUT reaches the proxy", || proxy.holding());
    kill(child);
    proxy.release();

    // Every device finds a verified manifest whose image is there, byte for byte.
    let lamp = device_fetch(&s, pk, "lamp.stable.manifest", &url);
    assert_eq!(lamp, tree_file(&s, "lamp.stable.manifest"), "lamp moved");
    let plug = http::get(&url("plug.stable.manifest"), &[]).unwrap();
    assert_eq!(plug.body, v1_plug, "plug still at 1.0.0");
    let old_image = Manifest::inspect(&plug.body)
        .unwrap()
        .image_name
        .to_string();
    assert_eq!(http::get(&url(&old_image), &[]).unwrap().status, 200);

    let (out, _) = s.run_env(&s3_publish("s3://firmware", &server.endpoint), &s3_env(), 0);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        uploads(&out),
        ["plug.stable.manifest", "index.json", "SHA256SUMS"],
        "the re-run sends only what is missing"
    );
    assert_eq!(
        device_fetch(&s, pk, "plug.stable.manifest", &url),
        tree_file(&s, "plug.stable.manifest")
    );
}

#[test]
fn killed_github_publish_keeps_latest_and_a_rerun_completes() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (s, pk) = released("1.0.0");
    let token = [("GITHUB_TOKEN", "t0k")];
    s.run_env(&gh_publish(&gh, "r1"), &token, 0);
    let url = |name: &str| gh.latest_download_url(name);
    let v1: Vec<Vec<u8>> = ["lamp.stable.manifest", "plug.stable.manifest"]
        .iter()
        .map(|m| device_fetch(&s, pk, m, &url))
        .collect();

    release_version(&s, pk, "1.1.0", 2);
    gh.stall_at_upload(3);
    let child = s.cmd(&gh_publish(&gh, "r2")).envs(token).spawn().unwrap();
    wait_until("the 3rd upload reaches the fake", || gh.holding());
    kill(child);
    gh.revive();

    // The draft is invisible: latest is still r1, whole.
    assert_eq!(gh.latest().unwrap().tag, "r1");
    for (m, before) in ["lamp.stable.manifest", "plug.stable.manifest"]
        .iter()
        .zip(&v1)
    {
        let (resp, _) = http::get_following(&url(m), &[]).unwrap();
        assert_eq!(&resp.body, before, "{m}");
        let image = Manifest::inspect(&resp.body).unwrap().image_name;
        let (img, _) = http::get_following(&url(image.as_str()), &[]).unwrap();
        assert_eq!(img.status, 200);
    }

    // The killed process left its draft behind; a dry run names it and deletes nothing.
    let drafts = || -> Vec<String> {
        gh.releases()
            .into_iter()
            .filter(|r| r.draft)
            .map(|r| r.tag)
            .collect()
    };
    assert_eq!(drafts(), ["r2"]);
    let human = &gh_publish(&gh, "r3")[..9];
    let dry_json = [&gh_publish(&gh, "r3")[..], &["--dry-run"]].concat();
    let (out, _) = s.run_env(&dry_json, &token, 0);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["leftovers"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["leftovers"][0]["kind"], "draft-release");
    assert_eq!(out["leftovers"][0]["name"], "r2");
    assert_eq!(out["deleted"], 0);
    let (text, _) = s.run_env(&[human, &["--dry-run"]].concat(), &token, 0);
    assert!(
        text.contains("1 leftovers of interrupted publishes to delete"),
        "{text}"
    );
    let line = text.lines().find(|l| l.contains(" r2 ")).unwrap_or("");
    assert!(line.trim_start().starts_with("delete  draft"), "{text}");
    assert_eq!(drafts(), ["r2"], "a dry run deletes nothing");

    let (text, _) = s.run_env(human, &token, 0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("deleted draft release r2 (id ")
                && l.ends_with("left by an interrupted publish")),
        "{text}"
    );
    assert!(drafts().is_empty(), "{:?}", gh.releases());
    assert_eq!(gh.latest().unwrap().tag, "r3");
    for m in ["lamp.stable.manifest", "plug.stable.manifest"] {
        assert_eq!(device_fetch(&s, pk, m, &url), tree_file(&s, m));
    }
}
