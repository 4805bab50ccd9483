//! Bounded, zero-padded names that end up in file names on the static host: device types
//! and channels (`<device-type>.<channel>.manifest`), and the image file a manifest
//! points at.

use core::fmt;
use core::marker::PhantomData;

use crate::error::{FieldError, FormatError};

/// Which bytes a kind of name may hold.
pub trait NameRule {
    /// Whether `name` (never zero-padded here) is allowed.
    fn allows(name: &[u8]) -> bool;
}

/// `[a-z0-9_-]`, starting with `[a-z0-9]`: no `.`, which separates device type and
/// channel in manifest file names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Identifier;

impl NameRule for Identifier {
    fn allows(s: &[u8]) -> bool {
        match s.first() {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => s
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            _ => false,
        }
    }
}

/// A file name relative to the manifest's own URL: `[A-Za-z0-9._+-]`, no leading dot, no
/// `..`, no slash, so it can never leave the manifest's directory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileName;

impl NameRule for FileName {
    fn allows(s: &[u8]) -> bool {
        !s.is_empty()
            && s[0] != b'.'
            && !s.windows(2).any(|w| w == b"..")
            && s.iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
    }
}

/// A zero-padded name of at most `N` bytes (`N` < 256) that `R` allows.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<const N: usize, R = Identifier> {
    bytes: [u8; N],
    len: u8,
    rule: PhantomData<R>,
}

/// A device type, e.g. `thermostat-v2` (at most 32 bytes).
pub type DeviceType = Name<32>;
/// A release channel, e.g. `stable` or `beta` (at most 16 bytes).
pub type Channel = Name<16>;
/// Longest image file name.
pub const MAX_IMAGE_NAME_LEN: usize = 96;
/// The file name of an image, relative to the manifest's own URL (at most 96 bytes).
// A literal, not `MAX_IMAGE_NAME_LEN`: rustc 1.95 hits an internal compiler error on a
// named constant here (broken MIR when a closure captures a struct holding the alias).
pub type ImageName = Name<96, FileName>;
const _: () = assert!(MAX_IMAGE_NAME_LEN == 96);

impl<const N: usize, R: NameRule> Name<N, R> {
    /// Checks and wraps a name; `None` when empty, too long or with a disallowed byte.
    pub fn new(s: &str) -> Option<Self> {
        if s.len() > N || !R::allows(s.as_bytes()) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Name {
            bytes,
            len: s.len() as u8,
            rule: PhantomData,
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
        if !R::allows(&bytes[..len]) || bytes[len..].iter().any(|&b| b != 0) {
            return Err(FormatError::InvalidField(field));
        }
        Ok(Name {
            bytes: *bytes,
            len: len as u8,
            rule: PhantomData,
        })
    }
}

impl<const N: usize, R: NameRule> fmt::Display for Name<N, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize, R: NameRule> fmt::Debug for Name<N, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize, R: NameRule> PartialEq<str> for Name<N, R> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
