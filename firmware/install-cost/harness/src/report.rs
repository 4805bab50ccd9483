//! Report lines on qemu's standard output (semihosting), formatted without an allocator.

use core::fmt::{self, Write};

use crate::rt;

/// Longest line; longer ones are cut (and end in `...`).
const LINE: usize = 200;

struct Line {
    buf: [u8; LINE + 5],
    len: usize,
    cut: bool,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(LINE - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.cut |= take < s.len();
        Ok(())
    }
}

/// Prints one line.
pub fn line(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; LINE + 5],
        len: 0,
        cut: false,
    };
    // Line::write_str never fails.
    let _ = line.write_fmt(args);
    let mut end = line.len;
    if line.cut {
        line.buf[end..end + 3].copy_from_slice(b"...");
        end += 3;
    }
    line.buf[end] = b'\n';
    line.buf[end + 1] = 0;
    rt::write0(&line.buf[..end + 2]);
}

/// Prints `key=value`.
pub fn value(key: &str, value: impl fmt::Display) {
    line(format_args!("{key}={value}"));
}
