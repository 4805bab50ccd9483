//! A local directory (or `file://`), for nginx, GitHub Pages or any web server. Each file
//! is written to a temporary name and renamed, so the server never serves a prefix.
//! Preconditions are checked just before the rename: a directory offers no atomic
//! compare-and-swap, so two publishers racing within that window are not detected.
//! A publish killed while writing leaves its temporary file behind; a later publish
//! deletes such files once they are [`STALE_TEMP_AGE`] old, since a live publish renames
//! each within the time it takes to write one file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Destination, Leftover, Precondition, PublishError, RemoteObject, Upload};
use crate::repo::{atomic, layout};

/// A temporary file this old was left by a publish that died.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// The `kind` of a [`Leftover`] in a directory.
pub const TEMP_KIND: &str = "temporary-file";

/// Publishes into a directory.
pub struct DirDestination {
    root: PathBuf,
}

impl DirDestination {
    /// Writes into `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirDestination { root: root.into() }
    }

    fn io(&self, source: io::Error) -> PublishError {
        PublishError::LocalIo {
            host: self.describe(),
            source,
        }
    }

    fn version_of(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }
}

impl Destination for DirDestination {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn snapshot(&mut self) -> Result<BTreeMap<String, RemoteObject>, PublishError> {
        let mut out = BTreeMap::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io(e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if layout::classify(&name).is_none() || !entry.path().is_file() {
                continue;
            }
            // Local reads are cheap: give the digest so nothing needs a second look.
            let bytes = fs::read(entry.path()).map_err(|e| self.io(e))?;
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            out.insert(
                name,
                RemoteObject {
                    size: bytes.len() as u64,
                    sha256: Some(digest),
                    version: Some(hex::encode(digest)),
                },
            );
        }
        Ok(out)
    }

    fn fetch(&mut self, name: &str) -> Result<Option<Vec<u8>>, PublishError> {
        match fs::read(self.root.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn leftovers(&mut self) -> Result<Vec<Leftover>, PublishError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io(e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.starts_with(atomic::TEMP_PREFIX) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok());
            if meta.is_file() && age.is_some_and(|a| a >= STALE_TEMP_AGE) {
                out.push(Leftover {
                    kind: TEMP_KIND,
                    name,
                    id: None,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn remove(&mut self, leftover: &Leftover) -> Result<(), PublishError> {
        match fs::remove_file(self.root.join(&leftover.name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn begin(&mut self) -> Result<(), PublishError> {
        fs::create_dir_all(&self.root).map_err(|e| self.io(e))
    }

    fn put(&mut self, upload: Upload<'_>) -> Result<(), PublishError> {
        let path = self.root.join(upload.name);
        let current = self.fetch(upload.name)?;
        match (upload.precondition, current) {
            (Precondition::Absent, Some(existing)) => {
                // Someone wrote it since planning: fine only if it is the same file.
                return if existing == upload.bytes {
                    Ok(())
                } else {
                    Err(PublishError::Concurrent(upload.name.to_owned()))
                };
            }
            (Precondition::Unchanged(Some(v)), Some(existing))
                if &Self::version_of(&existing) != v =>
            {
                return Err(PublishError::Concurrent(upload.name.to_owned()));
            }
            (Precondition::Unchanged(_), None) => {
                return Err(PublishError::Concurrent(upload.name.to_owned()));
            }
            _ => {}
        }
        atomic::write_replace_newer(&path, upload.bytes).map_err(|e| self.io(e))
    }
}
