//! `ota-sign completions SHELL`: a shell completion script, generated from the same
//! command definition as `--help`, so it never drifts from the real flags.

use clap::{Args as ClapArgs, CommandFactory};
use clap_complete::Shell;

use crate::cli::{Cli, GlobalOpts};
use crate::exit::Failure;

pub const ABOUT: &str = "\
Print a shell completion script for ota-sign on stdout.

Examples:
  ota-sign completions bash \\
      > ~/.local/share/bash-completion/completions/ota-sign
  ota-sign completions zsh > \"${fpath[1]}/_ota-sign\"
  ota-sign completions fish > ~/.config/fish/completions/ota-sign.fish";

/// Print a shell completion script
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// The shell (bash, elvish, fish, powershell, zsh)
    pub shell: Shell,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "ota-sign", &mut script);
    global.payload(&String::from_utf8_lossy(&script));
    Ok(())
}
