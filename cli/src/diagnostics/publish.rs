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
        exit::diagnostic_code("publish", publish_meaning(&self.0).0)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        publish_meaning(&self.0)
            .1
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }
}

const MISSING_IMAGE_HELP: &str = "the tree was edited by hand or copied partly; run \
     `ota-sign release` again or restore the image";
const CREDENTIALS_HELP: &str = "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (S3) or \
     GITHUB_TOKEN (GitHub) and their permissions; nothing was published";
const NO_CREDENTIALS_HELP: &str = "nothing was sent: ota-sign asks the instance-metadata \
     service only with --s3-instance-metadata";
const NOT_A_TREE_HELP: &str =
    "check --repo: it must be the directory given to `ota-sign release --repo`";
const BAD_BUCKET_NAME_HELP: &str = "check the bucket in --to s3://BUCKET/PREFIX; nothing was sent";
const LOCKED_HELP: &str = "wait for the other publish to finish, then run this one again \
     (it will say if the other one moved a channel ahead)";
const NOT_FOUND_HELP: &str =
    "check the bucket or repository name (and that these credentials can see it)";
const NETWORK_HELP: &str = "the host did not answer; devices still get the previous \
     release. Run the same command again to finish";
const IMAGE_CONFLICT_HELP: &str = "images are immutable once published: devices may be \
     downloading it. Release the new build under a new version";
const OTHER_PUBLISHER_HELP: &str = "another publisher changed the host: fetch its manifests \
     into the tree, run `ota-sign release` again, then publish";
const REMOTE_GARBAGE_HELP: &str = "the host serves a damaged file under a manifest name; \
     inspect it before overwriting anything";
const RATE_LIMITED_HELP: &str = "nothing was published; devices still get the previous \
     release. Run the same command again once the limit lifts (or raise --github-max-wait)";
const FOREIGN_LATEST_HELP: &str = "publish firmware to a repository dedicated to it, where \
     only ota-sign makes releases (or delete that release, or mark it as a pre-release so \
     it is not `latest`)";
const RENAMED_HELP: &str = "GitHub renames asset names with special characters; use device \
     types, channels and versions of letters, digits, '.', '-' and '_'";

/// What a publish error means to a user, one row per variant: the last part of its
/// stable diagnostic code and its line of help. (Exit codes follow the error's
/// [`FailureKind`], below.)
fn publish_meaning(e: &PublishError) -> (&'static str, Option<&'static str>) {
    use PublishError as P;
    match e {
        P::Repo(_) => ("tree", None),
        P::MissingImage { .. } => ("missing_image", Some(MISSING_IMAGE_HELP)),
        P::BadDestination(_) => ("bad_destination", None),
        P::BadBucketName { .. } => ("bad_bucket_name", Some(BAD_BUCKET_NAME_HELP)),
        P::NotATree(_) => ("not_a_tree", Some(NOT_A_TREE_HELP)),
        P::NoCredentials { .. } => ("no_credentials", Some(NO_CREDENTIALS_HELP)),
        P::Locked { .. } => ("locked", Some(LOCKED_HELP)),
        P::Credentials { .. } => ("credentials", Some(CREDENTIALS_HELP)),
        P::NotFound(_) => ("not_found", Some(NOT_FOUND_HELP)),
        P::Network { .. } => ("network", Some(NETWORK_HELP)),
        P::ImageConflict(_) => ("image_conflict", Some(IMAGE_CONFLICT_HELP)),
        P::ChannelAhead { .. } => ("channel_ahead", Some(OTHER_PUBLISHER_HELP)),
        P::Concurrent(_) => ("concurrent", Some(OTHER_PUBLISHER_HELP)),
        P::RemoteGarbage(_) => ("remote_garbage", Some(REMOTE_GARBAGE_HELP)),
        P::RateLimited { .. } => ("rate_limited", Some(RATE_LIMITED_HELP)),
        P::ForeignLatest { .. } => ("foreign_latest_release", Some(FOREIGN_LATEST_HELP)),
        P::Renamed { .. } => ("renamed_by_host", Some(RENAMED_HELP)),
        P::LocalIo { .. } | P::Remote { .. } => ("remote", None),
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
