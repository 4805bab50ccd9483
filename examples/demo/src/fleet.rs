//! A fleet of virtual ESP32s in one process: one thread per device, each booting its own
//! simulated flash through the simulated ESP-IDF bootloader and running the update agent
//! against a real HTTP host, checking at an interval with jitter and rebooting when the
//! agent installed something, exactly as `ota-device-sim run` does for one device.
//!
//! Each device publishes a [`DeviceView`] after every boot and check; the fleet hands out
//! snapshots and a stream of [`Event`]s for the progress view.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ota_agent::bootloader::BootloaderMode;
use ota_agent::download::RetryPolicy;
use ota_agent::status::{CheckResult, Status, UpdateState, UpdateVia, state_label, target_label};
use ota_device_sim::SimFlash;
use ota_device_sim::device::{BootResult, DeviceConfig, RunningFirmware, VirtualDevice};
use ota_format::DeviceType;

/// How every device of the fleet is set up.
#[derive(Clone, Debug)]
pub struct FleetSpec {
    /// The manifest every device polls.
    pub manifest_url: String,
    /// The device type the devices are built as.
    pub device_type: DeviceType,
    /// Mean time between checks; each wait is drawn from ±10 % of it.
    pub interval: Duration,
    /// Device ids are `<prefix>-<n>` (they pick the rollout bucket).
    pub id_prefix: String,
    /// The bootloader build the devices have.
    pub bootloader: BootloaderMode,
}

/// What one device looks like from outside, updated after every boot and check.
#[derive(Clone, Debug)]
pub struct DeviceView {
    /// Its id.
    pub id: String,
    /// The version it ran at its first boot.
    pub first_version: Option<String>,
    /// The version it runs now.
    pub version: Option<String>,
    /// When it started running [`Self::version`].
    pub version_since: Option<Instant>,
    /// The slot it runs from.
    pub slot: String,
    /// The otadata state of that slot.
    pub slot_state: String,
    /// Where the agent's update state machine is.
    pub update: String,
    /// The result of the last check.
    pub last_check: String,
    /// Checks done.
    pub checks: u64,
    /// Checks done since the last boot.
    pub checks_this_boot: u64,
    /// Power-ons.
    pub boots: u64,
    /// HTTP requests sent (redirects included).
    pub requests: u64,
    /// Bytes received over HTTP, heads included.
    pub bytes_received: u64,
    /// Update bytes downloaded by installs (deltas, full images, a failed delta's).
    pub image_bytes: u64,
    /// How the last install arrived: `delta` or `full`.
    pub last_via: Option<String>,
    /// Trial boots that failed (health check, crash, hang).
    pub failed_trials: u32,
    /// Releases the agent rolled back and will not retry.
    pub rolled_back_releases: u8,
    /// The agent's last error.
    pub last_error: Option<String>,
    /// Set when the simulation of this device stopped on an error.
    pub fatal: Option<String>,
}

impl DeviceView {
    fn new(id: String) -> Self {
        DeviceView {
            id,
            first_version: None,
            version: None,
            version_since: None,
            slot: "-".into(),
            slot_state: "-".into(),
            update: "booting".into(),
            last_check: "-".into(),
            checks: 0,
            checks_this_boot: 0,
            boots: 0,
            requests: 0,
            bytes_received: 0,
            image_bytes: 0,
            last_via: None,
            failed_trials: 0,
            rolled_back_releases: 0,
            last_error: None,
            fatal: None,
        }
    }

    /// Whether it runs `version`, confirmed (not on trial) and idle.
    pub fn settled_on(&self, version: &str) -> bool {
        self.version.as_deref() == Some(version) && self.update == "idle"
    }
}

/// Something worth a log line.
#[derive(Clone, Debug)]
pub struct Event {
    /// Index of the device.
    pub device: usize,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug)]
pub enum EventKind {
    /// A check installed a release; the device reboots into its trial.
    Installed(String),
    /// A trial boot was confirmed by the health check.
    Confirmed(String),
    /// A trial boot failed (how, version); the agent falls back.
    TrialFailed(&'static str, String),
    /// A check failed.
    CheckFailed(String),
    /// The simulation of the device stopped.
    Fatal(String),
}

/// A running fleet. Dropping it stops the devices.
pub struct Fleet {
    views: Vec<Arc<Mutex<DeviceView>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    events: Receiver<Event>,
}

impl Fleet {
    /// Starts one device per flash. First checks are spread over one interval.
    pub fn start(spec: &FleetSpec, flashes: Vec<SimFlash>) -> std::io::Result<Fleet> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let mut views = Vec::new();
        let mut threads = Vec::new();
        let n = flashes.len().max(1);
        for (index, flash) in flashes.into_iter().enumerate() {
            let id = format!("{}-{index:04}", spec.id_prefix);
            let view = Arc::new(Mutex::new(DeviceView::new(id.clone())));
            let mut config = DeviceConfig::new(&spec.manifest_url, &id);
            config.device_type = Some(spec.device_type);
            config.bootloader = spec.bootloader;
            // Short timeouts keep a demo responsive; a real device waits longer.
            config.retry = RetryPolicy {
                max_attempts: 4,
                base_delay_ms: 200,
                max_delay_ms: 2_000,
                timeout_ms: 10_000,
                head_timeout_ms: 15_000,
                deadline_ms: 120_000,
                manifest_deadline_ms: 20_000,
                check_deadline_ms: 140_000,
                ..RetryPolicy::default()
            };
            let runner = Runner {
                index,
                device: VirtualDevice::new(flash, config),
                view: view.clone(),
                events: tx.clone(),
                stop: stop.clone(),
                interval: spec.interval,
                first_delay: spec.interval.mul_f64(index as f64 / n as f64),
                rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(id)
                    .stack_size(512 * 1024)
                    .spawn(move || runner.run())?,
            );
            views.push(view);
        }
        Ok(Fleet {
            views,
            stop,
            threads,
            events: rx,
        })
    }

    /// Number of devices.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.views.len()
    }

    /// Every device as it is now.
    pub fn snapshot(&self) -> Vec<DeviceView> {
        self.views
            .iter()
            .map(|v| {
                v.lock()
                    .map(|v| v.clone())
                    .unwrap_or_else(|e| e.into_inner().clone())
            })
            .collect()
    }

    /// Events since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Stops every device (each finishes its current check) and returns their last views.
    pub fn stop(mut self) -> Vec<DeviceView> {
        self.halt();
        self.snapshot()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Runner {
    index: usize,
    device: VirtualDevice,
    view: Arc<Mutex<DeviceView>>,
    events: Sender<Event>,
    stop: Arc<AtomicBool>,
    interval: Duration,
    first_delay: Duration,
    rng: u64,
}

/// Why the application loop of one boot ended.
enum AppExit {
    Reboot,
    Stop,
}

fn jitter(interval: Duration, rng: &mut u64) -> Duration {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let unit = (*rng >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(0.9 + 0.2 * unit)
}

/// Sleeps up to `d`, waking early when the fleet stops. Returns false when stopping.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
    false
}

fn update_label(u: &UpdateState) -> String {
    match u {
        UpdateState::Booting => "booting".into(),
        UpdateState::Idle => "idle".into(),
        UpdateState::Checking => "checking".into(),
        UpdateState::Decided { version } => format!("decided {version}"),
        UpdateState::Downloading { progress } => format!(
            "downloading {}%",
            progress.received * 100 / progress.total.max(1)
        ),
        UpdateState::Verifying => "verifying".into(),
        UpdateState::Switching => "switching".into(),
        UpdateState::RebootRequired => "rebooting".into(),
        UpdateState::TrialBoot => "trial".into(),
    }
}

fn check_label(r: &CheckResult) -> String {
    match r {
        CheckResult::NotModified => "not-modified".into(),
        CheckResult::UpToDate => "up-to-date".into(),
        CheckResult::NotInRollout { .. } => "not-in-rollout".into(),
        CheckResult::PreviouslyFailed { version } => format!("refused {version} (failed before)"),
        CheckResult::RetryLater { version, failures } => {
            format!("retrying {version} later ({failures} failed)")
        }
        CheckResult::GaveUp { version, failures } => {
            format!("gave up on {version} ({failures} failed)")
        }
        CheckResult::Installed { version } => format!("installed {version}"),
        CheckResult::Failed => "failed".into(),
    }
}

impl Runner {
    fn publish(&self, f: impl FnOnce(&mut DeviceView)) {
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        v.requests = self.device.client.requests();
        v.bytes_received = self.device.client.connection().bytes_received;
        f(&mut v);
    }

    fn event(&self, kind: EventKind) {
        let _ = self.events.send(Event {
            device: self.index,
            kind,
        });
    }

    fn run(mut self) {
        if !nap(self.first_delay, &self.stop) {
            return;
        }
        let mut trials_failed_in_a_row = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let view = self.view.clone();
            let events = self.events.clone();
            let stop = self.stop.clone();
            let (index, interval) = (self.index, self.interval);
            let mut rng = self.rng;
            let result = self.device.boot(|s| {
                let status = s.agent.status();
                if let Some(kind) = record_boot(&view, &s.firmware, &status) {
                    let _ = events.send(Event {
                        device: index,
                        kind,
                    });
                }
                loop {
                    let result = s.check();
                    let status = s.agent.status();
                    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
                    v.checks += 1;
                    v.checks_this_boot += 1;
                    record_status(&mut v, &status);
                    match &result {
                        Ok(r) => {
                            v.last_check = check_label(r);
                            if let CheckResult::Installed { version } = r {
                                match status.last_update {
                                    Some(u) => {
                                        v.image_bytes += u.bytes_downloaded;
                                        v.last_via = Some(
                                            match u.via {
                                                UpdateVia::Delta => "delta",
                                                UpdateVia::Full => "full",
                                            }
                                            .into(),
                                        );
                                    }
                                    None => {
                                        v.image_bytes += status.download.map_or(0, |d| d.received)
                                    }
                                }
                                let _ = events.send(Event {
                                    device: index,
                                    kind: EventKind::Installed(version.to_string()),
                                });
                            }
                        }
                        Err(e) => {
                            v.last_check = "error".into();
                            let _ = events.send(Event {
                                device: index,
                                kind: EventKind::CheckFailed(e.to_string()),
                            });
                        }
                    }
                    drop(v);
                    if s.reboot_required() {
                        return AppExit::Reboot;
                    }
                    if !nap(jitter(interval, &mut rng), &stop) {
                        return AppExit::Stop;
                    }
                }
            });
            self.rng = rng;
            match result {
                Ok(BootResult::Ran { value, .. }) => {
                    trials_failed_in_a_row = 0;
                    self.publish(|_| {});
                    if matches!(value, AppExit::Stop) {
                        return;
                    }
                }
                Ok(BootResult::Crashed(f)) => {
                    self.trial_failed("crashed", &f, &mut trials_failed_in_a_row)
                }
                Ok(BootResult::RejectedTrial(f)) => {
                    self.trial_failed("health check failed", &f, &mut trials_failed_in_a_row)
                }
                Ok(BootResult::TrialsExhausted(f)) => {
                    self.trial_failed("trial boots used up", &f, &mut trials_failed_in_a_row)
                }
                Ok(BootResult::AgentFailed(f, e)) => {
                    self.trial_failed("agent failed", &f, &mut trials_failed_in_a_row);
                    self.publish(|v| v.last_error = Some(e.to_string()));
                }
                Ok(BootResult::NoBootableApp) => return self.fatal("no bootable app".into()),
                Ok(BootResult::PowerLost) => return self.fatal("power lost".into()),
                Err(e) => return self.fatal(e.to_string()),
            }
            if trials_failed_in_a_row > 20 {
                return self.fatal("boot loop".into());
            }
        }
    }

    fn trial_failed(&mut self, how: &'static str, f: &RunningFirmware, in_a_row: &mut u32) {
        *in_a_row += 1;
        self.publish(|v| {
            v.failed_trials += 1;
            v.update = "rebooting".into();
        });
        self.event(EventKind::TrialFailed(how, f.version.to_string()));
    }

    fn fatal(&self, why: String) {
        self.publish(|v| v.fatal = Some(why.clone()));
        self.event(EventKind::Fatal(why));
    }
}

/// Records a boot that reached the application (so any trial was confirmed); returns the
/// event when the device now runs another version than before.
fn record_boot(
    view: &Mutex<DeviceView>,
    firmware: &RunningFirmware,
    status: &Status,
) -> Option<EventKind> {
    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
    let version = firmware.version.to_string();
    v.boots += 1;
    v.checks_this_boot = 0;
    record_status(&mut v, status);
    if v.first_version.is_none() {
        v.first_version = Some(version.clone());
    }
    if v.version.as_deref() == Some(&version) {
        return None;
    }
    let first = v.version.is_none();
    v.version = Some(version.clone());
    v.version_since = Some(Instant::now());
    (!first).then_some(EventKind::Confirmed(version))
}

fn record_status(v: &mut DeviceView, status: &Status) {
    v.slot = target_label(status.running.slot).to_string();
    v.slot_state = status
        .running
        .state
        .map_or_else(|| "-".to_owned(), |s| state_label(s).to_owned());
    v.update = update_label(&status.update);
    v.rolled_back_releases = status.rolled_back_releases;
    v.last_error = status.last_error.map(|e| e.error.to_string());
}

/// Peak resident memory of this process (`VmHWM`), bytes, where Linux tells.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
