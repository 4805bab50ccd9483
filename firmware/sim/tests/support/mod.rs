//! Shared pieces of the simulator's agent tests: signed releases (built by
//! [`ota_testkit::release`]) of synthetic firmware, published on ota-test-servers' static
//! host (which can misbehave on purpose), and devices; [`boot`] has the lighter fixtures of
//! the boot-logic tests.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ota_agent::bootloader::BootloaderMode;
use ota_agent::download::RetryPolicy;
use ota_agent::status::CheckResult;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{
    Behaviour, BootResult, DeviceConfig, VirtualDevice, create_flash, default_partition_table,
};
use ota_format::{ChipId, TrustedKeyDescriptor, Version};
use ota_testkit::{Chip, TestFirmware};

pub mod boot;

pub use ota_test_servers::static_host::{Fault, StaticHost as Host};
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

/// Publishing a release the way a static host should hold it.
pub trait PublishRelease {
    /// Publishes `release` under `/fw/`: image first, manifest last.
    fn publish(&self, release: &Release);
}

impl PublishRelease for Host {
    fn publish(&self, release: &Release) {
        self.put(&image_path(release), release.ota.clone());
        self.put(MANIFEST_PATH, release.manifest.clone());
    }
}

/// Where [`PublishRelease::publish`] puts a release's image.
pub fn image_path(release: &Release) -> String {
    format!("/fw/{}", release.image_name)
}

/// A host serving the default release and a fresh device (rollback bootloader off)
/// polling it; faults are the test's to add.
pub fn serving_default_release() -> (Host, Release, VirtualDevice) {
    let host = Host::start();
    let rel = release(&Spec::default());
    host.publish(&rel);
    let d = device(&host, BootloaderMode::RollbackDisabled);
    (host, rel, d)
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

/// `--device-id dev-1 --interval INTERVAL --max-checks CHECKS`: how the `run` tests name
/// their device and pace its checks.
pub fn paced<'a>(interval: &'a str, checks: &'a str) -> [&'a str; 6] {
    [
        "--device-id",
        "dev-1",
        "--interval",
        interval,
        "--max-checks",
        checks,
    ]
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

/// One check on a running device that must install `version`, and the reboot that must
/// run it.
#[track_caller]
pub fn assert_updates_to(d: &mut VirtualDevice, version: &str) {
    let (r, running) = check_and_reboot(d);
    assert_eq!(
        r,
        Ok(CheckResult::Installed {
            version: v(version)
        })
    );
    assert_eq!(running, v(version));
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

/// The power-cut scenario: check (installs 1.1.0, from a delta when the host has one),
/// reboot into the trial, confirm. Stops early on a power loss; returns whether it did.
pub fn power_cut_scenario<const W: usize>(d: &mut VirtualDevice<W>) -> bool {
    match d.boot(|s| s.check()).unwrap() {
        BootResult::PowerLost => return true,
        BootResult::Ran { value, .. } => {
            assert_eq!(
                value,
                Ok(CheckResult::Installed {
                    version: v("1.1.0")
                })
            );
        }
        other => panic!("{other:?}"),
    }
    match d.boot(|s| s.agent.status()).unwrap() {
        BootResult::PowerLost => true,
        BootResult::Ran {
            firmware,
            confirmed_trial,
            ..
        } => {
            assert_eq!((firmware.version, confirmed_trial), (v("1.1.0"), true));
            false
        }
        other => panic!("{other:?}"),
    }
}
