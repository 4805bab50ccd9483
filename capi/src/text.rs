//! Text fields of the C structs: fixed `char` arrays, NUL-terminated, so that no string
//! pointer has to be trusted and `.device_type = "thermostat"` initialises one in C.

use core::ffi::c_char;
use core::fmt::{self, Write};

use crate::status::OtaStatus;

/// Size of a device type field: 32 bytes and the terminating NUL.
pub const OTA_DEVICE_TYPE_BUF: usize = 33;
/// Size of a channel field: 16 bytes and the terminating NUL.
pub const OTA_CHANNEL_BUF: usize = 17;
/// Size of a version text field: the longest version (`4294967295.4294967295.4294967295-`
/// and a 20-byte pre-release, 53 bytes) and the NUL, rounded up.
pub const OTA_VERSION_BUF: usize = 64;
/// Size of an image file name field: 96 bytes and the terminating NUL.
pub const OTA_IMAGE_NAME_BUF: usize = 97;
/// Size of a trusted-key descriptor (what `ota-sign pubkey --format c` defines).
pub const OTA_DESCRIPTOR_LEN: usize = 276;
const _: () = assert!(OTA_DESCRIPTOR_LEN == ota_format::DESCRIPTOR_LEN);

/// The text of a C field: a copy of its bytes before the first NUL.
pub(crate) struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// Reads `field`; `InvalidArgument` when it holds no NUL or its text is not UTF-8
    /// (every valid name and version is ASCII).
    pub(crate) fn read(field: &[c_char; N]) -> Result<Self, OtaStatus> {
        let len = field
            .iter()
            .position(|&c| c == 0)
            .ok_or(OtaStatus::InvalidArgument)?;
        let mut buf = [0u8; N];
        // `c_char` is `i8` or `u8` depending on the target: a byte either way.
        for (b, &c) in buf.iter_mut().zip(field) {
            *b = c.to_ne_bytes()[0];
        }
        let text = Text { buf, len };
        text.checked_str()?;
        Ok(text)
    }

    fn checked_str(&self) -> Result<&str, OtaStatus> {
        let bytes = self.buf.get(..self.len).ok_or(OtaStatus::InvalidArgument)?;
        core::str::from_utf8(bytes).map_err(|_| OtaStatus::InvalidArgument)
    }

    /// The text (checked to be UTF-8 by [`Self::read`]).
    pub(crate) fn as_str(&self) -> &str {
        self.checked_str().unwrap_or("")
    }
}

/// Writes `value`'s text into a C field, NUL-terminated; the field is zeroed first. The
/// fields are sized so that every value fits; one that does not is cut (never unsafe).
pub(crate) fn write<const N: usize>(value: impl fmt::Display) -> [c_char; N] {
    let mut w = FieldWriter {
        buf: [0; N],
        len: 0,
    };
    let _ = write!(w, "{value}");
    w.buf
}

struct FieldWriter<const N: usize> {
    buf: [c_char; N],
    len: usize,
}

impl<const N: usize> Write for FieldWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // Keep the last byte for the NUL.
            if self.len + 1 >= N {
                return Err(fmt::Error);
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = c_char::from_ne_bytes([b]);
            }
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<const N: usize>(bytes: &[u8]) -> [c_char; N] {
        let mut out = [0 as c_char; N];
        for (o, &b) in out.iter_mut().zip(bytes) {
            *o = c_char::from_ne_bytes([b]);
        }
        out
    }

    #[test]
    fn read_takes_the_text_before_the_first_nul_and_refuses_the_rest() {
        let f: [c_char; 8] = field(b"abc\0xyz\0");
        assert_eq!(Text::read(&f).unwrap().as_str(), "abc");
        let full: [c_char; 4] = field(b"abcd");
        assert_eq!(Text::read(&full).err(), Some(OtaStatus::InvalidArgument));
        let not_utf8: [c_char; 4] = field(b"\xff\xfe\0\0");
        assert_eq!(
            Text::read(&not_utf8).err(),
            Some(OtaStatus::InvalidArgument)
        );
    }

    #[test]
    fn write_always_leaves_a_terminating_nul() {
        let fits: [c_char; 4] = write("abc");
        assert_eq!(fits, field::<4>(b"abc\0"));
        let cut: [c_char; 4] = write("abcdef");
        assert_eq!(cut, field::<4>(b"abc\0"));
        let longest =
            ota_format::Version::parse("4294967295.4294967295.4294967295-aaaaaaaaaaaaaaaaaaaa")
                .unwrap();
        let v: [c_char; OTA_VERSION_BUF] = write(longest);
        assert_eq!(Text::read(&v).unwrap().as_str(), longest.to_string());
    }
}
