//! The application health check that decides a trial boot: ota-agent confirms the
//! running image when it passes and rejects it (rolls back) when it fails.

use embassy_time::{Duration, with_timeout};

use crate::net::Network;

/// Below this much free heap after start-up the app is not healthy: the update path could
/// not allocate its decompression window.
pub const MIN_FREE_HEAP: usize = 48 * 1024;

/// The application's verdict on this boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HealthVerdict {
    Healthy,
    Unhealthy(&'static str),
}

/// This application is healthy when it reaches its network: the one thing every later
/// update depends on. A firmware that cannot get an address within `timeout` must not be
/// kept, or the device could never be updated again.
pub async fn check(network: Network, timeout: Duration) -> HealthVerdict {
    let stack = match network {
        // A build without WiFi credentials is a bench build flashed by cable; there is no
        // network to check.
        Network::Disabled => return HealthVerdict::Healthy,
        Network::Failed(reason) => return HealthVerdict::Unhealthy(reason),
        Network::Up(stack) => stack,
    };
    if with_timeout(timeout, stack.wait_config_up()).await.is_err() {
        return HealthVerdict::Unhealthy("no IPv4 address from DHCP in time");
    }
    if esp_alloc::HEAP.free() < MIN_FREE_HEAP {
        return HealthVerdict::Unhealthy("heap nearly exhausted after start-up");
    }
    HealthVerdict::Healthy
}
