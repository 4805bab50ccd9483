//! examples/esp-idf cannot be built here (no ESP-IDF). What can be checked is checked:
//! its C compiles (`-fsyntax-only`, every warning an error) against the generated
//! header and small stub headers standing in for ESP-IDF's (examples/esp-idf/stubs,
//! declarations only), and its trusted-key descriptor is the one `pubkey --format c`
//! makes for the insecure test key it says it trusts.

use std::path::Path;
use std::process::Command;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/esp-idf")
}

#[test]
fn example_c_compiles_against_the_header_and_esp_idf_stubs() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let dir = example();
    let out = Command::new(&cc)
        .args(["-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(dir.join("stubs"))
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(dir.join("main/main.c"))
        .arg(dir.join("main/trusted_keys.c"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cc} ({e}): install gcc (scripts/install-test-deps.sh)")
        });
    assert!(
        out.status.success(),
        "examples/esp-idf does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn example_trusts_exactly_the_insecure_test_key_it_names() {
    let source = std::fs::read_to_string(example().join("main/trusted_keys.c")).unwrap();
    assert!(
        source.contains("INSECURE TEST KEY"),
        "the warning must stay"
    );
    let bytes: Vec<u8> = source
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|t| t.strip_prefix("0x"))
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let desc = ota_format::TrustedKeyDescriptor::parse(&bytes).unwrap();
    let keys: Vec<String> = desc
        .keys()
        .iter()
        .map(|k| hex::encode(k.public_key))
        .collect();
    // firmware/esp32c3/README.md, "The test key: insecure on purpose".
    assert_eq!(
        keys,
        ["6ff1e05de7d0807220aa4e83963a0f42f8e10ad78363ee00cfcd3f1d8d04c0db"]
    );
}
