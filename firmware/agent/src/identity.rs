//! Who is asking: a short token the device adds to the `User-Agent` of every request, so
//! that the static host's access log doubles as the fleet's status report (R6) and
//! `ota-sign fleet status` can answer "did the rollout reach everyone" without a server.
//!
//! ```text
//! User-Agent: ota-agent/0.1.0 (i=3f9a1c2e8b01;t=sensor;c=stable;v=1.2.0;s=1;r=up)
//! ```
//!
//! | key | value                                                                          |
//! |-----|--------------------------------------------------------------------------------|
//! | `i` | device id: 12 hex digits of SHA-256("ota-agent device id\0" ‖ id), or the id itself ([`Identify::PlainId`]) |
//! | `t` | device type of the running firmware                                            |
//! | `c` | channel followed                                                               |
//! | `v` | running version                                                                |
//! | `s` | running slot: `0`, `1`, … or `f` (factory)                                     |
//! | `r` | the last check's outcome, see [`Outcome`]                                      |
//!
//! Why the `User-Agent` and not a query string: every log format the hosts write keeps
//! it (nginx `combined`, S3 server access logs, CloudFront standard logs), and no cache
//! keys on it, so the manifest URL stays one cacheable object and `If-None-Match`/`304`
//! work as before. A query string would make every device's URL a distinct CloudFront
//! cache entry (when query strings are forwarded) and is dropped by hosts that ignore it.
//! The token costs about 55 bytes per request; [`Identify::Off`] sends none.

use core::fmt::{self, Write as _};

use ota_format::{Channel, DeviceType, Version};
use sha2::{Digest, Sha256};

use crate::geometry::BootTarget;
use crate::status::CheckResult;

/// Domain separation for the hashed device id.
const ID_HASH_DOMAIN: &[u8] = b"ota-agent device id\0";
/// Bytes of the hash sent (12 hex digits: no two of a million devices share one with
/// probability above 1 in 500).
const ID_HASH_BYTES: usize = 6;
/// Longest device id sent as itself; a longer one (or one with other characters than
/// `[A-Za-z0-9_.:-]`) is hashed even with [`Identify::PlainId`].
pub const MAX_PLAIN_ID_LEN: usize = 32;
/// Longest token: every field at its longest (id 32, type 32, channel 16, versions of
/// 53: three 10-digit numbers and a 20-character pre-release) is 210 bytes.
pub const MAX_TOKEN_LEN: usize = 224;

/// What a device says about itself in its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Identify {
    /// Nothing: the `User-Agent` is `ota-agent/<version>` alone.
    Off,
    /// The token, with the device id hashed (the default): logs can tell devices apart
    /// and follow one over time, but do not show its MAC address.
    #[default]
    HashedId,
    /// The token with the device id as configured (when it is short printable text;
    /// raw bytes such as a MAC address are sent as hex).
    PlainId,
}

/// The outcome reported in `r=`: the last check's, except that an unchanged manifest
/// (`304`) keeps the decision taken on it before, since the decision is the same; on the
/// boot after a failed trial (rolled back), `pf-V` from the start.
///
/// | code        | meaning                                                       |
/// |-------------|---------------------------------------------------------------|
/// | `boot`      | no check since this boot                                      |
/// | `up`        | running what the manifest names                               |
/// | `nr-B`      | not in the staged rollout (B: this device's bucket, 0..10000) |
/// | `pf-V`      | release V failed its trial boot here and is not retried       |
/// | `rl-V`      | installing V failed; a later check retries                    |
/// | `gu-V`      | installing V failed too often; given up until a new release  |
/// | `in-V`      | V installed, waiting for the reboot into its trial            |
/// | `err`       | the last check failed (network, status, refused manifest)     |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    decision: Option<CheckResult>,
    failed: bool,
}

impl Outcome {
    /// Takes the result of a finished check into account.
    pub fn note(&mut self, result: CheckResult) {
        match result {
            CheckResult::NotModified => self.failed = false,
            CheckResult::Failed => self.failed = true,
            decided => {
                self.decision = Some(decided);
                self.failed = false;
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failed {
            return f.write_str("err");
        }
        match self.decision {
            None => f.write_str("boot"),
            Some(CheckResult::UpToDate) => f.write_str("up"),
            Some(CheckResult::NotInRollout { bucket, .. }) => write!(f, "nr-{bucket}"),
            Some(CheckResult::PreviouslyFailed { version }) => write!(f, "pf-{version}"),
            Some(CheckResult::RetryLater { version, .. }) => write!(f, "rl-{version}"),
            Some(CheckResult::GaveUp { version, .. }) => write!(f, "gu-{version}"),
            Some(CheckResult::Installed { version }) => write!(f, "in-{version}"),
            // `note` never keeps these two as the decision.
            Some(CheckResult::NotModified | CheckResult::Failed) => f.write_str("err"),
        }
    }
}

/// What the token is made of.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// How much to say.
    pub identify: Identify,
    /// The configured unique id (MAC address).
    pub device_id: &'a [u8],
    /// Device type of the running firmware.
    pub device_type: DeviceType,
    /// Channel followed.
    pub channel: Channel,
    /// Running version.
    pub version: Version,
    /// Running slot.
    pub running: BootTarget,
    /// The last check's outcome.
    pub outcome: Outcome,
}

/// The text of the token (without the parentheses the `User-Agent` puts around it).
#[derive(Clone, Copy)]
pub struct Token {
    bytes: [u8; MAX_TOKEN_LEN],
    len: usize,
}

impl Token {
    /// The token.
    pub fn as_str(&self) -> &str {
        // Only ASCII is written (see `Identity::token`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.as_str())
    }
}

impl fmt::Write for Token {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn plain_id(id: &[u8]) -> Option<&str> {
    let ok = |b: &u8| b.is_ascii_alphanumeric() || b"_.:-".contains(b);
    (!id.is_empty() && id.len() <= MAX_PLAIN_ID_LEN && id.iter().all(ok))
        .then(|| core::str::from_utf8(id).ok())
        .flatten()
}

fn write_hex(out: &mut Token, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(out, "{b:02x}"))
}

impl Identity<'_> {
    /// The token, or `None` with [`Identify::Off`].
    pub fn token(&self) -> Option<Token> {
        let mut out = Token {
            bytes: [0; MAX_TOKEN_LEN],
            len: 0,
        };
        self.write(&mut out).ok()?;
        Some(out)
    }

    fn write(&self, out: &mut Token) -> fmt::Result {
        out.write_str("i=")?;
        match (self.identify, plain_id(self.device_id)) {
            (Identify::Off, _) => return Err(fmt::Error),
            (Identify::PlainId, Some(id)) => out.write_str(id)?,
            (Identify::PlainId, None) if self.device_id.len() <= MAX_PLAIN_ID_LEN / 2 => {
                write_hex(out, self.device_id)?
            }
            _ => {
                let digest = Sha256::new()
                    .chain_update(ID_HASH_DOMAIN)
                    .chain_update(self.device_id)
                    .finalize();
                write_hex(out, &digest[..ID_HASH_BYTES])?
            }
        }
        write!(
            out,
            ";t={};c={};v={};s=",
            self.device_type, self.channel, self.version
        )?;
        match self.running {
            BootTarget::Ota(n) => write!(out, "{n}")?,
            BootTarget::Factory => out.write_str("f")?,
        }
        write!(out, ";r={}", self.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn identity(identify: Identify, device_id: &[u8]) -> Identity<'_> {
        Identity {
            identify,
            device_id,
            device_type: DeviceType::new("sensor").unwrap(),
            channel: Channel::new("stable").unwrap(),
            version: Version::parse("1.2.0").unwrap(),
            running: BootTarget::Ota(1),
            outcome: Outcome::default(),
        }
    }

    #[test]
    fn the_device_id_is_hashed_unless_configured_otherwise() {
        let mac = [0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56];
        let hashed = identity(Identify::HashedId, &mac).token().unwrap();
        let text = hashed.as_str();
        assert!(text.starts_with("i="), "{text}");
        let id = &text[2..text.find(';').unwrap()];
        assert_eq!(id.len(), 12);
        assert!(!text.contains("240ac4123456"), "{text}");
        assert_eq!(
            &text[14..],
            ";t=sensor;c=stable;v=1.2.0;s=1;r=boot",
            "{text}"
        );
        // Stable across calls, different per device.
        assert_eq!(
            identity(Identify::HashedId, &mac).token().unwrap().as_str(),
            text
        );
        let other = identity(Identify::HashedId, &[1, 2, 3, 4, 5, 6])
            .token()
            .unwrap();
        assert_ne!(other.as_str(), text);

        let plain = identity(Identify::PlainId, &mac).token().unwrap();
        assert!(plain.as_str().starts_with("i=240ac4123456;"), "{plain:?}");
        let named = identity(Identify::PlainId, b"dev-0007").token().unwrap();
        assert!(named.as_str().starts_with("i=dev-0007;"), "{named:?}");
        // Characters that would break the header or the log line are never sent as-is.
        let odd = identity(Identify::PlainId, b"a b\"c)").token().unwrap();
        assert!(odd.as_str().starts_with("i=61206222"), "{odd:?}");
        assert!(identity(Identify::Off, &mac).token().is_none());
    }

    #[test]
    fn an_unchanged_manifest_keeps_the_decision_taken_on_it() {
        let v = Version::parse("1.3.0").unwrap();
        let mut o = Outcome::default();
        assert_eq!(o.to_string(), "boot");
        o.note(CheckResult::PreviouslyFailed { version: v });
        o.note(CheckResult::NotModified);
        assert_eq!(o.to_string(), "pf-1.3.0");
        o.note(CheckResult::Failed);
        assert_eq!(o.to_string(), "err");
        o.note(CheckResult::NotModified);
        assert_eq!(o.to_string(), "pf-1.3.0");
        o.note(CheckResult::NotInRollout {
            bucket: 4711,
            rollout: 2500,
        });
        assert_eq!(o.to_string(), "nr-4711");
        for (result, code) in [
            (CheckResult::UpToDate, "up"),
            (
                CheckResult::RetryLater {
                    version: v,
                    failures: 1,
                },
                "rl-1.3.0",
            ),
            (
                CheckResult::GaveUp {
                    version: v,
                    failures: 3,
                },
                "gu-1.3.0",
            ),
            (CheckResult::Installed { version: v }, "in-1.3.0"),
        ] {
            o.note(result);
            assert_eq!(o.to_string(), code);
        }
    }

    #[test]
    fn the_longest_fields_fit() {
        let long_type = DeviceType::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
        let long_channel = Channel::new("abcdefghijklmnop").unwrap();
        let long_version =
            Version::parse("4294967295.4294967295.4294967295-abcdefghijklmnopqrst").unwrap();
        let mut id = identity(Identify::PlainId, b"0123456789abcdef0123456789abcdef");
        id.device_type = long_type;
        id.channel = long_channel;
        id.version = long_version;
        id.running = BootTarget::Factory;
        id.outcome.note(CheckResult::GaveUp {
            version: long_version,
            failures: 9,
        });
        let token = id.token().expect("fits");
        assert!(
            token
                .as_str()
                .ends_with(";s=f;r=gu-4294967295.4294967295.4294967295-abcdefghijklmnopqrst")
        );
    }
}
