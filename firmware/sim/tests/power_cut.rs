//! A power cut at EVERY flash erase and write of switch + trial + confirm or
//! rollback, in both bootloader modes, with several damage seeds. After each
//! cut the device must start, straight from otadata's selection (no
//! bootloader fallback needed), either the old or the new image — and a later
//! update must still complete.
//!
//! Layout: three slots; ota_0 is empty (not bootable) so that otadata that
//! fell back to its default ("no valid entry -> ota_0") is caught instead of
//! being hidden by the bootloader's image fallback.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::{BootAttempt, BootTarget};
use ota_device_sim::{LayoutSpec, SimBootloader};
use proptest::prelude::*;
use support::boot::{Device, validator};

const OLD: BootTarget = BootTarget::Ota(1);
const NEW: BootTarget = BootTarget::Ota(2);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    /// Switch, trial boot, health check passes.
    Accept,
    /// Switch, trial boot, health check fails: the app rolls back.
    AppRejects,
    /// Switch, the new image crashes on every boot before confirming.
    CrashLoop,
}

fn device(mode: BootloaderMode) -> Device {
    let mut d = Device::new(LayoutSpec::small(false, 3), mode, 3);
    d.put_image(OLD, 1);
    d.put_image(NEW, 2);
    // Initial otadata: the bootloader records ota_1 (seq 2) on first boot.
    assert_eq!(d.boot().unwrap(), Some(OLD));
    let (running, attempt, _) = d.boot_and_record().unwrap();
    assert_eq!((running, attempt), (OLD, BootAttempt::Confirmed));
    d
}

/// Runs the scenario until it ends or the flash dies. Returns how many flash
/// operations had completed at the end of each step.
fn run(d: &mut Device, scenario: Scenario) -> Result<Vec<u64>, String> {
    let mut marks = Vec::new();
    let e = |e: ota_agent::BootError<_>| format!("{e}");
    d.state(OLD)
        .map_err(e)?
        .set_boot_slot(&mut d.flash, 2)
        .map_err(e)?;
    marks.push(d.flash.operations());
    match scenario {
        Scenario::Accept => {
            let (running, _, mut st) = d.boot_and_record()?;
            assert_eq!(running, NEW);
            st.confirm(&mut d.flash).map_err(e)?;
            marks.push(d.flash.operations());
            let (running, attempt, _) = d.boot_and_record()?;
            assert_eq!((running, attempt), (NEW, BootAttempt::Confirmed));
        }
        Scenario::AppRejects => {
            let (running, _, mut st) = d.boot_and_record()?;
            assert_eq!(running, NEW);
            st.rollback(&mut d.flash, validator()).map_err(e)?;
            marks.push(d.flash.operations());
            let (running, _, _) = d.boot_and_record()?;
            assert_eq!(running, OLD);
        }
        Scenario::CrashLoop => {
            for _ in 0..10 {
                let (running, _, _) = d.boot_and_record()?;
                if running == OLD {
                    marks.push(d.flash.operations());
                    return Ok(marks);
                }
            }
            panic!("crash loop never fell back");
        }
    }
    Ok(marks)
}

/// After power returns: the device boots old or new straight from otadata,
/// settles, and a later update to the other slot completes and is confirmed.
fn check_recovers(mut d: Device, allowed: &[BootTarget], context: &str) {
    d.power_cycle();
    let report = SimBootloader::new(d.mode)
        .boot(&mut d.flash, &mut validator())
        .unwrap_or_else(|err| panic!("{context}: bootloader failed: {err}"));
    let booted = report
        .booted
        .unwrap_or_else(|| panic!("{context}: nothing bootable"));
    assert_eq!(
        Some(report.selection.start),
        report.booted,
        "{context}: otadata selected an unbootable slot"
    );
    assert!(
        allowed.contains(&booted),
        "{context}: booted {booted:?}, allowed {allowed:?}"
    );

    // Settle: the agent's per-boot step; a pending trial is accepted.
    let mut running = booted;
    for _ in 0..6 {
        let mut st = d.state(running).unwrap();
        match st.record_boot_attempt(&mut d.flash, validator()).unwrap() {
            BootAttempt::Confirmed => break,
            BootAttempt::Counted { .. } | BootAttempt::BootloaderTracked => {
                st.confirm(&mut d.flash).unwrap();
                break;
            }
            other => {
                assert!(
                    matches!(
                        other,
                        BootAttempt::RolledBack | BootAttempt::SelectedNotBooted { .. }
                    ),
                    "{context}: {other:?}"
                );
                running = d.boot().unwrap().unwrap();
            }
        }
    }
    // A later update completes.
    let target = if running == OLD { NEW } else { OLD };
    let BootTarget::Ota(slot) = target else {
        unreachable!()
    };
    d.state(running)
        .unwrap()
        .set_boot_slot(&mut d.flash, slot)
        .unwrap();
    let (r, _, mut st) = d.boot_and_record().unwrap();
    assert_eq!(r, target, "{context}: later update did not boot");
    st.confirm(&mut d.flash).unwrap();
    let (r, a, _) = d.boot_and_record().unwrap();
    assert_eq!(
        (r, a),
        (target, BootAttempt::Confirmed),
        "{context}: later update not kept"
    );
}

fn seeds() -> u64 {
    std::env::var("OTA_SIM_CUT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

fn sweep(mode: BootloaderMode, scenario: Scenario) -> u64 {
    let pristine = device(mode);
    let base = pristine.flash.operations();
    let mut clean = pristine.clone();
    let marks: Vec<u64> = run(&mut clean, scenario)
        .unwrap()
        .iter()
        .map(|m| m - base)
        .collect();
    let total = clean.flash.operations() - base;
    assert!(total >= 3, "scenario does flash work");
    let mut cuts = 0;
    for seed in 0..seeds() {
        for n in 0..total {
            let mut d = pristine.clone();
            d.flash = d.flash.with_seed(seed * 1000 + n);
            d.flash.cut_after(base + n);
            let outcome = run(&mut d, scenario);
            assert!(
                outcome.is_err(),
                "cut at {n} did not interrupt the scenario"
            );
            assert!(d.flash.is_dead());
            // Before the switch entry is fully written only the old image may
            // run; once the final decision is written only its result may.
            let allowed: &[BootTarget] = if n < marks[0] {
                &[OLD]
            } else if n >= *marks.last().unwrap() {
                if scenario == Scenario::Accept {
                    &[NEW]
                } else {
                    &[OLD]
                }
            } else {
                &[OLD, NEW]
            };
            check_recovers(
                d,
                allowed,
                &format!("{mode:?} {scenario:?} cut at op {n}/{total} seed {seed}"),
            );
            cuts += 1;
        }
    }
    eprintln!("{mode:?} {scenario:?}: {total} flash operations, {cuts} cut points tested");
    cuts
}

#[test]
fn every_cut_rollback_bootloader_accept() {
    assert!(sweep(RollbackEnabled, Scenario::Accept) > 0);
}

#[test]
fn every_cut_rollback_bootloader_app_rejects() {
    assert!(sweep(RollbackEnabled, Scenario::AppRejects) > 0);
}

#[test]
fn every_cut_rollback_bootloader_crash_loop() {
    assert!(sweep(RollbackEnabled, Scenario::CrashLoop) > 0);
}

#[test]
fn every_cut_counting_accept() {
    assert!(sweep(RollbackDisabled, Scenario::Accept) > 0);
}

#[test]
fn every_cut_counting_app_rejects() {
    assert!(sweep(RollbackDisabled, Scenario::AppRejects) > 0);
}

#[test]
fn every_cut_counting_crash_loop() {
    assert!(sweep(RollbackDisabled, Scenario::CrashLoop) > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Several cuts in a row at random operations, each followed by a reboot
    /// that retries the same update: the device always boots old or new, and
    /// once power stays on the update completes.
    #[test]
    fn repeated_random_cuts(
        counting in any::<bool>(),
        cuts in proptest::collection::vec((0u64..12, any::<u64>()), 1..5),
    ) {
        let mode = if counting { RollbackDisabled } else { RollbackEnabled };
        let mut d = device(mode);
        let mut running = OLD;
        for (after, seed) in cuts {
            d.flash = d.flash.clone().with_seed(seed);
            d.flash.cut_after(d.flash.operations() + after);
            // Retry the update from whatever runs now.
            let _ = (|| -> Result<(), String> {
                if running == OLD {
                    d.state(OLD).map_err(|e| e.to_string())?.set_boot_slot(&mut d.flash, 2).map_err(|e| e.to_string())?;
                }
                let (r, _, mut st) = d.boot_and_record()?;
                running = r;
                if r == NEW {
                    st.confirm(&mut d.flash).map_err(|e| e.to_string())?;
                }
                Ok(())
            })();
            d.flash.cancel_cut();
            d.power_cycle();
            let r = d.boot().unwrap();
            prop_assert!(r == Some(OLD) || r == Some(NEW), "booted {:?}", r);
            running = r.unwrap();
            let mut st = d.state(running).unwrap();
            if let BootAttempt::Counted { .. } | BootAttempt::BootloaderTracked = st.record_boot_attempt(&mut d.flash, validator()).unwrap()
                && running == NEW {
                    st.confirm(&mut d.flash).unwrap();
                }
        }
        if running == OLD {
            d.state(OLD).unwrap().set_boot_slot(&mut d.flash, 2).unwrap();
            let (_, _, mut st) = d.boot_and_record().unwrap();
            st.confirm(&mut d.flash).unwrap();
        }
        let (r, a, _) = d.boot_and_record().unwrap();
        prop_assert_eq!((r, a), (NEW, BootAttempt::Confirmed));
    }
}
