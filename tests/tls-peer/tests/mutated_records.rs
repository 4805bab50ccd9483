//! A bounded, deterministic cousin of the `tls_records` fuzz target (`fuzz/`): the
//! device's TLS client, after a real handshake each time, against records mutated from
//! honest answers (bits flipped, content types changed, records cut, emptied, padded,
//! repeated, or replaced by raw bytes). Each fetch must end with an answer or an error;
//! a panic fails the test.

use ota_tls_peer::{FetchOutcome, Record, fetch};

/// Mutated inputs tried; each costs one handshake (~15 ms in a debug build).
const CASES: usize = 500;

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\nhello";

/// xorshift64: the same cases on every run, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Honest record sequences the mutations start from.
fn bases() -> Vec<Vec<Record>> {
    let ticket = [
        &[4, 0, 0, 13][..],
        &[0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    ]
    .concat();
    let (head, body) = ANSWER.split_at(30);
    vec![
        vec![Record::application_data(ANSWER)],
        vec![
            Record::handshake(&ticket),
            Record::application_data(head),
            Record::application_data(b""),
            Record::application_data(body),
        ],
        vec![Record::application_data(ANSWER), Record::alert(1, 0)],
        // Padded with zeros after the content type, as RFC 8446 §5.4 allows.
        vec![Record::Sealed([ANSWER, &[23], &[0; 64]].concat())],
    ]
}

fn mutate(records: &mut Vec<Record>, random: &mut Random) {
    let at = random.below(records.len());
    match random.below(8) {
        // One bit of one inner plaintext (or raw record).
        0 => {
            let (Record::Sealed(bytes) | Record::Raw(bytes)) = &mut records[at];
            if !bytes.is_empty() {
                let i = random.below(bytes.len());
                bytes[i] ^= 1 << random.below(8);
            }
        }
        // The content type byte (the last non-zero one) replaced.
        1 => {
            if let Record::Sealed(bytes) = &mut records[at]
                && let Some(i) = bytes.iter().rposition(|b| *b != 0)
            {
                bytes[i] = random.next() as u8;
            }
        }
        // Cut short, possibly to nothing.
        2 => {
            let (Record::Sealed(bytes) | Record::Raw(bytes)) = &mut records[at];
            let keep = random.below(bytes.len() + 1);
            bytes.truncate(keep);
        }
        // Zero padding without a content type.
        3 => records[at] = Record::Sealed(vec![0; random.below(300)]),
        // Random plaintext, sealed properly.
        4 => {
            let len = random.below(200);
            records.insert(at, Record::Sealed(random.bytes(len)));
        }
        // Raw bytes where a record should be: a forged header, or garbage.
        5 => {
            let len = random.below(40);
            let mut raw = random.bytes(len);
            if let Some(first) = raw.first_mut() {
                *first = [20, 21, 22, 23][random.below(4)];
            }
            records.insert(at, Record::Raw(raw));
        }
        // A record repeated (its sequence number no longer matches).
        6 => records.insert(at, records[at].clone()),
        // A handshake message type after the handshake, with a random body.
        _ => {
            let kind = [1, 2, 4, 5, 8, 11, 13, 15, 20, 24, 254][random.below(11)];
            let len = random.below(60);
            let body = random.bytes(len);
            let message = [&[kind, 0, 0, len as u8][..], &body].concat();
            records.insert(at, Record::handshake(&message));
        }
    }
}

#[test]
fn mutated_records_after_a_real_handshake_never_panic_the_client() {
    let mut random = Random(0x0005_eed0_f7a5_0001);
    let bases = bases();
    let (mut answers, mut failures) = (0, 0);
    for _ in 0..CASES {
        let mut records = bases[random.below(bases.len())].clone();
        for _ in 0..=random.below(3) {
            mutate(&mut records, &mut random);
        }
        match fetch(records) {
            FetchOutcome::Answer { .. } => answers += 1,
            FetchOutcome::Failed(_) => failures += 1,
        }
    }
    // The mutations reach both outcomes, so they exercise more than the tag check.
    assert!(
        answers > 0 && failures > 0,
        "{answers} answers, {failures} failures"
    );
}
