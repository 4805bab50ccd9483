//! `ota-sign publish`: copy a release tree to a static host, images before manifests.
//! Holds no key: the files are signed already, and the host is trusted for nothing but
//! availability.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args as ClapArgs;
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::diagnostics::PublishDiagnostic;
use crate::exit::{self, Failure};
use crate::progress::Bars;
use ota_sign_lib::repo::ReleaseTree;

use ota_sign_lib::publish::dir::DirDestination;
use ota_sign_lib::publish::github::{
    DEFAULT_API_URL, GitHubDestination, GitHubLimits, GitHubOptions,
};
use ota_sign_lib::publish::plan::{Plan, execute, make_plan};
use ota_sign_lib::publish::s3::{S3Destination, S3Options};
use ota_sign_lib::publish::{Destination, HostLocation, PublishError};

/// Environment variable holding the GitHub token.
pub const GITHUB_TOKEN_ENV: &str = "GITHUB_TOKEN";

pub const ABOUT: &str = "\
Copy a release tree made by `ota-sign release` to the static host devices poll. Needs no
private key: a build machine that uploads never holds one.

--repo must be a release tree: the directory `ota-sign release --repo` writes, holding
at least one <device-type>.<channel>.manifest; anything else is refused (exit 2).

Destinations (--to):
  DIR or file://DIR        a directory served by nginx, GitHub Pages or any web server;
                           every file is written to a temporary name and renamed
  s3://BUCKET[/PREFIX]     S3 or an S3-compatible service: credentials from the standard
                           AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                           AWS_SESSION_TOKEN, AWS_REGION, web identity, container
                           credentials); with none set it fails at once (exit 8) and
                           asks the EC2 instance-metadata service only with
                           --s3-instance-metadata. Endpoint from --s3-endpoint or
                           AWS_ENDPOINT_URL. Bucket names S3
                           forbids (3-63 characters of a-z 0-9 . -, ...) fail before any
                           request (exit 2). Manifests get Cache-Control: no-cache,
                           no-transform; images a year, immutable, no-transform
  github://OWNER/REPO      GitHub Releases, token from GITHUB_TOKEN; devices
                           poll https://github.com/OWNER/REPO/releases/latest/download/NAME,
                           so the repository must be dedicated to firmware

Only what changed is uploaded, images before manifests, so no device ever sees a manifest
whose image is missing; an interrupted publish leaves the previous release fully served and
running it again finishes the job. It refuses to replace a published image with different
bytes, and stops if another publisher moved a channel ahead (conditional writes). On GitHub
a new release is built as a draft, then published in one step; it also carries the
current manifests (and images) of device types and channels this tree does not hold.

index.json and SHA256SUMS describe what the host serves afterwards: the tree's files
merged with the other device types and channels the host already serves, written
conditionally (merged again, up to 5 times, when another publisher changed them).

A directory publish holds the lock file .ota-publish.lock (pid, host, time) from planning
to its last rename: a second publish started meanwhile exits 7 and changes nothing. A lock
whose process is gone (same host) or that was not refreshed for 10 minutes is taken over,
and publish says so. Ctrl-C or SIGTERM removes the temporary file being written and the
lock, then exits 130 or 143; the host serves what it served before that file. On S3 a
small state object (.ota-sign-digests.json) keeps the digest of each object, so an
unchanged republish costs a listing and a read, however many images the prefix holds.

On a terminal each upload gets a progress bar on stderr (bytes written, for a directory);
nothing is drawn with --json, --quiet or when stderr is not a terminal.

A GitHub publish killed before that step leaves its draft behind (devices never see
drafts). The next publish deletes such drafts before creating its own and says so; it
recognises them by a marker ota-sign writes into the release body
(<!-- ota-sign:publish -->), so drafts made by people are never touched. --dry-run lists
them without deleting anything. Two publishers running at once: the later one deletes
the earlier one's draft, and the earlier one stops with exit code 7. In a directory, a
killed publish can leave a hidden temporary file (.ota-tmp-*); the next publish deletes
those older than 10 minutes (a younger one may be a live publish's).

GitHub: `latest` is one release per repository, so a release made by a person or another
tool there hides every manifest; publish refuses (exit 6) when the latest release lacks
ota-sign's marker. The first publish (and one with --github-tag, or over a latest release
of more than 500 assets) makes a new release: one request per file plus two. Later ones
change the latest release in place: one request per new image or manifest, three per
changed manifest, index.json and SHA256SUMS (upload as <name>.ota-sign-tmp-*, delete the
old asset, rename the new one; for that round trip devices get 404 for that manifest,
never a partial one); a manifest another publisher replaced since planning exits 7. A
killed publish's temporary asset is put in place or deleted (at 10 minutes) by the next.
An unchanged tree sends no request that creates content. Such requests go at least
--github-write-interval apart (1s: GitHub allows about 80 a minute, 500 an hour). Rate
limits (403/429 with retry-after or x-ratelimit-reset, or saying so) are waited out, with
a line on stderr, for at most --github-max-wait in all (60s), 5 times per request; beyond, publish stops with
exit 10 and says when the limit lifts. An upload failed with a 5xx is tried 4 times
(1, 2, 4 s apart), deleting its half-uploaded (`starter`) asset first; an asset GitHub
renames is refused (exit 6).

Exit codes: 0 published (or nothing to do); 6 refused (GitHub: a latest release not made
by ota-sign, a renamed asset); 7 conflict with what the host serves or another publish
running; 8 credentials rejected or missing; 9 bucket or repository not found; 10 network
failure or rate limit (run again later); 2 bad destination, bucket name, arguments or not
a release tree; 4 unreadable tree; 130/143 interrupted by SIGINT/SIGTERM.

Examples:
  ota-sign publish --repo site --to /var/www/firmware --dry-run
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
      ota-sign publish --repo site --to s3://acme-firmware/prod
  ota-sign publish --repo site --to s3://fw \\
      --s3-endpoint http://minio.local:9000 --json
  GITHUB_TOKEN=... \\
      ota-sign publish --repo site --to github://acme/thermostat-firmware";

/// Upload a release tree to a directory, S3 or GitHub Releases
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// The local release tree written by `ota-sign release`
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,

    /// Where devices fetch from: DIR, file://DIR, s3://BUCKET[/PREFIX] or github://OWNER/REPO
    #[arg(long, value_name = "DEST")]
    pub to: String,

    /// Print the plan (what would be uploaded or deleted, and why) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// S3 endpoint for S3-compatible services (MinIO, R2, s3s) [default: $AWS_ENDPOINT_URL, then AWS]
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// S3 region [default: $AWS_REGION, $AWS_DEFAULT_REGION, then us-east-1]
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,

    /// Ask the EC2 instance-metadata service (IMDSv2) for S3 credentials when the
    /// environment sets none [default: fail at once, exit 8]
    #[arg(long)]
    pub s3_instance_metadata: bool,

    /// GitHub REST API base URL (GitHub Enterprise, tests)
    #[arg(long, value_name = "URL", env = "GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    pub github_api_url: String,

    /// GitHub upload base URL [default: the one the API announces]
    #[arg(long, value_name = "URL")]
    pub github_upload_url: Option<String>,

    /// Make a new GitHub release with this tag, holding every current file, instead of
    /// changing the latest release in place (publishes after the first do that by
    /// default; the first one is tagged ota-<unix time>)
    #[arg(long, value_name = "TAG")]
    pub github_tag: Option<String>,

    /// Total time to wait for GitHub rate limits to lift; beyond, stop with exit 10
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration,
          default_value = "60s")]
    pub github_max_wait: std::time::Duration,

    /// Least time between two GitHub requests that create content (uploads, deletes, ...)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration,
          default_value = "1s")]
    pub github_write_interval: std::time::Duration,
}

#[derive(Serialize)]
struct Summary<'a> {
    destination: &'a str,
    dry_run: bool,
    uploads: usize,
    upload_bytes: u64,
    steps: &'a [ota_sign_lib::publish::plan::Step],
    /// Left by interrupted publishes; deleted unless `dry_run`.
    leftovers: &'a [ota_sign_lib::publish::Leftover],
    /// A directory's publish lock left by a dead or hung publish, taken over.
    stale_lock_taken_over: Option<&'a ota_sign_lib::publish::dir_lock::TakenOver>,
    deleted: usize,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let target = HostLocation::parse(&args.to)?;
    if !args.repo.is_dir() {
        return Err(Failure::usage(
            format!(
                "{} is not a release tree (no such directory)",
                args.repo.display()
            ),
            Some("make one with `ota-sign release --repo DIR ...`".to_owned()),
        ));
    }
    let tree = ReleaseTree::new(&args.repo);
    // A directory without manifests is a typo or the wrong directory, never "nothing to
    // publish": publishing it would only rewrite the host's inventory.
    if tree.manifests().map_err(PublishError::from)?.is_empty() {
        return Err(
            PublishDiagnostic(PublishError::NotATree(args.repo.display().to_string())).into(),
        );
    }
    let mut dest = destination(&target, &args, global)?;
    let dest = dest.as_mut();
    let mut taken_over = None;
    if !args.dry_run {
        // Ctrl-C must not leave a half-written file the web server would serve, nor a lock.
        ota_sign_lib::interrupt::install().map_err(|e| {
            Failure::new(
                exit::FAILURE,
                exit::Message::new(
                    format!("cannot watch for Ctrl-C: {e}"),
                    None,
                    "ota_sign::publish::signals",
                ),
            )
        })?;
        taken_over = dest.lock()?;
    }
    if let Some(t) = &taken_over {
        global.note(&format!(
            "took over the publish lock of {} ({})",
            t.holder, t.reason
        ));
    }
    let plan = make_plan(&tree, dest)?;
    print_plan(&plan, args.dry_run, global);

    let uploads = if args.dry_run {
        0
    } else {
        let progress = Bars::new(global, Some("uploaded"));
        execute(&plan, dest, &progress)?
    };
    if !args.dry_run {
        for l in &plan.leftovers {
            global.say(&format!(
                "deleted {} {}{}, left by an interrupted publish",
                l.kind.words(),
                l.name,
                l.id.as_ref()
                    .map(|id| format!(" (id {id})"))
                    .unwrap_or_default()
            ));
        }
        if uploads == 0 {
            global.say(&format!(
                "nothing to publish: {} already serves this release",
                plan.destination
            ));
        } else {
            global.say(&format!(
                "published {uploads} files ({} bytes) to {}",
                plan.upload_bytes(),
                plan.destination
            ));
        }
    }
    global.json_result(&Summary {
        destination: &plan.destination,
        dry_run: args.dry_run,
        uploads,
        upload_bytes: if args.dry_run || uploads > 0 {
            plan.upload_bytes()
        } else {
            0
        },
        steps: &plan.steps,
        leftovers: &plan.leftovers,
        stale_lock_taken_over: taken_over.as_ref(),
        deleted: if args.dry_run {
            0
        } else {
            plan.leftovers.len()
        },
    });
    Ok(())
}

fn destination(
    target: &HostLocation,
    args: &Args,
    global: &GlobalOpts,
) -> Result<Box<dyn Destination>, Failure> {
    Ok(match target {
        HostLocation::Dir(path) => Box::new(DirDestination::new(path)),
        HostLocation::S3 { bucket, prefix } => {
            let options = S3Options {
                endpoint: args.s3_endpoint.clone(),
                region: args.s3_region.clone(),
                instance_metadata: args.s3_instance_metadata,
                ..S3Options::default()
            };
            Box::new(S3Destination::new(bucket, prefix, &options)?)
        }
        HostLocation::GitHub { owner, repo } => {
            let token = std::env::var(GITHUB_TOKEN_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    Failure::usage(
                        "publishing to GitHub needs a token in GITHUB_TOKEN",
                        Some(
                            "create a token with `contents: write` on the repository; in \
                             GitHub Actions pass `GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`"
                                .to_owned(),
                        ),
                    )
                })?;
            let options = GitHubOptions {
                token,
                api_url: args.github_api_url.clone(),
                upload_url: args.github_upload_url.clone(),
                tag: args.github_tag.clone(),
                limits: GitHubLimits {
                    max_wait: args.github_max_wait,
                    write_interval: args.github_write_interval,
                    ..GitHubLimits::default()
                },
                // On stderr: a pause of up to --github-max-wait must not look like a hang.
                on_wait: (!global.quiet).then(|| {
                    Arc::new(|line: &str| eprintln!("{line}"))
                        as ota_sign_lib::publish::github::WaitNotice
                }),
            };
            Box::new(GitHubDestination::new(owner, repo, options)?)
        }
    })
}

fn print_plan(plan: &Plan, dry_run: bool, global: &GlobalOpts) {
    let count = plan.uploads().count();
    let leftovers = plan.leftovers.len();
    if count > 0 || dry_run || leftovers > 0 {
        global.say(&format!(
            "{}plan for {}: {count} uploads, {} bytes{}",
            if dry_run { "dry run: " } else { "" },
            plan.destination,
            plan.upload_bytes(),
            if leftovers > 0 {
                format!(", {leftovers} leftovers of interrupted publishes to delete")
            } else {
                String::new()
            }
        ));
    }
    for l in &plan.leftovers {
        global.say(&format!(
            "  {:<6}  {:<8}  {:<44} {:>10}  left by an interrupted publish",
            "delete",
            l.kind.short(),
            l.name,
            l.id.as_ref()
                .map(|id| format!("id {id}"))
                .unwrap_or_default(),
        ));
    }
    for s in &plan.steps {
        // Unchanged files matter only to someone asking for detail.
        if !s.upload && !dry_run && global.verbose == 0 {
            continue;
        }
        let reason = serde_json::to_value(&s.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        global.say(&format!(
            "  {:<6}  {:<8}  {:<44} {:>10}  {reason}",
            if s.upload { "upload" } else { "keep" },
            s.kind,
            s.name,
            s.size,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_wait_defaults_are_the_library_defaults() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::parse_from(["x", "--repo", "r", "--to", "github://a/b"]);
        let defaults = GitHubLimits::default();
        assert_eq!(cli.args.github_max_wait, defaults.max_wait);
        assert_eq!(cli.args.github_write_interval, defaults.write_interval);
    }
}
