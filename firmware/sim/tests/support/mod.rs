//! Shared pieces of the simulator's agent tests: signed releases made from synthetic
//! firmware, a static host over real HTTP that can misbehave on purpose, and devices.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ota_agent::bootloader::BootloaderMode;
use ota_agent::download::RetryPolicy;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{
    Behaviour, BootResult, DeviceConfig, VirtualDevice, create_flash, default_partition_table,
};
use ota_format::{
    Channel, ChipId, Compression, DeviceType, FULL_ROLLOUT, ImageInfo, ImageName, KeyId, Manifest,
    TrustedKeyDescriptor, Version,
};
use ota_testkit::{Chip, TestFirmware};
use sha2::{Digest, Sha256};

pub const SIGNER: [u8; 32] = [7; 32];
pub const ATTACKER: [u8; 32] = [66; 32];
pub const DEVICE_TYPE: &str = "sensor";
pub const FLASH_SIZE: u32 = 0x90000;
pub const SLOT_SIZE: u32 = 0x40000;

pub fn key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

pub fn public(seed: [u8; 32]) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

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

/// How to build a release; the default is a correct one.
#[derive(Clone)]
pub struct Spec {
    pub version: &'static str,
    pub counter: u64,
    pub sequence: u64,
    pub window_log: Option<u8>,
    pub signer: [u8; 32],
    pub manifest_signer: Option<[u8; 32]>,
    pub device_type: &'static str,
    pub chip: ChipId,
    pub behaviour: Behaviour,
    pub image_name: Option<&'static str>,
    /// Bytes appended to the `.ota` file after signing its header, counted in the
    /// manifest's file size.
    pub trailing: usize,
    /// Keys in the new firmware's descriptor (default: the signer).
    pub new_keys: Option<Vec<[u8; 32]>>,
    /// Code and data filler of the new firmware, bytes.
    pub payload_size: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            version: "1.1.0",
            counter: 1,
            sequence: 2,
            window_log: Some(12),
            signer: SIGNER,
            manifest_signer: None,
            device_type: DEVICE_TYPE,
            chip: ChipId(5),
            behaviour: Behaviour::Normal,
            image_name: None,
            trailing: 0,
            new_keys: None,
            payload_size: 40_000,
        }
    }
}

pub struct Release {
    pub app: Vec<u8>,
    pub ota: Vec<u8>,
    pub manifest: Vec<u8>,
    pub image_name: String,
}

fn compress(app: &[u8], window_log: u8) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(u32::from(
        window_log,
    )))
    .unwrap();
    enc.set_pledged_src_size(Some(app.len() as u64)).unwrap();
    enc.write_all(app).unwrap();
    enc.finish().unwrap()
}

pub fn release(spec: &Spec) -> Release {
    let keys = spec
        .new_keys
        .clone()
        .unwrap_or_else(|| vec![public(SIGNER)]);
    let chip = if spec.chip == ChipId(5) {
        Chip::Esp32c3
    } else {
        Chip::Esp32c6
    };
    let app = firmware_sized(spec.version, spec.behaviour, &keys, chip, spec.payload_size);
    release_of(spec, app)
}

pub fn release_of(spec: &Spec, app: Vec<u8>) -> Release {
    let (payload, compression) = match spec.window_log {
        None => (app.clone(), Compression::None),
        Some(log) => (compress(&app, log), Compression::Zstd { window_log: log }),
    };
    let signer = key(spec.signer);
    let info = ImageInfo {
        device_type: DeviceType::new(spec.device_type).unwrap(),
        chip: spec.chip,
        version: Version::parse(spec.version).unwrap(),
        security_counter: spec.counter,
        created: 1_700_000_000,
        image_size: app.len() as u32,
        payload_size: payload.len() as u32,
        compression,
        payload_sha256: Sha256::digest(&payload).into(),
        image_sha256: Sha256::digest(&app).into(),
        key_id: KeyId::of(&signer.verifying_key().to_bytes()),
        flags: 0,
    };
    let header = info.sign(&signer).unwrap();
    let mut ota = header.to_vec();
    ota.extend_from_slice(&payload);
    ota.extend(std::iter::repeat_n(0u8, spec.trailing));
    let image_name = spec
        .image_name
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}-{}.ota", spec.device_type, spec.version));
    let manifest_signer = key(spec.manifest_signer.unwrap_or(spec.signer));
    let manifest = Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel: Channel::new("stable").unwrap(),
        version: info.version,
        security_counter: info.security_counter,
        sequence: spec.sequence,
        created: 1_700_000_000,
        not_after: None,
        rollout: FULL_ROLLOUT,
        image_file_size: ota.len() as u32,
        image_size: info.image_size,
        image_header_sha256: Sha256::digest(header).into(),
        min_running_version: None,
        allow_downgrade: false,
        image_name: ImageName::new(&image_name).unwrap(),
        key_id: KeyId::of(&manifest_signer.verifying_key().to_bytes()),
    }
    .sign(&manifest_signer)
    .unwrap();
    Release {
        app,
        ota,
        manifest: manifest.to_vec(),
        image_name,
    }
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
            write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
            )
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
            (_, Some(Fault::IgnoreRange)) | (None, _) => None,
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
            Some(Fault::DropAfter(n)) | Some(Fault::Truncate(n)) => {
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

/// A fresh device running `1.0.0` (trusting [`SIGNER`]) from `ota_0`.
pub fn device(host: &Host, mode: BootloaderMode) -> VirtualDevice {
    device_with(host, mode, &app("1.0.0"))
}

pub fn device_with(host: &Host, mode: BootloaderMode, first_app: &[u8]) -> VirtualDevice {
    let table = default_partition_table(FLASH_SIZE, SLOT_SIZE).unwrap();
    let flash = create_flash(first_app, &table, FLASH_SIZE).unwrap();
    let mut config = DeviceConfig::new(&host.url(MANIFEST_PATH), "device-42");
    config.bootloader = mode;
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 10,
        max_delay_ms: 50,
        timeout_ms: 2_000,
        deadline_ms: 60_000,
    };
    VirtualDevice::new(flash, config)
}

/// Boots until the application runs (through crash loops and rollbacks); returns the
/// running version, whether the boot confirmed a trial, and `app`'s value.
pub fn boot_until_running<R>(
    d: &mut VirtualDevice,
    mut app: impl FnMut(&mut ota_device_sim::device::Session<'_>) -> R,
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
pub fn check_and_reboot(
    d: &mut VirtualDevice,
) -> (
    Result<ota_agent::status::CheckResult, ota_agent::agent::AgentError>,
    Version,
) {
    let (_, r) = boot_until_running(d, |s| s.check());
    let (v, ()) = boot_until_running(d, |_| ());
    (r, v)
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
