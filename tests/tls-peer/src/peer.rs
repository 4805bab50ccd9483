//! The server's side of one connection, fed whatever bytes the client wrote: rustls until
//! the handshake is done and the request's head has arrived, then the crafted records.

use std::io::Read;

use rustls::{ConnectionTrafficSecrets, ServerConnection};

use crate::identity::server_config;
use crate::records::{Record, RecordSealer};

/// Longest request head the peer waits for; the device's are a few hundred bytes.
const MAX_REQUEST: usize = 16 * 1024;

pub struct Peer {
    /// `None` once the session's keys are taken out and the records sent.
    tls: Option<ServerConnection>,
    request: Vec<u8>,
    records: Vec<Record>,
}

/// The client did something the honest half of the server refused.
#[derive(Debug)]
pub struct PeerError(pub String);

impl Peer {
    pub fn new(records: Vec<Record>) -> Self {
        let tls = ServerConnection::new(server_config()).expect("a valid server configuration");
        Peer {
            tls: Some(tls),
            request: Vec::new(),
            records,
        }
    }

    /// Takes in bytes from the client; returns what goes back to it. Once the request
    /// head is in, that is the crafted records, and the peer has nothing more to say.
    pub fn receive(&mut self, mut bytes: &[u8]) -> Result<Vec<u8>, PeerError> {
        let mut out = Vec::new();
        let Some(tls) = self.tls.as_mut() else {
            // The records are sent; the rest of what the client says is ignored.
            return Ok(out);
        };
        while !bytes.is_empty() {
            tls.read_tls(&mut bytes)
                .map_err(|e| PeerError(e.to_string()))?;
            tls.process_new_packets()
                .map_err(|e| PeerError(e.to_string()))?;
        }
        while tls.wants_write() {
            tls.write_tls(&mut out)
                .map_err(|e| PeerError(e.to_string()))?;
        }
        let mut chunk = [0u8; 1024];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.request.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(PeerError(e.to_string())),
            }
        }
        if self.request.len() > MAX_REQUEST {
            return Err(PeerError("request head too long".into()));
        }
        if !tls.is_handshaking() && self.request.windows(4).any(|w| w == b"\r\n\r\n") {
            let tls = self.tls.take().expect("checked above");
            let mut sealer = sealer(tls)?;
            for record in &self.records {
                out.extend_from_slice(&sealer.wire(record));
            }
        }
        Ok(out)
    }

    /// Whether the records are sent (the peer has nothing more to say).
    pub fn finished(&self) -> bool {
        self.tls.is_none()
    }
}

fn sealer(tls: ServerConnection) -> Result<RecordSealer, PeerError> {
    let secrets = tls
        .dangerous_extract_secrets()
        .map_err(|e| PeerError(e.to_string()))?;
    let (sequence, secrets) = secrets.tx;
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
            let key: &[u8; 16] = key
                .as_ref()
                .try_into()
                .map_err(|_| PeerError("AES-128 key of another length".into()))?;
            let iv: [u8; 12] = iv
                .as_ref()
                .try_into()
                .map_err(|_| PeerError("IV of another length".into()))?;
            Ok(RecordSealer::new(key, iv, sequence))
        }
        _ => Err(PeerError("a cipher suite other than AES-128-GCM".into())),
    }
}
