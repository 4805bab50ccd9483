//! The device's network for ota-agent: [`Http1Client`] (the agent's HTTP/1.1 client with
//! TLS, the same code the simulator's tests run) over one embassy-net TCP socket, with DNS
//! through the stack and the timeout the client gives on every operation (what is left of
//! the request's head timeout or deadline, measured on embassy's monotonic clock).
//!
//! Nothing is allocated: the socket, client and TLS record buffers are `'static` and lent
//! at start-up.

use core::cell::Cell;

use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{State, TcpSocket};
use embassy_time::{Duration, Instant, with_deadline, with_timeout};
use embedded_io_async::Write as _;
use esp_hal::rng::Rng;
use ota_agent::download::Clock;
use ota_agent::http::HttpError;
use ota_agent::http1::{
    Connection, HEAD_BUFFER_LEN, Http1Client, Http1Memory, TLS_READ_RECORD_LEN,
    TLS_WRITE_RECORD_LEN, TlsMemory, URL_BUFFER_LEN,
};

/// Socket receive window: the download streams through it, so it bounds the download
/// rate at `TCP_RX / round trip`: 4 KiB allowed ~80 KB/s over a 50 ms round trip (S3,
/// GitHub), 8 KiB allows ~160 KB/s. That is what the flash can absorb once the slot is
/// erased in 64 KiB blocks (~250 KiB/s of image, typical W25Q32JV timings, see
/// docs/BENCHMARKS.md "Bytes on the wire"; ~150 KiB/s of compressed download at 57 %).
/// More would not download faster and risks losses: while the agent decodes and writes,
/// the stack is not polled and esp-radio queues at most 5 received frames
/// (`rx_queue_size`, ~7.3 KB, about this window), and during a flash erase interrupts
/// are off and only the radio's 10 static receive buffers take frames. A larger window
/// needs those raised too (esp-radio's `ControllerConfig`, behind its `unstable` feature).
pub const TCP_RX: usize = 8192;
/// Requests are a few hundred bytes; a longer one is written in pieces.
pub const TCP_TX: usize = 1024;
/// How long an abandoned connection may take to send its reset before the next one.
const RESET_WAIT: Duration = Duration::from_millis(500);

/// The network stack, set once WiFi is up. The agent starts (and counts the trial boot)
/// before the network exists, so the connection looks the stack up at each request.
pub type NetCell = Cell<Option<Stack<'static>>>;

/// The device's HTTP client.
pub type EmbassyHttp = Http1Client<EmbassySocket, &'static mut [u8], ChipRandom>;

/// The chip's random number generator as TLS randomness. With the radio running (it is
/// whenever a connection is made), its output is true random numbers (ESP32-C3 TRM,
/// "Random Number Generator"), which `esp_hal::rng::Rng` leaves to the caller to assert.
pub struct ChipRandom(Rng);

impl ChipRandom {
    pub fn new() -> Self {
        ChipRandom(Rng::new())
    }
}

impl rand_core::RngCore for ChipRandom {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl rand_core::CryptoRng for ChipRandom {}

/// The buffers the client lives on, lent for the firmware's lifetime.
pub struct HttpMemory {
    rx: [u8; TCP_RX],
    tx: [u8; TCP_TX],
    head: [u8; HEAD_BUFFER_LEN],
    url: [u8; URL_BUFFER_LEN],
    next: [u8; URL_BUFFER_LEN],
    tls_read: [u8; TLS_READ_RECORD_LEN],
    tls_write: [u8; TLS_WRITE_RECORD_LEN],
}

impl HttpMemory {
    pub const fn new() -> Self {
        HttpMemory {
            rx: [0; TCP_RX],
            tx: [0; TCP_TX],
            head: [0; HEAD_BUFFER_LEN],
            url: [0; URL_BUFFER_LEN],
            next: [0; URL_BUFFER_LEN],
            tls_read: [0; TLS_READ_RECORD_LEN],
            tls_write: [0; TLS_WRITE_RECORD_LEN],
        }
    }
}

/// The client over `memory`, connecting through the stack in `net` once there is one.
pub fn client(net: &'static NetCell, memory: &'static mut HttpMemory) -> EmbassyHttp {
    let HttpMemory {
        rx,
        tx,
        head,
        url,
        next,
        tls_read,
        tls_write,
    } = memory;
    Http1Client::with_tls(
        EmbassySocket {
            net,
            buffers: Some((rx, tx)),
            socket: None,
        },
        Http1Memory { head, url, next },
        TlsMemory {
            read_record: tls_read,
            write_record: tls_write,
            random: ChipRandom::new(),
        },
    )
}

/// One TCP socket, reconnected for each request.
pub struct EmbassySocket {
    net: &'static NetCell,
    /// The socket buffers until the first request creates the socket.
    buffers: Option<(&'static mut [u8], &'static mut [u8])>,
    socket: Option<TcpSocket<'static>>,
}

fn duration(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms.max(1)))
}

impl EmbassySocket {
    /// The open socket, made to give up on a connection that makes no progress for
    /// `timeout_ms` (smoltcp's own timer, beside the `with_timeout` on each operation).
    fn socket(&mut self, timeout_ms: u32) -> Result<&mut TcpSocket<'static>, HttpError> {
        let socket = self.socket.as_mut().ok_or(HttpError::ConnectionLost)?;
        socket.set_timeout(Some(duration(timeout_ms)));
        Ok(socket)
    }
}

impl Clock for EmbassySocket {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }
}

impl Connection for EmbassySocket {
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError> {
        let stack = self.net.get().ok_or(HttpError::Connect)?;
        if self.socket.is_none()
            && let Some((rx, tx)) = self.buffers.take()
        {
            self.socket = Some(TcpSocket::new(stack, rx, tx));
        }
        let timeout = duration(timeout_ms);
        // Name lookup and connecting share the one timeout the client gave.
        let until = Instant::now() + timeout;
        let socket = self.socket.as_mut().ok_or(HttpError::Connect)?;
        if socket.state() != State::Closed {
            // The previous answer's connection (finished, abandoned or failed).
            socket.abort();
            let _ = with_timeout(RESET_WAIT, socket.flush()).await;
        }
        if !stack.is_config_up() {
            return Err(HttpError::Connect);
        }
        let address = match with_deadline(until, stack.dns_query(host, DnsQueryType::A)).await {
            Ok(Ok(addresses)) => *addresses.first().ok_or(HttpError::Dns)?,
            Ok(Err(_)) => return Err(HttpError::Dns),
            Err(_) => return Err(HttpError::Timeout),
        };
        // smoltcp gives up on a connection that makes no progress for this long.
        socket.set_timeout(Some(timeout));
        match with_deadline(until, socket.connect((address, port))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(HttpError::Connect),
            Err(_) => {
                socket.abort();
                Err(HttpError::Timeout)
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u32) -> Result<(), HttpError> {
        let socket = self.socket(timeout_ms)?;
        match with_timeout(duration(timeout_ms), socket.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(HttpError::ConnectionLost),
            Err(_) => Err(HttpError::Timeout),
        }
    }

    async fn read(&mut self, buf: &mut [u8], timeout_ms: u32) -> Result<usize, HttpError> {
        let socket = self.socket(timeout_ms)?;
        match with_timeout(duration(timeout_ms), socket.read(buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(HttpError::ConnectionLost),
            Err(_) => Err(HttpError::Timeout),
        }
    }

    fn close(&mut self) {
        if let Some(socket) = self.socket.as_mut() {
            socket.close();
        }
    }
}
