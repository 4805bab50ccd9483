//! `ota-device-sim`: a virtual ESP32 that runs the ota-sign update agent.
//!
//! ```text
//! ota-device-sim run --flash flash.bin --manifest-url URL --device-id ID
//!                    [--app app.bin] [--interval S] [--status-addr 127.0.0.1:0]
//!                    [--bootloader rollback|plain] [--power-cut-at N] [--max-checks N]
//! ota-device-sim status --flash flash.bin
//! ```
//! `run` prints one line per event on stdout (`status-url ...`, `boot ...`, `check ...`)
//! so scripts and tests can follow it. Exit codes: 0 done, 1 error, 3 power cut, 4 every
//! check failed (after `--max-checks`). The device type comes from `--device-type` or
//! `[defaults] device_type` of ota-sign.toml (see [`ota_device_sim::project`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use ota_agent::bootloader::BootloaderMode;
use ota_agent::status::CheckResult;
use ota_device_sim::device::{
    BootResult, DeviceConfig, SharedStatus, VirtualDevice, create_flash, default_partition_table,
    offline_status,
};
use ota_device_sim::{SimFlash, project};
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
    /// Device type the firmware is built for [default: [defaults] device_type of
    /// ota-sign.toml; required without one]
    #[arg(long)]
    device_type: Option<String>,
    /// ota-sign.toml to take the device type from [default: $OTA_SIGN_CONFIG, then
    /// ota-sign.toml in the current directory or a parent]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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

/// Exit code of `run` when it stopped after `--max-checks` and not one check succeeded:
/// a device that can never update must not look like one that is up to date.
const EXIT_EVERY_CHECK_FAILED: u8 = 4;

/// The device type: `--device-type`, else `[defaults] device_type` of ota-sign.toml.
/// Never the app descriptor's project name, which names the build, not the device type.
fn device_type(args: &RunArgs) -> Result<DeviceType, String> {
    if let Some(name) = &args.device_type {
        return DeviceType::new(name).ok_or_else(|| {
            format!("--device-type {name:?} is not a device type (1-32 characters of a-z 0-9 - _)")
        });
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let configured = match project::find_config(args.config.as_deref(), &cwd) {
        Some(path) => project::configured_device_type(&path)
            .map_err(|e| e.to_string())?
            .map(|t| (t, path)),
        None => None,
    };
    match configured {
        Some((device_type, path)) => {
            eprintln!("device type {device_type} (from {})", path.display());
            Ok(device_type)
        }
        None => Err(
            "no device type: pass --device-type NAME, or set [defaults] device_type in \
             ota-sign.toml (the app's ESP-IDF project name is not used: it names the build, \
             not the device type the release is signed for)"
                .to_owned(),
        ),
    }
}

/// Refuses what cannot be an app image before a flash file is made from it: a signed
/// `.ota` given as `--app` would write an unbootable flash.
fn check_app_image(path: &std::path::Path, app: &[u8]) -> Result<(), String> {
    if app.starts_with(&ota_format::IMAGE_MAGIC) {
        return Err(format!(
            "{} is a signed ota-sign image (.ota); --app takes the ESP-IDF app image inside it: \
             `ota-sign extract {} -o app.bin` writes it, or `ota-sign flash --image {} --output FLASH` \
             makes the whole flash file",
            path.display(),
            path.display(),
            path.display()
        ));
    }
    if app.first() != Some(&ota_format::esp::IMAGE_MAGIC) {
        return Err(format!(
            "{} is not an ESP-IDF app image (it does not start with the byte 0xE9)",
            path.display()
        ));
    }
    Ok(())
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
    check_app_image(app_path, &app)?;
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

/// Answers status and ping requests from its own thread, so they keep working while
/// the agent downloads on the main thread (R3).
fn serve_status(listener: TcpListener, shared: SharedStatus, pings: Arc<AtomicU64>) {
    for stream in listener.incoming().flatten() {
        let _ = answer(stream, &shared, &pings);
    }
}

fn answer(mut stream: TcpStream, shared: &SharedStatus, pings: &AtomicU64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/ota/status" => {
            let json = shared.0.lock().map(|p| p.to_json()).unwrap_or_default();
            ("200 OK", json.to_string())
        }
        "/app/ping" => {
            let n = pings.fetch_add(1, Ordering::SeqCst) + 1;
            ("200 OK", format!("{{\"pong\":{n}}}"))
        }
        _ => ("404 Not Found", "{\"error\":\"not found\"}".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
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
    config.device_type = Some(device_type(&args)?);
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
        std::thread::spawn(move || serve_status(listener, shared, pings));
    }

    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut checks = 0u64;
    let mut succeeded_checks = 0u64;
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
                            if r != CheckResult::Failed {
                                succeeded_checks += 1;
                            }
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
                    if checks > 0 && succeeded_checks == 0 {
                        eprintln!("ota-device-sim: every check failed ({checks} of {checks})");
                        return Ok(ExitCode::from(EXIT_EVERY_CHECK_FAILED));
                    }
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
