//! Debian's nginx as an unprivileged-config instance: a generated config, a free loopback
//! port, logs and temp files in a private directory, serving one directory the way a
//! static host should (ETag and Range on, manifests `no-cache`, images immutable).
//! The demo's fleet benchmark runs on it too, hence the sized connection limit and the
//! access log that records the bytes of every answer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util;

/// A running nginx. Stops when dropped.
pub struct Nginx {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Child,
    work: tempfile::TempDir,
}

/// Where nginx is installed, if it is.
pub fn find() -> Option<PathBuf> {
    util::find_binary("nginx", &[PathBuf::from("/usr/sbin")])
}

impl Nginx {
    /// Serves `root` on a free loopback port. `None` only when nginx is missing and
    /// `OTA_SKIP_SERVER_TESTS=1`; a missing nginx otherwise panics with the install command.
    pub fn serve(root: &Path) -> Option<Nginx> {
        let bin = util::require_binary("nginx", &[PathBuf::from("/usr/sbin")])?;
        Some(Nginx::start(&bin, root, 64).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts the nginx at `bin` serving `root`, with room for `connections` clients at once.
    pub fn start(bin: &Path, root: &Path, connections: usize) -> std::io::Result<Nginx> {
        let work = tempfile::Builder::new().prefix("ota-nginx").tempdir()?;
        let port = util::free_port();
        let w = work.path().display();
        // As root, workers would drop to `nobody` and fail to read a 0700 temp dir.
        let user = if util::running_as_root() {
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
        let mut child = Command::new(bin)
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
        if !util::wait_for_port(port, Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(work.path().join("error.log")).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "nginx did not start on port {port}:\n{log}"
            )));
        }
        Ok(Nginx {
            url: format!("http://127.0.0.1:{port}"),
            child,
            work,
        })
    }

    /// One line per answer, `STATUS BYTES_SENT REQUEST_LENGTH METHOD URI`, written when
    /// the answer is complete (unbuffered).
    pub fn access_log(&self) -> PathBuf {
        self.work.path().join("access.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
