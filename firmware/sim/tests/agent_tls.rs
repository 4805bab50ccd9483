//! The agent over https, against Debian's nginx with a throwaway certificate: the
//! device's own HTTP client and TLS 1.3 session (embedded-tls), as the ESP32 firmware
//! runs them. Hosts that serve only https (GitHub Releases) are reachable this way;
//! nothing about trust changes, since signatures decide what is installed.
//!
//! nginx or openssl missing is a failure with the install command, unless
//! `OTA_SKIP_SERVER_TESTS=1` (then nginx is not started at all).

mod support;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::{RollbackDisabled, RollbackEnabled};
use ota_agent::http::HttpError;
use ota_agent::status::CheckResult;
use ota_test_servers::nginx::Nginx;
use support::*;

/// nginx serving the default release over HTTP and TLS from a fresh directory (kept
/// alive by the returned handle), or `None` when server tests are skipped.
fn nginx_with_release() -> Option<(tempfile::TempDir, Nginx, String)> {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::serve_tls(dir.path())?;
    let tls = nginx.tls_url.clone().expect("serve_tls listens for TLS");
    publish_in_dir(dir.path(), &release(&Spec::default()), None);
    Some((dir, nginx, tls))
}

#[test]
fn update_over_https_then_idle_checks_are_304s() {
    let Some((_dir, _nginx, tls)) = nginx_with_release() else {
        return;
    };
    for mode in [RollbackDisabled, RollbackEnabled] {
        let mut d = device_at(&format!("{tls}{MANIFEST_PATH}"), mode, &app("1.0.0"));
        assert_updates_to(&mut d, "1.1.0");
        // Confirmed on the trial boot; then nothing new, answered 304 over TLS as well.
        let (_, (first, second)) = boot_until_running(&mut d, |s| (s.check(), s.check()));
        assert_eq!(first, Ok(CheckResult::UpToDate));
        assert_eq!(second, Ok(CheckResult::NotModified));
    }
}

#[test]
fn redirect_from_http_to_https_is_followed_like_github_releases() {
    let Some((_dir, nginx, _)) = nginx_with_release() else {
        return;
    };
    // The manifest and the image it names (resolved against this URL, not against where
    // the redirect led) both answer 302 to the https port.
    let url = format!("{}/via-tls{MANIFEST_PATH}", nginx.url);
    let mut d = device_at(&url, RollbackDisabled, &app("1.0.0"));
    assert_updates_to(&mut d, "1.1.0");
    let log = std::fs::read_to_string(nginx.access_log()).unwrap();
    let redirects = log.lines().filter(|l| l.starts_with("302 ")).count();
    assert!(redirects >= 2, "manifest and image both redirected:\n{log}");
}

#[test]
fn https_to_a_server_that_does_not_speak_tls_fails_and_changes_nothing() {
    let Some((_dir, nginx, _)) = nginx_with_release() else {
        return;
    };
    // The plain port, addressed as https: nginx answers the ClientHello with an HTTP 400.
    let url = format!(
        "{}{MANIFEST_PATH}",
        nginx.url.replace("http://", "https://")
    );
    let mut d = device_at(&url, RollbackDisabled, &app("1.0.0"));
    let (running, result) = boot_until_running(&mut d, |s| s.check());
    assert!(
        matches!(
            result,
            Err(AgentError::Http(HttpError::Tls | HttpError::ConnectionLost))
        ),
        "{result:?}"
    );
    assert_eq!(running, v("1.0.0"));
    let (running, ()) = boot_until_running(&mut d, |_| ());
    assert_eq!(running, v("1.0.0"));
}
