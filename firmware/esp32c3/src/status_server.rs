//! `GET /ota/status` on port 80: the device's report as JSON, one request per connection.
//!
//! It runs as [`WORKERS`] tasks of its own so it keeps answering while the agent downloads
//! (R3). Each connection gets [`REQUEST_DEADLINE`] from accept to the end of its answer and
//! [`REQUEST_MAX`] bytes of head, so a client that drips its head a byte at a time, or
//! never ends a line, holds one worker for that long at most and never all of them.

use core::fmt::Write as _;

use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant, with_timeout};
use embedded_io_async::Write as _;
use heapless::String;
use log::{debug, warn};

use crate::build_config::MANIFEST_URL;
use crate::status::{STATUS, Sampled};

const PORT: u16 = 80;
const PATH: &str = "/ota/status";
/// Tasks answering at once, each with its own socket (`net::SOCKETS` counts them).
pub const WORKERS: usize = 2;
/// From accept to the end of the answer; a slower client is cut off.
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Waiting for the peer to take the last bytes and the FIN, after the answer.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A client that neither sends nor reads within this time is dropped: the socket's own
/// inactivity bound, which [`REQUEST_DEADLINE`] and [`CLOSE_GRACE`] undercut.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Request heads beyond this are refused (431); a status poll needs a few dozen bytes.
const REQUEST_MAX: usize = 1024;
/// The agent's status at its longest (every optional field set, a long error text, eight
/// key ids) is about 1.3 KiB, the firmware object a few hundred bytes more.
const BODY_MAX: usize = 2048;

#[embassy_executor::task(pool_size = WORKERS)]
pub async fn task(stack: Stack<'static>) {
    let mut rx = [0u8; REQUEST_MAX];
    let mut tx = [0u8; 1024];
    let mut request = [0u8; REQUEST_MAX];
    let mut body = [0u8; BODY_MAX];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(TIMEOUT));
        if let Err(e) = socket.accept(PORT).await {
            warn!("status server accept failed: {e:?}");
            continue;
        }
        let served = with_timeout(
            REQUEST_DEADLINE,
            serve(&mut socket, stack, &mut request, &mut body),
        )
        .await;
        match served {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!("status client dropped: {e:?}"),
            Err(_) => debug!("status client too slow: dropped"),
        }
        socket.close();
        // Let the FIN go out before the buffers are reused for the next client, but do not
        // wait on a peer that takes nothing: reset it.
        if with_timeout(CLOSE_GRACE, socket.flush()).await.is_err() {
            socket.abort();
            let _ = with_timeout(CLOSE_GRACE, socket.flush()).await;
        }
    }
}

async fn serve(
    socket: &mut TcpSocket<'_>,
    stack: Stack<'static>,
    request: &mut [u8],
    body: &mut [u8],
) -> Result<(), embassy_net::tcp::Error> {
    let Some(len) = read_head(socket, request).await? else {
        return respond(socket, "431 Request Header Fields Too Large", "", b"").await;
    };
    let line = request[..len].split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);

    if path != PATH.as_bytes() {
        return respond(socket, "404 Not Found", "", b"").await;
    }
    if method != b"GET" && method != b"HEAD" {
        return respond(
            socket,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            b"",
        )
        .await;
    }

    let mut ip: String<15> = String::new();
    let ip = match stack.config_v4() {
        Some(config) => write!(ip, "{}", config.address.address())
            .ok()
            .map(|()| ip.as_str()),
        None => None,
    };
    let now = Sampled {
        uptime_s: Instant::now().as_secs(),
        ip,
        heap_free: esp_alloc::HEAP.free(),
        manifest_url: MANIFEST_URL,
    };
    let rendered = STATUS.lock(|s| s.borrow().to_json(&now, body));
    match rendered {
        Ok(n) if method == b"HEAD" => {
            respond_len(
                socket,
                "200 OK",
                "Content-Type: application/json\r\n",
                &body[..n],
                false,
            )
            .await
        }
        Ok(n) => {
            respond(
                socket,
                "200 OK",
                "Content-Type: application/json\r\n",
                &body[..n],
            )
            .await
        }
        Err(_) => respond(socket, "500 Internal Server Error", "", b"").await,
    }
}

/// Reads until the end of the request head; `None` when it does not fit `buf`.
async fn read_head(
    socket: &mut TcpSocket<'_>,
    buf: &mut [u8],
) -> Result<Option<usize>, embassy_net::tcp::Error> {
    let mut len = 0;
    while len < buf.len() {
        let n = socket.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(embassy_net::tcp::Error::ConnectionReset);
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(len));
        }
    }
    Ok(None)
}

async fn respond(
    socket: &mut TcpSocket<'_>,
    status: &str,
    headers: &str,
    body: &[u8],
) -> Result<(), embassy_net::tcp::Error> {
    respond_len(socket, status, headers, body, true).await
}

async fn respond_len(
    socket: &mut TcpSocket<'_>,
    status: &str,
    headers: &str,
    body: &[u8],
    send_body: bool,
) -> Result<(), embassy_net::tcp::Error> {
    let mut head: String<256> = String::new();
    // Fits: the longest status line and header set here are well under 256 bytes.
    let _ = write!(
        head,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    if send_body {
        socket.write_all(body).await?;
    }
    socket.flush().await
}
