//! The agent's [`HttpClient`] over any byte-stream [`Connection`]: plain HTTP/1.1, one
//! connection per request (`Connection: close`), redirects across hosts, and
//! `Content-Length`, chunked or read-to-close bodies. The ESP32 firmware runs it over an
//! embassy-net TCP socket and the simulator over `std::net`, so every test the simulator
//! passes (nginx, the GitHub fake's redirect chain, servers that drop, stall, lie about
//! lengths or answer 200 to a Range) exercises the device's own HTTP code.
//!
//! No TLS: the agent trusts signatures, not the transport, and `https://` URLs are
//! refused with [`HttpError::UnsupportedScheme`]. Nothing is allocated: the client lives
//! on the buffers it is given. Each hop writes the request and parses the answer's head
//! with `httparse`; only the final answer's body reader is built, after the redirect loop,
//! borrowing the connection and the bytes that arrived with the head.

mod body;
mod head;
#[cfg(test)]
mod tests;

use crate::http::{HttpClient, HttpError, Request, ResponseHead};
use crate::url::{Scheme, Url};

pub use body::Http1Body;
use head::Head;
pub use head::MAX_HEADERS;

/// Redirect hops followed; GitHub's `releases/latest/download` needs two.
pub const MAX_REDIRECTS: usize = 5;
/// Head buffer the device uses: GitHub's redirect heads are 2 to 3 KiB.
pub const HEAD_BUFFER_LEN: usize = 4096;
/// URL buffers the device uses: GitHub's signed redirect targets are near 1 KiB.
pub const URL_BUFFER_LEN: usize = 1024;

/// One connection at a time to a host: a TCP socket on the device, a `TcpStream` in the
/// simulator. The connection applies the request's timeout to every operation.
// One executor thread drives the agent (see `HttpBody`), so no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Connection {
    /// Opens a connection to `host:port`, closing the previous one if it is still open.
    /// `host` is a name or an address (IPv6 without brackets). Every later read and write
    /// gives up with [`HttpError::Timeout`] after `timeout_ms` without progress.
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError>;

    /// Writes all of `bytes`.
    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), HttpError>;

    /// Reads what has arrived, waiting for at least one byte; `Ok(0)` once the peer
    /// closed.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError>;

    /// Lets go of the connection (the answer was read, or is abandoned), without waiting:
    /// a device between checks holds no connection open on the server.
    fn close(&mut self);
}

impl<C: Connection> Connection for &mut C {
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError> {
        (**self).connect(host, port, timeout_ms).await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        (**self).write_all(bytes).await
    }

    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        (**self).read(buf).await
    }

    fn close(&mut self) {
        (**self).close();
    }
}

/// The buffers the client works in.
pub struct Http1Memory<B> {
    /// Holds a response head and the first body bytes behind it: the longest head
    /// accepted (GitHub's redirect heads are 2 to 3 KiB).
    pub head: B,
    /// The current hop's URL once a redirect replaced the caller's: the longest redirect
    /// target followed (GitHub's signed URLs are near 1 KiB).
    pub url: B,
    /// Where a redirect's target is resolved; as long as `url`.
    pub next: B,
}

/// A client over `C`, living on buffers `B` (`&'static mut [u8]` on the device, `Vec<u8>`
/// in the simulator).
pub struct Http1Client<C, B> {
    connection: C,
    memory: Http1Memory<B>,
    requests: u64,
}

impl<C: Connection, B: AsMut<[u8]>> Http1Client<C, B> {
    /// A client; the head buffer must hold at least a status line and an empty line.
    pub fn new(connection: C, memory: Http1Memory<B>) -> Self {
        Http1Client {
            connection,
            memory,
            requests: 0,
        }
    }

    /// The connection, e.g. for its byte counters.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// Requests sent, redirect hops included.
    pub fn requests(&self) -> u64 {
        self.requests
    }
}

impl<C: Connection, B: AsMut<[u8]>> HttpClient for Http1Client<C, B> {
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
        // `None`: the hop's URL is the caller's; `Some(n)`: the first n bytes of `url`.
        let mut redirected: Option<usize> = None;
        let mut answer = None;
        for _ in 0..=MAX_REDIRECTS {
            let current = match redirected {
                None => request.url,
                Some(n) => core::str::from_utf8(&url[..n]).map_err(|_| HttpError::InvalidUrl)?,
            };
            self.requests += 1;
            let (parsed, filled) =
                exchange(&mut self.connection, current, request, head, next).await?;
            match parsed.redirect_len {
                Some(n) => {
                    log::debug!("HTTP {} redirect", parsed.status);
                    url.get_mut(..n)
                        .ok_or(HttpError::BadRedirect)?
                        .copy_from_slice(&next[..n]);
                    redirected = Some(n);
                }
                None => {
                    answer = Some((parsed, filled));
                    break;
                }
            }
        }
        let (parsed, filled) = answer.ok_or(HttpError::TooManyRedirects)?;
        let response = ResponseHead {
            status: parsed.status,
            etag: parsed.etag,
            content_length: parsed.content_length,
            content_range: parsed.content_range,
        };
        let body = Http1Body::new(
            &mut self.connection,
            &head[parsed.len..filled],
            parsed.framing,
        );
        Ok((response, body))
    }
}

/// One hop: connect, send the request, read the final (non-1xx) head into `buf`. Returns
/// the head and how many bytes of `buf` are filled (the body's first bytes follow the
/// head).
async fn exchange<C: Connection>(
    connection: &mut C,
    url: &str,
    request: &Request<'_>,
    buf: &mut [u8],
    next: &mut [u8],
) -> Result<(Head, usize), HttpError> {
    let parsed = Url::parse(url).map_err(|_| HttpError::InvalidUrl)?;
    if parsed.scheme != Scheme::Http {
        return Err(HttpError::UnsupportedScheme);
    }
    let host = parsed.host.trim_start_matches('[').trim_end_matches(']');
    connection
        .connect(host, parsed.port, request.timeout_ms.max(1))
        .await?;
    send(connection, &parsed, request).await?;

    let mut filled = 0;
    loop {
        if let Some(head) = head::parse(&buf[..filled], url, next)? {
            if !head.is_interim() {
                return Ok((head, filled));
            }
            // Drop the 1xx head and parse what follows it.
            buf.copy_within(head.len..filled, 0);
            filled -= head.len;
            continue;
        }
        if filled == buf.len() {
            return Err(HttpError::Protocol);
        }
        match connection.read(&mut buf[filled..]).await? {
            0 => return Err(HttpError::ConnectionLost),
            n => filled += n,
        }
    }
}

async fn send<C: Connection>(
    connection: &mut C,
    url: &Url<'_>,
    request: &Request<'_>,
) -> Result<(), HttpError> {
    let mut digits = [0u8; 20];
    connection.write_all(b"GET ").await?;
    connection.write_all(url.path.as_bytes()).await?;
    connection.write_all(b" HTTP/1.1\r\nHost: ").await?;
    connection.write_all(url.host.as_bytes()).await?;
    let default_port = match url.scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    if url.port != default_port {
        connection.write_all(b":").await?;
        connection
            .write_all(decimal(u64::from(url.port), &mut digits))
            .await?;
    }
    connection
        .write_all(
            concat!(
                "\r\nUser-Agent: ota-agent/",
                env!("CARGO_PKG_VERSION"),
                "\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
            )
            .as_bytes(),
        )
        .await?;
    if let Some(tag) = request.if_none_match {
        connection.write_all(b"If-None-Match: ").await?;
        connection.write_all(tag.as_str().as_bytes()).await?;
        connection.write_all(b"\r\n").await?;
    }
    if let Some(from) = request.range_from {
        connection.write_all(b"Range: bytes=").await?;
        connection.write_all(decimal(from, &mut digits)).await?;
        connection.write_all(b"-\r\n").await?;
    }
    connection.write_all(b"\r\n").await
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
