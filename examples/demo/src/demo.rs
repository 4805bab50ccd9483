//! The story a new user runs first (`scripts/demo.sh`): a throwaway key, a firmware that
//! trusts it, a signed release on a local static host, a fleet of simulated devices
//! updating to v2, and a broken v3 that every device rolls back from; then the fleet's
//! state as `ota-sign fleet status` reads it from the host's own access log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ota_agent::bootloader::BootloaderMode;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{Behaviour, state_region};
use ota_device_sim::layout::Layout;
use ota_format::DeviceType;

use crate::firmware::{self, Build};
use crate::fleet::{Fleet, FleetSpec};
use crate::host::{Host, HostKind};
use crate::tools::{OtaSign, ota_sign_path};
use crate::view;

/// The device type of the demo fleet.
pub const DEVICE_TYPE: &str = "demo-sensor";
const CHANNEL: &str = "stable";

/// Settings of one demo run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Devices in the fleet.
    pub devices: usize,
    /// Mean check interval.
    pub interval: Duration,
    /// Build the real ESP32-C3 firmware instead of synthesizing one.
    pub real_firmware: bool,
    /// Work directory (kept); a temporary one when `None`.
    pub work: Option<PathBuf>,
    /// Which static server.
    pub host: HostKind,
    /// Longest wait for each phase.
    pub timeout: Duration,
}

/// Why the demo failed.
pub type DemoError = String;

fn step(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

struct Paths {
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Paths {
    fn new(work: Option<&Path>) -> Result<Paths, DemoError> {
        match work {
            Some(dir) => {
                if dir.exists() && dir.read_dir().map_err(|e| e.to_string())?.next().is_some() {
                    return Err(format!(
                        "{} is not empty (the demo needs a fresh work directory)",
                        dir.display()
                    ));
                }
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                Ok(Paths {
                    root: dir.to_path_buf(),
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("ota-demo-")
                    .tempdir()
                    .map_err(|e| e.to_string())?;
                Ok(Paths {
                    root: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Runs the demo.
pub fn run(opts: &DemoOptions) -> Result<(), DemoError> {
    let bin = ota_sign_path().ok_or(
        "ota-sign not found: build it first (`cargo build --release -p ota-sign`) or set OTA_SIGN_BIN",
    )?;
    let tool = OtaSign::new(bin);
    let paths = Paths::new(opts.work.as_deref())?;
    for d in ["keys", "build", "dist", "repo", "www"] {
        std::fs::create_dir_all(paths.at(d)).map_err(|e| e.to_string())?;
    }
    let root = &paths.root;
    println!("ota-sign demo: work directory {}", root.display());

    step(1, "A throwaway signing key (unencrypted: demo only)");
    tool.run(root, ["keygen", "--no-encrypt", "keys/demo"])
        .map_err(|e| e.to_string())?;
    let key_hex = tool
        .run(root, ["pubkey", "--format", "hex", "keys/demo.pub"])
        .map_err(|e| e.to_string())?
        .trim()
        .to_owned();
    let key = parse_key_hex(&key_hex)?;
    println!("  public key {key_hex}");

    step(2, "Example firmware that trusts this key");
    let builds = build_firmware(opts, root, &key, &key_hex)?;

    step(3, "Package v1 and v2 (signed images), and a broken v3");
    let ota = |v: &str| format!("dist/{DEVICE_TYPE}-{v}.ota");
    for (version, build) in &builds {
        let mut args = vec![
            "package".to_owned(),
            "--key".into(),
            "keys/demo.key".into(),
            "--device-type".into(),
            DEVICE_TYPE.into(),
            "--chip".into(),
            "esp32c3".into(),
        ];
        args.extend(build.package_args());
        args.extend(["-o".into(), ota(version)]);
        tool.run(root, &args).map_err(|e| e.to_string())?;
    }

    step(
        4,
        "Full flash images for the devices (bootloader layout, otadata, v1 in ota_0)",
    );
    let flash = flash_image(&tool, root, &ota("1.0.0"), opts.real_firmware)?;

    step(
        5,
        "Release v1 to the local repository and publish it to the web root",
    );
    release(&tool, root, &ota("1.0.0"))?;
    let host = Host::start(opts.host, &paths.at("www"), opts.devices * 2 + 64)?;
    let manifest_url = format!("{}/{DEVICE_TYPE}.{CHANNEL}.manifest", host.url());
    println!(
        "  serving {} with {}",
        paths.at("www").display(),
        host.name()
    );
    println!("  devices poll {manifest_url}");

    step(
        6,
        &format!(
            "{} simulated ESP32-C3 devices boot v1 and poll every {:.1}s (±10%)",
            opts.devices,
            opts.interval.as_secs_f64()
        ),
    );
    let spec = FleetSpec {
        manifest_url,
        device_type: DeviceType::new(DEVICE_TYPE).ok_or("bad device type")?,
        interval: opts.interval,
        id_prefix: "dev".into(),
        bootloader: BootloaderMode::RollbackDisabled,
    };
    let fleet = Fleet::start(&spec, vec![flash; opts.devices]).map_err(|e| e.to_string())?;
    if !view::follow(&fleet, "booting v1", opts.timeout, |v| {
        v.settled_on("1.0.0") && v.checks > 0
    }) {
        return Err(fail(&fleet, "the fleet did not come up on v1"));
    }

    step(
        7,
        "Release and publish v2 (release also makes the delta from v1): the fleet updates",
    );
    let before = fleet.snapshot();
    release(&tool, root, &ota("2.0.0"))?;
    let published = Instant::now();
    if !view::follow(&fleet, "updating to v2", opts.timeout, |v| {
        v.settled_on("2.0.0")
    }) {
        return Err(fail(&fleet, "the fleet did not converge on v2"));
    }
    let converged = published.elapsed();
    print!("{}", view::table(&fleet.snapshot(), &before, published));
    println!(
        "  all {} devices run v2, {:.1}s after the publish (check interval {:.1}s)",
        fleet.len(),
        converged.as_secs_f64(),
        opts.interval.as_secs_f64()
    );
    delta_summary(root, &fleet.snapshot(), &before, &ota("2.0.0"))?;

    step(
        8,
        "Release and publish a broken v3 (its health check fails)",
    );
    let before = fleet.snapshot();
    release(&tool, root, &ota("3.0.0"))?;
    let published = Instant::now();
    // Rolled back, confirmed v2 again, and checked since: the device keeps working (its
    // first check refuses v3, later ones cost a 304).
    let rolled_back = |v: &crate::fleet::DeviceView| {
        v.settled_on("2.0.0")
            && v.rolled_back_releases >= 1
            && v.checks_this_boot >= 1
            && v.last_check != "error"
    };
    if !view::follow(&fleet, "v3 trial and rollback", opts.timeout, rolled_back) {
        return Err(fail(&fleet, "the fleet did not roll back to v2"));
    }
    let views = fleet.stop();
    print!("{}", view::table(&views, &before, published));
    println!(
        "  every device installed v3, failed its trial boot, went back to v2 and keeps \
         checking (it will not retry v3) — {:.1}s after the publish",
        published.elapsed().as_secs_f64()
    );

    step(
        9,
        "Fleet status from the host's access log (no server of our own: each request's \
         User-Agent says who asks)",
    );
    fleet_status(&tool, root, &host, views.len())?;

    let stats = host.stats();
    println!(
        "\n== Done. {} served {} requests ({} answered 304 Not Modified, {} ranges), {} in all.",
        host.name(),
        stats.requests,
        stats.not_modified,
        stats.partial,
        view::bytes(stats.bytes_sent)
    );
    if opts.work.is_some() {
        println!(
            "   Keys, images, the release tree and the web root are in {}",
            root.display()
        );
    }
    Ok(())
}

/// `ota-sign fleet status` over the host's access log and the release tree: shows the
/// report and checks that it tells the story the devices lived (v2 on every device, v3
/// downloaded and rolled back by every device).
fn fleet_status(tool: &OtaSign, root: &Path, host: &Host, devices: usize) -> Result<(), DemoError> {
    let log = host.access_log();
    let log = log.to_string_lossy();
    let text = tool
        .run(
            root,
            [
                "fleet",
                "status",
                &log,
                "--repo",
                "repo",
                "--html",
                "fleet.html",
            ],
        )
        .map_err(|e| e.to_string())?;
    print!("{}", crate::tools::indent(&text));
    let mut quiet = tool.clone();
    quiet.echo = false;
    let json = quiet
        .run(root, ["fleet", "status", &log, "--repo", "repo", "--json"])
        .map_err(|e| e.to_string())?;
    let report: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("fleet status --json: {e}"))?;
    let release = |version: &str| {
        report["releases"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["version"] == version))
            .cloned()
            .unwrap_or_default()
    };
    let (v2, v3) = (release("2.0.0"), release("3.0.0"));
    let all = serde_json::Value::from(devices);
    if v2["running"] != all || v3["downloaded_not_running"] != all || v3["failed"] != all {
        return Err(format!(
            "fleet status does not show v2 on all {devices} devices and v3 rolled back \
             everywhere:\n{json}"
        ));
    }
    println!(
        "  v2 reached all {devices} devices; all {devices} downloaded v3, failed its trial \
         and went back to v2. The same as a page: {}",
        root.join("fleet.html").display()
    );
    Ok(())
}

/// Bytes per device before deltas (the full `.ota`) and after (what each device fetched):
/// `release` made a delta from v1 to v2, and every device running v1 took it.
fn delta_summary(
    root: &Path,
    views: &[crate::fleet::DeviceView],
    before: &[crate::fleet::DeviceView],
    full_image: &str,
) -> Result<(), DemoError> {
    let full = std::fs::metadata(root.join(full_image))
        .map_err(|e| format!("{full_image}: {e}"))?
        .len();
    let by_delta = views
        .iter()
        .filter(|v| v.last_via.as_deref() == Some("delta"))
        .count();
    let fetched: u64 = views
        .iter()
        .zip(before)
        .map(|(v, b)| v.image_bytes - b.image_bytes)
        .sum();
    let per_device = fetched / views.len().max(1) as u64;
    println!(
        "  {by_delta} of {} devices updated by delta: {} per device instead of the full \
         image's {} ({:.1} %); {} for the fleet instead of {}",
        views.len(),
        view::bytes(per_device),
        view::bytes(full),
        per_device as f64 * 100.0 / full.max(1) as f64,
        view::bytes(fetched),
        view::bytes(full * views.len() as u64),
    );
    if by_delta != views.len() {
        return Err(format!(
            "only {by_delta} of {} devices updated by delta",
            views.len()
        ));
    }
    Ok(())
}

fn fail(fleet: &Fleet, what: &str) -> String {
    let mut out = format!("{what}; devices not there:\n");
    for v in fleet.snapshot() {
        out.push_str(&format!(
            "  {} runs {:?} ({}, {}), last check {}, error {:?}, fatal {:?}\n",
            v.id, v.version, v.slot, v.update, v.last_check, v.last_error, v.fatal
        ));
    }
    out
}

fn parse_key_hex(hex: &str) -> Result<[u8; 32], DemoError> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`ota-sign pubkey --format hex` printed {hex:?}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("`ota-sign pubkey --format hex` printed {hex:?}"))
}

/// v1, v2 (good) and v3 (fails its health check), as package inputs.
fn build_firmware(
    opts: &DemoOptions,
    root: &Path,
    key: &[u8; 32],
    key_hex: &str,
) -> Result<Vec<(&'static str, Build)>, DemoError> {
    let synth = |version: &str, behaviour| -> Result<Build, DemoError> {
        let path = root.join(format!("build/{DEVICE_TYPE}-{version}.bin"));
        let image = firmware::synthesize(DEVICE_TYPE, version, &[*key], 96 * 1024, behaviour);
        std::fs::write(&path, image).map_err(|e| e.to_string())?;
        Ok(Build::AppImage(path))
    };
    let real = if opts.real_firmware {
        match (
            firmware::real_firmware_dir(),
            firmware::riscv_target_installed(),
        ) {
            (Some(dir), true) => Some(dir),
            (None, _) => {
                return Err("--real-firmware: firmware/esp32c3 is not in this checkout".into());
            }
            (_, false) => {
                return Err("--real-firmware: install the target first: \
                            rustup target add riscv32imc-unknown-none-elf"
                    .into());
            }
        }
    } else {
        None
    };
    let mut builds = Vec::new();
    match real {
        Some(dir) => {
            println!(
                "  using the REAL ESP32-C3 firmware (firmware/esp32c3, esp-hal, riscv32imc) built \
                 with OTA_TRUSTED_KEYS={key_hex}"
            );
            let target_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
            for version in ["1.0.0", "2.0.0"] {
                println!("  building v{version} (the first build takes a few minutes)...");
                let out = root.join(format!("build/{DEVICE_TYPE}-{version}.elf"));
                firmware::build_real(&dir, &target_root, DEVICE_TYPE, version, key_hex, &out)?;
                builds.push((version_str(version), Build::Elf(out)));
            }
            println!(
                "  v3 is a synthesized ESP32-C3 app marked to fail its health check (a real \
                 firmware cannot be told to fail on purpose)"
            );
        }
        None => {
            println!(
                "  using a SYNTHESIZED ESP32-C3 app image (ota-testkit: app descriptor, trusted-key \
                 descriptor, 96 KiB of firmware-like code); pass --real-firmware to build firmware/esp32c3"
            );
            builds.push(("1.0.0", synth("1.0.0", Behaviour::Normal)?));
            builds.push(("2.0.0", synth("2.0.0", Behaviour::Normal)?));
        }
    }
    builds.push(("3.0.0", synth("3.0.0", Behaviour::HealthFail)?));
    Ok(builds)
}

fn version_str(v: &str) -> &'static str {
    match v {
        "1.0.0" => "1.0.0",
        _ => "2.0.0",
    }
}

/// `ota-sign release` into the repository, then `ota-sign publish` to the web root.
fn release(tool: &OtaSign, root: &Path, image: &str) -> Result<(), DemoError> {
    tool.release_and_publish(root, "keys/demo.key", CHANNEL, image, None)
        .map_err(|e| e.to_string())
}

/// The devices' flash: the full flash image `ota-sign flash --output` writes, exactly as
/// a factory would flash a real device, checked to carry the agent's state partition.
fn flash_image(tool: &OtaSign, root: &Path, v1: &str, large: bool) -> Result<SimFlash, DemoError> {
    let out = root.join("build/flash.bin");
    let size = if large { "4MB" } else { "1MB" };
    tool.run(
        root,
        [
            "flash",
            "--image",
            v1,
            "--pubkey",
            "keys/demo.pub",
            "--flash-size",
            size,
            "--output",
            "build/flash.bin",
        ],
    )
    .map_err(|e| e.to_string())?;
    let mut flash = SimFlash::load(&out).map_err(|e| e.to_string())?;
    usable(&mut flash).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(flash)
}

/// Whether the simulator can run the agent on this flash (it needs the agent's state
/// partition beside otadata).
fn usable(flash: &mut SimFlash) -> Result<(), std::io::Error> {
    let layout = Layout::read(flash).map_err(|e| std::io::Error::other(e.to_string()))?;
    state_region(&layout).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}
