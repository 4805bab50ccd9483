//! The client against scripted connections: exact request bytes, every body framing, read
//! sizes down to one byte, redirects, and every malformed answer.
//!
//! Longer than our usual file (~560 lines): one scripted connection serves every case,
//! and each case is a few lines of script and assertions.

extern crate std;

use core::cell::Cell;
use std::collections::VecDeque;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use embassy_futures::block_on;

use super::*;
use crate::http::{ETag, HttpBody, MAX_INTERIM_RESPONSES, MAX_REDIRECTS, read_to_end};

/// Answers each connection with the next scripted bytes, `max_read` bytes per read, and
/// records what was connected to and written. Its clock advances `ms_per_read` with
/// every read, so a server that trickles is simulated without waiting.
struct Script {
    answers: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    max_read: usize,
    connects: Vec<(String, u16, u32)>,
    closes: usize,
    sent: Vec<Vec<u8>>,
    /// Fail reads with this once the current answer is exhausted (instead of `Ok(0)`).
    stall: Option<HttpError>,
    now_ms: Cell<u64>,
    ms_per_read: u64,
    /// The timeout each read was given.
    read_timeouts: Vec<u32>,
}

impl Script {
    fn new(answers: &[&[u8]]) -> Self {
        Script {
            answers: answers.iter().map(|a| a.to_vec()).collect(),
            current: Vec::new(),
            at: 0,
            max_read: usize::MAX,
            connects: Vec::new(),
            closes: 0,
            sent: Vec::new(),
            stall: None,
            now_ms: Cell::new(0),
            ms_per_read: 0,
            read_timeouts: Vec::new(),
        }
    }

    /// Answers `max_read` bytes a read, each read `ms_per_read` after the last: a slow
    /// server, for the timeouts.
    fn paced(answers: &[&[u8]], max_read: usize, ms_per_read: u64) -> Self {
        Script {
            max_read,
            ms_per_read,
            ..Script::new(answers)
        }
    }

    fn sent_text(&self, i: usize) -> String {
        String::from_utf8(self.sent[i].clone()).unwrap()
    }
}

impl Clock for Script {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
}

impl Connection for Script {
    async fn connect(&mut self, host: &str, port: u16, timeout_ms: u32) -> Result<(), HttpError> {
        self.connects.push((host.to_string(), port, timeout_ms));
        self.current = self.answers.pop_front().ok_or(HttpError::Connect)?;
        self.at = 0;
        self.sent.push(Vec::new());
        Ok(())
    }

    async fn write_all(&mut self, bytes: &[u8], _timeout_ms: u32) -> Result<(), HttpError> {
        self.sent.last_mut().unwrap().extend_from_slice(bytes);
        Ok(())
    }

    async fn read(&mut self, buf: &mut [u8], timeout_ms: u32) -> Result<usize, HttpError> {
        self.read_timeouts.push(timeout_ms);
        self.now_ms.set(self.now_ms.get() + self.ms_per_read);
        let n = buf
            .len()
            .min(self.max_read)
            .min(self.current.len() - self.at);
        if n == 0 {
            return self.stall.map_or(Ok(0), Err);
        }
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    fn close(&mut self) {
        self.closes += 1;
    }
}

fn client(script: Script, head_len: usize) -> Http1Client<Script, Vec<u8>> {
    Http1Client::new(
        script,
        Http1Memory {
            head: vec![0; head_len],
            url: vec![0; 1024],
            next: vec![0; 1024],
        },
    )
}

/// GETs `url`, following redirects, and reads the whole body (at most 64 KiB).
fn fetch(
    c: &mut Http1Client<Script, Vec<u8>>,
    request: &Request<'_>,
) -> Result<(ResponseHead, Vec<u8>), HttpError> {
    block_on(async {
        let (head, mut body) = crate::get_following!(c, *request)?;
        let mut buf = vec![0u8; 65536];
        let n = read_to_end(&mut body, &mut buf).await?;
        buf.truncate(n);
        Ok((head, buf))
    })
}

/// Fetches `request` from `script`, asserts that it timed out, and returns the client,
/// whose connection shows how.
fn fetch_until_timeout(script: Script, request: &Request<'_>) -> Http1Client<Script, Vec<u8>> {
    let mut c = client(script, 4096);
    assert_eq!(fetch(&mut c, request).err(), Some(HttpError::Timeout));
    c
}

fn get(url: &str) -> Request<'_> {
    Request::get(url, 1500)
}

#[test]
fn request_bytes_are_exactly_these() {
    let mut c = client(
        Script::new(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]),
        4096,
    );
    let tag = ETag::new("\"abc\"").unwrap();
    let request = Request {
        url: "http://updates.example:8080/fleet/a.manifest?x=1#frag",
        if_none_match: Some(&tag),
        range_from: Some(1234),
        identity: None,
        timeout_ms: 700,
        head_timeout_ms: 5_000,
        deadline_ms: 60_000,
        follow: false,
    };
    let (head, body) = fetch(&mut c, &request).unwrap();
    assert_eq!((head.status, &body[..]), (200, &b"ok"[..]));
    let s = c.connection();
    // Closed once the body is done with, not left open until the next check.
    assert_eq!(s.closes, 1);
    assert_eq!(s.connects, [("updates.example".to_string(), 8080, 700)]);
    assert_eq!(
        s.sent_text(0),
        format!(
            "GET /fleet/a.manifest?x=1 HTTP/1.1\r\nHost: updates.example:8080\r\n\
             User-Agent: ota-agent/{}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\
             If-None-Match: \"abc\"\r\nRange: bytes=1234-\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // The default port is not written; an IPv6 literal connects without its brackets.
    let mut c = client(Script::new(&[b"HTTP/1.1 204 No Content\r\n\r\n"]), 4096);
    fetch(&mut c, &get("http://[::1]/m")).unwrap();
    assert_eq!(c.connection().connects[0].0, "::1");
    assert!(c.connection().sent_text(0).contains("Host: [::1]\r\n"));
}

#[test]
fn the_identity_token_goes_into_the_user_agent_and_nothing_else_changes() {
    let sent = |identity: Option<&str>| {
        let mut c = client(Script::new(&[b"HTTP/1.1 304 Not Modified\r\n\r\n"]), 4096);
        let tag = ETag::new("\"abc\"").unwrap();
        let request = Request {
            if_none_match: Some(&tag),
            identity,
            ..get("http://h/a.manifest")
        };
        fetch(&mut c, &request).unwrap();
        c.connection().sent_text(0)
    };
    let agent = concat!("ota-agent/", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        sent(Some("i=0a1b;t=sensor;c=stable;v=1.2.0;s=1;r=up")),
        format!(
            "GET /a.manifest HTTP/1.1\r\nHost: h\r\n\
             User-Agent: {agent} (i=0a1b;t=sensor;c=stable;v=1.2.0;s=1;r=up)\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\nIf-None-Match: \"abc\"\r\n\r\n"
        )
    );
    // Text that would end the comment, or the header, is not sent at all.
    for bad in ["a)b", "a\r\nX-Evil: 1", "a\\)", "caf\u{e9}"] {
        assert!(
            sent(Some(bad)).contains(&format!("User-Agent: {agent}\r\n")),
            "{bad:?}"
        );
    }
}

#[test]
fn every_framing_in_every_read_size() {
    let body: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let mut length = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\nETag: \"v1\"\r\n\r\n".to_vec();
    length.extend_from_slice(&body);
    // Bytes after the declared length belong to nobody and are never handed out.
    length.extend_from_slice(b"EXTRA");
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for (i, part) in body.chunks(1000).enumerate() {
        // Upper-case hex, an extension on one chunk.
        let ext = if i == 1 { ";name=value" } else { "" };
        chunked.extend_from_slice(format!("{:X}{ext}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    let mut until_close = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    until_close.extend_from_slice(&body);
    for answer in [&length, &chunked, &until_close] {
        for max_read in [1, 2, 7, 100, 4096, usize::MAX] {
            let mut script = Script::new(&[answer]);
            script.max_read = max_read;
            let mut c = client(script, 4096);
            let (_, got) = fetch(&mut c, &get("http://h/x")).unwrap();
            assert!(got == body, "read size {max_read}");
        }
    }
    let mut c = client(Script::new(&[&length]), 4096);
    let (head, _) = fetch(&mut c, &get("http://h/x")).unwrap();
    assert_eq!(head.content_length, Some(3000));
    assert_eq!(head.etag.unwrap().as_str(), "\"v1\"");
}

#[test]
fn not_modified_and_no_content_have_no_body() {
    for answer in [
        &b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 368\r\n\r\n"[..],
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
    ] {
        let mut c = client(Script::new(&[answer]), 4096);
        let (_, body) = fetch(&mut c, &get("http://h/x")).unwrap();
        assert!(body.is_empty());
    }
}

#[test]
fn interim_answers_are_skipped() {
    let mut c = client(
        Script::new(&[b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"]),
        4096,
    );
    let (head, body) = fetch(&mut c, &get("http://h/x")).unwrap();
    assert_eq!((head.status, &body[..]), (200, &b"z"[..]));
}

#[test]
fn redirects_are_followed_across_hosts() {
    // GitHub's shape: two redirects, the second to another host with a long query.
    let long = format!("http://objects.example/rel/x.ota?sig={}", "a".repeat(700));
    let second = format!("HTTP/1.1 302 Found\r\nLocation: {long}\r\nContent-Length: 0\r\n\r\n");
    let mut c = client(
        Script::new(&[
            b"HTTP/1.1 302 Found\r\nLocation: /owner/repo/releases/download/v9/x.ota\r\n\r\n",
            second.as_bytes(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nota",
        ]),
        4096,
    );
    let (head, body) = fetch(
        &mut c,
        &get("http://github.example/owner/repo/releases/latest/download/x.ota"),
    )
    .unwrap();
    assert_eq!((head.status, &body[..]), (200, &b"ota"[..]));
    let s = c.connection();
    let hosts: Vec<_> = s
        .connects
        .iter()
        .map(|(h, p, _)| (h.as_str(), *p))
        .collect();
    assert_eq!(
        hosts,
        [
            ("github.example", 80),
            ("github.example", 80),
            ("objects.example", 80)
        ]
    );
    assert!(
        s.sent_text(1)
            .starts_with("GET /owner/repo/releases/download/v9/x.ota HTTP/1.1\r\n")
    );
    assert!(s.sent_text(2).starts_with(&format!(
        "GET /rel/x.ota?sig={} HTTP/1.1\r\nHost: objects.example\r\n",
        "a".repeat(700)
    )));
    assert_eq!(c.requests(), 3);
}

#[test]
fn a_redirect_is_one_hop_and_follow_takes_its_target() {
    let mut c = client(
        Script::new(&[
            b"HTTP/1.1 302 Found\r\nLocation: d/x?y\r\nContent-Length: 5\r\n\r\nmoved",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]),
        4096,
    );
    let mut request = get("http://h/a/c/x");
    let head = block_on(async { c.get(&request).await.map(|(head, _)| head) }).unwrap();
    assert!(head.redirect && head.status == 302);
    assert_eq!(c.connection().connects.len(), 1);
    request.follow = true;
    let (head, body) = block_on(async {
        let (head, mut body) = c.get(&request).await?;
        let mut buf = [0u8; 8];
        let n = read_to_end(&mut body, &mut buf).await?;
        Ok::<_, HttpError>((head, buf[..n].to_vec()))
    })
    .unwrap();
    assert!(!head.redirect);
    assert_eq!(body, b"ok");
    let sent = c.connection().sent_text(1);
    assert!(sent.starts_with("GET /a/c/d/x?y HTTP/1.1\r\n"), "{sent}");
    // A fresh request goes to its own URL again.
    let mut c2 = client(Script::new(&[b"HTTP/1.1 204 No Content\r\n\r\n"]), 4096);
    fetch(&mut c2, &get("http://other/z")).unwrap();
    assert!(
        c2.connection()
            .sent_text(0)
            .starts_with("GET /z HTTP/1.1\r\nHost: other\r\n")
    );
}

#[test]
fn redirect_failures() {
    let hop = b"HTTP/1.1 301 Moved\r\nLocation: /again\r\n\r\n";
    let mut c = client(Script::new(&[&hop[..]; MAX_REDIRECTS + 1]), 4096);
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::TooManyRedirects)
    );
    assert_eq!(c.requests(), MAX_REDIRECTS as u64 + 1);

    let mut c = client(Script::new(&[b"HTTP/1.1 302 Found\r\n\r\n"]), 4096);
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::BadRedirect)
    );

    // A target longer than the URL buffer is refused, not cut.
    let huge = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://h/{}\r\n\r\n",
        "b".repeat(1100)
    );
    let mut c = client(Script::new(&[huge.as_bytes()]), 4096);
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::BadRedirect)
    );

    // No TLS here: a redirect to https stops before connecting anywhere.
    let mut c = client(
        Script::new(&[b"HTTP/1.1 302 Found\r\nLocation: https://h/x\r\n\r\n"]),
        4096,
    );
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::UnsupportedScheme)
    );
    assert_eq!(c.connection().connects.len(), 1);
}

#[test]
fn bad_urls_connect_nowhere() {
    // Longer than the client's URL buffer (1024 bytes here).
    let long = format!("http://h/{}", "x".repeat(1020));
    for (url, error) in [
        // This client was made without TLS.
        ("https://h/x", HttpError::UnsupportedScheme),
        ("ftp://h/x", HttpError::InvalidUrl),
        ("http://user@h/x", HttpError::InvalidUrl),
        (long.as_str(), HttpError::InvalidUrl),
    ] {
        let mut c = client(Script::new(&[]), 4096);
        assert_eq!(
            fetch(&mut c, &get(url)).err(),
            Some(error),
            "{}",
            &url[..url.len().min(24)]
        );
        assert!(c.connection().connects.is_empty());
    }
}

#[test]
fn malformed_answers_are_refused() {
    let big_head = format!("HTTP/1.1 200 OK\r\nX-Pad: {}\r\n\r\n", "p".repeat(600));
    let cases: [(&[u8], HttpError); 11] = [
        (b"", HttpError::ConnectionLost),
        (b"HTTP/1.1 200 OK\r\nContent-Le", HttpError::ConnectionLost),
        (b"SMTP ready\r\n\r\n", HttpError::Protocol),
        // Two different lengths: the framing is ambiguous (request smuggling).
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            HttpError::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
            HttpError::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nab",
            HttpError::Protocol,
        ),
        // Closed before the declared length.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            HttpError::ConnectionLost,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            HttpError::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX\r\n0\r\n\r\n",
            HttpError::Protocol,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
            HttpError::ConnectionLost,
        ),
        (big_head.as_bytes(), HttpError::Protocol),
    ];
    for (answer, error) in cases {
        let mut c = client(Script::new(&[answer]), 512);
        assert_eq!(
            fetch(&mut c, &get("http://h/x")).err(),
            Some(error),
            "{}",
            String::from_utf8_lossy(answer)
        );
    }
    // A chunk size of more than 16 hex digits would overflow.
    let mut c = client(
        Script::new(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
        ]),
        4096,
    );
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::Protocol)
    );
}

#[test]
fn connection_errors_pass_through() {
    let mut script = Script::new(&[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]);
    script.stall = Some(HttpError::Timeout);
    let mut c = client(script, 4096);
    let err = block_on(async {
        let (_, mut body) = c.get(&get("http://h/x")).await?;
        let mut buf = [0u8; 16];
        assert_eq!(body.read(&mut buf).await, Ok(3));
        body.read(&mut buf).await
    });
    assert_eq!(err, Err(HttpError::Timeout));
    let mut c = client(Script::new(&[]), 4096);
    assert_eq!(
        fetch(&mut c, &get("http://h/x")).err(),
        Some(HttpError::Connect)
    );
}

/// `n` interim heads, then a small final answer.
fn interim_then_ok(n: usize) -> Vec<u8> {
    let mut answer = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(n);
    answer.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    answer
}

#[test]
fn interim_answers_are_counted() {
    let mut c = client(
        Script::new(&[&interim_then_ok(MAX_INTERIM_RESPONSES)]),
        4096,
    );
    let (head, body) = fetch(&mut c, &get("http://h/x")).unwrap();
    assert_eq!((head.status, &body[..]), (200, &b"ok"[..]));
    // One more than the bound (and so an endless stream of them) ends the request.
    for n in [MAX_INTERIM_RESPONSES + 1, 10_000] {
        let mut c = client(Script::new(&[&interim_then_ok(n)]), 4096);
        assert_eq!(
            fetch(&mut c, &get("http://h/x")).err(),
            Some(HttpError::TooManyInterimResponses),
            "{n} interim answers"
        );
    }
}

#[test]
fn a_head_trickled_byte_by_byte_hits_the_head_timeout() {
    let head = format!(
        "HTTP/1.1 200 OK\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\nok",
        "p".repeat(300)
    );
    // Each byte comes well within the per-read timeout, 100 ms apart.
    let script = Script::paced(&[head.as_bytes()], 1, 100);
    let request = Request {
        head_timeout_ms: 2_000,
        deadline_ms: 600_000,
        ..Request::get("http://h/x", 5_000)
    };
    let c = fetch_until_timeout(script, &request);
    let s = c.connection();
    // 20 reads fill the 2 s; the one that would start after them is refused unsent.
    assert_eq!(s.read_timeouts.len(), 20);
    assert_eq!(s.read_timeouts.first(), Some(&2_000));
    assert_eq!(s.read_timeouts.last(), Some(&100));
    assert_eq!(s.closes, 1);
}

#[test]
fn the_deadline_holds_inside_body_reads_and_across_redirects() {
    let mut final_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    final_answer.extend_from_slice(&[b'b'; 1000]);
    let redirect: &[u8] = b"HTTP/1.1 302 Found\r\nLocation: /next\r\n\r\n";
    let script = Script::paced(&[redirect, &final_answer], 10, 50);
    let request = Request {
        head_timeout_ms: 60_000,
        deadline_ms: 3_000,
        ..Request::get("http://h/x", 20_000)
    };
    // The body would take 5 s at this pace: 3 s in, counted from the first hop, it ends
    // inside the body (a caller reading in a loop never sees the deadline pass itself).
    let c = fetch_until_timeout(script, &request);
    let s = c.connection();
    assert_eq!(s.connects.len(), 2);
    assert_eq!(s.read_timeouts.len(), 60);
    // Every read got at most what was left, never the 20 s per-read timeout.
    assert!(
        s.read_timeouts
            .iter()
            .enumerate()
            .all(|(i, &t)| u64::from(t) == 3_000 - 50 * i as u64),
        "{:?}",
        s.read_timeouts
    );
}
