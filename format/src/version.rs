//! Firmware versions: semantic versions with an optional pre-release, ordered by semver
//! precedence, encoded in a fixed 32 bytes.
//!
//! | offset | size | field                                        |
//! |-------:|-----:|----------------------------------------------|
//! | 0      | 4    | major, u32 LE                                |
//! | 4      | 4    | minor, u32 LE                                |
//! | 8      | 4    | patch, u32 LE                                |
//! | 12     | 20   | pre-release (`[0-9A-Za-z.-]`), zero padded   |
//!
//! Build metadata (`+...`) is not part of precedence and is not stored.

use core::cmp::Ordering;
use core::fmt;

use crate::error::{FieldError, FormatError};

/// Encoded size of a version.
pub const VERSION_LEN: usize = 32;
/// Longest pre-release string.
pub const MAX_PRE_LEN: usize = 20;

/// A semantic version `major.minor.patch[-pre]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    pre: [u8; MAX_PRE_LEN],
    pre_len: u8,
}

impl Version {
    /// A release version (no pre-release).
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
            pre: [0; MAX_PRE_LEN],
            pre_len: 0,
        }
    }

    /// The pre-release part (`"rc.1"` of `1.0.0-rc.1`), empty for a release.
    pub fn pre(&self) -> &str {
        // Only ASCII ever gets in (checked by `parse` and `decode`).
        core::str::from_utf8(&self.pre[..self.pre_len as usize]).unwrap_or("")
    }

    /// Parses `1.2.3`, `v1.2.3`, `1.2.3-rc.1` or `1.2.3-rc.1+build.5` (build metadata is
    /// dropped). Numbers must not have leading zeros, as semver requires.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = match s.find('+') {
            Some(i) => {
                let build = &s[i + 1..];
                if build.is_empty() || !build.split('.').all(valid_build_ident) {
                    return None;
                }
                &s[..i]
            }
            None => s,
        };
        let (core, pre) = match s.find('-') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let major = parse_number(parts.next()?)?;
        let minor = parse_number(parts.next()?)?;
        let patch = parse_number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        let mut v = Version::new(major, minor, patch);
        if let Some(pre) = pre {
            if pre.is_empty() || pre.len() > MAX_PRE_LEN || !pre.split('.').all(valid_pre_ident) {
                return None;
            }
            v.pre[..pre.len()].copy_from_slice(pre.as_bytes());
            v.pre_len = pre.len() as u8;
        }
        Some(v)
    }

    /// Encodes into the fixed 32-byte form.
    pub fn encode(&self) -> [u8; VERSION_LEN] {
        let mut out = [0u8; VERSION_LEN];
        out[0..4].copy_from_slice(&self.major.to_le_bytes());
        out[4..8].copy_from_slice(&self.minor.to_le_bytes());
        out[8..12].copy_from_slice(&self.patch.to_le_bytes());
        out[12..].copy_from_slice(&self.pre);
        out
    }

    /// Decodes the fixed 32-byte form, rejecting bad characters and bad padding.
    pub fn decode(bytes: &[u8; VERSION_LEN]) -> Result<Self, FormatError> {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let pre_bytes = &bytes[12..];
        let pre_len = pre_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_PRE_LEN);
        let bad = || FormatError::InvalidField(FieldError::Version);
        if pre_bytes[pre_len..].iter().any(|&b| b != 0) {
            return Err(bad());
        }
        let pre = core::str::from_utf8(&pre_bytes[..pre_len]).map_err(|_| bad())?;
        if pre_len > 0 && !pre.split('.').all(valid_pre_ident) {
            return Err(bad());
        }
        let mut v = Version::new(word(0), word(4), word(8));
        v.pre[..pre_len].copy_from_slice(&pre_bytes[..pre_len]);
        v.pre_len = pre_len as u8;
        Ok(v)
    }
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn valid_pre_ident(id: &str) -> bool {
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !(id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_build_ident(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn cmp_pre_ident(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        // Equal-length digit strings without leading zeros compare like numbers; longer
        // is larger. This avoids parsing (and overflow) entirely.
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre_len, other.pre_len) {
                (0, 0) => Ordering::Equal,
                (0, _) => Ordering::Greater,
                (_, 0) => Ordering::Less,
                _ => {
                    let mut a = self.pre().split('.');
                    let mut b = other.pre().split('.');
                    loop {
                        match (a.next(), b.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(x), Some(y)) => match cmp_pre_ident(x, y) {
                                Ordering::Equal => continue,
                                o => return o,
                            },
                        }
                    }
                }
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.pre_len > 0 {
            write!(f, "-{}", self.pre())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_precedence_examples_from_the_spec() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for w in order.windows(2) {
            let a = Version::parse(w[0]).unwrap();
            let b = Version::parse(w[1]).unwrap();
            assert!(a < b, "{a} < {b}");
        }
    }

    #[test]
    fn parse_rejects_non_semver() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.x",
            "1.2.3+",
            "a.b.c",
            "1.2.3-a..b",
            "1.2.3-abcdefghijklmnopqrstu",
        ] {
            assert!(Version::parse(s).is_none(), "{s:?} must not parse");
        }
        assert_eq!(
            Version::parse("v1.2.3+git.abc").unwrap(),
            Version::new(1, 2, 3)
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_bad_padding() {
        let v = Version::parse("4294967295.0.7-rc.1").unwrap();
        let enc = v.encode();
        assert_eq!(Version::decode(&enc).unwrap(), v);
        let mut bad = enc;
        bad[31] = b'x';
        assert!(Version::decode(&bad).is_err());
        let mut bad = enc;
        bad[12] = b'!';
        assert!(Version::decode(&bad).is_err());
    }
}
