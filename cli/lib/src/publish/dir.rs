//! A local directory (or `file://`), for nginx, GitHub Pages or any web server. Each file
//! is written to a temporary name and renamed, so the server never serves a prefix.
//! A directory offers no compare-and-swap, so a publish holds the directory's lock
//! ([`super::dir_lock`]) from planning to its last rename: two publishers never interleave,
//! and preconditions checked under the lock hold at the rename.
//! Ctrl-C and SIGTERM remove the temporary file being written (see [`crate::interrupt`]);
//! a publish killed outright leaves it behind, and a later publish deletes such files once
//! they are [`STALE_TEMP_AGE`] old, since a live publish renames each within the time it
//! takes to write one file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::dir_lock::{DirLock, LockError, TakenOver};
use super::{
    Destination, Leftover, LeftoverKind, Precondition, PublishError, RemoteObject, Upload,
};
use crate::repo::{atomic, names};

/// Test hook: milliseconds to pause after each 64 KiB written, so tests can catch a
/// publish mid-file (races, Ctrl-C, progress bars). Unset in real use.
pub const WRITE_DELAY_ENV: &str = "OTA_SIGN_TEST_WRITE_DELAY_MS";

/// A temporary file this old was left by a publish that died.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Publishes into a directory.
pub struct DirDestination {
    root: PathBuf,
    lock: Option<DirLock>,
    write_delay: Option<Duration>,
}

impl DirDestination {
    /// Writes into `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let write_delay = std::env::var(WRITE_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        DirDestination {
            root: root.into(),
            lock: None,
            write_delay,
        }
    }

    fn lock_error(&self, e: LockError) -> PublishError {
        match e {
            LockError::Held(holder) => PublishError::Locked {
                host: self.describe(),
                holder: holder.to_string(),
            },
            LockError::Io(e) => self.io(e),
        }
    }

    /// Checks, where this publish holds the lock, that it still does.
    fn confirm_lock(&self) -> Result<(), PublishError> {
        match &self.lock {
            Some(lock) => lock.confirm().map_err(|e| self.lock_error(e)),
            None => Ok(()),
        }
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
            if names::classify(&name).is_none() || !entry.path().is_file() {
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
                    kind: LeftoverKind::TemporaryFile,
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

    fn lock(&mut self) -> Result<Option<TakenOver>, PublishError> {
        fs::create_dir_all(&self.root).map_err(|e| self.io(e))?;
        let (lock, taken_over) = DirLock::acquire(&self.root).map_err(|e| self.lock_error(e))?;
        self.lock = Some(lock);
        Ok(taken_over)
    }

    fn begin(&mut self) -> Result<(), PublishError> {
        fs::create_dir_all(&self.root).map_err(|e| self.io(e))
    }

    fn put(&mut self, upload: Upload<'_>) -> Result<(), PublishError> {
        self.confirm_lock()?;
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
        let total = upload.bytes.len() as u64;
        let mut lock_lost = None;
        let mut on_chunk = |written: u64| -> io::Result<()> {
            upload.progress.advance(upload.name, written);
            if let Some(delay) = self.write_delay {
                std::thread::sleep(delay);
            }
            // The last call comes right before the rename: the lock must still be ours.
            if written == total
                && let Err(e) = self.confirm_lock()
            {
                lock_lost = Some(e);
                return Err(io::Error::other("publish lock lost"));
            }
            Ok(())
        };
        let written = atomic::write_replace_newer(&path, upload.bytes, &mut on_chunk);
        match (written, lock_lost) {
            (_, Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
            (Err(e), None) => Err(self.io(e)),
        }
    }
}
