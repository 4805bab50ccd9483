//! ota-sign device firmware for the ESP32 family (ESP32-C3 by default).
//!
//! Boot flow, in the order `main` runs it:
//! 1. heap, scheduler, flash: [`flash::FlashLayout`] finds otadata and the two OTA slots in
//!    the ESP-IDF partition table, [`health::TrialBoot`] reads how this slot was booted;
//! 2. network: WiFi station + DHCP on embassy-net ([`net`]);
//! 3. services: the status endpoint `GET /ota/status` ([`status_server`]) and the update
//!    check loop ([`update`]) that the `ota-agent` state machine plugs into;
//! 4. the application health check ([`health`]) decides whether a trial boot is confirmed.
//!
//! The trust anchor is [`descriptor::OTA_TRUSTED_KEYS`], the key descriptor the tools read
//! back out of this firmware.
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
mod status;
mod status_server;
mod update;

use embassy_executor::Spawner;
use embassy_time::Duration;
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::timer::timg::TimerGroup;
use esp_storage::FlashStorage;
use log::{error, info, warn};

use crate::health::{BootloaderTrialBoot, HealthVerdict, TrialBoot};
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

#[esp_hal::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: RADIO_HEAP);
    esp_alloc::heap_allocator!(size: APP_HEAP);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

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
    STATUS.lock(|s| s.borrow_mut().set_trusted_keys());

    let mut flash = FlashStorage::new(peripherals.FLASH);
    let layout = match flash::FlashLayout::read(&mut flash) {
        Ok(layout) => {
            info!("{layout}");
            Some(layout)
        }
        Err(e) => {
            error!("no usable OTA partition layout ({e}); updates are disabled");
            STATUS.lock(|s| {
                s.borrow_mut()
                    .agent
                    .set_error(status::AgentError::NoOtaLayout)
            });
            None
        }
    };
    let mut trial = BootloaderTrialBoot::new(&mut flash, layout.and_then(|l| l.running));
    let boot = trial.state();
    STATUS.lock(|s| s.borrow_mut().set_boot(layout.as_ref(), boot));

    let network = net::start(&spawner, peripherals.WIFI);
    if let Some(stack) = network.stack() {
        spawner.spawn(status_server::task(stack).expect("status server spawns once"));
        match (layout, build_config::BASE_URL) {
            (Some(_), Some(base)) => {
                spawner.spawn(update::task(stack, base).expect("update task spawns once"))
            }
            (_, None) => info!("OTA_BASE_URL was not set at build time: not polling"),
            (None, Some(_)) => {}
        }
    }

    let verdict = health::check(network, HEALTH_TIMEOUT).await;
    let health = match verdict {
        HealthVerdict::Healthy if boot.is_trial() => match trial.confirm() {
            Ok(()) => {
                info!("trial boot confirmed");
                HealthState::Confirmed
            }
            Err(e) => {
                error!("health check passed but confirming failed: {e:?}");
                HealthState::ConfirmFailed
            }
        },
        HealthVerdict::Healthy => HealthState::Healthy,
        HealthVerdict::Unhealthy(reason) => {
            // Not confirming is the whole reaction: a rollback bootloader aborts this slot
            // on the next reset, and the agent's boot-attempt counter does the same
            // without one.
            error!("health check failed: {reason}; this boot stays unconfirmed");
            HealthState::Unhealthy(reason)
        }
    };
    STATUS.lock(|s| s.borrow_mut().health = health);

    loop {
        let free = esp_alloc::HEAP.free();
        STATUS.lock(|s| s.borrow_mut().heap_free = free);
        embassy_time::Timer::after(Duration::from_secs(60)).await;
    }
}
