//! In-memory HTTP pieces for the agent's integration tests: answers served from a byte
//! slice, a delay that does not wait and a clock that ticks per call.

use core::cell::Cell;

use ota_agent::download::Clock;
use ota_agent::http::{HttpBody, HttpError};

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
