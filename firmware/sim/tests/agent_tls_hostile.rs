//! The device over https to a server that completes a real TLS handshake and then sends
//! a record crafted to break the client. Certificates are not checked (signatures carry
//! the trust), so anyone on the path can be that server: the check must fail, and the
//! device (the simulator process too) must keep running and checking.

mod support;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::http::HttpError;
use ota_tls_peer::Record;
use ota_tls_peer::loopback::HostileTlsServer;
use support::*;

/// Only the authentication tag: the 16-byte record that panicked embedded-tls 0.19.
fn empty_record() -> Vec<Record> {
    vec![Record::Sealed(Vec::new())]
}

#[test]
fn empty_tls_record_after_the_handshake_fails_the_check_and_the_device_keeps_running() {
    let server = HostileTlsServer::start(empty_record());
    let url = format!("{}{MANIFEST_PATH}", server.url);
    let mut d = device_at(&url, RollbackDisabled, &app("1.0.0"));
    let (running, result) = boot_until_running(&mut d, |s| s.check());
    assert!(
        matches!(result, Err(AgentError::Http(HttpError::Tls))),
        "{result:?}"
    );
    assert!(
        server.served() >= 1,
        "the record was sent after a handshake"
    );
    assert_eq!(running, v("1.0.0"));
    let (running, again) = boot_until_running(&mut d, |s| s.check());
    assert_eq!(running, v("1.0.0"));
    assert!(
        matches!(again, Err(AgentError::Http(HttpError::Tls))),
        "{again:?}"
    );
}

#[test]
fn simulator_process_survives_an_empty_tls_record_and_keeps_checking() {
    let server = HostileTlsServer::start(empty_record());
    let dir = tempfile::tempdir().unwrap();
    let output = sim_run(
        dir.path(),
        "589824",
        &format!("{}{MANIFEST_PATH}", server.url),
    )
    .args(paced("0", "2"))
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Exit code 101 was the panic; 4 says every check failed, and the process ended
    // in order after its last check.
    assert_eq!(
        output.status.code(),
        Some(4),
        "{:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let errors = stdout
        .lines()
        .filter(|l| l.starts_with("check error"))
        .count();
    assert_eq!(errors, 2, "{stdout}");
}
