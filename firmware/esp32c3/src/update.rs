//! The update check loop: a conditional GET of this device's release manifest at the check
//! interval, with jitter so a fleet does not poll in step.
//!
//! This is the `check` state of the update agent and where `ota-agent` plugs in: the
//! fetched manifest bytes go to [`on_manifest`], which becomes the agent's
//! verify -> decide -> download -> install step over the same [`HttpClient`] and the
//! esp-storage flash.

use core::fmt::Write as _;

use embassy_net::Stack;
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::TcpClient;
use embassy_time::{Duration, Instant, Timer};
use esp_hal::rng::Rng;
use heapless::{String, Vec};
use log::{info, warn};
use static_cell::StaticCell;

use crate::build_config::{CHANNEL, CHECK_INTERVAL_S, DEVICE_TYPE};
use crate::http::{
    BodySink, EmbassyHttp, GetError, GetRequest, HttpClient, ResponseHead, TcpState, URL_MAX,
};
use crate::status::{AgentError, CheckResult, ETAG_MAX, STATUS};

/// A signed manifest is well under 1 KiB (DESIGN.md); anything bigger is refused unread.
const MANIFEST_MAX: usize = 1024;
const HEAD_BUF: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Collects a manifest body, refusing more than [`MANIFEST_MAX`] bytes.
struct ManifestSink {
    status: u16,
    body: Vec<u8, MANIFEST_MAX>,
}

#[derive(Debug)]
enum SinkError {
    TooLarge,
}

impl BodySink for ManifestSink {
    type Error = SinkError;

    fn head(&mut self, head: &ResponseHead) -> Result<(), SinkError> {
        self.status = head.status;
        match head.content_length {
            Some(n) if head.status == 200 && n > MANIFEST_MAX as u64 => Err(SinkError::TooLarge),
            _ => Ok(()),
        }
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        if self.status != 200 {
            // An error page is not worth buffering.
            return Ok(());
        }
        self.body
            .extend_from_slice(bytes)
            .map_err(|_| SinkError::TooLarge)
    }
}

#[embassy_executor::task]
pub async fn task(stack: Stack<'static>, base_url: &'static str) {
    static TCP_STATE: StaticCell<TcpState> = StaticCell::new();
    static HEAD: StaticCell<[u8; HEAD_BUF]> = StaticCell::new();

    let mut url: String<URL_MAX> = String::new();
    if write!(url, "{base_url}/{DEVICE_TYPE}.{CHANNEL}.manifest").is_err() {
        warn!("manifest URL longer than {URL_MAX} bytes; not polling");
        return;
    }
    let tcp = TcpClient::new(stack, TCP_STATE.init(TcpState::new()));
    let dns = DnsSocket::new(stack);
    let mut http = EmbassyHttp::new(&tcp, &dns, HEAD.init([0; HEAD_BUF]), IO_TIMEOUT);
    let rng = Rng::new();
    let mut etag: Option<String<ETAG_MAX>> = None;

    stack.wait_config_up().await;
    STATUS.lock(|s| s.borrow_mut().agent.polling = true);
    info!("polling {url} every {CHECK_INTERVAL_S} s");

    loop {
        let mut sink = ManifestSink {
            status: 0,
            body: Vec::new(),
        };
        let mut buf = [0u8; 512];
        let req = GetRequest {
            url: &url,
            if_none_match: etag.as_deref(),
            range_from: None,
        };
        let outcome = http.get(&req, &mut buf, &mut sink).await;
        let now = Instant::now().as_secs();
        let (result, error) = match outcome {
            Ok(head) if head.status == 304 => (CheckResult::NotModified, None),
            Ok(head) if head.status == 200 => {
                etag = head.etag;
                on_manifest(&sink.body);
                (CheckResult::Fetched, None)
            }
            Ok(head) => (
                CheckResult::Failed,
                Some(AgentError::HttpStatus(head.status)),
            ),
            Err(GetError::Sink(SinkError::TooLarge)) => {
                (CheckResult::Failed, Some(AgentError::ManifestTooLarge))
            }
            Err(GetError::Truncated { expected, received }) => {
                warn!("manifest truncated: {received} of {expected} bytes");
                (CheckResult::Failed, Some(AgentError::Transport))
            }
            Err(GetError::TooManyRedirects) => {
                (CheckResult::Failed, Some(AgentError::TooManyRedirects))
            }
            Err(e) => {
                warn!("manifest check failed: {e:?}");
                (CheckResult::Failed, Some(AgentError::Transport))
            }
        };
        STATUS.lock(|s| {
            let mut s = s.borrow_mut();
            s.agent.last_check_uptime_s = Some(now);
            s.agent.last_result = Some(result);
            s.agent.last_error = error;
            s.agent.manifest_etag.clone_from(&etag);
        });

        // Up to a tenth of the interval later, so devices that booted together spread out.
        let jitter = u64::from(rng.random()) % (u64::from(CHECK_INTERVAL_S) * 100 + 1);
        Timer::after(Duration::from_secs(CHECK_INTERVAL_S.into()) + Duration::from_millis(jitter))
            .await;
    }
}

/// The agent's entry point for a fetched manifest.
fn on_manifest(bytes: &[u8]) {
    info!(
        "manifest changed ({} bytes); verification and install need ota-agent",
        bytes.len()
    );
}
