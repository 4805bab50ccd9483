//! Debian's nginx as an unprivileged-config instance: a generated config, a free loopback
//! port, logs and temp files in a private directory, serving one directory the way a
//! static host should (ETag and Range on, manifests `no-cache`, images immutable).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util;

/// A running nginx. Stops when dropped.
pub struct Nginx {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Child,
    _work: tempfile::TempDir,
}

impl Nginx {
    /// Serves `root` on a free loopback port. `None` only when nginx is missing and
    /// `OTA_SKIP_SERVER_TESTS=1`; a missing nginx otherwise panics with the install command.
    pub fn serve(root: &Path) -> Option<Nginx> {
        let bin = util::require_binary("nginx", &[PathBuf::from("/usr/sbin")])?;
        let work = tempfile::tempdir().expect("temp dir");
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
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {w}/access.log;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    etag on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \.manifest$ {{ add_header Cache-Control "no-cache" always; }}
        location ~ \.ota$ {{ add_header Cache-Control "public, max-age=31536000, immutable" always; }}
    }}
}}
"#,
            root = root.display()
        );
        let conf_path = work.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
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
            .spawn()
            .expect("start nginx");
        if !util::wait_for_port(port, Duration::from_secs(10)) {
            let log = std::fs::read_to_string(work.path().join("error.log")).unwrap_or_default();
            panic!("nginx did not start on port {port}:\n{log}");
        }
        Some(Nginx {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _work: work,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
