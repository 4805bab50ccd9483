//! Connection handling of the simulator's status server: one short-lived thread per
//! connection, so that no client can hold the server for another.
//!
//! | bound | value | what it stops |
//! |---|---|---|
//! | [`HEAD_MAX`] | 8 KiB | a header line that never ends growing memory (answered 431) |
//! | [`REQUEST_DEADLINE`] | 2 s | a client dripping its head a byte at a time (answered 408), an idle connection |
//! | [`MAX_CONNECTIONS`] | 256 | threads piling up: the oldest connection is closed for a new one |
//!
//! What a request gets is the caller's: `respond` maps the request path to a status
//! line and a JSON body.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest request head read; a longer one is answered `431` and the connection closed.
pub const HEAD_MAX: usize = 8 * 1024;
/// Time from accepting a connection to the end of its answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Connections served at once; a new one closes the oldest.
pub const MAX_CONNECTIONS: usize = 256;
/// A connection thread holds at most one head and one small JSON body.
const THREAD_STACK: usize = 256 * 1024;

/// An answer: status line (`"200 OK"`) and JSON body.
pub type Response = (&'static str, String);

/// Open connections, oldest first, so a new one can close the oldest.
type Open = Arc<Mutex<VecDeque<(u64, TcpStream)>>>;

/// Serves `listener` until it fails, answering each request with `respond(path)`.
pub fn serve<F>(listener: TcpListener, respond: F)
where
    F: Fn(&str) -> Response + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    let open: Open = Arc::default();
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        {
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            while open.len() >= MAX_CONNECTIONS {
                if let Some((_, oldest)) = open.pop_front() {
                    // Its thread's next read or write fails and the thread ends.
                    let _ = oldest.shutdown(Shutdown::Both);
                }
            }
            open.push_back((id, handle));
        }
        let (respond, still_open) = (respond.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name("status-connection".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _ = answer(stream, Instant::now() + REQUEST_DEADLINE, &*respond);
                forget(&still_open, id);
            });
        if spawned.is_err() {
            // No thread for it: the connection is dropped with its entry.
            forget(&open, id);
        }
    }
}

fn forget(open: &Open, id: u64) {
    let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|(other, _)| *other != id);
}

/// Why a request head was not read.
enum HeadError {
    TooLarge,
    TimedOut,
    Io(io::Error),
}

fn answer(
    mut stream: TcpStream,
    deadline: Instant,
    respond: &dyn Fn(&str) -> Response,
) -> io::Result<()> {
    let (status, body) = match read_head(&mut stream, deadline) {
        Ok(head) => {
            let request_line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let request_line = String::from_utf8_lossy(request_line);
            respond(request_line.split_whitespace().nth(1).unwrap_or(""))
        }
        Err(HeadError::TooLarge) => (
            "431 Request Header Fields Too Large",
            "{\"error\":\"request head too large\"}".to_owned(),
        ),
        Err(HeadError::TimedOut) => (
            "408 Request Timeout",
            "{\"error\":\"request head too slow\"}".to_owned(),
        ),
        Err(HeadError::Io(e)) => return Err(e),
    };
    // A client that does not read its answer is not waited for past the deadline either.
    stream.set_write_timeout(Some(remaining(deadline).max(Duration::from_millis(100))))?;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Reads up to the blank line ending the head, within [`HEAD_MAX`] bytes and `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        // One byte past the cap at most, so an endless line is never read further.
        let want = (HEAD_MAX + 1 - head.len()).min(chunk.len());
        let n = match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::TimedOut);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        };
        // The end may straddle two reads: look from three bytes before this chunk.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        let tail = &head[from..];
        if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > HEAD_MAX {
            return Err(HeadError::TooLarge);
        }
    }
}
