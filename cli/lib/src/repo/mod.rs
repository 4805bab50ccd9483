//! The local release tree: the exact files a host will serve, laid out flat (see
//! [`names`]). The signed manifests in it are the channel state: their sequence numbers,
//! versions and counters are what the next `release` compares against, so there is no
//! second copy of the state that could disagree with what devices see.

pub mod atomic;
pub mod channel;
pub mod deltas;
pub mod index;
pub mod names;
pub mod release;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ota_format::{FormatError, Manifest, Version};

pub use names::FileKind;

/// Why a release tree could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An input image failed verification.
    #[error("{path}: image does not verify: {source}")]
    BadImage {
        /// The image file.
        path: PathBuf,
        /// The check that failed.
        #[source]
        source: FormatError,
    },
    /// An input image verifies, but its payload breaks a rule devices apply after the
    /// signature (checked with the agent's own code).
    #[error("{path}: devices refuse it: {source}")]
    NotInstallable {
        /// The image file.
        path: PathBuf,
        /// The rule the payload breaks.
        #[source]
        source: ota_agent::install::InstallError,
        /// The zstd window log the header declares (`None`: stored payload).
        declared_window_log: Option<u8>,
        /// The window log devices of the image's type accept.
        max_window_log: u8,
    },
    /// A manifest already in the tree is malformed or not signed by a trusted key.
    #[error("{name}: existing manifest does not verify: {source}")]
    BadManifest {
        /// The manifest's file name.
        name: String,
        /// The check that failed.
        #[source]
        source: FormatError,
    },
    /// Two input images are for the same device type.
    #[error("two images for device type {0} in one release")]
    DuplicateDeviceType(String),
    /// The new image's security counter is lower than the channel's current one.
    #[error(
        "{channel}: security counter {new} is lower than the current {current}; devices would refuse it and no flag can change that"
    )]
    CounterRollback {
        /// `<device-type>.<channel>`.
        channel: String,
        /// The new counter.
        new: u64,
        /// The current counter.
        current: u64,
    },
    /// The new version is lower than the current one and `--allow-downgrade` was not given.
    #[error("{channel}: version {new} is lower than the current {current} (use --allow-downgrade)")]
    Downgrade {
        /// `<device-type>.<channel>`.
        channel: String,
        /// The new version.
        new: Version,
        /// The current version.
        current: Version,
    },
    /// The channel already carries this version, but as a different image.
    #[error(
        "{channel}: version {version} is already released as a different image; give the new build a new version"
    )]
    VersionReused {
        /// `<device-type>.<channel>`.
        channel: String,
        /// The version.
        version: Version,
    },
    /// An image file of the same name but different bytes is already in the tree.
    #[error("{0}: an image of this name with different bytes is already in the tree")]
    ImageNameCollision(String),
    /// The channel's sequence number cannot grow any further.
    #[error("{0}: sequence number exhausted")]
    SequenceExhausted(String),
    /// A name does not fit the format's limits.
    #[error("{0}: name does not fit the format's limits")]
    BadName(String),
    /// The signer produced a signature that does not verify.
    #[error("the signer produced an invalid signature")]
    SignerFailed,
    /// The signing key could not sign (a remote signer failed, a key error).
    #[error("signing failed")]
    Signer(#[source] ota_keys::KeyError),
    /// The device type's configured agents cannot decode the image's compression.
    #[error(
        "{path}: devices of type {device_type} run agent generation {generation} (`agent_generation` in ota-sign.toml), which cannot decode {compression}: none of them could install it"
    )]
    AgentCannotDecode {
        /// The image file.
        path: PathBuf,
        /// Its device type.
        device_type: String,
        /// The configured generation.
        generation: crate::devices::AgentGeneration,
        /// The image's compression.
        compression: ota_format::Compression,
    },
    /// The channel's current image is method 0/1, the new one method 2, and the device
    /// type does not say which agent its fleet runs: devices still on the first agent
    /// would stop updating.
    #[error(
        "{path}: {channel} currently serves an image compressed with {previous}, the new one uses {compression}, which agents of generation 1 cannot decode; [device.{device_type}] of ota-sign.toml does not say which agent the fleet runs"
    )]
    AgentGenerationUnset {
        /// The image file.
        path: PathBuf,
        /// `<device-type>.<channel>`.
        channel: String,
        /// Its device type.
        device_type: String,
        /// The compression of the channel's current image.
        previous: ota_format::Compression,
        /// The new image's compression.
        compression: ota_format::Compression,
    },
    /// A delta to a new image could not be made.
    #[error("{name}: {source}")]
    Delta {
        /// The delta's file name.
        name: String,
        /// Why.
        #[source]
        source: crate::delta::DeltaError,
    },
    /// A rollout outside 0..=100%.
    #[error("rollout must be between 0 and 100%")]
    BadRollout,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A directory holding a release tree.
#[derive(Clone, Debug)]
pub struct ReleaseTree {
    root: PathBuf,
}

impl ReleaseTree {
    /// The tree at `root`; the directory need not exist yet.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ReleaseTree { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a file in the tree.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Reads a file of the tree; `None` when absent.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Every file of the layout in the tree, by name, with its kind. Anything else
    /// (temporary files, notes, subdirectories) is ignored.
    pub fn files(&self) -> Result<BTreeMap<String, FileKind>, RepoError> {
        let mut out = BTreeMap::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&self.root)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&self.root))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_file = entry.file_type().map_err(io_err(&entry.path()))?.is_file();
            if let (true, Some(kind)) = (is_file, names::classify(&name)) {
                out.insert(name, kind);
            }
        }
        Ok(out)
    }

    /// Every manifest in the tree, decoded but not verified (for listings and publish,
    /// which holds no key; `release` verifies before it builds on one).
    pub fn manifests(&self) -> Result<BTreeMap<String, (Manifest, Vec<u8>)>, RepoError> {
        let mut out = BTreeMap::new();
        for (name, kind) in self.files()? {
            if let FileKind::Manifest { .. } = kind {
                let bytes = self.read(&name)?.unwrap_or_default();
                let m = Manifest::inspect(&bytes).map_err(|source| RepoError::BadManifest {
                    name: name.clone(),
                    source,
                })?;
                out.insert(name, (m, bytes));
            }
        }
        Ok(out)
    }
}
