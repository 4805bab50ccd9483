//! Full updates through a real HTTP server, in both bootloader modes.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::geometry::BootTarget;
use ota_agent::status::{CheckResult, UpdateState};
use ota_device_sim::device::BootResult;
use support::*;

const MODES: [BootloaderMode; 2] = [RollbackDisabled, RollbackEnabled];

#[test]
fn update_confirms_and_idle_check_costs_a_304() {
    for mode in MODES {
        let host = Host::start();
        let d = &mut device(&host, mode);
        host.publish(&release(&Spec::default()));
        // Stored, then zstd-compressed at the device's largest default window.
        assert_updates_to(d, "1.1.0");
        let (_, status) = boot_until_running(d, |s| {
            let idle = s.check();
            (idle, s.check(), s.agent.status())
        });
        let (first, second, status) = status;
        assert_eq!(first, Ok(CheckResult::UpToDate));
        assert_eq!(second, Ok(CheckResult::NotModified));
        assert_eq!(status.running.slot, BootTarget::Ota(1));
        assert_eq!(status.security_counter, 1);
        assert_eq!(status.other.unwrap().version, Some(v("1.0.0")));
        assert_eq!(status.update, UpdateState::Idle);
        let log = host.log();
        assert_eq!(log.last().unwrap().status, 304, "{mode:?}");
        assert_eq!(host.requests_for("/fw/sensor-1.1.0.ota"), 1);
    }
}

#[test]
fn stored_images_install_too() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    host.publish(&release(&Spec {
        window_log: None,
        ..Spec::default()
    }));
    assert_eq!(check_and_reboot(d).1, v("1.1.0"));
}

#[test]
fn successive_releases_alternate_slots() {
    let host = Host::start();
    let d = &mut device(&host, RollbackEnabled);
    for (i, version) in ["1.1.0", "1.2.0", "2.0.0"].into_iter().enumerate() {
        host.publish(&release(&Spec {
            version,
            sequence: 10 + i as u64,
            counter: i as u64,
            ..Spec::default()
        }));
        assert_updates_to(d, version);
    }
    let (_, slot) = boot_until_running(d, |s| s.agent.status().running.slot);
    assert_eq!(slot, BootTarget::Ota(1));
}

#[test]
fn status_is_served_while_the_device_downloads() {
    use std::io::Read;
    use std::process::Command;
    use std::time::{Duration, Instant};

    let host = Host::start();
    let rel = release(&Spec::default());
    host.publish(&rel);
    // Slow enough that the download takes a few seconds.
    host.fault(
        &format!("/fw/{}", rel.image_name),
        vec![Fault::Slow(Duration::from_millis(60))],
    );
    let dir = tempfile::tempdir().unwrap();
    let flash_path = dir.path().join("flash.bin");
    let (mut child, mut out, addr) = spawn_with_status(
        sim_run(dir.path(), "589824", &host.url(MANIFEST_PATH)).args(paced("0.1", "2")),
    );
    let get = |path: &str| get_body(&addr, path);
    let start = Instant::now();
    let mut pings_during_download = 0;
    let mut saw_progress = false;
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = get("/ota/status") {
            let json: serde_json::Value = serde_json::from_str(&status).unwrap();
            if json["update"]["state"] == "downloading" {
                saw_progress |= json["update"]["progress"]["received"].as_u64().unwrap_or(0) > 0;
                let t = Instant::now();
                let ping = get("/app/ping").unwrap();
                assert!(ping.contains("pong"));
                assert!(t.elapsed() < Duration::from_millis(500), "ping was slow");
                pings_during_download += 1;
            }
            if json["update"]["state"] == "reboot_required" || json["installed_version"] == "1.1.0"
            {
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pings_during_download >= 3,
        "{pings_during_download} pings during the download"
    );
    assert!(saw_progress);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("boot running ota_1 version 1.1.0"), "{rest}");
    let status = Command::new(env!("CARGO_BIN_EXE_ota-device-sim"))
        .args(["status", "--flash"])
        .arg(&flash_path)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["slots"][1]["version"], "1.1.0");
    assert_eq!(json["agent_state"]["security_counter"], 1);
}

#[test]
fn boot_reports_the_running_image_truthfully() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    match d.boot(|s| s.agent.status()).unwrap() {
        BootResult::Ran {
            firmware, value, ..
        } => {
            assert_eq!(value.installed_version, firmware.version);
            assert_eq!(value.running.slot, firmware.target);
            assert_eq!(value.trusted_keys.iter().count(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cli_power_cut_then_power_back_completes_the_update() {
    let host = Host::start();
    host.publish(&release(&Spec::default()));
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        sim_run(dir.path(), "589824", &host.url(MANIFEST_PATH))
            .args(paced("0", "2"))
            .args(["--bootloader", "rollback"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Operation 30 is in the middle of writing the new image.
    let cut = run(&["--power-cut-at", "30"]);
    let text = String::from_utf8_lossy(&cut.stdout).into_owned();
    assert_eq!(cut.status.code(), Some(3), "{text}");
    assert!(text.contains("power-lost at operation 31"), "{text}");
    let again = run(&[]);
    let text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{text}");
    assert!(
        text.starts_with("boot running ota_0 version 1.0.0"),
        "{text}"
    );
    assert!(text.contains("boot running ota_1 version 1.1.0"), "{text}");
}
