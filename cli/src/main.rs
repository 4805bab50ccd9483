//! `ota-sign`: keys, signed images and release manifests for OTA updates of ESP32-class
//! devices. See `ota-sign --help`.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod config;
mod diagnostics;
mod exit;
mod firmware;
mod flash;
mod interrupt;
mod output;
mod packaging;
mod passphrase;
mod progress;
mod publish;
mod repo;

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use crate::cli::{Cli, GlobalOpts};
use crate::exit::Failure;

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with 2 (exit::USAGE).
    let cli = Cli::parse();
    match cli.command.run(&cli.global) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            report(&failure, &cli.global);
            ExitCode::from(failure.code())
        }
    }
}

#[derive(Serialize)]
struct JsonError {
    error: String,
    causes: Vec<String>,
    help: Option<String>,
    code: Option<String>,
    exit_code: u8,
}

/// Prints a failure on stderr: the message, its causes, a line of help; with `-v` the
/// diagnostic code. With `--json` the same goes to stdout as an object as well.
fn report(failure: &Failure, global: &GlobalOpts) {
    let diag = failure.diagnostic();
    let mut causes = Vec::new();
    let mut source = diag.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let help = diag.help().map(|h| h.to_string());
    let code = diag.code().map(|c| c.to_string());

    eprintln!("error: {diag}");
    for cause in &causes {
        eprintln!("  caused by: {cause}");
    }
    if let Some(help) = &help {
        eprintln!("  help: {help}");
    }
    if global.verbose > 0
        && let Some(code) = &code
    {
        eprintln!("  code: {code} (exit {})", failure.code());
    }
    global.json_result(&JsonError {
        error: diag.to_string(),
        causes,
        help,
        code,
        exit_code: failure.code(),
    });
}
