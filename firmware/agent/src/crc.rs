//! The CRC-32 ESP-IDF uses for otadata entries.
//!
//! ESP-IDF computes `esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)`. The ROM
//! routine follows zlib's convention (the start value is a previous CRC, so it
//! is inverted on entry and the result inverted on exit), which makes the
//! otadata CRC equal to `zlib.crc32(seq_le_bytes, 0xFFFFFFFF)`. A table-less
//! bitwise loop is enough: it runs over four bytes per entry.

/// Reflected IEEE 802.3 polynomial, as used by zlib and the ESP32 ROM.
const POLY: u32 = 0xEDB8_8320;

/// zlib-style CRC-32 of `data`, continuing from `start`.
pub const fn crc32_le(start: u32, data: &[u8]) -> u32 {
    let mut crc = !start;
    let mut i = 0;
    while i < data.len() {
        crc ^= data[i] as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        i += 1;
    }
    !crc
}

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

    #[test]
    fn plain_zlib_crc() {
        // zlib.crc32(b"123456789") == 0xCBF43926 (start value 0).
        assert_eq!(crc32_le(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_le(0, b""), 0);
    }
}
