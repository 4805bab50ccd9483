//! What a well-behaved static host answers: a file by path with a strong ETag
//! (`If-None-Match` -> 304), a single `Range` (206, or 416 when unsatisfiable, `If-Range`
//! honoured), the cache headers of the static-host layout, and `Connection: close`.
//! Pure functions of the request and the file, so they are tested without sockets.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Request;

/// What a request's path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A file with these bytes.
    Found(Vec<u8>),
    /// Nothing (404).
    Missing,
    /// A path that could leave the served directory (400).
    Outside,
}

/// An answer before it is written: status, header lines, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines (`Name: value`) besides `Content-Length` and `Connection`.
    pub headers: Vec<String>,
    /// The body (left off on the wire for `HEAD`, its length still declared).
    pub body: Vec<u8>,
    /// Whether `Content-Length` is declared (not for 304, nor for an endless body).
    pub declares_length: bool,
}

impl Answer {
    /// A status with no body and these header lines.
    pub fn empty(status: u16, headers: Vec<String>) -> Answer {
        Answer {
            status,
            headers,
            body: Vec::new(),
            declares_length: status != 304,
        }
    }

    /// A status with a one-line text body naming it.
    fn text(status: u16, mut headers: Vec<String>) -> Answer {
        headers.insert(0, "Content-Type: text/plain".into());
        Answer {
            status,
            headers,
            body: format!("{status} {}\n", reason(status)).into_bytes(),
            declares_length: true,
        }
    }

    /// The head as sent: status line, headers, `Content-Length` if declared,
    /// `Connection: close`, blank line.
    pub fn head(&self) -> String {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for line in &self.headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        if self.declares_length {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}

/// The reason phrase of the statuses a static host (or a fault) answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Maps a URL path onto a file under `root`; `None` for anything that could leave it.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.strip_prefix('/')?);
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) if !part.to_string_lossy().contains('%') => out.push(part),
            _ => return None,
        }
    }
    Some(out)
}

/// The strong ETag of a file's contents.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// What a `Range` header asks for, against a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: the whole body (200).
    Full,
    /// These bytes, `start..=end` (206).
    Partial(u64, u64),
    /// Nothing of the body is in range (416).
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2). Several ranges or other units are
/// answered with the whole body, which the RFC allows.
pub fn parse_range(header: &str, len: u64) -> RangeAnswer {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(n) if len > 0 => RangeAnswer::Partial(len.saturating_sub(n), len - 1),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Full,
        },
        (false, true) => match parse(first) {
            Some(s) if s < len => RangeAnswer::Partial(s, len - 1),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(s), Some(e)) if s <= e && s < len => RangeAnswer::Partial(s, e.min(len - 1)),
            (Some(s), Some(e)) if s <= e => RangeAnswer::Unsatisfiable,
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

/// The static-host layout's caching: manifests revalidated, images cached for good.
fn cache_control(path: &str) -> Option<&'static str> {
    if path.ends_with(".manifest") {
        Some("no-cache")
    } else if path.ends_with(".ota") {
        Some("public, max-age=31536000, immutable")
    } else {
        None
    }
}

/// The answer to `req` for what its path names.
pub fn answer(req: &Request, file: Lookup) -> Answer {
    answer_damaged(req, file, None)
}

/// [`answer`], with the bit 0x10 of the file's byte at `damage` flipped after its ETag is
/// taken: a host or proxy that corrupts what it serves.
pub(super) fn answer_damaged(req: &Request, file: Lookup, damage: Option<usize>) -> Answer {
    if req.method != "GET" && req.method != "HEAD" {
        return Answer::text(405, Vec::new());
    }
    let mut body = match file {
        Lookup::Found(body) => body,
        Lookup::Missing => return Answer::text(404, Vec::new()),
        Lookup::Outside => return Answer::text(400, Vec::new()),
    };
    let tag = etag(&body);
    let mut common = vec![format!("ETag: {tag}"), "Accept-Ranges: bytes".into()];
    if let Some(cc) = cache_control(&req.path) {
        common.push(format!("Cache-Control: {cc}"));
    }
    if let Some(inm) = &req.if_none_match
        && (inm.trim() == "*" || inm.split(',').any(|t| t.trim() == tag))
    {
        return Answer::empty(304, common);
    }
    if let Some(byte) = damage.and_then(|at| body.get_mut(at)) {
        *byte ^= 0x10;
    }
    let len = body.len() as u64;
    // A range is only honoured if the client still holds this exact version.
    let range_applies = req.if_range.as_deref().is_none_or(|t| t.trim() == tag);
    let range = match (&req.range, range_applies) {
        (Some(r), true) => parse_range(r, len),
        _ => RangeAnswer::Full,
    };
    let octets = "Content-Type: application/octet-stream".to_owned();
    match range {
        RangeAnswer::Full => {
            common.insert(0, octets);
            Answer {
                status: 200,
                headers: common,
                body,
                declares_length: true,
            }
        }
        RangeAnswer::Partial(start, end) => {
            common.insert(0, octets);
            common.push(format!("Content-Range: bytes {start}-{end}/{len}"));
            Answer {
                status: 206,
                headers: common,
                body: body[start as usize..=end as usize].to_vec(),
                declares_length: true,
            }
        }
        RangeAnswer::Unsatisfiable => {
            common.push(format!("Content-Range: bytes */{len}"));
            Answer::text(416, common)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &[u8] = b"0123456789";

    fn found(bytes: &[u8]) -> Lookup {
        Lookup::Found(bytes.to_vec())
    }

    fn ranged(range: &str) -> Request {
        Request {
            range: Some(range.into()),
            ..Request::get("/a.ota")
        }
    }

    fn has(answer: &Answer, line: &str) -> bool {
        answer.headers.iter().any(|h| h == line)
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-3", 10), Partial(0, 3));
        assert_eq!(parse_range("bytes=4-", 10), Partial(4, 9));
        assert_eq!(parse_range("bytes=5-100", 10), Partial(5, 9));
        assert_eq!(parse_range("bytes=-3", 10), Partial(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), Partial(0, 9));
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=10-12", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), Full);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Full);
        assert_eq!(parse_range("items=0-1", 10), Full);
        assert_eq!(parse_range("bytes=x-1", 10), Full);
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        let r = Path::new("/srv");
        assert_eq!(resolve(r, "/a/b.ota"), Some(PathBuf::from("/srv/a/b.ota")));
        assert_eq!(resolve(r, "/../etc/passwd"), None);
        assert_eq!(resolve(r, "/a/../../x"), None);
        assert_eq!(resolve(r, "//etc/passwd"), None);
        assert_eq!(resolve(r, "/%2e%2e/x"), None);
        assert_eq!(resolve(r, "relative"), None);
    }

    #[test]
    fn etag_gives_304_and_a_changed_file_gives_200() {
        let get = Request::get("/s.stable.manifest");
        let first = answer(&get, found(b"manifest"));
        assert_eq!((first.status, &first.body[..]), (200, &b"manifest"[..]));
        assert!(has(&first, "Cache-Control: no-cache"), "{first:?}");
        let tag = etag(b"manifest");
        assert!(has(&first, &format!("ETag: {tag}")));
        let conditional = Request {
            if_none_match: Some(tag),
            ..get
        };
        let same = answer(&conditional, found(b"manifest"));
        assert_eq!(same.status, 304);
        assert!(same.body.is_empty());
        assert!(!same.head().contains("Content-Length"), "{}", same.head());
        let changed = answer(&conditional, found(b"manifest 2"));
        assert_eq!(
            (changed.status, &changed.body[..]),
            (200, &b"manifest 2"[..])
        );
    }

    #[test]
    fn range_gives_206_with_content_range() {
        let part = answer(&ranged("bytes=4-"), found(IMAGE));
        assert_eq!((part.status, &part.body[..]), (206, &b"456789"[..]));
        assert!(has(&part, "Content-Range: bytes 4-9/10"), "{part:?}");
        assert!(part.head().contains("Content-Length: 6\r\n"));
        assert!(part.head().contains("immutable"));
        let past_the_end = answer(&ranged("bytes=10-"), found(IMAGE));
        assert_eq!(past_the_end.status, 416);
        assert!(has(&past_the_end, "Content-Range: bytes */10"));
    }

    #[test]
    fn if_range_with_an_old_etag_gives_the_whole_file() {
        let old = Request {
            if_range: Some("\"0000000000000000\"".into()),
            ..ranged("bytes=4-")
        };
        let whole = answer(&old, found(IMAGE));
        assert_eq!((whole.status, &whole.body[..]), (200, IMAGE));
        let current = Request {
            if_range: Some(etag(IMAGE)),
            ..old
        };
        assert_eq!(answer(&current, found(IMAGE)).status, 206);
    }

    #[test]
    fn damage_lands_on_the_file_offset_after_the_etag() {
        let part = answer_damaged(&ranged("bytes=4-"), found(IMAGE), Some(5));
        assert_eq!(part.body, b"4%6789");
        assert!(has(&part, &format!("ETag: {}", etag(IMAGE))));
        let past = answer_damaged(&Request::get("/a.ota"), found(IMAGE), Some(99));
        assert_eq!(past.body, IMAGE);
    }

    #[test]
    fn missing_files_traversal_and_other_methods_are_refused() {
        assert_eq!(answer(&Request::get("/nope"), Lookup::Missing).status, 404);
        assert_eq!(answer(&Request::get("/../a"), Lookup::Outside).status, 400);
        let put = Request {
            method: "PUT".into(),
            ..Request::get("/a.ota")
        };
        let refused = answer(&put, found(IMAGE));
        assert_eq!(refused.status, 405);
        assert!(
            refused
                .head()
                .starts_with("HTTP/1.1 405 Method Not Allowed\r\n")
        );
    }
}
