//! Debian's nginx, started by ota-test-servers' launcher, and what its access log says the
//! fleet benchmark was served.

use std::path::Path;

pub use ota_test_servers::nginx::{Nginx, find};

use super::HostStats;

/// Serves `root` on a free loopback port, with room for `connections` clients at once.
pub fn serve(root: &Path, connections: usize) -> Result<Nginx, String> {
    let bin = find().ok_or("nginx is not installed (apt-get install nginx-light)")?;
    Nginx::start(&bin, root, connections).map_err(|e| format!("starting nginx: {e}"))
}

/// Requests and bytes so far, from the access log.
pub fn stats(nginx: &Nginx) -> HostStats {
    parse_access_log(&std::fs::read_to_string(nginx.access_log()).unwrap_or_default())
}

/// Sums an access log in the launcher's `bytes` format.
pub fn parse_access_log(log: &str) -> HostStats {
    let mut stats = HostStats::default();
    for line in log.lines() {
        let mut f = line.split_whitespace();
        let (Some(status), Some(sent), Some(received)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        stats.requests += 1;
        stats.bytes_sent += sent.parse::<u64>().unwrap_or(0);
        stats.bytes_received += received.parse::<u64>().unwrap_or(0);
        match status {
            "304" => stats.not_modified += 1,
            "206" => stats.partial += 1,
            _ => {}
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_is_summed_by_status() {
        let log = "200 1200 90 GET /a.manifest\n304 180 120 GET /a.manifest\n\
                   206 5000 110 GET /a.ota\n304 181 120 GET /a.manifest\ngarbage\n";
        assert_eq!(
            parse_access_log(log),
            HostStats {
                requests: 4,
                not_modified: 2,
                partial: 1,
                bytes_sent: 1200 + 180 + 5000 + 181,
                bytes_received: 90 + 120 + 110 + 120,
            }
        );
    }
}
