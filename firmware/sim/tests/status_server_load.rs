//! The simulator's status server under hostile clients: dripping heads (slowloris), idle
//! connections, more connections than it serves at once, a header line without an end.
//! A fresh client must still get its status within a second.

mod support;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ota_device_sim::status_server::{HEAD_MAX, MAX_CONNECTIONS};
use support::{get_body, sim_run, spawn_with_status};

/// Refused at once: the device's checks fail fast and do not matter here.
const UNREACHABLE_MANIFEST_URL: &str = "http://127.0.0.1:9/sensor.stable.manifest";
const DRIPPED_HEAD: &[u8] = b"GET /ota/status HTTP/1.1\r\nX-Drip: ";
const FRESH_CLIENT_LIMIT: Duration = Duration::from_secs(1);
/// Every connection the test makes gives up by then (a server that stopped accepting
/// leaves connections waiting in its backlog).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

fn connect(addr: &str) -> Option<TcpStream> {
    TcpStream::connect_timeout(&addr.parse().ok()?, CONNECT_TIMEOUT).ok()
}

/// The simulator, killed when the test ends however it ends; its output is kept open so
/// that it can keep printing.
struct Sim(Child, #[allow(dead_code)] BufReader<ChildStdout>);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(dir: &std::path::Path) -> (Sim, String) {
    let (child, out, addr) =
        spawn_with_status(sim_run(dir, "589824", UNREACHABLE_MANIFEST_URL).args([
            "--device-id",
            "dev-1",
            "--interval",
            "60",
        ]));
    (Sim(child, out), addr)
}

#[derive(Clone, Copy)]
enum Attack {
    /// Connects and sends nothing.
    Idle,
    /// Sends a head one byte per tick that never ends.
    Drip,
}

/// Keeps `count` connections of `attack` open against `addr`, reconnecting each one the
/// server closes, until `stop`.
fn attacker(addr: SocketAddr, attack: Attack, count: usize, stop: Arc<AtomicBool>) {
    let connect = || {
        let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
        s.set_nonblocking(true).ok()?;
        Some((s, 0usize))
    };
    let mut conns: Vec<_> = (0..count).filter_map(|_| connect()).collect();
    let mut reply = [0u8; 256];
    while !stop.load(Ordering::SeqCst) {
        for conn in &mut conns {
            let closed = match attack {
                Attack::Idle => match conn.0.read(&mut reply) {
                    Ok(_) => true,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                },
                Attack::Drip => {
                    let byte = DRIPPED_HEAD.get(conn.1).copied().unwrap_or(b'a');
                    conn.1 += 1;
                    matches!(conn.0.write(&[byte]), Ok(0) | Err(_))
                }
            };
            if closed && let Some(fresh) = connect() {
                *conn = fresh;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_fresh_client_gets_its_status(addr: &str, rounds: u32) {
    for round in 0..rounds {
        let start = Instant::now();
        let body = get_body(addr, "/ota/status");
        let took = start.elapsed();
        assert!(body.is_some(), "round {round}: no status");
        assert!(
            took < FRESH_CLIENT_LIMIT,
            "round {round}: status took {took:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn status_within_a_second_under_slowloris_and_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, addr) = start_sim(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = [(Attack::Idle, 200), (Attack::Drip, 40)]
        .into_iter()
        .map(|(attack, count)| {
            let (addr, stop) = (addr.parse().unwrap(), stop.clone());
            std::thread::spawn(move || attacker(addr, attack, count, stop))
        })
        .collect();
    // Let the attack settle in, then past the server's request deadline, so that the
    // attackers have been cut off and have come back.
    std::thread::sleep(Duration::from_millis(500));
    assert_fresh_client_gets_its_status(&addr, 10);
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.join().unwrap();
    }
}

#[test]
fn more_connections_than_the_server_holds_close_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, addr) = start_sim(dir.path());
    let idle: Vec<_> = (0..MAX_CONNECTIONS + 50)
        .filter_map(|_| connect(&addr))
        .collect();
    assert_fresh_client_gets_its_status(&addr, 3);
    drop(idle);
}

#[test]
fn a_header_line_without_an_end_is_cut_at_the_head_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, addr) = start_sim(dir.path());
    // Exactly one byte over the cap, all of which the server reads: it answers 431.
    let mut s = connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut head = b"GET /ota/status HTTP/1.1\r\nX-Long: ".to_vec();
    head.resize(HEAD_MAX + 1, b'a');
    s.write_all(&head).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "{:?}",
        answer.get(..40)
    );
    // An endless line: the server stops reading it, so writing soon fails, long before
    // it would have taken all of it (the kernel buffers a few MiB on each side).
    let mut s = connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET /ota/status HTTP/1.1\r\nX-Endless: ")
        .unwrap();
    let chunk = [b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 128 * 1024 * 1024 && s.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    assert!(
        sent < 64 * 1024 * 1024,
        "the server took {sent} bytes of one line"
    );
    // And it still answers.
    assert_fresh_client_gets_its_status(&addr, 1);
}
