//! Records as a hostile server writes them after the handshake (RFC 8446 §5.2).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Key, Nonce};

/// `application_data`, the outer type of every protected record.
const APPLICATION_DATA: u8 = 23;
const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;
const TAG_LEN: usize = 16;
/// Most records a fuzz input is turned into; each may be up to 64 KiB.
const MAX_FUZZ_RECORDS: usize = 64;

/// One record the server sends after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Protected with the session's keys. `inner` is the whole TLSInnerPlaintext:
    /// content, content type byte, zero padding. Empty is the 16-byte record (only the
    /// authentication tag) that crashed embedded-tls 0.19.
    Sealed(Vec<u8>),
    /// Written to the wire as it is: a forged header, a truncated record, plaintext.
    Raw(Vec<u8>),
}

impl Record {
    /// Application data carrying `content` (may be empty: legal cover traffic).
    pub fn application_data(content: &[u8]) -> Record {
        Record::Sealed([content, &[APPLICATION_DATA]].concat())
    }

    /// A protected record of handshake messages (`messages` with their 4-byte headers).
    pub fn handshake(messages: &[u8]) -> Record {
        Record::Sealed([messages, &[HANDSHAKE]].concat())
    }

    /// A protected alert.
    pub fn alert(level: u8, description: u8) -> Record {
        Record::Sealed(vec![level, description, ALERT])
    }
}

/// Seals records with the server's application traffic key, as rustls would have.
pub struct RecordSealer {
    cipher: Aes128Gcm,
    iv: [u8; 12],
    sequence: u64,
}

impl RecordSealer {
    /// `sequence` is the number of records the server already sent under this key.
    pub fn new(key: &[u8; 16], iv: [u8; 12], sequence: u64) -> Self {
        RecordSealer {
            cipher: Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(key)),
            iv,
            sequence,
        }
    }

    /// The record protecting `inner`, header included. An `inner` too long for the
    /// 16-bit length field is cut to fit: the client must refuse such records anyway.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let inner = &inner[..inner.len().min(usize::from(u16::MAX) - TAG_LEN)];
        let length = u16::try_from(inner.len() + TAG_LEN).expect("cut to fit above");
        let [high, low] = length.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, high, low];
        // RFC 8446 §5.3: the sequence number, padded to the IV's length, XOR the IV.
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.sequence.to_be_bytes()) {
            *n ^= s;
        }
        self.sequence += 1;
        let mut body = inner.to_vec();
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &header, &mut body)
            .expect("AES-GCM seals any record up to 64 KiB");
        [&header[..], &body, &tag].concat()
    }

    /// `record` as it goes on the wire.
    pub fn wire(&mut self, record: &Record) -> Vec<u8> {
        match record {
            Record::Sealed(inner) => self.seal(inner),
            Record::Raw(bytes) => bytes.clone(),
        }
    }
}

/// Records from arbitrary bytes: each is a kind byte, a 16-bit length (cut to what is
/// left) and that many bytes. The kind's low two bits choose a verbatim inner
/// plaintext, application data, handshake messages, or raw wire bytes, so mutations
/// reach the decrypted-record parsers and not only the authentication check.
pub fn records_from_fuzz_input(mut data: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    while let [kind, high, low, rest @ ..] = data {
        if records.len() == MAX_FUZZ_RECORDS {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        records.push(match kind & 3 {
            0 => Record::Sealed(bytes.to_vec()),
            1 => Record::application_data(bytes),
            2 => Record::handshake(bytes),
            _ => Record::Raw(bytes.to_vec()),
        });
        data = tail;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_input_kinds_and_lengths() {
        let input = [0, 0, 0, 1, 0, 2, b'h', b'i', 2, 0, 1, 4, 3, 0, 9, 7];
        assert_eq!(
            records_from_fuzz_input(&input),
            [
                Record::Sealed(vec![]),
                Record::application_data(b"hi"),
                Record::handshake(&[4]),
                // The length is cut to the one byte left.
                Record::Raw(vec![7]),
            ]
        );
    }

    #[test]
    fn empty_inner_plaintext_seals_to_the_bare_tag() {
        let mut sealer = RecordSealer::new(&[1; 16], [2; 12], 0);
        let record = sealer.seal(&[]);
        assert_eq!(record.len(), 5 + TAG_LEN);
        assert_eq!(&record[..5], &[23, 3, 3, 0, 16]);
        // The nonce changes with the sequence number.
        assert_ne!(sealer.seal(&[]), record);
    }
}
