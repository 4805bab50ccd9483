//! Several power cuts in one update, at seeded random flash operations, in both
//! bootloader modes: complements the every-N sweep of `agent_power_cut.rs`, which cuts
//! once per run. Cuts land anywhere: in the download, the read-back, the switch, the
//! agent's own state writes, the trial boot's attempt counting and the confirm, and
//! again during the recovery from the previous cut.
//!
//! After the last cut the device must converge without help: run a valid image (old or
//! new), report it truthfully, and complete a later update. `OTA_MULTI_CUT_SEED=N`
//! reruns one seed; the default is a fixed set so that CI is reproducible.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::status::CheckResult;
use ota_device_sim::device::{BootResult, VirtualDevice};
use support::*;

/// Runs per bootloader mode; each cuts 2 to 4 times.
const RUNS: u64 = 24;

/// splitmix64: the cut points of a run follow from its seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Boots and checks until the device is idle on a confirmed image, cutting the power
/// `cuts` times at random operations within `span` of the previous boot's start.
/// Returns the cut operations (absolute) that fired.
fn run_with_cuts(d: &mut VirtualDevice, rng: &mut Rng, cuts: usize, span: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    let mut armed = None;
    for _ in 0..60 {
        if armed.is_none() && fired.len() < cuts {
            let at = d.flash.operations() + rng.below(span);
            d.flash.cut_after(at);
            armed = Some(at);
        }
        let result = d.boot(|s| (s.check(), s.reboot_required())).unwrap();
        match result {
            BootResult::PowerLost => {
                fired.push(armed.take().expect("a cut was armed"));
                d.flash.power_cycle();
            }
            BootResult::Ran {
                value: (_, true), ..
            } => {}
            BootResult::Ran {
                value:
                    (
                        Ok(
                            CheckResult::UpToDate
                            | CheckResult::NotModified
                            | CheckResult::PreviouslyFailed { .. },
                        ),
                        false,
                    ),
                ..
            } => {
                // Idle: a cut still armed would never fire (an idle check writes
                // nothing), so the run ends here.
                d.flash.cancel_cut();
                return fired;
            }
            // A trial that ran out of boots, a check interrupted earlier, ...: the
            // device goes on by itself.
            BootResult::Ran { .. }
            | BootResult::TrialsExhausted(_)
            | BootResult::RejectedTrial(_) => {}
            other => panic!("cuts {fired:?}: {other:?}"),
        }
    }
    panic!("device did not settle after cuts {fired:?}");
}

fn multi_cut(mode: BootloaderMode, seeds: &[u64]) -> usize {
    let (host, next) = hosts_with_two_releases();
    let mut base = device(&host, mode);
    boot_until_running(&mut base, |_| ());
    // Span of one clean update (check, install, switch, trial boot, confirm).
    let mut clean = VirtualDevice::new(base.flash.clone(), base.config.clone());
    let start = clean.flash.operations();
    let mut quiet = Rng(0);
    assert!(run_with_cuts(&mut clean, &mut quiet, 0, 1).is_empty());
    let span = clean.flash.operations() - start;
    assert!(span > 20, "only {span} operations");

    let mut total_cuts = 0;
    for &seed in seeds {
        let mut rng = Rng(seed);
        let cuts = 2 + rng.below(3) as usize;
        let flash = base.flash.clone().with_seed(rng.next());
        let mut d = VirtualDevice::new(flash, base.config.clone());
        let fired = run_with_cuts(&mut d, &mut rng, cuts, span);
        let ctx = format!("{mode:?} seed {seed}, cuts at {fired:?}");
        assert!(!fired.is_empty(), "{ctx}: no cut fired");
        total_cuts += fired.len();

        let (_, (firmware, status)) =
            boot_until_running(&mut d, |s| (s.firmware.clone(), s.agent.status()));
        assert!(
            firmware.version == v("1.0.0") || firmware.version == v("1.1.0"),
            "{ctx}: runs {}",
            firmware.version
        );
        assert_eq!(status.installed_version, firmware.version, "{ctx}");
        assert_eq!(status.running.slot, firmware.target, "{ctx}");
        assert!(status.trial.is_none(), "{ctx}: still on trial");

        d.config.manifest_url = next.url(MANIFEST_PATH);
        let (r, after) = check_and_reboot(&mut d);
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.2.0")
            }),
            "{ctx}"
        );
        assert_eq!(after, v("1.2.0"), "{ctx}");
    }
    eprintln!(
        "{mode:?}: {} runs, {total_cuts} cuts within a {span}-operation update",
        seeds.len()
    );
    total_cuts
}

fn seeds() -> Vec<u64> {
    match std::env::var("OTA_MULTI_CUT_SEED") {
        Ok(s) => vec![s.parse().expect("OTA_MULTI_CUT_SEED is a number")],
        Err(_) => (1..=RUNS).collect(),
    }
}

/// Every run cuts at least once; on average more than once, or this would be the
/// single-cut sweep again (a later cut is dropped when the device settles first).
fn check_count(cuts: usize, runs: usize) {
    assert!(cuts > runs || runs == 1, "{cuts} cuts in {runs} runs");
}

#[test]
fn several_random_cuts_plain_bootloader() {
    let seeds = seeds();
    check_count(multi_cut(RollbackDisabled, &seeds), seeds.len());
}

#[test]
fn several_random_cuts_rollback_bootloader() {
    let seeds = seeds();
    check_count(multi_cut(RollbackEnabled, &seeds), seeds.len());
}
