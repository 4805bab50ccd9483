//! Fetching the image into an [`Installer`], resuming across dropped connections.
//!
//! After a failure the next request asks for `Range: bytes=N-` where `N` is what the
//! installer has accepted. A `206` must start exactly at `N` and end at the file's end;
//! a `200` is the whole file again, so everything received is forgotten and the install
//! restarts from zero, never appending. Retries back off exponentially with jitter
//! (so a fleet that lost its access point does not return in lockstep), are bounded
//! per stall, starts from zero are bounded per check (each erases the slot again), and
//! the whole download has a deadline against servers that trickle, which every request
//! carries so that it holds inside a read too.

use embedded_hal_async::delay::DelayNs;
use embedded_storage::nor_flash::NorFlash;

use crate::http::{HttpBody, HttpClient, HttpError, Request, ResponseHead};
use crate::install::{InstallError, Installer};

/// Milliseconds since some fixed point (boot), for deadlines and status.
pub trait Clock {
    /// Now, in milliseconds.
    fn now_ms(&self) -> u64;

    /// Unix time in seconds, when the device has a trustworthy clock (manifest expiry
    /// is only enforced then).
    fn unix_time(&self) -> Option<u64> {
        None
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn unix_time(&self) -> Option<u64> {
        (**self).unix_time()
    }
}

impl<T: Clock + ?Sized> Clock for &mut T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn unix_time(&self) -> Option<u64> {
        (**self).unix_time()
    }
}

/// How hard to try, and how long anything may take. Every wait of a check is bounded by
/// one of these; [`RetryPolicy::check_deadline_ms`] bounds the whole check (README,
/// "How long a check can take").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts in a row (without a single new byte) before giving up.
    pub max_attempts: u8,
    /// First back-off delay.
    pub base_delay_ms: u32,
    /// Longest back-off delay.
    pub max_delay_ms: u32,
    /// Timeout for connecting and for each read or write.
    pub timeout_ms: u32,
    /// Each request's head (connect, TLS handshake, interim answers, the head itself)
    /// must be in within this time.
    pub head_timeout_ms: u32,
    /// The whole download must finish within this time.
    pub deadline_ms: u64,
    /// The whole manifest fetch (redirects and body included) must finish within this
    /// time.
    pub manifest_deadline_ms: u64,
    /// The whole check (manifest, download, install) must finish within this time; the
    /// manifest fetch and the download get what is left of it when that is less than
    /// their own deadline.
    pub check_deadline_ms: u64,
    /// Times one check may start a release's download over from byte 0 (a server that
    /// answers `Range` with the whole file, or a misplaced range) before it gives up
    /// until a later check. Each start from zero erases the slot's sectors again, so this
    /// bounds flash wear: see [`RetryPolicy::max_erases_per_check`].
    pub max_restarts: u8,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RetryPolicy {
    /// The defaults (README, "How long a check can take"), usable in constants.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 6,
        base_delay_ms: 1_000,
        max_delay_ms: 60_000,
        timeout_ms: 20_000,
        head_timeout_ms: 30_000,
        deadline_ms: 30 * 60_000,
        manifest_deadline_ms: 60_000,
        check_deadline_ms: 31 * 60_000,
        max_restarts: 3,
    };

    /// The longest one check can run: the check deadline, or the manifest's plus the
    /// download's when that is shorter. Only flash work after the last network operation
    /// (reading one buffer's worth into the slot, the read-back check of the slot) can
    /// add to it; no wait can.
    pub const fn worst_case_check_ms(&self) -> u64 {
        let parts = self.manifest_deadline_ms.saturating_add(self.deadline_ms);
        if parts < self.check_deadline_ms {
            parts
        } else {
            self.check_deadline_ms
        }
    }

    /// The most sectors one check erases for a release whose image covers `sectors`
    /// sectors of the slot: each pass from byte 0 erases each of them once, resumed
    /// downloads erase nothing twice, and there are at most `max_restarts + 1` passes.
    pub const fn max_erases_per_check(&self, sectors: u32) -> u32 {
        (self.max_restarts as u32 + 1).saturating_mul(sectors)
    }
}

/// A transient failure that was retried; the last one is reported on giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Transient {
    /// The transport failed.
    #[error("{0}")]
    Http(HttpError),
    /// The server answered with a status worth retrying (5xx, 429, 408).
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body ended before the file did.
    #[error("body ended early")]
    EarlyEnd,
    /// A `206` that does not continue where the download stopped.
    #[error("range answer does not continue the download")]
    BadRange,
}

/// Why a download failed for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The bytes were refused (verification, decompression, flash).
    #[error("{0}")]
    Install(#[from] InstallError),
    /// The request cannot succeed (bad URL, redirect loop).
    #[error("{0}")]
    Http(HttpError),
    /// The server refused (404, 403, ...).
    #[error("HTTP status {0}")]
    Status(u16),
    /// The server's file is not the size the manifest says.
    #[error("server file is {served} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// What the server declared.
        served: u64,
        /// What the manifest says.
        expected: u64,
    },
    /// Too many failures in a row.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made in the last stall.
        attempts: u8,
        /// The last failure.
        last: Transient,
    },
    /// The deadline passed.
    #[error("download deadline passed")]
    Deadline,
    /// The download started over from byte 0 more often than
    /// [`RetryPolicy::max_restarts`] allows in one check.
    #[error("started over from byte 0 {restarts} times: giving up until a later check")]
    TooManyRestarts {
        /// Starts from zero in this check.
        restarts: u16,
    },
}

/// Where a download stands, for status reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DownloadProgress {
    /// Bytes of the file accepted so far.
    pub received: u64,
    /// Size of the file.
    pub total: u64,
    /// Times a dropped download continued with a range request.
    pub resumes: u16,
    /// Times the server ignored the range and the download started over.
    pub restarts: u16,
    /// Transient failures so far.
    pub failures: u16,
}

/// A small xorshift generator for back-off jitter; the seed should differ per device
/// (its id), so devices that failed together do not retry together.
#[derive(Clone, Copy, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from a seed (zero is replaced).
    pub fn new(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next pseudo-random number.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }

    /// "Equal jitter": half the exponential delay fixed, half random.
    pub fn backoff_ms(&mut self, policy: &RetryPolicy, attempt: u8) -> u32 {
        let exp = policy
            .base_delay_ms
            .saturating_mul(
                1u32.checked_shl(u32::from(attempt.saturating_sub(1)))
                    .unwrap_or(u32::MAX),
            )
            .min(policy.max_delay_ms);
        let half = exp / 2;
        half + if half == 0 {
            0
        } else {
            self.next_u32() % (exp - half + 1)
        }
    }
}

/// Everything a download borrows besides the installer.
pub struct Downloader<'d, C, D, K> {
    /// The HTTP client.
    pub client: &'d mut C,
    /// Sleeps between attempts.
    pub delay: &'d mut D,
    /// Time for the deadline.
    pub clock: &'d K,
    /// Retry rules.
    pub policy: RetryPolicy,
    /// Jitter source.
    pub jitter: &'d mut Jitter,
    /// Receive buffer for body reads.
    pub buf: &'d mut [u8],
    /// Who asks, for the `User-Agent` ([`crate::identity`]).
    pub identity: Option<&'d str>,
}

/// What one `run` carries from attempt to attempt.
struct RunState {
    start: u64,
    deadline_ms: u64,
    whole_file: bool,
    progress: DownloadProgress,
}

impl RunState {
    /// When the download must be done, on the downloader's clock.
    fn deadline_at(&self) -> u64 {
        self.start.saturating_add(self.deadline_ms)
    }
}

enum Attempt {
    Done,
    Failed(Transient),
}

impl<C: HttpClient, D: DelayNs, K: Clock> Downloader<'_, C, D, K> {
    /// Downloads `url` into `installer` until the whole file has been fed (it still has
    /// to be finished), reporting progress after every body read.
    pub async fn run<F: NorFlash>(
        &mut self,
        url: &str,
        installer: &mut Installer<'_, F>,
        flash: &mut F,
        progress: &mut dyn FnMut(&DownloadProgress),
    ) -> Result<(), DownloadError> {
        let start = self.clock.now_ms();
        let mut run = RunState {
            start,
            deadline_ms: self.policy.deadline_ms,
            whole_file: false,
            progress: DownloadProgress {
                received: installer.received(),
                // A delta's size is known once its headers are in (0 until then).
                total: installer.file_size().unwrap_or(0),
                ..DownloadProgress::default()
            },
        };
        let mut attempts = 0u8;
        loop {
            let before = installer.received();
            let outcome = self
                .attempt(url, installer, flash, &mut run, progress)
                .await?;
            let failure = match outcome {
                Attempt::Done => return Ok(()),
                Attempt::Failed(f) => f,
            };
            run.progress.failures = run.progress.failures.saturating_add(1);
            run.whole_file = failure == Transient::BadRange;
            if installer.received() > before {
                attempts = 0;
            }
            attempts += 1;
            log::warn!(
                "download attempt failed at {}/{}: {}",
                installer.received(),
                run.progress.total,
                failure
            );
            if attempts >= self.policy.max_attempts {
                return Err(DownloadError::GaveUp {
                    attempts,
                    last: failure,
                });
            }
            let wait = self.jitter.backoff_ms(&self.policy, attempts);
            if self.clock.now_ms().saturating_add(u64::from(wait)) > run.deadline_at() {
                return Err(DownloadError::Deadline);
            }
            self.delay.delay_ms(wait).await;
        }
    }

    async fn attempt<F: NorFlash>(
        &mut self,
        url: &str,
        installer: &mut Installer<'_, F>,
        flash: &mut F,
        run: &mut RunState,
        progress: &mut dyn FnMut(&DownloadProgress),
    ) -> Result<Attempt, DownloadError> {
        let total = installer.file_size();
        let deadline_at = run.deadline_at();
        let state = &mut run.progress;
        let max_restarts = self.policy.max_restarts;
        // Every start from zero erases the slot's sectors again: bounded per check.
        let restart = |installer: &mut Installer<'_, F>, state: &mut DownloadProgress| {
            if state.restarts >= u16::from(max_restarts) {
                return Err(DownloadError::TooManyRestarts {
                    restarts: state.restarts,
                });
            }
            installer.restart();
            state.restarts += 1;
            Ok(())
        };
        if run.whole_file && installer.received() > 0 {
            restart(installer, state)?;
        }
        let from = installer.received();
        if Some(from) == total {
            // Everything arrived before the connection broke.
            return Ok(Attempt::Done);
        }
        let clock = self.clock;
        // Past the download's deadline every failure is that deadline; before it, a
        // request's own timeouts are a transient failure like any other.
        let failed = |e: HttpError| {
            if clock.now_ms() >= deadline_at {
                Err(DownloadError::Deadline)
            } else if retryable(e) {
                Ok(Attempt::Failed(Transient::Http(e)))
            } else {
                Err(DownloadError::Http(e))
            }
        };
        let left = deadline_at.saturating_sub(clock.now_ms());
        if left == 0 {
            return Err(DownloadError::Deadline);
        }
        let request = Request {
            url,
            if_none_match: None,
            range_from: (from > 0).then_some(from),
            identity: self.identity,
            timeout_ms: self.policy.timeout_ms,
            head_timeout_ms: self.policy.head_timeout_ms,
            deadline_ms: left,
            follow: false,
        };
        let (head, mut body) = match crate::get_following!(self.client, request) {
            Ok(answer) => answer,
            Err(e) => return failed(e),
        };
        match check_head(&head, from, total)? {
            Continue::Resume => state.resumes += u16::from(from > 0),
            Continue::Restart => restart(installer, state)?,
            Continue::Retry(t) => return Ok(Attempt::Failed(t)),
        }
        loop {
            if clock.now_ms() >= deadline_at {
                return Err(DownloadError::Deadline);
            }
            let n = match body.read(self.buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) if Some(installer.received()) == installer.file_size() => break,
                Err(e) => return failed(e),
            };
            installer.feed(flash, &self.buf[..n])?;
            state.received = installer.received();
            state.total = installer.file_size().unwrap_or(state.total);
            progress(state);
        }
        state.received = installer.received();
        // A file whose size is still unknown ended inside its headers.
        if installer
            .file_size()
            .is_none_or(|total| installer.received() < total)
        {
            return Ok(Attempt::Failed(Transient::EarlyEnd));
        }
        Ok(Attempt::Done)
    }
}

enum Continue {
    /// The body continues at the installer's offset.
    Resume,
    /// The body is the whole file: start over.
    Restart,
    /// Try again later.
    Retry(Transient),
}

/// `total`: the file's size when known (a delta's is not until its headers arrive; its
/// verifier refuses bytes beyond its signed sizes).
fn check_head(
    head: &ResponseHead,
    from: u64,
    total: Option<u64>,
) -> Result<Continue, DownloadError> {
    match head.status {
        200 => {
            if let (Some(len), Some(total)) = (head.content_length, total)
                && len != total
            {
                return Err(DownloadError::SizeMismatch {
                    served: len,
                    expected: total,
                });
            }
            Ok(if from == 0 {
                Continue::Resume
            } else {
                Continue::Restart
            })
        }
        206 => {
            let Some(range) = head.content_range else {
                return Ok(Continue::Retry(Transient::BadRange));
            };
            if let (Some(complete), Some(total)) = (range.complete, total)
                && complete != total
            {
                return Err(DownloadError::SizeMismatch {
                    served: complete,
                    expected: total,
                });
            }
            if range.first != from || total.is_some_and(|total| range.last + 1 != total) {
                return Ok(Continue::Retry(Transient::BadRange));
            }
            Ok(Continue::Resume)
        }
        // Range not satisfiable: our offset is wrong for this file; fetch it whole.
        416 => Ok(Continue::Retry(Transient::BadRange)),
        408 | 429 | 500..=599 => Ok(Continue::Retry(Transient::Status(head.status))),
        other => Err(DownloadError::Status(other)),
    }
}

fn retryable(e: HttpError) -> bool {
    matches!(
        e,
        HttpError::Dns
            | HttpError::Connect
            | HttpError::ConnectionLost
            | HttpError::Timeout
            | HttpError::Protocol
            | HttpError::BodyTooLong
            | HttpError::TooManyInterimResponses
    )
}

#[cfg(test)]
mod tests;
