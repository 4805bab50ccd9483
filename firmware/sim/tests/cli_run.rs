//! `ota-device-sim run` as a new user starts it: the device type comes from the flag or
//! the project's ota-sign.toml (never the build's project name), a run where every check
//! failed says so in its exit code, and a signed image given as `--app` is refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use ota_testkit::{Chip, TestFirmware};
use support::*;

/// An app image of project `project` (which is not the device type) trusting the signer.
fn app_of_project(project: &str) -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .project_name(project)
        .trusted_keys(&[public(SIGNER)])
        .payload_size(40_000)
        .app_image()
}

/// `ota-device-sim run` in `dir` on a new flash file made from `app` (written to
/// `dir/NAME`), checking `manifest_url` every 10 ms at most `checks` times; the caller
/// adds the device type or not.
fn sim_in(dir: &Path, app: (&str, &[u8]), manifest_url: &str, checks: &str) -> Command {
    std::fs::write(dir.join(app.0), app.1).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ota-device-sim"));
    command
        .current_dir(dir)
        .env_remove("OTA_SIGN_CONFIG")
        .args(["run", "--flash", "flash.bin", "--app", app.0])
        .args(["--flash-size", "589824", "--device-id", "dev-1"])
        .args(["--manifest-url", manifest_url, "--interval", "0.01"])
        .args(["--max-checks", checks]);
    command
}

/// [`sim_in`] without --device-type.
fn run_in(dir: &Path, app: &[u8], manifest_url: &str, checks: &str) -> Output {
    sim_in(dir, ("app.bin", app), manifest_url, checks)
        .output()
        .unwrap()
}

#[test]
fn run_takes_the_device_type_from_ota_sign_toml_not_the_project_name() {
    let host = Host::start();
    host.publish(&release(&Spec::default()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ota-sign.toml"),
        format!("[defaults]\ndevice_type = \"{DEVICE_TYPE}\"\n"),
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &app_of_project("sensor-firmware-build"),
        &host.url(MANIFEST_PATH),
        "2",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("device type sensor (from"), "{stderr}");
    assert!(
        stdout.contains("boot running ota_1 version 1.1.0"),
        "{stdout}"
    );
}

#[test]
fn run_without_a_device_type_anywhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &app("1.0.0"),
        "http://127.0.0.1:9/x.manifest",
        "1",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--device-type") && stderr.contains("ota-sign.toml"),
        "{stderr}"
    );
}

#[test]
fn run_where_every_check_failed_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the discard port: every check fails.
    let app = app("1.0.0");
    let url = "http://127.0.0.1:9/sensor.stable.manifest";
    let out = sim_in(dir.path(), ("app.bin", &app), url, "2")
        .args(["--device-type", "sensor"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("every check failed (2 of 2)"), "{stderr}");
}

#[test]
fn run_refuses_a_signed_image_given_as_the_app() {
    let host = Host::start();
    let signed = release(&Spec::default());
    let dir = tempfile::tempdir().unwrap();
    let out = sim_in(
        dir.path(),
        ("x.ota", &signed.ota),
        &host.url(MANIFEST_PATH),
        "1",
    )
    .args(["--device-type", DEVICE_TYPE])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("x.ota is a signed ota-sign image") && stderr.contains("ota-sign extract"),
        "{stderr}"
    );
    assert!(!dir.path().join("flash.bin").exists());
}

#[test]
fn run_with_json_logs_one_json_object_per_line() {
    let host = Host::start();
    host.publish(&release(&Spec::default()));
    let dir = tempfile::tempdir().unwrap();
    let app = app("1.0.0");
    let out = sim_in(dir.path(), ("app.bin", &app), &host.url(MANIFEST_PATH), "2")
        .args(["--device-type", DEVICE_TYPE, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["boot", "check", "installed", "reboot", "boot", "check"],
        "{stdout}"
    );
    assert_eq!(events[0]["slot"], "ota_0");
    assert_eq!(events[1]["result"]["result"], "installed");
    // No delta on the host: the full image, every byte of it counted.
    assert_eq!(events[2]["via"], "full");
    assert!(
        events[2]["bytes_downloaded"].as_u64().unwrap() > 1000,
        "{stdout}"
    );
    assert_eq!(events[4]["slot"], "ota_1");
    assert_eq!(events[4]["version"], "1.1.0");

    // The flash file names the slot the bootloader starts, with its version.
    let status = Command::new(env!("CARGO_BIN_EXE_ota-device-sim"))
        .current_dir(dir.path())
        .args(["status", "--flash", "flash.bin"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["running"]["slot"], "ota_1", "{json}");
    assert_eq!(json["running"]["version"], "1.1.0", "{json}");
}

#[test]
fn live_status_json_has_no_rust_debug_text() {
    let host = Host::start();
    let dir = tempfile::tempdir().unwrap();
    let mut command = sim_run(dir.path(), "589824", &host.url(MANIFEST_PATH));
    // The second check waits 30 s: long enough to read the status, then it is killed.
    command.args(paced("30", "2"));
    let (mut child, _out, addr) = spawn_with_status(&mut command);
    let body = (0..100)
        .find_map(|_| {
            let body = get_body(&addr, "/ota/status")
                .filter(|b| b.contains("\"sim\"") && b.contains("\"running\""));
            if body.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            body
        })
        .expect("status served");
    let _ = child.kill();
    let _ = child.wait();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["sim"]["behaviour"], "normal", "{body}");
    assert_eq!(json["running"]["slot"], "ota_0", "{body}");
    assert!(!body.contains("Some("), "{body}");
}

/// ESP-IDF allows a number as a data subtype (`storage, data, 0x40, ...`); esp-idf-part's
/// CSV reader panics on it. A new flash file from such a table must end in a clear error
/// (or a flash file), never in a panic.
#[test]
fn run_with_a_numeric_data_subtype_in_the_partition_table_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("partitions.csv"),
        "nvs, data, nvs, 0x9000, 0x4000,\n\
         otadata, data, ota, 0xd000, 0x2000,\n\
         storage, data, 0x40, , 64K,\n\
         ota_0, app, ota_0, 0x20000, 0x20000,\n\
         ota_1, app, ota_1, , 0x20000,\n",
    )
    .unwrap();
    let out = sim_in(
        dir.path(),
        ("app.bin", &app("1.0.0")),
        "http://127.0.0.1:9/x.manifest",
        "1",
    )
    .args([
        "--device-type",
        DEVICE_TYPE,
        "--partition-table",
        "partitions.csv",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.code() == Some(1) {
        assert!(stderr.contains("partitions.csv"), "{stderr}");
    }
}
