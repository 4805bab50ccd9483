//! The CRC-32 ESP-IDF uses for otadata entries.
//!
//! ESP-IDF computes `esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)`. The ROM
//! routine follows zlib's convention (the start value is a previous CRC, so it
//! is inverted on entry and the result inverted on exit), which makes the
//! otadata CRC equal to `zlib.crc32(seq_le_bytes, 0xFFFFFFFF)`. The CRC itself lives in
//! `ota_format::esp` (Secure Boot V2 signature blocks use it too).

pub use ota_format::esp::crc32_le;

/// The CRC stored in an otadata entry whose sequence number is `seq`.
pub const fn ota_seq_crc(seq: u32) -> u32 {
    crc32_le(u32::MAX, &seq.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_idf_vectors() {
        assert_eq!(ota_seq_crc(1), 0x4743_989A);
        assert_eq!(ota_seq_crc(2), 0x55F6_3774);
        assert_eq!(ota_seq_crc(3), 0xED4A_5011);
    }

    #[test]
    fn erased_and_zero_sequences() {
        // An erased entry (seq 0xFFFFFFFF, crc 0xFFFFFFFF) must not look valid by
        // CRC alone; seq 0 however has CRC 0xFFFFFFFF, which is why the
        // "seq != UINT32_MAX" check in ESP-IDF matters.
        assert_eq!(ota_seq_crc(u32::MAX), 0x2144_DF1C);
        assert_eq!(ota_seq_crc(0), 0xFFFF_FFFF);
    }
}
