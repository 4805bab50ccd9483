//! The fleet benchmark: N simulated devices polling one nginx. For each fleet size it
//! measures the time from publish to 100 % updated (against the check interval), the
//! bytes of an idle check, the bytes nginx served (from its access log), and the peak
//! memory of this process (which runs every device); then a 10 % staged rollout and its
//! raise to 100 %.
//!
//! Releases are made with the real `ota-sign` (keygen, package, release, publish).

use std::path::Path;
use std::time::{Duration, Instant};

use ota_agent::bootloader::BootloaderMode;
use ota_device_sim::device::{Behaviour, create_flash, default_partition_table};
use ota_format::DeviceType;

use crate::firmware;
use crate::fleet::{DeviceView, Fleet, FleetSpec, peak_rss};
use crate::host::{Host, HostKind, HostStats};
use crate::tools::{OtaSign, ota_sign_path};
use crate::view;

const DEVICE_TYPE: &str = "bench-node";

/// `ota-demo bench` arguments.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Fleet sizes to run, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    devices: Vec<usize>,
    /// Seconds between a device's checks (each wait varies by ±10%)
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Firmware payload in KiB (the app image is a little larger)
    #[arg(long, default_value_t = 128)]
    payload_kib: usize,
    /// Staged rollout percentage to measure
    #[arg(long, default_value_t = 10)]
    rollout: u8,
    /// Append the results as Markdown table rows to this file
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// One fleet size's numbers.
#[derive(Debug)]
struct Row {
    devices: usize,
    interval: f64,
    image_bytes: u64,
    converge: f64,
    p50: f64,
    p90: f64,
    idle_response: f64,
    idle_request: f64,
    update_served: u64,
    update_requests: u64,
    staged_updated: usize,
    staged_expected: f64,
    raise_converge: f64,
    total_served: u64,
    total_requests: u64,
    peak_rss: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    let host_kind = HostKind::Nginx;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err("--interval must be positive".into());
    }
    let bin = ota_sign_path().ok_or("ota-sign not found (build it, or set OTA_SIGN_BIN)")?;
    let mut tool = OtaSign::new(bin);
    tool.echo = false;
    let mut rows = Vec::new();
    for &n in &args.devices {
        println!(
            "\n== {n} devices, check interval {:.1}s, {} KiB payload",
            args.interval, args.payload_kib
        );
        rows.push(one(&tool, args, n, host_kind)?);
    }
    let mut md = String::new();
    md.push_str(
        "| devices | interval | image | publish → 100 % | p50 / p90 per device | idle check (response + request) | served for the update | 10 % stage updated | 10 % → 100 % | served in all | peak RSS |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.1} s | {} | {:.1} s ({:.1} × interval) | {:.1} s / {:.1} s | {:.0} B + {:.0} B | {} in {} requests | {} (expected ≈ {:.0}) | {:.1} s | {} in {} requests | {} |\n",
            r.devices,
            r.interval,
            view::bytes(r.image_bytes),
            r.converge,
            r.converge / r.interval,
            r.p50,
            r.p90,
            r.idle_response,
            r.idle_request,
            view::bytes(r.update_served),
            r.update_requests,
            r.staged_updated,
            r.staged_expected,
            r.raise_converge,
            view::bytes(r.total_served),
            r.total_requests,
            view::bytes(r.peak_rss),
        ));
    }
    println!("\n{md}");
    if let Some(out) = &args.out {
        let mut text = std::fs::read_to_string(out).unwrap_or_default();
        text.push_str(&md);
        std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let i = ((xs.len() - 1) as f64 * p).round() as usize;
    xs[i]
}

/// Waits until `goal` holds for every device; returns the time it took.
fn wait_all(
    fleet: &Fleet,
    timeout: Duration,
    what: &str,
    goal: impl Fn(&DeviceView) -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = Instant::now();
    loop {
        let views = fleet.snapshot();
        let done = views.iter().filter(|v| goal(v)).count();
        if done == views.len() {
            return Ok(start.elapsed());
        }
        if let Some(v) = views.iter().find(|v| v.fatal.is_some()) {
            return Err(format!("{}: {:?}", v.id, v.fatal));
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{what}: only {done}/{} devices after {timeout:?}",
                views.len()
            ));
        }
        if last.elapsed() > Duration::from_secs(5) {
            println!("  {what}: {done}/{}", views.len());
            last = Instant::now();
        }
        let _ = fleet.events();
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn diff(a: HostStats, b: HostStats) -> HostStats {
    HostStats {
        requests: b.requests - a.requests,
        not_modified: b.not_modified - a.not_modified,
        partial: b.partial - a.partial,
        bytes_sent: b.bytes_sent - a.bytes_sent,
        bytes_received: b.bytes_received - a.bytes_received,
    }
}

fn release(tool: &OtaSign, dir: &Path, image: &str, rollout: Option<u8>) -> Result<(), String> {
    tool.release_and_publish(dir, "demo.key", "stable", image, rollout)
        .map_err(err)
}

fn one(tool: &OtaSign, args: &BenchArgs, n: usize, host_kind: HostKind) -> Result<Row, String> {
    let temp = tempfile::Builder::new()
        .prefix("ota-bench-")
        .tempdir()
        .map_err(err)?;
    let dir = temp.path();
    for d in ["repo", "www"] {
        std::fs::create_dir_all(dir.join(d)).map_err(err)?;
    }
    tool.run(dir, ["keygen", "--no-encrypt", "demo"])
        .map_err(err)?;
    let hex = tool
        .run(dir, ["pubkey", "--format", "hex", "demo.pub"])
        .map_err(err)?;
    let key: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?
        .try_into()
        .map_err(|_| "bad public key".to_owned())?;
    let mut apps = Vec::new();
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        let app = firmware::synthesize(
            DEVICE_TYPE,
            v,
            &[key],
            args.payload_kib * 1024,
            Behaviour::Normal,
        );
        std::fs::write(dir.join(format!("{v}.bin")), &app).map_err(err)?;
        tool.run(
            dir,
            [
                "package",
                "--key",
                "demo.key",
                "--device-type",
                DEVICE_TYPE,
                "--chip",
                "esp32c3",
                "--app-image",
                &format!("{v}.bin"),
                "-o",
                &format!("{v}.ota"),
            ],
        )
        .map_err(err)?;
        apps.push(app);
    }
    let image_bytes = std::fs::metadata(dir.join("2.0.0.ota")).map_err(err)?.len();
    // The smallest flash that holds the layout: two slots just big enough for the app.
    let slot = (apps.iter().map(Vec::len).max().unwrap_or(0) as u32 + 0xFFFF) & !0xFFFF;
    let flash_size = 0x1_0000 + 2 * slot;
    let table = default_partition_table(flash_size, slot).map_err(err)?;
    let flash = create_flash(&apps[0], &table, flash_size).map_err(err)?;

    release(tool, dir, "1.0.0.ota", None)?;
    let host = Host::start(host_kind, &dir.join("www"), n + 64)?;
    let interval = Duration::from_secs_f64(args.interval);
    let spec = FleetSpec {
        manifest_url: format!("{}/{DEVICE_TYPE}.stable.manifest", host.url()),
        device_type: DeviceType::new(DEVICE_TYPE).ok_or("device type")?,
        interval,
        id_prefix: "node".into(),
        bootloader: BootloaderMode::RollbackDisabled,
    };
    let patience = interval * 30 + Duration::from_secs(60);
    let fleet = Fleet::start(&spec, vec![flash; n]).map_err(err)?;
    wait_all(&fleet, patience, "boot v1", |v| {
        v.settled_on("1.0.0") && v.checks >= 2
    })?;

    // Idle: every check is a conditional GET answered 304.
    let s0 = host.stats();
    std::thread::sleep(interval * 3);
    let idle = diff(s0, host.stats());
    let idle_response = idle.bytes_sent as f64 / idle.requests.max(1) as f64;
    let idle_request = idle.bytes_received as f64 / idle.requests.max(1) as f64;
    println!(
        "  idle: {} checks ({} answered 304), {idle_response:.0} B answer + {idle_request:.0} B request each",
        idle.requests, idle.not_modified
    );

    // Full release.
    let s1 = host.stats();
    release(tool, dir, "2.0.0.ota", None)?;
    let published = Instant::now();
    let converge = wait_all(&fleet, patience, "update to v2", |v| v.settled_on("2.0.0"))?;
    let update = diff(s1, host.stats());
    let times: Vec<f64> = fleet
        .snapshot()
        .iter()
        .filter_map(|v| v.version_since.map(|t| (t - published).as_secs_f64()))
        .collect();
    let (p50, p90) = (percentile(times.clone(), 0.5), percentile(times, 0.9));
    println!(
        "  v2: 100% after {:.1}s ({:.1} intervals), p50 {p50:.1}s p90 {p90:.1}s, {} served",
        converge.as_secs_f64(),
        converge.as_secs_f64() / args.interval,
        view::bytes(update.bytes_sent)
    );

    // Staged rollout: a fraction first, then everyone.
    let before: Vec<u64> = fleet.snapshot().iter().map(|v| v.checks).collect();
    release(tool, dir, "3.0.0.ota", Some(args.rollout))?;
    // Two checks after the publish: the first one saw the staged manifest (and a device
    // inside the stage installed and rebooted), the second one runs on whatever it kept.
    let settled = |v: &DeviceView| v.update == "idle" && v.fatal.is_none();
    let start = Instant::now();
    loop {
        let views = fleet.snapshot();
        if views
            .iter()
            .zip(&before)
            .all(|(v, c)| v.checks >= c + 2 && settled(v))
        {
            break;
        }
        if start.elapsed() > patience {
            return Err("staged rollout: devices stopped checking".into());
        }
        let _ = fleet.events();
        std::thread::sleep(Duration::from_millis(50));
    }
    let staged_updated = fleet
        .snapshot()
        .iter()
        .filter(|v| v.version.as_deref() == Some("3.0.0"))
        .count();
    println!(
        "  {}% stage: {staged_updated}/{n} devices on v3",
        args.rollout
    );
    release(tool, dir, "3.0.0.ota", Some(100))?;
    let raise_converge = wait_all(&fleet, patience, "raise to 100%", |v| v.settled_on("3.0.0"))?;
    println!(
        "  raised to 100%: all on v3 after {:.1}s",
        raise_converge.as_secs_f64()
    );
    let _ = fleet.stop();
    let total = host.stats();
    Ok(Row {
        devices: n,
        interval: args.interval,
        image_bytes,
        converge: converge.as_secs_f64(),
        p50,
        p90,
        idle_response,
        idle_request,
        update_served: update.bytes_sent,
        update_requests: update.requests,
        staged_updated,
        staged_expected: n as f64 * f64::from(args.rollout) / 100.0,
        raise_converge: raise_converge.as_secs_f64(),
        total_served: total.bytes_sent,
        total_requests: total.requests,
        peak_rss: peak_rss().unwrap_or(0),
    })
}
