//! Wall-clock time for manifest expiry, from SNTP (RFC 4330) over embassy-net UDP; the
//! messages themselves are ota-agent's (`ota_agent::sntp`, tested on the host). Until the
//! first answer the device has no time, and the agent skips the expiry check rather than
//! refusing every manifest. SNTP is unauthenticated: answers go through
//! [`ClockSanity`] (never before this firmware's build time, no jump the running clock
//! disagrees with unless several answers in a row confirm it); see docs/SECURITY.md.

use core::cell::Cell;

use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use esp_hal::rng::Rng;
use log::{info, warn};
use ota_agent::download::Clock;
use ota_agent::sntp::{self, ClockSanity, NTP_PORT, PACKET_LEN};

use crate::build_config::BUILD_UNIX_TIME;

/// How long to wait for a server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// After a good answer: the crystal drifts a few seconds a day; expiry is in days.
const RESYNC: Duration = Duration::from_secs(6 * 60 * 60);
/// After a failure, waiting doubles from this up to [`RESYNC`].
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// The last good answer: Unix seconds, and the uptime (ms) it arrived at.
static SYNCED: Mutex<CriticalSectionRawMutex, Cell<Option<(u64, u64)>>> =
    Mutex::new(Cell::new(None));

/// Milliseconds since boot, and Unix time once SNTP answered.
pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    fn unix_time(&self) -> Option<u64> {
        let now = self.now_ms();
        SYNCED
            .lock(Cell::get)
            .map(|(unix, at)| unix + now.saturating_sub(at) / 1000)
    }
}

/// Keeps the wall clock set from `server` (a host name) for as long as the device runs.
#[embassy_executor::task]
pub async fn sync(stack: Stack<'static>, server: &'static str) {
    let rng = Rng::new();
    let mut sanity = ClockSanity::new(BUILD_UNIX_TIME);
    let mut retry = FIRST_RETRY;
    loop {
        stack.wait_config_up().await;
        let nonce = (u64::from(rng.random()) << 32) | u64::from(rng.random());
        let answer = query(stack, server, nonce).await.and_then(|unix| {
            let now_ms = Instant::now().as_millis();
            match sanity.offer(unix, now_ms) {
                Ok(unix) => Ok((unix, now_ms)),
                Err(why) => {
                    warn!("SNTP time from {server} refused: {why}");
                    Err("time refused")
                }
            }
        });
        match answer {
            Ok((unix, now_ms)) => {
                let first = SYNCED.lock(Cell::get).is_none();
                SYNCED.lock(|s| s.set(Some((unix, now_ms))));
                if first {
                    info!("wall clock set from {server}: unix time {unix}");
                }
                retry = FIRST_RETRY;
                Timer::after(RESYNC).await;
            }
            Err(why) => {
                warn!(
                    "SNTP with {server} failed ({why}); next try in {} s",
                    retry.as_secs()
                );
                Timer::after(retry).await;
                retry = (retry * 2).min(RESYNC);
            }
        }
    }
}

async fn query(stack: Stack<'static>, server: &str, nonce: u64) -> Result<u64, &'static str> {
    let address = match with_timeout(ANSWER_TIMEOUT, stack.dns_query(server, DnsQueryType::A)).await
    {
        Ok(Ok(addresses)) => *addresses.first().ok_or("no address")?,
        _ => return Err("DNS"),
    };
    let mut rx_meta = [PacketMetadata::EMPTY; 2];
    let mut tx_meta = [PacketMetadata::EMPTY; 1];
    let mut rx = [0u8; 128];
    let mut tx = [0u8; PACKET_LEN];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket.bind(0).map_err(|_| "bind")?;
    socket
        .send_to(&sntp::request(nonce), (address, NTP_PORT))
        .await
        .map_err(|_| "send")?;
    let mut reply = [0u8; 128];
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (n, from) = match with_timeout(left, socket.recv_from(&mut reply)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err("receive"),
            Err(_) => return Err("no answer"),
        };
        // Datagrams from anyone else are not answers (the nonce would refuse them too).
        if from.endpoint.addr != address {
            continue;
        }
        return sntp::parse_reply(&reply[..n], nonce).map_err(|e| match e {
            sntp::SntpError::KissOfDeath => "kiss of death",
            sntp::SntpError::WrongOrigin => "reply to another request",
            _ => "bad reply",
        });
    }
}
