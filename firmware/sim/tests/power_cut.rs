//! A power cut at EVERY flash erase and write of switch + trial + confirm or
//! rollback, in both bootloader modes, with several damage seeds, over flash written
//! in 4-byte words (ESP32) and in 32-byte words (a geometry that finds code assuming
//! the first, as MCUboot's simulator runs over several devices). After each
//! cut the device must start, straight from otadata's selection (no
//! bootloader fallback needed), either the old or the new image — and a later
//! update must still complete.
//!
//! Layout: three slots; ota_0 is empty (not bootable) so that otadata that
//! fell back to its default ("no valid entry -> ota_0") is caught instead of
//! being hidden by the bootloader's image fallback.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::unverified::select_slot;
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

fn device<const W: usize>(mode: BootloaderMode) -> Device<W> {
    let mut d = Device::new(LayoutSpec::small(false, 3), mode, 3).into_geometry();
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
fn run<const W: usize>(d: &mut Device<W>, scenario: Scenario) -> Result<Vec<u64>, String> {
    let mut marks = Vec::new();
    let e = |e: ota_agent::BootError<_>| format!("{e}");
    select_slot(&mut d.state(OLD).map_err(e)?, &mut d.flash, 2).map_err(e)?;
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
fn check_recovers<const W: usize>(mut d: Device<W>, allowed: &[BootTarget], context: &str) {
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
    select_slot(&mut d.state(running).unwrap(), &mut d.flash, slot).unwrap();
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

fn sweep<const W: usize>(mode: BootloaderMode, scenario: Scenario) -> u64 {
    let pristine = device::<W>(mode);
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
                &format!("{W}-byte words {mode:?} {scenario:?} cut at op {n}/{total} seed {seed}"),
            );
            cuts += 1;
        }
    }
    eprintln!(
        "{W}-byte words {mode:?} {scenario:?}: {total} flash operations, {cuts} cut points tested"
    );
    cuts
}

/// One test per sweep.
macro_rules! sweeps {
    ($word:literal: $($name:ident: $mode:expr, $scenario:expr;)+) => {$(
        #[test]
        fn $name() {
            assert!(sweep::<$word>($mode, $scenario) > 0);
        }
    )+};
}

/// Every bootloader mode and scenario, for each flash geometry.
macro_rules! every_cut {
    ($($geometry:ident: $word:literal),+) => {$(
        mod $geometry {
            use super::*;

            sweeps! { $word:
                rollback_bootloader_accept: RollbackEnabled, Scenario::Accept;
                rollback_bootloader_app_rejects: RollbackEnabled, Scenario::AppRejects;
                rollback_bootloader_crash_loop: RollbackEnabled, Scenario::CrashLoop;
                counting_accept: RollbackDisabled, Scenario::Accept;
                counting_app_rejects: RollbackDisabled, Scenario::AppRejects;
                counting_crash_loop: RollbackDisabled, Scenario::CrashLoop;
            }
        }
    )+};
}

every_cut!(every_cut_4_byte_words: 4, every_cut_32_byte_words: 32);

/// Several cuts in a row at random operations (`after` operations from the previous
/// one, damage from `seed`), each followed by a reboot that retries the same update.
fn repeated_cuts<const W: usize>(
    counting: bool,
    cuts: Vec<(u64, u64)>,
) -> Result<(), TestCaseError> {
    let mode = if counting {
        RollbackDisabled
    } else {
        RollbackEnabled
    };
    let mut d = device::<W>(mode);
    let mut running = OLD;
    for (after, seed) in cuts {
        d.flash = d.flash.clone().with_seed(seed);
        d.flash.cut_after(d.flash.operations() + after);
        // Retry the update from whatever runs now.
        let _ = (|| -> Result<(), String> {
            if running == OLD {
                select_slot(
                    &mut d.state(OLD).map_err(|e| e.to_string())?,
                    &mut d.flash,
                    2,
                )
                .map_err(|e| e.to_string())?;
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
        if let BootAttempt::Counted { .. } | BootAttempt::BootloaderTracked =
            st.record_boot_attempt(&mut d.flash, validator()).unwrap()
            && running == NEW
        {
            st.confirm(&mut d.flash).unwrap();
        }
    }
    if running == OLD {
        select_slot(&mut d.state(OLD).unwrap(), &mut d.flash, 2).unwrap();
        let (_, _, mut st) = d.boot_and_record().unwrap();
        st.confirm(&mut d.flash).unwrap();
    }
    let (r, a, _) = d.boot_and_record().unwrap();
    prop_assert_eq!((r, a), (NEW, BootAttempt::Confirmed));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Several cuts in a row at random operations, each followed by a reboot
    /// that retries the same update, over 4- or 32-byte flash words: the device
    /// always boots old or new, and once power stays on the update completes.
    #[test]
    fn repeated_random_cuts(
        counting in any::<bool>(),
        wide_words in any::<bool>(),
        cuts in proptest::collection::vec((0u64..12, any::<u64>()), 1..5),
    ) {
        if wide_words {
            repeated_cuts::<32>(counting, cuts)?;
        } else {
            repeated_cuts::<4>(counting, cuts)?;
        }
    }
}
