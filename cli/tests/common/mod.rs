//! Runs the real `ota-sign` binary in a scratch directory with a clean environment.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_ota-sign");

/// Exit codes from cli/src/exit.rs, restated: they are a promise to scripts.
pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 2;
pub const INVALID: i32 = 3;
pub const IO: i32 = 4;
pub const KEY: i32 = 5;
pub const POLICY: i32 = 6;
pub const CONFLICT: i32 = 7;

/// A scratch directory to run commands in.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env("OTA_SIGN_TEST_SCRYPT_LOG_N", "10")
            .env("SOURCE_DATE_EPOCH", "1764000000");
        for var in [
            "OTA_SIGN_KEY",
            "OTA_SIGN_PASSPHRASE",
            "OTA_SIGN_CONFIG",
            "OTA_SIGN_CHANNEL",
            "OTA_SIGN_DEVICE_TYPE",
        ] {
            c.env_remove(var);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ota-sign {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, asserts the exit code, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "ota-sign {args:?}: {stderr}");
        stderr
    }

    /// Creates `NAME.key`/`NAME.pub` and returns the raw public key.
    pub fn keygen(&self, name: &str) -> [u8; 32] {
        self.ok(&["keygen", "--no-encrypt", name]);
        let hex_text = self.ok(&["pubkey", &format!("{name}.pub"), "--format", "hex"]);
        let bytes = hex::decode(hex_text.trim()).unwrap();
        bytes.try_into().unwrap()
    }
}

/// Asserts that `path` does not exist.
pub fn assert_absent(path: &Path) {
    assert!(!path.exists(), "{} must not exist", path.display());
}
