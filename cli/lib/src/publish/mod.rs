//! `publish`: copy a release tree to a static host, images before manifests, so that at
//! every moment the host serves a consistent release. No key is involved: the files are
//! already signed, and the host is trusted for nothing but availability.
//!
//! Each host is one module implementing [`Destination`]; the planning and ordering rules
//! live once, in [`plan`].

pub mod bucket_name;
pub mod dir;
pub mod dir_lock;
pub mod github;
mod github_http;
#[cfg(test)]
mod github_in_place_tests;
#[cfg(test)]
mod github_tests;
#[cfg(test)]
mod host_tests;
pub mod inventory;
#[cfg(test)]
mod inventory_tests;
pub mod plan;
pub mod s3;
mod s3_status;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::repo::{FileKind, RepoError};

/// What a destination currently serves under one name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteObject {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, when the host can tell without a download.
    pub sha256: Option<[u8; 32]>,
    /// The host's version tag (ETag), for conditional replacement.
    pub version: Option<String>,
}

/// A condition the host must check atomically with the write, where it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Write only if nothing exists under the name (`If-None-Match: *`).
    Absent,
    /// Write only if the current object is still this version (`If-Match`).
    Unchanged(Option<String>),
    /// Write unconditionally (informational files).
    None,
}

/// One file to write.
#[derive(Clone, Copy)]
pub struct Upload<'a> {
    /// File name in the flat layout.
    pub name: &'a str,
    /// What the file is (sets Content-Type and caching).
    pub kind: &'a FileKind,
    /// The bytes.
    pub bytes: &'a [u8],
    /// What must hold at the moment of writing.
    pub precondition: &'a Precondition,
    /// Told how far the write got, where the host can tell.
    pub progress: &'a dyn Progress,
}

/// Something an earlier publish that never finished (a killed process) left on the host,
/// invisible to devices, which the next publish removes before staging its own: on GitHub
/// a draft release that ota-sign created and never published, in a directory a temporary
/// file that was never renamed into place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// What it is.
    pub kind: LeftoverKind,
    /// Its name on the host (a release's tag, a file name).
    pub name: String,
    /// The host's id for it, where the name is not one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What a [`Leftover`] is; in JSON `draft-release`, `temporary-asset` or `temporary-file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftoverKind {
    /// On GitHub: a draft release ota-sign created and never published.
    DraftRelease,
    /// On GitHub: an asset uploaded under a temporary name
    /// (see `github.rs`) and never renamed into place.
    TemporaryAsset,
    /// In a directory: a temporary file never renamed into place.
    TemporaryFile,
}

impl LeftoverKind {
    /// In words, for people: "draft release".
    pub fn words(self) -> &'static str {
        match self {
            LeftoverKind::DraftRelease => "draft release",
            LeftoverKind::TemporaryAsset => "temporary asset",
            LeftoverKind::TemporaryFile => "temporary file",
        }
    }

    /// One word, for a table column: "draft" or "temporary".
    pub fn short(self) -> &'static str {
        match self {
            LeftoverKind::DraftRelease => "draft",
            LeftoverKind::TemporaryAsset | LeftoverKind::TemporaryFile => "temporary",
        }
    }
}

/// Upload progress, one piece of work per file: the CLI draws bars, tests count calls.
pub use crate::progress::Progress;

/// A static host. Implementations are thin: they list, read and write whole files; the
/// rules (order, idempotence, conflicts) are in [`plan`].
pub trait Destination {
    /// Where this writes, for messages (`s3://bucket/prefix`).
    fn describe(&self) -> String;
    /// Everything of the flat layout the host serves now, by name.
    fn snapshot(&mut self) -> Result<BTreeMap<String, RemoteObject>, PublishError>;
    /// The bytes the host serves under `name`, if any.
    fn fetch(&mut self, name: &str) -> Result<Option<Vec<u8>>, PublishError>;
    /// Whether each publish replaces the whole served set at once (GitHub: a new
    /// release), so unchanged and other channels' files must be sent again.
    fn replaces_whole_set(&self) -> bool {
        false
    }
    /// Whether only images some manifest names are offered to the host (GitHub: a release
    /// holds at most 1,000 assets, so a tree's history of images is not sent along).
    fn offers_only_referenced_images(&self) -> bool {
        self.replaces_whole_set()
    }
    /// Takes the host's publish lock, where the host needs one to keep publishers apart
    /// (a directory); held until the destination is dropped. Called before planning, by a
    /// publish that will write. Returns the stale lock it took over, if any.
    fn lock(&mut self) -> Result<Option<dir_lock::TakenOver>, PublishError> {
        Ok(None)
    }
    /// The SHA-256 of what the host serves under `name`, where the host can tell without
    /// a download (S3: a HEAD); asked only when the snapshot had none.
    fn digest(&mut self, _name: &str) -> Result<Option<[u8; 32]>, PublishError> {
        Ok(None)
    }
    /// Keeps what this publish learned about the host for the next one (S3: the digests of
    /// its objects), after a successful publish, also one that uploaded nothing.
    fn remember(&mut self) -> Result<(), PublishError> {
        Ok(())
    }
    /// Leftovers of earlier interrupted publishes, found while planning. Only what this
    /// tool provably made itself: never anything a person created.
    fn leftovers(&mut self) -> Result<Vec<Leftover>, PublishError> {
        Ok(Vec::new())
    }
    /// Deletes one leftover; one that is gone already is not an error.
    fn remove(&mut self, _leftover: &Leftover) -> Result<(), PublishError> {
        Ok(())
    }
    /// Called once before the first upload.
    fn begin(&mut self) -> Result<(), PublishError> {
        Ok(())
    }
    /// Writes one file.
    fn put(&mut self, upload: Upload<'_>) -> Result<(), PublishError>;
    /// Makes the uploads visible, if the host stages them.
    fn commit(&mut self) -> Result<(), PublishError> {
        Ok(())
    }
    /// Undoes staging after a failure, best effort.
    fn abort(&mut self) {}
}

/// Why a publish failed; [`PublishError::kind`] picks the exit code.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The local release tree is unreadable or inconsistent.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A manifest names an image the tree does not hold (or holds with other bytes).
    #[error("{manifest}: names image {image}, which is missing or differs in the release tree")]
    MissingImage {
        /// Manifest file name.
        manifest: String,
        /// Image file name.
        image: String,
    },
    /// The destination string cannot be understood.
    #[error(
        "bad destination {0:?}: expected a directory, file://PATH, s3://BUCKET[/PREFIX] or github://OWNER/REPO"
    )]
    BadDestination(String),
    /// A bucket name S3 refuses; caught before any request.
    #[error("{name:?} is not a valid S3 bucket name: {rule}")]
    BadBucketName {
        /// The name given.
        name: String,
        /// The naming rule it breaks.
        rule: &'static str,
    },
    /// `--repo` holds no release: no manifest.
    #[error(
        "{0}: not a release tree (it holds no <device-type>.<channel>.manifest); a release tree is the directory `ota-sign release --repo DIR` writes: signed manifests, their images, index.json and SHA256SUMS"
    )]
    NotATree(String),
    /// No credentials are configured and the instance-metadata service was not chosen.
    #[error(
        "{host}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or pass --s3-instance-metadata on EC2"
    )]
    NoCredentials {
        /// Host.
        host: String,
    },
    /// Another publish holds the destination's lock.
    #[error(
        "{host}: another publish is running ({holder}); nothing was changed. Its lock is taken over once its process is gone or it made no progress for 10 minutes"
    )]
    Locked {
        /// Host.
        host: String,
        /// Who holds the lock.
        holder: String,
    },
    /// The host rejected the credentials.
    #[error("{host}: credentials rejected: {detail}")]
    Credentials {
        /// Host.
        host: String,
        /// What the host said.
        detail: String,
    },
    /// The bucket or repository does not exist (or is invisible to these credentials).
    #[error("{0}: bucket or repository not found")]
    NotFound(String),
    /// The host could not be reached or broke off.
    #[error("{host}: network failure: {detail}")]
    Network {
        /// Host.
        host: String,
        /// The transport error.
        detail: String,
    },
    /// The host serves an image of this name with different bytes; images are immutable.
    #[error(
        "{0}: the host already serves a different image under this name; refusing to replace it"
    )]
    ImageConflict(String),
    /// The host's manifest is at or beyond the local sequence: another publisher moved
    /// the channel ahead.
    #[error(
        "{name}: the host serves sequence {remote}, the release tree has {local}; another publisher moved this channel ahead (run release again from the current state)"
    )]
    ChannelAhead {
        /// Manifest file name.
        name: String,
        /// Sequence on the host.
        remote: u64,
        /// Sequence in the tree.
        local: u64,
    },
    /// A conditional write failed: the host changed between planning and writing.
    #[error("{0}: changed on the host during this publish (concurrent publisher)")]
    Concurrent(String),
    /// The host serves a manifest that is not one.
    #[error("{0}: the host serves something that is not a valid manifest")]
    RemoteGarbage(String),
    /// The host asks to wait (a rate limit) longer than this publish may.
    #[error("{host}: rate limit: {detail}")]
    RateLimited {
        /// Host.
        host: String,
        /// What the host said and when the limit lifts.
        detail: String,
    },
    /// The release devices resolve as `latest` was not made by ota-sign: publishing over
    /// it would drop the manifests it lacks, and it shows the repository is shared.
    #[error(
        "{host}: the latest release {tag:?} (id {id}) was not made by ota-sign; devices poll releases/latest, so every release in this repository must be ota-sign's"
    )]
    ForeignLatest {
        /// Host.
        host: String,
        /// The release's tag.
        tag: String,
        /// The release's id.
        id: u64,
    },
    /// The host stored an upload under another name than the one sent (GitHub renames
    /// names with special characters): devices would ask for the sent name.
    #[error(
        "{host}: uploaded {sent:?}, but the host stored it as {stored:?}; devices would not find it"
    )]
    Renamed {
        /// Host.
        host: String,
        /// The name sent.
        sent: String,
        /// The name the host stored.
        stored: String,
    },
    /// Reading or writing the destination directory failed (permission, disk full).
    #[error("{host}: {source}")]
    LocalIo {
        /// The directory.
        host: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Any other answer from the host.
    #[error("{host}: {detail}")]
    Remote {
        /// Host.
        host: String,
        /// What went wrong.
        detail: String,
    },
}

/// Failure classes, each with its own exit code in the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Bad input: tree, arguments.
    Usage,
    /// Credentials rejected.
    Credentials,
    /// Bucket or repository missing.
    NotFound,
    /// Network failure.
    Network,
    /// Conflict with what the host serves.
    Conflict,
    /// The host asks to wait longer than allowed (rate limit); try again later.
    RateLimited,
    /// Refused by a safety rule: publishing would break what devices fetch.
    Refused,
    /// A local file operation failed.
    Io,
    /// Anything else the host said.
    Remote,
}

impl PublishError {
    /// The class of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            PublishError::Repo(_)
            | PublishError::MissingImage { .. }
            | PublishError::BadDestination(_)
            | PublishError::BadBucketName { .. }
            | PublishError::NotATree(_) => FailureKind::Usage,
            PublishError::Credentials { .. } | PublishError::NoCredentials { .. } => {
                FailureKind::Credentials
            }
            PublishError::NotFound(_) => FailureKind::NotFound,
            PublishError::Network { .. } => FailureKind::Network,
            PublishError::ImageConflict(_)
            | PublishError::ChannelAhead { .. }
            | PublishError::Concurrent(_)
            | PublishError::Locked { .. }
            | PublishError::RemoteGarbage(_) => FailureKind::Conflict,
            PublishError::RateLimited { .. } => FailureKind::RateLimited,
            PublishError::ForeignLatest { .. } | PublishError::Renamed { .. } => {
                FailureKind::Refused
            }
            PublishError::LocalIo { .. } => FailureKind::Io,
            PublishError::Remote { .. } => FailureKind::Remote,
        }
    }
}

/// Content-Type and Cache-Control for a file of the layout: manifests must be revalidated
/// on every poll, images never change under their name, and neither may be recompressed
/// on the way (`no-transform`): a proxy or CDN that gzips `application/octet-stream`
/// would hand devices bytes whose length and ranges differ from what was signed.
pub fn http_headers(kind: &FileKind, name: &str) -> (&'static str, &'static str) {
    match kind {
        FileKind::Manifest { .. } => ("application/octet-stream", "no-cache, no-transform"),
        FileKind::Image | FileKind::Delta => (
            "application/octet-stream",
            "public, max-age=31536000, immutable, no-transform",
        ),
        FileKind::Info if name.ends_with(".json") => ("application/json", "no-cache"),
        FileKind::Info => ("text/plain; charset=utf-8", "no-cache"),
    }
}

/// Parses `--to`: a path or `file://PATH`, `s3://bucket/prefix`, `github://owner/repo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostLocation {
    /// A local directory.
    Dir(std::path::PathBuf),
    /// An S3 bucket and key prefix (no leading or trailing slash; may be empty).
    S3 {
        /// Bucket.
        bucket: String,
        /// Prefix.
        prefix: String,
    },
    /// A GitHub repository.
    GitHub {
        /// Owner.
        owner: String,
        /// Repository.
        repo: String,
    },
}

impl HostLocation {
    /// Parses a destination string.
    pub fn parse(s: &str) -> Result<HostLocation, PublishError> {
        let bad = || PublishError::BadDestination(s.to_owned());
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || prefix.split('/').any(|p| p == "..") {
                return Err(bad());
            }
            bucket_name::check(bucket).map_err(|rule| PublishError::BadBucketName {
                name: bucket.to_owned(),
                rule,
            })?;
            return Ok(HostLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(rest) = s.strip_prefix("github://") {
            let (owner, repo) = rest.trim_end_matches('/').split_once('/').ok_or_else(bad)?;
            if owner.is_empty() || repo.is_empty() || repo.contains('/') {
                return Err(bad());
            }
            return Ok(HostLocation::GitHub {
                owner: owner.to_owned(),
                repo: repo.to_owned(),
            });
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(bad());
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() {
            return Err(bad());
        }
        Ok(HostLocation::Dir(path.into()))
    }
}

#[cfg(test)]
mod tests;
