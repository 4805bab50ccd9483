//! `ota-device-sim`: a virtual ESP32 that runs the ota-sign update agent.
//!
//! ```text
//! ota-device-sim run --flash flash.bin --manifest-url URL --device-id ID
//!                    [--app app.bin] [--interval S] [--status-addr 127.0.0.1:0]
//!                    [--bootloader rollback|plain] [--power-cut-at N] [--max-checks N]
//! ota-device-sim status --flash flash.bin
//! ```
//! `run` prints one line per event on stdout (`status-url ...`, `boot ...`, `check ...`)
//! so scripts and tests can follow it. Exit codes: 0 done, 1 error, 3 power cut.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use ota_agent::bootloader::BootloaderMode;
use ota_device_sim::device::{
    BootResult, DeviceConfig, SharedStatus, VirtualDevice, create_flash, default_partition_table,
    offline_status,
};
use ota_device_sim::{SimFlash, status_server};
use ota_format::{Channel, ChipId, DeviceType};

#[derive(Parser)]
#[command(
    name = "ota-device-sim",
    version,
    about = "A virtual ESP32 running the ota-sign update agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Bootloader {
    /// ESP-IDF bootloader built with app rollback.
    Rollback,
    /// Bootloader without app rollback (espflash's); the agent counts trial boots.
    Plain,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the device and poll for updates.
    Run(Box<RunArgs>),
    /// Show what a flash image holds, without booting it.
    Status {
        /// Flash image file.
        #[arg(long)]
        flash: PathBuf,
        /// Chip to validate app images for.
        #[arg(long, default_value = "esp32c3")]
        chip: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Flash image file (created from --app when missing).
    #[arg(long)]
    flash: PathBuf,
    /// Manifest URL to poll.
    #[arg(long)]
    manifest_url: String,
    /// Unique device id (rollout bucket, jitter).
    #[arg(long)]
    device_id: String,
    /// App image to install into a new flash file.
    #[arg(long)]
    app: Option<PathBuf>,
    /// Partition table (CSV or binary) for a new flash file.
    #[arg(long)]
    partition_table: Option<PathBuf>,
    /// Size of a new flash file, bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    flash_size: u32,
    /// Seconds between checks (±10% jitter).
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// Serve `GET /ota/status` and `GET /app/ping` here.
    #[arg(long)]
    status_addr: Option<SocketAddr>,
    /// Bootloader build.
    #[arg(long, value_enum, default_value = "plain")]
    bootloader: Bootloader,
    /// Cut the power at this flash operation (counted from start).
    #[arg(long)]
    power_cut_at: Option<u64>,
    /// Stop after this many checks.
    #[arg(long)]
    max_checks: Option<u64>,
    /// Device type (default: the app descriptor's project name).
    #[arg(long)]
    device_type: Option<String>,
    /// Chip.
    #[arg(long, default_value = "esp32c3")]
    chip: String,
    /// Channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Largest zstd window log accepted (10..=14).
    #[arg(long, default_value_t = ota_agent::agent::DEFAULT_WINDOW_LOG)]
    max_window_log: u8,
    /// Trial boots before falling back (plain bootloader).
    #[arg(long, default_value_t = 3)]
    max_boot_attempts: u8,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Status { flash, chip } => status(flash, &chip),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ota-device-sim: {e}");
            ExitCode::from(1)
        }
    }
}

fn chip(name: &str) -> Result<ChipId, String> {
    ChipId::from_name(name).ok_or_else(|| format!("unknown chip {name:?}"))
}

fn status(path: PathBuf, chip_name: &str) -> Result<ExitCode, String> {
    let mut flash = SimFlash::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value = offline_status(&mut flash, chip(chip_name)?).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn load_or_create(args: &RunArgs) -> Result<SimFlash, String> {
    if args.flash.exists() {
        return SimFlash::load(&args.flash).map_err(|e| format!("{}: {e}", args.flash.display()));
    }
    let app_path = args
        .app
        .as_ref()
        .ok_or("flash file missing: give --app to create it")?;
    let app = std::fs::read(app_path).map_err(|e| format!("{}: {e}", app_path.display()))?;
    let table = match &args.partition_table {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            esp_idf_part::PartitionTable::try_from(bytes).map_err(|e| e.to_string())?
        }
        None => default_partition_table(
            args.flash_size,
            (args.flash_size - 0x1_0000) / 2 / 0x1_0000 * 0x1_0000,
        )
        .map_err(|e| e.to_string())?,
    };
    let flash = create_flash(&app, &table, args.flash_size).map_err(|e| e.to_string())?;
    flash
        .save(&args.flash)
        .map_err(|e| format!("{}: {e}", args.flash.display()))?;
    Ok(flash)
}

/// What a status or ping request gets. The server runs on its own thread, so it keeps
/// answering while the agent downloads on the main thread (R3); its connection handling
/// and bounds are [`status_server`]'s.
fn route(path: &str, shared: &SharedStatus, pings: &AtomicU64) -> status_server::Response {
    match path {
        "/ota/status" => {
            let json = shared.0.lock().map(|p| p.to_json()).unwrap_or_default();
            ("200 OK", json.to_string())
        }
        "/app/ping" => {
            let n = pings.fetch_add(1, Ordering::SeqCst) + 1;
            ("200 OK", format!("{{\"pong\":{n}}}"))
        }
        _ => ("404 Not Found", "{\"error\":\"not found\"}".to_owned()),
    }
}

fn jittered(interval: f64, seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let unit = (*seed >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64((interval * (0.9 + 0.2 * unit)).max(0.0))
}

fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut flash = load_or_create(&args)?;
    if let Some(n) = args.power_cut_at {
        flash.cut_after(n);
    }
    let mut config = DeviceConfig::new(&args.manifest_url, &args.device_id);
    config.chip = chip(&args.chip)?;
    config.channel = Channel::new(&args.channel).ok_or("invalid channel")?;
    config.device_type = match &args.device_type {
        Some(t) => Some(DeviceType::new(t).ok_or("invalid device type")?),
        None => None,
    };
    config.bootloader = match args.bootloader {
        Bootloader::Rollback => BootloaderMode::RollbackEnabled,
        Bootloader::Plain => BootloaderMode::RollbackDisabled,
    };
    config.max_window_log = args.max_window_log;
    config.max_boot_attempts = args.max_boot_attempts;
    let mut device = VirtualDevice::new(flash, config);

    if let Some(addr) = args.status_addr {
        let listener = TcpListener::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("status-url http://{local}/ota/status");
        let shared = device.shared.clone();
        let pings = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            status_server::serve(listener, move |path| route(path, &shared, &pings))
        });
    }

    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut checks = 0u64;
    let mut failed_boots = 0u32;
    loop {
        let save = |d: &VirtualDevice| d.flash.save(&args.flash).map_err(|e| e.to_string());
        let interval = args.interval;
        let max_checks = args.max_checks;
        let result = device
            .boot(|s| {
                println!(
                    "boot running {} version {}",
                    ota_agent::status::target_label(s.firmware.target),
                    s.firmware.version
                );
                loop {
                    if max_checks.is_some_and(|m| checks >= m) {
                        return false;
                    }
                    checks += 1;
                    match s.check() {
                        Ok(r) => {
                            println!("check {}", serde_json::to_string(&r).unwrap_or_default())
                        }
                        Err(e) => println!("check error {e}"),
                    }
                    if s.reboot_required() {
                        return true;
                    }
                    if max_checks.is_some_and(|m| checks >= m) {
                        return false;
                    }
                    std::thread::sleep(jittered(interval, &mut seed));
                }
            })
            .map_err(|e| e.to_string())?;
        let _ = std::io::stdout().flush();
        match result {
            BootResult::Ran { value: reboot, .. } => {
                failed_boots = 0;
                save(&device)?;
                if !reboot {
                    return Ok(ExitCode::SUCCESS);
                }
                println!("reboot update");
            }
            BootResult::PowerLost => {
                save(&device)?;
                println!("power-lost at operation {}", device.flash.operations());
                return Ok(ExitCode::from(3));
            }
            BootResult::NoBootableApp => return Err("no bootable app".into()),
            other => {
                failed_boots += 1;
                save(&device)?;
                println!("reboot {}", describe(&other));
                if failed_boots > 50 {
                    return Err("boot loop".into());
                }
            }
        }
    }
}

fn describe<R>(r: &BootResult<R>) -> String {
    match r {
        BootResult::Crashed(f) => format!("crashed {}", f.version),
        BootResult::RejectedTrial(f) => format!("health-check-failed {}", f.version),
        BootResult::TrialsExhausted(f) => format!("trials-exhausted {}", f.version),
        BootResult::AgentFailed(f, e) => format!("agent-failed {} {e}", f.version),
        _ => String::new(),
    }
}
