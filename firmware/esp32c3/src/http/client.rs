//! [`HttpClient`] over embassy-net with reqwless doing HTTP/1.1 framing (chunked bodies
//! included). Each GET is one connection with `Connection: close`: a device checks rarely,
//! and a fresh connection per redirect hop is what a hop to another host needs anyway.

use core::fmt::Write as _;

use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_time::{Duration, with_timeout};
use embedded_io_async::Read as _;
use heapless::{String, Vec};
use reqwless::client::HttpClient as Reqwless;
use reqwless::request::{Method, RequestBuilder as _};

use super::{
    BodySink, ContentRange, GetError, GetRequest, HttpClient, ResponseHead, URL_MAX,
    resolve_location,
};

/// Redirect hops followed; GitHub's `releases/latest/download` needs two.
const MAX_REDIRECTS: usize = 5;

/// Socket buffers of the one client connection.
const TCP_RX: usize = 2048;
const TCP_TX: usize = 1024;

pub type Tcp<'a> = TcpClient<'a, 1, TCP_RX, TCP_TX>;
/// Backing storage for [`Tcp`].
pub type TcpState = TcpClientState<1, TCP_RX, TCP_TX>;

/// The device's HTTP client: one TCP connection at a time, and `head_buf` for a response
/// head (GitHub's redirect heads are a few KiB).
pub struct EmbassyHttp<'a> {
    tcp: &'a Tcp<'a>,
    dns: &'a DnsSocket<'a>,
    head_buf: &'a mut [u8],
    timeout: Duration,
}

impl<'a> EmbassyHttp<'a> {
    /// `timeout` bounds connecting, sending, and every single read.
    pub fn new(
        tcp: &'a Tcp<'a>,
        dns: &'a DnsSocket<'a>,
        head_buf: &'a mut [u8],
        timeout: Duration,
    ) -> Self {
        EmbassyHttp {
            tcp,
            dns,
            head_buf,
            timeout,
        }
    }
}

enum Hop {
    Done(ResponseHead),
    /// The next URL was written to the caller's `next`.
    Redirect,
}

type Error<S> = GetError<reqwless::Error, <S as BodySink>::Error>;

impl EmbassyHttp<'_> {
    async fn hop<S: BodySink>(
        &mut self,
        url: &str,
        next: &mut String<URL_MAX>,
        req: &GetRequest<'_>,
        buf: &mut [u8],
        sink: &mut S,
    ) -> Result<Hop, Error<S>> {
        let mut range: String<32> = String::new();
        let mut headers: Vec<(&str, &str), 3> = Vec::new();
        // Capacity 3 holds all three; pushes cannot fail.
        let _ = headers.push(("Connection", "close"));
        if let Some(etag) = req.if_none_match {
            let _ = headers.push(("If-None-Match", etag));
        }
        if let Some(from) = req.range_from {
            let _ = write!(range, "bytes={from}-");
            let _ = headers.push(("Range", range.as_str()));
        }

        let mut client = Reqwless::new(self.tcp, self.dns);
        let handle = with_timeout(self.timeout, client.request(Method::GET, url))
            .await
            .map_err(|_| GetError::Timeout)?
            .map_err(GetError::Transport)?;
        let mut handle = handle.headers(&headers);
        let response = with_timeout(self.timeout, handle.send(self.head_buf))
            .await
            .map_err(|_| GetError::Timeout)?
            .map_err(GetError::Transport)?;

        let status = response.status.0;
        let mut etag = None;
        let mut content_range = None;
        let mut location = None;
        for (name, value) in response.headers() {
            if name.eq_ignore_ascii_case("etag") {
                etag = core::str::from_utf8(value)
                    .ok()
                    .and_then(|v| String::try_from(v.trim()).ok());
            } else if name.eq_ignore_ascii_case("content-range") {
                content_range = ContentRange::parse(value);
            } else if name.eq_ignore_ascii_case("location") {
                location = Some(value);
            }
        }

        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            location
                .and_then(|l| core::str::from_utf8(l).ok())
                .and_then(|l| resolve_location(url, l, next))
                .ok_or(GetError::BadRedirect)?;
            return Ok(Hop::Redirect);
        }

        let head = ResponseHead {
            status,
            content_length: response.content_length.map(|n| n as u64),
            etag,
            content_range,
        };
        sink.head(&head).map_err(GetError::Sink)?;
        if !head.has_body() {
            // A 304 may carry the entity's Content-Length; reading it would wait for bytes
            // that never come.
            return Ok(Hop::Done(head));
        }

        let mut body = response.body().reader();
        let mut received: u64 = 0;
        loop {
            // Never ask for more than Content-Length: a longer body is not ours to read.
            let want = match head.content_length {
                Some(total) => {
                    let left = total - received;
                    if left == 0 {
                        break;
                    }
                    buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))
                }
                None => buf.len(),
            };
            let n = with_timeout(self.timeout, body.read(&mut buf[..want]))
                .await
                .map_err(|_| GetError::Timeout)?
                .map_err(GetError::Transport)?;
            if n == 0 {
                if let Some(expected) = head.content_length {
                    return Err(GetError::Truncated { expected, received });
                }
                break;
            }
            received += n as u64;
            sink.data(&buf[..n]).map_err(GetError::Sink)?;
        }
        Ok(Hop::Done(head))
    }
}

impl HttpClient for EmbassyHttp<'_> {
    type Error = reqwless::Error;

    async fn get<S: BodySink>(
        &mut self,
        req: &GetRequest<'_>,
        buf: &mut [u8],
        sink: &mut S,
    ) -> Result<ResponseHead, Error<S>> {
        if buf.is_empty() {
            return Err(GetError::EmptyBuffer);
        }
        let mut url: String<URL_MAX> =
            String::try_from(req.url).map_err(|_| GetError::UrlTooLong)?;
        let mut next: String<URL_MAX> = String::new();
        for _ in 0..=MAX_REDIRECTS {
            match self.hop(&url, &mut next, req, buf, sink).await? {
                Hop::Done(head) => return Ok(head),
                Hop::Redirect => {
                    log::debug!("redirect to {next}");
                    core::mem::swap(&mut url, &mut next);
                }
            }
        }
        Err(GetError::TooManyRedirects)
    }
}
