//! The agent's [`HttpClient`] over any byte-stream [`Connection`]: plain HTTP/1.1, one
//! connection per request (`Connection: close`), redirects across hosts, and
//! `Content-Length`, chunked or read-to-close bodies. The ESP32 firmware runs it over an
//! embassy-net TCP socket and the simulator over `std::net`, so every test the simulator
//! passes (nginx, the GitHub fake's redirect chain, servers that drop, stall, lie about
//! lengths or answer 200 to a Range) exercises the device's own HTTP code.
//!
//! `https://` is spoken with the `tls` feature and a client made by
//! [`Http1Client::with_tls`] (TLS 1.3, embedded-tls): for the hosts that only serve
//! https (GitHub Releases), and for privacy. Certificates are not checked, because
//! nothing the agent installs is trusted for where it came from: the signatures decide
//! (R4 in `docs/ARCHITECTURE.md`). Without TLS, `https://` is [`HttpError::UnsupportedScheme`].
//!
//! Nothing is allocated: the client lives on the buffers it is given. Each `get` is one
//! hop: write the request, parse the answer's head with `httparse`, hand out the body
//! reader borrowing the connection (and TLS session) and the bytes that arrived with the
//! head. A redirect's target is resolved and kept here for the next hop
//! ([`Request::follow`]); [`crate::get_following!`] walks them.

mod body;
mod head;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;

use crate::download::Clock;
use crate::http::{HttpClient, HttpError, MAX_INTERIM_RESPONSES, Request, ResponseHead};
use crate::url::{Scheme, Url};

pub use body::Http1Body;
use head::Head;
pub use head::MAX_HEADERS;
use stream::{Io, Limits, Stream};

/// Head buffer the device uses: GitHub's redirect heads are 2 to 3 KiB.
pub const HEAD_BUFFER_LEN: usize = 4096;
/// URL buffers the device uses: GitHub's signed redirect targets are near 1 KiB.
pub const URL_BUFFER_LEN: usize = 1024;
/// TLS record buffer for reading: the largest record a server may send (2^14 bytes of
/// data plus the record's overhead).
pub const TLS_READ_RECORD_LEN: usize = 16_640;
/// TLS record buffer for writing: requests are a few hundred bytes, the ClientHello less.
pub const TLS_WRITE_RECORD_LEN: usize = 2048;

/// One connection at a time to a host: a TCP socket on the device, a `TcpStream` in the
/// simulator. Every operation gives up with [`HttpError::Timeout`] after the timeout it
/// is given; the client shortens it so the request's head timeout and deadline hold,
/// reading the time from the connection's own monotonic [`Clock`].
// One executor thread drives the agent (see `HttpBody`), so no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Connection: Clock {
    /// Opens a connection to `host:port`, closing the previous one if it is still open.
    /// `host` is a name or an address (IPv6 without brackets).
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError>;

    /// Writes all of `bytes` within `timeout_ms`.
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u32) -> Result<(), HttpError>;

    /// Reads what has arrived, waiting at most `timeout_ms` for at least one byte;
    /// `Ok(0)` once the peer closed.
    async fn read(&mut self, buf: &mut [u8], timeout_ms: u32) -> Result<usize, HttpError>;

    /// Lets go of the connection (the answer was read, or is abandoned), without waiting:
    /// a device between checks holds no connection open on the server.
    fn close(&mut self);
}

impl<C: Connection> Connection for &mut C {
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError> {
        (**self).connect(host, port, timeout_ms).await
    }

    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u32) -> Result<(), HttpError> {
        (**self).write_all(bytes, timeout_ms).await
    }

    async fn read(&mut self, buf: &mut [u8], timeout_ms: u32) -> Result<usize, HttpError> {
        (**self).read(buf, timeout_ms).await
    }

    fn close(&mut self) {
        (**self).close();
    }
}

/// The buffers the client works in.
pub struct Http1Memory<B> {
    /// Holds a response head and the first body bytes behind it: the longest head
    /// accepted ([`HEAD_BUFFER_LEN`] on the device).
    pub head: B,
    /// The current hop's URL: the longest URL followed, redirect targets included
    /// ([`URL_BUFFER_LEN`] on the device).
    pub url: B,
    /// Where a redirect's target is resolved; as long as `url`.
    pub next: B,
}

impl Http1Memory<alloc::vec::Vec<u8>> {
    /// Heap buffers of the device's sizes, for hosts that run the device's client (the
    /// simulator, test peers): it then refuses exactly what a device would.
    pub fn device_sized() -> Self {
        Http1Memory {
            head: alloc::vec![0; HEAD_BUFFER_LEN],
            url: alloc::vec![0; URL_BUFFER_LEN],
            next: alloc::vec![0; URL_BUFFER_LEN],
        }
    }
}

/// What a client needs to speak TLS: record buffers and randomness for the key exchange.
pub struct TlsMemory<B, R> {
    /// At least [`TLS_READ_RECORD_LEN`]: a shorter one fails on servers that send full
    /// records.
    pub read_record: B,
    /// At least [`TLS_WRITE_RECORD_LEN`].
    pub write_record: B,
    /// A cryptographically secure generator (the chip's RNG with the radio on, the OS's
    /// in the simulator).
    pub random: R,
}

impl<R> TlsMemory<alloc::vec::Vec<u8>, R> {
    /// Heap record buffers of the device's sizes, with `random`.
    pub fn device_sized(random: R) -> Self {
        TlsMemory {
            read_record: alloc::vec![0; TLS_READ_RECORD_LEN],
            write_record: alloc::vec![0; TLS_WRITE_RECORD_LEN],
            random,
        }
    }
}

/// The randomness type of a client without TLS.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTls;

/// A client over `C`, living on buffers `B` (`&'static mut [u8]` on the device, `Vec<u8>`
/// in the simulator), speaking TLS with randomness `R` when built with
/// [`Http1Client::with_tls`].
pub struct Http1Client<C, B, R = NoTls> {
    connection: C,
    memory: Http1Memory<B>,
    // Only a `tls` build can make a client with it.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls: Option<TlsMemory<B, R>>,
    /// Length of the current hop's URL in `memory.url`.
    url_len: usize,
    /// When the current request (all its hops) must be done, on the connection's clock.
    request_until_ms: u64,
    /// What the current hop's reads and writes may take.
    limits: Limits,
    requests: u64,
}

impl<C: Connection, B: AsMut<[u8]>> Http1Client<C, B, NoTls> {
    /// A plain-HTTP client; the head buffer must hold at least a status line and an
    /// empty line.
    pub fn new(connection: C, memory: Http1Memory<B>) -> Self {
        Http1Client {
            connection,
            memory,
            tls: None,
            url_len: 0,
            request_until_ms: 0,
            limits: Limits::default(),
            requests: 0,
        }
    }
}

#[cfg(feature = "tls")]
impl<C: Connection, B: AsMut<[u8]>, R: rand_core::CryptoRngCore> Http1Client<C, B, R> {
    /// A client that also speaks `https://`.
    pub fn with_tls(connection: C, memory: Http1Memory<B>, tls: TlsMemory<B, R>) -> Self {
        Http1Client {
            connection,
            memory,
            tls: Some(tls),
            url_len: 0,
            request_until_ms: 0,
            limits: Limits::default(),
            requests: 0,
        }
    }
}

impl<C: Connection, B: AsMut<[u8]>, R> Http1Client<C, B, R> {
    /// The connection, e.g. for its byte counters.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// Requests sent, redirect hops included.
    pub fn requests(&self) -> u64 {
        self.requests
    }
}

/// The randomness a client can do TLS with, if any.
pub trait TlsRandom {
    /// The generator, or `None` for a client without TLS.
    #[cfg(feature = "tls")]
    fn generator(&mut self) -> Option<&mut dyn rand_core::CryptoRngCore>;
}

impl TlsRandom for NoTls {
    #[cfg(feature = "tls")]
    fn generator(&mut self) -> Option<&mut dyn rand_core::CryptoRngCore> {
        None
    }
}

#[cfg(feature = "tls")]
impl<R: rand_core::CryptoRngCore> TlsRandom for R {
    fn generator(&mut self) -> Option<&mut dyn rand_core::CryptoRngCore> {
        Some(self)
    }
}

impl<C: Connection, B: AsMut<[u8]>, R: TlsRandom> HttpClient for Http1Client<C, B, R> {
    type Body<'c>
        = Http1Body<'c, C>
    where
        Self: 'c;

    async fn get<'c>(
        &'c mut self,
        request: &Request<'_>,
    ) -> Result<(ResponseHead, Http1Body<'c, C>), HttpError> {
        let Http1Memory { head, url, next } = &mut self.memory;
        let (head, url, next) = (head.as_mut(), url.as_mut(), next.as_mut());
        // The hop's URL lives in `url`: the caller's, or the last redirect's target.
        if !request.follow {
            let bytes = request.url.as_bytes();
            url.get_mut(..bytes.len())
                .ok_or(HttpError::InvalidUrl)?
                .copy_from_slice(bytes);
            self.url_len = bytes.len();
        }
        let current =
            core::str::from_utf8(&url[..self.url_len]).map_err(|_| HttpError::InvalidUrl)?;
        let parsed = Url::parse(current).map_err(|_| HttpError::InvalidUrl)?;
        let host = parsed.host.trim_start_matches('[').trim_end_matches(']');
        if parsed.scheme == Scheme::Https && self.tls.is_none() {
            return Err(HttpError::UnsupportedScheme);
        }

        self.requests += 1;
        let now = self.connection.now_ms();
        if !request.follow {
            self.request_until_ms = now.saturating_add(request.deadline_ms);
        }
        let head_until = now
            .saturating_add(u64::from(request.head_timeout_ms))
            .min(self.request_until_ms);
        self.limits.start(request.timeout_ms, head_until);
        let connect_timeout = self.limits.timeout_at(now)?;
        self.connection
            .connect(host, parsed.port, connect_timeout)
            .await?;
        let io = Io::new(&mut self.connection, &self.limits);
        let mut stream = match (parsed.scheme, self.tls.as_mut()) {
            #[cfg(feature = "tls")]
            (Scheme::Https, Some(tls)) => {
                let random = tls.random.generator().ok_or(HttpError::UnsupportedScheme)?;
                let (read, write) = (tls.read_record.as_mut(), tls.write_record.as_mut());
                Stream::Tls(tls::open(io, host, read, write, random).await?)
            }
            _ => Stream::Plain(io),
        };
        send(&mut stream, &parsed, request).await?;
        let (answer, filled) = read_head(&mut stream, current, head, next).await?;
        // The head is in: the body has what is left of the request's time.
        self.limits.until(self.request_until_ms);
        if let Some(n) = answer.redirect_len {
            log::debug!("HTTP {} redirect", answer.status);
            // Kept for the next hop.
            url.get_mut(..n)
                .ok_or(HttpError::BadRedirect)?
                .copy_from_slice(&next[..n]);
            self.url_len = n;
        }
        let response = ResponseHead {
            status: answer.status,
            redirect: answer.redirect_len.is_some(),
            etag: answer.etag,
            content_length: answer.content_length,
            content_range: answer.content_range,
        };
        let body = Http1Body::new(stream, &head[answer.len..filled], answer.framing);
        Ok((response, body))
    }
}

/// Reads the final (non-1xx) head into `buf`, skipping at most [`MAX_INTERIM_RESPONSES`]
/// interim heads. Returns the head and how many bytes of `buf` are filled (the body's
/// first bytes follow the head).
async fn read_head<C: Connection>(
    stream: &mut Stream<'_, C>,
    url: &str,
    buf: &mut [u8],
    next: &mut [u8],
) -> Result<(Head, usize), HttpError> {
    let mut filled = 0;
    let mut interim = 0;
    loop {
        if let Some(head) = head::parse(&buf[..filled], url, next)? {
            if !head.is_interim() {
                return Ok((head, filled));
            }
            interim += 1;
            if interim > MAX_INTERIM_RESPONSES {
                return Err(HttpError::TooManyInterimResponses);
            }
            // Drop the 1xx head and parse what follows it.
            buf.copy_within(head.len..filled, 0);
            filled -= head.len;
            continue;
        }
        if filled == buf.len() {
            return Err(HttpError::Protocol);
        }
        match stream.read(&mut buf[filled..]).await? {
            0 => return Err(HttpError::ConnectionLost),
            n => filled += n,
        }
    }
}

async fn send<C: Connection>(
    stream: &mut Stream<'_, C>,
    url: &Url<'_>,
    request: &Request<'_>,
) -> Result<(), HttpError> {
    let mut digits = [0u8; 20];
    stream.write_all(b"GET ").await?;
    stream.write_all(url.path.as_bytes()).await?;
    stream.write_all(b" HTTP/1.1\r\nHost: ").await?;
    stream.write_all(url.host.as_bytes()).await?;
    let default_port = match url.scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    if url.port != default_port {
        stream.write_all(b":").await?;
        stream
            .write_all(decimal(u64::from(url.port), &mut digits))
            .await?;
    }
    stream
        .write_all(concat!("\r\nUser-Agent: ota-agent/", env!("CARGO_PKG_VERSION")).as_bytes())
        .await?;
    if let Some(identity) = request.identity.filter(|t| is_comment_text(t)) {
        stream.write_all(b" (").await?;
        stream.write_all(identity.as_bytes()).await?;
        stream.write_all(b")").await?;
    }
    stream
        .write_all(b"\r\nAccept-Encoding: identity\r\nConnection: close\r\n")
        .await?;
    if let Some(tag) = request.if_none_match {
        stream.write_all(b"If-None-Match: ").await?;
        stream.write_all(tag.as_str().as_bytes()).await?;
        stream.write_all(b"\r\n").await?;
    }
    if let Some(from) = request.range_from {
        stream.write_all(b"Range: bytes=").await?;
        stream.write_all(decimal(from, &mut digits)).await?;
        stream.write_all(b"-\r\n").await?;
    }
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

/// Whether `text` can go inside a `User-Agent` comment as it is: printable ASCII without
/// the characters that would end the comment or escape in it (RFC 9110 `ctext`).
fn is_comment_text(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && !b"()\\".contains(&b))
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
