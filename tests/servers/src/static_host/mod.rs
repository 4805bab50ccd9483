//! A static HTTP/1.1 host on loopback, for the simulator's and the CLI's tests and for the
//! demo on machines without nginx. It serves a directory (read at each request, so a
//! publish that renames files into place is visible at once, as with nginx) or files held
//! in memory, answering as [`answer`] says: strong ETag and `If-None-Match` -> 304, a
//! single `Range` -> 206 or 416, `If-Range`, the cache headers of the static-host layout,
//! and `Connection: close` after every answer (as the device agent expects anyway).
//!
//! A test can make the next requests of a path misbehave ([`StaticHost::fault`]: drops,
//! stalls, trickles, lies about lengths, wrong bytes, 5xx, redirects), and reads back what
//! was asked and answered ([`StaticHost::log`], [`StaticHost::stats`]). Every wait is
//! bounded: reads and writes of a connection time out, and each fault states its bound.

mod access_log;
mod answer;
mod faults;
mod request;

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::lock;

pub use access_log::combined_log_line;
pub use answer::{Answer, Lookup, RangeAnswer, answer, etag, parse_range, reason, resolve};
pub use faults::Fault;
pub use request::Request;

/// How long a connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`StaticHost::log`] waits for the connections still being answered.
const LOG_SETTLE: Duration = Duration::from_secs(10);
/// Requests kept in the log; a long demo run serves more, and the counters still count
/// them.
const LOG_MAX: usize = 100_000;
/// Stack of a connection's thread: answering is shallow, and the demo's fleet opens
/// hundreds of connections at once.
const CONNECTION_STACK: usize = 256 * 1024;

/// What a host has answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests answered.
    pub requests: u64,
    /// Of those, `304 Not Modified`.
    pub not_modified: u64,
    /// Of those, `206 Partial Content`.
    pub partial: u64,
    /// Bytes sent, heads included.
    pub bytes_sent: u64,
    /// Bytes of the requests (request line and headers).
    pub bytes_received: u64,
}

/// One request as the host saw and answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The path, query removed.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status of the head sent (100 for interim heads only, 0 when nothing was sent).
    pub status: u16,
}

/// Where the files come from.
enum Files {
    /// A directory, read at each request.
    Dir(PathBuf),
    /// Exact paths to bytes.
    Memory(Mutex<HashMap<String, Vec<u8>>>),
}

impl Files {
    fn lookup(&self, path: &str) -> Lookup {
        match self {
            Files::Dir(root) => match resolve(root, path) {
                None => Lookup::Outside,
                Some(file) => std::fs::read(file).map_or(Lookup::Missing, Lookup::Found),
            },
            Files::Memory(files) => match lock(files).get(path) {
                Some(bytes) => Lookup::Found(bytes.clone()),
                None => Lookup::Missing,
            },
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    not_modified: AtomicU64,
    partial: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// Connections whose answer is written (or failed) and logged.
    finished: AtomicU64,
}

/// What the accept loop and the connections share with the handle.
struct Shared {
    files: Files,
    /// Faults per path, applied to successive requests (then normal service).
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    log: Mutex<Vec<Served>>,
    counters: Counters,
    stop: AtomicBool,
    /// nginx `combined` lines, when asked for ([`StaticHost::serve_dir_logged`]).
    access_log: Option<access_log::AccessLog>,
}

/// A running host. Stops accepting when dropped; connections being answered finish.
pub struct StaticHost {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl StaticHost {
    /// A host serving files put with [`StaticHost::put`], on a free loopback port.
    pub fn start() -> StaticHost {
        Self::spawn(Files::Memory(Mutex::default()), None).expect("start a loopback static host")
    }

    /// A host serving the files under `root` as they are at each request.
    pub fn serve_dir(root: &Path) -> io::Result<StaticHost> {
        Self::spawn(Files::Dir(root.to_path_buf()), None)
    }

    /// [`StaticHost::serve_dir`], appending a line per answered request to `access_log`
    /// in nginx's `combined` format (what `ota-sign fleet status` reads).
    pub fn serve_dir_logged(root: &Path, access_log: &Path) -> io::Result<StaticHost> {
        let log = access_log::AccessLog::open(access_log)?;
        Self::spawn(Files::Dir(root.to_path_buf()), Some(log))
    }

    fn spawn(files: Files, access_log: Option<access_log::AccessLog>) -> io::Result<StaticHost> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            files,
            faults: Mutex::default(),
            log: Mutex::default(),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            access_log,
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("static-host".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(StaticHost {
            base: format!("http://{addr}"),
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Serves `bytes` at `path` from now on (under the directory, for a directory host).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        match &self.shared.files {
            Files::Memory(files) => {
                lock(files).insert(path.into(), bytes);
            }
            Files::Dir(root) => {
                let file = resolve(root, path).expect("a path inside the served directory");
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).expect("create the file's directory");
                }
                std::fs::write(file, bytes).expect("write the served file");
            }
        }
    }

    /// Makes the next requests of `path` misbehave, one fault each, in order; later
    /// requests are served normally. Replaces faults still pending for `path`.
    pub fn fault(&self, path: &str, faults: Vec<Fault>) {
        lock(&self.shared.faults).insert(path.into(), faults.into());
    }

    /// Every request so far (the first [`LOG_MAX`]) in the order they arrived, once the
    /// connections accepted so far are answered (waiting [`LOG_SETTLE`] at most): a
    /// request's status is logged just after its answer is written, so just after the
    /// client has it.
    pub fn log(&self) -> Vec<Served> {
        self.settle();
        lock(&self.shared.log).clone()
    }

    /// Waits until the connections accepted so far are answered and counted, [`LOG_SETTLE`]
    /// at most: a client has its answer a moment before the host counts it.
    fn settle(&self) {
        let counters = &self.shared.counters;
        let started = std::time::Instant::now();
        while counters.finished.load(Ordering::SeqCst) < counters.connections.load(Ordering::SeqCst)
            && started.elapsed() < LOG_SETTLE
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many logged requests asked for `path`.
    pub fn requests_for(&self, path: &str) -> usize {
        self.log().iter().filter(|s| s.path == path).count()
    }

    /// Requests and bytes so far (a request is counted a moment after its client has the
    /// answer; [`Self::log`] waits for that).
    pub fn stats(&self) -> HostStats {
        let c = &self.shared.counters;
        HostStats {
            requests: c.requests.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            partial: c.partial.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }
}

impl Drop for StaticHost {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.counters.connections.fetch_add(1, Ordering::SeqCst);
        let conn = shared.clone();
        // One short-lived thread per connection: every answer closes the connection.
        let spawned = std::thread::Builder::new()
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let _ = serve(stream, &conn);
                conn.counters.finished.fetch_add(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // Out of threads: the connection was dropped unanswered.
            shared.counters.finished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The connection's write side, counting what is sent.
pub(super) struct Wire<'a> {
    stream: TcpStream,
    sent: &'a AtomicU64,
    /// Bytes this connection sent, and how many of them were heads (for the access
    /// log's body bytes).
    connection_sent: u64,
    head_sent: u64,
}

impl Wire<'_> {
    /// Closes both directions now (a dropped connection).
    fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.connection_sent += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(req) = request::read_request(&mut reader)? else {
        return Ok(());
    };
    let c = &shared.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    c.bytes_received
        .fetch_add(req.head_len as u64, Ordering::Relaxed);
    // The log keeps arrival order: the slot is taken now and its status filled in once
    // answered, because a client can send its next request before this thread is back.
    let log_slot = {
        let mut log = lock(&shared.log);
        (log.len() < LOG_MAX).then(|| {
            log.push(Served {
                path: req.path.clone(),
                range: req.range.clone(),
                status: 0,
            });
            log.len() - 1
        })
    };
    let fault = lock(&shared.faults)
        .get_mut(&req.path)
        .and_then(VecDeque::pop_front);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "-".to_owned(), |a| a.ip().to_string());
    let mut wire = Wire {
        stream,
        sent: &c.bytes_sent,
        connection_sent: 0,
        head_sent: 0,
    };
    let (status, written) = faults::respond(
        &mut wire,
        &req,
        || shared.files.lookup(&req.path),
        fault.as_ref(),
    );
    match status {
        304 => c.not_modified.fetch_add(1, Ordering::Relaxed),
        206 => c.partial.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    if let Some(access_log) = &shared.access_log {
        let body = wire.connection_sent.saturating_sub(wire.head_sent);
        access_log.record(&peer, &req, status, body);
    }
    if let Some(slot) = log_slot {
        lock(&shared.log)[slot].status = status;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    fn host_with_image() -> StaticHost {
        let host = StaticHost::start();
        host.put("/a.ota", b"0123456789".to_vec());
        host
    }

    #[test]
    fn serves_over_tcp_and_counts() {
        let host = host_with_image();
        let r = http::get(&host.url("/a.ota"), &[("Range", "bytes=0-1")]).unwrap();
        assert_eq!((r.status, &r.body[..]), (206, &b"01"[..]));
        let log = host.log();
        let stats = host.stats();
        assert_eq!(
            log,
            [Served {
                path: "/a.ota".into(),
                range: Some("bytes=0-1".into()),
                status: 206
            }]
        );
        assert_eq!((stats.requests, stats.partial), (1, 1));
        let head_len: usize = r.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let status_line = "HTTP/1.1 206 Partial Content\r\n".len();
        assert_eq!(stats.bytes_sent, (status_line + head_len + 2 + 2) as u64);
        assert!(stats.bytes_received > 0);
    }

    #[test]
    fn a_directory_is_served_as_it_is_at_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let host = StaticHost::serve_dir(dir.path()).unwrap();
        assert_eq!(
            http::get(&host.url("/s.manifest"), &[]).unwrap().status,
            404
        );
        host.put("/s.manifest", b"one".to_vec());
        assert_eq!(
            std::fs::read(dir.path().join("s.manifest")).unwrap(),
            b"one"
        );
        let r = http::get(&host.url("/s.manifest"), &[]).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"one"[..]));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        let tag = r.header("etag").unwrap().to_owned();
        let same = http::get(&host.url("/s.manifest"), &[("If-None-Match", &tag)]).unwrap();
        assert_eq!(same.status, 304);
        host.settle();
        assert_eq!(host.stats().not_modified, 1);
    }

    #[test]
    fn faults_apply_to_successive_requests_then_service_is_normal() {
        let host = host_with_image();
        let redirect = host.url("/b.ota");
        host.fault(
            "/a.ota",
            vec![
                Fault::Status(503),
                Fault::Redirect(redirect.clone()),
                Fault::IgnoreRange,
                Fault::WrongByte(1),
                Fault::Longer(3),
            ],
        );
        let get = || http::get(&host.url("/a.ota"), &[("Range", "bytes=8-")]).unwrap();
        assert_eq!(get().status, 503);
        let moved = get();
        assert_eq!(
            (moved.status, moved.header("location")),
            (302, Some(&redirect[..]))
        );
        let whole = get();
        assert_eq!((whole.status, &whole.body[..]), (200, &b"0123456789"[..]));
        assert_eq!(get().body, b"89");
        let longer = get();
        assert_eq!(longer.body, b"89", "the client reads the declared length");
        assert_eq!(get().status, 206);
        let statuses: Vec<u16> = host.log().iter().map(|s| s.status).collect();
        assert_eq!(statuses, [503, 302, 200, 206, 206, 206]);
    }

    #[test]
    fn drops_and_endless_bodies_are_what_they_say() {
        let host = host_with_image();
        host.fault("/a.ota", vec![Fault::DropAfter(4), Fault::Endless]);
        let err = http::get(&host.url("/a.ota"), &[]).unwrap_err();
        assert!(!err.is_empty());
        let endless = http::get(&host.url("/a.ota"), &[]).unwrap();
        assert_eq!(endless.header("content-length"), None);
        assert_eq!(endless.body.len(), 10 + 4096 * 1024);
        assert!(endless.body.starts_with(b"0123456789\x5A"));
    }

    #[test]
    fn a_silent_answer_is_logged_as_none() {
        let host = host_with_image();
        host.fault("/a.ota", vec![Fault::Silent(Duration::from_millis(20))]);
        assert!(http::get(&host.url("/a.ota"), &[]).is_err());
        assert_eq!(host.log()[0].status, 0);
    }
}
