use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Whether tests that need an external server binary may be skipped when it is missing.
pub fn skip_server_tests() -> bool {
    std::env::var("OTA_SKIP_SERVER_TESTS").is_ok_and(|v| v == "1")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Locks a fake's state whatever a panicking connection thread left in it: every step
/// leaves the state whole, and a test must still be able to read what happened.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections on `listener` on a thread of its own, each handled on a thread by
/// `handle`, until `stop` is set: the owner sets it and then connects once to wake the
/// blocking accept.
pub(crate) fn accept_until(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) {
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || handle(conn));
        }
    });
}

/// Waits until something accepts connections on the port.
pub(crate) fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A binary on PATH, or in the usual places PATH may lack.
pub(crate) fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds a binary with [`find_binary`]. `None` means the test
/// should skip (only when `OTA_SKIP_SERVER_TESTS=1`); otherwise a missing binary panics
/// with the command that installs it.
pub(crate) fn require_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    match find_binary(name, extra_dirs) {
        Some(p) => Some(p),
        None if skip_server_tests() => {
            eprintln!("skipping: `{name}` not installed and OTA_SKIP_SERVER_TESTS=1");
            None
        }
        None => panic!(
            "`{name}` is not installed; run `bash scripts/install-test-deps.sh` \
             (or set OTA_SKIP_SERVER_TESTS=1 to skip the tests that need it)"
        ),
    }
}

/// `$CARGO_HOME/bin` or `~/.cargo/bin`, where `cargo install` puts binaries.
pub(crate) fn cargo_bin_dir() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        v.push(PathBuf::from(h).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".cargo/bin"));
    }
    v
}

/// Whether this process runs as root (nginx then needs `user root;` to read temp dirs).
pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
