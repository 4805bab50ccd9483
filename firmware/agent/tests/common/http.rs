//! In-memory HTTP pieces for the agent's tests (unit tests and `tests/ram.rs`): answers
//! served from a byte slice, a delay that does not wait and a clock that ticks per call.
//! Written against `ota_agent::` paths so both kinds of test can include it.

use core::cell::Cell;

use ota_agent::download::Clock;
use ota_agent::http::{ContentRange, ETag, HttpBody, HttpError, ResponseHead};

/// A body that is the rest of a slice.
pub struct SliceBody<'c>(pub &'c [u8]);

impl HttpBody for SliceBody<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The head of a static host's answer for a file of `len` bytes: 200, or 206 from
/// `range_from` with its `Content-Range`.
pub fn ranged_head(len: u64, range_from: Option<u64>, etag: Option<ETag>) -> ResponseHead {
    let first = range_from.unwrap_or(0);
    ResponseHead {
        status: if range_from.is_some() { 206 } else { 200 },
        redirect: false,
        etag,
        content_length: Some(len - first),
        content_range: range_from.map(|first| ContentRange {
            first,
            last: len - 1,
            complete: Some(len),
        }),
    }
}

/// A head without a body (`404`, `304`, ...).
pub fn bodiless_head(status: u16, etag: Option<ETag>) -> ResponseHead {
    ResponseHead {
        status,
        redirect: false,
        etag,
        content_length: Some(0),
        content_range: None,
    }
}

/// Returns at once: retries and backoff cost no test time.
pub struct NoDelay;

impl embedded_hal_async::delay::DelayNs for NoDelay {
    async fn delay_ns(&mut self, _: u32) {}
}

/// One millisecond per reading.
pub struct Ticks(pub Cell<u64>);

impl Clock for Ticks {
    fn now_ms(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}
