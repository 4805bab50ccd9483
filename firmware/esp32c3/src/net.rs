//! WiFi station and the embassy-net stack (DHCPv4) the status server and the agent share.

use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::WIFI;
use esp_hal::rng::Rng;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
};
use log::{info, warn};
use static_cell::StaticCell;

use crate::build_config::{WIFI_PASSWORD, WIFI_SSID};
use crate::http::NetCell;

/// DHCP, DNS, the status server's workers, one HTTP client connection and SNTP.
const SOCKETS: usize = 4 + crate::status_server::WORKERS;
/// Pause between association attempts so a missing access point does not spin the radio.
const RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The network as `main` got it.
#[derive(Clone, Copy)]
pub enum Network {
    /// No WiFi credentials were given at build time.
    Disabled,
    /// WiFi was configured but the driver refused to start.
    Failed(&'static str),
    Up(Stack<'static>),
}

impl Network {
    pub fn stack(self) -> Option<Stack<'static>> {
        match self {
            Network::Up(stack) => Some(stack),
            _ => None,
        }
    }
}

/// Starts WiFi and the stack, and hands the stack to the HTTP client through `cell`.
pub fn start(spawner: &Spawner, wifi: WIFI<'static>, cell: &'static NetCell) -> Network {
    if WIFI_SSID.is_empty() {
        warn!("WIFI_SSID was not set at build time: staying offline");
        return Network::Disabled;
    }
    // build.rs checked both lengths, so these conversions cannot fail for a built image;
    // the errors stay handled because the driver owns the final word on them.
    let Ok(ssid) = WIFI_SSID.try_into() else {
        return Network::Failed("SSID rejected by the WiFi driver");
    };
    let auth = if WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        match WIFI_PASSWORD.try_into() {
            Ok(password) => AuthenticationMethodConfig::Wpa2Personal(password),
            Err(_) => return Network::Failed("password rejected by the WiFi driver"),
        }
    };
    let station = StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(auth);
    let controller = match WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(Config::Station(station)),
    ) {
        Ok(controller) => controller,
        Err(e) => {
            warn!("WiFi driver did not start: {e:?}");
            return Network::Failed("WiFi driver did not start");
        }
    };

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(connection(controller).expect("connection task spawns once"));
    spawner.spawn(net_task(runner).expect("net task spawns once"));
    cell.set(Some(stack));
    Network::Up(stack)
}

/// Keeps the station associated; embassy-net renews DHCP on its own.
#[embassy_executor::task]
async fn connection(mut controller: WifiController<'static>) {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                info!("WiFi associated with {WIFI_SSID:?}");
                let reason = controller.wait_for_disconnect_async().await;
                warn!("WiFi disconnected: {reason:?}");
            }
            Err(e) => warn!("WiFi association failed: {e:?}"),
        }
        Timer::after(RECONNECT_DELAY).await;
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}
