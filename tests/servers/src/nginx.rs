//! Debian's nginx as an unprivileged-config instance: a generated config, a free loopback
//! port, logs and temp files in a private directory, serving one directory the way a
//! static host should (ETag and Range on, manifests `no-cache`, images immutable).
//! The demo's fleet benchmark runs on it too, hence the sized connection limit and the
//! access log that records the bytes of every answer.
//!
//! [`Nginx::serve_tls`] also serves the root over TLS (a throwaway self-signed P-256
//! certificate made with the `openssl` command) at [`Nginx::tls_url`], and
//! `/via-tls/<path>` on the plain port then redirects (302) to `<tls_url>/<path>`: the
//! shape of GitHub Releases, whose downloads end on an https host.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util;

/// A running nginx. Stops when dropped.
pub struct Nginx {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `https://127.0.0.1:PORT`, when started by [`Nginx::serve_tls`].
    pub tls_url: Option<String>,
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
        Nginx::launch(bin, root, connections, false)
    }

    /// Like [`Nginx::serve`], and over TLS too ([`Nginx::tls_url`]). A missing `openssl`
    /// command panics with the install command, like a missing nginx.
    pub fn serve_tls(root: &Path) -> Option<Nginx> {
        let bin = util::require_binary("nginx", &[PathBuf::from("/usr/sbin")])?;
        Some(Nginx::launch(&bin, root, 64, true).unwrap_or_else(|e| panic!("{e}")))
    }

    fn launch(bin: &Path, root: &Path, connections: usize, tls: bool) -> std::io::Result<Nginx> {
        let work = tempfile::Builder::new().prefix("ota-nginx").tempdir()?;
        let port = util::free_port();
        let tls_port = if tls {
            make_certificate(work.path())?;
            Some(util::free_port())
        } else {
            None
        };
        let tls = match tls_port {
            Some(tls_port) => format!(
                r#"
    server {{
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {w}/cert.pem;
        ssl_certificate_key {w}/key.pem;
        ssl_protocols TLSv1.3;
        root {root};
        location ~ \.manifest$ {{ gzip off; add_header Cache-Control "no-cache, no-transform" always; }}
        location ~ \.ota$ {{ gzip off; add_header Cache-Control "public, max-age=31536000, immutable, no-transform" always; }}
    }}"#,
                w = work.path().display(),
                root = root.display()
            ),
            None => String::new(),
        };
        let via_tls = match tls_port {
            Some(tls_port) => format!(
                "location ^~ /via-tls/ {{ rewrite ^/via-tls/(.*)$ https://127.0.0.1:{tls_port}/$1 redirect; }}"
            ),
            None => String::new(),
        };
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
    access_log {w}/combined.log combined;
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
        location ~ \.manifest$ {{ gzip off; add_header Cache-Control "no-cache, no-transform" always; }}
        location ~ \.ota$ {{ gzip off; add_header Cache-Control "public, max-age=31536000, immutable, no-transform" always; }}
        {via_tls}
    }}{tls}
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
        if let Some(tls_port) = tls_port
            && !util::wait_for_port(tls_port, Duration::from_secs(10))
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "nginx did not listen for TLS on port {tls_port}"
            )));
        }
        Ok(Nginx {
            url: format!("http://127.0.0.1:{port}"),
            tls_url: tls_port.map(|p| format!("https://127.0.0.1:{p}")),
            child,
            work,
        })
    }

    /// One line per answer, `STATUS BYTES_SENT REQUEST_LENGTH METHOD URI`, written when
    /// the answer is complete (unbuffered).
    pub fn access_log(&self) -> PathBuf {
        self.work.path().join("access.log")
    }

    /// The same answers in nginx's predefined `combined` format (what `ota-sign fleet
    /// status` reads).
    pub fn combined_log(&self) -> PathBuf {
        self.work.path().join("combined.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed P-256 certificate for 127.0.0.1 in `dir` (`cert.pem`, `key.pem`), made
/// with the `openssl` command.
pub fn make_certificate(dir: &Path) -> std::io::Result<()> {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot run openssl ({e}) for nginx's TLS certificate: apt-get install openssl"
            ))
        })?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "openssl could not make a certificate ({status})"
        )));
    }
    Ok(())
}
