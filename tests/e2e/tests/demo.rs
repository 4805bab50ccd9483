//! The README's first command: `ota-demo` (what `scripts/demo.sh` runs) tells the whole
//! story with the real `ota-sign` and exits 0 only when the fleet converged on v2 and
//! then rolled back from the broken v3.

use std::process::Command;

use ota_e2e::bins;

fn demo(host: &str) -> (Option<i32>, String) {
    let b = bins();
    let out = Command::new(&b.demo)
        .args([
            "--devices",
            "4",
            "--interval",
            "0.5",
            "--timeout",
            "60",
            "--host",
            host,
        ])
        .env("OTA_SIGN_BIN", &b.ota_sign)
        .output()
        .expect("run ota-demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn demo_fleet_updates_then_rolls_back_from_a_broken_release() {
    assert_story("builtin");
}

#[test]
fn demo_tells_the_same_story_on_nginx() {
    if ota_test_servers::nginx::find().is_none() && ota_test_servers::skip_server_tests() {
        return;
    }
    assert_story("nginx");
}

fn assert_story(host: &str) {
    let (code, out) = demo(host);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SYNTHESIZED ESP32-C3 app image"), "{out}");
    assert!(out.contains("all 4 devices run v2"), "{out}");
    assert!(out.contains("went back to v2"), "{out}");
    // The last step: `ota-sign fleet status` over the host's own access log.
    assert!(
        out.contains("v2 reached all 4 devices; all 4 downloaded v3, failed its trial"),
        "{out}"
    );
    // Plain log lines (stdout is not a terminal): every device failed the v3 trial.
    for n in 0..4 {
        assert!(
            out.contains(&format!(
                "dev-{n:04}: trial boot of 3.0.0 failed (health check failed)"
            )),
            "{out}"
        );
    }
    // The per-device tables: before 1.0.0 after 2.0.0 in ota_1, confirmed valid.
    let v2_rows = out
        .lines()
        .filter(|l| {
            let f: Vec<_> = l.split_whitespace().collect();
            f.len() > 4 && f[1] == "1.0.0" && f[2] == "2.0.0" && f[3] == "ota_1" && f[4] == "valid"
        })
        .count();
    assert_eq!(v2_rows, 4, "{out}");
}

#[test]
fn demo_refuses_a_work_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious"), b"keep").unwrap();
    let b = bins();
    let out = Command::new(&b.demo)
        .arg("--work")
        .arg(dir.path())
        .env("OTA_SIGN_BIN", &b.ota_sign)
        .output()
        .expect("run ota-demo");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(std::fs::read(dir.path().join("precious")).unwrap(), b"keep");
}
