//! A power cut at EVERY flash erase and write of a full update (check, download,
//! install, read-back, switch, reboot, trial boot, confirm), in both bootloader modes.
//!
//! The operations of a clean run are counted; then for each N the base flash is cloned,
//! the power is cut at operation N (the operation is torn: a prefix of a write lands,
//! an erase half-happens), the device boots again and must run a valid image (old or
//! new), report it truthfully, and complete a later update. `OTA_QUICK=1` samples every
//! 16th N; CI runs them all.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::status::CheckResult;
use ota_device_sim::device::{BootResult, VirtualDevice};
use support::*;

/// Check (installs 1.1.0), reboot into the trial, confirm. Stops early on a power loss;
/// returns whether it did.
fn scenario(d: &mut VirtualDevice) -> bool {
    match d.boot(|s| s.check()).unwrap() {
        BootResult::PowerLost => return true,
        BootResult::Ran { value, .. } => {
            assert_eq!(
                value,
                Ok(CheckResult::Installed {
                    version: v("1.1.0")
                })
            );
        }
        other => panic!("{other:?}"),
    }
    match d.boot(|s| s.agent.status()).unwrap() {
        BootResult::PowerLost => true,
        BootResult::Ran {
            firmware,
            confirmed_trial,
            ..
        } => {
            assert_eq!((firmware.version, confirmed_trial), (v("1.1.0"), true));
            false
        }
        other => panic!("{other:?}"),
    }
}

fn sweep(mode: BootloaderMode) -> usize {
    let (host, next) = hosts_with_two_releases();

    let mut base = device(&host, mode);
    // First power-on: the bootloader records ota_0 in otadata.
    let (running, ()) = boot_until_running(&mut base, |_| ());
    assert_eq!(running, v("1.0.0"));
    let start = base.flash.operations();

    let mut clean = VirtualDevice::new(base.flash.clone(), base.config.clone());
    assert!(!scenario(&mut clean));
    let total = (clean.flash.operations() - start) as usize;
    assert!(total > 20, "only {total} operations");

    let step = if std::env::var_os("OTA_QUICK").is_some() {
        16
    } else {
        1
    };
    let mut tested = 0;
    for n in (0..total).step_by(step) {
        let flash = base.flash.clone().with_seed(n as u64 + 1);
        let mut d = VirtualDevice::new(flash, base.config.clone());
        d.flash.cut_after(start + n as u64);
        assert!(scenario(&mut d), "{mode:?}: cut at {n} never happened");
        tested += 1;

        // Power back: a valid image runs, old or new, and says so.
        let (running, status) =
            boot_until_running(&mut d, |s| (s.firmware.clone(), s.agent.status()));
        assert!(
            running == v("1.0.0") || running == v("1.1.0"),
            "{mode:?} cut {n}: runs {running}"
        );
        let (firmware, status) = status;
        assert_eq!(
            status.installed_version, firmware.version,
            "{mode:?} cut {n}"
        );
        assert_eq!(status.running.slot, firmware.target, "{mode:?} cut {n}");
        assert!(
            status.trial.is_none(),
            "{mode:?} cut {n}: still on trial after confirm"
        );

        // And a later update completes.
        d.config.manifest_url = next.url(MANIFEST_PATH);
        let (r, after) = check_and_reboot(&mut d);
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.2.0")
            }),
            "{mode:?} cut {n} (was running {running})"
        );
        assert_eq!(after, v("1.2.0"), "{mode:?} cut {n}");
    }
    eprintln!("{mode:?}: {total} flash operations in a full update, {tested} cut points tested");
    tested
}

#[test]
fn power_cut_at_every_operation_plain_bootloader() {
    assert!(sweep(RollbackDisabled) > 0);
}

#[test]
fn power_cut_at_every_operation_rollback_bootloader() {
    assert!(sweep(RollbackEnabled) > 0);
}
