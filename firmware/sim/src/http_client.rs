//! The agent's HTTP client trait over `std::net::TcpStream`, written by hand: plain
//! HTTP/1.1, one connection per request (`Connection: close`), `Content-Length`,
//! chunked or read-to-close bodies, and up to [`MAX_REDIRECTS`] redirects across hosts.
//! TLS is not needed here: the agent trusts signatures, never the transport.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ota_agent::http::{
    ContentRange, ETag, HttpBody, HttpClient, HttpError, Request, ResponseHead, parse_u64,
};
use ota_agent::url::{Scheme, Url, resolve_location};

/// Redirects followed before giving up (GitHub Releases needs two).
pub const MAX_REDIRECTS: usize = 5;
/// Longest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest redirect target accepted (GitHub's signed URLs are long).
const MAX_URL: usize = 4096;

/// A blocking client; its futures complete without ever yielding.
#[derive(Debug, Default)]
pub struct StdHttpClient {
    /// Requests sent, redirects included (for tests and statistics).
    pub requests: u64,
    /// Bytes received, heads included (for "cost of an idle check" numbers).
    pub bytes_received: u64,
}

impl StdHttpClient {
    /// A client.
    pub fn new() -> Self {
        Self::default()
    }
}

enum Framing {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
    UntilClose,
}

/// A response body read straight from the socket.
pub struct StdBody<'c> {
    stream: TcpStream,
    /// Bytes read past the head, served before the socket.
    pending: Vec<u8>,
    framing: Framing,
    received: &'c mut u64,
    _client: PhantomData<&'c mut StdHttpClient>,
}

fn io_error(e: &io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        _ => HttpError::ConnectionLost,
    }
}

impl StdBody<'_> {
    /// Reads raw bytes (pending first), `Ok(0)` at end of stream.
    fn raw(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        loop {
            match self.stream.read(buf) {
                Ok(n) => {
                    *self.received += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&e)),
            }
        }
    }

    fn raw_line(&mut self) -> Result<String, HttpError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if self.raw(&mut byte)? == 0 {
                return Err(HttpError::ConnectionLost);
            }
            if byte[0] == b'\n' {
                break;
            }
            line.push(byte[0]);
            if line.len() > 1024 {
                return Err(HttpError::Protocol);
            }
        }
        String::from_utf8(line)
            .map(|s| s.trim_end_matches('\r').to_owned())
            .map_err(|_| HttpError::Protocol)
    }
}

impl HttpBody for StdBody<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                match self.raw(&mut buf[..want])? {
                    // Closed before the declared length: a truncated answer.
                    0 => Err(HttpError::ConnectionLost),
                    n => {
                        self.framing = Framing::Length(left - n as u64);
                        Ok(n)
                    }
                }
            }
            Framing::UntilClose => self.raw(buf),
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked {
                left_in_chunk: 0, ..
            } => {
                let line = self.raw_line()?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16).map_err(|_| HttpError::Protocol)?;
                if size == 0 {
                    // Trailers up to the empty line.
                    while !self.raw_line()?.is_empty() {}
                    self.framing = Framing::Chunked {
                        left_in_chunk: 0,
                        done: true,
                    };
                    return Ok(0);
                }
                self.framing = Framing::Chunked {
                    left_in_chunk: size,
                    done: false,
                };
                Box::pin(self.read(buf)).await
            }
            Framing::Chunked { left_in_chunk, .. } => {
                let want = buf
                    .len()
                    .min(usize::try_from(left_in_chunk).unwrap_or(usize::MAX));
                let n = self.raw(&mut buf[..want])?;
                if n == 0 {
                    return Err(HttpError::ConnectionLost);
                }
                let left = left_in_chunk - n as u64;
                if left == 0 && !self.raw_line()?.is_empty() {
                    return Err(HttpError::Protocol);
                }
                self.framing = Framing::Chunked {
                    left_in_chunk: left,
                    done: false,
                };
                Ok(n)
            }
        }
    }
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(url: &Url<'_>, timeout: Duration) -> Result<TcpStream, HttpError> {
    if url.scheme != Scheme::Http {
        return Err(HttpError::UnsupportedScheme);
    }
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, url.port)
        .to_socket_addrs()
        .map_err(|_| HttpError::Dns)?
        .collect();
    let mut last = HttpError::Dns;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)))
                    .map_err(|_| HttpError::Connect)?;
                return Ok(stream);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut) => last = HttpError::Timeout,
            Err(_) => last = HttpError::Connect,
        }
    }
    Err(last)
}

/// Sends one request and reads the head; returns the head, the bytes read past it and
/// the stream.
fn exchange(
    url: &Url<'_>,
    request: &Request<'_>,
    received: &mut u64,
) -> Result<(Head, Vec<u8>, TcpStream), HttpError> {
    let timeout = Duration::from_millis(u64::from(request.timeout_ms.max(1)));
    let mut stream = connect(url, timeout)?;
    let default_port = match url.scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let mut text = format!("GET {} HTTP/1.1\r\nHost: {}", url.path, url.host);
    if url.port != default_port {
        text.push_str(&format!(":{}", url.port));
    }
    text.push_str(
        "\r\nUser-Agent: ota-device-sim\r\nAccept-Encoding: identity\r\nConnection: close\r\n",
    );
    if let Some(tag) = request.if_none_match {
        text.push_str(&format!("If-None-Match: {}\r\n", tag.as_str()));
    }
    if let Some(from) = request.range_from {
        text.push_str(&format!("Range: bytes={from}-\r\n"));
    }
    text.push_str("\r\n");
    stream
        .write_all(text.as_bytes())
        .map_err(|e| io_error(&e))?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(HttpError::ConnectionLost),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(&e)),
        };
        *received += n as u64;
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    status: response.code.ok_or(HttpError::Protocol)?,
                    headers: response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).trim().to_owned(),
                            )
                        })
                        .collect(),
                };
                let rest = buf[len..].to_vec();
                return Ok((head, rest, stream));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Err(HttpError::Protocol),
        }
    }
}

impl HttpClient for StdHttpClient {
    type Body<'c> = StdBody<'c>;

    async fn get<'c>(
        &'c mut self,
        request: &Request<'_>,
    ) -> Result<(ResponseHead, StdBody<'c>), HttpError> {
        let mut current = request.url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let url = Url::parse(&current).map_err(|_| HttpError::InvalidUrl)?;
            self.requests += 1;
            let (head, pending, stream) = exchange(&url, request, &mut self.bytes_received)?;
            if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
                let location = head.header("Location").ok_or(HttpError::BadRedirect)?;
                let mut buf = vec![0u8; MAX_URL];
                let next = resolve_location(&current, location, &mut buf)
                    .map_err(|_| HttpError::BadRedirect)?;
                log::debug!("{} redirects to {next}", head.status);
                current = next.to_owned();
                continue;
            }
            let content_length = match head.header("Content-Length") {
                Some(v) => Some(parse_u64(v).ok_or(HttpError::Protocol)?),
                None => None,
            };
            let chunked = head
                .header("Transfer-Encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let framing = if head.status == 304 || head.status == 204 {
                Framing::Length(0)
            } else if chunked {
                Framing::Chunked {
                    left_in_chunk: 0,
                    done: false,
                }
            } else {
                content_length.map_or(Framing::UntilClose, Framing::Length)
            };
            let response = ResponseHead {
                status: head.status,
                etag: head.header("ETag").and_then(ETag::new),
                content_length: if chunked { None } else { content_length },
                content_range: head.header("Content-Range").and_then(ContentRange::parse),
            };
            let body = StdBody {
                stream,
                pending,
                framing,
                received: &mut self.bytes_received,
                _client: PhantomData,
            };
            return Ok((response, body));
        }
        Err(HttpError::TooManyRedirects)
    }
}
