//! A counting, stallable HTTP/1.1 proxy in front of a real server (s3s-fs): it forwards
//! bytes unchanged (so SigV4 signatures still verify: the client signed for the proxy's
//! host, and that is the Host header the server sees), counts requests and bytes each
//! way, and can hold one chosen request unanswered, so a test can kill the client while
//! it waits, as if the network or the server had stalled.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::util::{accept_until, lock};

/// One forwarded (or held) request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
}

#[derive(Default)]
struct State {
    requests: Vec<Seen>,
    bytes_up: u64,
    bytes_down: u64,
    stall: Option<(String, usize)>,
    seen_of_method: usize,
    holding: bool,
}

/// The running proxy. Stops accepting when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, to use instead of the upstream's URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Proxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("http:// upstream")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        accept_until(listener, stop.clone(), move |conn| {
            connection(conn, &upstream, &s, &st);
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop,
            port,
        }
    }

    /// Every request forwarded since the start (or [`Proxy::reset`]), in order.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state).requests.clone()
    }

    /// Bytes sent to the server and bytes received from it (headers included).
    pub fn bytes(&self) -> (u64, u64) {
        let s = lock(&self.state);
        (s.bytes_up, s.bytes_down)
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        let mut s = lock(&self.state);
        s.requests.clear();
        s.bytes_up = 0;
        s.bytes_down = 0;
    }

    /// Holds the `n`-th request (counting from 1, from now) with this method: it is never
    /// forwarded and never answered until [`Proxy::release`], which drops it.
    pub fn stall_at(&self, method: &str, n: usize) {
        let mut s = lock(&self.state);
        s.stall = Some((method.to_owned(), n));
        s.seen_of_method = 0;
    }

    /// Whether a request is being held right now.
    pub fn holding(&self) -> bool {
        lock(&self.state).holding
    }

    /// Lifts the stall; the held request's connection is dropped.
    pub fn release(&self) {
        lock(&self.state).stall = None;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connection(client: TcpStream, upstream: &str, state: &Arc<Mutex<State>>, stop: &AtomicBool) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let state_now = || lock(state);
    // Server -> client: a plain byte pump.
    let (Ok(mut from_server), Ok(mut to_client)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    let counts = state.clone();
    let down = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // Counted before forwarding, so a client that read its answer sees it counted.
                    lock(&counts).bytes_down += n as u64;
                    if to_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_client.shutdown(Shutdown::Write);
    });
    // Client -> server: request by request, so each can be counted or held.
    let mut reader = BufReader::new(client);
    let mut to_server = server;
    while let Ok(Some((head, method, path, body_len))) = read_head(&mut reader) {
        {
            let mut s = state_now();
            let target = s.stall.clone().filter(|(m, _)| *m == method);
            let held = match target {
                Some((_, n)) => {
                    s.seen_of_method += 1;
                    s.seen_of_method == n
                }
                None => false,
            };
            if held {
                s.holding = true;
                drop(s);
                while state_now().stall.is_some() && !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                state_now().holding = false;
                break;
            }
            s.requests.push(Seen { method, path });
            s.bytes_up += (head.len() + body_len) as u64;
        }
        if to_server.write_all(&head).is_err() {
            break;
        }
        let mut body = (&mut reader).take(body_len as u64);
        if std::io::copy(&mut body, &mut to_server).is_err() {
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Both);
    let _ = reader.get_ref().shutdown(Shutdown::Both);
    let _ = down.join();
}

type Head = (Vec<u8>, String, String, usize);

/// Reads one request head; `None` at a clean end of the connection.
fn read_head(r: &mut impl BufRead) -> Result<Option<Head>, String> {
    let mut raw = Vec::new();
    let mut first = String::new();
    if r.read_line(&mut first).map_err(|e| e.to_string())? == 0 {
        return Ok(None);
    }
    raw.extend_from_slice(first.as_bytes());
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut body_len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        raw.extend_from_slice(line.as_bytes());
        let t = line.trim_end();
        if t.is_empty() {
            return Ok(Some((raw, method, path, body_len)));
        }
        if let Some((n, v)) = t.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                body_len = v.trim().parse().map_err(|_| "bad content-length")?;
            }
            if n.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked request bodies are not proxied".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every request on a connection with "ok".
    fn upstream() -> String {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        thread::spawn(move || {
            for conn in l.incoming().flatten() {
                thread::spawn(move || {
                    let mut out = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    while let Ok(Some(_)) = read_head(&mut r) {
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if out.write_all(reply).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        url
    }

    #[test]
    fn counts_requests_and_bytes_both_ways() {
        let proxy = Proxy::start(&upstream());
        let a = crate::http::get(&format!("{}/a", proxy.url), &[]).unwrap();
        let b = crate::http::request("PUT", &format!("{}/b?x=1", proxy.url), &[], b"body").unwrap();
        assert_eq!((a.body.as_slice(), b.status), (&b"ok"[..], 200));
        let seen = proxy.requests();
        assert_eq!(
            seen,
            [
                Seen {
                    method: "GET".into(),
                    path: "/a".into()
                },
                Seen {
                    method: "PUT".into(),
                    path: "/b?x=1".into()
                }
            ]
        );
        let (up, down) = proxy.bytes();
        assert!(up > 4 && down == 2 * 40, "{up} {down}");
        proxy.reset();
        assert!(proxy.requests().is_empty());
    }

    #[test]
    fn a_stalled_request_is_held_unanswered_until_released() {
        let proxy = Proxy::start(&upstream());
        proxy.stall_at("PUT", 2);
        let url = format!("{}/x", proxy.url);
        crate::http::request("PUT", &url, &[], b"1").unwrap();
        let held = thread::spawn(move || crate::http::request("PUT", &url, &[], b"2"));
        let start = std::time::Instant::now();
        while !proxy.holding() {
            assert!(start.elapsed() < Duration::from_secs(10));
            thread::sleep(Duration::from_millis(5));
        }
        assert!(!held.is_finished());
        proxy.release();
        assert!(held.join().unwrap().is_err(), "dropped, never answered");
        assert_eq!(
            proxy.requests().len(),
            1,
            "the held request never reached upstream"
        );
    }
}
