//! Ctrl-C (SIGINT) and SIGTERM while a command holds files that must not outlive it: a
//! half-written temporary file a web server would serve, a publish lock that would make
//! the next publish wait for its stale-lock bound. Each such file is registered here while
//! it exists; on a signal the watcher removes every registered file, newest first, and
//! exits with 128 + the signal number (130, 143), as a shell reports a process killed by
//! it. Without [`install`] signals keep their default effect and registering costs a lock.
//!
//! A rename that turns a registered temporary file into a served one runs inside
//! [`settle`], which holds the registry: a signal arriving meanwhile waits until the rename
//! is done and the file is no longer registered, so the watcher never deletes a name that
//! is already in place and never leaves a temporary file whose rename it interrupted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Exit code after SIGINT.
pub const EXIT_SIGINT: u8 = 128 + 2;
/// Exit code after SIGTERM.
pub const EXIT_SIGTERM: u8 = 128 + 15;

/// A registered file, and the text it must still hold to be removed (a lock another
/// publish took over is not ours to remove).
#[cfg_attr(
    not(feature = "publish"),
    allow(dead_code, reason = "only the watcher (feature `publish`) reads them")
)]
struct Entry {
    id: u64,
    path: PathBuf,
    only_if: Option<String>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    // A panic elsewhere while holding the lock leaves a list that is still valid.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file to remove if the process is interrupted; dropping it forgets the file (it was
/// renamed into place or removed by its owner).
#[derive(Debug)]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().retain(|e| e.id != self.0);
    }
}

/// Registers `path` for removal on SIGINT/SIGTERM.
pub fn register(path: PathBuf) -> Registered {
    add(path, None)
}

/// Registers `path` for removal on SIGINT/SIGTERM while it holds exactly `text`.
pub fn register_holding(path: PathBuf, text: String) -> Registered {
    add(path, Some(text))
}

fn add(path: PathBuf, only_if: Option<String>) -> Registered {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    registry().push(Entry { id, path, only_if });
    Registered(id)
}

/// Runs `f` (a rename of the registered file into place) so that no signal cleanup runs
/// during it; when `f` succeeds the file is no longer registered.
pub fn settle<T, E>(file: &Registered, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut list = registry();
    let result = f();
    if result.is_ok() {
        list.retain(|e| e.id != file.0);
    }
    result
}

/// Starts the watcher thread. Call once, before the work that registers files.
#[cfg(feature = "publish")]
pub fn install() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered here, on the caller's thread, so a signal right after install() returns
    // is already caught.
    let (mut int, mut term) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signal-cleanup".into())
        .spawn(move || {
            let code = rt.block_on(std::future::poll_fn(|cx| {
                if int.poll_recv(cx).is_ready() {
                    std::task::Poll::Ready(EXIT_SIGINT)
                } else if term.poll_recv(cx).is_ready() {
                    std::task::Poll::Ready(EXIT_SIGTERM)
                } else {
                    std::task::Poll::Pending
                }
            }));
            clean_up_and_exit(code);
        })?;
    Ok(())
}

#[cfg(feature = "publish")]
fn clean_up_and_exit(code: u8) -> ! {
    // Held until exit: no rename can start after the files are gone.
    let list = registry();
    for entry in list.iter().rev() {
        let ours = entry
            .only_if
            .as_ref()
            .is_none_or(|text| std::fs::read_to_string(&entry.path).is_ok_and(|t| t == *text));
        if ours {
            let _ = std::fs::remove_file(&entry.path);
        }
    }
    eprintln!(
        "interrupted: removed {} unfinished file(s) of this process",
        list.len()
    );
    std::process::exit(i32::from(code));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_files_are_forgotten_and_failed_renames_stay_registered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let file = register(path.clone());
        let listed = || registry().iter().any(|e| e.path == path);
        assert!(listed());
        assert!(settle(&file, || Err::<(), _>("rename failed")).is_err());
        assert!(
            listed(),
            "a failed rename leaves the temporary file to clean up"
        );
        settle(&file, || Ok::<_, ()>(())).unwrap();
        assert!(!listed());
        let again = register(path.clone());
        drop(again);
        assert!(!listed());
    }
}
