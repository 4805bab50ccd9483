//! The simulator binary against Debian's nginx as the static host: a full update with
//! the application answering throughout (R3), and the status at `GET /ota/status` with
//! every R6 field checked against what is known to be true.
//!
//! nginx missing is a failure with the install command, unless
//! `OTA_SKIP_SERVER_TESTS=1` (the `ota-test-servers` convention).

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ota_format::KeyId;
use ota_test_servers::nginx::Nginx;
use serde_json::{Value, json};
use support::*;

/// The simulator process with its status server. Killed when dropped.
struct Sim {
    child: Child,
    addr: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Sim {
    fn start(dir: &Path, manifest_url: &str, bootloader: &str) -> Sim {
        let (child, out, addr) = spawn_with_status(
            sim_run(dir, "4194304", manifest_url)
                .args(["--device-id", "dev-nginx", "--interval", "0.2"])
                .args(["--bootloader", bootloader]),
        );
        // Drained continuously so the device never blocks on a full pipe.
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Sim {
            child,
            addr,
            output,
        }
    }

    fn status(&self) -> Value {
        let body = get_body(&self.addr, "/ota/status").expect("status answers");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls the status until `done` holds for it.
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let status = self.status();
            if done(&status) {
                return status;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "timed out waiting for {what}; last status {}\noutput:\n{}",
            self.status(),
            self.output.lock().unwrap().join("\n")
        );
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn idle_on(status: &Value, version: &str) -> bool {
    status["installed_version"] == version
        && status["update"]["state"] == "idle"
        && matches!(
            status["last_check"]["result"]["result"].as_str(),
            Some("up_to_date" | "not_modified")
        )
}

/// Pings `/app/ping` back to back from its own thread until stopped; returns when
/// each answer arrived (`None` for a failed ping).
fn pinger(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Option<Instant>>> {
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let pong = get_body(&addr, "/app/ping").filter(|b| b.contains("pong"));
            answers.push(pong.map(|_| Instant::now()));
            std::thread::sleep(Duration::from_millis(10));
        }
        answers
    })
}

/// Asserts each `(field, value)` of a status report.
#[track_caller]
fn assert_fields(report: &Value, expected: &[(&str, Value)]) {
    for (field, want) in expected {
        assert_eq!(&report[*field], want, "{field} in {report}");
    }
}

#[test]
fn full_update_through_nginx_keeps_the_app_answering() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let Some(nginx) = Nginx::serve(&root) else {
        return;
    };
    // About 1.6 MB installed, 0.8 MB on the wire: long enough to watch.
    let rel = release_with(
        &Spec::default(),
        &NewFirmware {
            payload_size: 1_600_000,
            ..NewFirmware::default()
        },
    );
    publish_in_dir(&root, &rel, None);
    let started = Instant::now();
    let sim = Sim::start(
        dir.path(),
        &format!("{}{MANIFEST_PATH}", nginx.url),
        "plain",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let pings = pinger(sim.addr.clone(), stop.clone());

    // Watch the download through the status endpoint.
    let mut seen = Vec::new();
    let done = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no update; output:\n{}",
            sim.output.lock().unwrap().join("\n")
        );
        let status = sim.status();
        if status["update"]["state"] == "downloading" {
            let p = &status["update"]["progress"];
            assert_eq!(&status["download"], p, "R6 download field");
            seen.push((
                Instant::now(),
                p["received"].as_u64().unwrap(),
                p["total"].as_u64().unwrap(),
            ));
        }
        if idle_on(&status, "1.1.0") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::SeqCst);
    let answers = pings.join().unwrap();

    // The download was observed in progress, truthfully.
    assert!(seen.len() >= 3, "download seen {} times", seen.len());
    let total = rel.ota.len() as u64;
    assert!(
        seen.iter().all(|&(_, r, t)| t == total && r <= t),
        "{seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "progress went backwards: {seen:?}"
    );
    assert!(seen.last().unwrap().1 > seen[0].1, "progress never moved");

    // The application answered all the time, download and reboot included.
    let failed = answers.iter().filter(|a| a.is_none()).count();
    assert_eq!(failed, 0, "{failed} of {} pings failed", answers.len());
    let times: Vec<Instant> = answers.into_iter().flatten().collect();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(gap < Duration::from_millis(500), "longest ping gap {gap:?}");
    let (first, last) = (seen[0].0, seen.last().unwrap().0);
    let during = times.iter().filter(|&&t| t >= first && t <= last).count();
    assert!(during >= 3, "{during} pings answered during the download");

    // Updated, confirmed and reported.
    assert_eq!(done["running"]["slot"], "ota_1");
    assert_eq!(done["running"]["state"], "valid");
    assert_eq!(done["other"]["version"], "1.0.0");
    assert_eq!(done["security_counter"], 1);
    let out = sim.output.lock().unwrap().join("\n");
    assert!(out.contains("boot running ota_1 version 1.1.0"), "{out}");
    eprintln!(
        "nginx update: {} KiB on the wire, download watched for {:?}, {} pings during it, longest gap {gap:?}",
        total / 1024,
        last - first,
        during
    );
}

#[test]
fn status_json_reports_every_r6_field_truthfully() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("fw")).unwrap();
    let Some(nginx) = Nginx::serve(&root) else {
        return;
    };
    let before = unix_now();
    // Nothing published yet: the manifest is a 404.
    let sim = Sim::start(
        dir.path(),
        &format!("{}{MANIFEST_PATH}", nginx.url),
        "rollback",
    );
    let key_ids = json!([KeyId::of(&public(SIGNER)).to_string()]);

    let s = sim.wait_for("a failed check", |s| {
        s["last_check"]["result"]["result"] == "failed"
    });
    assert_fields(
        &s,
        &[
            ("installed_version", json!("1.0.0")),
            ("device_type", json!("sensor")),
            ("chip", json!("esp32c3")),
            ("bootloader_mode", json!("rollback")),
            (
                "other",
                json!({ "slot": "ota_1", "state": null, "version": null }),
            ),
            ("security_counter", json!(0)),
            ("manifest_sequence", Value::Null),
            ("trusted_keys", key_ids.clone()),
            ("trial", Value::Null),
            ("download", Value::Null),
        ],
    );
    assert_eq!(s["running"]["slot"], "ota_0");
    assert_eq!(s["running"]["version"], "1.0.0");
    let at_unix = s["last_check"]["at_unix"].as_u64().unwrap();
    assert!((before..=unix_now()).contains(&at_unix), "{at_unix}");
    let error = &s["last_error"];
    assert_eq!(error["phase"], "checking");
    assert_eq!(error["error"], "manifest fetch: HTTP status 404");
    assert!(error["at_ms"].as_u64().unwrap() <= s["last_check"]["at_ms"].as_u64().unwrap());

    let rel = release(&Spec::default());
    publish_in_dir(&root, &rel, None);
    let s = sim.wait_for("the update", |s| idle_on(s, "1.1.0"));
    assert_fields(
        &s,
        &[
            ("device_type", json!("sensor")),
            ("chip", json!("esp32c3")),
            ("bootloader_mode", json!("rollback")),
            (
                "running",
                json!({ "slot": "ota_1", "state": "valid", "version": "1.1.0" }),
            ),
            // The previous image stays in the other slot, still a valid otadata entry.
            (
                "other",
                json!({ "slot": "ota_0", "state": "valid", "version": "1.0.0" }),
            ),
            ("security_counter", json!(1)),
            ("manifest_sequence", json!(2)),
            ("rolled_back_releases", json!(0)),
            ("trial", Value::Null),
            ("trusted_keys", key_ids),
        ],
    );
    let at_unix = s["last_check"]["at_unix"].as_u64().unwrap();
    assert!((before..=unix_now()).contains(&at_unix), "{at_unix}");
    // A reboot started this report afresh: the 404 belongs to the previous boot.
    assert_eq!(s["last_error"], Value::Null);
    assert!(s["sim"]["boots"].as_u64().unwrap() >= 2);
    let out = sim.output.lock().unwrap().join("\n");
    assert!(out.contains("boot running ota_1 version 1.1.0"), "{out}");
}
