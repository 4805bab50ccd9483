//! The static host the fleet polls: nginx when it is installed, else the static host of
//! ota-test-servers. Both serve one directory, the publish destination.

pub mod nginx;

use std::path::Path;

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
    /// The built-in server.
    Builtin(StaticHost),
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
            StaticHost::serve_dir(root)
                .map(Host::Builtin)
                .map_err(|e| format!("built-in server: {e}"))
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        match self {
            Host::Nginx(n) => n.url.clone(),
            Host::Builtin(b) => b.base.clone(),
        }
    }

    /// What it has answered so far.
    pub fn stats(&self) -> HostStats {
        match self {
            Host::Nginx(n) => nginx::stats(n),
            Host::Builtin(b) => b.stats(),
        }
    }

    /// For people: which server this is.
    pub fn name(&self) -> &'static str {
        match self {
            Host::Nginx(_) => "nginx",
            Host::Builtin(_) => "built-in static server",
        }
    }
}
