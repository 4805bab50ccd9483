//! The device's plain-HTTP client against a server whose every byte is fuzz input: heads,
//! interim answers, redirects, `Content-Length`, chunked and read-to-close bodies.

use std::collections::VecDeque;

use embassy_futures::block_on;
use ota_agent::download::Clock;
use ota_agent::http::{HttpClient, HttpError, Request};
use ota_agent::http1::{Connection, Http1Client, Http1Memory};

/// Reads the connection hands out are at most this long, cycling through sizes taken
/// from the input so that heads, chunk sizes and CRLFs split at every place.
const MAX_READ: usize = 97;

/// What one fetch made of the server's bytes.
pub struct PlainFetch {
    /// The final answer's status, its `Content-Length` and the body read to its end.
    pub answer: Result<(u16, Option<u64>, Vec<u8>), HttpError>,
    /// Connections the client opened (one per hop).
    pub connections: usize,
}

/// `GET http://host.invalid/fw/sensor.stable.manifest`, following redirects as the agent
/// does, against a server that sends `server_bytes` (every connection continues where
/// the last one stopped reading). `read_sizes` seeds the read lengths.
pub fn fetch_plain(read_sizes: u8, server_bytes: &[u8]) -> PlainFetch {
    let mut connection = ScriptedConnection {
        to_client: server_bytes.iter().copied().collect(),
        open: false,
        connections: 0,
        next_read: usize::from(read_sizes),
        clock: 0,
    };
    let answer = block_on(async {
        let mut client = Http1Client::new(&mut connection, Http1Memory::device_sized());
        let request = Request::get("http://host.invalid/fw/sensor.stable.manifest", 1_000);
        let (head, mut body) = ota_agent::get_following!(client, request)?;
        let answer = ota_tls_peer::read_body(&mut body).await?;
        Ok::<_, HttpError>((head.status, head.content_length, answer))
    });
    PlainFetch {
        answer,
        connections: connection.connections,
    }
}

/// A connection whose peer has already said everything: reads drain the script, writes
/// (the client's requests) vanish, and a drained script is the peer closing.
struct ScriptedConnection {
    to_client: VecDeque<u8>,
    open: bool,
    connections: usize,
    next_read: usize,
    /// Milliseconds, one per reading: the client's deadlines are a bound on its reads too.
    clock: u64,
}

impl Clock for ScriptedConnection {
    fn now_ms(&self) -> u64 {
        self.clock
    }
}

impl Connection for ScriptedConnection {
    async fn connect(&mut self, _host: &str, _port: u16, _timeout: u32) -> Result<(), HttpError> {
        self.open = true;
        self.connections += 1;
        Ok(())
    }

    async fn write_all(&mut self, _bytes: &[u8], _timeout: u32) -> Result<(), HttpError> {
        match self.open {
            true => Ok(()),
            false => Err(HttpError::ConnectionLost),
        }
    }

    async fn read(&mut self, buf: &mut [u8], _timeout: u32) -> Result<usize, HttpError> {
        if !self.open {
            return Err(HttpError::ConnectionLost);
        }
        self.clock += 1;
        self.next_read = self.next_read * 7 % MAX_READ + 1;
        let n = buf.len().min(self.next_read).min(self.to_client.len());
        for (slot, byte) in buf.iter_mut().zip(self.to_client.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn close(&mut self) {
        self.open = false;
    }
}
