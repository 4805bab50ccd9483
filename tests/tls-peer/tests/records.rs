//! The device's TLS client (embedded-tls, patched: `third_party/README.md`) against
//! records a hostile server sends after a real handshake. Every one must end the request
//! with an error or an answer, never a panic (a panic on the device is a reset loop).

use ota_agent::http::HttpError;
use ota_tls_peer::{FetchOutcome, Record, fetch};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn answered() -> FetchOutcome {
    FetchOutcome::Answer {
        status: 200,
        body: b"hello".to_vec(),
    }
}

/// A NewSessionTicket (RFC 8446 §4.6.1): lifetime, age_add, nonce, ticket, extensions.
fn new_session_ticket() -> Vec<u8> {
    let body = [
        &[0, 0, 0, 60][..],
        &[0, 0, 0, 1],
        &[1, 7],
        &[0, 2, 9, 9],
        &[0, 0],
    ]
    .concat();
    [&[4, 0, 0, body.len() as u8][..], &body].concat()
}

#[test]
fn an_honest_answer_after_the_handshake_is_read() {
    assert_eq!(fetch(vec![Record::application_data(ANSWER)]), answered());
}

#[test]
fn empty_record_after_the_handshake_is_an_error_not_a_panic() {
    // Only the authentication tag: the record that crashed embedded-tls 0.19.
    assert_eq!(
        fetch(vec![Record::Sealed(vec![])]),
        FetchOutcome::Failed(HttpError::Tls)
    );
}

#[test]
fn zero_padding_without_a_content_type_is_an_error() {
    assert_eq!(
        fetch(vec![Record::Sealed(vec![0; 40])]),
        FetchOutcome::Failed(HttpError::Tls)
    );
}

#[test]
fn empty_handshake_and_alert_records_are_errors() {
    // RFC 8446 §5.4: only application data may have zero-length content.
    for record in [Record::handshake(&[]), Record::Sealed(vec![21])] {
        assert_eq!(
            fetch(vec![record.clone(), Record::application_data(ANSWER)]),
            FetchOutcome::Failed(HttpError::Tls),
            "{record:?}"
        );
    }
}

#[test]
fn handshake_messages_other_than_tickets_after_the_handshake_are_errors_not_panics() {
    // A Finished (32 bytes of verify data) and a ServerHello-less EncryptedExtensions:
    // messages that parse, but that a client never expects once the handshake is done.
    let finished = [&[20, 0, 0, 32][..], &[0; 32]].concat();
    let encrypted_extensions = [8, 0, 0, 2, 0, 0];
    for message in [&finished[..], &encrypted_extensions] {
        assert_eq!(
            fetch(vec![
                Record::handshake(message),
                Record::application_data(ANSWER)
            ]),
            FetchOutcome::Failed(HttpError::Tls),
            "{message:?}"
        );
    }
}

#[test]
fn tickets_and_empty_application_data_between_answer_records_are_skipped() {
    // Both are legal: a ticket the client does not use, and cover traffic.
    let (head, body) = ANSWER.split_at(20);
    let records = vec![
        Record::handshake(&new_session_ticket()),
        Record::application_data(head),
        Record::application_data(b""),
        Record::application_data(body),
    ];
    assert_eq!(fetch(records), answered());
}

#[test]
fn close_notify_before_the_answer_ends_the_request() {
    assert_eq!(
        fetch(vec![Record::alert(1, 0)]),
        FetchOutcome::Failed(HttpError::ConnectionLost)
    );
}

#[test]
fn fuzz_seeds_reach_what_they_are_named_for() {
    // The checked-in seeds of the `tls_records` fuzz target: an `answer*` seed must get
    // past the handshake and every record parser to the body, or the fuzzer would start
    // from nowhere; the others must end without a panic.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/tls_records");
    let mut answers = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let outcome = fetch(ota_tls_peer::records_from_fuzz_input(
            &std::fs::read(&path).unwrap(),
        ));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("answer") {
            assert_eq!(outcome, answered(), "{name}");
            answers += 1;
        } else if name.starts_with("empty-record") || name.starts_with("zero-padding") {
            assert_eq!(outcome, FetchOutcome::Failed(HttpError::Tls), "{name}");
        }
    }
    assert!(answers >= 4, "{answers} answer seeds in {}", dir.display());
}
