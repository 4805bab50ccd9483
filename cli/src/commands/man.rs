//! `ota-sign man [COMMAND]`: the manual page (roff), generated from the same command
//! definition as `--help`.

use clap::{Args as ClapArgs, CommandFactory};

use crate::cli::{Cli, GlobalOpts};
use crate::exit::{Failure, IoFailure};

pub const ABOUT: &str = "\
Print the manual page of ota-sign, or of one of its commands, as roff on stdout.

Examples:
  ota-sign man | man -l -
  ota-sign man package > ota-sign-package.1";

/// Print the manual page (roff)
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// A command whose page to print (package, release, ...) [default: ota-sign itself]
    pub command: Option<String>,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let root = Cli::command();
    let (page, title) = match &args.command {
        None => (root, "ota-sign".to_owned()),
        Some(name) => {
            let sub = root.find_subcommand(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
                Failure::usage(
                    format!("no command {name:?}"),
                    Some(format!("one of: {}", known.join(", "))),
                )
            })?;
            (
                sub.bin_name(format!("ota-sign {name}")),
                format!("ota-sign-{name}"),
            )
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .title(title)
        .render(&mut roff)
        .map_err(|source| IoFailure {
            action: "rendering the manual page".to_owned(),
            source,
        })?;
    global.payload(&String::from_utf8_lossy(&roff));
    Ok(())
}
