//! `ota-sign fleet status` as a real process over logs in the three formats hosts write
//! (nginx combined, S3 server access, CloudFront standard), with a release tree and the
//! fake GitHub; the HTML report rendered in real headless Chromium.
//!
//! Chromium missing is a failure with the install command, unless
//! `OTA_SKIP_BROWSER_TESTS=1`.
//!
//! Longer than our usual file: one test binary for the whole command, because every CLI
//! test binary links the simulator, the test servers and the CLI's dependencies again,
//! and the log fixtures here are shared by every test.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::*;
use ota_test_servers::github::FakeGitHub;
use serde_json::Value;

/// 2026-12-06 00:00:00Z
const T0: i64 = 1_796_515_200;

fn ua(id: &str, version: &str, slot: u8, outcome: &str) -> String {
    format!("ota-agent/0.1.0 (i={id};t=lamp;c=stable;v={version};s={slot};r={outcome})")
}

fn clf_time(t: i64) -> String {
    let day = t.div_euclid(86_400) - T0 / 86_400 + 6;
    let s = t.rem_euclid(86_400);
    format!(
        "{day:02}/Dec/2026:{:02}:{:02}:{:02} +0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn nginx(t: i64, path: &str, status: u16, ua: &str) -> String {
    format!(
        "192.0.2.7 - - [{}] \"GET {path} HTTP/1.1\" {status} 0 \"-\" \"{ua}\"\n",
        clf_time(t)
    )
}

/// A record shaped like the examples of AWS's "Amazon S3 server access log format".
fn s3(t: i64, key: &str, status: u16, ua: &str) -> String {
    format!(
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be fleet-bucket [{}] \
         192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT {key} \"GET /fleet-bucket/{key} HTTP/1.1\" \
         {status} - 368 368 7 - \"-\" \"{ua}\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3= \
         SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader fleet-bucket.s3.eu-west-1.amazonaws.com TLSv1.2 - -\n",
        clf_time(t)
    )
}

/// A CloudFront standard log line (33 fields, User-Agent URL-encoded).
fn cloudfront(t: i64, path: &str, status: u16, ua: &str) -> String {
    let s = t.rem_euclid(86_400);
    format!(
        "2026-12-06\t{:02}:{:02}:{:02}\tFRA56-P1\t420\t192.0.2.9\tGET\td111111abcdef8.cloudfront.net\t{path}\t{status}\t-\t{}\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms==\tupdates.example\thttps\t180\t0.002\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\tHTTP/1.1\t-\t-\t40000\t0.002\tHit\tapplication/octet-stream\t368\t-\t-\n",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ua.replace(' ', "%20")
    )
}

/// Four lamps checking every minute for ten minutes, on three hosts' logs:
/// * `a` updates to 1.1.0 (nginx);
/// * `b` downloads 1.1.0, rolls back, says `pf-1.1.0` (S3);
/// * `c` is outside the rollout (CloudFront, gzip);
/// * `d` stops after two checks (nginx).
///
/// Plus a browser, a TLS probe and binary junk, which are counted and skipped.
fn fleet_logs(s: &Scratch) {
    let manifest = "/fleet/lamp.stable.manifest";
    let image = "lamp-1.1.0-0a1b2c3d.ota";
    let mut access = String::new();
    let mut s3_log = String::new();
    let mut cf = String::from("#Version: 1.0\n");
    cf.push_str(&format!("#Fields: {}\n", CLOUDFRONT_FIELDS));
    for k in 0..10i64 {
        let t = T0 + k * 60;
        let (a_version, a_slot) = if k < 4 { ("1.0.0", 0) } else { ("1.1.0", 1) };
        access.push_str(&nginx(t, manifest, 304, &ua("a", a_version, a_slot, "up")));
        if k == 3 {
            access.push_str(&nginx(
                t + 2,
                &format!("/fleet/{image}"),
                200,
                &ua("a", "1.0.0", 0, "up"),
            ));
        }
        let b_outcome = if k < 5 { "up" } else { "pf-1.1.0" };
        s3_log.push_str(&s3(
            t + 1,
            "fleet/lamp.stable.manifest",
            304,
            &ua("b", "1.0.0", 0, b_outcome),
        ));
        if k == 3 {
            s3_log.push_str(&s3(
                t + 3,
                &format!("fleet/{image}"),
                200,
                &ua("b", "1.0.0", 0, "up"),
            ));
        }
        cf.push_str(&cloudfront(
            t + 2,
            manifest,
            304,
            &ua("c", "1.0.0", 0, "nr-9000"),
        ));
        if k < 2 {
            access.push_str(&nginx(t + 5, manifest, 304, &ua("d", "1.0.0", 0, "up")));
        }
    }
    access.push_str(&nginx(T0 + 30, "/", 200, "Mozilla/5.0 (X11; Linux x86_64)"));
    access.push_str(
        "192.0.2.99 - - [06/Dec/2026:00:00:31 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\"\n",
    );
    access.push_str("this is not a log line\n");
    std::fs::create_dir_all(s.path("logs/s3/2026-12-06")).unwrap();
    s.write("logs/access.log", access.as_bytes());
    s.write(
        "logs/s3/2026-12-06/2026-12-06-00-10-00-EXAMPLE",
        s3_log.as_bytes(),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(cf.as_bytes()).unwrap();
    s.write(
        "logs/EDFDVBD6EXAMPLE.2026-12-06-00.a1b2c3d4.gz",
        &gz.finish().unwrap(),
    );
    let mut junk = vec![0xffu8, 0xfe, 0x00, b'\n'];
    junk.extend_from_slice(&[b'x'; 70_000]);
    s.write("logs/junk.bin", &junk);
}

const CLOUDFRONT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
    cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type \
    x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol \
    ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields \
    c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len \
    sc-range-start sc-range-end";

/// The first entry of the report's array `list` that `wanted` accepts.
fn entry<'a>(report: &'a Value, list: &str, wanted: impl Fn(&Value) -> bool) -> &'a Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| wanted(e))
        .unwrap_or_else(|| panic!("no such entry in {list}: {report:#}"))
}

fn device<'a>(report: &'a Value, id: &str) -> &'a Value {
    entry(report, "devices", |d| d["id"] == id)
}

fn release<'a>(report: &'a Value, version: &str) -> &'a Value {
    entry(report, "releases", |r| r["version"] == version)
}

#[test]
fn three_log_formats_make_one_fleet_report() {
    let s = Scratch::new();
    fleet_logs(&s);
    let report = s.json(&["fleet", "status", "logs"]);

    assert_eq!(report["devices"].as_array().unwrap().len(), 4, "{report:#}");
    let a = device(&report, "a");
    assert_eq!(
        (&a["version"], &a["slot"], &a["silent"]),
        (&"1.1.0".into(), &"1".into(), &false.into())
    );
    let b = device(&report, "b");
    assert_eq!(b["version"], "1.0.0");
    assert_eq!(b["failed_releases"], serde_json::json!(["1.1.0"]));
    assert_eq!(b["last_result_text"], "rolled back from 1.1.0");
    assert_eq!(device(&report, "c")["last_result"], "nr-9000");
    let d = device(&report, "d");
    assert_eq!(d["silent"], true, "{d:#}");
    assert_eq!(d["last_seen"], T0 + 65);
    assert_eq!(report["interval_seconds"], 60);

    let new = release(&report, "1.1.0");
    assert_eq!(new["running"], 1);
    assert_eq!(
        new["downloaded_not_running"], 1,
        "b downloaded and rolled back"
    );
    assert_eq!(new["failed"], 1);
    assert_eq!(new["devices"], 4);
    assert_eq!(new["in_rollout"], 3, "c said it is outside the rollout");
    assert_eq!(new["silent"], 1);
    assert_eq!(release(&report, "1.0.0")["running"], 3);

    // 10+1+2 (a, d) + 10+1 (b) + 10 (c) device requests; the browser is another
    // client; the TLS probe, the prose, and both lines of junk are malformed.
    let lines = &report["lines"];
    assert_eq!(lines["device_requests"], 34, "{lines}");
    assert_eq!(lines["other_clients"], 1, "{lines}");
    assert_eq!(lines["malformed"], 4, "{lines}");

    // The rollout over time: 1.1.0 from none to one device.
    let series = report["timeline"].as_array().unwrap();
    let new_series = series.iter().find(|s| s["version"] == "1.1.0").unwrap();
    let counts = new_series["devices"].as_array().unwrap();
    assert_eq!(
        (counts.first().unwrap(), counts.last().unwrap()),
        (&0.into(), &1.into())
    );

    // The same as tables.
    let text = s.ok(&["fleet", "status", "logs"]);
    assert!(text.starts_with("4 devices, 1 silent"), "{text}");
    assert!(
        text.contains("34 device requests, 1 from other clients, 4 malformed"),
        "{text}"
    );
    let b_row = text.lines().find(|l| l.starts_with("b ")).unwrap();
    assert!(
        b_row.contains("rolled back from 1.1.0") && b_row.ends_with("1.1.0"),
        "{b_row}"
    );
}

#[test]
fn a_named_format_skips_lines_of_the_others() {
    let s = Scratch::new();
    fleet_logs(&s);
    let report = s.json(&["fleet", "status", "logs", "--format", "s3"]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{report:#}");
    assert_eq!(devices[0]["id"], "b");
    assert_eq!(report["lines"]["device_requests"], 11);
}

#[test]
fn the_release_tree_gives_channels_and_rollouts() {
    let (s, _) = packaged(&[(Build::new("lamp", "1.1.0"), "lamp-1.1.0.ota")]);
    s.ok(&release_args(&["--rollout", "25", "lamp-1.1.0.ota"]));
    fleet_logs(&s);
    let report = s.json(&[
        "fleet",
        "status",
        "logs",
        "--repo",
        TREE,
        "--silent-after",
        "20",
    ]);
    let new = entry(&report, "releases", |r| {
        r["version"] == "1.1.0" && r["channel"] == "stable"
    });
    assert_eq!(new["rollout_percent"], 25.0);
    assert_eq!(new["in_rollout"], 3, "bucket 9000 is outside 25 %");
    assert_eq!(new["silent"], 0, "20 intervals of silence allowed");
}

#[test]
fn html_report_is_self_contained() {
    let s = Scratch::new();
    fleet_logs(&s);
    s.ok(&["fleet", "status", "logs", "--html", "fleet.html", "-q"]);
    let page = std::fs::read_to_string(s.path("fleet.html")).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg"),
        "{page}"
    );
    for external in ["src=", "href=", "http://", "https://", "<script"] {
        let outside_svg_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !outside_svg_namespace.contains(external),
            "{external} in the page"
        );
    }
}

fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(name.to_owned());
        }
    }
    if std::env::var("OTA_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "Chromium is needed to test the HTML report: run scripts/install-test-deps.sh \
         (apt-get install chromium), or set OTA_SKIP_BROWSER_TESTS=1"
    );
}

fn headless(browser: &str, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let s = Scratch::new();
    fleet_logs(&s);
    s.ok(&["fleet", "status", "logs", "--html", "fleet.html", "-q"]);
    let page = format!("file://{}", s.path("fleet.html").display());

    let dom = headless(&browser, &s.path("profile-dom"))
        .args(["--dump-dom", &page])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("id=\"releases\"") && dom.contains("id=\"devices\""),
        "{dom}"
    );
    // One line per version in the chart, parsed by the browser as SVG.
    assert_eq!(
        dom.matches("<polyline class=\"series\"").count(),
        2,
        "{dom}"
    );
    assert!(dom.contains("rolled back from 1.1.0"), "{dom}");

    // A screenshot, kept when FLEET_SCREENSHOT names a file (to look at it).
    let shot = std::env::var("FLEET_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| s.path("fleet.png"));
    let out = headless(&browser, &s.path("profile-shot"))
        .args([
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
            &page,
        ])
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn github_download_counts_per_asset() {
    let gh = FakeGitHub::start("acme", "lamp-fw", "t0ken");
    let (s, _) = packaged(&[(Build::new("lamp", "1.1.0"), "lamp-1.1.0.ota")]);
    s.ok(&release_args(&["lamp-1.1.0.ota"]));
    let env = [
        ("GITHUB_TOKEN", "t0ken"),
        ("GITHUB_API_URL", gh.api_url.as_str()),
    ];
    let publish = [
        "publish",
        "--repo",
        TREE,
        "--to",
        "github://acme/lamp-fw",
        "--github-tag",
        "v1.1.0",
        "--github-write-interval",
        "0s",
        "-q",
    ];
    s.run_env(&publish, &env, 0);
    // Two devices fetch the manifest through GitHub's redirects.
    let url = gh.latest_download_url("lamp.stable.manifest");
    for _ in 0..2 {
        let (answer, _) = ota_test_servers::http::get_following(&url, &[]).unwrap();
        assert_eq!(answer.status, 200);
    }
    let (out, _) = s.run_env(
        &["fleet", "status", "--github", "acme/lamp-fw", "--json"],
        &env,
        0,
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let manifest = entry(&report, "github", |a| a["asset"] == "lamp.stable.manifest");
    assert_eq!(
        (&manifest["release"], &manifest["downloads"]),
        (&"v1.1.0".into(), &2.into())
    );
    let (table, _) = s.run_env(&["fleet", "status", "--github", "acme/lamp-fw"], &env, 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("v1.1.0") && l.contains(" 2  lamp.stable.manifest")),
        "{table}"
    );

    // A repository that does not exist, and a rejected token.
    s.run_env(
        &["fleet", "status", "--github", "acme/nothing"],
        &env,
        NOT_FOUND,
    );
    let bad = [
        ("GITHUB_TOKEN", "wrong"),
        ("GITHUB_API_URL", gh.api_url.as_str()),
    ];
    s.run_env(
        &["fleet", "status", "--github", "acme/lamp-fw"],
        &bad,
        CREDENTIALS,
    );
}

#[test]
fn exit_codes_and_help() {
    let s = Scratch::new();
    let err = s.fails(&["fleet", "status", "missing.log"], IO);
    assert!(err.contains("missing.log"), "{err}");
    s.fails(&["fleet", "status"], USAGE);
    s.fails(&["fleet", "status", "x.log", "--interval", "0"], USAGE);
    // An empty log is a report of nobody, not an error.
    s.write("empty.log", b"");
    let text = s.ok(&["fleet", "status", "empty.log"]);
    assert!(text.starts_with("0 devices"), "{text}");
    let help = s.ok(&["fleet", "status", "--help"]);
    for what in [
        "User-Agent",
        "nginx",
        "s3://",
        "cloudfront",
        "--html",
        "Exit codes",
        "SECURITY.md",
    ] {
        assert!(help.contains(what), "help lacks {what}:\n{help}");
    }
}

/// An app image of `version` for lamps, trusting `pk`; `fails_health_check` makes the
/// simulator fail its trial (the marker ota-device-sim looks for).
fn lamp_app(version: &str, pk: [u8; 32], fails_health_check: bool) -> Vec<u8> {
    let mut fw = ota_testkit::TestFirmware::new(ota_testkit::Chip::Esp32c3)
        .version(version)
        .project_name("lamp")
        .trusted_keys(&[pk])
        .payload_size(24_000)
        .seed(version.len() as u64);
    if fails_health_check {
        let marker = ota_device_sim::device::Behaviour::HealthFail.marker();
        fw = fw.marker(marker.expect("health-fail has a marker"));
    }
    fw.app_image()
}

fn package_lamp(s: &Scratch, pk: [u8; 32], version: &str, fails_health_check: bool) -> String {
    let out = format!("lamp-{version}.ota");
    let app = lamp_app(version, pk, fails_health_check);
    s.package_app(&app, "lamp", &out, &["--force"]);
    out
}

/// Boots `device` until its application runs `version`, with `app` as the application;
/// at most 10 boots (a rollback takes two).
fn run_until<R>(
    device: &mut ota_device_sim::device::VirtualDevice,
    version: &str,
    mut app: impl FnMut(&mut ota_device_sim::device::Session<'_>) -> R,
) -> R {
    use ota_device_sim::device::BootResult;
    for _ in 0..10 {
        if let BootResult::Ran {
            firmware, value, ..
        } = device.boot(&mut app).unwrap()
            && firmware.version.to_string() == version
        {
            return value;
        }
    }
    panic!("{version} never ran");
}

/// The acceptance test of issue #14: simulated devices poll real nginx through one
/// rollout that reaches everyone (1.1.0) and one that every device rolls back (1.2.0,
/// whose health check fails); `fleet status` reads nginx's own `combined` log.
#[test]
fn a_simulated_fleet_against_real_nginx() {
    use ota_agent::status::CheckResult;
    use ota_device_sim::SimFlash;
    use ota_device_sim::device::{DeviceConfig, VirtualDevice};

    let s = Scratch::new();
    let pk = s.keygen("release");
    let v1 = package_lamp(&s, pk, "1.0.0", false);
    let v2 = package_lamp(&s, pk, "1.1.0", false);
    let v3 = package_lamp(&s, pk, "1.2.0", true);
    s.ok(&release_args(&[&v1]));
    let pk_hex = hex::encode(pk);
    s.ok(&[
        "flash",
        "--image",
        &v1,
        "--pubkey",
        &pk_hex,
        "-o",
        "flash.bin",
        "-q",
    ]);
    let Some(nginx) = ota_test_servers::nginx::Nginx::serve(&s.path(TREE)) else {
        return;
    };
    let url = format!("{}/lamp.stable.manifest", nginx.url);
    let mut fleet: Vec<VirtualDevice> = (0..4)
        .map(|i| {
            let flash = SimFlash::load(&s.path("flash.bin")).unwrap();
            VirtualDevice::new(flash, DeviceConfig::new(&url, &format!("lamp-{i}")))
        })
        .collect();
    for d in &mut fleet {
        let r = run_until(d, "1.0.0", |s| s.check());
        assert_eq!(r, Ok(CheckResult::UpToDate));
    }
    // 1.1.0 reaches every device.
    s.ok(&release_args(&[&v2]));
    for d in &mut fleet {
        let installed = run_until(d, "1.0.0", |s| s.check());
        assert!(
            matches!(installed, Ok(CheckResult::Installed { .. })),
            "{installed:?}"
        );
        let r = run_until(d, "1.1.0", |s| (s.check(), s.check()));
        assert_eq!(r.0, Ok(CheckResult::UpToDate));
    }
    // 1.2.0 fails its trial everywhere: every device rolls back and says so.
    s.ok(&release_args(&[&v3]));
    for d in &mut fleet {
        let installed = run_until(d, "1.1.0", |s| s.check());
        assert!(
            matches!(installed, Ok(CheckResult::Installed { .. })),
            "{installed:?}"
        );
        // One check after the rollback: its request already says `pf-1.2.0`.
        let first = run_until(d, "1.1.0", |s| s.check());
        assert!(
            matches!(first, Ok(CheckResult::PreviouslyFailed { .. })),
            "{first:?}"
        );
    }

    let log = std::fs::read_to_string(nginx.combined_log()).unwrap();
    assert!(log.contains("ota-agent/"), "{log}");
    assert!(!log.contains("lamp-0"), "device ids are hashed: {log}");
    let log_path = nginx.combined_log().display().to_string();
    let report = s.json(&["fleet", "status", &log_path, "--repo", TREE]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 4, "{report:#}");
    for d in devices {
        assert_eq!(d["version"], "1.1.0", "{d:#}");
        assert_eq!(d["failed_releases"], serde_json::json!(["1.2.0"]), "{d:#}");
        assert_eq!(d["id"].as_str().unwrap().len(), 12, "{d:#}");
    }
    let reached = release(&report, "1.1.0");
    assert_eq!(
        (&reached["running"], &reached["devices"]),
        (&4.into(), &4.into())
    );
    let rolled_back = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == "1.2.0" && r["channel"] == "stable")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(rolled_back["rollout_percent"], 100.0);
    assert_eq!(rolled_back["in_rollout"], 4);
    assert_eq!(rolled_back["running"], 0);
    assert_eq!(rolled_back["downloaded_not_running"], 4);
    assert_eq!(rolled_back["failed"], 4);
    assert_eq!(report["lines"]["malformed"], 0);
}

/// S3 delivers its server access logs into a bucket (here under date prefixes);
/// `fleet status s3://bucket/prefix` reads them there.
#[test]
fn logs_are_read_from_an_s3_prefix() {
    use ota_test_servers::s3::{self, S3sFs};
    let Some(server) = S3sFs::start(&["logs"]) else {
        return;
    };
    let s = Scratch::new();
    fleet_logs(&s);
    let dir = server.bucket_dir("logs").join("ota/2026-12-06");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        s.path("logs/s3/2026-12-06/2026-12-06-00-10-00-EXAMPLE"),
        dir.join("2026-12-06-00-10-00-EXAMPLE"),
    )
    .unwrap();
    std::fs::copy(
        s.path("logs/EDFDVBD6EXAMPLE.2026-12-06-00.a1b2c3d4.gz"),
        server
            .bucket_dir("logs")
            .join("ota/EDFDVBD6EXAMPLE.2026-12-06-00.a1b2c3d4.gz"),
    )
    .unwrap();
    let env = |key: &'static str| {
        [
            ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", key),
            ("AWS_REGION", s3::REGION),
            ("AWS_ENDPOINT_URL", server.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
    };
    let (out, _) = s.run_env(
        &["fleet", "status", "s3://logs/ota/", "--json"],
        &env(s3::SECRET_KEY),
        0,
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut ids: Vec<&str> = report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["b", "c"], "{report:#}");
    assert_eq!(
        device(&report, "b")["failed_releases"],
        serde_json::json!(["1.1.0"])
    );

    s.run_env(
        &["fleet", "status", "s3://nothing/ota/"],
        &env(s3::SECRET_KEY),
        NOT_FOUND,
    );
    s.run_env(
        &["fleet", "status", "s3://logs/ota/"],
        &env("wrong-secret-0123456789"),
        CREDENTIALS,
    );
    // No credentials at all: refused before any request, as `publish` does, instead of
    // waiting for an EC2 instance-metadata service that is not there.
    let mut cmd = s.cmd(&["fleet", "status", "s3://logs/ota/"]);
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
        cmd.env_remove(key);
    }
    let out = cmd
        .env("AWS_ENDPOINT_URL", server.endpoint.as_str())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(CREDENTIALS), "{stderr}");
    assert!(stderr.contains("no S3 credentials"), "{stderr}");
}
