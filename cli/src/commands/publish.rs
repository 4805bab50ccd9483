//! `ota-sign publish`: copy a release tree to a static host, images before manifests.
//! Holds no key: the files are signed already, and the host is trusted for nothing but
//! availability.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;

use clap::Args as ClapArgs;
use miette::Diagnostic;
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::exit::{self, ExitStatus, Failure};
use crate::progress::Bar;
use crate::repo::ReleaseTree;

use crate::publish as hosts;

use hosts::dir::DirDestination;
use hosts::github::{DEFAULT_API_URL, GitHubDestination, GitHubOptions};
use hosts::plan::{Plan, execute, make_plan};
use hosts::s3::{S3Destination, S3Options};
use hosts::{Destination, FailureKind, Progress, PublishError, Target};

/// Environment variable holding the GitHub token.
pub const GITHUB_TOKEN_ENV: &str = "GITHUB_TOKEN";

pub const ABOUT: &str = "\
Copy a release tree made by `ota-sign release` to the static host devices poll. Needs no
private key: a build machine that uploads never holds one.

Destinations (--to):
  DIR or file://DIR        a directory served by nginx, GitHub Pages or any web server;
                           every file is written to a temporary name and renamed
  s3://BUCKET[/PREFIX]     S3 or an S3-compatible service: credentials from the standard
                           AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                           AWS_REGION, ...), endpoint from --s3-endpoint or AWS_ENDPOINT_URL;
                           manifests get Cache-Control: no-cache, images a year, immutable
  github://OWNER/REPO      one GitHub release per publish, token from GITHUB_TOKEN; devices
                           poll https://github.com/OWNER/REPO/releases/latest/download/NAME

Only what changed is uploaded, images before manifests, so no device ever sees a manifest
whose image is missing; an interrupted publish leaves the previous release fully served and
running it again finishes the job. It refuses to replace a published image with different
bytes, and stops if another publisher moved a channel ahead (conditional writes). On GitHub
the new release is built as a draft, then published in one step; it also carries the
current manifests (and images) of device types and channels this tree does not hold.

A GitHub publish killed before that step leaves its draft behind (devices never see
drafts). The next publish deletes such drafts before creating its own and says so; it
recognises them by a marker ota-sign writes into the release body
(<!-- ota-sign:publish -->), so drafts made by people are never touched. --dry-run lists
them without deleting anything. Two publishers running at once: the later one deletes
the earlier one's draft, and the earlier one stops with exit code 7. In a directory, a
killed publish can leave a hidden temporary file (.ota-tmp-*); the next publish deletes
those older than 10 minutes (a younger one may be a live publish's).

Exit codes: 0 published (or nothing to do); 7 conflict with what the host serves;
8 credentials rejected; 9 bucket or repository not found; 10 network failure;
2 bad destination or arguments; 4 unreadable tree.

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

    /// GitHub REST API base URL (GitHub Enterprise, tests)
    #[arg(long, value_name = "URL", env = "GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    pub github_api_url: String,

    /// GitHub upload base URL [default: the one the API announces]
    #[arg(long, value_name = "URL")]
    pub github_upload_url: Option<String>,

    /// Tag of the new GitHub release [default: ota-<unix time>]
    #[arg(long, value_name = "TAG")]
    pub github_tag: Option<String>,
}

#[derive(Serialize)]
struct Summary<'a> {
    destination: &'a str,
    dry_run: bool,
    uploads: usize,
    upload_bytes: u64,
    steps: &'a [hosts::plan::Step],
    /// Left by interrupted publishes; deleted unless `dry_run`.
    leftovers: &'a [hosts::Leftover],
    deleted: usize,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let target = Target::parse(&args.to).map_err(PublishDiagnostic)?;
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
    let mut dest = destination(&target, &args)?;
    let dest = dest.as_mut();
    let plan = make_plan(&tree, dest).map_err(PublishDiagnostic)?;
    print_plan(&plan, args.dry_run, global);

    let uploads = if args.dry_run {
        0
    } else {
        let progress = Bars {
            global,
            current: RefCell::new(None),
        };
        execute(&plan, dest, &progress).map_err(PublishDiagnostic)?
    };
    if !args.dry_run {
        for l in &plan.leftovers {
            global.say(&format!(
                "deleted {} {}{}, left by an interrupted publish",
                l.kind.replace('-', " "),
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
        deleted: if args.dry_run {
            0
        } else {
            plan.leftovers.len()
        },
    });
    Ok(())
}

fn destination(target: &Target, args: &Args) -> Result<Box<dyn Destination>, Failure> {
    Ok(match target {
        Target::Dir(path) => Box::new(DirDestination::new(path)),
        Target::S3 { bucket, prefix } => {
            let options = S3Options {
                endpoint: args.s3_endpoint.clone(),
                region: args.s3_region.clone(),
                ..S3Options::default()
            };
            Box::new(S3Destination::new(bucket, prefix, &options).map_err(PublishDiagnostic)?)
        }
        Target::GitHub { owner, repo } => {
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
            };
            Box::new(GitHubDestination::new(owner, repo, options).map_err(PublishDiagnostic)?)
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
            l.kind.split('-').next().unwrap_or(l.kind),
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

/// One progress bar per upload, named after the file.
struct Bars<'a> {
    global: &'a GlobalOpts,
    current: RefCell<Option<(Bar, u64)>>,
}

impl Progress for Bars<'_> {
    fn start(&self, name: &str, size: u64) {
        *self.current.borrow_mut() = Some((Bar::bytes(self.global, name, size), size));
    }

    fn done(&self, name: &str) {
        if let Some((bar, size)) = self.current.borrow_mut().take() {
            bar.set(size);
            bar.finish();
        }
        self.global.detail(&format!("uploaded {name}"));
    }
}

/// A publish error with a stable code, a line of help and an exit code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PublishDiagnostic(pub PublishError);

impl Diagnostic for PublishDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match &self.0 {
            PublishError::Repo(_) => "tree",
            PublishError::MissingImage { .. } => "missing_image",
            PublishError::BadDestination(_) => "bad_destination",
            PublishError::Credentials { .. } => "credentials",
            PublishError::NotFound(_) => "not_found",
            PublishError::Network { .. } => "network",
            PublishError::ImageConflict(_) => "image_conflict",
            PublishError::ChannelAhead { .. } => "channel_ahead",
            PublishError::Concurrent(_) => "concurrent",
            PublishError::RemoteGarbage(_) => "remote_garbage",
            _ => "remote",
        };
        Some(Box::new(format!("ota_sign::publish::{code}")))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match &self.0 {
            PublishError::MissingImage { .. } => {
                "the tree was edited by hand or copied partly; run `ota-sign release` again or restore the image"
            }
            PublishError::Credentials { .. } => {
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (S3) or GITHUB_TOKEN (GitHub) and their permissions; nothing was published"
            }
            PublishError::NotFound(_) => {
                "check the bucket or repository name (and that these credentials can see it)"
            }
            PublishError::Network { .. } => {
                "the host did not answer; devices still get the previous release. Run the same command again to finish"
            }
            PublishError::ImageConflict(_) => {
                "images are immutable once published: devices may be downloading it. Release the new build under a new version"
            }
            PublishError::ChannelAhead { .. } | PublishError::Concurrent(_) => {
                "another publisher changed the host: fetch its manifests into the tree, run `ota-sign release` again, then publish"
            }
            PublishError::RemoteGarbage(_) => {
                "the host serves a damaged file under a manifest name; inspect it before overwriting anything"
            }
            _ => return None,
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for PublishDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.0 {
            PublishError::Repo(e) => super::release::repo_exit_code(e),
            PublishError::BadDestination(_) => exit::USAGE,
            e => match e.kind() {
                FailureKind::Credentials => exit::CREDENTIALS,
                FailureKind::NotFound => exit::NOT_FOUND,
                FailureKind::Network => exit::NETWORK,
                FailureKind::Conflict => exit::CONFLICT,
                FailureKind::Io => exit::IO,
                FailureKind::Usage | FailureKind::Remote => exit::FAILURE,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_classes_have_their_documented_exit_codes() {
        let code = |e| PublishDiagnostic(e).exit_code();
        let host = || "s3://b".to_owned();
        let detail = String::new;
        assert_eq!(
            code(PublishError::Credentials {
                host: host(),
                detail: detail()
            }),
            8
        );
        assert_eq!(code(PublishError::NotFound(host())), 9);
        assert_eq!(
            code(PublishError::Network {
                host: host(),
                detail: detail()
            }),
            10
        );
        assert_eq!(code(PublishError::ImageConflict("x.ota".into())), 7);
        assert_eq!(code(PublishError::Concurrent("x.manifest".into())), 7);
        assert_eq!(code(PublishError::BadDestination("ftp://x".into())), 2);
        assert_eq!(
            code(PublishError::Remote {
                host: host(),
                detail: detail()
            }),
            1
        );
    }
}
