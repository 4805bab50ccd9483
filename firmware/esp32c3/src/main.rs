//! ota-sign device firmware for the ESP32 family (ESP32-C3 by default).
//!
//! Boot flow, in the order `main` runs it:
//! 1. heap, scheduler, the RTC watchdog ([`watchdog`], armed until the next reset), then
//!    ota-agent ([`update::start`]) before anything that could crash:
//!    it finds otadata, the OTA slots and its `ota_state` partition in the partition table
//!    ([`flash`]), counts a trial boot (espflash's bootloader has no app rollback) and
//!    settles the last install; trial boots used up -> reboot into the previous image;
//! 2. network: WiFi station + DHCP on embassy-net ([`net`]), and the status endpoint
//!    `GET /ota/status` ([`status_server`]);
//! 3. the application health check ([`health`]): on a trial boot the agent confirms the
//!    image when it passes, rejects it (and the device reboots) when it fails;
//! 4. the update loop ([`update::run`]): the agent's check at the interval with jitter,
//!    reboot into an installed update.
//!
//! Any panic resets the chip ([`panic`]).
//!
//! The trust anchor is [`descriptor::OTA_TRUSTED_KEYS`], the key descriptor the tools read
//! back out of this firmware; the agent gets the same keys.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod build_config {
    include!(concat!(env!("OUT_DIR"), "/build_config.rs"));
}
mod chip;
mod descriptor;
mod flash;
mod health;
mod http;
mod net;
mod panic;
mod status;
mod status_server;
mod update;
mod wall_clock;
mod watchdog;

use embassy_executor::Spawner;
use embassy_time::Duration;
use esp_hal::clock::CpuClock;
use esp_hal::rtc_cntl::Rtc;
use esp_hal::timer::timg::TimerGroup;
use esp_storage::FlashStorage;
use log::{error, info, warn};
use ota_agent::agent::BootOutcome;
use static_cell::StaticCell;

use crate::health::HealthVerdict;
use crate::http::NetCell;
use crate::status::{HealthState, STATUS};

// The ESP-IDF app descriptor (`esp_app_desc_t`), read by the bootloader, espflash and
// `ota-sign package`. The version is the build's OTA_FW_VERSION, validated by build.rs.
esp_bootloader_esp_idf::esp_app_desc!(
    build_config::FIRMWARE_VERSION,
    env!("CARGO_PKG_NAME"),
    esp_bootloader_esp_idf::BUILD_TIME,
    esp_bootloader_esp_idf::BUILD_DATE,
    esp_bootloader_esp_idf::ESP_IDF_COMPATIBLE_VERSION,
    esp_bootloader_esp_idf::MMU_PAGE_SIZE,
    0,
    u16::MAX,
    esp_bootloader_esp_idf::SECURE_VERSION
);

/// Heap for the WiFi driver, in the RAM the ROM bootloader used and hands back after boot.
const RADIO_HEAP: usize = 64 * 1024;
/// Heap for the application; the update path's zstd window lives here. Bounded so that a
/// bigger frame fails to allocate instead of corrupting the stack.
const APP_HEAP: usize = 64 * 1024;

/// How long the health check waits for the network before it declares the boot unhealthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(90);
/// A trial boot without a verdict by then is no longer fed to the RTC watchdog: the chip
/// resets within [`watchdog::TIMEOUT`] more (150 s in all) and the attempt is counted.
const TRIAL_VERDICT_LIMIT: Duration = Duration::from_secs(120);

#[esp_hal::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: RADIO_HEAP);
    esp_alloc::heap_allocator!(size: APP_HEAP);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // Armed before the agent or anything else runs, and never disarmed (see `watchdog`).
    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    watchdog::arm(&mut rtc.rwdt);
    spawner.spawn(watchdog::task(rtc.rwdt).expect("the watchdog task spawns once"));

    info!(
        "{} {} for {} ({}), channel {}",
        env!("CARGO_PKG_NAME"),
        build_config::FIRMWARE_VERSION,
        build_config::DEVICE_TYPE,
        chip::NAME,
        build_config::CHANNEL
    );
    if build_config::TRUSTED_KEYS_ARE_TEST_KEY {
        warn!("this build trusts the PUBLISHED INSECURE TEST KEY: anyone can sign its updates");
    }

    static NET: StaticCell<NetCell> = StaticCell::new();
    let net: &'static NetCell = NET.init(NetCell::new(None));
    let (mut agent, outcome) = match update::start(FlashStorage::new(peripherals.FLASH), net) {
        Ok((agent, outcome)) => (Some(agent), outcome),
        Err(why) => {
            error!(
                "update agent unavailable ({why}); this firmware cannot be updated over the air"
            );
            STATUS.lock(|s| s.borrow_mut().agent_unavailable = Some(why));
            (None, BootOutcome::Normal)
        }
    };
    if outcome == BootOutcome::RebootRequired {
        update::reboot("trial boots used up, otadata points back to the previous image").await;
    }

    // A trial image that hangs instead of crashing must still get back to the bootloader
    // to be counted: the watchdog resets the chip unless the verdict comes in time.
    let trial = match outcome {
        BootOutcome::Trial(trial) => Some(trial),
        BootOutcome::Normal | BootOutcome::RebootRequired => None,
    };
    if trial.is_some() {
        watchdog::trial_started(TRIAL_VERDICT_LIMIT);
    }

    let network = net::start(&spawner, peripherals.WIFI, net);
    if let Some(stack) = network.stack() {
        for _ in 0..status_server::WORKERS {
            spawner.spawn(status_server::task(stack).expect("one status worker per pool slot"));
        }
        if let Some(server) = build_config::NTP_SERVER {
            spawner.spawn(wall_clock::sync(stack, server).expect("SNTP spawns once"));
        }
    }

    let verdict = health::check(network, HEALTH_TIMEOUT).await;
    let health = match (verdict, agent.as_mut(), trial) {
        (HealthVerdict::Healthy, Some(agent), Some(trial)) => match agent.confirm(trial) {
            Ok(()) => {
                info!("trial boot confirmed");
                HealthState::Confirmed
            }
            // The agent keeps the error in its status; the trial stays unconfirmed and
            // the attempt counter decides on a later boot.
            Err(e) => {
                error!("health check passed but confirming failed: {e}");
                HealthState::ConfirmFailed
            }
        },
        (HealthVerdict::Healthy, _, _) => HealthState::Healthy,
        (HealthVerdict::Unhealthy(reason), Some(agent), Some(trial)) => {
            error!("health check failed on a trial boot: {reason}");
            STATUS.lock(|s| s.borrow_mut().health = HealthState::Unhealthy(reason));
            match agent.reject(trial) {
                Ok(()) => update::reboot("trial image rejected, rolling back").await,
                // Nothing else can boot: keep running this image rather than reset forever.
                Err(e) => error!("rejecting the trial image failed: {e}"),
            }
            HealthState::Unhealthy(reason)
        }
        (HealthVerdict::Unhealthy(reason), _, _) => {
            error!("health check failed: {reason}");
            HealthState::Unhealthy(reason)
        }
    };
    STATUS.lock(|s| s.borrow_mut().health = health);
    watchdog::trial_decided();

    match (agent, network.stack(), build_config::MANIFEST_URL) {
        (Some(agent), Some(stack), Some(_)) => update::run(agent, stack).await,
        (_, _, None) => info!("OTA_BASE_URL was not set at build time: not checking for updates"),
        _ => {}
    }
    core::future::pending().await
}
