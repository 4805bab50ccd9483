//! Helpers of the end-to-end tests: the real binaries (`ota-sign`, `ota-device-sim`),
//! built once per test run and run as a user would, and what they print.
//!
//! The binaries belong to other packages, so `CARGO_BIN_EXE_*` cannot name them: the first
//! test to need them runs `cargo build -p ota-sign -p ota-device-sim -p ota-demo` in the
//! same profile and target directory as the tests themselves (cargo has released its build
//! lock by the time tests run). `OTA_SIGN_BIN`, `OTA_DEVICE_SIM_BIN` and `OTA_DEMO_BIN`
//! together override the paths.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ota_test_servers::nginx::Nginx;

pub mod firmware;

/// Paths of the binaries under test.
#[derive(Debug)]
pub struct Bins {
    /// `ota-sign`.
    pub ota_sign: PathBuf,
    /// `ota-device-sim`.
    pub sim: PathBuf,
    /// `ota-demo` (the README's first command).
    pub demo: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory this test binary was built into (`target/<profile>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The binaries, built on first use.
///
/// # Panics
/// When cargo fails to build them.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let sign = std::env::var_os("OTA_SIGN_BIN").map(PathBuf::from);
        let sim = std::env::var_os("OTA_DEVICE_SIM_BIN").map(PathBuf::from);
        let demo = std::env::var_os("OTA_DEMO_BIN").map(PathBuf::from);
        if let (Some(ota_sign), Some(sim), Some(demo)) = (sign.clone(), sim.clone(), demo.clone()) {
            return Bins {
                ota_sign,
                sim,
                demo,
            };
        }
        let dir = profile_dir();
        let target_dir = dir.parent().expect("target dir").to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .args(["-p", "ota-sign", "-p", "ota-device-sim", "-p", "ota-demo"])
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir);
        if release {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build");
        assert!(
            out.status.success(),
            "building ota-sign and ota-device-sim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Bins {
            ota_sign: sign.unwrap_or_else(|| dir.join("ota-sign")),
            sim: sim.unwrap_or_else(|| dir.join("ota-device-sim")),
            demo: demo.unwrap_or_else(|| dir.join("ota-demo")),
        }
    })
}

/// A scratch directory and the commands run in it.
pub struct Work {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Default for Work {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Work {
    /// A fresh scratch directory.
    pub fn new() -> Self {
        Work {
            dir: tempfile::Builder::new()
                .prefix("ota-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A path inside.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates `www`, where the tests publish to, and serves it over nginx ([`Nginx::serve`]
    /// says when that is `None`).
    pub fn serve_www(&self) -> Option<Nginx> {
        std::fs::create_dir_all(self.path("www")).expect("create www");
        Nginx::serve(&self.path("www"))
    }

    /// `ota-sign ARGS` with extra environment variables, whatever its exit code.
    pub fn sign_env(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = Command::new(&bins().ota_sign);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("OTA_SIGN_KEY")
            .env_remove("OTA_SIGN_PASSPHRASE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run ota-sign").into()
    }

    /// `ota-sign ARGS`, which must succeed; returns stdout.
    ///
    /// # Panics
    /// When it fails.
    pub fn sign(&self, args: &[&str]) -> String {
        let r = self.sign_env(args, &[]);
        assert_eq!(
            r.code,
            Some(0),
            "ota-sign {} failed:\n{}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// `ota-sign package` of the ESP32-C3 app image `app` for `device_type`, signed with
    /// `key`, into `out`, with `extra` flags; must succeed.
    pub fn package(&self, key: &str, device_type: &str, app: &str, out: &str, extra: &[&str]) {
        let head = ["package", "--key", key, "--device-type", device_type];
        let input = ["--chip", "esp32c3", "--app-image", app, "-o", out];
        self.sign(&[&head[..], &input, extra].concat());
    }

    /// `ota-sign release` into the stable channel of `repo` (see [`release_args`]); must
    /// succeed.
    pub fn release(&self, key: &str, repo: &str, rest: &[&str]) -> String {
        self.sign(&release_args(key, repo, rest))
    }

    /// `ota-sign publish --repo REPO --to DEST`, then `rest`, with extra environment
    /// variables; must succeed. Returns stdout.
    ///
    /// # Panics
    /// When it fails.
    pub fn publish(&self, repo: &str, to: &str, rest: &[&str], env: &[(&str, &str)]) -> String {
        let args = [&["publish", "--repo", repo, "--to", to][..], rest].concat();
        let r = self.sign_env(&args, env);
        assert_eq!(
            r.code,
            Some(0),
            "publish to {to} failed:\n{}{}",
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// `ota-sign flash` of the signed `image` (checked against `pubkey`) into a 1 MB flash
    /// image file `out`; must succeed.
    pub fn flash_image(&self, image: &str, pubkey: &str, out: &str) {
        let check = ["--image", image, "--pubkey", pubkey];
        self.sign(
            &[
                &["flash"][..],
                &check,
                &["--flash-size", "1MB", "--output", out],
            ]
            .concat(),
        );
    }

    /// `ota-sign keygen --no-encrypt NAME`; returns the public key.
    pub fn keygen(&self, name: &str) -> [u8; 32] {
        self.sign(&["keygen", "--no-encrypt", name]);
        let hex = self.sign(&["pubkey", "--format", "hex", &format!("{name}.pub")]);
        parse_hex32(hex.trim())
    }

    /// `ota-device-sim ARGS`, which must succeed; returns stdout.
    ///
    /// # Panics
    /// When it fails.
    pub fn sim(&self, args: &[&str]) -> String {
        let out = Command::new(&bins().sim)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run ota-device-sim");
        let r = Ran::from(out);
        assert_eq!(
            r.code,
            Some(0),
            "ota-device-sim {} failed:\n{}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// `ota-device-sim status --flash FLASH` as JSON.
    pub fn flash_status(&self, flash: &str) -> serde_json::Value {
        serde_json::from_str(&self.sim(&["status", "--flash", flash])).expect("status JSON")
    }

    /// Boots the device in `flash` and lets it do `checks` checks (reboots included);
    /// returns what it printed, one event per line. The device type is the one the
    /// manifest's name carries. A run whose every check failed (exit 4) is returned too:
    /// the tests of refused releases read its lines.
    ///
    /// # Panics
    /// When the simulator fails otherwise.
    pub fn run_device(&self, flash: &str, manifest_url: &str, checks: u32) -> Vec<String> {
        self.run_device_with(flash, manifest_url, checks, &[])
    }

    /// [`Work::run_device`] with extra simulator flags (e.g. `--agent-generation 1`).
    ///
    /// # Panics
    /// When the simulator fails otherwise.
    pub fn run_device_with(
        &self,
        flash: &str,
        manifest_url: &str,
        checks: u32,
        extra: &[&str],
    ) -> Vec<String> {
        let out = Command::new(&bins().sim)
            .args(["run", "--flash", flash, "--manifest-url", manifest_url])
            .args(["--device-type", device_type_of(manifest_url)])
            .args(["--device-id", "e2e-device-1", "--interval", "0.05"])
            .args(["--max-checks", &checks.to_string()])
            .args(extra)
            .current_dir(self.dir.path())
            .output()
            .expect("run ota-device-sim");
        let r = Ran::from(out);
        assert!(
            matches!(r.code, Some(0 | 4)),
            "ota-device-sim run failed ({:?}):\n{}{}",
            r.code,
            r.stdout,
            r.stderr
        );
        r.stdout.lines().map(str::to_owned).collect()
    }
}

/// `release --key KEY --repo REPO --channel stable`, then `rest` (flags and images).
pub fn release_args<'a>(key: &'a str, repo: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let head = [
        "release",
        "--key",
        key,
        "--repo",
        repo,
        "--channel",
        "stable",
    ];
    [&head[..], rest].concat()
}

/// The device type a manifest URL names: `.../<device-type>.<channel>.manifest`.
///
/// # Panics
/// When the URL does not end in such a name.
pub fn device_type_of(manifest_url: &str) -> &str {
    let name = manifest_url.rsplit('/').next().unwrap_or(manifest_url);
    name.split('.')
        .next()
        .filter(|_| name.ends_with(".manifest"))
        .unwrap_or_else(|| panic!("{manifest_url} does not name a manifest"))
}

/// 64 hex digits as 32 bytes.
///
/// # Panics
/// On anything else.
pub fn parse_hex32(hex: &str) -> [u8; 32] {
    assert_eq!(hex.len(), 64, "{hex:?}");
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// A device simulator running in the background with its status endpoint.
pub struct LiveDevice {
    child: Child,
    /// `http://127.0.0.1:PORT/ota/status`
    pub status_url: String,
}

impl LiveDevice {
    /// Starts `ota-device-sim run` with a status endpoint on a free port.
    pub fn start(work: &Work, flash: &str, manifest_url: &str, interval: &str) -> LiveDevice {
        use std::io::BufRead;
        let mut child = Command::new(&bins().sim)
            .args(["run", "--flash", flash, "--manifest-url", manifest_url])
            .args(["--device-type", device_type_of(manifest_url)])
            .args(["--device-id", "e2e-live", "--interval", interval])
            .args(["--status-addr", "127.0.0.1:0"])
            .current_dir(work.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ota-device-sim");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        let status_url = line
            .strip_prefix("status-url ")
            .unwrap_or_else(|| panic!("expected status-url, got {line:?}"))
            .trim()
            .to_owned();
        // Keep reading stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        LiveDevice { child, status_url }
    }

    /// `GET /ota/status`.
    pub fn status(&self) -> Option<serde_json::Value> {
        let r = ota_test_servers::http::get(&self.status_url, &[]).ok()?;
        serde_json::from_slice(&r.body).ok()
    }

    /// Polls the status until `pred` holds; returns the last status.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            if let Some(s) = self.status() {
                if pred(&s) {
                    return s;
                }
                last = Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("device status never matched; last: {last:#?}");
    }
}

impl Drop for LiveDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
