//! SNTP (RFC 4330) client messages: the wall clock a device without a battery-backed clock
//! needs for manifest expiry. Only the two 48-byte messages live here; sending them over
//! UDP is the firmware's (embassy-net on the ESP32).
//!
//! SNTP is unauthenticated. The request carries a random 64-bit transmit timestamp that
//! the reply must echo, so an attacker who cannot see the request cannot answer it; one
//! on the path can, and can then move the device's clock. What that buys them is the
//! expiry check and nothing else (docs/SECURITY.md); [`ClockSanity`] narrows how far and
//! how fast they can move it.

/// The NTP server port.
pub const NTP_PORT: u16 = 123;
/// Length of both messages.
pub const PACKET_LEN: usize = 48;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_TO_UNIX: u64 = 2_208_988_800;
/// Replies that put the time before 2020-01-01 are refused: no device runs then, and a
/// clock set to 1970 would make every manifest look unexpired.
pub const EARLIEST_UNIX: u64 = 1_577_836_800;

/// Why a reply is not used.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SntpError {
    /// Not 48 bytes or more.
    #[error("reply shorter than 48 bytes")]
    Short,
    /// Not a server's answer (mode 4), or a version other than 3 or 4.
    #[error("not an NTP server reply")]
    NotServer,
    /// Stratum 0: a "kiss of death" (the server asks to be left alone) or unsynchronized.
    #[error("server refused (kiss of death)")]
    KissOfDeath,
    /// The leap indicator says the server's clock is not synchronized.
    #[error("server clock not synchronized")]
    Unsynchronized,
    /// The reply does not echo this request's transmit timestamp.
    #[error("reply to another request")]
    WrongOrigin,
    /// The time is before [`EARLIEST_UNIX`].
    #[error("implausible time")]
    Implausible,
}

/// A client request (version 4, mode 3) whose transmit timestamp is `nonce`: random, so
/// that only someone who saw the request can answer it.
pub fn request(nonce: u64) -> [u8; PACKET_LEN] {
    let mut packet = [0u8; PACKET_LEN];
    packet[0] = (4 << 3) | 3;
    packet[40..48].copy_from_slice(&nonce.to_be_bytes());
    packet
}

/// Unix seconds from the server's reply to [`request`]`(nonce)`: its transmit timestamp,
/// rounded down. NTP seconds wrap in 2036; times from 1968 to 2104 come out right.
pub fn parse_reply(reply: &[u8], nonce: u64) -> Result<u64, SntpError> {
    let reply = reply.get(..PACKET_LEN).ok_or(SntpError::Short)?;
    let (leap, version, mode) = (reply[0] >> 6, (reply[0] >> 3) & 7, reply[0] & 7);
    if mode != 4 || !(3..=4).contains(&version) {
        return Err(SntpError::NotServer);
    }
    if reply[1] == 0 {
        return Err(SntpError::KissOfDeath);
    }
    if leap == 3 {
        return Err(SntpError::Unsynchronized);
    }
    if reply[24..32] != nonce.to_be_bytes() {
        return Err(SntpError::WrongOrigin);
    }
    let seconds = u64::from(u32::from_be_bytes([
        reply[40], reply[41], reply[42], reply[43],
    ]));
    // RFC 4330 §3: with the top bit clear the count is in era 1 (from 2036-02-07).
    let since_1900 = if seconds & 0x8000_0000 == 0 {
        seconds + (1 << 32)
    } else {
        seconds
    };
    let unix = since_1900 - NTP_TO_UNIX;
    if unix < EARLIEST_UNIX {
        return Err(SntpError::Implausible);
    }
    Ok(unix)
}

/// How far a reply may stray from the time the clock already keeps (the last accepted
/// time plus the monotonic time since) and still be taken at once: crystal drift between
/// syncs (a few seconds a day) and network delay, with a wide margin.
pub const STEP_TOLERANCE_S: u64 = 120;
/// Replies in a row that must agree on a time the clock disagrees with before the clock
/// moves to it: the way back from a first sync that an attacker set wrong.
pub const CONFIRMATIONS: u8 = 3;

/// Why a time from a server is not taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClockRejection {
    /// Before this firmware was built: no device runs then.
    #[error("time {unix} is before this firmware was built ({floor})")]
    BeforeBuild {
        /// The time offered.
        unix: u64,
        /// The earliest time accepted.
        floor: u64,
    },
    /// Too far from the time the clock keeps, and not yet confirmed by
    /// [`CONFIRMATIONS`] replies in a row.
    #[error(
        "time jumps {offset_s} s from the running clock ({seen} of {CONFIRMATIONS} replies agree)"
    )]
    Jump {
        /// The reply minus the running clock, seconds.
        offset_s: i64,
        /// Replies in a row that agree on the new time, this one included.
        seen: u8,
    },
}

/// A time and the monotonic milliseconds it was taken at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Anchor {
    unix: u64,
    at_ms: u64,
}

impl Anchor {
    /// The time this anchor says it is at monotonic `now_ms`.
    fn project(&self, now_ms: u64) -> u64 {
        self.unix
            .saturating_add(now_ms.saturating_sub(self.at_ms) / 1000)
    }

    /// Seconds from this anchor's time at `now_ms` to `unix`.
    fn offset(&self, unix: u64, now_ms: u64) -> i64 {
        let expected = self.project(now_ms);
        if unix >= expected {
            i64::try_from(unix - expected).unwrap_or(i64::MAX)
        } else {
            i64::try_from(expected - unix).map_or(i64::MIN, |d| -d)
        }
    }

    fn agrees(&self, unix: u64, now_ms: u64) -> bool {
        self.offset(unix, now_ms).unsigned_abs() <= STEP_TOLERANCE_S
    }
}

/// Decides which server times the wall clock takes.
///
/// | rule | reply refused when |
/// |---|---|
/// | build floor | it is before the firmware's build time (every reply, the first included) |
/// | first sync | — (any time at or after the build time is taken) |
/// | steps | it differs from the running clock (last accepted time + monotonic time since) by more than [`STEP_TOLERANCE_S`], backwards or forwards |
/// | recovery | — a step is taken once [`CONFIRMATIONS`] replies in a row agree on it (within the tolerance, with the monotonic time between them) |
///
/// So one forged reply can no longer move the clock: an attacker must answer the first
/// sync after boot, or [`CONFIRMATIONS`] syncs in a row, and can never go before the
/// build time.
#[derive(Clone, Copy, Debug)]
pub struct ClockSanity {
    floor: u64,
    accepted: Option<Anchor>,
    /// A time replies disagree with the clock on, and how many in a row said so.
    disputed: Option<(Anchor, u8)>,
}

impl ClockSanity {
    /// A clock with no time yet, for firmware built at `build_unix` (Unix seconds).
    pub const fn new(build_unix: u64) -> Self {
        let floor = if build_unix > EARLIEST_UNIX {
            build_unix
        } else {
            EARLIEST_UNIX
        };
        ClockSanity {
            floor,
            accepted: None,
            disputed: None,
        }
    }

    /// Offers `unix`, received at monotonic `now_ms`; `Ok` with the time to set the clock
    /// to, or why it is refused.
    pub fn offer(&mut self, unix: u64, now_ms: u64) -> Result<u64, ClockRejection> {
        if unix < self.floor {
            return Err(ClockRejection::BeforeBuild {
                unix,
                floor: self.floor,
            });
        }
        let offered = Anchor {
            unix,
            at_ms: now_ms,
        };
        let Some(accepted) = self.accepted else {
            return Ok(self.take(offered));
        };
        if accepted.agrees(unix, now_ms) {
            return Ok(self.take(offered));
        }
        let seen = match self.disputed {
            Some((disputed, seen)) if disputed.agrees(unix, now_ms) => seen.saturating_add(1),
            _ => 1,
        };
        if seen >= CONFIRMATIONS {
            return Ok(self.take(offered));
        }
        self.disputed = Some((offered, seen));
        Err(ClockRejection::Jump {
            offset_s: accepted.offset(unix, now_ms),
            seen,
        })
    }

    fn take(&mut self, anchor: Anchor) -> u64 {
        self.accepted = Some(anchor);
        self.disputed = None;
        anchor.unix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: u64 = 0x0123_4567_89ab_cdef;

    /// A server's reply to `request(NONCE)` saying `ntp_seconds`.
    fn reply(ntp_seconds: u32) -> [u8; PACKET_LEN] {
        let mut r = [0u8; PACKET_LEN];
        r[0] = (4 << 3) | 4;
        r[1] = 2;
        r[24..32].copy_from_slice(&NONCE.to_be_bytes());
        r[40..44].copy_from_slice(&ntp_seconds.to_be_bytes());
        r
    }

    #[test]
    fn request_is_version_4_client_mode_with_the_nonce() {
        let r = request(NONCE);
        assert_eq!(r[0], 0x23);
        assert_eq!(&r[40..48], &NONCE.to_be_bytes());
        assert!(r[1..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn times_on_both_sides_of_the_2036_wrap() {
        // 2026-11-24T00:00:00Z
        let unix = 1_795_478_400u64;
        assert_eq!(
            parse_reply(&reply((unix + NTP_TO_UNIX) as u32), NONCE),
            Ok(unix)
        );
        // 2036-02-07T06:28:16Z is NTP second 2^32: the count starts over at 0.
        let wrap = (1u64 << 32) - NTP_TO_UNIX;
        assert_eq!(parse_reply(&reply(0), NONCE), Ok(wrap));
        assert_eq!(parse_reply(&reply(100), NONCE), Ok(wrap + 100));
        // Version 3 servers are still around.
        let mut v3 = reply((unix + NTP_TO_UNIX) as u32);
        v3[0] = (3 << 3) | 4;
        assert_eq!(parse_reply(&v3, NONCE), Ok(unix));
        // A longer datagram (extension fields) is read up to its first 48 bytes.
        let mut long = [0u8; 60];
        long[..PACKET_LEN].copy_from_slice(&reply((unix + NTP_TO_UNIX) as u32));
        assert_eq!(parse_reply(&long, NONCE), Ok(unix));
    }

    #[test]
    fn every_bad_reply_is_refused() {
        let good = reply((1_795_478_400 + NTP_TO_UNIX) as u32);
        let mut cases: [([u8; PACKET_LEN], SntpError); 6] = [(good, SntpError::NotServer); 6];
        cases[0].0[0] = (4 << 3) | 3; // a client's request echoed back
        cases[1].0[0] = (5 << 3) | 4; // version 5
        cases[2] = (good, SntpError::KissOfDeath);
        cases[2].0[1] = 0;
        cases[3] = (good, SntpError::Unsynchronized);
        cases[3].0[0] |= 3 << 6;
        cases[4] = (good, SntpError::WrongOrigin);
        cases[4].0[31] ^= 1;
        // 2019-12-31T23:59:59Z
        cases[5] = (
            reply((EARLIEST_UNIX - 1 + NTP_TO_UNIX) as u32),
            SntpError::Implausible,
        );
        for (i, (packet, error)) in cases.iter().enumerate() {
            assert_eq!(parse_reply(packet, NONCE), Err(*error), "case {i}");
        }
        assert_eq!(parse_reply(&good[..47], NONCE), Err(SntpError::Short));
        assert_eq!(parse_reply(&good, NONCE), Ok(1_795_478_400));
    }

    /// 2026-11-24T00:00:00Z, and a build a day before.
    const NOW: u64 = 1_795_478_400;
    const BUILT: u64 = NOW - 86_400;
    const MINUTE_MS: u64 = 60_000;

    #[test]
    fn times_before_the_build_are_refused_first_and_later() {
        let mut clock = ClockSanity::new(BUILT);
        let before = ClockRejection::BeforeBuild {
            unix: BUILT - 1,
            floor: BUILT,
        };
        assert_eq!(clock.offer(BUILT - 1, 0), Err(before));
        assert_eq!(clock.offer(BUILT, 0), Ok(BUILT));
        // Even replies that agree with each other never take it below the build.
        for n in 0..2 * CONFIRMATIONS as u64 {
            assert_eq!(clock.offer(BUILT - 1, n), Err(before));
        }
        // A build time before 2020 still refuses what parse_reply refuses.
        assert!(matches!(
            ClockSanity::new(0).offer(EARLIEST_UNIX - 1, 0),
            Err(ClockRejection::BeforeBuild { .. })
        ));
    }

    #[test]
    fn the_first_sync_takes_any_time_after_the_build() {
        let mut clock = ClockSanity::new(BUILT);
        assert_eq!(
            clock.offer(NOW + 10 * 365 * 86_400, 5_000),
            Ok(NOW + 10 * 365 * 86_400)
        );
    }

    #[test]
    fn steps_within_the_tolerance_of_the_running_clock_are_taken() {
        let mut clock = ClockSanity::new(BUILT);
        assert_eq!(clock.offer(NOW, 0), Ok(NOW));
        // Six hours later by the monotonic clock, a little drift either way.
        let later = 6 * 60 * MINUTE_MS;
        let expected = NOW + 6 * 3600;
        assert_eq!(
            clock.offer(expected + STEP_TOLERANCE_S, later),
            Ok(expected + STEP_TOLERANCE_S)
        );
        let later = later + 6 * 60 * MINUTE_MS;
        let expected = expected + STEP_TOLERANCE_S + 6 * 3600;
        assert_eq!(
            clock.offer(expected - STEP_TOLERANCE_S, later),
            Ok(expected - STEP_TOLERANCE_S)
        );
    }

    #[test]
    fn a_jump_backwards_is_refused() {
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        // An hour on, a reply that turns the clock back a day (expired manifests again).
        let back = NOW + 3600 - 86_400;
        assert_eq!(
            clock.offer(back, 60 * MINUTE_MS),
            Err(ClockRejection::Jump {
                offset_s: -86_400,
                seen: 1
            })
        );
        // One second beyond the tolerance is already a jump.
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        assert!(clock.offer(NOW - STEP_TOLERANCE_S - 1, 0).is_err());
    }

    #[test]
    fn a_jump_forwards_beyond_the_elapsed_time_is_refused() {
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        // Ten minutes of uptime cannot be a week of wall-clock time (every manifest
        // with an expiry would be refused).
        let week = 7 * 86_400;
        assert_eq!(
            clock.offer(NOW + 600 + week, 10 * MINUTE_MS),
            Err(ClockRejection::Jump {
                offset_s: week as i64,
                seen: 1
            })
        );
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        assert!(
            clock
                .offer(NOW + 600 + STEP_TOLERANCE_S + 1, 10 * MINUTE_MS)
                .is_err()
        );
    }

    #[test]
    fn a_jump_confirmed_by_replies_in_a_row_is_taken() {
        // The first sync was forged a year ahead; honest servers then agree on the truth.
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW + 365 * 86_400, 0).unwrap();
        let mut at = 0;
        for seen in 1..CONFIRMATIONS {
            at += MINUTE_MS;
            assert_eq!(
                clock.offer(NOW + at / 1000, at),
                Err(ClockRejection::Jump {
                    offset_s: -365 * 86_400,
                    seen
                })
            );
        }
        at += MINUTE_MS;
        assert_eq!(clock.offer(NOW + at / 1000, at), Ok(NOW + at / 1000));
        // Replies that disagree with each other start the count over.
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        for n in 0..2 * CONFIRMATIONS as u64 {
            let wild = NOW + (n + 1) * 86_400 * if n % 2 == 0 { 1 } else { 30 };
            assert!(clock.offer(wild, n).is_err(), "reply {n}");
        }
        // And one reply that agrees with the clock ends a dispute.
        let mut clock = ClockSanity::new(BUILT);
        clock.offer(NOW, 0).unwrap();
        for _ in 1..CONFIRMATIONS {
            assert!(clock.offer(NOW - 86_400, 0).is_err());
        }
        assert_eq!(clock.offer(NOW, 0), Ok(NOW));
        assert!(matches!(
            clock.offer(NOW - 86_400, 0),
            Err(ClockRejection::Jump { seen: 1, .. })
        ));
    }
}
