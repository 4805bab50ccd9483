//! Shared pieces of the simulator's agent tests: signed releases (built by
//! [`ota_testkit::release`]) of synthetic firmware, a static host over real HTTP that
//! can misbehave on purpose, and devices.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ota_agent::bootloader::BootloaderMode;
use ota_agent::download::RetryPolicy;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{
    Behaviour, BootResult, DeviceConfig, VirtualDevice, create_flash, default_partition_table,
};
use ota_format::{ChipId, TrustedKeyDescriptor, Version};
use ota_testkit::{Chip, TestFirmware};
use sha2::{Digest, Sha256};

pub use ota_testkit::release::{Release, SIGNER, Spec, build as release_of, public_key as public};

pub const ATTACKER: [u8; 32] = [66; 32];
pub const DEVICE_TYPE: &str = "sensor";
pub const FLASH_SIZE: u32 = 0x90000;
pub const SLOT_SIZE: u32 = 0x40000;

/// An ESP32-C3 app image of `version` trusting `keys`, with a behaviour marker.
pub fn firmware(version: &str, behaviour: Behaviour, keys: &[[u8; 32]], chip: Chip) -> Vec<u8> {
    firmware_sized(version, behaviour, keys, chip, 40_000)
}

/// [`firmware`] with `payload` bytes of code and data filler.
pub fn firmware_sized(
    version: &str,
    behaviour: Behaviour,
    keys: &[[u8; 32]],
    chip: Chip,
    payload: usize,
) -> Vec<u8> {
    let mut fw = TestFirmware::new(chip)
        .version(version)
        .project_name(DEVICE_TYPE)
        .payload_size(payload)
        .seed(version.len() as u64 * 31 + u64::from(version.as_bytes()[version.len() - 1]));
    if !keys.is_empty() {
        fw = fw.trusted_keys(keys);
    }
    if let Some(marker) = behaviour.marker() {
        fw = fw.marker(marker);
    }
    fw.app_image()
}

pub fn app(version: &str) -> Vec<u8> {
    firmware(version, Behaviour::Normal, &[public(SIGNER)], Chip::Esp32c3)
}

/// What a release's new firmware is; the default runs normally, trusts [`SIGNER`] and
/// carries 40 000 bytes of filler.
#[derive(Clone)]
pub struct NewFirmware {
    pub behaviour: Behaviour,
    /// Keys in the new firmware's descriptor (default: the signer).
    pub keys: Option<Vec<[u8; 32]>>,
    /// Code and data filler of the new firmware, bytes.
    pub payload_size: usize,
}

impl Default for NewFirmware {
    fn default() -> Self {
        NewFirmware {
            behaviour: Behaviour::Normal,
            keys: None,
            payload_size: 40_000,
        }
    }
}

/// A release of the default new firmware, built and signed as `spec` says.
pub fn release(spec: &Spec) -> Release {
    release_with(spec, &NewFirmware::default())
}

/// A release of `new` (for `spec`'s version and chip), built and signed as `spec` says.
pub fn release_with(spec: &Spec, new: &NewFirmware) -> Release {
    let keys = new.keys.clone().unwrap_or_else(|| vec![public(SIGNER)]);
    let chip = if spec.chip == ChipId(5) {
        Chip::Esp32c3
    } else {
        Chip::Esp32c6
    };
    let app = firmware_sized(spec.version, new.behaviour, &keys, chip, new.payload_size);
    release_of(spec, app)
}

/// How the server answers one request for a path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Close the connection after this many body bytes.
    DropAfter(usize),
    /// Ignore `Range`: 200 with the whole file.
    IgnoreRange,
    /// Declare the full length but send only this many bytes, then close.
    Truncate(usize),
    /// Send this many extra bytes after the declared body.
    Longer(usize),
    /// Sleep this long between 1 KiB pieces.
    Slow(Duration),
    /// Flip a bit of the byte at this file offset.
    WrongByte(usize),
    /// Answer with this status and an empty body.
    Status(u16),
    /// Redirect (302) to this absolute URL.
    Redirect(String),
    /// Say nothing at all until the client gives up.
    Silent(Duration),
    /// No `Content-Length`: the file, then garbage until the client hangs up.
    Endless,
    /// `100 Continue` heads, one every few milliseconds, until the client hangs up (or
    /// 30 s pass).
    EndlessInterim,
    /// The answer's head one byte at a time, this far apart, then the body.
    TrickleHead(Duration),
    /// Ignore `Range` (200 with the whole file) and close after this many body bytes.
    IgnoreRangeDropAfter(usize),
}

#[derive(Default)]
struct HostState {
    files: HashMap<String, Vec<u8>>,
    /// Faults per path, applied to successive requests (then normal service).
    faults: HashMap<String, Vec<Fault>>,
    log: Vec<(String, Option<String>, u16)>,
}

/// A static host on 127.0.0.1 serving exact paths with ETags and ranges, which can be
/// told to misbehave for the next requests of a path.
#[derive(Clone)]
pub struct Host {
    pub base: String,
    state: Arc<Mutex<HostState>>,
    pub connections: Arc<AtomicUsize>,
}

impl Host {
    pub fn start() -> Host {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let host = Host {
            base,
            state: Arc::default(),
            connections: Arc::default(),
        };
        let h = host.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let h = h.clone();
                h.connections.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = h.serve(stream);
                });
            }
        });
        host
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.into(), bytes);
    }

    pub fn fault(&self, path: &str, faults: Vec<Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(path.into(), faults);
    }

    /// (path, range header, status) of every request so far.
    pub fn log(&self) -> Vec<(String, Option<String>, u16)> {
        // A request is logged once its answer is written, just after the client got it.
        for _ in 0..1000 {
            let log = self.state.lock().unwrap().log.clone();
            if log.len() >= self.connections.load(Ordering::SeqCst) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests_for(&self, path: &str) -> usize {
        self.log().iter().filter(|(p, _, _)| p == path).count()
    }

    /// Publishes a release under `/fw/`: image first, manifest last.
    pub fn publish(&self, release: &Release) {
        self.put(&format!("/fw/{}", release.image_name), release.ota.clone());
        self.put(MANIFEST_PATH, release.manifest.clone());
    }

    fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut range = None;
        let mut if_none_match = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or(("", ""));
            match name.to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_owned()),
                "if-none-match" => if_none_match = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let (file, fault) = {
            let mut st = self.state.lock().unwrap();
            let fault = st
                .faults
                .get_mut(&path)
                .and_then(|f| (!f.is_empty()).then(|| f.remove(0)));
            (st.files.get(&path).cloned(), fault)
        };
        let mut status = 200;
        let result = self.respond(
            &mut stream,
            file,
            fault,
            range.as_deref(),
            if_none_match,
            &mut status,
        );
        self.state.lock().unwrap().log.push((path, range, status));
        result
    }

    fn respond(
        &self,
        stream: &mut TcpStream,
        file: Option<Vec<u8>>,
        fault: Option<Fault>,
        range: Option<&str>,
        if_none_match: Option<String>,
        status: &mut u16,
    ) -> std::io::Result<()> {
        let head = |s: &mut TcpStream, code: u16, extra: &str, len: usize| {
            let text = format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
            );
            match &fault {
                Some(Fault::TrickleHead(pause)) => {
                    for b in text.bytes() {
                        s.write_all(&[b])?;
                        std::thread::sleep(*pause);
                    }
                    Ok(())
                }
                _ => s.write_all(text.as_bytes()),
            }
        };
        match &fault {
            Some(Fault::Status(code)) => {
                *status = *code;
                return head(stream, *code, "", 0);
            }
            Some(Fault::Redirect(to)) => {
                *status = 302;
                return head(stream, 302, &format!("Location: {to}\r\n"), 0);
            }
            Some(Fault::Silent(d)) => {
                std::thread::sleep(*d);
                return Ok(());
            }
            Some(Fault::EndlessInterim) => {
                let until = std::time::Instant::now() + Duration::from_secs(30);
                while std::time::Instant::now() < until {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                    std::thread::sleep(Duration::from_millis(2));
                }
                return Ok(());
            }
            _ => {}
        }
        let Some(mut file) = file else {
            *status = 404;
            return head(stream, 404, "", 0);
        };
        let etag = format!("\"{}\"", hex(&Sha256::digest(&file)[..8]));
        if if_none_match.as_deref() == Some(etag.as_str()) {
            *status = 304;
            return write!(
                stream,
                "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
            );
        }
        if let Some(Fault::WrongByte(at)) = fault
            && at < file.len()
        {
            file[at] ^= 0x10;
        }
        if let Some(Fault::Endless) = fault {
            write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            stream.write_all(&file)?;
            for _ in 0..4096 {
                stream.write_all(&[0x5A; 1024])?;
            }
            return Ok(());
        }
        let total = file.len();
        let from = match (range, &fault) {
            (_, Some(Fault::IgnoreRange | Fault::IgnoreRangeDropAfter(_))) | (None, _) => None,
            (Some(r), _) => r
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok()),
        };
        let body: &[u8] = match from {
            Some(f) if f >= total => {
                *status = 416;
                return head(
                    stream,
                    416,
                    &format!("Content-Range: bytes */{total}\r\n"),
                    0,
                );
            }
            Some(f) => {
                *status = 206;
                head(
                    stream,
                    206,
                    &format!(
                        "ETag: {etag}\r\nContent-Range: bytes {f}-{}/{total}\r\n",
                        total - 1
                    ),
                    total - f,
                )?;
                &file[f..]
            }
            None => {
                head(
                    stream,
                    200,
                    &format!("ETag: {etag}\r\nAccept-Ranges: bytes\r\n"),
                    total,
                )?;
                &file[..]
            }
        };
        match fault {
            Some(Fault::DropAfter(n) | Fault::Truncate(n) | Fault::IgnoreRangeDropAfter(n)) => {
                stream.write_all(&body[..n.min(body.len())])?;
                stream.flush()?;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                Ok(())
            }
            Some(Fault::Longer(n)) => {
                stream.write_all(body)?;
                stream.write_all(&vec![0xAB; n])
            }
            Some(Fault::Slow(pause)) => {
                for piece in body.chunks(1024) {
                    stream.write_all(piece)?;
                    stream.flush()?;
                    std::thread::sleep(pause);
                }
                Ok(())
            }
            _ => stream.write_all(body),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub const MANIFEST_PATH: &str = "/fw/sensor.stable.manifest";

/// A host publishing the default release (1.1.0) and a second one publishing 1.2.0
/// (counter 2, sequence 3), for updates that continue after the first.
pub fn hosts_with_two_releases() -> (Host, Host) {
    let host = Host::start();
    host.publish(&release(&Spec::default()));
    let next = Host::start();
    next.publish(&release(&Spec {
        version: "1.2.0",
        sequence: 3,
        counter: 2,
        ..Spec::default()
    }));
    (host, next)
}

/// `ota-device-sim run` of a sensor with `flash_size` bytes of flash in
/// `dir/flash.bin`, first flashed with 1.0.0 (written to `dir/app.bin`), checking
/// `manifest_url`.
pub fn sim_run(dir: &Path, flash_size: &str, manifest_url: &str) -> Command {
    let app_path = dir.join("app.bin");
    std::fs::write(&app_path, app("1.0.0")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ota-device-sim"));
    command
        .args(["run", "--flash"])
        .arg(dir.join("flash.bin"))
        .arg("--app")
        .arg(&app_path)
        .args(["--flash-size", flash_size, "--device-type", "sensor"])
        .args(["--manifest-url", manifest_url]);
    command
}

/// Starts the simulator with its status server on a free port; returns the process, its
/// output after the first line, and the status server's `host:port` (the first line).
pub fn spawn_with_status(
    command: &mut Command,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = command
        .args(["--status-addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("status-url http://")
        .and_then(|u| u.strip_suffix("/ota/status"))
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    (child, out, addr)
}

/// Publishes `release` in a directory a web server serves, as a static host should: the
/// image under `<root>/fw/` first, then the manifest at [`MANIFEST_PATH`] by rename. With
/// `mtime_secs`, the manifest gets that modification time: nginx's ETag is mtime and
/// size, and every manifest has the same size.
pub fn publish_in_dir(root: &Path, release: &Release, mtime_secs: Option<u64>) {
    let fw = root.join("fw");
    std::fs::create_dir_all(&fw).unwrap();
    std::fs::write(fw.join(&release.image_name), &release.ota).unwrap();
    let tmp = fw.join(".manifest.tmp");
    std::fs::write(&tmp, &release.manifest).unwrap();
    if let Some(secs) = mtime_secs {
        let file = std::fs::File::options().write(true).open(&tmp).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }
    std::fs::rename(tmp, root.join(MANIFEST_PATH.trim_start_matches('/'))).unwrap();
}

/// One `GET` on a fresh connection to the simulator's status server: the body of a 200.
pub fn get_body(addr: &str, path: &str) -> Option<String> {
    let addr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: sim\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A fresh device running `1.0.0` (trusting [`SIGNER`]) from `ota_0`.
pub fn device(host: &Host, mode: BootloaderMode) -> VirtualDevice {
    device_with(host, mode, &app("1.0.0"))
}

pub fn device_with(host: &Host, mode: BootloaderMode, first_app: &[u8]) -> VirtualDevice {
    device_at(&host.url(MANIFEST_PATH), mode, first_app)
}

/// A fresh device polling `manifest_url`.
pub fn device_at(manifest_url: &str, mode: BootloaderMode, first_app: &[u8]) -> VirtualDevice {
    let table = default_partition_table(FLASH_SIZE, SLOT_SIZE).unwrap();
    let flash = create_flash(first_app, &table, FLASH_SIZE).unwrap();
    let mut config = DeviceConfig::new(manifest_url, "device-42");
    config.bootloader = mode;
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 10,
        max_delay_ms: 50,
        timeout_ms: 2_000,
        head_timeout_ms: 5_000,
        deadline_ms: 60_000,
        manifest_deadline_ms: 10_000,
        check_deadline_ms: 70_000,
        ..RetryPolicy::default()
    };
    VirtualDevice::new(flash, config)
}

/// Boots until the application runs (through crash loops and rollbacks); returns the
/// running version, whether the boot confirmed a trial, and `app`'s value.
pub fn boot_until_running<const W: usize, R>(
    d: &mut VirtualDevice<W>,
    mut app: impl FnMut(&mut ota_device_sim::device::Session<'_, W>) -> R,
) -> (Version, R) {
    for _ in 0..20 {
        match d.boot(&mut app).unwrap() {
            BootResult::Ran {
                firmware, value, ..
            } => return (firmware.version, value),
            BootResult::PowerLost => panic!("power lost without a cut"),
            BootResult::NoBootableApp => panic!("nothing boots"),
            _ => {}
        }
    }
    panic!("device never came up")
}

/// One check on a running device: installs and reboots into the new image if there
/// is one. Returns the check result and the version running afterwards.
pub fn check_and_reboot<const W: usize>(
    d: &mut VirtualDevice<W>,
) -> (
    Result<ota_agent::status::CheckResult, ota_agent::agent::AgentError>,
    Version,
) {
    let (_, r) = boot_until_running(d, |s| s.check());
    let (v, ()) = boot_until_running(d, |_| ());
    (r, v)
}

/// One check on a running device, and how long it took (for deadline tests).
pub fn timed_check(
    d: &mut VirtualDevice,
) -> (
    Result<ota_agent::status::CheckResult, ota_agent::agent::AgentError>,
    Duration,
) {
    let (_, r) = boot_until_running(d, |s| {
        let started = std::time::Instant::now();
        (s.check(), started.elapsed())
    });
    r
}

pub fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// The keys descriptor of an image, for assertions.
pub fn keys_of(image: &[u8]) -> Vec<[u8; 32]> {
    TrustedKeyDescriptor::find_in(image)
        .unwrap()
        .map(|d| d.keys().iter().map(|k| k.public_key).collect())
        .unwrap_or_default()
}

pub fn flash_of(d: &VirtualDevice) -> SimFlash {
    d.flash.clone()
}

pub fn read_all(mut s: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}
