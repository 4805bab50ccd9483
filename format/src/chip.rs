//! ESP-IDF chip ids (`esp_chip_id_t`), as stored in the app image header.

use core::fmt;

/// An ESP-IDF chip id (`esp_chip_id_t`, the `chip_id` field of `esp_image_header_t`).
///
/// Stored as the raw `u16` so an unknown future chip still round-trips; [`ChipId::name`]
/// knows the released ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChipId(pub u16);

/// Every chip id this crate can name, with its conventional lower-case name.
const KNOWN: &[(u16, &str)] = &[
    (0x0000, "esp32"),
    (0x0002, "esp32s2"),
    (0x0005, "esp32c3"),
    (0x0009, "esp32s3"),
    (0x000C, "esp32c2"),
    (0x000D, "esp32c6"),
    (0x0010, "esp32h2"),
    (0x0012, "esp32p4"),
    (0x0014, "esp32c61"),
    (0x0017, "esp32c5"),
];

impl ChipId {
    /// ESP32.
    pub const ESP32: ChipId = ChipId(0x0000);
    /// ESP32-S2.
    pub const ESP32S2: ChipId = ChipId(0x0002);
    /// ESP32-C3.
    pub const ESP32C3: ChipId = ChipId(0x0005);
    /// ESP32-S3.
    pub const ESP32S3: ChipId = ChipId(0x0009);
    /// ESP32-C2.
    pub const ESP32C2: ChipId = ChipId(0x000C);
    /// ESP32-C6.
    pub const ESP32C6: ChipId = ChipId(0x000D);
    /// ESP32-H2.
    pub const ESP32H2: ChipId = ChipId(0x0010);
    /// ESP32-P4.
    pub const ESP32P4: ChipId = ChipId(0x0012);

    /// The lower-case chip name (`"esp32c3"`), if this id is a known chip.
    pub fn name(self) -> Option<&'static str> {
        KNOWN.iter().find(|(id, _)| *id == self.0).map(|(_, n)| *n)
    }

    /// Looks a chip up by name; accepts `esp32c3`, `ESP32-C3` and `esp32_c3`.
    pub fn from_name(name: &str) -> Option<ChipId> {
        let mut buf = [0u8; 16];
        let mut len = 0;
        for b in name.bytes() {
            if b == b'-' || b == b'_' {
                continue;
            }
            if len == buf.len() {
                return None;
            }
            buf[len] = b.to_ascii_lowercase();
            len += 1;
        }
        let wanted = &buf[..len];
        KNOWN
            .iter()
            .find(|(_, n)| n.as_bytes() == wanted)
            .map(|(id, _)| ChipId(*id))
    }

    /// Every known chip, for help texts.
    pub fn known() -> impl Iterator<Item = (ChipId, &'static str)> {
        KNOWN.iter().map(|(id, n)| (ChipId(*id), *n))
    }
}

impl fmt::Display for ChipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "chip 0x{:04x}", self.0),
        }
    }
}

impl fmt::Debug for ChipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChipId({self})")
    }
}
