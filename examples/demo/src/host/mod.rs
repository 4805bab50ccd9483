//! The static host the fleet polls: nginx when it is installed, else the small built-in
//! server. Both serve one directory, the publish destination.

pub mod builtin;
pub mod nginx;

use std::path::Path;

/// What a host has answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests answered.
    pub requests: u64,
    /// Of those, `304 Not Modified`.
    pub not_modified: u64,
    /// Of those, `206 Partial Content`.
    pub partial: u64,
    /// Bytes sent, heads included.
    pub bytes_sent: u64,
    /// Bytes of the requests (request line and headers).
    pub bytes_received: u64,
}

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
    Builtin(builtin::BuiltinServer),
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
            builtin::BuiltinServer::serve(root)
                .map(Host::Builtin)
                .map_err(|e| format!("built-in server: {e}"))
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        match self {
            Host::Nginx(n) => n.url.clone(),
            Host::Builtin(b) => b.url(),
        }
    }

    /// What it has answered so far.
    pub fn stats(&self) -> HostStats {
        match self {
            Host::Nginx(n) => nginx::stats(n),
            Host::Builtin(b) => b.stats(),
        }
    }

    /// Its access log in nginx's `combined` format (for `ota-sign fleet status`).
    pub fn access_log(&self) -> std::path::PathBuf {
        match self {
            Host::Nginx(n) => n.combined_log(),
            Host::Builtin(b) => b.access_log().to_path_buf(),
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
