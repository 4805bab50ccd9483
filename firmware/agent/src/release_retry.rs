//! Retrying a release whose install failed for a reason that may pass: the network, a
//! transfer corrupted on the way (a digest that does not match), a server that kept
//! starting over. One failure is not a verdict (a device in the field sees transient
//! faults every day): the release is tried again at a later check, sooner at first, and
//! given up only after [`MAX_RELEASE_FAILURES`] failures. A cached manifest ETag must
//! not hide it, so a check at which a retry is due asks for the manifest without
//! `If-None-Match`.
//!
//! A release whose *trial boot* failed is a different matter: that is final and kept
//! in the persistent state ([`crate::state`]); this record lives in RAM, so a restart of
//! the device gives a given-up release one more series of tries.

/// Failed installs of one release before the device stops trying it (until the manifest
/// names another image, or the device restarts).
pub const MAX_RELEASE_FAILURES: u8 = 5;
/// The most checks between a failure and the next try: after the first failure the
/// release is tried at the next check, after the second at the second check after it,
/// after any later one at the third.
pub const MAX_RETRY_GAP_CHECKS: u32 = 3;

/// What to do about a release the manifest names for installing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Install it now.
    Try,
    /// It failed `failures` times; a later check tries again.
    Wait {
        /// Failed installs so far.
        failures: u8,
    },
    /// It failed [`MAX_RELEASE_FAILURES`] times: not tried again.
    GaveUp {
        /// Failed installs.
        failures: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FailedRelease {
    /// The image's signed header digest.
    image_id: [u8; 32],
    failures: u8,
    /// The check number at which it is tried again.
    retry_at_check: u32,
}

/// The one release that failed to install most recently, counted in checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleaseRetries {
    failed: Option<FailedRelease>,
}

impl ReleaseRetries {
    /// Whether check number `check` must fetch the manifest whole (a retry is due), so
    /// that a `304` cannot hide the release.
    pub fn retry_due(&self, check: u32) -> bool {
        self.failed
            .is_some_and(|f| f.failures < MAX_RELEASE_FAILURES && check >= f.retry_at_check)
    }

    /// What check number `check` does about the release `image_id`.
    pub fn verdict(&self, image_id: &[u8; 32], check: u32) -> Verdict {
        match self.failed {
            Some(f) if f.image_id == *image_id => {
                if f.failures >= MAX_RELEASE_FAILURES {
                    Verdict::GaveUp {
                        failures: f.failures,
                    }
                } else if check < f.retry_at_check {
                    Verdict::Wait {
                        failures: f.failures,
                    }
                } else {
                    Verdict::Try
                }
            }
            _ => Verdict::Try,
        }
    }

    /// The install of `image_id` failed at check number `check`.
    pub fn failed(&mut self, image_id: &[u8; 32], check: u32) {
        let failures = match self.failed {
            Some(f) if f.image_id == *image_id => f.failures.saturating_add(1),
            _ => 1,
        };
        let gap = u32::from(failures).min(MAX_RETRY_GAP_CHECKS);
        self.failed = Some(FailedRelease {
            image_id: *image_id,
            failures,
            retry_at_check: check.saturating_add(gap),
        });
    }

    /// The release installed: nothing is waiting for a retry.
    pub fn clear(&mut self) {
        self.failed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [0xA; 32];
    const B: [u8; 32] = [0xB; 32];

    #[test]
    fn retries_come_within_three_checks_then_stop_after_the_stated_failures() {
        let mut r = ReleaseRetries::default();
        let mut tried_at = [0u32; MAX_RELEASE_FAILURES as usize];
        let mut tries = 0;
        for check in 1..=40 {
            if r.verdict(&A, check) == Verdict::Try {
                assert!(
                    tries < usize::from(MAX_RELEASE_FAILURES),
                    "tried again at {check}"
                );
                tried_at[tries] = check;
                tries += 1;
                r.failed(&A, check);
            }
        }
        // Next check, then every second, then every third, and never after the fifth.
        assert_eq!(tried_at, [1, 2, 4, 7, 10]);
        assert_eq!(
            r.verdict(&A, 1000),
            Verdict::GaveUp {
                failures: MAX_RELEASE_FAILURES
            }
        );
        assert!(!r.retry_due(1000));
    }

    #[test]
    fn a_retry_due_bypasses_the_cached_manifest_and_waits_do_not() {
        let mut r = ReleaseRetries::default();
        assert!(!r.retry_due(1));
        r.failed(&A, 1);
        assert!(r.retry_due(2));
        r.failed(&A, 2);
        assert!(!r.retry_due(3));
        assert_eq!(r.verdict(&A, 3), Verdict::Wait { failures: 2 });
        assert!(r.retry_due(4));
    }

    #[test]
    fn another_release_starts_a_new_count() {
        let mut r = ReleaseRetries::default();
        for check in 1..=5 {
            r.failed(&A, check);
        }
        assert_eq!(r.verdict(&B, 6), Verdict::Try);
        r.failed(&B, 6);
        assert_eq!(r.verdict(&B, 7), Verdict::Try);
        r.clear();
        assert_eq!(r.verdict(&A, 7), Verdict::Try);
    }
}
