//! A virtual ESP32: flash, the simulated ESP-IDF bootloader, and "running" whatever
//! image it starts, exactly as a device would know it: version from the app descriptor,
//! trusted keys from the key descriptor, and (for tests) a behaviour marked inside the
//! image with [`BEHAVIOUR_MARKER`] followed by `health-fail`, `crash-at-boot` or `hang`.
//!
//! One [`VirtualDevice::boot`] is one power-on: bootloader, the agent's boot hook,
//! the image's behaviour, the health check (confirm or reject), then the application
//! closure runs with the agent until it returns. A power cut can happen at any flash
//! operation of any of these; the boot then reports [`BootResult::PowerLost`] and the
//! next boot starts from whatever the cut left.
//!
//! Longer than our usual file (~640 lines): one power-on is one sequence (bootloader,
//! boot hook, behaviour, health check, application) and the cut can land in any step;
//! split across files, the order of the steps would be harder to follow than it is long.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use embedded_hal_async::delay::DelayNs;
use esp_idf_part::{AppType, Flags, Partition, PartitionTable, SubType, Type};
use ota_agent::agent::{
    Agent, AgentConfig, AgentError, BootOutcome, DEFAULT_WINDOW_LOG, Firmware, StatusSink,
    UpdateMemory, slot_is_bootable,
};
use ota_agent::boot::BootConfig;
use ota_agent::bootloader::BootloaderMode;
use ota_agent::download::{Clock, DownloadProgress, RetryPolicy};
use ota_agent::geometry::{BootTarget, Region};
use ota_agent::identity::Identify;
use ota_agent::install::Generation;
use ota_agent::partition_table::PARTITION_TABLE_OFFSET;
use ota_agent::state::StateStore;
use ota_agent::status::{CheckResult, Status, UpdateState, state_label, target_label};
use ota_format::esp::find_descriptors;
use ota_format::{Channel, ChipId, DeviceType, TrustedKey, Version};

use crate::bootloader::{SimBootError, SimBootloader};
use crate::http_client::{StdHttpClient, std_http_client};
use crate::layout::{Layout, LayoutError};
use crate::simflash::{SimFlash, SimFlashError, WordFlash};

/// Marks a test behaviour inside an image: the marker, then the behaviour's name.
pub const BEHAVIOUR_MARKER: &[u8] = b"OTA-SIM-BEHAVIOUR:";
use ota_format::esp::layout::DEFAULT_DATA_PARTITIONS;
/// Name of the data partition holding the agent's state.
pub use ota_format::esp::layout::STATE_PARTITION;

/// What the image does when it runs (normal firmware has no marker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Starts, passes its health check, keeps running.
    Normal,
    /// Starts, fails its health check.
    HealthFail,
    /// Crashes right after the agent's boot hook, every boot.
    CrashAtBoot,
    /// Hangs after the agent's boot hook until the watchdog resets it.
    Hang,
}

impl Behaviour {
    /// The marker text for this behaviour, to embed in a test image.
    pub fn marker(self) -> Option<&'static str> {
        match self {
            Behaviour::Normal => None,
            Behaviour::HealthFail => Some("OTA-SIM-BEHAVIOUR:health-fail"),
            Behaviour::CrashAtBoot => Some("OTA-SIM-BEHAVIOUR:crash-at-boot"),
            Behaviour::Hang => Some("OTA-SIM-BEHAVIOUR:hang"),
        }
    }

    /// The behaviour's name in status JSON and logs.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::HealthFail => "health-fail",
            Behaviour::CrashAtBoot => "crash-at-boot",
            Behaviour::Hang => "hang",
        }
    }

    /// Finds the behaviour marked in an image.
    pub fn find_in(image: &[u8]) -> Self {
        let Some(at) = image
            .windows(BEHAVIOUR_MARKER.len())
            .position(|w| w == BEHAVIOUR_MARKER)
        else {
            return Behaviour::Normal;
        };
        let rest = &image[at + BEHAVIOUR_MARKER.len()..];
        for b in [
            Behaviour::HealthFail,
            Behaviour::CrashAtBoot,
            Behaviour::Hang,
        ] {
            let name = &b.marker().unwrap_or("").as_bytes()[BEHAVIOUR_MARKER.len()..];
            if rest.starts_with(name) {
                return b;
            }
        }
        Behaviour::Normal
    }
}

/// How the virtual device is set up.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The manifest URL.
    pub manifest_url: String,
    /// The device's unique id.
    pub device_id: String,
    /// Device type; by default the app descriptor's project name.
    pub device_type: Option<DeviceType>,
    /// The chip simulated.
    pub chip: ChipId,
    /// The channel followed.
    pub channel: Channel,
    /// The bootloader build.
    pub bootloader: BootloaderMode,
    /// Trial boots before the agent falls back (no-rollback bootloader).
    pub max_boot_attempts: u8,
    /// Download retries and timeouts.
    pub retry: RetryPolicy,
    /// Largest zstd window log accepted.
    pub max_window_log: u8,
    /// Which agent the device runs: 2 (this one, deltas and compression method 2) or 1
    /// (the agent in the field before issue 13), for mixed-fleet tests.
    pub generation: Generation,
    /// What the device says about itself in its requests' `User-Agent`.
    pub identify: Identify,
}

impl DeviceConfig {
    /// An ESP32-C3 on channel `stable` with a no-rollback bootloader.
    pub fn new(manifest_url: &str, device_id: &str) -> Self {
        DeviceConfig {
            manifest_url: manifest_url.into(),
            device_id: device_id.into(),
            device_type: None,
            chip: ChipId(5),
            channel: Channel::new("stable").unwrap_or_else(|| unreachable!("valid name")),
            bootloader: BootloaderMode::RollbackDisabled,
            max_boot_attempts: 3,
            retry: RetryPolicy::default(),
            max_window_log: DEFAULT_WINDOW_LOG,
            generation: Generation::Two,
            identify: Identify::HashedId,
        }
    }
}

/// Why the simulation itself could not go on (not a device-level failure).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The partition table is unusable.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The partition table has no `ota_state` data partition of two sectors.
    #[error("partition table has no usable `{STATE_PARTITION}` partition")]
    NoStatePartition,
    /// The running image has no usable descriptors.
    #[error("booted image: {0}")]
    Firmware(String),
    /// The flash file could not be read or written.
    #[error("flash file: {0}")]
    Io(#[from] std::io::Error),
    /// A partition table could not be built.
    #[error("partition table: {0}")]
    Table(#[from] esp_idf_part::Error),
}

/// What the running image says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningFirmware {
    /// Where it runs from.
    pub target: BootTarget,
    /// Its version (app descriptor).
    pub version: Version,
    /// Its device type.
    pub device_type: DeviceType,
    /// The keys it trusts (key descriptor).
    pub keys: Vec<TrustedKey>,
    /// Its test behaviour.
    pub behaviour: Behaviour,
}

/// How one power-on ended.
#[derive(Debug)]
pub enum BootResult<R> {
    /// The application ran and returned `R`.
    Ran {
        /// What ran.
        firmware: RunningFirmware,
        /// Whether this boot was a trial that the health check confirmed.
        confirmed_trial: bool,
        /// What the application returned.
        value: R,
    },
    /// The image crashed or hung after the agent's boot hook (the watchdog resets).
    Crashed(RunningFirmware),
    /// The health check failed on a trial boot; the agent rolled back.
    RejectedTrial(RunningFirmware),
    /// The agent used up the trial boots and pointed otadata back.
    TrialsExhausted(RunningFirmware),
    /// The agent could not start (its error), the image ran without it.
    AgentFailed(RunningFirmware, AgentError),
    /// No partition holds a bootable image (the real bootloader resets forever).
    NoBootableApp,
    /// The power failed during this boot.
    PowerLost,
}

/// Sleeps for real.
pub struct StdDelay;

impl DelayNs for StdDelay {
    async fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(Duration::from_nanos(u64::from(ns)));
    }
}

/// Milliseconds since the simulated power-on, and the host's Unix time.
pub struct StdClock(Instant);

impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    fn unix_time(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// The status as last published, shared with the status server thread.
#[derive(Debug, Default)]
pub struct Published {
    /// The agent's status.
    pub status: Option<Status>,
    /// Boots so far.
    pub boots: u64,
    /// The running image's behaviour.
    pub behaviour: Option<Behaviour>,
}

impl Published {
    /// The status as JSON, with the simulator's own fields under `sim`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = match &self.status {
            Some(status) => serde_json::to_value(status).unwrap_or_default(),
            None => serde_json::json!({ "update": { "state": "booting" } }),
        };
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "sim".into(),
                serde_json::json!({
                    "boots": self.boots,
                    "behaviour": self.behaviour.map(Behaviour::name),
                }),
            );
        }
        value
    }
}

/// A [`StatusSink`] publishing into shared memory.
#[derive(Clone, Debug, Default)]
pub struct SharedStatus(pub Arc<Mutex<Published>>);

impl StatusSink for SharedStatus {
    fn status(&mut self, status: &Status) {
        if let Ok(mut p) = self.0.lock() {
            p.status = Some(*status);
        }
    }

    fn progress(&mut self, progress: &DownloadProgress) {
        if let Ok(mut p) = self.0.lock()
            && let Some(s) = p.status.as_mut()
        {
            s.download = Some(*progress);
            s.update = UpdateState::Downloading {
                progress: *progress,
            };
        }
    }
}

/// The agent as the simulator runs it, over flash with `WRITE_SIZE`-byte words.
pub type SimAgent<'s, const WRITE_SIZE: usize = 4> =
    Agent<'s, &'s mut WordFlash<WRITE_SIZE>, &'s mut StdHttpClient, StdDelay, StdClock>;

/// The application's view during one boot.
pub struct Session<'s, const WRITE_SIZE: usize = 4> {
    /// The agent.
    pub agent: SimAgent<'s, WRITE_SIZE>,
    /// What runs.
    pub firmware: RunningFirmware,
}

impl<const WRITE_SIZE: usize> Session<'_, WRITE_SIZE> {
    /// One update check (blocking).
    pub fn check(&mut self) -> Result<CheckResult, AgentError> {
        embassy_futures::block_on(self.agent.check())
    }

    /// Whether the last check installed an image: the app must reboot.
    pub fn reboot_required(&mut self) -> bool {
        self.agent.status().update == UpdateState::RebootRequired
    }
}

/// A virtual device, its flash written in `WRITE_SIZE`-byte words (ESP32's 4 unless a
/// test runs another geometry).
pub struct VirtualDevice<const WRITE_SIZE: usize = 4> {
    /// Its flash.
    pub flash: WordFlash<WRITE_SIZE>,
    /// Its configuration.
    pub config: DeviceConfig,
    /// Its HTTP client (statistics survive reboots).
    pub client: StdHttpClient,
    /// Where status is published.
    pub shared: SharedStatus,
    memory: Box<UpdateMemory>,
}

impl<const WRITE_SIZE: usize> VirtualDevice<WRITE_SIZE> {
    /// A device with this flash.
    pub fn new(flash: WordFlash<WRITE_SIZE>, config: DeviceConfig) -> Self {
        VirtualDevice {
            flash,
            config,
            client: std_http_client(),
            shared: SharedStatus::default(),
            memory: Box::new(UpdateMemory::new()),
        }
    }

    /// The same device (flash contents and counters, configuration, client, status)
    /// over flash written in `W`-byte words: one fixture, several flash geometries.
    pub fn into_geometry<const W: usize>(self) -> VirtualDevice<W> {
        VirtualDevice {
            flash: self.flash.into_geometry(),
            config: self.config,
            client: self.client,
            shared: self.shared,
            memory: self.memory,
        }
    }

    fn power_lost<R>(&self) -> Option<BootResult<R>> {
        self.flash.is_dead().then_some(BootResult::PowerLost)
    }

    /// One power-on; `app` runs with the agent once the image is up and healthy.
    pub fn boot<R>(
        &mut self,
        app: impl FnOnce(&mut Session<'_, WRITE_SIZE>) -> R,
    ) -> Result<BootResult<R>, SimError> {
        if self.flash.is_dead() {
            self.flash.power_cycle();
        }
        if let Ok(mut p) = self.shared.0.lock() {
            p.boots += 1;
            p.status = None;
        }
        let chip = self.config.chip;
        let bootloader = SimBootloader::new(self.config.bootloader);
        let report = match bootloader.boot(
            &mut self.flash,
            &mut |f: &mut WordFlash<WRITE_SIZE>, _, region| slot_is_bootable(f, region, chip),
        ) {
            Ok(report) => report,
            Err(SimBootError::Flash(SimFlashError::PowerLost)) => return Ok(BootResult::PowerLost),
            Err(SimBootError::Layout(LayoutError::Flash(SimFlashError::PowerLost))) => {
                return Ok(BootResult::PowerLost);
            }
            Err(SimBootError::Layout(e)) => return Err(e.into()),
            Err(SimBootError::Flash(e)) => return Err(SimError::Firmware(e.to_string())),
        };
        let (Some(target), Some(region)) = (report.booted, report.booted_region()) else {
            return Ok(BootResult::NoBootableApp);
        };
        let firmware = self.describe(target, region)?;
        let state_region = state_region(&report.layout)?;
        if let Ok(mut p) = self.shared.0.lock() {
            p.behaviour = Some(firmware.behaviour);
        }

        let config = AgentConfig {
            manifest_url: &self.config.manifest_url,
            device_id: self.config.device_id.as_bytes(),
            channel: self.config.channel,
            geometry: report.layout.geometry,
            state_region,
            boot: match self.config.bootloader {
                BootloaderMode::RollbackEnabled => {
                    BootConfig::rollback_bootloader(self.config.max_boot_attempts)
                }
                BootloaderMode::RollbackDisabled => {
                    BootConfig::counting(self.config.max_boot_attempts)
                }
            },
            retry: self.config.retry,
            max_window_log: self.config.max_window_log,
            generation: self.config.generation,
            security_counter_floor: 0,
            identify: self.config.identify,
        };
        let agent_firmware = Firmware {
            device_type: firmware.device_type,
            chip,
            version: firmware.version,
            trusted_keys: &firmware.keys,
            running: target,
        };
        let mut sink = self.shared.clone();
        let started = Agent::start(
            config,
            agent_firmware,
            &mut self.flash,
            &mut self.client,
            StdDelay,
            StdClock(Instant::now()),
            self.memory.buffers(),
            &mut sink,
        );
        let (mut agent, outcome) = match started {
            Ok(started) => started,
            Err(e) => {
                return Ok(self
                    .power_lost()
                    .unwrap_or(BootResult::AgentFailed(firmware, e)));
            }
        };
        let outcome = match (outcome, firmware.behaviour) {
            (BootOutcome::RebootRequired, _) => {
                return Ok(BootResult::TrialsExhausted(firmware));
            }
            (_, Behaviour::CrashAtBoot | Behaviour::Hang) => {
                return Ok(self.power_lost().unwrap_or(BootResult::Crashed(firmware)));
            }
            (BootOutcome::Trial(trial), Behaviour::HealthFail) => {
                let r = agent.reject(trial);
                if let Some(lost) = self.power_lost() {
                    return Ok(lost);
                }
                return Ok(match r {
                    Ok(()) => BootResult::RejectedTrial(firmware),
                    Err(e) => BootResult::AgentFailed(firmware, e),
                });
            }
            (outcome, _) => outcome,
        };
        let confirmed_trial = matches!(outcome, BootOutcome::Trial(_));
        if let BootOutcome::Trial(trial) = outcome
            && let Err(e) = agent.confirm(trial)
        {
            return Ok(self
                .power_lost()
                .unwrap_or(BootResult::AgentFailed(firmware, e)));
        }
        let mut session = Session {
            agent,
            firmware: firmware.clone(),
        };
        let value = app(&mut session);
        Ok(self.power_lost().unwrap_or(BootResult::Ran {
            firmware,
            confirmed_trial,
            value,
        }))
    }

    /// Reads what the image in `region` says about itself.
    fn describe(&self, target: BootTarget, region: Region) -> Result<RunningFirmware, SimError> {
        let image =
            &self.flash.bytes()[region.offset as usize..(region.offset + region.size) as usize];
        let desc = find_descriptors(image).map_err(|e| SimError::Firmware(e.to_string()))?;
        let version = Version::parse(desc.app.version()).ok_or_else(|| {
            SimError::Firmware(format!("version {:?} is not semver", desc.app.version()))
        })?;
        let device_type = match self.config.device_type {
            Some(t) => t,
            None => DeviceType::new(desc.app.project_name()).ok_or_else(|| {
                SimError::Firmware(format!(
                    "project name {:?} is not a device type",
                    desc.app.project_name()
                ))
            })?,
        };
        // A firmware without a key descriptor trusts nobody: it can never update.
        let keys = desc
            .trusted_keys
            .map(|d| d.keys().to_vec())
            .unwrap_or_default();
        Ok(RunningFirmware {
            target,
            version,
            device_type,
            keys,
            behaviour: Behaviour::find_in(image),
        })
    }
}

/// The agent's state partition: a data partition named [`STATE_PARTITION`].
pub fn state_region(layout: &Layout) -> Result<Region, SimError> {
    let p = layout
        .table
        .find(STATE_PARTITION)
        .ok_or(SimError::NoStatePartition)?;
    if p.size() < 0x2000 {
        return Err(SimError::NoStatePartition);
    }
    Ok(Region::new(p.offset(), p.size()))
}

/// The simulator's default layout: nvs, `ota_state`, otadata, phy_init, then two OTA
/// slots of `slot_size` bytes.
pub fn default_partition_table(
    flash_size: u32,
    slot_size: u32,
) -> Result<PartitionTable, SimError> {
    // The data partitions are the ones `ota-sign flash` writes (one shared definition).
    let mut parts: Vec<Partition> = DEFAULT_DATA_PARTITIONS
        .iter()
        .map(|p| {
            let subtype = SubType::data(p.subtype);
            Partition::new(
                p.name,
                Type::Data,
                subtype,
                p.offset,
                p.size,
                Flags::empty(),
            )
        })
        .collect();
    for n in 0..2u8 {
        parts.push(Partition::new(
            format!("ota_{n}"),
            Type::App,
            SubType::app(0x10 + n),
            0x1_0000 + u32::from(n) * slot_size,
            slot_size,
            Flags::empty(),
        ));
    }
    let table = PartitionTable::new(parts);
    table.validate()?;
    if 0x1_0000 + 2 * u64::from(slot_size) > u64::from(flash_size) {
        return Err(SimError::Firmware("slots do not fit the flash".into()));
    }
    Ok(table)
}

/// A fresh flash as `espflash` would leave it: partition table at 0x8000, `app` in the
/// first app partition (factory, else `ota_0`), otadata and state erased.
pub fn create_flash(
    app: &[u8],
    table: &PartitionTable,
    flash_size: u32,
) -> Result<SimFlash, SimError> {
    let mut flash = SimFlash::new(flash_size as usize);
    flash.flash_image(PARTITION_TABLE_OFFSET, &table.to_bin()?);
    let first_app = table
        .find_by_subtype(Type::App, SubType::App(AppType::Factory))
        .or_else(|| table.find_by_subtype(Type::App, SubType::app(0x10)))
        .ok_or_else(|| SimError::Firmware("no app partition".into()))?;
    if app.len() as u64 > u64::from(first_app.size()) {
        return Err(SimError::Firmware(
            "app image does not fit its partition".into(),
        ));
    }
    flash.flash_image(first_app.offset(), app);
    Ok(flash)
}

/// What the flash holds, without booting it (nothing is written).
pub fn offline_status(flash: &mut SimFlash, chip: ChipId) -> Result<serde_json::Value, SimError> {
    let layout = Layout::read(flash)?;
    let g = layout.geometry;
    let mut entries = Vec::new();
    for index in 0..2usize {
        let at = g.otadata_sector(index) as usize;
        let bytes: [u8; 32] = flash.bytes()[at..at + 32].try_into().unwrap_or([0xFF; 32]);
        let e = ota_agent::OtaSelectEntry::from_bytes(&bytes);
        entries.push(serde_json::json!({
            "seq": e.seq,
            "state": state_label(e.ota_state()),
            "crc_ok": e.crc_matches(),
        }));
    }
    let mut slots = Vec::new();
    for (n, region) in g.slots().iter().enumerate() {
        let image = &flash.bytes()[region.offset as usize..(region.offset + region.size) as usize];
        let version = find_descriptors(image)
            .ok()
            .map(|d| d.app.version().to_owned());
        let bootable = slot_is_bootable(flash, *region, chip);
        slots.push(serde_json::json!({
            "slot": target_label(BootTarget::Ota(n as u8)).to_string(),
            "offset": region.offset,
            "size": region.size,
            "version": version,
            "bootable": bootable,
        }));
    }
    let state = match state_region(&layout) {
        Ok(region) => match StateStore::open(flash, region) {
            Ok((_, s)) => serde_json::json!({
                "manifest_sequence": s.manifest_sequence,
                "security_counter": s.security_counter,
                "pending": s.pending.map(|p| serde_json::json!({
                    "slot": p.slot,
                    "version": p.version.to_string(),
                })),
                "rolled_back_releases": s.failed_images().len(),
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        },
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    // The slot the stock bootloader starts from this flash: its selection (read only
    // with rollback disabled), then the first bootable slot in its load order.
    let running = ota_agent::bootloader::select(flash, &g, BootloaderMode::RollbackDisabled)
        .ok()
        .and_then(|selection| {
            ota_agent::bootloader::boot_order(selection.start, &g).find(|target| {
                g.region(*target)
                    .is_some_and(|region| slot_is_bootable(flash, region, chip))
            })
        })
        .and_then(|target| {
            let region = g.region(target)?;
            let image =
                &flash.bytes()[region.offset as usize..(region.offset + region.size) as usize];
            Some(serde_json::json!({
                "slot": target_label(target).to_string(),
                "version": find_descriptors(image).ok().map(|d| d.app.version().to_owned()),
            }))
        });
    Ok(serde_json::json!({
        "running": running,
        "otadata": entries,
        "slots": slots,
        "agent_state": state,
    }))
}
