//! The HTTP/1.1 side of the fake: reading a request (chunked or sized body, query
//! decoded), writing a reply, and the deaths and stalls a test sets up, which act on the
//! connection before any route sees the request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Host, Logged, State, Urls, api, faults};
use crate::util::lock;

pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: BTreeMap<String, String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(&v).expect("json"),
        }
    }

    pub(super) fn message(status: u16, msg: &str) -> Reply {
        Reply::json(status, json!({ "message": msg }))
    }

    pub(super) fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location)],
            body: Vec::new(),
        }
    }
}

/// Reads header lines up to the blank line; names lowercased.
pub(crate) fn read_headers(r: &mut impl BufRead) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        let (n, v) = line.split_once(':').ok_or("bad header line")?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

/// Reads a chunked body.
pub(crate) fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            read_headers(r)?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| e.to_string())?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|e| e.to_string())?;
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request(r: &mut impl BufRead) -> Result<Request, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or("empty request")?.to_owned();
    let target = parts.next().ok_or("no target")?.to_owned();
    let headers = read_headers(r)?;
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(r)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().map_err(|_| "bad content-length")?;
        let mut b = vec![0; len];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        b
    } else {
        Vec::new()
    };
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

pub(super) fn serve(conn: TcpStream, host: Host, state: &Mutex<State>, urls: &Urls) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let Ok(req) = read_request(&mut reader) else {
        return;
    };
    let reply = {
        let mut s = lock(state);
        let full = if req.query.is_empty() {
            req.path.clone()
        } else {
            let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}?{}", req.path, q.join("&"))
        };
        s.log.push(Logged {
            host,
            method: req.method.clone(),
            path: full,
            at: std::time::Instant::now(),
        });
        if s.log.last().is_some_and(Logged::creates_content) {
            s.writes += 1;
            if s.die_at_write.is_some_and(|n| s.writes >= n) {
                s.dead = true;
            }
        }
        if host == Host::Upload && req.method == "POST" {
            s.uploads += 1;
            if s.die_at_upload.is_some_and(|n| s.uploads >= n) {
                s.dead = true;
            }
            if s.stall_at_upload == Some(s.uploads) {
                s.holding = true;
            }
        }
        if s.holding && host == Host::Upload && req.method == "POST" {
            drop(s);
            hold(state);
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        if s.dead {
            None
        } else if let Some(fault) = faults::take(&mut s, host, &req) {
            Some(faults::reply(&mut s, fault, host, &req, urls))
        } else {
            Some(api::route(&mut s, host, &req, urls))
        }
    };
    // A dead server answers nothing: dropping the connection is what a killed process does.
    let Some(reply) = reply else {
        let _ = conn.shutdown(std::net::Shutdown::Both);
        return;
    };
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let head_only = req.method == "HEAD";
    let _ = out.write_all(head.as_bytes());
    if !head_only {
        let _ = out.write_all(&reply.body);
    }
    let _ = out.flush();
}

/// How long a stalled upload is held at most: far longer than any test takes to kill the
/// publishing process, short enough that a test that forgets to revive the fake does not
/// leave a thread behind for good.
const HOLD_MAX: Duration = Duration::from_secs(300);

/// Waits until the stall is lifted (or [`HOLD_MAX`] passes); the held request is never
/// answered.
fn hold(state: &Mutex<State>) {
    let started = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(20));
        let mut s = lock(state);
        if s.stall_at_upload.is_none() || started.elapsed() > HOLD_MAX {
            s.holding = false;
            return;
        }
    }
}
