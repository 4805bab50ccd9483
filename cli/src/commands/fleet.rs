//! `ota-sign fleet status`: the fleet's state from the static host's access logs.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::exit::Failure;
use ota_sign_lib::fleet::github::{self, AssetDownloads};
use ota_sign_lib::fleet::parse::LogFormat;
use ota_sign_lib::fleet::report::{Options, Report};
use ota_sign_lib::fleet::source::{LogReader, read_s3, s3_url};
use ota_sign_lib::fleet::{html, repo, text};

pub const ABOUT: &str = "\
Report the fleet's state from the static host's access logs: no server needed.

Every device names itself in each request's User-Agent (`ota-agent/0.1.0 (i=<id>;
t=<type>;c=<channel>;v=<version>;s=<slot>;r=<last result>)`; the id is a hash unless the
device is configured otherwise, see SECURITY.md). nginx, S3 and CloudFront all log that
header, so their logs answer: did the rollout reach everyone, who still runs the old
version, who rolled back, who has gone silent.

Logs: files (plain or .gz), directories of them, or s3://bucket/prefix (credentials,
region and endpoint from the AWS environment: AWS_ACCESS_KEY_ID, AWS_REGION,
AWS_ENDPOINT_URL, ...). Formats, detected line by line unless --format names one:
  nginx        nginx's `combined` log_format (Apache's combined too)
  s3           Amazon S3 server access logs
  cloudfront   CloudFront standard (legacy) logs, tab-separated with #Fields
Lines no format accepts, and requests from other clients, are counted and skipped.

Per device: type, channel, running version and slot, last seen, last result, releases it
failed. Per release: devices of its type (and channel), how many its staged rollout
reaches, how many run it, how many downloaded it and still report another version (a
failed install or trial), how many have been silent for more than --silent-after check
intervals. With --repo the releases and rollouts come from the release tree.

Outputs: tables on stdout, --json, and --html FILE: one self-contained page with a chart
of the devices per version over time, to open in any browser (no server, no network).
--github owner/repo adds GitHub Releases' download counts per asset, the only signal
GitHub gives.

Exit codes: 0 report made, 2 bad arguments, 4 a log or the release tree cannot be read
(or the HTML cannot be written), 8 credentials rejected (S3, GitHub), 9 bucket or
repository not found, 10 network failure (S3, GitHub).";

pub const EXAMPLES: &str = "\
Examples:
  ota-sign fleet status /var/log/nginx/access.log
  ota-sign fleet status /var/log/nginx/ --repo releases/ --html fleet.html
  ota-sign fleet status s3://my-logs/ota/ --format s3 --json
  ota-sign fleet status cloudfront-logs/ --silent-after 6 --interval 600
  ota-sign fleet status --github acme/sensor-firmware";

/// Arguments of `ota-sign fleet`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// `fleet` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum FleetCommand {
    /// Per device and per release state from the host's access logs
    #[command(long_about = ABOUT, after_long_help = EXAMPLES)]
    Status(StatusArgs),
}

/// `--format`'s values: the library's format names, listed in `--help`.
fn log_format() -> impl clap::builder::TypedValueParser<Value = LogFormat> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(LogFormat::ALL.map(|(name, _)| name))
        .map(|name| LogFormat::named(&name).expect("a listed name"))
}

/// Arguments of `ota-sign fleet status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Log files, directories or s3://bucket/prefix URLs
    #[arg(value_name = "LOG", required_unless_present = "github")]
    pub logs: Vec<String>,

    /// Log format [default: detected line by line]
    #[arg(long, value_parser = log_format())]
    pub format: Option<LogFormat>,

    /// Release tree (as `ota-sign release` writes it): releases, channels and rollouts
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// Seconds between device checks [default: what the logs show (median per device)]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
    pub interval: Option<i64>,

    /// A device is silent after this many check intervals without a request
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub silent_after: u32,

    /// Write a self-contained HTML report with a chart of the rollout over time
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Print the releases table only (no row per device)
    #[arg(long)]
    pub releases_only: bool,

    /// Also report GitHub Releases' download counts per asset of this repository
    #[arg(long, value_name = "OWNER/REPO")]
    pub github: Option<String>,

    /// GitHub API URL
    #[arg(long, value_name = "URL", env = "GITHUB_API_URL", default_value = ota_sign_lib::publish::github::DEFAULT_API_URL)]
    pub github_api: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    github: Option<&'a [AssetDownloads]>,
}

/// Runs `ota-sign fleet`.
pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    match args.command {
        FleetCommand::Status(args) => status(args, global),
    }
}

fn status(args: StatusArgs, global: &GlobalOpts) -> Result<(), Failure> {
    let mut reader = LogReader::new(args.format);
    for log in &args.logs {
        match s3_url(log) {
            Some((bucket, prefix)) => read_s3(&mut reader, bucket, prefix)?,
            None => reader.read_path(std::path::Path::new(log))?,
        }
    }
    let known = match &args.repo {
        Some(dir) => repo::releases(dir)?,
        None => Vec::new(),
    };
    let report = Report::build(
        &reader.fleet,
        &known,
        Options {
            interval: args.interval,
            silent_after: args.silent_after,
            now: None,
            timeline_points: 120,
        },
    );
    let downloads = match &args.github {
        Some(repo) => {
            let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
            Some(github::download_counts(
                &args.github_api,
                repo,
                token.as_deref(),
            )?)
        }
        None => None,
    };
    if let Some(path) = &args.html {
        crate::output::write(path, html::render(&report).as_bytes(), true)?;
        global.note(&format!("wrote {}", path.display()));
    }
    global.json_result(&JsonReport {
        report: &report,
        github: downloads.as_deref(),
    });
    if !args.logs.is_empty() {
        global.payload(&text::render(&report, args.releases_only));
    }
    if let Some(downloads) = &downloads {
        global.payload(&github_table(downloads));
    }
    Ok(())
}

fn github_table(downloads: &[AssetDownloads]) -> String {
    let width = downloads
        .iter()
        .map(|d| d.release.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!("\n{:<width$}  {:>9}  ASSET\n", "RELEASE", "DOWNLOADS");
    for d in downloads {
        out.push_str(&format!(
            "{:<width$}  {:>9}  {}\n",
            d.release, d.downloads, d.asset
        ));
    }
    out
}
