//! When a device may feed its hardware watchdog.
//!
//! The firmware arms the chip's watchdog at boot and never disarms it; one task feeds it
//! at a fixed period while [`Supervisor::may_feed`] allows. A stalled executor (a task
//! that never yields, a deadlock with interrupts off) stops the feeding by itself. This
//! type adds the two waits that end in a reset although the executor still runs:
//!
//! * a trial boot that has no health verdict by its deadline (a hang must get back to
//!   the bootloader to be counted, like a crash);
//! * an update loop silent for longer than its current step may take (a check that
//!   outlives every bound it has, a sleep that never ends), because a device that has
//!   stopped checking has stopped updating (R1).
//!
//! Overdue, the firmware stops feeding and the watchdog resets the chip. Times are
//! milliseconds since boot; nothing here reads a clock.

/// Why the watchdog is no longer fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Overdue {
    /// The trial boot had no health verdict in time.
    #[error("trial boot without a health verdict in time")]
    TrialVerdict,
    /// The update loop did not finish its step in time.
    #[error("update loop silent for longer than its step allows")]
    UpdateLoop,
}

/// The deadlines the watchdog is fed under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supervisor {
    trial_verdict_by: Option<u64>,
    update_step_by: Option<u64>,
}

impl Supervisor {
    /// Nothing supervised yet: the watchdog is fed while the executor runs.
    pub const fn new() -> Self {
        Supervisor {
            trial_verdict_by: None,
            update_step_by: None,
        }
    }

    /// A trial boot started at `now_ms`: its verdict is due within `limit_ms`.
    pub fn trial_started(&mut self, now_ms: u64, limit_ms: u64) {
        self.trial_verdict_by = Some(now_ms.saturating_add(limit_ms));
    }

    /// The trial boot has its verdict (confirmed, or rejected and about to reset).
    pub fn trial_decided(&mut self) {
        self.trial_verdict_by = None;
    }

    /// The update loop starts a step at `now_ms` (a check, a sleep) that ends within
    /// `limit_ms`; the next step replaces this one.
    pub fn update_step(&mut self, now_ms: u64, limit_ms: u64) {
        self.update_step_by = Some(now_ms.saturating_add(limit_ms));
    }

    /// The update loop waits for something with no bound of its own that is not a
    /// fault of this device (the network coming up): not supervised until its next step.
    pub fn update_waiting(&mut self) {
        self.update_step_by = None;
    }

    /// Whether the watchdog may be fed at `now_ms`, or what is overdue.
    pub fn may_feed(&self, now_ms: u64) -> Result<(), Overdue> {
        if self.trial_verdict_by.is_some_and(|by| now_ms > by) {
            return Err(Overdue::TrialVerdict);
        }
        if self.update_step_by.is_some_and(|by| now_ms > by) {
            return Err(Overdue::UpdateLoop);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `s` may still feed at `last_ms` and is `overdue` one millisecond later.
    fn assert_overdue_after(s: &Supervisor, last_ms: u64, overdue: Overdue) {
        assert_eq!(s.may_feed(last_ms), Ok(()));
        assert_eq!(s.may_feed(last_ms + 1), Err(overdue));
    }

    #[test]
    fn unsupervised_it_is_always_fed() {
        assert_eq!(Supervisor::new().may_feed(u64::MAX), Ok(()));
    }

    #[test]
    fn a_trial_without_a_verdict_by_its_deadline_is_overdue() {
        let mut s = Supervisor::new();
        s.trial_started(1_000, 120_000);
        assert_overdue_after(&s, 121_000, Overdue::TrialVerdict);
        s.trial_decided();
        assert_eq!(s.may_feed(10_000_000), Ok(()));
    }

    #[test]
    fn an_update_step_past_its_limit_is_overdue_and_the_next_step_renews_it() {
        let mut s = Supervisor::new();
        s.update_step(0, 60_000);
        assert_overdue_after(&s, 60_000, Overdue::UpdateLoop);
        s.update_step(60_001, 10);
        assert_overdue_after(&s, 60_011, Overdue::UpdateLoop);
        s.update_waiting();
        assert_eq!(s.may_feed(u64::MAX), Ok(()));
    }

    #[test]
    fn the_trial_is_reported_first_and_limits_do_not_overflow() {
        let mut s = Supervisor::new();
        s.update_step(u64::MAX - 1, u64::MAX);
        assert_eq!(s.may_feed(u64::MAX), Ok(()));
        s.update_step(0, 0);
        s.trial_started(0, 0);
        assert_eq!(s.may_feed(1), Err(Overdue::TrialVerdict));
    }
}
