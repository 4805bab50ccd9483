//! The CRC-32 ESP-IDF uses for otadata entries and Secure Boot V2 signature blocks.
//!
//! ESP-IDF computes `esp_rom_crc32_le(start, data, len)`. The ROM routine follows zlib's
//! convention (the start value is a previous CRC, so it is inverted on entry and the
//! result inverted on exit), which makes it equal to `zlib.crc32(data, start)` and lets a
//! CRC continue over data that arrives in pieces. A table-less bitwise loop is enough: it
//! runs over four bytes per otadata entry and 1196 bytes per signature block.

/// Reflected IEEE 802.3 polynomial, as used by zlib and the ESP32 ROM.
const POLY: u32 = 0xEDB8_8320;

/// zlib-style CRC-32 of `data`, continuing from `start` (0 for a new CRC).
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

#[cfg(test)]
mod tests {
    use super::crc32_le;

    #[test]
    fn plain_zlib_crc() {
        // zlib.crc32(b"123456789") == 0xCBF43926 (start value 0).
        assert_eq!(crc32_le(0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn continues_over_pieces() {
        let whole = crc32_le(0, b"123456789");
        assert_eq!(crc32_le(crc32_le(0, b"1234"), b"56789"), whole);
    }
}
