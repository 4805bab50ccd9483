//! Debian's nginx serving the published directory the way a static host should (ETag and
//! Range on, manifests `no-cache`, images immutable), with an access log that records the
//! bytes of every answer so the fleet benchmark can count what was served.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::HostStats;

/// A running nginx. Stops when dropped.
pub struct Nginx {
    url: String,
    child: Child,
    work: tempfile::TempDir,
}

/// Where nginx is installed, if it is.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// Why nginx could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    /// Not installed.
    #[error("nginx is not installed (apt-get install nginx-light)")]
    Missing,
    /// Its files could not be written or the process not started.
    #[error("starting nginx: {0}")]
    Io(#[from] std::io::Error),
    /// It started but does not listen.
    #[error("nginx did not start: {0}")]
    NotListening(String),
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Nginx {
    /// Serves `root` on a free loopback port, with room for `connections` clients at once.
    pub fn serve(root: &Path, connections: usize) -> Result<Nginx, NginxError> {
        let bin = find().ok_or(NginxError::Missing)?;
        let work = tempfile::Builder::new()
            .prefix("ota-demo-nginx")
            .tempdir()?;
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        let w = work.path().display();
        // As root, workers would drop to `nobody` and fail to read a 0700 temp dir.
        let user = if running_as_root() {
            "user root root;"
        } else {
            ""
        };
        let conf = format!(
            r#"{user}
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {files};
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    log_format bytes '$status $bytes_sent $request_length $request_method $uri';
    access_log {w}/access.log bytes;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    etag on;
    keepalive_timeout 5;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
        location ~ \.manifest$ {{ add_header Cache-Control "no-cache" always; }}
        location ~ \.ota$ {{ add_header Cache-Control "public, max-age=31536000, immutable" always; }}
    }}
}}
"#,
            files = connections * 2 + 64,
            root = root.display()
        );
        let conf_path = work.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(bin)
            .arg("-e")
            .arg(work.path().join("error.log"))
            .arg("-p")
            .arg(work.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut nginx = Nginx {
            url: format!("http://127.0.0.1:{port}"),
            child,
            work,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) || nginx.child.try_wait()?.is_some() {
                let log = std::fs::read_to_string(nginx.work.path().join("error.log"))
                    .unwrap_or_default();
                return Err(NginxError::NotListening(log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Requests and bytes so far, from the access log (nginx writes each line when the
    /// answer is complete, unbuffered).
    pub fn stats(&self) -> HostStats {
        let log = std::fs::read_to_string(self.work.path().join("access.log")).unwrap_or_default();
        parse_access_log(&log)
    }
}

/// Sums an access log written with the `bytes` format above.
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

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
