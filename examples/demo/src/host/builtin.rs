//! A small static file server for machines without nginx: GET and HEAD of files under one
//! directory, a strong ETag with `If-None-Match` -> 304, single `Range` -> 206 (416 when
//! unsatisfiable, `If-Range` honoured), the cache headers of the static-host layout, and
//! `Connection: close` after every answer (as the device agent expects anyway).
//!
//! It serves what the directory holds at the moment of the request, so a publish that
//! renames files into place is visible at once, exactly as with nginx. Like nginx it
//! writes an access log in nginx's `combined` format (`<root>.access.log`), which
//! `ota-sign fleet status` reads.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::HostStats;

/// Longest request head accepted; devices send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// A running server. Stops when dropped.
pub struct BuiltinServer {
    addr: SocketAddr,
    log_path: PathBuf,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    not_modified: AtomicU64,
    partial: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

impl BuiltinServer {
    /// Serves `root` on a free loopback port.
    pub fn serve(root: &Path) -> io::Result<BuiltinServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let log_path = root.with_extension("access.log");
        let log = Arc::new(Mutex::new(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(&log_path)?,
        ));
        let root = root.to_path_buf();
        let thread = {
            let stop = stop.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("static-server".into())
                .spawn(move || accept_loop(&listener, &root, &stop, &counters, &log))?
        };
        Ok(BuiltinServer {
            addr,
            log_path,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The access log, nginx `combined` format.
    pub fn access_log(&self) -> &Path {
        &self.log_path
    }

    /// Requests and bytes so far.
    pub fn stats(&self) -> HostStats {
        HostStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            not_modified: self.counters.not_modified.load(Ordering::Relaxed),
            partial: self.counters.partial.load(Ordering::Relaxed),
            bytes_sent: self.counters.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.counters.bytes_received.load(Ordering::Relaxed),
        }
    }
}

impl Drop for BuiltinServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    root: &Path,
    stop: &AtomicBool,
    counters: &Arc<Counters>,
    log: &Arc<Mutex<std::fs::File>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let root = root.to_path_buf();
        let counters = counters.clone();
        let log = log.clone();
        // One short-lived thread per connection: every answer closes the connection.
        let _ = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = handle(stream, &root, &counters, &log);
            });
    }
}

/// The parts of a request this server looks at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (others are refused).
    pub method: String,
    /// The path, query removed.
    pub path: String,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `Range`.
    pub range: Option<String>,
    /// `If-Range`.
    pub if_range: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Length of the request head, bytes.
    pub head_len: usize,
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut head_len = 0;
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    head_len += line.len();
    let mut parts = line.split_whitespace();
    let mut req = Request {
        method: parts.next().unwrap_or_default().to_owned(),
        path: parts
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
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
            break;
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
    Ok(Some(req))
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

fn cache_control(path: &str) -> Option<&'static str> {
    if path.ends_with(".manifest") {
        Some("no-cache")
    } else if path.ends_with(".ota") {
        Some("public, max-age=31536000, immutable")
    } else {
        None
    }
}

fn handle(
    stream: TcpStream,
    root: &Path,
    counters: &Counters,
    log: &Mutex<std::fs::File>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(req) = read_request(&mut reader)? else {
        return Ok(());
    };
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes_received
        .fetch_add(req.head_len as u64, Ordering::Relaxed);
    let (head, body) = answer(&req, root);
    if head.starts_with("HTTP/1.1 304") {
        counters.not_modified.fetch_add(1, Ordering::Relaxed);
    } else if head.starts_with("HTTP/1.1 206") {
        counters.partial.fetch_add(1, Ordering::Relaxed);
    }
    let mut out = stream;
    out.write_all(head.as_bytes())?;
    let mut sent = head.len() as u64;
    if req.method != "HEAD" {
        out.write_all(&body)?;
        sent += body.len() as u64;
    }
    out.flush()?;
    counters.bytes_sent.fetch_add(sent, Ordering::Relaxed);
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body_sent = if req.method == "HEAD" { 0 } else { body.len() };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let peer = out
        .peer_addr()
        .map_or("-".to_owned(), |a| a.ip().to_string());
    let line = combined_log_line(&peer, now, &req, status, body_sent);
    if let Ok(mut file) = log.lock() {
        file.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// `text` as nginx writes a variable into a log line: `"`, `\` and bytes outside
/// printable ASCII as `\xXX`.
fn log_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// One line of nginx's predefined `combined` format:
/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
/// "$http_referer" "$http_user_agent"`, in UTC.
pub fn combined_log_line(
    peer: &str,
    unix_secs: u64,
    req: &Request,
    status: u16,
    body: usize,
) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = unix_secs % 86_400;
    format!(
        "{peer} - - [{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {status} {body} \"-\" \"{}\"\n",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        log_escape(&req.method),
        log_escape(&req.path),
        log_escape(req.user_agent.as_deref().unwrap_or("-")),
    )
}

/// The answer head and body for a request (the body is left out on the wire for HEAD,
/// but its length still goes into `Content-Length`).
pub fn answer(req: &Request, root: &Path) -> (String, Vec<u8>) {
    let simple = |status: &str| {
        let body = format!("{status}\n").into_bytes();
        (
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
            body,
        )
    };
    if req.method != "GET" && req.method != "HEAD" {
        return simple("405 Method Not Allowed");
    }
    let Some(path) = resolve(root, &req.path) else {
        return simple("400 Bad Request");
    };
    let body = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => return simple("404 Not Found"),
    };
    let tag = etag(&body);
    let mut common = format!("ETag: {tag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n");
    if let Some(cc) = cache_control(&req.path) {
        common.push_str(&format!("Cache-Control: {cc}\r\n"));
    }
    let len = body.len() as u64;
    if let Some(inm) = &req.if_none_match
        && (inm.trim() == "*" || inm.split(',').any(|t| t.trim() == tag))
    {
        return (
            format!("HTTP/1.1 304 Not Modified\r\n{common}\r\n"),
            Vec::new(),
        );
    }
    // A range is only honoured if the client still holds this exact version.
    let range_applies = req.if_range.as_deref().is_none_or(|t| t.trim() == tag);
    let range = match (&req.range, range_applies) {
        (Some(r), true) => parse_range(r, len),
        _ => RangeAnswer::Full,
    };
    match range {
        RangeAnswer::Full => (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n{common}\r\n"
            ),
            body,
        ),
        RangeAnswer::Partial(start, end) => {
            let part = body[start as usize..=end as usize].to_vec();
            (
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{len}\r\n{common}\r\n",
                    part.len()
                ),
                part,
            )
        }
        RangeAnswer::Unsatisfiable => {
            let body = b"416 Range Not Satisfiable\n".to_vec();
            (
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nContent-Range: bytes */{len}\r\n{common}\r\n",
                    body.len()
                ),
                body,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_are_nginx_combined() {
        let req = Request {
            method: "GET".into(),
            path: "/demo-sensor.stable.manifest".into(),
            user_agent: Some(
                "ota-agent/0.1.0 (i=ab;t=demo-sensor;c=stable;v=2.0.0;s=1;r=up)".into(),
            ),
            ..Request::default()
        };
        assert_eq!(
            combined_log_line("127.0.0.1", 1_796_546_469, &req, 304, 0),
            "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET /demo-sensor.stable.manifest HTTP/1.1\" \
             304 0 \"-\" \"ota-agent/0.1.0 (i=ab;t=demo-sensor;c=stable;v=2.0.0;s=1;r=up)\"\n"
        );
        let odd = Request {
            method: "GET".into(),
            path: "/a\"b".into(),
            user_agent: None,
            ..Request::default()
        };
        let line = combined_log_line("::1", 0, &odd, 404, 10);
        assert!(
            line.contains(
                "[01/Jan/1970:00:00:00 +0000] \"GET /a\\x22b HTTP/1.1\" 404 10 \"-\" \"-\""
            ),
            "{line}"
        );
    }

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        }
    }

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.ota"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("s.stable.manifest"), b"manifest").unwrap();
        dir
    }

    fn status(head: &str) -> &str {
        &head[9..12]
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
        let dir = root();
        let (head, body) = answer(&get("/s.stable.manifest"), dir.path());
        assert_eq!(status(&head), "200");
        assert_eq!(body, b"manifest");
        assert!(head.contains("Cache-Control: no-cache\r\n"), "{head}");
        let tag = etag(b"manifest");
        assert!(head.contains(&format!("ETag: {tag}\r\n")));
        let mut req = get("/s.stable.manifest");
        req.if_none_match = Some(tag.clone());
        let (head, body) = answer(&req, dir.path());
        assert_eq!(status(&head), "304");
        assert!(body.is_empty());
        std::fs::write(dir.path().join("s.stable.manifest"), b"manifest 2").unwrap();
        let (head, body) = answer(&req, dir.path());
        assert_eq!(status(&head), "200");
        assert_eq!(body, b"manifest 2");
    }

    #[test]
    fn range_gives_206_with_content_range() {
        let dir = root();
        let mut req = get("/a.ota");
        req.range = Some("bytes=4-".into());
        let (head, body) = answer(&req, dir.path());
        assert_eq!(status(&head), "206");
        assert_eq!(body, b"456789");
        assert!(head.contains("Content-Range: bytes 4-9/10\r\n"), "{head}");
        assert!(head.contains("Content-Length: 6\r\n"));
        assert!(head.contains("immutable"));
        req.range = Some("bytes=10-".into());
        let (head, _) = answer(&req, dir.path());
        assert_eq!(status(&head), "416");
        assert!(head.contains("Content-Range: bytes */10\r\n"));
    }

    #[test]
    fn if_range_with_an_old_etag_gives_the_whole_file() {
        let dir = root();
        let mut req = get("/a.ota");
        req.range = Some("bytes=4-".into());
        req.if_range = Some("\"0000000000000000\"".into());
        let (head, body) = answer(&req, dir.path());
        assert_eq!(status(&head), "200");
        assert_eq!(body, b"0123456789");
        req.if_range = Some(etag(b"0123456789"));
        let (head, _) = answer(&req, dir.path());
        assert_eq!(status(&head), "206");
    }

    #[test]
    fn missing_files_traversal_and_other_methods_are_refused() {
        let dir = root();
        assert_eq!(status(&answer(&get("/nope"), dir.path()).0), "404");
        assert_eq!(status(&answer(&get("/../a.ota"), dir.path()).0), "400");
        let mut req = get("/a.ota");
        req.method = "PUT".into();
        assert_eq!(status(&answer(&req, dir.path()).0), "405");
    }

    #[test]
    fn serves_over_tcp_and_counts() {
        let dir = root();
        let server = BuiltinServer::serve(dir.path()).unwrap();
        let addr = server.url().trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(&addr).unwrap();
        let request =
            "GET /a.ota HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n";
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut s, &mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 206"), "{text}");
        assert!(text.ends_with("\r\n\r\n01"), "{text}");
        // The counters are bumped after the write; give the handler a moment.
        std::thread::sleep(Duration::from_millis(50));
        let stats = server.stats();
        assert_eq!(stats.requests, 1);
        assert_eq!(stats.partial, 1);
        assert_eq!(stats.bytes_sent, text.len() as u64);
        assert_eq!(stats.bytes_received, request.len() as u64);
    }
}
