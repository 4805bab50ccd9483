//! SNTP (RFC 4330) client messages: the wall clock a device without a battery-backed clock
//! needs for manifest expiry. Only the two 48-byte messages live here; sending them over
//! UDP is the firmware's (embassy-net on the ESP32).
//!
//! SNTP is unauthenticated. The request carries a random 64-bit transmit timestamp that
//! the reply must echo, so an attacker who cannot see the request cannot answer it; one
//! on the path can, and can then move the device's clock. What that buys them is the
//! expiry check and nothing else (docs/SECURITY.md).

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
}
