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
