//! The agent over the strict test flash, the simulated ESP-IDF bootloader of
//! `ota_agent::bootloader` and an in-memory static host. End-to-end runs over real HTTP
//! and power-cut sweeps live in the simulator crate's tests.

mod common;

use std::cell::Cell;

use ota_format::{Channel, FormatError, TrustedKey, TrustedKeyDescriptor, Version};

use common::http::{NoDelay, SliceBody, Ticks};
use ota_agent::agent::*;
use ota_agent::boot::BootConfig;
use ota_agent::bootloader::{self, BootloaderMode};
use ota_agent::download::{Clock, RetryPolicy};
use ota_agent::geometry::{BootTarget, Geometry, Region};
use ota_agent::http::{ETag, HttpClient, HttpError, Request, ResponseHead};
use ota_agent::status::{CheckResult, Status, UpdateState};
use ota_flash_sim::SimFlash;
use ota_testkit::fixture::{self as ts, Spec};

const MANIFEST_URL: &str = "http://host/fw/sensor.stable.manifest";
const IMAGE_NAME: &str = "sensor-1.1.0.ota";
const IMAGE_URL: &str = "http://host/fw/sensor-1.1.0.ota";

fn geometry() -> Geometry {
    Geometry::new(
        Region::new(0xD000, 0x2000),
        None,
        &[Region::new(0x10000, 0x30000), Region::new(0x40000, 0x30000)],
    )
    .unwrap()
}

/// A static host: exact URLs, strong ETags, byte ranges.
#[derive(Default)]
struct Host {
    files: Vec<(String, Vec<u8>)>,
    requests: Vec<(String, bool)>,
}

impl Host {
    fn put(&mut self, url: &str, bytes: Vec<u8>) {
        self.files.retain(|(u, _)| u != url);
        self.files.push((url.into(), bytes));
    }

    fn image_requests(&self) -> usize {
        self.requests.iter().filter(|(u, _)| u == IMAGE_URL).count()
    }
}

fn etag_of(bytes: &[u8]) -> ETag {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    ETag::new(&format!(
        "\"{:02x}{:02x}{:02x}{:02x}\"",
        d[0], d[1], d[2], d[3]
    ))
    .unwrap()
}

impl HttpClient for &mut Host {
    type Body<'c>
        = SliceBody<'c>
    where
        Self: 'c;

    async fn get<'c>(
        &'c mut self,
        req: &Request<'_>,
    ) -> Result<(ResponseHead, SliceBody<'c>), HttpError> {
        self.requests
            .push((req.url.into(), req.if_none_match.is_some()));
        let Some((_, bytes)) = self.files.iter().find(|(u, _)| u == req.url) else {
            return Ok((ResponseHead::bodiless(404, None), SliceBody(&[])));
        };
        let etag = etag_of(bytes);
        if req.if_none_match == Some(&etag) {
            return Ok((ResponseHead::bodiless(304, Some(etag)), SliceBody(&[])));
        }
        let head = ResponseHead::of_file(bytes.len() as u64, req.range_from, Some(etag));
        let from = req.range_from.unwrap_or(0) as usize;
        Ok((head, SliceBody(&bytes[from..])))
    }
}

/// A device: flash plus what survives between boots (nothing else does).
struct Device {
    flash: SimFlash,
    mode: BootloaderMode,
    /// The phase of every status the agents of this device published, in order.
    published: Vec<UpdateState>,
}

struct Booted {
    target: BootTarget,
    version: Version,
    keys: Vec<TrustedKey>,
}

impl Device {
    fn new(mode: BootloaderMode) -> Self {
        let mut flash = SimFlash::new(0x70000).require_erase_outside(0xD000..0xF000);
        let app = ts::app_image("1.0.0", 30_000);
        flash.bytes_mut()[0x10000..0x10000 + app.len()].copy_from_slice(&app);
        Device {
            flash,
            mode,
            published: Vec::new(),
        }
    }

    /// The simulated ROM + second-stage bootloader, then the firmware's descriptors.
    fn boot(&mut self) -> Booted {
        let g = geometry();
        let target = bootloader::boot(&mut self.flash, &g, self.mode, |f, _, region| {
            slot_is_bootable(f, region, ts::chip())
        })
        .unwrap()
        .expect("something boots");
        let region = g.region(target).unwrap();
        let image =
            &self.flash.bytes()[region.offset as usize..(region.offset + region.size) as usize];
        let desc = ota_format::esp::AppDescriptor::find_in_image(image).unwrap();
        let keys = TrustedKeyDescriptor::find_in(image).unwrap().unwrap();
        Booted {
            target,
            version: Version::parse(desc.version()).unwrap(),
            keys: keys.keys().to_vec(),
        }
    }

    /// Boots and runs `f` with a started agent.
    fn run<R>(
        &mut self,
        host: &mut Host,
        f: impl FnOnce(&mut Agent<'_, &mut SimFlash, &mut Host, NoDelay, &Ticks>, BootOutcome) -> R,
    ) -> R {
        let booted = self.boot();
        let config = AgentConfig {
            manifest_url: MANIFEST_URL,
            device_id: b"device-1",
            channel: Channel::new("stable").unwrap(),
            geometry: geometry(),
            state_region: Region::new(0xB000, 0x2000),
            boot: match self.mode {
                BootloaderMode::RollbackEnabled => BootConfig::rollback_bootloader(3),
                BootloaderMode::RollbackDisabled => BootConfig::counting(3),
            },
            retry: RetryPolicy::default(),
            max_window_log: DEFAULT_WINDOW_LOG,
            generation: Default::default(),
            security_counter_floor: 0,
            identify: Default::default(),
        };
        let firmware = Firmware {
            device_type: ts::device_type(),
            chip: ts::chip(),
            version: booted.version,
            trusted_keys: &booted.keys,
            running: booted.target,
        };
        let ticks = Ticks(Cell::new(0));
        let mut memory = Box::new(DefaultUpdateMemory::new());
        let mut sink = Phases::default();
        // The agent borrows the sink: it ends before the phases are read.
        let r = {
            let (mut agent, outcome) = Agent::start(
                config,
                firmware,
                &mut self.flash,
                host,
                NoDelay,
                &ticks,
                memory.buffers(),
                &mut sink,
            )
            .unwrap();
            f(&mut agent, outcome)
        };
        self.published.extend(sink.0);
        r
    }
}

fn check<F, C, D, K>(agent: &mut Agent<'_, F, C, D, K>) -> Result<CheckResult, AgentError>
where
    F: embedded_storage::nor_flash::MultiwriteNorFlash,
    C: HttpClient,
    D: embedded_hal_async::delay::DelayNs,
    K: Clock,
{
    embassy_futures::block_on(agent.check())
}

fn publish(host: &mut Host, spec: &Spec) {
    // Every release is served at IMAGE_URL, whatever its version.
    let spec = Spec {
        image_name: Some(IMAGE_NAME),
        ..spec.clone()
    };
    let release = ts::release(&spec, ts::app_image(spec.version, 30_000));
    host.put(IMAGE_URL, release.ota);
    host.put(MANIFEST_URL, release.manifest);
}

const BOTH_MODES: [BootloaderMode; 2] = [
    BootloaderMode::RollbackDisabled,
    BootloaderMode::RollbackEnabled,
];

/// A fresh device in `mode` and a server that publishes the default release.
fn published(mode: BootloaderMode) -> (Device, Host) {
    let mut host = Host::default();
    publish(&mut host, &Spec::default());
    (Device::new(mode), host)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// The status says `version` is installed and runs from `slot`.
fn assert_runs(status: &Status, version: &str, slot: BootTarget) {
    assert_eq!(
        (status.installed_version, status.running.slot),
        (v(version), slot)
    );
}

#[test]
fn update_confirm_and_idle_check_in_both_modes() {
    for mode in BOTH_MODES {
        let (mut dev, mut host) = published(mode);
        let r = dev.run(&mut host, |a, outcome| {
            assert_eq!(outcome, BootOutcome::Normal);
            let r = check(a);
            assert_eq!(a.status().update, UpdateState::RebootRequired);
            // Checking again before the reboot must not touch the switched-to slot.
            assert_eq!(check(a), Err(AgentError::RebootPending));
            assert_eq!(a.status().update, UpdateState::RebootRequired);
            r
        });
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.1.0")
            })
        );
        dev.run(&mut host, |a, outcome| {
            let BootOutcome::Trial(trial) = outcome else {
                panic!("{mode:?}: not a trial: {outcome:?}")
            };
            assert_runs(&a.status(), "1.1.0", BootTarget::Ota(1));
            assert_eq!(check(a), Err(AgentError::TrialInProgress));
            a.confirm(trial).unwrap();
            assert_eq!(a.saved_state().security_counter, 1);
            assert_eq!(a.saved_state().pending, None);
            assert_eq!(check(a), Ok(CheckResult::UpToDate));
            assert_eq!(check(a), Ok(CheckResult::NotModified));
            let s = a.status();
            assert_eq!(s.other.unwrap().version, Some(v("1.0.0")));
        });
        // Confirmed images stay.
        dev.run(&mut host, |a, outcome| {
            assert_eq!(outcome, BootOutcome::Normal);
            assert_eq!(a.status().installed_version, v("1.1.0"));
        });
        assert_eq!(host.image_requests(), 1);
    }
}

#[test]
fn failed_health_check_rolls_back_and_is_not_retried() {
    for mode in BOTH_MODES {
        let (mut dev, mut host) = published(mode);
        dev.run(&mut host, |a, _| check(a)).unwrap();
        dev.run(&mut host, |a, outcome| {
            let BootOutcome::Trial(trial) = outcome else {
                panic!("not a trial: {outcome:?}")
            };
            a.reject(trial).unwrap();
        });
        dev.run(&mut host, |a, outcome| {
            assert_eq!(outcome, BootOutcome::Normal, "{mode:?}");
            let s = a.status();
            assert_runs(&s, "1.0.0", BootTarget::Ota(0));
            assert_eq!(s.rolled_back_releases, 1);
            assert_eq!(
                check(a),
                Ok(CheckResult::PreviouslyFailed {
                    version: v("1.1.0")
                })
            );
            // The counter of the rejected image was never adopted.
            assert_eq!(a.saved_state().security_counter, 0);
        });
        assert_eq!(host.image_requests(), 1);
        // A new release is tried again.
        publish(
            &mut host,
            &Spec {
                version: "1.1.1",
                sequence: 3,
                ..Spec::default()
            },
        );
        let r = dev.run(&mut host, |a, _| check(a));
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.1.1")
            })
        );
    }
}

#[test]
fn unconfirmed_boots_fall_back_in_both_modes() {
    for mode in BOTH_MODES {
        let (mut dev, mut host) = published(mode);
        dev.run(&mut host, |a, _| check(a)).unwrap();
        // The new image "crashes" after the agent's boot hook, every time.
        let mut boots = 0;
        loop {
            boots += 1;
            assert!(boots < 10, "{mode:?}: never fell back");
            let (outcome, version) = dev.run(&mut host, |a, o| (o, a.status().installed_version));
            if version == v("1.0.0") {
                assert_eq!(outcome, BootOutcome::Normal);
                break;
            }
        }
        let expected = match mode {
            // Counted boots 1..=3, then the fourth marks it invalid.
            BootloaderMode::RollbackDisabled => 5,
            // PENDING_VERIFY once, then ABORTED by the bootloader.
            BootloaderMode::RollbackEnabled => 2,
        };
        assert_eq!(boots, expected, "{mode:?}");
        dev.run(&mut host, |a, _| {
            assert_eq!(a.saved_state().failed_images().len(), 1);
        });
    }
}

#[test]
fn replayed_and_foreign_manifests_are_refused() {
    let mut dev = Device::new(BootloaderMode::RollbackDisabled);
    let mut host = Host::default();
    publish(
        &mut host,
        &Spec {
            version: "1.0.0",
            sequence: 5,
            ..Spec::default()
        },
    );
    assert_eq!(
        dev.run(&mut host, |a, _| check(a)),
        Ok(CheckResult::UpToDate)
    );
    let cases: [(Spec, AgentError); 4] = [
        (
            Spec {
                sequence: 4,
                ..Spec::default()
            },
            AgentError::Manifest(FormatError::SequenceRollback),
        ),
        (
            Spec {
                sequence: 6,
                signer: ts::OTHER_SEED,
                ..Spec::default()
            },
            AgentError::Manifest(FormatError::UnknownKey),
        ),
        (
            Spec {
                sequence: 6,
                device_type: "camera",
                ..Spec::default()
            },
            AgentError::Manifest(FormatError::WrongDeviceType),
        ),
        (
            Spec {
                sequence: 6,
                chip: ota_format::ChipId(9),
                ..Spec::default()
            },
            AgentError::Manifest(FormatError::WrongChip),
        ),
    ];
    for (spec, error) in cases {
        publish(&mut host, &spec);
        dev.run(&mut host, |a, _| {
            assert_eq!(check(a), Err(error));
            let s = a.status();
            assert_eq!(s.installed_version, v("1.0.0"));
            assert_eq!(s.last_error.unwrap().error, error);
            assert_eq!(s.last_check.unwrap().result, CheckResult::Failed);
        });
    }
    assert_eq!(host.image_requests(), 0);
}

#[test]
fn status_serializes_to_json() {
    let (mut dev, mut host) = published(BootloaderMode::RollbackDisabled);
    let json = dev.run(&mut host, |a, _| {
        check(a).unwrap();
        serde_json::to_value(a.status()).unwrap()
    });
    assert_eq!(json["installed_version"], "1.0.0");
    assert_eq!(json["device_type"], "sensor");
    assert_eq!(json["chip"], "esp32c3");
    assert_eq!(json["bootloader_mode"], "plain");
    assert_eq!(json["running"]["slot"], "ota_0");
    assert_eq!(json["running"]["state"], "valid");
    assert_eq!(json["other"]["slot"], "ota_1");
    assert_eq!(json["other"]["state"], "undefined");
    assert_eq!(json["other"]["version"], "1.1.0");
    assert_eq!(json["update"]["state"], "reboot_required");
    assert_eq!(json["last_check"]["result"]["result"], "installed");
    assert_eq!(json["download"]["received"], json["download"]["total"]);
    let key = ts::trusted()[0].id();
    assert_eq!(json["trusted_keys"][0], format!("{key}"));
    assert!(json["last_error"].is_null());
    // No delta on this host (a 404): the full image, and only its bytes.
    assert_eq!(json["last_update"]["version"], "1.1.0");
    assert_eq!(json["last_update"]["via"], "full");
    assert_eq!(
        json["last_update"]["bytes_downloaded"],
        json["download"]["total"]
    );
}

/// Records the phase of every published status.
#[derive(Default)]
struct Phases(Vec<UpdateState>);

impl StatusSink for Phases {
    fn status(&mut self, status: &ota_agent::status::Status) {
        self.0.push(status.update);
    }

    fn progress(&mut self, _: &ota_agent::download::DownloadProgress) {}
}

#[test]
fn every_phase_change_is_published_once_in_order_and_errors_name_their_phase() {
    let (mut dev, mut host) = published(BootloaderMode::RollbackDisabled);
    dev.run(&mut host, |a, _| check(a)).unwrap();
    let names: Vec<&str> = dev.published.iter().map(UpdateState::name).collect();
    assert_eq!(
        names,
        [
            "idle",
            "checking",
            "decided",
            "downloading",
            "verifying",
            "switching",
            "reboot_required"
        ]
    );
    assert_eq!(
        dev.published[2],
        UpdateState::Decided {
            version: v("1.1.0")
        }
    );
    dev.published.clear();
    dev.run(&mut host, |a, outcome| {
        let BootOutcome::Trial(trial) = outcome else {
            panic!("not a trial: {outcome:?}")
        };
        // A check during the trial is refused, and says it was refused in the trial.
        assert_eq!(check(a), Err(AgentError::TrialInProgress));
        let error = a.status().last_error.unwrap();
        assert_eq!(error.phase, UpdateState::TrialBoot);
        a.confirm(trial).unwrap();
    });
    let names: Vec<&str> = dev.published.iter().map(UpdateState::name).collect();
    assert_eq!(names, ["trial_boot", "trial_boot", "idle"]);
}
