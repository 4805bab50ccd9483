//! The command line: global options and the top-level help. Subcommands live in
//! [`crate::commands`], one module each.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{ArgAction, Args, Parser};
use serde::Serialize;

use crate::commands::Command;
use crate::config::{Config, ConfigError};

const ABOUT: &str = "Sign and package OTA firmware updates for ESP32-class devices";

const LONG_ABOUT: &str = "\
Sign and package OTA firmware updates for ESP32-class devices.

Devices install only images signed by a key that is built into the firmware they run.
ota-sign makes those keys, signs images and release manifests offline, and publishes
them to a static host (a directory, S3, GitHub Releases) that devices poll.";

const EXAMPLES: &str = "\
Getting started:
  # writes keys/release.key (0600) and keys/release.pub
  ota-sign keygen keys/release
  # the firmware embeds this: it decides whom devices trust
  ota-sign pubkey keys/release.pub --format rust > src/trusted_keys.rs

Keys in CI:
  OTA_SIGN_KEY=\"$(cat release.key)\" OTA_SIGN_PASSPHRASE=... \\
      ota-sign <command> ...

Settings come from flags, then environment variables, then ota-sign.toml (searched upward
from the current directory; see examples/ota-sign.toml).

Exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 invalid signature, 4 I/O error,
5 key error, 6 refused by a safety rule, 7 target already exists or a concurrent
publisher moved ahead, 8 credentials rejected, 9 bucket or repository not found,
10 network failure.";

/// `ota-sign`: the whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "ota-sign",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOpts,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, and what commands share through them (output and the
/// configuration file).
#[derive(Args, Debug, Default)]
pub struct GlobalOpts {
    /// Print a machine-readable JSON result on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (error codes, where settings came from)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Accept keys whose private half is public (RFC 8032 vectors, ota-sign's test keys) as
    /// trusted keys. For tests only: anyone can sign updates for firmware that trusts one
    #[arg(long, global = true)]
    pub allow_test_keys: bool,

    /// Configuration file [default: ota-sign.toml in the current directory or a parent]
    #[arg(long, global = true, value_name = "FILE", env = crate::config::CONFIG_ENV)]
    pub config: Option<PathBuf>,

    #[arg(skip)]
    loaded: OnceLock<Option<Config>>,
}

impl GlobalOpts {
    /// The configuration file, read on first use so that commands that need none do not
    /// fail on a broken one.
    pub fn config(&self) -> Result<Option<&Config>, ConfigError> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded.as_ref());
        }
        let cwd = std::env::current_dir().map_err(|source| ConfigError::Io {
            path: PathBuf::from("."),
            source,
        })?;
        let config = Config::discover(self.config.as_deref(), &cwd)?;
        if let Some(c) = &config {
            self.detail(&format!("using configuration {}", c.path.display()));
        }
        Ok(self.loaded.get_or_init(|| config).as_ref())
    }

    /// Prints a human result line on stdout (not with `--json` or `--quiet`).
    pub fn say(&self, text: &str) {
        if !self.json && !self.quiet {
            write_stdout(&format!("{text}\n"));
        }
    }

    /// Prints text on stdout exactly as given, unless `--json` (the payload of a command
    /// such as `pubkey`, which `--quiet` does not suppress).
    pub fn payload(&self, text: &str) {
        if !self.json {
            write_stdout(text);
        }
    }

    /// Prints the JSON result on stdout when `--json` was given.
    pub fn json_result<T: Serialize>(&self, value: &T) {
        if self.json {
            let text = serde_json::to_string_pretty(value).expect("plain data serializes");
            write_stdout(&format!("{text}\n"));
        }
    }

    /// A note on stderr (not with `--quiet`).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A warning on stderr (not with `--quiet`).
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!("warning: {text}");
        }
    }

    /// Detail on stderr with `-v`.
    pub fn detail(&self, text: &str) {
        if self.verbose > 0 {
            eprintln!("{text}");
        }
    }

    /// Whether an interactive prompt is possible.
    pub fn interactive(&self) -> bool {
        io::stdin().is_terminal()
    }
}

/// Writes to stdout; a closed pipe (`ota-sign ... | head`) is not an error worth a panic.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Example command lines in the help never wrap in an 80-column terminal (a wrapped
    /// example breaks copy and paste): long ones continue with `\`.
    #[test]
    fn help_examples_fit_80_columns() {
        fn walk(cmd: &clap::Command, path: &str, too_long: &mut Vec<String>) {
            let texts = [
                cmd.get_long_about(),
                cmd.get_after_long_help(),
                cmd.get_after_help(),
            ];
            for text in texts.into_iter().flatten() {
                let mut continued = false;
                for line in text.to_string().lines() {
                    let example =
                        line.starts_with("  ") && (line.contains("ota-sign ") || continued);
                    if example && line.chars().count() > 80 {
                        too_long.push(format!("{path}: {line}"));
                    }
                    continued = example && line.ends_with('\\');
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), too_long);
            }
        }
        let mut too_long = Vec::new();
        walk(&Cli::command(), "ota-sign", &mut too_long);
        assert!(too_long.is_empty(), "{}", too_long.join("\n"));
    }
}
