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
        let total = installer.file_size();
        let mut run = RunState {
            start,
            deadline_ms: self.policy.deadline_ms,
            whole_file: false,
            progress: DownloadProgress {
                received: installer.received(),
                total,
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
                total,
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
        if from == total {
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
                Err(_) if installer.received() == total => break,
                Err(e) => return failed(e),
            };
            installer.feed(flash, &self.buf[..n])?;
            state.received = installer.received();
            progress(state);
        }
        state.received = installer.received();
        if installer.received() < total {
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

fn check_head(head: &ResponseHead, from: u64, total: u64) -> Result<Continue, DownloadError> {
    match head.status {
        200 => {
            if let Some(len) = head.content_length
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
            if let Some(complete) = range.complete
                && complete != total
            {
                return Err(DownloadError::SizeMismatch {
                    served: complete,
                    expected: total,
                });
            }
            if range.first != from || range.last + 1 != total {
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
mod tests {
    extern crate std;

    use core::cell::Cell;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use ota_flash_sim::SimFlash as TestFlash;
    use ota_format::{FormatError, Manifest, TrustedKeys};
    use ota_testkit::fixture::{self as ts, Spec};

    use super::*;
    use crate::install::tests as ti;

    /// What the scripted server does for one request.
    #[derive(Clone, Copy, Debug)]
    enum Serve {
        /// Honour the range, send everything.
        Good,
        /// Honour the range, drop after this many body bytes.
        DropAfter(usize),
        /// Ignore the range: 200 with the whole file.
        Ignore,
        /// Ignore the range and drop after this many body bytes.
        IgnoreDropAfter(usize),
        /// Answer with this status.
        Status(u16),
        /// A 206 starting elsewhere.
        WrongRange,
        /// Connection refused.
        Refuse,
        /// The first read times out.
        Stall,
    }

    struct Server {
        file: Vec<u8>,
        script: VecDeque<Serve>,
        requests: Vec<Option<u64>>,
    }

    struct Body<'c> {
        data: &'c [u8],
        fail_after: Option<usize>,
        stall: bool,
        sent: usize,
    }

    impl HttpBody for Body<'_> {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
            if self.stall {
                return Err(HttpError::Timeout);
            }
            let limit = self
                .fail_after
                .unwrap_or(self.data.len())
                .min(self.data.len());
            if self.sent == limit {
                return if self.fail_after.is_some() {
                    Err(HttpError::ConnectionLost)
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(limit - self.sent).min(999);
            buf[..n].copy_from_slice(&self.data[self.sent..self.sent + n]);
            self.sent += n;
            Ok(n)
        }
    }

    impl HttpClient for Server {
        type Body<'c> = Body<'c>;

        async fn get<'c>(
            &'c mut self,
            req: &Request<'_>,
        ) -> Result<(ResponseHead, Body<'c>), HttpError> {
            self.requests.push(req.range_from);
            let serve = self.script.pop_front().unwrap_or(Serve::Good);
            let total = self.file.len() as u64;
            let from = req.range_from.unwrap_or(0);
            let head = |from: Option<u64>| ResponseHead::of_file(total, from, None);
            let body = |first: u64, fail_after, stall| Body {
                data: &self.file[first as usize..],
                fail_after,
                stall,
                sent: 0,
            };
            let asked = req.range_from;
            Ok(match serve {
                Serve::Good => (head(asked), body(from, None, false)),
                Serve::DropAfter(n) => (head(asked), body(from, Some(n), false)),
                Serve::Stall => (head(asked), body(from, None, true)),
                Serve::Ignore => (head(None), body(0, None, false)),
                Serve::IgnoreDropAfter(n) => (head(None), body(0, Some(n), false)),
                Serve::Status(s) => (ResponseHead::bodiless(s, None), body(total, None, false)),
                Serve::WrongRange => (head(Some(from / 2)), body(from / 2, None, false)),
                Serve::Refuse => return Err(HttpError::Connect),
            })
        }
    }

    struct FakeTime {
        now: Cell<u64>,
        sleeps: Vec<u32>,
    }

    struct Sleeper<'t>(&'t Cell<u64>, &'t mut Vec<u32>);

    impl DelayNs for Sleeper<'_> {
        async fn delay_ns(&mut self, ns: u32) {
            self.0.set(self.0.get() + u64::from(ns / 1_000_000));
        }
        async fn delay_ms(&mut self, ms: u32) {
            self.1.push(ms);
            self.0.set(self.0.get() + u64::from(ms));
        }
    }

    impl Clock for Cell<u64> {
        fn now_ms(&self) -> u64 {
            self.get()
        }
    }

    struct Outcome {
        result: Result<(), DownloadError>,
        finished: Option<Result<crate::install::InstalledImage, InstallError>>,
        requests: Vec<Option<u64>>,
        sleeps: Vec<u32>,
        progress: DownloadProgress,
        flash: TestFlash,
    }

    fn run(script: &[Serve], spec: Spec, policy: RetryPolicy) -> (Outcome, Vec<u8>) {
        let app = ts::app_image("1.1.0", 30_000);
        let release = ts::release(&spec, app.clone());
        let keys = ts::trusted();
        let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
        let mut flash = TestFlash::strict(0x40000);
        let mut buffers = ti::Buffers::default();
        let mut inst = Installer::<TestFlash>::new(
            TrustedKeys::new(&keys),
            &manifest,
            ti::target(),
            buffers.install(),
        )
        .unwrap();
        let mut server = Server {
            file: release.ota.clone(),
            script: script.iter().copied().collect(),
            requests: Vec::new(),
        };
        let mut time = FakeTime {
            now: Cell::new(0),
            sleeps: Vec::new(),
        };
        let mut jitter = Jitter::new(42);
        let mut buf = [0u8; 1500];
        let mut last = DownloadProgress::default();
        let result = {
            let mut delay = Sleeper(&time.now, &mut time.sleeps);
            let mut d = Downloader {
                client: &mut server,
                delay: &mut delay,
                clock: &time.now,
                policy,
                jitter: &mut jitter,
                buf: &mut buf,
                identity: None,
            };
            embassy_futures::block_on(
                d.run("http://h/x.ota", &mut inst, &mut flash, &mut |p| last = *p),
            )
        };
        let finished = result.is_ok().then(|| inst.finish(&mut flash));
        (
            Outcome {
                result,
                finished,
                requests: server.requests,
                sleeps: time.sleeps,
                progress: last,
                flash,
            },
            app,
        )
    }

    fn assert_installed(o: &Outcome, app: &[u8]) {
        assert_eq!(o.result, Ok(()));
        assert!(matches!(o.finished, Some(Ok(_))), "{:?}", o.finished);
        assert_eq!(&o.flash.bytes()[0x10000..0x10000 + app.len()], app);
    }

    /// Runs `script` with the default release and policy and asserts the app installed.
    fn run_to_install(script: &[Serve]) -> Outcome {
        let (o, app) = run(script, Spec::default(), RetryPolicy::default());
        assert_installed(&o, &app);
        o
    }

    #[test]
    fn clean_download() {
        let o = run_to_install(&[]);
        assert_eq!(o.requests, [None]);
        assert!(o.sleeps.is_empty());
    }

    #[test]
    fn drops_resume_with_range() {
        let script = [
            Serve::DropAfter(1),
            Serve::DropAfter(5000),
            Serve::DropAfter(0),
            Serve::DropAfter(3333),
        ];
        let o = run_to_install(&script);
        assert_eq!(
            o.requests,
            [None, Some(1), Some(5001), Some(5001), Some(8334)]
        );
        assert_eq!(o.progress.resumes, 4);
        assert_eq!(o.progress.failures, 4);
    }

    #[test]
    fn full_answer_to_a_range_request_restarts() {
        let script = [Serve::DropAfter(7000), Serve::Ignore];
        let o = run_to_install(&script);
        assert_eq!(o.requests, [None, Some(7000)]);
        assert_eq!(o.progress.restarts, 1);
    }

    #[test]
    fn starts_from_zero_are_bounded_per_check() {
        // Each connection drops a little later than the last and answers Range with 200:
        // every attempt "makes progress", so only the restart bound ends this.
        let mut script = std::vec![Serve::DropAfter(1000)];
        script.extend((1..40).map(|i| Serve::IgnoreDropAfter(1000 + 100 * i)));
        let policy = RetryPolicy {
            max_restarts: 2,
            ..RetryPolicy::default()
        };
        let (o, _) = run(&script, Spec::default(), policy);
        assert_eq!(
            o.result,
            Err(DownloadError::TooManyRestarts { restarts: 2 })
        );
        // The first request, two answered restarts, and the third answer that is refused.
        assert_eq!(o.requests.len(), 4);
        assert_eq!(o.progress.restarts, 2);
    }

    #[test]
    fn misplaced_range_refetches_the_whole_file() {
        let script = [Serve::DropAfter(7000), Serve::WrongRange];
        let o = run_to_install(&script);
        assert_eq!(o.requests, [None, Some(7000), None]);
    }

    #[test]
    fn server_errors_are_retried_with_growing_jittered_backoff() {
        let script = [
            Serve::Status(503),
            Serve::Refuse,
            Serve::Status(429),
            Serve::Stall,
        ];
        let policy = RetryPolicy {
            base_delay_ms: 1000,
            ..RetryPolicy::default()
        };
        let (o, app) = run(&script, Spec::default(), policy);
        assert_installed(&o, &app);
        assert_eq!(o.sleeps.len(), 4);
        for (i, &s) in o.sleeps.iter().enumerate() {
            let exp = 1000u32 << i;
            assert!((exp / 2..=exp).contains(&s), "sleep {i}: {s}");
        }
    }

    #[test]
    fn gives_up_after_bounded_attempts() {
        let script = [Serve::Status(503); 10];
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let (o, _) = run(&script, Spec::default(), policy);
        assert_eq!(
            o.result,
            Err(DownloadError::GaveUp {
                attempts: 3,
                last: Transient::Status(503)
            })
        );
        assert_eq!(o.requests.len(), 3);
    }

    #[test]
    fn progress_resets_the_attempt_bound() {
        // More drops than max_attempts, but each one makes progress.
        let script = [Serve::DropAfter(2000); 8];
        let policy = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        };
        let (o, app) = run(&script, Spec::default(), policy);
        assert_installed(&o, &app);
    }

    #[test]
    fn deadline_bounds_the_download() {
        let script = [Serve::Stall; 10];
        let policy = RetryPolicy {
            max_attempts: 20,
            base_delay_ms: 10_000,
            deadline_ms: 25_000,
            ..RetryPolicy::default()
        };
        let (o, _) = run(&script, Spec::default(), policy);
        assert_eq!(o.result, Err(DownloadError::Deadline));
    }

    #[test]
    fn client_errors_are_final() {
        let (o, _) = run(
            &[Serve::Status(404)],
            Spec::default(),
            RetryPolicy::default(),
        );
        assert_eq!(o.result, Err(DownloadError::Status(404)));
        assert_eq!(o.requests.len(), 1);
    }

    #[test]
    fn wrong_bytes_fail_verification_not_retry() {
        let spec = Spec {
            declared_image_sha256: Some([1; 32]),
            ..Spec::default()
        };
        let (o, _) = run(&[], spec, RetryPolicy::default());
        assert_eq!(o.result, Ok(()));
        assert_eq!(
            o.finished,
            Some(Err(InstallError::Format(
                FormatError::InstalledDigestMismatch
            )))
        );
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy {
            base_delay_ms: 1000,
            max_delay_ms: 5000,
            ..RetryPolicy::default()
        };
        let mut j = Jitter::new(1);
        for attempt in 1..=40 {
            assert!(j.backoff_ms(&policy, attempt) <= 5000);
        }
        assert!(j.backoff_ms(&policy, 200) >= 2500);
    }
}
