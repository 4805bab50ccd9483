//! `s3s-fs`: an S3 server over a directory, run with an access and a secret key so every
//! request's SigV4 signature is checked, as on AWS.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util;

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "ota-test-access";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "ota-test-secret-0123456789";
/// Region the clients sign for.
pub const REGION: &str = "us-east-1";

/// A running s3s-fs. Stops when dropped (or by [`S3sFs::kill`]).
pub struct S3sFs {
    /// `http://127.0.0.1:PORT`, the endpoint for path-style requests.
    pub endpoint: String,
    /// The directory holding the buckets (one subdirectory each).
    pub root: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

impl S3sFs {
    /// Starts s3s-fs with the given buckets already created. `None` only when the binary
    /// is missing and `OTA_SKIP_SERVER_TESTS=1`.
    pub fn start(buckets: &[&str]) -> Option<S3sFs> {
        util::require_binary("s3s-fs", &util::cargo_bin_dir())?;
        let root = tempfile::tempdir().expect("temp dir");
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).expect("create bucket dir");
        }
        let port = util::free_port();
        let mut s = S3sFs {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            child: None,
            port,
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let bin = util::require_binary("s3s-fs", &util::cargo_bin_dir()).expect("s3s-fs");
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        assert!(
            util::wait_for_port(self.port, Duration::from_secs(20)),
            "s3s-fs did not start on port {}",
            self.port
        );
    }

    /// Kills the server process (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Path of an object's file in the server's directory.
    pub fn object_path(&self, bucket: &str, key: &str) -> std::path::PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// Whether an object exists (read from the directory, not through S3).
    pub fn has_object(&self, bucket: &str, key: &str) -> bool {
        self.object_path(bucket, key).is_file()
    }

    /// A presigned GET URL for `bucket/key`, valid for five minutes: how a test stands in
    /// for a public bucket or a CDN in front of a private one (anonymous requests are
    /// refused, since signature checking is on).
    pub fn presigned_get(&self, bucket: &str, key: &str) -> String {
        use object_store::signer::{Method, Signer};
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(REGION)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .build()
            .expect("S3 client for presigning");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(store.signed_url(
            Method::GET,
            &object_store::path::Path::from(key),
            Duration::from_secs(300),
        ))
        .expect("presign")
        .to_string()
    }

    /// The directory a bucket lives in.
    pub fn bucket_dir(&self, bucket: &str) -> std::path::PathBuf {
        self.root.path().join(bucket)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `dir` contains a file (recursively) named like `needle` — s3s-fs keeps
/// metadata beside objects, and tests look for leftovers.
pub fn dir_contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let p = e.path();
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(needle))
                || (p.is_dir() && dir_contains(&p, needle))
        })
    })
}
