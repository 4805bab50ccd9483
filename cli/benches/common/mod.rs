//! What both benches need before timing anything: a signing key made by the binary.

use std::path::Path;
use std::process::Command;

/// The ota-sign binary the benches time.
pub const BIN: &str = env!("CARGO_BIN_EXE_ota-sign");

/// Runs `ota-sign keygen --no-encrypt bench` in `dir` and returns the public key, which
/// the bench firmware must trust: `package` and `release` check images as a device
/// would, and a device refuses firmware that trusts no key.
pub fn bench_key(dir: &Path) -> [u8; 32] {
    let keygen = Command::new(BIN)
        .current_dir(dir)
        .args(["keygen", "--no-encrypt", "bench"])
        .output()
        .expect("spawn ota-sign keygen");
    assert!(
        keygen.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["pubkey", "bench.pub", "--format", "hex"])
        .output()
        .expect("spawn ota-sign pubkey");
    let mut pk = [0u8; 32];
    hex::decode_to_slice(String::from_utf8(out.stdout).unwrap().trim(), &mut pk).unwrap();
    pk
}
