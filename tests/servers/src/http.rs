//! A device-like HTTP/1.1 client: one request per connection, explicit headers, redirects
//! followed by hand so a test can see each hop. It trusts no host; tests compare the
//! bytes it gets with the signed files.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A complete response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `http://host:port/path?query` into (host:port, path?query).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    match rest.find('/') {
        Some(i) => Ok((rest[..i].to_owned(), rest[i..].to_owned())),
        None => Ok((rest.to_owned(), "/".to_owned())),
    }
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let (authority, path) = split_url(url)?;
    let mut stream = TcpStream::connect(&authority).map_err(|e| format!("{authority}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: ota-device-sim\r\n"
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    read_response(&mut BufReader::new(stream), method == "HEAD")
}

/// Parses a response from a stream.
pub(crate) fn read_response(r: &mut impl BufRead, head_only: bool) -> Result<Response, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let headers = crate::github::read_headers(r)?;
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    if no_body {
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = crate::github::read_chunked(r)?;
    } else if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().map_err(|_| "bad content-length")?;
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut body).map_err(|e| e.to_string())?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A GET with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    request("GET", url, headers, &[])
}

/// A GET that follows up to 5 redirects, as a device would; returns the final response
/// and every URL visited, the first included.
pub fn get_following(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Response, Vec<String>), String> {
    let mut hops = vec![url.to_owned()];
    let mut current = url.to_owned();
    for _ in 0..=5 {
        let resp = get(&current, headers)?;
        if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
            return Ok((resp, hops));
        }
        let loc = resp
            .header("location")
            .ok_or("redirect without Location")?
            .to_owned();
        current = if loc.starts_with("http://") {
            loc
        } else {
            let (authority, _) = split_url(&current)?;
            format!("http://{authority}{loc}")
        };
        hops.push(current.clone());
    }
    Err(format!("too many redirects from {url}"))
}
