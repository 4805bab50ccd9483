//! Running `ota-sign` as a user would: the real binary, its real flags, its output shown
//! (indented) when it fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command that failed, with what it printed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}):\n{output}")]
pub struct ToolError {
    /// The command line.
    pub command: String,
    /// Its exit status.
    pub status: String,
    /// stdout and stderr.
    pub output: String,
}

/// Where `ota-sign` is: `$OTA_SIGN_BIN`, else next to this binary (cargo puts the
/// workspace's binaries together), else on `PATH`.
pub fn ota_sign_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OTA_SIGN_BIN") {
        return Some(PathBuf::from(p));
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("ota-sign")))
        .filter(|p| p.is_file());
    sibling.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join("ota-sign"))
            .find(|p| p.is_file())
    })
}

/// The `ota-sign` binary.
#[derive(Clone, Debug)]
pub struct OtaSign {
    bin: PathBuf,
    /// Printed before each command when set.
    pub echo: bool,
}

impl OtaSign {
    /// Uses the binary at `bin`.
    pub fn new(bin: PathBuf) -> Self {
        OtaSign { bin, echo: true }
    }

    /// Runs `ota-sign ARGS` in `dir` and returns its stdout.
    pub fn run<I, S>(&self, dir: &Path, args: I) -> Result<String, ToolError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let line = format!(
            "ota-sign {}",
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        if self.echo {
            println!("  $ {line}");
        }
        let out = Command::new(&self.bin)
            .args(&args)
            .current_dir(dir)
            // The demo's keys are throwaway and unencrypted: never prompt.
            .env_remove("OTA_SIGN_KEY")
            .output()
            .map_err(|e| ToolError {
                command: line.clone(),
                status: "not started".into(),
                output: format!("{}: {e}", self.bin.display()),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(ToolError {
                command: line,
                status: out.status.to_string(),
                output: indent(&format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))),
            });
        }
        Ok(stdout)
    }

    /// `ota-sign release` of `image` into `dir/repo` (at `rollout` percent when given), then
    /// `ota-sign publish` of the repository to the web root `dir/www`.
    pub fn release_and_publish(
        &self,
        dir: &Path,
        key: &str,
        channel: &str,
        image: &str,
        rollout: Option<u8>,
    ) -> Result<(), ToolError> {
        let rollout = rollout.map(|r| r.to_string());
        let mut args = vec![
            "release",
            "--key",
            key,
            "--repo",
            "repo",
            "--channel",
            channel,
        ];
        if let Some(r) = &rollout {
            args.extend(["--rollout", r]);
        }
        args.push(image);
        self.run(dir, args)?;
        self.run(dir, ["publish", "--repo", "repo", "--to", "www"])?;
        Ok(())
    }
}

/// Indents every line by four spaces.
pub fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}
