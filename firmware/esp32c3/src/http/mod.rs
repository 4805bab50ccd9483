//! ota-agent's [`HttpClient`] over one embassy-net TCP socket: plain HTTP/1.1 (no TLS: the
//! agent trusts signatures, not the transport), one connection per request with
//! `Connection: close`, DNS through the stack, and redirects across hosts.
//!
//! The socket stays inside the client. Each hop of the redirect loop writes the request
//! and parses the answer's head with `httparse` in [`head`]; only the final answer's body
//! reader is built, after the loop, borrowing the socket and the bytes that arrived with
//! the head. Nothing is allocated: all buffers are `'static` and lent at start-up.

mod body;
mod head;

use core::cell::Cell;
use core::fmt::Write as _;

use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{State, TcpSocket};
use embassy_time::{Duration, with_timeout};
use embedded_io_async::Write as _;
use heapless::String;
use ota_agent::http::{HttpClient, HttpError, Request, ResponseHead};
use ota_agent::url::{Scheme, Url};

pub use body::EmbassyBody;
use head::Head;

/// Redirect hops followed; GitHub's `releases/latest/download` needs two.
const MAX_REDIRECTS: usize = 5;
/// Socket receive window: the download streams through it.
pub const TCP_RX: usize = 4096;
/// Requests are a few hundred bytes; a longer one is written in pieces.
pub const TCP_TX: usize = 1024;
/// Longest response head (GitHub's redirect heads are 2 to 3 KiB).
pub const HEAD_MAX: usize = 4096;
/// Longest URL followed, redirect targets included.
pub const URL_MAX: usize = 1024;
/// How long an abandoned connection may take to send its reset before the next one.
const RESET_WAIT: Duration = Duration::from_millis(500);

/// The network stack, set once WiFi is up. The agent starts (and counts the trial boot)
/// before the network exists, so the client looks the stack up at each request.
pub type NetCell = Cell<Option<Stack<'static>>>;

/// The buffers the client lives on, lent for the firmware's lifetime.
pub struct HttpMemory {
    rx: [u8; TCP_RX],
    tx: [u8; TCP_TX],
    head: [u8; HEAD_MAX],
    url: [u8; URL_MAX],
    next: [u8; URL_MAX],
}

impl HttpMemory {
    pub const fn new() -> Self {
        HttpMemory {
            rx: [0; TCP_RX],
            tx: [0; TCP_TX],
            head: [0; HEAD_MAX],
            url: [0; URL_MAX],
            next: [0; URL_MAX],
        }
    }
}

/// The device's HTTP client.
pub struct EmbassyHttp {
    net: &'static NetCell,
    /// The socket buffers until the first request creates the socket.
    socket_buffers: Option<(&'static mut [u8], &'static mut [u8])>,
    socket: Option<TcpSocket<'static>>,
    head: &'static mut [u8],
    /// The URL of the current hop once a redirect replaced the caller's.
    url: &'static mut [u8],
    next: &'static mut [u8],
}

impl EmbassyHttp {
    pub fn new(net: &'static NetCell, memory: &'static mut HttpMemory) -> Self {
        let HttpMemory {
            rx,
            tx,
            head,
            url,
            next,
        } = memory;
        EmbassyHttp {
            net,
            socket_buffers: Some((rx, tx)),
            socket: None,
            head,
            url,
            next,
        }
    }
}

impl HttpClient for EmbassyHttp {
    type Body<'c> = EmbassyBody<'c>;

    async fn get<'c>(
        &'c mut self,
        request: &Request<'_>,
    ) -> Result<(ResponseHead, EmbassyBody<'c>), HttpError> {
        let stack = self.net.get().ok_or(HttpError::Connect)?;
        if self.socket.is_none()
            && let Some((rx, tx)) = self.socket_buffers.take()
        {
            self.socket = Some(TcpSocket::new(stack, rx, tx));
        }
        let socket = self.socket.as_mut().ok_or(HttpError::Connect)?;
        let timeout = Duration::from_millis(u64::from(request.timeout_ms.max(1)));

        // `None`: the hop's URL is the caller's; `Some(n)`: the first n bytes of `url`.
        let mut redirected: Option<usize> = None;
        let mut answer = None;
        for _ in 0..=MAX_REDIRECTS {
            let current = match redirected {
                None => request.url,
                Some(n) => {
                    core::str::from_utf8(&self.url[..n]).map_err(|_| HttpError::InvalidUrl)?
                }
            };
            let (head, filled) = exchange(
                stack, socket, current, request, timeout, self.head, self.next,
            )
            .await?;
            match head.redirect_len {
                Some(n) => {
                    log::debug!("HTTP {} redirect", head.status);
                    self.url[..n].copy_from_slice(&self.next[..n]);
                    redirected = Some(n);
                }
                None => {
                    answer = Some((head, filled));
                    break;
                }
            }
        }
        let (head, filled) = answer.ok_or(HttpError::TooManyRedirects)?;
        let response = ResponseHead {
            status: head.status,
            etag: head.etag,
            content_length: head.content_length,
            content_range: head.content_range,
        };
        let body = EmbassyBody::new(socket, &self.head[head.len..filled], head.framing, timeout);
        Ok((response, body))
    }
}

/// One hop: connect, send the request, read the final (non-1xx) head into `buf`. Returns
/// the head and how many bytes of `buf` are filled (the body's first bytes follow the
/// head).
async fn exchange(
    stack: Stack<'static>,
    socket: &mut TcpSocket<'static>,
    url: &str,
    request: &Request<'_>,
    timeout: Duration,
    buf: &mut [u8],
    next: &mut [u8],
) -> Result<(Head, usize), HttpError> {
    let parsed = Url::parse(url).map_err(|_| HttpError::InvalidUrl)?;
    if parsed.scheme != Scheme::Http {
        return Err(HttpError::UnsupportedScheme);
    }
    connect(stack, socket, &parsed, timeout).await?;
    send(socket, &parsed, request, timeout).await?;

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
        let n = match with_timeout(timeout, socket.read(&mut buf[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HttpError::ConnectionLost),
            Ok(Ok(n)) => n,
            Err(_) => return Err(HttpError::Timeout),
        };
        filled += n;
    }
}

async fn connect(
    stack: Stack<'static>,
    socket: &mut TcpSocket<'static>,
    url: &Url<'_>,
    timeout: Duration,
) -> Result<(), HttpError> {
    if socket.state() != State::Closed {
        // The previous answer's connection (finished, abandoned or failed).
        socket.abort();
        let _ = with_timeout(RESET_WAIT, socket.flush()).await;
    }
    if !stack.is_config_up() {
        return Err(HttpError::Connect);
    }
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let address = match with_timeout(timeout, stack.dns_query(host, DnsQueryType::A)).await {
        Ok(Ok(addresses)) => *addresses.first().ok_or(HttpError::Dns)?,
        Ok(Err(_)) => return Err(HttpError::Dns),
        Err(_) => return Err(HttpError::Timeout),
    };
    // smoltcp gives up on a connection that makes no progress for this long.
    socket.set_timeout(Some(timeout));
    match with_timeout(timeout, socket.connect((address, url.port))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(HttpError::Connect),
        Err(_) => {
            socket.abort();
            Err(HttpError::Timeout)
        }
    }
}

async fn send(
    socket: &mut TcpSocket<'static>,
    url: &Url<'_>,
    request: &Request<'_>,
    timeout: Duration,
) -> Result<(), HttpError> {
    // Numbers and short headers; the path and host are written as they are.
    let mut line: String<64> = String::new();
    let mut write = async |bytes: &[u8]| match with_timeout(timeout, socket.write_all(bytes)).await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(HttpError::ConnectionLost),
        Err(_) => Err(HttpError::Timeout),
    };
    write(b"GET ").await?;
    write(url.path.as_bytes()).await?;
    write(b" HTTP/1.1\r\nHost: ").await?;
    write(url.host.as_bytes()).await?;
    if url.port != 80 {
        let _ = write!(line, ":{}", url.port);
        write(line.as_bytes()).await?;
    }
    write(
        concat!(
            "\r\nUser-Agent: ",
            env!("CARGO_PKG_NAME"),
            "\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
        )
        .as_bytes(),
    )
    .await?;
    if let Some(tag) = request.if_none_match {
        write(b"If-None-Match: ").await?;
        write(tag.as_str().as_bytes()).await?;
        write(b"\r\n").await?;
    }
    if let Some(from) = request.range_from {
        line.clear();
        let _ = write!(line, "Range: bytes={from}-\r\n");
        write(line.as_bytes()).await?;
    }
    write(b"\r\n").await
}
