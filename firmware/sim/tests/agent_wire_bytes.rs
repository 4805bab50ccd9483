//! What a check costs on the wire (R5), counted by a byte-counting TCP relay between the
//! simulated device and Debian's nginx: request and response bytes of each connection,
//! headers included. An idle check is a conditional GET answered 304; a changed
//! manifest is one 200 carrying it. The numbers go to docs/BENCHMARKS.md.
//!
//! nginx missing is a failure with the install command, unless
//! `OTA_SKIP_SERVER_TESTS=1`.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::status::CheckResult;
use ota_test_servers::nginx::Nginx;
use support::*;

/// Bytes sent (device → server) and received (server → device) on one connection.
#[derive(Clone, Copy, Debug)]
struct Wire {
    sent: u64,
    received: u64,
}

impl Wire {
    fn total(self) -> u64 {
        self.sent + self.received
    }
}

/// A relay to `upstream` that records what crossed each connection once it closed.
struct Relay {
    url: String,
    done: Arc<Mutex<Vec<Wire>>>,
}

fn pump(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let mut n = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if to.write_all(&buf[..k]).is_err() {
                    break;
                }
                n += k as u64;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    n
}

impl Relay {
    /// Relays to the host of `upstream` (`http://` or `https://`); [`Relay::url`] has the
    /// same scheme.
    fn start(upstream: &str) -> Relay {
        let (scheme, host) = upstream.split_once("://").unwrap();
        let upstream = host.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let done: Arc<Mutex<Vec<Wire>>> = Arc::default();
        let log = done.clone();
        std::thread::spawn(move || {
            for device in listener.incoming().flatten() {
                let server = TcpStream::connect(&upstream).unwrap();
                let (d2, s2) = (device.try_clone().unwrap(), server.try_clone().unwrap());
                let up = std::thread::spawn(move || pump(d2, s2));
                let received = pump(server, device);
                let sent = up.join().unwrap();
                log.lock().unwrap().push(Wire { sent, received });
            }
        });
        Relay { url, done }
    }

    /// The connections completed since the last call.
    fn take(&self) -> Vec<Wire> {
        // The relay records a connection just after the device saw it close.
        std::thread::sleep(Duration::from_millis(50));
        std::mem::take(&mut *self.done.lock().unwrap())
    }
}

/// A device running 1.0.0 that polls `root` through `relay`, with 1.0.0 published there.
fn device_polling(relay: &Relay, root: &Path) -> ota_device_sim::device::VirtualDevice {
    let host = Host::start(); // only to build the device; never contacted
    let mut d = device(&host, RollbackDisabled);
    d.config.manifest_url = format!("{}{MANIFEST_PATH}", relay.url);
    let running = release(&Spec {
        version: "1.0.0",
        counter: 0,
        ..Spec::default()
    });
    publish_in_dir(root, &running, Some(1_700_000_000));
    d
}

/// A check and what crossed the relay during it.
type Checked = (Result<CheckResult, AgentError>, Vec<Wire>);

/// The wire cost of a first check (up to date) and of an idle one (304), each of which
/// must have taken exactly one connection.
#[track_caller]
fn first_and_idle(first: Checked, idle: Checked) -> (Wire, Wire) {
    assert_eq!(first.0, Ok(CheckResult::UpToDate));
    assert_eq!(idle.0, Ok(CheckResult::NotModified));
    assert_eq!(
        (first.1.len(), idle.1.len()),
        (1, 1),
        "one connection per check"
    );
    (first.1[0], idle.1[0])
}

#[test]
fn idle_check_costs_a_few_hundred_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(nginx) = Nginx::serve(dir.path()) else {
        return;
    };
    let relay = Relay::start(&nginx.url);
    // The running release: fetched once (200), then unchanged (304).
    let mut d = device_polling(&relay, dir.path());
    // Then, in the same boot (the ETag lives in RAM), a new release: the changed
    // manifest, then the image.
    let next = release(&Spec {
        sequence: 3,
        ..Spec::default()
    });
    let (_, (first, idle, changed)) = boot_until_running(&mut d, |s| {
        let first = (s.check(), relay.take());
        let idle = (s.check(), relay.take());
        publish_in_dir(dir.path(), &next, Some(1_700_000_100));
        (first, idle, (s.check(), relay.take()))
    });
    let (fetch, idle) = first_and_idle(first, idle);
    assert_eq!(
        changed.0,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    let conns = changed.1;
    // The budget of issue #14: the identity token in the User-Agent (about 52 bytes)
    // included, an idle check stays within 450 bytes.
    assert!(idle.total() <= 450, "idle check: {idle:?}");
    // The manifest, the delta for this device's running image (none here: a 404), then
    // the image.
    assert_eq!(conns.len(), 3, "{conns:?}");
    let (changed, no_delta, image) = (conns[0], conns[1], conns[2]);
    assert!(no_delta.total() < 1000, "delta 404: {no_delta:?}");
    // The conditional request of an idle check, with the new manifest in the answer.
    assert_eq!(changed.sent, idle.sent);
    let manifest_len = next.manifest.len() as u64;
    assert!(changed.received > manifest_len && changed.total() < manifest_len + 800);
    let ota_len = next.ota.len() as u64;
    assert!(image.received > ota_len && image.received < ota_len + 500);
    eprintln!(
        "wire bytes: idle check {} (request {} + 304 response {}); \
         changed manifest {} (request {} + response {}, manifest {manifest_len}); \
         first fetch {}; delta 404 {}; image {} for a {ota_len}-byte .ota",
        idle.total(),
        idle.sent,
        idle.received,
        changed.total(),
        changed.sent,
        changed.received,
        fetch.total(),
        no_delta.total(),
        image.total(),
    );
}

#[test]
fn idle_check_over_tls_costs_a_handshake_more() {
    let dir = tempfile::tempdir().unwrap();
    let Some(nginx) = Nginx::serve_tls(dir.path()) else {
        return;
    };
    let tls = nginx.tls_url.clone().expect("serve_tls listens for TLS");
    let relay = Relay::start(&tls);
    let mut d = device_polling(&relay, dir.path());
    let (_, (first, idle)) = boot_until_running(&mut d, |s| {
        let first = (s.check(), relay.take());
        (first, (s.check(), relay.take()))
    });
    let (fetch, idle) = first_and_idle(first, idle);
    // A full TLS 1.3 handshake (no session resumption) with a P-256 certificate, then
    // the same conditional GET and 304 as over plain HTTP, encrypted.
    assert!(idle.total() < 2_500, "idle check over TLS: {idle:?}");
    eprintln!(
        "wire bytes over TLS: idle check {} (sent {} + received {}); first fetch {}",
        idle.total(),
        idle.sent,
        idle.received,
        fetch.total(),
    );
}

#[test]
fn a_delta_update_moves_far_fewer_bytes_than_the_full_image() {
    use ota_device_sim::device::Behaviour;
    use ota_testkit::Chip;
    let keys = [public(SIGNER)];
    // Two builds of the same firmware that differ in their version, as a small release.
    let base = firmware_sized("1.0.0", Behaviour::Normal, &keys, Chip::Esp32c3, 200_000);
    let target = firmware_sized("1.1.0", Behaviour::Normal, &keys, Chip::Esp32c3, 200_000);
    let rel = release_of(
        &Spec {
            window_log: Some(20),
            flash_window: true,
            ..Spec::default()
        },
        target,
    );
    let delta = ota_testkit::delta::build_delta(&base, &rel, SIGNER);
    let mut wire = Vec::new();
    for with_delta in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let Some(nginx) = Nginx::serve(dir.path()) else {
            return;
        };
        let relay = Relay::start(&nginx.url);
        publish_in_dir(dir.path(), &rel, Some(1_700_000_000));
        if with_delta {
            std::fs::write(dir.path().join("fw").join(&delta.name), &delta.file).unwrap();
        }
        let host = Host::start(); // only to build the device; never contacted
        let mut d = device_with(&host, RollbackDisabled, &base);
        d.config.manifest_url = format!("{}{MANIFEST_PATH}", relay.url);
        let (_, (r, last)) =
            boot_until_running(&mut d, |s| (s.check(), s.agent.status().last_update));
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.1.0")
            })
        );
        let via = last.unwrap().via;
        let conns = relay.take();
        // The manifest and the delta; without a delta, its 404 and the image.
        let expected = if with_delta { 2 } else { 3 };
        assert_eq!(conns.len(), expected, "{conns:?}");
        // The manifest's connection is the same either way; the rest is the update.
        let update: u64 = conns[1..].iter().map(|c| c.total()).sum();
        wire.push((via, update));
    }
    use ota_agent::status::UpdateVia;
    let [(UpdateVia::Delta, by_delta), (UpdateVia::Full, full)] = wire[..] else {
        panic!("{wire:?}")
    };
    eprintln!(
        "wire bytes of an update ({} B installed): delta {by_delta} (.otad {} B), \
         full image after a delta 404 {full} (.ota {} B)",
        rel.app.len(),
        delta.file.len(),
        rel.ota.len()
    );
    assert!(by_delta * 10 < full, "delta {by_delta} B, full {full} B");
}
