//! A hostile TLS 1.3 server for the device's own TLS client (`ota-agent`'s `http1` over
//! embedded-tls). The handshake is real (rustls, `TLS_AES_128_GCM_SHA256` on P-256, a
//! throwaway certificate the device does not check anyway); after it, the server takes
//! the session's keys out of rustls and sends records crafted byte by byte: an empty
//! one (only the authentication tag), zero padding with no content type, handshake
//! messages a client never expects after the handshake, or anything a fuzzer makes.
//! A man in the middle can do exactly this, since certificates are not checked (R4).
//!
//! * [`loopback::HostileTlsServer`] serves that on 127.0.0.1 for the simulator;
//! * [`fetch`] runs the device's HTTP client against it in memory, for the fuzz target
//!   and the mutation test (one full handshake per call).
#![forbid(unsafe_code)]

mod identity;
pub mod loopback;
mod memory;
mod peer;
mod records;

pub use memory::{FetchOutcome, MAX_BODY, fetch, read_body};
pub use records::{Record, RecordSealer, records_from_fuzz_input};
