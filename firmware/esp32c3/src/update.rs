//! ota-agent on this device: its flash, HTTP client, clock and buffers, the boot-time
//! trial handling, and the check loop at the configured interval with jitter.
//!
//! Everything the agent decides (manifest verification, policy, resumable download,
//! install, otadata, trial boots) is ota-agent's and covered by its host tests and the
//! simulator; this module only plugs the device's parts in.

use embassy_net::Stack;
use embassy_time::{Delay, Duration, Timer, with_timeout};
use esp_hal::rng::Rng;
use esp_storage::FlashStorage;
use log::{info, warn};
use ota_agent::agent::{
    Agent, AgentConfig, BootOutcome, DEFAULT_WINDOW_LOG, DefaultUpdateMemory, Firmware,
};
use ota_agent::boot::BootConfig;
use ota_agent::download::RetryPolicy;
use ota_agent::status::{CheckResult, UpdateState};
use ota_format::{Channel, DeviceType, TrustedKeyDescriptor, Version};
use static_cell::{ConstStaticCell, StaticCell};

use crate::build_config::{
    BOOT_ATTEMPTS, CHANNEL, CHECK_INTERVAL_S, DEVICE_TYPE, FIRMWARE_VERSION, IDENTIFY,
    MANIFEST_URL, ROLLBACK_BOOTLOADER,
};
use crate::flash::Layout;
use crate::http::{self, EmbassyHttp, HttpMemory, NetCell};
use crate::status::{AgentUnavailable, Publisher};
use crate::wall_clock::WallClock;
use crate::watchdog;

/// How trial boots are protected, from the build configuration. espflash installs
/// ESP-IDF's bootloader built without app rollback (the default, `plain`): the agent then
/// counts boots itself and rolls back an image that has not confirmed after
/// `BOOT_ATTEMPTS`. With `OTA_BOOTLOADER=rollback` the bootloader aborts the trial, and the
/// agent still counts should it find the bootloader did not act.
const BOOT: BootConfig = if ROLLBACK_BOOTLOADER {
    BootConfig::rollback_bootloader(BOOT_ATTEMPTS)
} else {
    BootConfig::counting(BOOT_ATTEMPTS)
};

/// Retries, timeouts and deadlines of every check.
const RETRY: RetryPolicy = RetryPolicy::DEFAULT;

/// Room for the flash work a check does after its last network read (the read-back
/// check of the slot), which the agent's deadlines do not cover.
const FLASH_WORK_SLACK: Duration = Duration::from_secs(60);

/// The update task's own bound on one check, beside the agent's deadlines: the worst case
/// the agent promises plus [`FLASH_WORK_SLACK`]. Reaching it means an inner deadline
/// failed to end the check, which leaves the agent's state mid-check untrustworthy; the
/// device then resets, as a watchdog would (nothing points at a half-written slot).
const CHECK_WATCHDOG: Duration =
    Duration::from_millis(RETRY.worst_case_check_ms() + FLASH_WORK_SLACK.as_millis());
/// The watchdog's bound on one check: later than [`CHECK_WATCHDOG`], which resets the
/// device in order, so the watchdog only acts when the executor itself stopped serving it.
const CHECK_LIMIT: Duration = Duration::from_millis(CHECK_WATCHDOG.as_millis() + 60_000);
/// A sleep between checks may overrun by this much before the watchdog resets the chip.
const SLEEP_MARGIN: Duration = Duration::from_secs(60);

/// The keys this firmware trusts, as a static the agent borrows for its lifetime. Built
/// from the same constant as the embedded descriptor, without its magic (see
/// [`crate::descriptor`]).
static TRUSTED_KEYS: TrustedKeyDescriptor = crate::descriptor::DESCRIPTOR;

/// The agent as this firmware runs it.
pub type DeviceAgent = Agent<'static, FlashStorage<'static>, EmbassyHttp, Delay, WallClock>;

/// Starts the agent: reads the partition table, counts or observes a trial boot, and
/// settles the last install. Runs before the network and anything else that could crash,
/// so a firmware that dies early still uses up its trial boots.
pub fn start(
    mut flash: FlashStorage<'static>,
    net: &'static NetCell,
) -> Result<(DeviceAgent, BootOutcome), AgentUnavailable> {
    // Built at compile time in .bss/.data: the 24 KiB (mostly the zstd decoder) never
    // pass through the stack, as `StaticCell::init` would make them.
    static UPDATE_MEMORY: ConstStaticCell<DefaultUpdateMemory> =
        ConstStaticCell::new(DefaultUpdateMemory::new());
    static HTTP_MEMORY: StaticCell<HttpMemory> = StaticCell::new();
    static DEVICE_ID: StaticCell<[u8; 6]> = StaticCell::new();
    static PUBLISHER: StaticCell<Publisher> = StaticCell::new();

    let layout = Layout::read(&mut flash).map_err(AgentUnavailable::Layout)?;
    info!("{layout}");

    // build.rs validated these with the same rules; failing here means a broken build.
    let (Some(device_type), Some(channel), Some(version)) = (
        DeviceType::new(DEVICE_TYPE),
        Channel::new(CHANNEL),
        Version::parse(FIRMWARE_VERSION),
    ) else {
        return Err(AgentUnavailable::BuildConfig);
    };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(esp_hal::efuse::base_mac_address().as_bytes());

    let config = AgentConfig {
        // Without a URL the agent still guards trial boots; it just never checks.
        manifest_url: MANIFEST_URL.unwrap_or(""),
        device_id: DEVICE_ID.init(mac),
        channel,
        geometry: layout.geometry,
        state_region: layout.state,
        boot: BOOT,
        retry: RETRY,
        max_window_log: DEFAULT_WINDOW_LOG,
        generation: Default::default(),
        security_counter_floor: 0,
        identify: IDENTIFY,
    };
    let firmware = Firmware {
        device_type,
        chip: crate::chip::ID,
        version,
        trusted_keys: TRUSTED_KEYS.keys(),
        running: layout.running,
    };
    Agent::start(
        config,
        firmware,
        flash,
        http::client(net, HTTP_MEMORY.init(HttpMemory::new())),
        Delay,
        WallClock,
        UPDATE_MEMORY.take().buffers(),
        PUBLISHER.init(Publisher),
    )
    .map_err(AgentUnavailable::Start)
}

/// Checks for updates forever; reboots into an installed update's trial boot.
pub async fn run(mut agent: DeviceAgent, stack: Stack<'static>) -> ! {
    let rng = Rng::new();
    info!(
        "checking {} every {CHECK_INTERVAL_S} s",
        MANIFEST_URL.unwrap_or("")
    );
    loop {
        // No WiFi is not this device's fault: the application keeps running meanwhile.
        watchdog::update_waiting();
        stack.wait_config_up().await;
        watchdog::update_step(CHECK_LIMIT);
        match with_timeout(CHECK_WATCHDOG, agent.check()).await {
            Ok(Ok(CheckResult::Installed { version })) => info!("installed {version}"),
            Ok(Ok(result)) => info!("update check: {result:?}"),
            // The agent logged it and keeps it as `last_error` in the status.
            Ok(Err(_)) => {}
            Err(_) => reboot("the update check outlived its deadline").await,
        }
        if agent.status().update == UpdateState::RebootRequired {
            reboot("starting the installed update on trial").await;
        }

        // Up to a tenth of the interval later, so devices that booted together spread out.
        let jitter = u64::from(rng.random()) % (u64::from(CHECK_INTERVAL_S) * 100 + 1);
        let sleep = Duration::from_secs(CHECK_INTERVAL_S.into()) + Duration::from_millis(jitter);
        watchdog::update_step(sleep + SLEEP_MARGIN);
        Timer::after(sleep).await;
    }
}

/// Resets the chip so the bootloader reads otadata again.
pub async fn reboot(why: &str) -> ! {
    warn!("rebooting: {why}");
    // Let the log line and a status answer in flight go out first.
    Timer::after(Duration::from_millis(500)).await;
    esp_hal::system::software_reset()
}
