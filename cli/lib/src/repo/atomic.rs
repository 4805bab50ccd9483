//! Whole-file writes that are either complete or absent: data goes to a hidden temporary
//! file in the same directory, is synced, and is renamed over the target. A reader (nginx
//! serving the directory, or the next `release`) sees the old bytes or the new ones, never
//! a prefix. While it exists the temporary file is registered with
//! [`crate::interrupt`], so Ctrl-C removes it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Temporary files start with this, so `classify` ignores them and a crash leaves nothing
/// that looks like part of a release.
pub const TEMP_PREFIX: &str = ".ota-tmp-";

/// Bytes per write call; the progress callback runs after each.
const CHUNK: usize = 64 * 1024;

/// Called after each chunk with the bytes written so far, and once more right before the
/// file is put in place; an error aborts the write (and the temporary file goes).
pub type OnChunk<'a> = &'a mut dyn FnMut(u64) -> io::Result<()>;

/// Removes the temporary file unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    armed: bool,
    on_interrupt: crate::interrupt::Registered,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn temp_path(target: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "target has no parent directory",
        )
    })?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no file name"))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id())))
}

/// Writes `bytes` to `target`, replacing it atomically if it exists.
pub fn write_replace(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replace_impl(target, bytes, false, &mut |_| Ok(()))
}

/// Like [`write_replace`], and gives the new file a modification time at least one
/// second later than the old one's. nginx's ETag is mtime (in seconds) plus size, and a
/// re-signed manifest has the same size: without this, a manifest replaced within the
/// same second would keep its ETag and devices would get `304 Not Modified` for it.
pub fn write_replace_newer(target: &Path, bytes: &[u8], on_chunk: OnChunk<'_>) -> io::Result<()> {
    write_replace_impl(target, bytes, true, on_chunk)
}

fn write_replace_impl(
    target: &Path,
    bytes: &[u8],
    bump_mtime: bool,
    on_chunk: OnChunk<'_>,
) -> io::Result<()> {
    let modified = bump_mtime
        .then(|| fs::metadata(target).and_then(|m| m.modified()).ok())
        .flatten()
        .map(|old| SystemTime::now().max(old + Duration::from_secs(1)));
    let mut tmp = write_temp(target, bytes, modified, on_chunk)?;
    crate::interrupt::settle(&tmp.on_interrupt, || fs::rename(&tmp.path, target))?;
    tmp.armed = false;
    sync_dir(target);
    Ok(())
}

/// Writes `bytes` to `target` only if no file of that name exists; `AlreadyExists`
/// otherwise. Used for images, which are never replaced.
pub fn write_new(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(target, bytes, None, &mut |_| Ok(()))?;
    // A hard link fails if the target exists, which a rename would silently replace.
    // The temporary name stays armed: it is removed once the link exists.
    fs::hard_link(&tmp.path, target)?;
    sync_dir(target);
    Ok(())
}

/// Writes and syncs `bytes` to a fresh temporary file next to `target`, removed on drop
/// unless disarmed.
fn write_temp(
    target: &Path,
    bytes: &[u8],
    modified: Option<SystemTime>,
    on_chunk: OnChunk<'_>,
) -> io::Result<TempFile> {
    let path = temp_path(target)?;
    // Registered before it exists, so no moment has the file on disk but unregistered.
    let tmp = TempFile {
        on_interrupt: crate::interrupt::register(path.clone()),
        path,
        armed: true,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.path)?;
    let mut written = 0u64;
    for chunk in bytes.chunks(CHUNK) {
        f.write_all(chunk)?;
        written += chunk.len() as u64;
        on_chunk(written)?;
    }
    if let Some(t) = modified {
        f.set_modified(t)?;
    }
    f.sync_all()?;
    on_chunk(written)?;
    Ok(tmp)
}

/// Makes the rename durable; best effort because not every filesystem supports it.
fn sync_dir(target: &Path) {
    if let Some(dir) = target.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replace_leaves_only_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("a.stable.manifest");
        write_replace(&t, b"one").unwrap();
        write_replace(&t, b"two").unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"two");
        assert_eq!(entries(dir.path()), ["a.stable.manifest"]);
    }

    #[test]
    fn replace_newer_moves_mtime_past_the_old_second() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("a.stable.manifest");
        write_replace(&t, b"one").unwrap();
        let before = fs::metadata(&t).unwrap().modified().unwrap();
        write_replace_newer(&t, b"two", &mut |_| Ok(())).unwrap();
        let after = fs::metadata(&t).unwrap().modified().unwrap();
        assert!(after >= before + std::time::Duration::from_secs(1));
        assert_eq!(fs::read(&t).unwrap(), b"two");
    }

    #[test]
    fn write_new_refuses_an_existing_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("x.ota");
        write_new(&t, b"first").unwrap();
        let err = write_new(&t, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&t).unwrap(), b"first");
        assert_eq!(entries(dir.path()), ["x.ota"]);
    }

    #[test]
    fn a_write_its_callback_stops_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("x.ota");
        let mut seen = Vec::new();
        let err = write_replace_newer(&t, &vec![7u8; CHUNK * 2 + 1], &mut |n| {
            seen.push(n);
            if n > CHUNK as u64 {
                Err(io::Error::other("stop"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "stop");
        assert_eq!(seen, [CHUNK as u64, 2 * CHUNK as u64]);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("missing-subdir").join("x.ota");
        assert!(write_replace(&t, b"data").is_err());
        assert!(entries(dir.path()).is_empty());
    }
}
