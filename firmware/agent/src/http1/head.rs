//! One response head, parsed with `httparse` and copied out of the receive buffer, so the
//! buffer's remainder (the first body bytes) can be handed to the body reader.

use crate::http::{ContentRange, ETag, HttpError, parse_u64};
use crate::url::resolve_location;

/// Headers per response; GitHub's redirect answers carry about 25.
pub const MAX_HEADERS: usize = 48;

/// How the body after a head is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the redirect loop and the agent need from a head.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, up to and including the empty line.
    pub len: usize,
    pub framing: Framing,
    pub content_length: Option<u64>,
    pub etag: Option<ETag>,
    pub content_range: Option<ContentRange>,
    /// For a redirect: length of the resolved target written to the caller's buffer.
    pub redirect_len: Option<usize>,
}

impl Head {
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    /// 1xx heads (e.g. 103 Early Hints) precede the real answer on the same connection.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete. A redirect's
/// `Location` is resolved against `url` into `next` right here, while the header value is
/// still borrowed from `buf`.
pub fn parse(buf: &[u8], url: &str, next: &mut [u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Protocol),
    };
    let status = response.code.ok_or(HttpError::Protocol)?;

    let mut content_length = None;
    let mut chunked = false;
    let mut etag = None;
    let mut content_range = None;
    let mut location = None;
    for h in response.headers.iter() {
        let value = core::str::from_utf8(h.value).map_err(|_| HttpError::Protocol)?;
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_u64(value).ok_or(HttpError::Protocol)?;
            // Two different lengths make the framing ambiguous (request smuggling).
            if content_length.is_some_and(|c| c != n) {
                return Err(HttpError::Protocol);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` is spoken; any other coding cannot be decoded.
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::Protocol);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("etag") {
            etag = ETag::new(value);
        } else if h.name.eq_ignore_ascii_case("content-range") {
            content_range = ContentRange::parse(value);
        } else if h.name.eq_ignore_ascii_case("location") {
            location = Some(value);
        }
    }

    let mut head = Head {
        status,
        len,
        framing: Framing::UntilClose,
        // With chunked coding a Content-Length is meaningless (RFC 9112 §6.3).
        content_length: if chunked { None } else { content_length },
        etag,
        content_range,
        redirect_len: None,
    };
    head.framing = if head.is_interim() || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else {
        content_length.map_or(Framing::UntilClose, Framing::Length)
    };
    if head.is_redirect() {
        let location = location.ok_or(HttpError::BadRedirect)?;
        let target = resolve_location(url, location, next).map_err(|_| HttpError::BadRedirect)?;
        head.redirect_len = Some(target.len());
    }
    Ok(Some(head))
}
