//! The HTTP GET the update agent needs, and its embassy-net implementation.
//!
//! The shape is what the agent's check and download states use: one GET with optional
//! `If-None-Match` and `Range: bytes=N-`, redirects followed (the signature, not the host,
//! is trusted), the final response head handed over before any body byte, and the body
//! streamed through a caller-owned buffer into a [`BodySink`]. Nothing is allocated.

mod client;

use core::fmt;

use heapless::String;

pub use client::{EmbassyHttp, TcpState};

use crate::status::ETAG_MAX;

/// Longest URL followed (GitHub's signed asset URLs are about 600 bytes).
pub const URL_MAX: usize = 1024;

/// One GET.
#[derive(Clone, Copy, Debug)]
pub struct GetRequest<'a> {
    pub url: &'a str,
    /// Sent as `If-None-Match`; a 304 answer then costs only its head.
    pub if_none_match: Option<&'a str>,
    /// Sent as `Range: bytes=N-` to resume a download at byte N.
    pub range_from: Option<u64>,
}

/// `Content-Range: bytes start-end/total` of a 206 answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContentRange {
    pub start: u64,
    /// Inclusive, as on the wire.
    pub end: u64,
    /// `None` for `*` (length unknown to the server).
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses the header value; anything malformed is `None`, which the agent must treat
    /// like a 200 ("start over"), never as more data.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let value = core::str::from_utf8(value).ok()?.trim();
        let rest = value.strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let start: u64 = start.parse().ok()?;
        let end: u64 = end.parse().ok()?;
        let total = match total {
            "*" => None,
            t => Some(t.parse::<u64>().ok()?),
        };
        if end < start || total.is_some_and(|t| end >= t) {
            return None;
        }
        Some(ContentRange { start, end, total })
    }
}

/// The final (non-redirect) response's head.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub content_length: Option<u64>,
    /// `None` when absent or longer than [`ETAG_MAX`] (then the next check is a full GET).
    pub etag: Option<String<ETAG_MAX>>,
    #[allow(
        dead_code,
        reason = "read by ota-agent's resumable download state once wired"
    )]
    pub content_range: Option<ContentRange>,
}

impl ResponseHead {
    /// Whether a body follows this head (RFC 9110: not for 1xx, 204 and 304).
    pub fn has_body(&self) -> bool {
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }
}

/// Where a response goes.
pub trait BodySink {
    type Error: fmt::Debug;

    /// Called once, with the final response's head, before any body byte. An error aborts
    /// the request (e.g. a 200 where a 206 was asked for, or a body too large).
    fn head(&mut self, head: &ResponseHead) -> Result<(), Self::Error>;

    /// The body in order, in pieces no longer than the caller's buffer.
    fn data(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// Why a GET did not complete.
#[derive(Debug)]
pub enum GetError<T, S> {
    Transport(T),
    /// Connecting, sending or one read took longer than the client's timeout.
    Timeout,
    /// The connection closed before `Content-Length` bytes arrived.
    Truncated {
        expected: u64,
        received: u64,
    },
    TooManyRedirects,
    /// A redirect without a usable `Location` (missing, too long, or not http://).
    BadRedirect,
    UrlTooLong,
    /// The caller's body buffer has no room.
    EmptyBuffer,
    Sink(S),
}

/// The agent's HTTP client.
// Single-threaded executor, so the returned future's Send-ness is irrelevant here.
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    type Error: fmt::Debug;

    /// GETs `req.url`, following redirects, and streams the final body into `sink`
    /// through `buf`. Returns the final head once the body is complete.
    async fn get<S: BodySink>(
        &mut self,
        req: &GetRequest<'_>,
        buf: &mut [u8],
        sink: &mut S,
    ) -> Result<ResponseHead, GetError<Self::Error, S::Error>>;
}

/// Resolves a `Location` against the URL that answered with it, into `out`.
///
/// Absolute `http://` URLs are taken as they are; `/path` keeps scheme and authority;
/// other references replace the last path segment. `https://` is refused because this
/// build carries no TLS. `None` when refused or longer than [`URL_MAX`].
pub fn resolve_location(base: &str, location: &str, out: &mut String<URL_MAX>) -> Option<()> {
    let location = location.trim();
    out.clear();
    if location.starts_with("http://") {
        return out.push_str(location).ok();
    }
    if location.contains("://") || location.starts_with("//") {
        return None;
    }
    let after_scheme = base.strip_prefix("http://")?;
    let authority_end = after_scheme
        .find('/')
        .map_or(base.len(), |i| i + "http://".len());
    out.push_str(&base[..authority_end]).ok()?;
    if !location.starts_with('/') {
        let path = &base[authority_end..];
        let path = path.split(['?', '#']).next().unwrap_or("");
        match path.rfind('/') {
            Some(i) => out.push_str(&path[..=i]).ok()?,
            None => out.push('/').ok()?,
        }
    }
    out.push_str(location).ok()
}
