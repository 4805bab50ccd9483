//! The server's configuration: TLS 1.3 only, the device's one cipher suite and key
//! exchange, a TEST ONLY P-256 certificate (`data/`, see `data/README.md`), and secret
//! extraction on so crafted records can be sealed with the session's keys.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// TEST ONLY: self-signed, `CN=ota-tls-peer.invalid`; the device never checks it.
const CERTIFICATE: &[u8] = include_bytes!("../data/server-cert.der");
/// TEST ONLY: the certificate's P-256 key (PKCS#8); public in this repository.
const PRIVATE_KEY: &[u8] = include_bytes!("../data/server-key.pk8.der");

pub fn server_config() -> Arc<ServerConfig> {
    let mut provider = aws_lc_rs::default_provider();
    // What embedded-tls offers: nothing else could be negotiated anyway.
    provider.cipher_suites = vec![aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256];
    provider.kx_groups = vec![aws_lc_rs::kx_group::SECP256R1];
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the provider supports TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(CERTIFICATE)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(PRIVATE_KEY)),
        )
        .expect("the test certificate and key match");
    config.enable_secret_extraction = true;
    // Tickets would be records of their own, sent before the crafted ones; a test that
    // wants one sends it as a crafted record.
    config.send_tls13_tickets = 0;
    Arc::new(config)
}
