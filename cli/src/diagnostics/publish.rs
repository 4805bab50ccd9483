//! Publish errors as diagnostics: a stable code, a line of help and an exit code.

use std::fmt;

use miette::Diagnostic;
use ota_sign_lib::publish::{FailureKind, PublishError};

use crate::exit::{self, ExitStatus};

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
            PublishError::BadBucketName { .. } => "bad_bucket_name",
            PublishError::NotATree(_) => "not_a_tree",
            PublishError::NoCredentials { .. } => "no_credentials",
            PublishError::Locked { .. } => "locked",
            PublishError::Credentials { .. } => "credentials",
            PublishError::NotFound(_) => "not_found",
            PublishError::Network { .. } => "network",
            PublishError::ImageConflict(_) => "image_conflict",
            PublishError::ChannelAhead { .. } => "channel_ahead",
            PublishError::Concurrent(_) => "concurrent",
            PublishError::RemoteGarbage(_) => "remote_garbage",
            PublishError::RateLimited { .. } => "rate_limited",
            PublishError::ForeignLatest { .. } => "foreign_latest_release",
            PublishError::Renamed { .. } => "renamed_by_host",
            PublishError::LocalIo { .. } | PublishError::Remote { .. } => "remote",
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
            PublishError::NoCredentials { .. } => {
                "nothing was sent: ota-sign asks the instance-metadata service only with --s3-instance-metadata"
            }
            PublishError::NotATree(_) => {
                "check --repo: it must be the directory given to `ota-sign release --repo`"
            }
            PublishError::BadBucketName { .. } => {
                "check the bucket in --to s3://BUCKET/PREFIX; nothing was sent"
            }
            PublishError::Locked { .. } => {
                "wait for the other publish to finish, then run this one again (it will say if the other one moved a channel ahead)"
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
            PublishError::RateLimited { .. } => {
                "nothing was published; devices still get the previous release. Run the same command again once the limit lifts (or raise --github-max-wait)"
            }
            PublishError::ForeignLatest { .. } => {
                "publish firmware to a repository dedicated to it, where only ota-sign makes releases (or delete that release, or mark it as a pre-release so it is not `latest`)"
            }
            PublishError::Renamed { .. } => {
                "GitHub renames asset names with special characters; use device types, channels and versions of letters, digits, '.', '-' and '_'"
            }
            PublishError::Repo(..)
            | PublishError::BadDestination(..)
            | PublishError::LocalIo { .. }
            | PublishError::Remote { .. } => return None,
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for PublishDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.0 {
            PublishError::Repo(e) => super::repo::repo_exit_code(e),
            PublishError::BadDestination(_)
            | PublishError::BadBucketName { .. }
            | PublishError::NotATree(_) => exit::USAGE,
            e => match e.kind() {
                FailureKind::Credentials => exit::CREDENTIALS,
                FailureKind::NotFound => exit::NOT_FOUND,
                FailureKind::Network | FailureKind::RateLimited => exit::NETWORK,
                FailureKind::Refused => exit::POLICY,
                FailureKind::Conflict => exit::CONFLICT,
                FailureKind::Io => exit::IO,
                FailureKind::Usage | FailureKind::Remote => exit::FAILURE,
            },
        }
    }
}

crate::exit::failure_via!(PublishError => PublishDiagnostic);

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
            code(PublishError::RateLimited {
                host: host(),
                detail: detail()
            }),
            10
        );
        assert_eq!(
            code(PublishError::ForeignLatest {
                host: host(),
                tag: "v1".into(),
                id: 1
            }),
            6
        );
        assert_eq!(
            code(PublishError::Remote {
                host: host(),
                detail: detail()
            }),
            1
        );
    }
}
