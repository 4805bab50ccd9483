//! The publish lock of a directory: a directory has no conditional write, so two
//! publishers racing for it are kept apart by a file created exclusively (`O_EXCL`) in it,
//! [`LOCK_NAME`], holding who took it (pid, host, time) and a token unique to that
//! publish. The holder refreshes its modification time before each file it writes and
//! re-reads the token right before each rename, so a holder whose lock was taken over
//! stops before it changes anything more.
//!
//! A lock is stale, and taken over (and reported), when its process is gone (same host,
//! no `/proc/<pid>`) or when it was last refreshed [`STALE_LOCK_AGE`] ago: a live publish
//! refreshes it every file, and a directory write takes far less.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::interrupt;

/// File name of the lock, hidden and outside the layout, so nothing serves it as part of
/// a release and `classify` ignores it.
pub const LOCK_NAME: &str = ".ota-publish.lock";

/// A lock not refreshed for this long belongs to a publish that hangs or died elsewhere.
pub const STALE_LOCK_AGE: Duration = Duration::from_secs(10 * 60);

/// Who holds (or held) a lock, as written in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock, RFC 3339.
    pub since: String,
    /// Unique to one publish.
    #[serde(skip)]
    token: String,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let mut h = Holder::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => h.pid = v.trim().parse().unwrap_or(0),
                Some(("host", v)) => h.host = v.trim().to_owned(),
                Some(("since", v)) => h.since = v.trim().to_owned(),
                Some(("token", v)) => h.token = v.trim().to_owned(),
                _ => {}
            }
        }
        h
    }

    fn render(&self) -> String {
        format!(
            "pid {}\nhost {}\nsince {}\ntoken {}\n",
            self.pid, self.host, self.since, self.token
        )
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {} since {}", self.pid, self.host, self.since)
    }
}

/// A stale lock this publish took over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TakenOver {
    /// Who held it.
    pub holder: Holder,
    /// Why it was stale.
    pub reason: &'static str,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// A live publish holds it.
    Held(Holder),
    /// Reading or writing the lock failed.
    Io(io::Error),
}

impl From<io::Error> for LockError {
    fn from(e: io::Error) -> Self {
        LockError::Io(e)
    }
}

/// A held lock; released (removed, if still ours) on drop.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    file: File,
    token: String,
    _on_interrupt: interrupt::Registered,
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Whether the process is known to be gone; `false` when this system cannot tell.
fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), taking over a stale one.
    pub fn acquire(dir: &Path) -> Result<(DirLock, Option<TakenOver>), LockError> {
        let path = dir.join(LOCK_NAME);
        let mut taken_over = None;
        // Twice at most: once more after removing a stale lock, which another publisher
        // may have replaced by its own in between.
        for _ in 0..2 {
            match Self::create(&path) {
                Ok(lock) => return Ok((lock, taken_over)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            let (text, modified) = match read_lock(&path)? {
                Some(found) => found,
                None => continue, // released meanwhile
            };
            let holder = Holder::parse(&text);
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            let reason = if holder.host == host_name() && process_gone(holder.pid) {
                "its process is gone"
            } else if age >= STALE_LOCK_AGE {
                "not refreshed for 10 minutes or more"
            } else {
                return Err(LockError::Held(holder));
            };
            if !remove_if_unchanged(&path, &text)? {
                return Err(LockError::Held(holder));
            }
            taken_over = Some(TakenOver { holder, reason });
        }
        match read_lock(&path)? {
            Some((text, _)) => Err(LockError::Held(Holder::parse(&text))),
            None => Err(LockError::Io(io::Error::other(
                "the publish lock keeps changing hands",
            ))),
        }
    }

    fn create(path: &Path) -> io::Result<DirLock> {
        let holder = Holder {
            pid: std::process::id(),
            host: host_name(),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            token: new_token(),
        };
        let text = holder.render();
        // Ctrl-C removes it only while it holds our text: never another publisher's lock
        // (one that beat us to creating it, or took it over).
        let on_interrupt = interrupt::register_holding(path.to_path_buf(), text.clone());
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(DirLock {
            path: path.to_path_buf(),
            token: holder.token,
            _on_interrupt: on_interrupt,
            file,
        })
    }

    /// Checks that the lock is still this publish's and marks it fresh; a takeover by
    /// another publisher (which judged this one hung) is a conflict.
    pub fn confirm(&self) -> Result<(), LockError> {
        let held_by_us = read_lock(&self.path)?
            .is_some_and(|(text, _)| Holder::parse(&text).token == self.token);
        if !held_by_us {
            let holder = read_lock(&self.path)?
                .map(|(text, _)| Holder::parse(&text))
                .unwrap_or_default();
            return Err(LockError::Held(holder));
        }
        self.file.set_modified(SystemTime::now())?;
        Ok(())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if read_lock(&self.path)
            .ok()
            .flatten()
            .is_some_and(|(text, _)| Holder::parse(&text).token == self.token)
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The lock's text and modification time, `None` when there is none.
fn read_lock(path: &Path) -> io::Result<Option<(String, SystemTime)>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let modified = match fs::metadata(path) {
        Ok(m) => m.modified()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some((text, modified)))
}

/// Removes the stale lock whose text was `text`, unless it changed hands meanwhile: it is
/// first moved aside under a name of our own (atomic), then compared. Returns whether the
/// stale lock is gone; a fresh lock moved aside by mistake is put back.
fn remove_if_unchanged(path: &Path, text: &str) -> io::Result<bool> {
    let aside = path.with_file_name(format!("{LOCK_NAME}.stale-{}", new_token()));
    let _on_interrupt = interrupt::register(aside.clone());
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    }
    let moved = fs::read_to_string(&aside).unwrap_or_default();
    if moved == text {
        fs::remove_file(&aside)?;
        return Ok(true);
    }
    // A publisher took the lock between our read and the move: give it back. A link
    // fails rather than replace a lock a third publisher created meanwhile; that one and
    // the publisher we displaced then meet at `confirm`, and the displaced one stops.
    let _ = fs::hard_link(&aside, path);
    let _ = fs::remove_file(&aside);
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_while_the_first_lives_and_free_after() {
        let dir = tempfile::tempdir().unwrap();
        let (first, taken) = DirLock::acquire(dir.path()).unwrap();
        assert!(taken.is_none());
        match DirLock::acquire(dir.path()) {
            Err(LockError::Held(h)) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        first.confirm().unwrap();
        drop(first);
        assert!(!dir.path().join(LOCK_NAME).exists());
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn stale_locks_are_taken_over_and_the_old_holder_stops_at_confirm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_NAME);
        // A dead process on this host: no pid reaches u32::MAX.
        let dead = Holder {
            pid: u32::MAX,
            host: host_name(),
            since: "2026-01-01T00:00:00Z".into(),
            token: "dead".into(),
        };
        fs::write(&path, dead.render()).unwrap();
        let (lock, taken) = DirLock::acquire(dir.path()).unwrap();
        let taken = taken.expect("taken over");
        assert_eq!(taken.holder.pid, u32::MAX);
        assert_eq!(taken.reason, "its process is gone");
        drop(lock);

        // A live holder elsewhere, silent for longer than the bound.
        let (old, _) = DirLock::acquire(dir.path()).unwrap();
        let mut text = fs::read_to_string(&path).unwrap();
        text = text.replace(&format!("host {}", host_name()), "host elsewhere");
        fs::write(&path, &text).unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - STALE_LOCK_AGE)
            .unwrap();
        let (new, taken) = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(
            taken.unwrap().reason,
            "not refreshed for 10 minutes or more"
        );
        assert!(matches!(old.confirm(), Err(LockError::Held(_))));
        drop(old);
        assert!(path.exists(), "the old holder leaves the new lock alone");
        new.confirm().unwrap();
    }
}
