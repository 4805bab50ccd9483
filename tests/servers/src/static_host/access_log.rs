//! The host's access log in nginx's predefined `combined` format, which `ota-sign fleet
//! status` reads: the demo's fleet is summarised from it when nginx is not installed.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use super::Request;
use crate::util::lock;

/// An append-only log file shared by the host's connections.
pub(super) struct AccessLog(Mutex<File>);

impl AccessLog {
    /// Opens `path` for appending, creating it.
    pub(super) fn open(path: &Path) -> io::Result<AccessLog> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(AccessLog(Mutex::new(file)))
    }

    /// Appends the line of one answered request (one write, so lines never interleave).
    pub(super) fn record(&self, peer: &str, req: &Request, status: u16, body: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = combined_log_line(peer, now, req, status, body);
        // A log that cannot be written loses lines, never an answer.
        let _ = lock(&self.0).write_all(line.as_bytes());
    }
}

/// `text` as nginx writes a variable into a log line: `"`, `\` and bytes outside
/// printable ASCII as `\xXX`.
fn log_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// One line of nginx's `combined` format, in UTC:
/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
/// "$http_referer" "$http_user_agent"`.
pub fn combined_log_line(
    peer: &str,
    unix_secs: u64,
    req: &Request,
    status: u16,
    body: u64,
) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = unix_secs % 86_400;
    format!(
        "{peer} - - [{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {status} {body} \"-\" \"{}\"\n",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        log_escape(&req.method),
        log_escape(&req.path),
        log_escape(req.user_agent.as_deref().unwrap_or("-")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_are_nginx_combined() {
        let req = Request {
            user_agent: Some(
                "ota-agent/0.1.0 (i=ab;t=demo-sensor;c=stable;v=2.0.0;s=1;r=up)".into(),
            ),
            ..Request::get("/demo-sensor.stable.manifest")
        };
        assert_eq!(
            combined_log_line("127.0.0.1", 1_796_546_469, &req, 304, 0),
            "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET /demo-sensor.stable.manifest HTTP/1.1\" \
             304 0 \"-\" \"ota-agent/0.1.0 (i=ab;t=demo-sensor;c=stable;v=2.0.0;s=1;r=up)\"\n"
        );
        let line = combined_log_line("::1", 0, &Request::get("/a\"b"), 404, 10);
        assert!(
            line.contains(
                "[01/Jan/1970:00:00:00 +0000] \"GET /a\\x22b HTTP/1.1\" 404 10 \"-\" \"-\""
            ),
            "{line}"
        );
    }
}
