//! The parts of an HTTP/1.1 request a static host looks at, read from the connection with
//! a bounded head.

use std::io::{self, BufRead};

/// Longest request head accepted; devices send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// One request, as far as a static host cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (others are refused with 405).
    pub method: String,
    /// The path, query removed.
    pub path: String,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `Range`.
    pub range: Option<String>,
    /// `If-Range`.
    pub if_range: Option<String>,
    /// `User-Agent` (devices identify themselves in it).
    pub user_agent: Option<String>,
    /// Length of the request head, bytes.
    pub head_len: usize,
}

impl Request {
    /// A `GET` of `path` without conditions, for tests of [`super::answer`].
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        }
    }
}

/// Reads one request head; `None` when the client closed before sending a line.
pub(super) fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut head_len = 0;
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    head_len += line.len();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let mut req = Request {
        method,
        path: target.split('?').next().unwrap_or_default().to_owned(),
        ..Request::default()
    };
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        if n == 0 || line == "\r\n" || line == "\n" {
            req.head_len = head_len;
            return Ok(Some(req));
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = Some(value.trim().to_owned());
        match name.trim().to_ascii_lowercase().as_str() {
            "if-none-match" => req.if_none_match = value,
            "range" => req.range = value,
            "if-range" => req.if_range = value,
            "user-agent" => req.user_agent = value,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_fields_are_read_and_the_query_dropped() {
        let text = "GET /fw/a.ota?x=1 HTTP/1.1\r\nHost: h\r\nrange: bytes=5-\r\n\
                    If-None-Match: \"ab\"\r\nIf-Range: \"ab\"\r\nUser-Agent: ota-agent/1 (t=x)\r\n\r\nbody";
        let req = read_request(&mut text.as_bytes()).unwrap().unwrap();
        assert_eq!(
            req,
            Request {
                method: "GET".into(),
                path: "/fw/a.ota".into(),
                if_none_match: Some("\"ab\"".into()),
                range: Some("bytes=5-".into()),
                if_range: Some("\"ab\"".into()),
                user_agent: Some("ota-agent/1 (t=x)".into()),
                head_len: text.len() - "body".len(),
            }
        );
    }

    #[test]
    fn an_endless_head_is_refused_and_a_silent_client_is_no_request() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let err = read_request(&mut long.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(read_request(&mut &b""[..]).unwrap(), None);
    }
}
