//! A check always ends, and one fault does not block a release: hostile or broken hosts
//! (endless interim answers, heads and bodies trickled, servers that start over from
//! byte 0 on every connection, corrupted transfers) against the simulator's agent, with
//! the deadlines made small so each test takes seconds.

mod support;

use std::time::Duration;

use ota_agent::agent::AgentError;
use ota_agent::download::DownloadError;
use ota_agent::http::HttpError;
use ota_agent::release_retry::MAX_RELEASE_FAILURES;
use ota_agent::status::CheckResult;
use ota_device_sim::device::VirtualDevice;
use ota_device_sim::simflash::FlashOp;
use support::*;

/// Start of `ota_1`, the slot a device running from `ota_0` installs into.
const UPDATE_SLOT: u32 = 0x1_0000 + SLOT_SIZE;

/// A host whose next manifest answer trickles its head (about 70 bytes) one byte every
/// 40 ms, and a device polling it.
fn manifest_head_trickled() -> (Host, VirtualDevice) {
    let (host, _, d) = serving_default_release();
    host.fault(
        MANIFEST_PATH,
        vec![Fault::TrickleHead(Duration::from_millis(40))],
    );
    (host, d)
}

/// A host whose next `times` answers for the image flip a bit 100 bytes before its end,
/// and a device polling it.
fn image_corrupted(times: usize) -> (Host, Release, VirtualDevice) {
    let (host, rel, d) = serving_default_release();
    host.fault(
        &image_path(&rel),
        vec![Fault::WrongByte(rel.ota.len() - 100); times],
    );
    (host, rel, d)
}

#[test]
fn endless_interim_answers_end_the_check() {
    let (host, rel, mut d) = serving_default_release();
    host.fault(MANIFEST_PATH, vec![Fault::EndlessInterim]);
    host.fault(&image_path(&rel), vec![Fault::EndlessInterim; 10]);
    let (result, took) = timed_check(&mut d);
    assert_eq!(
        result,
        Err(AgentError::Http(HttpError::TooManyInterimResponses))
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The image too: each attempt ends at the bound, and the download gives up.
    let (result, took) = timed_check(&mut d);
    assert!(
        matches!(
            result,
            Err(AgentError::Download(DownloadError::GaveUp { .. }))
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_head_trickled_byte_by_byte_ends_at_the_head_timeout() {
    let (host, _, mut d) = serving_default_release();
    // Each byte comes well within the per-read timeout.
    host.fault(
        MANIFEST_PATH,
        vec![Fault::TrickleHead(Duration::from_millis(40))],
    );
    d.config.retry.head_timeout_ms = 1_000;
    let (result, took) = timed_check(&mut d);
    assert_eq!(result, Err(AgentError::Http(HttpError::Timeout)));
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(1_800)).contains(&took),
        "{took:?}"
    );
}

#[test]
fn the_manifest_fetch_has_its_own_deadline() {
    let (_host, mut d) = manifest_head_trickled();
    d.config.retry.head_timeout_ms = 60_000;
    d.config.retry.manifest_deadline_ms = 1_000;
    let (result, took) = timed_check(&mut d);
    assert_eq!(result, Err(AgentError::Http(HttpError::Timeout)));
    assert!(took < Duration::from_millis(1_800), "{took:?}");
}

#[test]
fn the_check_deadline_holds_inside_a_body_read() {
    let (host, rel, mut d) = serving_default_release();
    // 1 KiB, then nothing for 5 s, far below the 20 s per-read timeout.
    host.fault(
        &image_path(&rel),
        vec![Fault::Slow(Duration::from_secs(5)); 4],
    );
    d.config.retry.timeout_ms = 20_000;
    d.config.retry.check_deadline_ms = 1_500;
    let (result, took) = timed_check(&mut d);
    assert_eq!(result, Err(AgentError::Download(DownloadError::Deadline)));
    assert!(took < Duration::from_millis(2_500), "{took:?}");
    assert!(d.config.retry.worst_case_check_ms() == 1_500);
}

#[test]
fn starts_from_zero_and_sector_erases_are_bounded_per_check() {
    let (host, rel, mut d) = serving_default_release();
    // Each connection drops a little later than the last and answers Range with 200:
    // every attempt makes progress, so the attempt bound alone never ends this.
    let first = rel.ota.len() / 4;
    let mut faults = vec![Fault::DropAfter(first)];
    faults.extend((1..40).map(|i| Fault::IgnoreRangeDropAfter(first + 100 * i)));
    host.fault(&image_path(&rel), faults);
    let policy = d.config.retry;
    let (_, (result, erases)) = boot_until_running(&mut d, |s| {
        let before = s.agent.flash_mut().log().len();
        let result = s.check();
        let erases = s.agent.flash_mut().log()[before..]
            .iter()
            .filter(|op| matches!(op, FlashOp::Erase { from, .. } if *from >= UPDATE_SLOT))
            .count() as u32;
        (result, erases)
    });
    assert_eq!(
        result,
        Err(AgentError::Download(DownloadError::TooManyRestarts {
            restarts: u16::from(policy.max_restarts)
        }))
    );
    let sectors = (rel.app.len() as u32).div_ceil(4096);
    assert!(erases > 0);
    assert!(
        erases <= policy.max_erases_per_check(sectors),
        "{erases} erases, bound {}",
        policy.max_erases_per_check(sectors)
    );
    // A later check tries again and, once the host behaves, installs.
    host.fault(&image_path(&rel), Vec::new());
    assert_updates_to(&mut d, "1.1.0");
}

#[test]
fn a_corrupted_transfer_is_retried_at_the_next_check() {
    let (_host, _, mut d) = image_corrupted(1);
    let (_, (first, second)) = boot_until_running(&mut d, |s| (s.check(), s.check()));
    assert!(first.is_err(), "{first:?}");
    // The manifest did not change: its cached ETag must not hide the release.
    assert_eq!(
        second,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    let (running, ()) = boot_until_running(&mut d, |_| ());
    assert_eq!(running, v("1.1.0"));
}

#[test]
fn a_release_that_always_fails_is_retried_with_backoff_then_given_up() {
    let (host, rel, mut d) = image_corrupted(50);
    let (_, results) =
        boot_until_running(&mut d, |s| (1..=14).map(|_| s.check()).collect::<Vec<_>>());
    let tried: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i + 1)
        .collect();
    // The next check, then one skipped, then two skipped at most: within three checks.
    assert_eq!(tried, [1, 2, 4, 7, 10], "{results:?}");
    assert_eq!(tried.len(), usize::from(MAX_RELEASE_FAILURES));
    assert_eq!(host.requests_for(&image_path(&rel)), tried.len());
    // Between tries, and after giving up, the manifest is a cheap 304.
    for check in [3, 5, 6, 8, 9, 11, 12, 13, 14] {
        assert_eq!(
            results[check - 1],
            Ok(CheckResult::NotModified),
            "check {check}"
        );
    }
}
