//! A server that misbehaves on purpose: the download resumes, restarts or fails
//! cleanly, and the device keeps running its firmware throughout.

mod support;

use std::time::Duration;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::download::{DownloadError, Transient};
use ota_agent::http::HttpError;
use ota_agent::install::InstallError;
use ota_agent::status::CheckResult;
use ota_format::FormatError;
use support::*;

/// Publishes the default release with `faults` on its image, checks once and reboots.
fn update_with(
    faults: Vec<Fault>,
) -> (
    Host,
    Release,
    Result<CheckResult, AgentError>,
    ota_format::Version,
) {
    let (host, rel, mut d) = serving_default_release();
    host.fault(&image_path(&rel), faults);
    let (r, running) = check_and_reboot(&mut d);
    (host, rel, r, running)
}

/// [`update_with`], which must install the release.
#[track_caller]
fn updates_despite(faults: Vec<Fault>) -> (Host, Release) {
    let (host, rel, r, running) = update_with(faults);
    assert_eq!(
        r,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    assert_eq!(running, v("1.1.0"));
    (host, rel)
}

fn ranges(host: &Host, rel: &Release) -> Vec<(Option<String>, u16)> {
    host.log()
        .into_iter()
        .filter(|served| served.path == image_path(rel))
        .map(|served| (served.range, served.status))
        .collect()
}

#[test]
fn drops_at_many_offsets_resume_with_range() {
    let len = release(&Spec::default()).ota.len();
    // Every offset class: inside the signed header, at its end, in the payload, near the end.
    let mut offsets = vec![0, 1, 100, 255, 256, 257, 1024, len - 2, len - 1];
    offsets.extend((1..16).map(|i| i * len / 16));
    for at in offsets {
        let (host, rel, r, running) = update_with(vec![Fault::DropAfter(at)]);
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.1.0")
            }),
            "drop at {at}"
        );
        assert_eq!(running, v("1.1.0"));
        let log = ranges(&host, &rel);
        let expected_resume = if at == 0 {
            None
        } else {
            Some(format!("bytes={at}-"))
        };
        assert_eq!(log.len(), 2, "drop at {at}: {log:?}");
        assert_eq!(log[1].0, expected_resume, "drop at {at}");
        assert_eq!(log[1].1, if at == 0 { 200 } else { 206 });
    }
}

#[test]
fn many_drops_in_one_download() {
    let faults = (0..12).map(|_| Fault::DropAfter(1500)).collect();
    let (host, rel) = updates_despite(faults);
    let log = ranges(&host, &rel);
    assert_eq!(log.len(), 13);
    for (i, (range, _)) in log.iter().enumerate().skip(1) {
        assert_eq!(
            range.as_deref(),
            Some(format!("bytes={}-", i * 1500).as_str())
        );
    }
}

#[test]
fn full_answer_to_a_range_request_restarts_from_zero() {
    let (host, rel) = updates_despite(vec![Fault::DropAfter(9000), Fault::IgnoreRange]);
    let log = ranges(&host, &rel);
    assert_eq!(log, vec![(None, 200), (Some("bytes=9000-".into()), 200)]);
}

#[test]
fn truncated_body_resumes() {
    let (host, rel) = updates_despite(vec![Fault::Truncate(7777)]);
    assert_eq!(ranges(&host, &rel)[1].0.as_deref(), Some("bytes=7777-"));
}

#[test]
fn body_longer_than_declared_is_cut_at_its_length() {
    updates_despite(vec![Fault::Longer(5000)]);
}

#[test]
fn slow_server_within_the_timeout_completes() {
    updates_despite(vec![Fault::Slow(Duration::from_millis(15))]);
}

#[test]
fn stalled_server_times_out_and_the_download_resumes() {
    // Pauses longer than the 2 s read timeout after the first KiB.
    let (host, rel) = updates_despite(vec![Fault::Slow(Duration::from_millis(2600))]);
    // Requests are logged when their answer ends: the stalled one last.
    let log = ranges(&host, &rel);
    assert_eq!(log.len(), 2);
    assert!(log.contains(&(Some("bytes=1024-".into()), 206)), "{log:?}");
}

#[test]
fn silent_server_times_out_then_service_resumes() {
    updates_despite(vec![Fault::Silent(Duration::from_millis(2600))]);
}

#[test]
fn server_errors_are_retried_then_given_up() {
    let (_, _, r, running) = update_with(vec![Fault::Status(503); 10]);
    assert_eq!(
        r,
        Err(AgentError::Download(DownloadError::GaveUp {
            attempts: 4,
            last: Transient::Status(503)
        }))
    );
    assert_eq!(running, v("1.0.0"));
}

#[test]
fn wrong_bytes_are_refused_and_the_device_keeps_running() {
    let (host, rel, mut sensor) = serving_default_release();
    let d = &mut sensor;
    let at = rel.ota.len() - 10;
    host.fault(&image_path(&rel), vec![Fault::WrongByte(at); 3]);
    let (_, (first, second, third, status)) =
        boot_until_running(d, |s| (s.check(), s.check(), s.check(), s.agent.status()));
    assert!(
        matches!(
            first,
            Err(AgentError::Download(DownloadError::Install(
                InstallError::Format(FormatError::PayloadDigestMismatch)
                    | InstallError::Decompress(_)
                    | InstallError::OutputTooShort
                    | InstallError::OutputTooLong
            ))) | Err(AgentError::Install(InstallError::Format(
                FormatError::PayloadDigestMismatch
            )))
        ),
        "{first:?}"
    );
    // A corrupted transfer is not a verdict: the next check tries again (and meets the
    // same wrong byte), the one after waits (backoff) behind a cheap 304.
    assert_eq!(second, first);
    assert_eq!(third, Ok(CheckResult::NotModified));
    assert_eq!(status.installed_version, v("1.0.0"));
    assert!(status.last_error.is_some());
    let (running, ()) = boot_until_running(d, |_| ());
    assert_eq!(running, v("1.0.0"));
}

#[test]
fn unreachable_host_is_reported() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    d.config.manifest_url = "http://127.0.0.1:1/fw/sensor.stable.manifest".into();
    let (_, (r, status)) = boot_until_running(d, |s| (s.check(), s.agent.status()));
    assert_eq!(r, Err(AgentError::Http(HttpError::Connect)));
    assert_eq!(status.last_check.unwrap().result, CheckResult::Failed);
}

#[test]
fn redirects_across_hosts_are_followed() {
    let origin = Host::start();
    let cdn = Host::start();
    let d = &mut device(&origin, RollbackDisabled);
    let rel = release(&Spec::default());
    cdn.publish(&rel);
    // Like GitHub Releases: two redirects, the second to another host.
    let hop = origin.url("/hop/manifest");
    origin.fault(MANIFEST_PATH, vec![Fault::Redirect(hop.clone()); 2]);
    origin.fault(
        "/hop/manifest",
        vec![Fault::Redirect(cdn.url(MANIFEST_PATH)); 2],
    );
    origin.fault(
        &image_path(&rel),
        vec![Fault::Redirect(cdn.url(&image_path(&rel)))],
    );
    assert_updates_to(d, "1.1.0");
    // The image was asked for next to the configured manifest URL, not the CDN's.
    assert_eq!(origin.requests_for(&image_path(&rel)), 1);
}

#[test]
fn redirect_loops_end() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    host.fault(
        MANIFEST_PATH,
        vec![Fault::Redirect(host.url(MANIFEST_PATH)); 20],
    );
    let (_, r) = boot_until_running(d, |s| s.check());
    assert_eq!(r, Err(AgentError::Http(HttpError::TooManyRedirects)));
}
