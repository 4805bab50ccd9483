//! GitHub Releases against the behaviour GitHub documents, on the fake made to misbehave
//! that way: rate limits, pacing, 5xx on upload, 422 on release creation, renamed assets,
//! releases with more assets than the embedded list holds, and a latest release someone
//! else made.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ota_test_servers::github::{FakeGitHub, Fault, Requests};
use ota_test_servers::images::ImageSpec;

use super::github::{DRAFT_MARKER, GitHubDestination, GitHubLimits};
use super::host_tests::{
    Recorder, device_check, do_release, drafts, gh_dest, gh_dest_with, gh_options,
    github_serving_lamp, lamp_beta_only_tree, lamp_released, publish, release_lamp, test_limits,
};
use super::plan::make_plan;
use super::{Destination, FailureKind, Precondition, PublishError, Upload};
use crate::repo::{FileKind, ReleaseTree};

/// The base URL next to every asset of the latest release.
pub(super) fn latest_base(gh: &FakeGitHub) -> String {
    gh.latest_download_url("").trim_end_matches('/').to_owned()
}

#[test]
fn github_rate_limits_are_waited_out_within_the_bound_then_reported() {
    let (gh, work, tree) = github_serving_lamp();
    release_lamp(&tree, work.path(), "1.1.0");
    // A primary limit lifting in a second, then a secondary one asking for a second.
    gh.inject(
        Requests::ApiAndUploads,
        Fault::PrimaryRateLimit { reset_in: 1 },
        1,
    );
    gh.inject(
        Requests::Uploads,
        Fault::SecondaryRateLimit {
            status: 429,
            retry_after: Some(1),
        },
        1,
    );
    let limits = GitHubLimits {
        max_wait: Duration::from_secs(5),
        ..test_limits()
    };
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut options = gh_options(&gh, "t0k", "r2", limits);
    let sink = notices.clone();
    options.on_wait = Some(Arc::new(move |line: &str| {
        sink.lock().unwrap().push(line.to_owned())
    }));
    let mut dest = GitHubDestination::new("acme", "fw", options).unwrap();
    let started = Instant::now();
    publish(&tree, &mut dest).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "waited both");
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices.iter().all(|n| n.contains("rate limit")),
        "{notices:?}"
    );
    assert_eq!(gh.latest().unwrap().tag, "r2");

    // Limits that lift later than the publish may wait (2 s): it stops at once and says so.
    release_lamp(&tree, work.path(), "1.2.0");
    let cases = [
        Fault::PrimaryRateLimit { reset_in: 3600 },
        Fault::SecondaryRateLimit {
            status: 403,
            retry_after: Some(120),
        },
        // No time given: GitHub's advice is a minute.
        Fault::SecondaryRateLimit {
            status: 403,
            retry_after: None,
        },
    ];
    for fault in cases {
        gh.inject(Requests::Writes, fault.clone(), 1);
        let started = Instant::now();
        let err = publish(&tree, &mut gh_dest(&gh, "t0k", "r3")).unwrap_err();
        assert!(
            matches!(err, PublishError::RateLimited { .. }),
            "{fault:?}: {err}"
        );
        assert_eq!(err.kind(), FailureKind::RateLimited);
        assert!(err.to_string().contains("rate limit"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2), "{fault:?}");
        assert_eq!(gh.latest().unwrap().tag, "r2");
    }
    // A token without the permission is a credential failure, as before.
    gh.inject(Requests::ApiAndUploads, Fault::Forbidden, 1);
    let err = publish(&tree, &mut gh_dest(&gh, "t0k", "r3")).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Credentials, "{err}");
    assert!(drafts(&gh).is_empty());
}

#[test]
fn github_writes_are_paced_and_a_noop_republish_writes_nothing() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (_work, tree) = super::host_tests::released(&[
        ImageSpec::new("lamp", "1.0.0"),
        ImageSpec::new("plug", "1.0.0"),
    ]);
    let interval = Duration::from_millis(150);
    let limits = GitHubLimits {
        write_interval: interval,
        ..test_limits()
    };
    publish(&tree, &mut gh_dest_with(&gh, "t0k", "r1", limits)).unwrap();
    let writes = gh.writes();
    // Create, two images, two manifests, index.json, SHA256SUMS, publish.
    assert_eq!(writes.len(), 8, "{writes:?}");
    for pair in writes.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Arrival times jitter by the connection set-up; the sender waited the interval.
        assert!(
            gap + Duration::from_millis(30) >= interval,
            "{gap:?}: {pair:?}"
        );
    }
    assert!(
        publish(&tree, &mut gh_dest(&gh, "t0k", "r2"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(gh.writes().len(), writes.len(), "no-op republish");
}

#[test]
fn github_upload_5xx_is_retried_after_deleting_the_starter_asset() {
    let (gh, work, tree) = github_serving_lamp();
    release_lamp(&tree, work.path(), "1.1.0");
    let mark = gh.log().len();
    gh.inject(
        Requests::Uploads,
        Fault::ServerError {
            status: 502,
            leave_starter: true,
        },
        2,
    );
    publish(&tree, &mut gh_dest(&gh, "t0k", "r2")).unwrap();
    let latest = gh.latest().unwrap();
    assert_eq!(latest.tag, "r2");
    assert!(
        latest.assets.iter().all(|a| a.state == "uploaded"),
        "{latest:?}"
    );
    let deleted_assets = gh.log()[mark..]
        .iter()
        .filter(|l| l.method == "DELETE" && l.path.contains("/releases/assets/"))
        .count();
    assert_eq!(
        deleted_assets, 2,
        "each starter asset deleted before the retry"
    );
    device_check(
        &tree,
        &gh.latest_download_url("lamp.stable.manifest"),
        &latest_base(&gh),
    );

    // An upload stored whole whose answer was lost is not sent again.
    release_lamp(&tree, work.path(), "1.1.1");
    let mark = gh.log().len();
    gh.inject(
        Requests::Uploads,
        Fault::ServerErrorAfterStoring { status: 504 },
        1,
    );
    publish(&tree, &mut gh_dest(&gh, "t0k", "r2b")).unwrap();
    let log = gh.log();
    let uploads: Vec<&str> = log[mark..]
        .iter()
        .filter(|l| l.method == "POST" && l.path.contains("/assets?"))
        .map(|l| l.path.as_str())
        .collect();
    let mut unique = uploads.clone();
    unique.dedup();
    assert_eq!(uploads, unique, "each file sent once");
    assert!(!log[mark..].iter().any(|l| l.method == "DELETE"));
    assert_eq!(gh.latest().unwrap().tag, "r2b");

    // More failures than attempts (4): the publish stops, devices keep r2b.
    release_lamp(&tree, work.path(), "1.2.0");
    gh.inject(
        Requests::Uploads,
        Fault::ServerError {
            status: 500,
            leave_starter: false,
        },
        4,
    );
    let err = publish(&tree, &mut gh_dest(&gh, "t0k", "r3")).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Remote, "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(gh.latest().unwrap().tag, "r2b");
    assert!(drafts(&gh).is_empty(), "the failed publish's draft is gone");
}

/// How many times a release was asked for since log entry `mark`.
fn creates(gh: &FakeGitHub, mark: usize) -> usize {
    gh.log()[mark..]
        .iter()
        .filter(|l| l.method == "POST" && l.path == "/repos/acme/fw/releases")
        .count()
}

#[test]
fn github_create_release_422_is_retried_only_for_a_tag_clash() {
    let (gh, work, tree) = github_serving_lamp();
    release_lamp(&tree, work.path(), "1.1.0");
    // The tag exists: the next free name is taken.
    publish(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    assert_eq!(gh.latest().unwrap().tag, "r1-1");

    // Any other 422 fails at once with GitHub's words.
    release_lamp(&tree, work.path(), "1.2.0");
    let mark = gh.log().len();
    let err = publish(&tree, &mut gh_dest(&gh, "t0k", "bad tag")).unwrap_err();
    assert!(
        err.to_string().contains("tag_name is not a valid tag"),
        "{err}"
    );
    assert_eq!(creates(&gh, mark), 1);

    let empty = FakeGitHub::start("acme", "fw", "t0k");
    empty.make_repository_empty();
    let (_work, tree) = lamp_released();
    let err = publish(&tree, &mut gh_dest(&empty, "t0k", "r1")).unwrap_err();
    assert!(err.to_string().contains("Repository is empty."), "{err}");
    assert_eq!(creates(&empty, 0), 1);
}

#[test]
fn github_asset_stored_under_another_name_is_refused() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let mut dest = gh_dest(&gh, "t0k", "r1");
    dest.begin().unwrap();
    let err = dest
        .put(Upload {
            name: "lamp-1.0.0+b5-00000000.ota",
            kind: &FileKind::Image,
            bytes: b"image",
            precondition: &Precondition::Absent,
            progress: &Recorder::default(),
        })
        .unwrap_err();
    assert!(
        matches!(err, PublishError::Renamed { ref stored, .. } if stored == "lamp-1.0.0.b5-00000000.ota"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Refused);
}

#[test]
fn github_release_of_122_assets_is_read_whole_stale_tree_conflicts_and_none_is_dropped() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let work = tempfile::tempdir().unwrap();
    let types: Vec<String> = (0..61).map(|i| format!("t{i:02}")).collect();
    let specs = |version: &str| -> Vec<ImageSpec> {
        types
            .iter()
            .map(|t| ImageSpec::new(t, version).size(256))
            .collect()
    };
    let tree = ReleaseTree::new(work.path().join("tree"));
    do_release(&tree, work.path(), "stable", &specs("1.0.0"), None);
    // The same release made again elsewhere: byte-identical, soon stale.
    let stale = ReleaseTree::new(work.path().join("stale"));
    do_release(&stale, work.path(), "stable", &specs("1.0.0"), None);
    publish(&tree, &mut gh_dest(&gh, "t0k", "r1")).unwrap();
    assert!(gh.latest().unwrap().assets.len() >= 122);

    // t60 moves ahead; its manifest is uploaded after the first 100 assets.
    do_release(
        &tree,
        work.path(),
        "stable",
        &[ImageSpec::new("t60", "1.1.0").size(256)],
        None,
    );
    publish(&tree, &mut gh_dest(&gh, "t0k", "r2")).unwrap();
    let r2 = gh.latest().unwrap();
    let position = r2
        .assets
        .iter()
        .position(|a| a.name == "t60.stable.manifest")
        .unwrap();
    assert!(position >= ota_test_servers::github::EMBEDDED_ASSETS_MAX);

    let err = publish(&stale, &mut gh_dest(&gh, "t0k", "r3")).unwrap_err();
    assert!(
        matches!(err, PublishError::ChannelAhead { ref name, .. } if name == "t60.stable.manifest"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Conflict);
    assert_eq!(gh.latest().unwrap().tag, "r2");

    // A tree holding only lamp/beta publishes: every device type keeps its manifest.
    let beta = lamp_beta_only_tree(work.path(), "beta");
    publish(&beta, &mut gh_dest(&gh, "t0k", "r4")).unwrap();
    let r4 = gh.latest().unwrap();
    assert_eq!(r4.tag, "r4");
    for t in &types {
        let name = format!("{t}.stable.manifest");
        assert!(r4.assets.iter().any(|a| a.name == name), "{name} dropped");
    }
    for t in ["t00", "t59", "t60"] {
        let url = gh.latest_download_url(&format!("{t}.stable.manifest"));
        device_check(&tree, &url, &latest_base(&gh));
    }
}

#[test]
fn github_latest_release_not_made_by_ota_sign_is_refused() {
    let (gh, work, tree) = github_serving_lamp();
    gh.add_release("app-v2.0", false, "Release notes of the companion app");
    release_lamp(&tree, work.path(), "1.1.0");
    let mark = gh.writes().len();
    let err = make_plan(&tree, &mut gh_dest(&gh, "t0k", "r2")).unwrap_err();
    assert!(
        matches!(err, PublishError::ForeignLatest { ref tag, .. } if tag == "app-v2.0"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Refused);
    assert!(err.to_string().contains("\"app-v2.0\""), "{err}");
    assert_eq!(gh.writes().len(), mark, "nothing written");

    // Releases ota-sign made (the marker in their body) are its own, drafts or not.
    let ours = FakeGitHub::start("acme", "fw", "t0k");
    ours.add_release("ota-1", false, &format!("notes\n\n{DRAFT_MARKER}"));
    let (_w, tree) = lamp_released();
    publish(&tree, &mut gh_dest(&ours, "t0k", "r1")).unwrap();
}

/// Rate-limit answers that each ask for no wait at all still end the publish: at most
/// five are waited out per request, so a host that always says "retry now" cannot keep
/// a publish looping.
#[test]
fn github_rate_limit_answers_per_request_are_bounded() {
    let (gh, work, tree) = github_serving_lamp();
    release_lamp(&tree, work.path(), "1.1.0");
    gh.inject(
        Requests::Writes,
        Fault::SecondaryRateLimit {
            status: 429,
            retry_after: Some(0),
        },
        100,
    );
    let limits = GitHubLimits {
        max_wait: Duration::from_secs(600),
        ..test_limits()
    };
    let before = gh.writes().len();
    let started = Instant::now();
    let err = publish(&tree, &mut gh_dest_with(&gh, "t0k", "r2", limits)).unwrap_err();
    assert!(matches!(err, PublishError::RateLimited { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The first write and its five retries were sent; nothing after them.
    let writes = gh.writes();
    assert_eq!(writes.len() - before, 6, "{:?}", &writes[before..]);
}
