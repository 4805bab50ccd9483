//! The peer on a loopback TCP port, for the simulator and the `ota-device-sim` binary.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::peer::Peer;
use crate::records::Record;

/// Longest a connection may take from accept to the records being sent.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How often the accept loop looks whether it should stop.
const POLL: Duration = Duration::from_millis(20);

/// Answers every connection on 127.0.0.1 with an honest handshake and then `records`,
/// until dropped.
pub struct HostileTlsServer {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl HostileTlsServer {
    pub fn start(records: Vec<Record>) -> HostileTlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let url = format!(
            "https://{}",
            listener.local_addr().expect("a bound listener")
        );
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        // A client that broke off is the client's business.
                        Ok((stream, _)) => drop(serve(stream, records.clone(), &served)),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })
        };
        HostileTlsServer {
            url,
            stop,
            served,
            thread: Some(thread),
        }
    }

    /// Connections that got as far as the crafted records (counted once they are sent,
    /// before the client has read them).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for HostileTlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: handshake, request, records, then close.
fn serve(mut stream: TcpStream, records: Vec<Record>, served: &AtomicUsize) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL * 10))?;
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    let mut peer = Peer::new(records);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        let answer = peer
            .receive(&buf[..n])
            .map_err(|e| std::io::Error::other(e.0))?;
        if !peer.finished() {
            stream.write_all(&answer)?;
        } else {
            // Counted before the client can read them, so a test that saw the client fail
            // also sees the count.
            served.fetch_add(1, Ordering::Relaxed);
            stream.write_all(&answer)?;
            // The end of the stream follows the records; then wait for the client to
            // close, since closing first with its bytes unread would reset the
            // connection and could throw away records it has not read yet.
            stream.shutdown(Shutdown::Write)?;
            while Instant::now() < deadline {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            return Ok(());
        }
    }
    Err(ErrorKind::TimedOut.into())
}
