//! The device's HTTP client against the peer with no socket in between: one full
//! handshake per [`fetch`], fast enough for a fuzzer and with nothing that can hang.

use std::collections::VecDeque;

use embassy_futures::block_on;
use ota_agent::http::{HttpBody, HttpClient, HttpError, Request};
use ota_agent::http1::{Connection, Http1Client, Http1Memory, TlsMemory};
use rand_core::OsRng;

use crate::peer::Peer;
use crate::records::Record;

/// Most body bytes [`read_body`] keeps reading; one fuzz input holds far less, so a body
/// that reaches this is a client that invents bytes.
pub const MAX_BODY: usize = 1 << 20;

/// Reads `body` to its end, or until it has given at least [`MAX_BODY`] bytes: a harness
/// that fetches from a scripted peer keeps what the client made of it, bounded.
pub async fn read_body<B: HttpBody>(body: &mut B) -> Result<Vec<u8>, HttpError> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while answer.len() < MAX_BODY {
        match body.read(&mut chunk).await? {
            0 => break,
            n => answer.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(answer)
}

/// What the device's client made of the records.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// An answer head parsed and the body read to its end.
    Answer { status: u16, body: Vec<u8> },
    /// The request failed with this error (a refused record, a broken head, ...).
    Failed(HttpError),
}

/// Sends one `GET https://…` with the device's client (its buffer sizes, its TLS
/// session) to a peer that answers the handshake honestly and then sends `records`,
/// and reads the answer's body to its end. Panics only where the device would.
pub fn fetch(records: Vec<Record>) -> FetchOutcome {
    let mut client = Http1Client::with_tls(
        InMemoryConnection::new(records),
        Http1Memory::device_sized(),
        TlsMemory::device_sized(OsRng),
    );
    let result = block_on(async {
        let request = Request::get("https://peer.invalid/fw/sensor.stable.manifest", 1_000);
        let (head, mut body) = client.get(&request).await?;
        let answer = read_body(&mut body).await?;
        Ok::<_, HttpError>((head.status, answer))
    });
    match result {
        Ok((status, body)) => FetchOutcome::Answer { status, body },
        Err(e) => FetchOutcome::Failed(e),
    }
}

/// A connection whose other end is a [`Peer`]: what the client writes goes to the peer
/// at once, and its answer is what the client reads next. Once the peer has said all,
/// reads see the connection closed.
struct InMemoryConnection {
    records: Vec<Record>,
    peer: Option<Peer>,
    to_client: VecDeque<u8>,
    started: std::time::Instant,
}

/// Real time: the peer answers at once, so the client's deadlines never fire here.
impl ota_agent::download::Clock for InMemoryConnection {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl InMemoryConnection {
    fn new(records: Vec<Record>) -> Self {
        InMemoryConnection {
            records,
            peer: None,
            to_client: VecDeque::new(),
            started: std::time::Instant::now(),
        }
    }
}

impl Connection for InMemoryConnection {
    async fn connect(
        &mut self,
        _host: &str,
        _port: u16,
        _timeout_ms: u32,
    ) -> Result<(), HttpError> {
        self.peer = Some(Peer::new(self.records.clone()));
        self.to_client.clear();
        Ok(())
    }

    async fn write_all(&mut self, bytes: &[u8], _timeout_ms: u32) -> Result<(), HttpError> {
        let peer = self.peer.as_mut().ok_or(HttpError::ConnectionLost)?;
        // The honest server refusing the client is a broken connection to the client.
        let answer = peer.receive(bytes).map_err(|_| HttpError::ConnectionLost)?;
        self.to_client.extend(answer);
        Ok(())
    }

    async fn read(&mut self, buf: &mut [u8], _timeout_ms: u32) -> Result<usize, HttpError> {
        if self.peer.is_none() {
            return Err(HttpError::ConnectionLost);
        }
        let n = buf.len().min(self.to_client.len());
        for (slot, byte) in buf.iter_mut().zip(self.to_client.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn close(&mut self) {
        self.peer = None;
    }
}
