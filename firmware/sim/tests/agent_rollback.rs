//! Trial boots that fail roll back in both bootloader modes, and the failed release
//! is not retried.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::status::CheckResult;
use ota_device_sim::device::{Behaviour, BootResult};
use support::*;

const MODES: [BootloaderMode; 2] = [RollbackDisabled, RollbackEnabled];

/// Installs a release with `behaviour`, then boots until 1.0.0 runs again. Returns the
/// boot results on the way.
fn fails_back(mode: BootloaderMode, behaviour: Behaviour) -> Vec<String> {
    let host = Host::start();
    let d = &mut device(&host, mode);
    host.publish(&release_with(
        &Spec::default(),
        &NewFirmware {
            behaviour,
            ..NewFirmware::default()
        },
    ));
    let (_, r) = boot_until_running(d, |s| s.check());
    assert_eq!(
        r,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    let mut seen = Vec::new();
    for _ in 0..10 {
        match d.boot(|s| (s.check(), s.agent.status())).unwrap() {
            BootResult::Ran {
                firmware,
                value: (check, status),
                ..
            } => {
                assert_eq!(firmware.version, v("1.0.0"), "{mode:?} {behaviour:?}");
                assert_eq!(status.rolled_back_releases, 1);
                assert_eq!(status.security_counter, 0);
                assert_eq!(
                    check,
                    Ok(CheckResult::PreviouslyFailed {
                        version: v("1.1.0")
                    })
                );
                assert_eq!(host.requests_for("/fw/sensor-1.1.0.ota"), 1);
                return seen;
            }
            other => seen.push(format!("{other:?}").split('(').next().unwrap().to_owned()),
        }
    }
    panic!("{mode:?} {behaviour:?}: never rolled back: {seen:?}");
}

#[test]
fn failed_health_check_rolls_back() {
    for mode in MODES {
        assert_eq!(
            fails_back(mode, Behaviour::HealthFail),
            ["RejectedTrial"],
            "{mode:?}"
        );
    }
}

#[test]
fn crash_at_boot_rolls_back() {
    assert_eq!(
        fails_back(RollbackDisabled, Behaviour::CrashAtBoot),
        ["Crashed", "Crashed", "Crashed", "TrialsExhausted"]
    );
    assert_eq!(
        fails_back(RollbackEnabled, Behaviour::CrashAtBoot),
        ["Crashed"]
    );
}

#[test]
fn hang_rolls_back() {
    assert_eq!(
        fails_back(RollbackDisabled, Behaviour::Hang),
        ["Crashed", "Crashed", "Crashed", "TrialsExhausted"]
    );
    assert_eq!(fails_back(RollbackEnabled, Behaviour::Hang), ["Crashed"]);
}

#[test]
fn a_newer_release_after_a_failed_one_installs() {
    for mode in MODES {
        let host = Host::start();
        let d = &mut device(&host, mode);
        host.publish(&release_with(
            &Spec::default(),
            &NewFirmware {
                behaviour: Behaviour::HealthFail,
                ..NewFirmware::default()
            },
        ));
        let (first, running) = check_and_reboot(d);
        assert_eq!(
            first,
            Ok(CheckResult::Installed {
                version: v("1.1.0")
            })
        );
        assert_eq!(running, v("1.0.0"));
        host.publish(&release(&Spec {
            version: "1.1.1",
            sequence: 3,
            ..Spec::default()
        }));
        assert_updates_to(d, "1.1.1");
    }
}
