//! The RTC watchdog: armed at boot, never disarmed, fed by its own task.
//!
//! [`arm`] sets stage 0 to reset the whole system after [`TIMEOUT`] without a feed, before
//! the agent or anything else runs. [`task`] feeds it every [`FEED_PERIOD`] for as long as
//! ota-agent's [`Supervisor`] allows; the deadlines come from `main` (the trial boot's
//! verdict) and from the update loop (each check, each sleep). So the chip resets when
//! the executor stalls (a task that never yields, a loop with interrupts off), when a
//! trial boot has no verdict in time, or when the update loop outlives its step; the next
//! boot counts as a trial attempt if it was one, and the loop starts over otherwise.

use core::cell::RefCell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use esp_hal::rtc_cntl::{Rwdt, RwdtStage, RwdtStageAction};
use log::error;
use ota_agent::watchdog::Supervisor;

/// Without a feed for this long, the RTC watchdog resets the chip.
pub const TIMEOUT: esp_hal::time::Duration = esp_hal::time::Duration::from_secs(30);
/// How often [`task`] feeds it: a stall of `TIMEOUT - FEED_PERIOD` is still tolerated
/// (a long flash erase with interrupts off takes well under a second).
pub const FEED_PERIOD: Duration = Duration::from_secs(5);

static SUPERVISOR: Mutex<CriticalSectionRawMutex, RefCell<Supervisor>> =
    Mutex::new(RefCell::new(Supervisor::new()));

/// Arms the watchdog (esp-hal's init disarmed the bootloader's) with [`TIMEOUT`].
pub fn arm(rwdt: &mut Rwdt) {
    rwdt.set_stage_action(RwdtStage::Stage0, RwdtStageAction::ResetSystem);
    rwdt.set_timeout(RwdtStage::Stage0, TIMEOUT);
    rwdt.enable();
    rwdt.feed();
}

/// Feeds the watchdog every [`FEED_PERIOD`] while nothing is overdue; then stops, and
/// the chip resets within [`TIMEOUT`].
#[embassy_executor::task]
pub async fn task(mut rwdt: Rwdt) {
    let mut reported = false;
    loop {
        match SUPERVISOR.lock(|s| s.borrow().may_feed(now_ms())) {
            Ok(()) => rwdt.feed(),
            Err(overdue) if !reported => {
                error!("watchdog: {overdue}; not fed any more, the chip resets within {TIMEOUT}");
                reported = true;
            }
            Err(_) => {}
        }
        Timer::after(FEED_PERIOD).await;
    }
}

/// A trial boot's verdict is due within `limit`.
pub fn trial_started(limit: Duration) {
    SUPERVISOR.lock(|s| s.borrow_mut().trial_started(now_ms(), limit.as_millis()));
}

/// The trial boot has its verdict.
pub fn trial_decided() {
    SUPERVISOR.lock(|s| s.borrow_mut().trial_decided());
}

/// The update loop starts a step that ends within `limit`.
pub fn update_step(limit: Duration) {
    SUPERVISOR.lock(|s| s.borrow_mut().update_step(now_ms(), limit.as_millis()));
}

/// The update loop waits for the network, which has no bound of its own.
pub fn update_waiting() {
    SUPERVISOR.lock(|s| s.borrow_mut().update_waiting());
}

fn now_ms() -> u64 {
    Instant::now().as_millis()
}
