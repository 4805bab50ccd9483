//! `ota-sign publish` to S3 as a real process, on the failures a new user meets first:
//! an unknown access key, no credentials at all, a bucket name S3 forbids. Each gets its
//! exit code at once, and the last two without a single request (a counting proxy stands
//! in front of s3s-fs).

mod common;

use std::time::{Duration, Instant};

use common::*;
use ota_test_servers::proxy::Proxy;
use ota_test_servers::s3::{self, S3sFs};

/// Where the instance-metadata service would be asked: a closed loopback port, so even a
/// build that wrongly asks it sends nothing off this machine.
fn no_metadata_service() -> String {
    format!("http://127.0.0.1:{}", ota_test_servers::free_port())
}

/// A tree with lamp 1.0.0 released to stable.
fn released() -> Scratch {
    let s = Scratch::new();
    let pk = s.keygen("release");
    s.package("release", pk, &Build::new("lamp", "1.0.0"), "lamp.ota");
    s.ok(&release_args(&["lamp.ota"]));
    s
}

/// s3s-fs with a `firmware` bucket (`None` as [`S3sFs::start`] says), a counting proxy in
/// front of it, and a scratch directory holding a release tree.
fn released_behind_a_proxy() -> Option<(S3sFs, Proxy, Scratch)> {
    let server = S3sFs::start(&["firmware"])?;
    let proxy = Proxy::start(&server.endpoint);
    Some((server, proxy, released()))
}

#[test]
fn an_unknown_access_key_is_bad_credentials() {
    let Some(server) = S3sFs::start(&["firmware"]) else {
        return;
    };
    let s = released();
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIANOTSIGNEDUP0000"),
        ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
        ("AWS_REGION", s3::REGION),
    ];
    let (_, err) = s.run_env(
        &s3_publish("s3://firmware/prod", &server.endpoint),
        &env,
        CREDENTIALS,
    );
    assert!(err.contains("credentials rejected"), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(!s3::dir_contains(&server.bucket_dir("firmware"), ".ota"));
}

#[test]
fn no_credentials_fail_at_once_naming_the_variables_and_send_nothing() {
    let Some((_server, proxy, s)) = released_behind_a_proxy() else {
        return;
    };
    let metadata = no_metadata_service();
    let env = [
        ("AWS_REGION", s3::REGION),
        ("AWS_METADATA_ENDPOINT", metadata.as_str()),
    ];
    let start = Instant::now();
    let (_, err) = s.run_env(
        &s3_publish("s3://firmware/prod", &proxy.url),
        &env,
        CREDENTIALS,
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(err.contains("--s3-instance-metadata"), "{err}");
    assert_eq!(proxy.requests(), [], "not one request");

    // An access key without its secret is no credentials either.
    let half = [
        ("AWS_REGION", s3::REGION),
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
        ("AWS_METADATA_ENDPOINT", metadata.as_str()),
    ];
    s.run_env(
        &s3_publish("s3://firmware/prod", &proxy.url),
        &half,
        CREDENTIALS,
    );
    assert_eq!(proxy.requests(), []);
}

#[test]
fn bucket_names_s3_forbids_are_usage_errors_before_any_request() {
    let Some((_server, proxy, s)) = released_behind_a_proxy() else {
        return;
    };
    let env = s3_env();
    for (to, rule) in [
        ("s3://ab", "3 to 63 characters"),
        ("s3://Bad_Bucket!/prod", "lowercase letters"),
        ("s3://fw..prod", "adjacent dots"),
    ] {
        let (_, err) = s.run_env(&s3_publish(to, &proxy.url), &env, USAGE);
        assert!(err.contains("not a valid S3 bucket name"), "{err}");
        assert!(err.contains(rule), "{to}: {err}");
    }
    assert_eq!(proxy.requests(), []);
}
