//! Secure Boot V2 signed firmware on the simulated device: a signed release installs and
//! boots byte for byte, and the device refuses, before switching otadata, what a Secure
//! Boot bootloader would refuse to start (ESP-IDF's OTA does the same), so it keeps
//! running its firmware instead of failing at the next boot.

mod support;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::install::InstallError;
use ota_agent::status::CheckResult;
use ota_device_sim::device::VirtualDevice;
use ota_testkit::{secure_boot_key_digest, secure_boot_signed};
use support::*;

/// The Secure Boot key whose digest the fleet's eFuses hold.
const FLEET_KEY: u64 = 1;
/// Another Secure Boot key (a test key, a key of another fleet).
const OTHER_KEY: u64 = 2;
/// Where `ota_1` starts in the simulator's default layout.
const OTA_1: usize = 0x10000 + SLOT_SIZE as usize;

/// A device running 1.0.0 signed with `FLEET_KEY`.
fn secure_boot_device(host: &Host) -> VirtualDevice {
    device_with(
        host,
        RollbackDisabled,
        &secure_boot_signed(&app("1.0.0"), FLEET_KEY),
    )
}

/// Publishes release 1.1.0 whose app image is `app`.
fn publish_app(host: &Host, app: Vec<u8>) -> Vec<u8> {
    let release = release_of(&Spec::default(), app);
    host.publish(&release);
    release.app
}

/// One check must be refused with `expected`; the device keeps running 1.0.0.
fn refused(d: &mut VirtualDevice, expected: InstallError) {
    let (_, (r, status)) = boot_until_running(d, |s| (s.check(), s.agent.status()));
    assert_eq!(r, Err(AgentError::Install(expected)));
    assert_eq!(status.installed_version, v("1.0.0"));
    let (after, ()) = boot_until_running(d, |_| ());
    assert_eq!(after, v("1.0.0"));
}

#[test]
fn a_secure_boot_signed_release_installs_byte_identical_and_boots() {
    let host = Host::start();
    let d = &mut secure_boot_device(&host);
    let signed = publish_app(&host, secure_boot_signed(&app("1.1.0"), FLEET_KEY));
    assert_updates_to(d, "1.1.0");
    assert_eq!(&d.flash.bytes()[OTA_1..OTA_1 + signed.len()], &signed[..]);
}

#[test]
fn a_release_signed_with_another_secure_boot_key_is_refused() {
    let host = Host::start();
    let d = &mut secure_boot_device(&host);
    publish_app(&host, secure_boot_signed(&app("1.1.0"), OTHER_KEY));
    refused(
        d,
        InstallError::SecureBootKeyNotTrusted {
            new: secure_boot_key_digest(OTHER_KEY),
            running: secure_boot_key_digest(FLEET_KEY),
        },
    );
}

#[test]
fn an_unsigned_release_is_refused_by_a_secure_boot_device() {
    let host = Host::start();
    let d = &mut secure_boot_device(&host);
    publish_app(&host, app("1.1.0"));
    refused(d, InstallError::SecureBootSignatureMissing);
}

#[test]
fn a_device_without_secure_boot_installs_a_signed_release() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    publish_app(&host, secure_boot_signed(&app("1.1.0"), OTHER_KEY));
    let (r, running) = check_and_reboot(d);
    assert!(matches!(r, Ok(CheckResult::Installed { .. })), "{r:?}");
    assert_eq!(running, v("1.1.0"));
}
