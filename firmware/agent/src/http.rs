//! The small HTTP client the agent needs: conditional and ranged `GET`.
//!
//! The agent never trusts what HTTP says about the bytes (the signatures decide), but it
//! relies on the transport for three things: `If-None-Match` so an idle check costs a
//! `304`, `Range` so a dropped download resumes, and following redirects (GitHub
//! Releases answers `302` twice, to another host). A client answers one hop at a time;
//! [`get_following!`](crate::get_following) walks the redirects, so that the final
//! answer's connection (a TLS session with its record buffers, say) can be handed out
//! without the client holding it across hops. Everything here is `no_std` and
//! allocation-free. [`crate::http1`] implements it over any byte-stream connection; the
//! simulator gives it a `std::net` socket, the ESP32 firmware an embassy-net one.

use core::fmt;

use ota_format::{Name, NameRule};

/// Longest entity tag the agent keeps; longer ones are not used for conditional requests.
pub const MAX_ETAG_LEN: usize = 80;

/// An entity tag exactly as the server sent it, quotes and `W/` prefix included, so it
/// can be sent back verbatim in `If-None-Match`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag(Name<MAX_ETAG_LEN, HeaderToken>);

/// Printable ASCII without spaces, at least one byte: a value that can be sent back
/// safely in a header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HeaderToken;

impl NameRule for HeaderToken {
    fn allows(value: &[u8]) -> bool {
        !value.is_empty() && value.iter().all(|b| (0x21..=0x7e).contains(b))
    }
}

impl ETag {
    /// Wraps a header value; `None` when it is empty, too long or not printable ASCII
    /// (a value that could not be sent back safely in a header).
    pub fn new(value: &str) -> Option<Self> {
        Name::new(value.trim_matches(|c| c == ' ' || c == '\t')).map(ETag)
    }

    /// The tag as sent by the server.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.as_str())
    }
}

/// A `Content-Range: bytes first-last/complete` value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContentRange {
    /// Offset of the first byte in the body.
    pub first: u64,
    /// Offset of the last byte in the body (inclusive).
    pub last: u64,
    /// Length of the whole resource, when the server knows it.
    pub complete: Option<u64>,
}

impl ContentRange {
    /// Parses a `Content-Range` header value of a `206` answer. Unsatisfied-range forms
    /// (`bytes */123`) and anything malformed give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes")?.trim_start();
        let (range, complete) = rest.split_once('/')?;
        let (first, last) = range.trim().split_once('-')?;
        let first = parse_u64(first.trim())?;
        let last = parse_u64(last.trim())?;
        let complete = match complete.trim() {
            "*" => None,
            n => Some(parse_u64(n)?),
        };
        if last < first || complete.is_some_and(|c| last >= c) {
            return None;
        }
        Some(ContentRange {
            first,
            last,
            complete,
        })
    }

    /// Number of bytes the range covers.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a parsed range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses a decimal without sign, leading `+` or overflow (unlike `str::parse`, which
/// accepts `+5`).
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// One `GET`.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Absolute `http://` or `https://` URL.
    pub url: &'a str,
    /// Sent as `If-None-Match` when set.
    pub if_none_match: Option<&'a ETag>,
    /// Sent as `Range: bytes=N-` when set.
    pub range_from: Option<u64>,
    /// Who asks ([`crate::identity`]): sent as a comment after the `User-Agent`'s
    /// product token when set. Printable ASCII without `(`, `)` or a backslash; other
    /// text is not sent.
    pub identity: Option<&'a str>,
    /// Longest wait for the connection or any single read or write.
    pub timeout_ms: u32,
    /// Longest time from sending the request (connecting, the TLS handshake and any
    /// interim `1xx` answers included) until the answer's head is in: a head trickled a
    /// byte at a time ends here, not after hours of per-read timeouts.
    pub head_timeout_ms: u32,
    /// Longest time for the whole request, body included, counted from the first hop:
    /// redirect hops ([`Request::follow`]) share it. Every read and write gets at most
    /// what is left of it, so it holds inside a read (and inside a TLS session's record
    /// loop) too, not only between reads.
    pub deadline_ms: u64,
    /// Send this request to the target of the redirect the client answered last,
    /// instead of `url`.
    pub follow: bool,
}

impl<'a> Request<'a> {
    /// A plain `GET` of `url`: `timeout_ms` per operation, for the head and for the
    /// whole request (a caller that reads a long body sets [`Request::deadline_ms`]).
    pub fn get(url: &'a str, timeout_ms: u32) -> Self {
        Request {
            url,
            if_none_match: None,
            range_from: None,
            identity: None,
            timeout_ms,
            head_timeout_ms: timeout_ms,
            deadline_ms: u64::from(timeout_ms),
            follow: false,
        }
    }
}

/// What the server answered; the body is read from [`HttpClient::Body`].
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// A redirect the client can follow (its target resolved and kept by the client):
    /// send the request again with [`Request::follow`].
    pub redirect: bool,
    /// `ETag`, if present and usable.
    pub etag: Option<ETag>,
    /// `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// `Content-Range`, if present and well-formed.
    pub content_range: Option<ContentRange>,
}

impl ResponseHead {
    /// What a static host answers for a file of `len` bytes: 200, or 206 from
    /// `range_from` with its `Content-Range`. For clients that serve from memory (a
    /// cache, a test double); `range_from` must be below `len`.
    pub fn of_file(len: u64, range_from: Option<u64>, etag: Option<ETag>) -> Self {
        let first = range_from.unwrap_or(0);
        ResponseHead {
            status: if range_from.is_some() { 206 } else { 200 },
            redirect: false,
            etag,
            content_length: Some(len - first),
            content_range: range_from.map(|first| ContentRange {
                first,
                last: len - 1,
                complete: Some(len),
            }),
        }
    }

    /// A head without a body (`404`, `304`, ...).
    pub fn bodiless(status: u16, etag: Option<ETag>) -> Self {
        ResponseHead {
            status,
            redirect: false,
            etag,
            content_length: Some(0),
            content_range: None,
        }
    }
}

/// Why a request failed. Status codes are not errors here: the caller decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL cannot be used (scheme, host, length).
    #[error("invalid URL")]
    InvalidUrl,
    /// The URL's scheme is not supported by this client (e.g. `https` without TLS).
    #[error("unsupported URL scheme")]
    UnsupportedScheme,
    /// The host name did not resolve.
    #[error("host name did not resolve")]
    Dns,
    /// The connection could not be opened.
    #[error("connection failed")]
    Connect,
    /// The connection was closed or reset in the middle of an answer.
    #[error("connection dropped")]
    ConnectionLost,
    /// Nothing arrived within the request's timeout, or its head timeout or deadline
    /// passed ([`Request::head_timeout_ms`], [`Request::deadline_ms`]).
    #[error("timed out")]
    Timeout,
    /// The answer is not valid HTTP/1.x.
    #[error("malformed HTTP answer")]
    Protocol,
    /// More redirects than the client follows.
    #[error("too many redirects")]
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    #[error("redirect without a usable Location")]
    BadRedirect,
    /// The TLS handshake failed, or a record did not decrypt.
    #[error("TLS failed")]
    Tls,
    /// The body is longer than its `Content-Length`.
    #[error("body longer than its Content-Length")]
    BodyTooLong,
    /// More interim (`1xx`) answers before the real one than the client reads
    /// ([`MAX_INTERIM_RESPONSES`]).
    #[error("too many interim (1xx) answers")]
    TooManyInterimResponses,
}

/// Interim (`1xx`) answers read before the final one; real servers send at most one or
/// two (`100 Continue`, `103 Early Hints`).
pub const MAX_INTERIM_RESPONSES: usize = 4;

/// A body being received. A `read` of `Ok(0)` means the body ended as declared; a body
/// that ends early is [`HttpError::ConnectionLost`].
// The agent runs on one executor thread (embassy on the device, block_on in the
// simulator), so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait HttpBody {
    /// Reads the next bytes into `buf`.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError>;
}

/// Redirect hops followed; GitHub's `releases/latest/download` needs two.
pub const MAX_REDIRECTS: usize = 5;

/// A client that performs one `GET` at a time, one hop at a time.
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// The body of an answer; it borrows the client until dropped.
    type Body<'c>: HttpBody
    where
        Self: 'c;

    /// Sends `request` and returns the answer's head and body. A redirect is an answer
    /// like any other, with [`ResponseHead::redirect`] set; a redirect without a usable
    /// `Location` is [`HttpError::BadRedirect`].
    async fn get<'c>(
        &'c mut self,
        request: &Request<'_>,
    ) -> Result<(ResponseHead, Self::Body<'c>), HttpError>;
}

impl<T: HttpClient> HttpClient for &mut T {
    type Body<'c>
        = T::Body<'c>
    where
        Self: 'c;

    async fn get<'c>(
        &'c mut self,
        request: &Request<'_>,
    ) -> Result<(ResponseHead, Self::Body<'c>), HttpError> {
        (**self).get(request).await
    }
}

/// `client.get(request)` following redirects, at most [`MAX_REDIRECTS`] of them:
/// evaluates to `Result<(ResponseHead, Body), HttpError>` with the final answer. A macro,
/// not a function: a function returning the body borrowed from inside its loop is
/// refused by the borrow checker (it cannot see that a redirect's body is dropped before
/// the next hop borrows the client again).
#[macro_export]
macro_rules! get_following {
    ($client:expr, $request:expr) => {{
        let mut request: $crate::http::Request<'_> = $request;
        let mut hops = 0usize;
        loop {
            match $client.get(&request).await {
                Ok((head, body)) if head.redirect => {
                    drop(body);
                    hops += 1;
                    if hops > $crate::http::MAX_REDIRECTS {
                        break Err($crate::http::HttpError::TooManyRedirects);
                    }
                    request.follow = true;
                }
                answer => break answer,
            }
        }
    }};
}

/// Reads a whole body into `buf`; a body that does not fit is an error (`BodyTooLong`),
/// so a hostile server cannot make the caller buffer more than it chose to.
pub async fn read_to_end<B: HttpBody>(body: &mut B, buf: &mut [u8]) -> Result<usize, HttpError> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            let mut probe = [0u8; 1];
            return match body.read(&mut probe).await? {
                0 => Ok(filled),
                _ => Err(HttpError::BodyTooLong),
            };
        }
        match body.read(&mut buf[filled..]).await? {
            0 => return Ok(filled),
            n => filled += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            ContentRange::parse("bytes 100-199/1000"),
            Some(ContentRange {
                first: 100,
                last: 199,
                complete: Some(1000)
            })
        );
        assert_eq!(ContentRange::parse("bytes 0-0/*").unwrap().complete, None);
        assert_eq!(ContentRange::parse("bytes 5-9/10").unwrap().len(), 5);
    }

    #[test]
    fn content_range_rejects_malformed() {
        for bad in [
            "",
            "bytes */1000",
            "bytes 10-5/100",
            "bytes 0-100/100",
            "items 0-1/2",
            "bytes +1-2/3",
            "bytes 1-2",
            "bytes 0-99999999999999999999/1",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn etag_keeps_the_value_verbatim() {
        assert_eq!(ETag::new(" W/\"abc\" ").unwrap().as_str(), "W/\"abc\"");
        assert!(ETag::new("").is_none());
        assert!(ETag::new("\"a\r\nX-Evil: 1\"").is_none());
        let long = [b'a'; MAX_ETAG_LEN + 1];
        assert!(ETag::new(core::str::from_utf8(&long).unwrap()).is_none());
    }

    #[test]
    fn u64_parsing_is_strict() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64("+1"), None);
        assert_eq!(parse_u64(""), None);
    }
}
