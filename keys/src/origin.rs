//! Where a key came from, so every message can name it.

use std::fmt;
use std::path::{Path, PathBuf};

/// The source of a key's text: a file, an environment variable, or memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A key file.
    File(PathBuf),
    /// PEM text taken from an environment variable (CI secrets).
    Env(&'static str),
    /// Text handed over by the caller.
    Memory,
}

impl KeyOrigin {
    /// The file path, when the key came from a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            KeyOrigin::File(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(p) => write!(f, "{}", p.display()),
            KeyOrigin::Env(var) => write!(f, "${var}"),
            KeyOrigin::Memory => f.write_str("key"),
        }
    }
}
