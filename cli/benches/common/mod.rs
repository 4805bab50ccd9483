//! What both benches need before timing anything: a signing key made by the binary.

use std::path::Path;
use std::process::Command;

/// The ota-sign binary the benches time.
pub const BIN: &str = env!("CARGO_BIN_EXE_ota-sign");

/// Runs `ota-sign keygen --no-encrypt bench` in `dir` and returns the public key, which
/// the bench firmware must trust: `package` and `release` check images as a device
/// would, and a device refuses firmware that trusts no key.
pub fn bench_key(dir: &Path) -> [u8; 32] {
    run_ok(
        Command::new(BIN)
            .current_dir(dir)
            .args(["keygen", "--no-encrypt", "bench"]),
    );
    let hex_key =
        run_ok(
            Command::new(BIN)
                .current_dir(dir)
                .args(["pubkey", "bench.pub", "--format", "hex"]),
        );
    let mut pk = [0u8; 32];
    hex::decode_to_slice(String::from_utf8(hex_key).unwrap().trim(), &mut pk).unwrap();
    pk
}

/// Runs `cmd`, panics with the command and its stderr unless it succeeds, and returns
/// its stdout: a bench must not time a setup that silently failed.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
