//! `ota-device-sim`: a virtual ESP32 that runs the ota-sign update agent.
//!
//! ```text
//! ota-device-sim run --flash flash.bin --manifest-url URL --device-id ID
//!                    [--app app.bin] [--interval S] [--status-addr 127.0.0.1:0]
//!                    [--bootloader rollback|plain] [--power-cut-at N] [--max-checks N]
//! ota-device-sim status --flash flash.bin
//! ```
//! `run` prints one line per event on stdout (`status-url ...`, `boot ...`, `check ...`),
//! or with `--json` one JSON object per line (`{"event":"boot",...}`), so scripts and
//! tests can follow it. Exit codes: 0 done, 1 error, 3 power cut, 4 every
//! check failed (after `--max-checks`). The device type comes from `--device-type` or
//! `[defaults] device_type` of ota-sign.toml (see [`ota_device_sim::project`]).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
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
use ota_device_sim::{SimFlash, project, status_server};
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

/// What the device says about itself in each request's `User-Agent` (SECURITY.md).
#[derive(Clone, Copy, ValueEnum)]
enum IdentifyArg {
    /// id (hashed), type, channel, version, slot and last outcome
    Hashed,
    /// the same with the device id as given
    Plain,
    /// `ota-agent/<version>` only
    Off,
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
    /// Which agent the device runs: 2 (this one: deltas, compression method 2) or 1 (the
    /// agent in the field before issue 13: method 2 refused at the header, no deltas),
    /// to test a mixed fleet.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    agent_generation: u8,
    /// Trial boots before falling back (plain bootloader).
    #[arg(long, default_value_t = 3)]
    max_boot_attempts: u8,
    /// What each request's User-Agent says about the device, for `ota-sign fleet
    /// status` (see SECURITY.md).
    #[arg(long, value_enum, default_value = "hashed")]
    identify: IdentifyArg,
    /// Log events as JSON lines (`{"event":"boot",...}`) instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = Log {
        json: matches!(&cli.command, Command::Run(args) if args.json),
    };
    let result = match cli.command {
        Command::Run(args) => run(*args, log),
        Command::Status { flash, chip } => status(flash, &chip),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log.error(&e);
            ExitCode::from(1)
        }
    }
}

/// The event log of `run`: one line per event on stdout, as text (`boot running ota_1
/// version 1.1.0`) or, with `--json`, as one JSON object per line (`{"event":"boot",
/// "slot":"ota_1","version":"1.1.0"}`). Errors and notes go to stderr in the same format.
#[derive(Clone, Copy)]
struct Log {
    json: bool,
}

impl Log {
    /// An event: `text` for people, `fields` (with `"event": name` added) for `--json`.
    fn event(self, name: &str, text: &str, fields: serde_json::Value) {
        if self.json {
            println!("{}", Self::line(name, fields));
        } else {
            println!("{text}");
        }
    }

    /// A note on stderr.
    fn note(self, name: &str, text: &str, fields: serde_json::Value) {
        if self.json {
            eprintln!("{}", Self::line(name, fields));
        } else {
            eprintln!("{text}");
        }
    }

    /// An error on stderr.
    fn error(self, message: &str) {
        self.note(
            "error",
            &format!("ota-device-sim: {message}"),
            serde_json::json!({ "message": message }),
        );
    }

    fn line(name: &str, fields: serde_json::Value) -> String {
        let mut object = serde_json::Map::new();
        object.insert("event".into(), name.into());
        if let serde_json::Value::Object(map) = fields {
            object.extend(map);
        }
        serde_json::Value::Object(object).to_string()
    }
}

/// Exit code of `run` when it stopped after `--max-checks` and not one check succeeded:
/// a device that can never update must not look like one that is up to date.
const EXIT_EVERY_CHECK_FAILED: u8 = 4;

/// The device type: `--device-type`, else `[defaults] device_type` of ota-sign.toml.
/// Never the app descriptor's project name, which names the build, not the device type.
fn device_type(args: &RunArgs, log: Log) -> Result<DeviceType, String> {
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
            log.note(
                "config",
                &format!("device type {device_type} (from {})", path.display()),
                serde_json::json!({
                    "device_type": device_type.as_str(),
                    "from": path.display().to_string(),
                }),
            );
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

/// Reads a partition table (CSV or binary) for a new flash file. esp-idf-part 0.6 panics
/// on tables ESP-IDF accepts, such as a numeric data subtype (`storage, data, 0x40, ...`:
/// `SubType::data` unwraps); that panic becomes this error, with the default panic
/// message silenced meanwhile (nothing else runs yet) so the user reads one clear line.
fn read_partition_table(
    path: &std::path::Path,
    bytes: Vec<u8>,
) -> Result<esp_idf_part::PartitionTable, String> {
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let read = std::panic::catch_unwind(|| esp_idf_part::PartitionTable::try_from(bytes));
    std::panic::set_hook(previous_hook);
    match read {
        Ok(Ok(table)) => Ok(table),
        Ok(Err(e)) => Err(format!("{}: {e}", path.display())),
        Err(_) => Err(format!(
            "{}: the simulator's partition-table reader (esp-idf-part) cannot read this table \
             (numeric data subtypes are one such case); make the flash file with \
             `ota-sign flash --output FILE`, which reads them, and pass it as --flash FILE",
            path.display()
        )),
    }
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
            read_partition_table(p, bytes)?
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

fn run(args: RunArgs, log: Log) -> Result<ExitCode, String> {
    let mut flash = load_or_create(&args)?;
    if let Some(n) = args.power_cut_at {
        flash.cut_after(n);
    }
    let mut config = DeviceConfig::new(&args.manifest_url, &args.device_id);
    config.chip = chip(&args.chip)?;
    config.channel = Channel::new(&args.channel).ok_or("invalid channel")?;
    config.device_type = Some(device_type(&args, log)?);
    config.bootloader = match args.bootloader {
        Bootloader::Rollback => BootloaderMode::RollbackEnabled,
        Bootloader::Plain => BootloaderMode::RollbackDisabled,
    };
    config.max_window_log = args.max_window_log;
    config.generation = if args.agent_generation == 1 {
        ota_agent::install::Generation::One
    } else {
        ota_agent::install::Generation::Two
    };
    config.identify = match args.identify {
        IdentifyArg::Hashed => ota_agent::identity::Identify::HashedId,
        IdentifyArg::Plain => ota_agent::identity::Identify::PlainId,
        IdentifyArg::Off => ota_agent::identity::Identify::Off,
    };
    config.max_boot_attempts = args.max_boot_attempts;
    let mut device = VirtualDevice::new(flash, config);

    if let Some(addr) = args.status_addr {
        let listener = TcpListener::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let url = format!("http://{local}/ota/status");
        log.event(
            "status-url",
            &format!("status-url {url}"),
            serde_json::json!({ "url": url }),
        );
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
    let mut succeeded_checks = 0u64;
    let mut failed_boots = 0u32;
    loop {
        let save = |d: &VirtualDevice| d.flash.save(&args.flash).map_err(|e| e.to_string());
        let interval = args.interval;
        let max_checks = args.max_checks;
        let result = device
            .boot(|s| {
                let slot = ota_agent::status::target_label(s.firmware.target);
                log.event(
                    "boot",
                    &format!("boot running {slot} version {}", s.firmware.version),
                    serde_json::json!({
                        "slot": slot.to_string(),
                        "version": s.firmware.version.to_string(),
                    }),
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
                            log.event(
                                "check",
                                &format!("check {}", serde_json::to_string(&r).unwrap_or_default()),
                                serde_json::json!({ "result": r }),
                            );
                        }
                        Err(e) => log.event(
                            "check",
                            &format!("check error {e}"),
                            serde_json::json!({ "error": e.to_string() }),
                        ),
                    }
                    if s.reboot_required() {
                        if let Some(u) = s.agent.status().last_update {
                            let via = serde_json::to_value(u.via).unwrap_or_default();
                            let via = via.as_str().unwrap_or("?");
                            log.event(
                                "installed",
                                &format!(
                                    "installed {} via {via} ({} bytes downloaded)",
                                    u.version, u.bytes_downloaded
                                ),
                                serde_json::json!({
                                    "version": u.version.to_string(),
                                    "via": via,
                                    "bytes_downloaded": u.bytes_downloaded,
                                }),
                            );
                        }
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
                        log.error(&format!("every check failed ({checks} of {checks})"));
                        return Ok(ExitCode::from(EXIT_EVERY_CHECK_FAILED));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                log.event(
                    "reboot",
                    "reboot update",
                    serde_json::json!({ "reason": "update" }),
                );
            }
            BootResult::PowerLost => {
                save(&device)?;
                let operation = device.flash.operations();
                log.event(
                    "power-lost",
                    &format!("power-lost at operation {operation}"),
                    serde_json::json!({ "operation": operation }),
                );
                return Ok(ExitCode::from(3));
            }
            BootResult::NoBootableApp => return Err("no bootable app".into()),
            other => {
                failed_boots += 1;
                save(&device)?;
                let (reason, version, error) = describe(&other);
                let mut text = format!("reboot {reason} {version}");
                if let Some(e) = &error {
                    text.push_str(&format!(" {e}"));
                }
                log.event(
                    "reboot",
                    &text,
                    serde_json::json!({ "reason": reason, "version": version, "error": error }),
                );
                if failed_boots > 50 {
                    return Err("boot loop".into());
                }
            }
        }
    }
}

/// Why a boot ended in a reboot: the reason, the version that ran, the agent's error.
fn describe<R>(r: &BootResult<R>) -> (&'static str, String, Option<String>) {
    match r {
        BootResult::Crashed(f) => ("crashed", f.version.to_string(), None),
        BootResult::RejectedTrial(f) => ("health-check-failed", f.version.to_string(), None),
        BootResult::TrialsExhausted(f) => ("trials-exhausted", f.version.to_string(), None),
        BootResult::AgentFailed(f, e) => {
            ("agent-failed", f.version.to_string(), Some(e.to_string()))
        }
        _ => ("other", String::new(), None),
    }
}
