//! `ota-sign fleet status`: the fleet's state from the static host's access logs, with
//! no server of our own. Every device names itself, its version, slot and last outcome
//! in its requests' `User-Agent` (`ota_agent::identity`); nginx, S3 and CloudFront log
//! that header, so their logs are the fleet's status reports.
//!
//! * [`parse`]: the three log formats (AWS's field lists quoted there), [`record`]: the
//!   device's token, [`time`]: log timestamps;
//! * [`source`]: files, directories, gzip, `s3://`;
//! * [`summary`]: per-device state and the timeline, [`report`]: per release;
//! * [`text`], [`html`]: the renderings (JSON is the report serialized);
//! * [`repo`]: releases and rollouts from a release tree, [`github`]: download counts
//!   from GitHub Releases.
//!
//! Nothing here depends on the rest of the CLI beyond `ota-format`.

pub mod github;
pub mod html;
pub mod parse;
pub mod record;
pub mod repo;
pub mod report;
pub mod source;
pub mod summary;
pub mod text;
pub mod time;

/// Why a fleet report could not be made. Malformed log lines are not errors: they are
/// counted in the report and skipped.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A log file, directory or release tree could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Listing or reading logs from S3 failed.
    #[error("cannot read logs from {url}: {source}")]
    S3 {
        /// The `s3://` URL.
        url: String,
        /// Why.
        #[source]
        source: Box<object_store::Error>,
    },
    /// No S3 credentials are configured (the EC2 instance-metadata service is not asked).
    #[error("no S3 credentials configured for {url}")]
    NoCredentials {
        /// The `s3://` URL.
        url: String,
    },
    /// GitHub's releases API failed.
    #[error("GitHub releases of {repo}: {message}")]
    Github {
        /// `owner/repo`.
        repo: String,
        /// What went wrong.
        message: String,
        /// The HTTP status, when GitHub answered.
        status: Option<u16>,
    },
}

/// What a [`FleetError`] means to whoever must act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A local file or directory could not be read.
    Io,
    /// The bucket, prefix or repository does not exist.
    NotFound,
    /// The host refused the credentials.
    Credentials,
    /// The host could not be reached or failed.
    Network,
}

impl FleetError {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            FleetError::Read { .. } => FailureKind::Io,
            FleetError::S3 { source, .. } => s3_failure_kind(source),
            FleetError::NoCredentials { .. } => FailureKind::Credentials,
            FleetError::Github { status, .. } => match status {
                Some(401 | 403) => FailureKind::Credentials,
                Some(404) => FailureKind::NotFound,
                _ => FailureKind::Network,
            },
        }
    }
}

/// object_store reports a failed list as `Generic`, with the host's answer only in the
/// message: the status code is read from there.
fn s3_failure_kind(error: &object_store::Error) -> FailureKind {
    let text = error.to_string();
    let answered = |code: &str| text.contains(&format!("status code: {code}"));
    match error {
        object_store::Error::NotFound { .. } => FailureKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => FailureKind::Credentials,
        _ if answered("404") => FailureKind::NotFound,
        _ if answered("401") || answered("403") => FailureKind::Credentials,
        _ => FailureKind::Network,
    }
}
