//! The check's deadlines over TLS: a server flight trickled a byte at a time, and a
//! session that after part of a body sends nothing but empty application-data records
//! or NewSessionTicket records (each of which the TLS client reads and drops inside one
//! `read`, so only a deadline that holds inside reads ends it). The server is rustls with
//! a throwaway certificate; after the handshake it hands its traffic keys to the test,
//! which writes the hostile records itself.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::http::HttpError;
use ota_device_sim::device::VirtualDevice;
use rustls::crypto::cipher::{MessageEncrypter, OutboundChunks, OutboundPlainMessage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion, ServerConnection};
use support::*;

/// How the server misbehaves.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Every byte of the handshake flight this far apart.
    TrickleHandshake(Duration),
    /// After the head and half the body: empty application-data records.
    EmptyRecords,
    /// After the head and half the body: NewSessionTicket records.
    Tickets,
}

/// The longest a hostile connection is kept up, so a test that fails still ends.
const SERVER_GIVES_UP: Duration = Duration::from_secs(20);

/// A TLS 1.3 server on 127.0.0.1 answering every request with `body`, misbehaving as
/// told; returns its `https://` base URL.
fn hostile_tls_server(how: Misbehaviour, body: Vec<u8>) -> String {
    let dir = tempfile::tempdir().unwrap();
    ota_test_servers::nginx::make_certificate(dir.path()).unwrap();
    let certs = CertificateDer::pem_file_iter(dir.path().join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.path().join("key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.enable_secret_extraction = true;
    config.send_tls13_tickets = 0;
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, body) = (config.clone(), body.clone());
            std::thread::spawn(move || serve(stream, config, how, &body));
        }
    });
    url
}

/// Writes what rustls has to send, a byte at a time `pause` apart when set.
fn send(conn: &mut ServerConnection, stream: &mut TcpStream, pause: Option<Duration>) -> bool {
    let mut out = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut out).is_err() {
            return false;
        }
    }
    match pause {
        None => stream.write_all(&out).is_ok(),
        Some(pause) => out.iter().all(|b| {
            std::thread::sleep(pause);
            stream.write_all(&[*b]).is_ok()
        }),
    }
}

/// One connection: the handshake, the request, the head and half of `body`, then the
/// misbehaviour until the client hangs up (or [`SERVER_GIVES_UP`]).
fn serve(mut stream: TcpStream, config: Arc<rustls::ServerConfig>, how: Misbehaviour, body: &[u8]) {
    stream.set_read_timeout(Some(SERVER_GIVES_UP)).unwrap();
    let mut conn = ServerConnection::new(config).unwrap();
    let pause = match how {
        Misbehaviour::TrickleHandshake(pause) => Some(pause),
        _ => None,
    };
    // Handshake, then read up to the request's empty line.
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if !send(&mut conn, &mut stream, pause) {
            return;
        }
        match conn.read_tls(&mut stream) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if conn.process_new_packets().is_err() {
            let _ = send(&mut conn, &mut stream, None);
            return;
        }
        let mut plain = [0u8; 1024];
        while let Ok(n) = conn.reader().read(&mut plain) {
            if n == 0 {
                break;
            }
            request.extend_from_slice(&plain[..n]);
        }
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let half = &body[..body.len() / 2];
    conn.writer().write_all(head.as_bytes()).unwrap();
    conn.writer().write_all(half).unwrap();
    if !send(&mut conn, &mut stream, None) {
        return;
    }
    // From here on the test writes the records itself, with the session's own keys.
    #[allow(deprecated)] // its replacement needs rustls's unbuffered API; tickets are off
    let secrets = conn.dangerous_extract_secrets().unwrap();
    let (mut seq, ConnectionTrafficSecrets::Aes128Gcm { key, iv }) = secrets.tx else {
        panic!("the agent offers only TLS_AES_128_GCM_SHA256");
    };
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let mut encrypter = suite.tls13().unwrap().aead_alg.encrypter(key, iv);
    // aws-lc's sealing key insists on sequence numbers counted from zero: count up to
    // where rustls left off, discarding what it seals.
    for used in 0..seq {
        encrypt(encrypter.as_mut(), ContentType::ApplicationData, &[], used);
    }
    let (typ, payload): (ContentType, &[u8]) = match how {
        Misbehaviour::Tickets => (ContentType::Handshake, &NEW_SESSION_TICKET),
        _ => (ContentType::ApplicationData, &[]),
    };
    let until = Instant::now() + SERVER_GIVES_UP;
    while Instant::now() < until {
        let record = encrypt(encrypter.as_mut(), typ, payload, seq);
        seq += 1;
        if stream.write_all(&record).is_err() {
            return;
        }
    }
}

/// A NewSessionTicket handshake message (RFC 8446 §4.6.1): lifetime 3600 s, age add 0,
/// a one-byte nonce, a four-byte ticket, no extensions.
const NEW_SESSION_TICKET: [u8; 22] = [
    4, 0, 0, 18, // type, length
    0, 0, 0x0e, 0x10, // ticket_lifetime
    0, 0, 0, 0, // ticket_age_add
    1, 0, // ticket_nonce
    0, 4, 1, 2, 3, 4, // ticket
    0, 0, // extensions
];

fn encrypt(
    encrypter: &mut dyn MessageEncrypter,
    typ: ContentType,
    payload: &[u8],
    seq: u64,
) -> Vec<u8> {
    let message = OutboundPlainMessage {
        typ,
        version: ProtocolVersion::TLSv1_2,
        payload: OutboundChunks::Single(payload),
    };
    encrypter.encrypt(message, seq).unwrap().encode()
}

/// A device polling `base`'s manifest with small deadlines.
fn device_polling(base: &str) -> VirtualDevice {
    let mut d = device_at(
        &format!("{base}{MANIFEST_PATH}"),
        RollbackDisabled,
        &app("1.0.0"),
    );
    d.config.retry.timeout_ms = 5_000;
    d.config.retry.head_timeout_ms = 1_000;
    d.config.retry.manifest_deadline_ms = 1_500;
    d
}

/// A device polls a server misbehaving `how` over TLS; its check must end in a timeout
/// within `window` (the bound hit, plus scheduling slack).
fn check_times_out_within(how: Misbehaviour, window: std::ops::Range<Duration>) {
    let manifest = release(&Spec::default()).manifest;
    let mut d = device_polling(&hostile_tls_server(how, manifest));
    let (result, took) = timed_check(&mut d);
    assert_eq!(result, Err(AgentError::Http(HttpError::Timeout)));
    assert!(window.contains(&took), "{took:?} outside {window:?}");
}

#[test]
fn a_trickled_tls_handshake_ends_at_the_head_timeout() {
    // A certificate flight of several hundred bytes, 20 ms a byte: many seconds.
    check_times_out_within(
        Misbehaviour::TrickleHandshake(Duration::from_millis(20)),
        Duration::from_millis(900)..Duration::from_millis(2_000),
    );
}

#[test]
fn endless_empty_tls_records_after_part_of_a_body_end_at_the_deadline() {
    check_times_out_within(
        Misbehaviour::EmptyRecords,
        Duration::from_millis(1_400)..Duration::from_millis(2_500),
    );
}

#[test]
fn endless_session_tickets_after_part_of_a_body_end_at_the_deadline() {
    check_times_out_within(
        Misbehaviour::Tickets,
        Duration::from_millis(1_400)..Duration::from_millis(2_500),
    );
}
