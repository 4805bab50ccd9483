//! The static host the fleet polls: nginx when it is installed, else the static host of
//! ota-test-servers. Both serve one directory, the publish destination.

pub mod nginx;

use std::path::{Path, PathBuf};

pub use ota_test_servers::static_host::{HostStats, StaticHost};

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// nginx if installed, else the built-in server.
    Auto,
    /// nginx or fail.
    Nginx,
    /// The built-in server.
    Builtin,
}

/// A running host.
pub enum Host {
    /// Debian's nginx.
    Nginx(nginx::Nginx),
    /// The built-in server, and the access log it writes (nginx `combined` format).
    Builtin(StaticHost, PathBuf),
}

impl Host {
    /// Serves `root`.
    pub fn start(kind: HostKind, root: &Path, connections: usize) -> Result<Host, String> {
        let want_nginx = match kind {
            HostKind::Auto => nginx::find().is_some(),
            HostKind::Nginx => true,
            HostKind::Builtin => false,
        };
        if want_nginx {
            nginx::serve(root, connections).map(Host::Nginx)
        } else {
            // Beside the served directory, so a publish never uploads it.
            let log = root.with_extension("access.log");
            StaticHost::serve_dir_logged(root, &log)
                .map(|host| Host::Builtin(host, log))
                .map_err(|e| format!("built-in server: {e}"))
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        match self {
            Host::Nginx(n) => n.url.clone(),
            Host::Builtin(b, _) => b.base.clone(),
        }
    }

    /// What it has answered so far.
    pub fn stats(&self) -> HostStats {
        match self {
            Host::Nginx(n) => nginx::stats(n),
            Host::Builtin(b, _) => b.stats(),
        }
    }

    /// Its access log in nginx's `combined` format (for `ota-sign fleet status`).
    pub fn access_log(&self) -> PathBuf {
        match self {
            Host::Nginx(n) => n.combined_log(),
            Host::Builtin(_, log) => log.clone(),
        }
    }

    /// For people: which server this is.
    pub fn name(&self) -> &'static str {
        match self {
            Host::Nginx(_) => "nginx",
            Host::Builtin(..) => "built-in static server",
        }
    }
}
