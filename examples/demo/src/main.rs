//! `ota-demo`: the whole ota-sign story on one machine, and the fleet benchmark.
//!
//! ```text
//! ota-demo [--devices N] [--interval S] [--real-firmware] [--work DIR] [--host auto|nginx|builtin]
//! ota-demo bench [--devices 100,1000] [--interval S] [--rollout-devices N] [--out FILE]
//! ```
//! Exit codes: 0 the fleet converged, 1 it did not (or a step failed), 2 usage.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod firmware;
mod fleet;
mod host;
mod tools;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::host::HostKind;

#[derive(Parser)]
#[command(
    name = "ota-demo",
    version,
    about = "ota-sign end to end on this machine: keys, firmware, signed releases, a fleet of simulated devices",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Fleet benchmark: N devices polling one nginx; convergence, idle cost, staged rollout
    Bench(bench::BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum HostArg {
    /// nginx if installed, else the built-in server
    Auto,
    /// nginx (fail if missing)
    Nginx,
    /// the small built-in static server
    Builtin,
}

impl From<HostArg> for HostKind {
    fn from(h: HostArg) -> Self {
        match h {
            HostArg::Auto => HostKind::Auto,
            HostArg::Nginx => HostKind::Nginx,
            HostArg::Builtin => HostKind::Builtin,
        }
    }
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Simulated devices in the fleet
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=2000))]
    devices: u32,
    /// Seconds between a device's checks (each wait varies by ±10%)
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Build the real ESP32-C3 firmware (needs the riscv32imc-unknown-none-elf target;
    /// also enabled by OTA_DEMO_REAL_FIRMWARE=1) instead of synthesizing an app image
    #[arg(long)]
    real_firmware: bool,
    /// Keep everything in this (new or empty) directory instead of a temporary one
    #[arg(long)]
    work: Option<PathBuf>,
    /// Static server for the repository
    #[arg(long, value_enum, default_value = "auto")]
    host: HostArg,
    /// Seconds to wait for the fleet in each phase before giving up
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bench(args)) => bench::run(&args),
        None => {
            let a = cli.demo;
            if !(a.interval.is_finite() && a.interval > 0.0) {
                eprintln!("ota-demo: --interval must be a positive number of seconds");
                return ExitCode::from(2);
            }
            demo::run(&demo::DemoOptions {
                devices: a.devices as usize,
                interval: Duration::from_secs_f64(a.interval),
                real_firmware: a.real_firmware
                    || std::env::var("OTA_DEMO_REAL_FIRMWARE").is_ok_and(|v| v == "1"),
                work: a.work,
                host: a.host.into(),
                timeout: Duration::from_secs(a.timeout),
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nota-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
