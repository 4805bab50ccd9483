//! Bounded, file-name-safe identifiers: device types and channels.
//!
//! Both appear in file names on the static host (`<device-type>.<channel>.manifest`), so
//! they are restricted to `[a-z0-9_-]`, start with a letter or digit, and never contain
//! the `.` that separates them there.

use core::fmt;

use crate::error::{FieldError, FormatError};

/// A zero-padded identifier of at most `N` bytes of `[a-z0-9_-]`, starting with `[a-z0-9]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

/// A device type, e.g. `thermostat-v2` (at most 32 bytes).
pub type DeviceType = Name<32>;
/// A release channel, e.g. `stable` or `beta` (at most 16 bytes).
pub type Channel = Name<16>;

fn valid(s: &[u8]) -> bool {
    match s.first() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => s
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
        _ => false,
    }
}

impl<const N: usize> Name<N> {
    /// Checks and wraps a name; `None` when empty, too long or with a disallowed byte.
    pub fn new(s: &str) -> Option<Self> {
        if s.len() > N || !valid(s.as_bytes()) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Name {
            bytes,
            len: s.len() as u8,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The zero-padded encoding.
    pub fn encode(&self) -> [u8; N] {
        self.bytes
    }

    /// Decodes the zero-padded form; `field` says which field to blame.
    pub fn decode(bytes: &[u8; N], field: FieldError) -> Result<Self, FormatError> {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(N);
        if !valid(&bytes[..len]) || bytes[len..].iter().any(|&b| b != 0) {
            return Err(FormatError::InvalidField(field));
        }
        Ok(Name {
            bytes: *bytes,
            len: len as u8,
        })
    }
}

impl<const N: usize> fmt::Display for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> PartialEq<str> for Name<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
