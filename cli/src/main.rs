//! `ota-sign`: keys, signed images and release manifests for OTA updates of ESP32-class
//! devices. See `ota-sign --help`.
#![forbid(unsafe_code)]

mod args;
mod checks;
mod cli;
mod commands;
mod config;
mod diagnostics;
mod exit;
mod output;
mod passphrase;
mod progress;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use serde::Serialize;

use crate::cli::{Cli, GlobalOpts};
use crate::exit::Failure;

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with 2 (exit::USAGE).
    let Cli { global, command } = Cli::parse();
    match run_guarded(|| command.run(&global)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            report(&failure, &global);
            ExitCode::from(failure.code())
        }
    }
}

/// Where the last panic happened, recorded by the panic hook for [`run_guarded`].
static PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

/// Runs a command so that no input can end it with a panic (exit 101 and a backtrace):
/// a panic is a bug in ota-sign, reported as a failure (exit 1) that asks for a report.
fn run_guarded(command: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        if let Ok(mut slot) = PANIC_LOCATION.lock() {
            *slot = location;
        }
    }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(command));
    let _ = std::panic::take_hook();
    outcome.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = PANIC_LOCATION
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        Err(Failure::new(
            exit::FAILURE,
            exit::Message::new(
                format!(
                    "internal error (a bug in ota-sign {}): {what}{at}",
                    env!("CARGO_PKG_VERSION")
                ),
                Some(
                    "please report it, with the command line and the input that caused it"
                        .to_owned(),
                ),
                "ota_sign::bug",
            ),
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_bug_report_with_exit_1() {
        let failure = run_guarded(|| {
            let empty: Vec<u8> = Vec::new();
            let _ = empty[3];
            Ok(())
        })
        .unwrap_err();
        assert_eq!(failure.code(), exit::FAILURE);
        let text = failure.diagnostic().to_string();
        assert!(
            text.contains("a bug in ota-sign") && text.contains("index out of bounds"),
            "{text}"
        );
        assert!(text.contains("main.rs:"), "names where: {text}");
        assert!(
            failure
                .diagnostic()
                .help()
                .unwrap()
                .to_string()
                .contains("report")
        );
        assert!(run_guarded(|| Ok(())).is_ok());
    }
}
