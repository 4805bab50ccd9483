//! The simulator's network: ota-agent's own HTTP/1.1 client ([`Http1Client`], the code the
//! ESP32 firmware runs, TLS included) over a blocking `std::net::TcpStream`. The futures
//! complete without ever yielding, which is what the simulator's `block_on` expects.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use ota_agent::download::Clock;
use ota_agent::http::HttpError;
use ota_agent::http1::{Connection, Http1Client, Http1Memory, TlsMemory};
use rand_core::OsRng;

/// The agent's client as the simulator runs it.
pub type StdHttpClient = Http1Client<StdConnection, Vec<u8>, OsRng>;

/// A client with the device's buffer sizes, so the simulator refuses what a device would.
pub fn std_http_client() -> StdHttpClient {
    Http1Client::with_tls(
        StdConnection::default(),
        Http1Memory::device_sized(),
        TlsMemory::device_sized(OsRng),
    )
}

/// One TCP connection at a time, with the timeout the client gives on every operation.
#[derive(Debug)]
pub struct StdConnection {
    stream: Option<TcpStream>,
    /// Bytes received, heads included (for "cost of an idle check" numbers).
    pub bytes_received: u64,
    /// Zero of the clock the client's deadlines are measured on.
    started: Instant,
}

impl Default for StdConnection {
    fn default() -> Self {
        StdConnection {
            stream: None,
            bytes_received: 0,
            started: Instant::now(),
        }
    }
}

impl Clock for StdConnection {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

fn duration(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms.max(1)))
}

fn io_error(e: &io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        _ => HttpError::ConnectionLost,
    }
}

impl StdConnection {
    fn stream(&mut self) -> Result<&mut TcpStream, HttpError> {
        self.stream.as_mut().ok_or(HttpError::ConnectionLost)
    }
}

impl Connection for StdConnection {
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError> {
        self.stream = None;
        let timeout = duration(timeout_ms);
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|_| HttpError::Dns)?
            .collect();
        let mut last = HttpError::Dns;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => last = HttpError::Timeout,
                Err(_) => last = HttpError::Connect,
            }
        }
        Err(last)
    }

    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u32) -> Result<(), HttpError> {
        let stream = self.stream()?;
        stream
            .set_write_timeout(Some(duration(timeout_ms)))
            .map_err(|_| HttpError::ConnectionLost)?;
        stream.write_all(bytes).map_err(|e| io_error(&e))
    }

    async fn read(&mut self, buf: &mut [u8], timeout_ms: u32) -> Result<usize, HttpError> {
        let stream = self.stream()?;
        stream
            .set_read_timeout(Some(duration(timeout_ms)))
            .map_err(|_| HttpError::ConnectionLost)?;
        loop {
            match self.stream()?.read(buf) {
                Ok(n) => {
                    self.bytes_received += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&e)),
            }
        }
    }

    fn close(&mut self) {
        self.stream = None;
    }
}
