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
pub const CREDENTIALS: i32 = 8;
pub const NOT_FOUND: i32 = 9;
pub const NETWORK: i32 = 10;

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
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_PROFILE",
            "GITHUB_TOKEN",
            "GITHUB_API_URL",
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

    /// `ota-sign extract --pubkey PUBKEY IMAGE -o OUT`, asserting success: returns the app
    /// image a device trusting PUBKEY would install (also left in OUT).
    pub fn extract(&self, pubkey: &str, image: &str, out: &str) -> Vec<u8> {
        self.ok(&["extract", "--pubkey", pubkey, image, "-o", out]);
        std::fs::read(self.path(out)).unwrap()
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

    /// Writes the app image `app` to `OUT.bin` and `ota-sign package`s it for
    /// `device_type`, signed with `release.key`, into `out`, with `extra` flags (`-q`);
    /// must succeed.
    pub fn package_app(&self, app: &[u8], device_type: &str, out: &str, extra: &[&str]) {
        let input = format!("{out}.bin");
        self.write(&input, app);
        let head = [
            "package",
            "--key",
            "release.key",
            "--device-type",
            device_type,
        ];
        let tail = ["--app-image", &input, "-q", "-o", out];
        self.ok(&[&head[..], &tail, extra].concat());
    }
}

/// Firmware to package: an ESP32-C3 app image from ota-testkit that trusts `keys`.
pub struct Build<'a> {
    pub device_type: &'a str,
    pub version: &'a str,
    pub security_counter: u64,
    /// Varies the bytes, so two builds of one version differ.
    pub seed: u64,
}

impl<'a> Build<'a> {
    pub fn new(device_type: &'a str, version: &'a str) -> Self {
        Build {
            device_type,
            version,
            security_counter: 0,
            seed: 1,
        }
    }

    pub fn counter(mut self, c: u64) -> Self {
        self.security_counter = c;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Scratch {
    /// Packages `build` with `ota-sign package --key KEY.key` (whose public key is `pk`)
    /// into `OUT` and returns its path.
    pub fn package(&self, key: &str, pk: [u8; 32], build: &Build<'_>, out: &str) -> PathBuf {
        let app = ota_testkit::TestFirmware::new(ota_testkit::Chip::Esp32c3)
            .version(build.version)
            .project_name(build.device_type)
            .trusted_keys(&[pk])
            .payload_size(24_000)
            .seed(build.seed)
            .app_image();
        let input = format!("{out}.bin");
        self.write(&input, &app);
        self.ok(&[
            "package",
            "--key",
            &format!("{key}.key"),
            "--device-type",
            build.device_type,
            "--app-image",
            &input,
            "--security-counter",
            &build.security_counter.to_string(),
            "--force",
            "-q",
            "-o",
            out,
        ]);
        self.path(out)
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(&[args, &["--json"]].concat());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs with extra environment variables, asserting the exit code; returns (stdout, stderr).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> (String, String) {
        let out = self.output_env(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "ota-sign {args:?}: {stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    }

    /// Runs with extra environment variables and returns the raw output.
    pub fn output_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Every file name in a directory, sorted.
    pub fn listing(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(dir))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A scratch directory with the key `release` made and each build packaged with it into
/// its file name; returns the key's public half too.
pub fn packaged(builds: &[(Build<'_>, &str)]) -> (Scratch, [u8; 32]) {
    let s = Scratch::new();
    let pk = s.keygen("release");
    for (build, out) in builds {
        s.package("release", pk, build, out);
    }
    (s, pk)
}

/// The start of a `package` command line signing with `release.key` for device type
/// `thermostat`; the input and output follow.
pub const PACKAGE_THERMOSTAT: [&str; 5] = [
    "package",
    "--key",
    "release.key",
    "--device-type",
    "thermostat",
];

/// Runs a tool other than ota-sign (openssl, a C compiler), which must be installed and
/// succeed; returns its stdout.
#[track_caller]
pub fn run_tool(command: &mut Command) -> Vec<u8> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed for this test: {e}"));
    assert!(
        out.status.success(),
        "{program} {:?}: {}",
        command.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts that `path` does not exist.
pub fn assert_absent(path: &Path) {
    assert!(!path.exists(), "{} must not exist", path.display());
}

/// The release tree the `release` and `publish` tests build, relative to the scratch dir.
pub const TREE: &str = "site";

/// `release --key release.key --repo TREE --channel stable`, then `rest`.
pub fn release_args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "release",
        "--key",
        "release.key",
        "--repo",
        TREE,
        "--channel",
        "stable",
    ];
    args.extend_from_slice(rest);
    args
}

/// A file of the release tree.
pub fn tree_file(s: &Scratch, name: &str) -> Vec<u8> {
    std::fs::read(s.path(TREE).join(name)).unwrap()
}

/// Waits, at most a minute, until `cond` holds.
pub fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The credentials and region s3s-fs accepts, as environment variables.
pub fn s3_env() -> [(&'static str, &'static str); 3] {
    use ota_test_servers::s3;
    [
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
        ("AWS_REGION", s3::REGION),
    ]
}

/// `publish --repo TREE --to TO --s3-endpoint ENDPOINT --json -q`.
pub fn s3_publish<'a>(to: &'a str, endpoint: &'a str) -> [&'a str; 9] {
    [
        "publish",
        "--repo",
        TREE,
        "--to",
        to,
        "--s3-endpoint",
        endpoint,
        "--json",
        "-q",
    ]
}
