//! Publishes after the first change the latest GitHub release in place: request counts,
//! what devices see meanwhile, a concurrent publisher between planning and the swap, and
//! what a killed publish leaves for the next one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ota_format::{Manifest, TrustedKey, TrustedKeys};
use ota_test_servers::github::FakeGitHub;
use ota_test_servers::http;
use ota_test_servers::images::{self, ImageSpec};

use super::github::{GitHubDestination, GitHubLimits};
use super::github_tests::latest_base;
use super::host_tests::{Recorder, device_check, do_release, gh_options, publish, test_limits};
use super::plan::{Plan, execute, make_plan};
use super::{FailureKind, PublishError};
use crate::repo::ReleaseTree;

/// A destination that asks for no tag: the latest release is changed in place when it can be.
fn in_place(gh: &FakeGitHub, limits: GitHubLimits) -> GitHubDestination {
    let mut options = gh_options(gh, "t0k", "unused", limits);
    options.tag = None;
    GitHubDestination::new("acme", "fw", options).unwrap()
}

/// Names in the latest release that are ota-sign temporaries.
fn temporaries(gh: &FakeGitHub) -> Vec<String> {
    let latest = gh.latest().unwrap();
    let names = latest.assets.into_iter().map(|a| a.name);
    names.filter(|n| n.contains(".ota-sign-tmp-")).collect()
}

/// Makes every temporary asset in the latest release look as if its publish began in 1970.
fn age_temporaries(gh: &FakeGitHub) {
    for a in gh.latest().unwrap().assets {
        let Some((target, _)) = a.name.split_once(".ota-sign-tmp-") else {
            continue;
        };
        let url = format!("{}/repos/acme/fw/releases/assets/{}", gh.api_url, a.id);
        let body = format!(r#"{{"name":"{target}.ota-sign-tmp-1-1-0"}}"#);
        let auth = [("Authorization", "Bearer t0k")];
        let r = http::request("PATCH", &url, &auth, body.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
    }
}

/// 30 device types (`t00`..`t29`) at 1.0.0 on stable, published as the first release.
fn thirty_published(gh: &FakeGitHub) -> (tempfile::TempDir, ReleaseTree, Vec<ImageSpec>) {
    let work = tempfile::tempdir().unwrap();
    let specs: Vec<ImageSpec> = (0..30)
        .map(|i| ImageSpec::new(&format!("t{i:02}"), "1.0.0").size(256))
        .collect();
    let tree = ReleaseTree::new(work.path().join("tree"));
    do_release(&tree, work.path(), "stable", &specs, None);
    publish(&tree, &mut in_place(gh, test_limits())).unwrap();
    (work, tree, specs)
}

/// Releases one 256-byte image of `device_type` at `version` on stable in `tree`.
fn release_on_stable(tree: &ReleaseTree, work: &Path, device_type: &str, version: &str) {
    let spec = ImageSpec::new(device_type, version).size(256);
    do_release(tree, work, "stable", &[spec], None);
}

/// [`thirty_published`], and a second publisher's tree byte-identical to it so far.
fn thirty_published_and_a_second_tree(
    gh: &FakeGitHub,
) -> (tempfile::TempDir, ReleaseTree, ReleaseTree) {
    let (work, tree, specs) = thirty_published(gh);
    let theirs = ReleaseTree::new(work.path().join("theirs"));
    do_release(&theirs, work.path(), "stable", &specs, None);
    (work, tree, theirs)
}

/// The race of the concurrent-publisher tests: over [`thirty_published_and_a_second_tree`]
/// we release t07 1.1.0 and plan its publish; before we execute the plan, the second
/// publisher releases `their_device_type` at `their_version` and publishes. Returns the
/// work dir, our tree, theirs, our destination and our plan.
fn overtaken_after_planning(
    gh: &FakeGitHub,
    their_device_type: &str,
    their_version: &str,
) -> (
    tempfile::TempDir,
    ReleaseTree,
    ReleaseTree,
    GitHubDestination,
    Plan,
) {
    let (work, tree, theirs) = thirty_published_and_a_second_tree(gh);
    release_on_stable(&tree, work.path(), "t07", "1.1.0");
    let mut ours = in_place(gh, test_limits());
    let plan = make_plan(&tree, &mut ours).unwrap();
    release_on_stable(&theirs, work.path(), their_device_type, their_version);
    publish(&theirs, &mut in_place(gh, test_limits())).unwrap();
    (work, tree, theirs, ours, plan)
}

/// Polls `name` like a device until `stop`: every manifest it gets verifies and its image
/// is there; counts the 404s (the swap's window) in `missing`.
fn poll_like_a_device(
    gh: &FakeGitHub,
    name: &str,
    stop: Arc<AtomicBool>,
    missing: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<usize> {
    let url = gh.latest_download_url(name);
    let base = latest_base(gh);
    std::thread::spawn(move || {
        let keys = [TrustedKey::new(images::public_key(1))];
        let mut checks = 0;
        while !stop.load(Ordering::SeqCst) && checks < 10_000 {
            checks += 1;
            let (resp, _) = http::get_following(&url, &[]).unwrap();
            if resp.status == 404 {
                missing.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            assert_eq!(resp.status, 200, "{url}");
            let verified = Manifest::verify(&resp.body, &TrustedKeys::new(&keys));
            let m = *verified.expect("a whole, signed manifest").manifest();
            let image_url = format!("{base}/{}", m.image_name);
            let (img, _) = http::get_following(&image_url, &[]).unwrap();
            assert_eq!(img.status, 200, "{image_url} missing");
            assert_eq!(img.body.len() as u64, u64::from(m.image_file_size));
        }
        checks
    })
}

#[test]
fn github_in_place_publish_of_one_changed_manifest_of_30_sends_ten_writes() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let first = gh.writes().len();
    let (work, tree, _) = thirty_published(&gh);
    let whole = gh.writes().len() - first;
    // The first publish: create, 30 images, 30 manifests, index.json, SHA256SUMS, publish.
    assert_eq!(whole, 64);
    let release = gh.latest().unwrap();

    release_on_stable(&tree, work.path(), "t07", "1.1.0");
    let stop = Arc::new(AtomicBool::new(false));
    let missing = Arc::new(AtomicUsize::new(0));
    let device = poll_like_a_device(&gh, "t07.stable.manifest", stop.clone(), missing.clone());
    let interval = Duration::from_millis(100);
    let limits = GitHubLimits {
        write_interval: interval,
        ..test_limits()
    };
    let mark = gh.writes().len();
    publish(&tree, &mut in_place(&gh, limits)).unwrap();
    stop.store(true, Ordering::SeqCst);
    let checks = device.join().unwrap();
    let logged = gh.writes()[mark..].to_vec();
    // Writes are paced, except the rename that ends a delete's 404 window.
    for pair in logged.windows(2) {
        let gap = pair[1].at - pair[0].at;
        if pair[1].method == "PATCH" {
            assert!(gap < interval / 2, "{gap:?}: {pair:?}");
        } else {
            assert!(
                gap + Duration::from_millis(30) >= interval,
                "{gap:?}: {pair:?}"
            );
        }
    }
    let writes: Vec<String> = logged
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    // The new image, then for t07's manifest, index.json and SHA256SUMS each: upload
    // under a temporary name, delete the replaced asset, rename.
    assert_eq!(writes.len(), 1 + 3 * 3, "{writes:#?}");
    assert!(
        writes
            .iter()
            .all(|w| !w.contains("/releases?") && !w.ends_with("/releases")),
        "no new release: {writes:#?}"
    );
    eprintln!(
        "in place: {} writes (whole set: {whole}); device checks {checks}, 404s {}",
        writes.len(),
        missing.load(Ordering::SeqCst)
    );

    let latest = gh.latest().unwrap();
    assert_eq!(latest.id, release.id, "the same release, changed in place");
    assert!(temporaries(&gh).is_empty());
    for t in ["t00", "t07", "t29"] {
        let url = gh.latest_download_url(&format!("{t}.stable.manifest"));
        device_check(&tree, &url, &latest_base(&gh));
    }
    // A device that read the old manifest a moment ago still finds its image.
    assert!(
        latest
            .assets
            .iter()
            .any(|a| a.name.starts_with("t07-1.0.0"))
    );
    assert!(
        publish(&tree, &mut in_place(&gh, test_limits()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn github_in_place_swap_after_a_concurrent_change_exits_7_and_keeps_theirs() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    // Between our plan and our swap, the other publisher moves t07 on.
    let (_work, _tree, theirs, mut ours, plan) = overtaken_after_planning(&gh, "t07", "1.2.0");

    let err = execute(&plan, &mut ours, &Recorder::default()).unwrap_err();
    assert!(
        matches!(err, PublishError::Concurrent(ref name) if name == "t07.stable.manifest"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::Conflict, "exit 7");
    let url = gh.latest_download_url("t07.stable.manifest");
    device_check(&theirs, &url, &latest_base(&gh));
    assert!(
        temporaries(&gh).is_empty(),
        "our temporary asset is deleted"
    );
}

#[test]
fn github_in_place_publish_killed_mid_swap_is_finished_by_the_next_publish() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let (work, tree, _) = thirty_published(&gh);
    let old_manifest = tree.read("t07.stable.manifest").unwrap().unwrap();
    let url = gh.latest_download_url("t07.stable.manifest");
    let release_t07 = |version: &str| release_on_stable(&tree, work.path(), "t07", version);

    // Killed after uploading the temporary manifest (write 2), before deleting the live
    // one (write 3): devices keep the old manifest, the temporary is left behind.
    release_t07("1.1.0");
    gh.die_at_write(gh.writes().len() + 3);
    let err = publish(&tree, &mut in_place(&gh, test_limits())).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
    gh.revive();
    assert_eq!(temporaries(&gh).len(), 1);
    let (resp, _) = http::get_following(&url, &[]).unwrap();
    assert_eq!(resp.body, old_manifest, "the live manifest is untouched");
    // Young, it may be a concurrent publish's about to be swapped in: left alone.
    publish(&tree, &mut in_place(&gh, test_limits())).unwrap();
    assert_eq!(temporaries(&gh).len(), 1);
    device_check(&tree, &url, &latest_base(&gh));
    // Ten minutes on, it is a leftover: deleted, and nothing else is written.
    age_temporaries(&gh);
    let mark = gh.writes().len();
    let plan = make_plan(&tree, &mut in_place(&gh, test_limits())).unwrap();
    assert_eq!(plan.leftovers.len(), 1, "{:?}", plan.leftovers);
    assert_eq!(plan.uploads().count(), 0);
    publish(&tree, &mut in_place(&gh, test_limits())).unwrap();
    let writes = gh.writes();
    assert_eq!(writes.len() - mark, 1);
    assert_eq!(writes[mark].method, "DELETE");
    assert!(temporaries(&gh).is_empty());

    // Killed after deleting the live manifest (write 3), before the rename (write 4):
    // devices get 404 until the next publish renames the temporary into place.
    release_t07("1.2.0");
    gh.die_at_write(gh.writes().len() + 4);
    let err = publish(&tree, &mut in_place(&gh, test_limits())).unwrap_err();
    assert_eq!(err.kind(), FailureKind::Network, "{err}");
    gh.revive();
    assert_eq!(http::get_following(&url, &[]).unwrap().0.status, 404);
    assert_eq!(temporaries(&gh).len(), 1);
    let mark = gh.writes().len();
    publish(&tree, &mut in_place(&gh, test_limits())).unwrap();
    let writes: Vec<String> = gh.writes()[mark..]
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    // The rename into place, then index.json and SHA256SUMS: no upload of the manifest.
    assert_eq!(writes.len(), 1 + 2 * 3, "{writes:#?}");
    assert!(writes[0].starts_with("PATCH"), "{writes:#?}");
    assert!(temporaries(&gh).is_empty());
    device_check(&tree, &url, &latest_base(&gh));
}

#[test]
fn github_in_place_publishes_of_two_device_types_at_once_both_reach_the_inventory() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    // Another device type moves on between our plan and our swaps: our manifest goes in,
    // our index.json and SHA256SUMS meet theirs, are merged again and swapped.
    let (_work, tree, theirs, mut ours, plan) = overtaken_after_planning(&gh, "t08", "1.2.0");
    execute(&plan, &mut ours, &Recorder::default()).unwrap();

    let (sums, _) = http::get_following(&gh.latest_download_url("SHA256SUMS"), &[]).unwrap();
    let sums = String::from_utf8(sums.body).unwrap();
    assert!(sums.contains("t07-1.1.0"), "{sums}");
    assert!(sums.contains("t08-1.2.0"), "{sums}");
    device_check(
        &tree,
        &gh.latest_download_url("t07.stable.manifest"),
        &latest_base(&gh),
    );
    let t08_url = gh.latest_download_url("t08.stable.manifest");
    device_check(&theirs, &t08_url, &latest_base(&gh));
    assert!(temporaries(&gh).is_empty());
}
