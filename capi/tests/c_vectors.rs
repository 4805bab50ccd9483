//! Every test vector of ota-format (format/tests/vectors/vectors.json), run through the C
//! API by a C program (tests/c/vectors.c) compiled with gcc under AddressSanitizer and
//! UndefinedBehaviorSanitizer and linked with this crate's static library.
//!
//! The sanitizers instrument the C side: the buffers it hands over are exact-size heap
//! blocks, and the objects it allocates are the sizes the header states. (The Rust side
//! is not instrumented; its unsafe code is confined to `src/ffi.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/tests/vectors")
}

/// `target/<profile>`: the test binary runs from `target/<profile>/deps`, and Cargo built
/// this crate's `libota_format_c.a` into `target/<profile>` before running it.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn text(v: &Value) -> &str {
    v.as_str().expect("a string in vectors.json")
}

fn or_dash(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One plan line for `vectors.c` (its header documents the format), and what it must print.
fn plan_line(entry: &Value, dir: &Path) -> (String, String) {
    let path = |f: &Value| dir.join(text(f)).display().to_string();
    let kind = text(&entry["kind"]);
    let mut fields = vec![kind.to_owned(), path(&entry["file"])];
    match kind {
        "image" => {
            fields.push(entry.get("manifest").map_or("-".into(), path));
            fields.push(or_dash(entry.get("expect_device_type")));
            fields.push(or_dash(entry.get("expect_chip")));
        }
        "manifest" => match entry.get("device") {
            None => fields.push("-".into()),
            Some(d) => {
                for key in [
                    "device_type",
                    "channel",
                    "chip",
                    "running_version",
                    "security_counter",
                    "last_sequence",
                    "now",
                    "device_id",
                    "slot_size",
                ] {
                    fields.push(or_dash(d.get(key)));
                }
            }
        },
        "descriptor" | "firmware" => {}
        other => panic!("vectors.json has a kind the C test does not know: {other}"),
    }
    let mut expect = text(&entry["expect"]).to_owned();
    if let Some(keys) = entry.get("keys") {
        let keys: Vec<&str> = keys
            .as_array()
            .expect("keys list")
            .iter()
            .map(text)
            .collect();
        expect = format!("{expect} {}", keys.join(","));
    }
    (fields.join("\t"), expect)
}

fn compiler() -> String {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let found = Command::new(&cc).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test compiles tests/c/vectors.c with `{cc}` (set CC to another gcc-compatible \
         compiler with AddressSanitizer); install it with scripts/install-test-deps.sh"
    );
    cc
}

#[test]
fn c_program_gives_every_vector_its_labelled_result_under_asan() {
    let cc = compiler();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = profile_dir().join("libota_format_c.a");
    assert!(lib.is_file(), "{} was not built", lib.display());
    let scratch_dir = tempfile::tempdir().expect("a temporary directory");
    let scratch = scratch_dir.path();
    let exe = scratch.join("vectors");
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/vectors.c"))
        .arg(&lib)
        // What a Rust staticlib with std needs on Linux (`rustc --print native-static-libs`).
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling tests/c/vectors.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = vectors_dir();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("vectors.json")).expect("read vectors.json"),
    )
    .expect("vectors.json parses");
    let trusted: Vec<[u8; 32]> = index["trusted_keys"]
        .as_array()
        .expect("trusted_keys")
        .iter()
        .map(|k| {
            hex::decode(text(k))
                .expect("hex key")
                .try_into()
                .expect("32 bytes")
        })
        .collect();
    let descriptor = scratch.join("trusted.bin");
    std::fs::write(
        &descriptor,
        ota_format::TrustedKeyDescriptor::new(&trusted).to_bytes(),
    )
    .expect("write the trusted descriptor");

    let entries = index["vectors"].as_array().expect("vectors list");
    let (lines, expected): (Vec<String>, Vec<String>) =
        entries.iter().map(|e| plan_line(e, &dir)).unzip();
    let plan = scratch.join("plan.tsv");
    std::fs::write(&plan, lines.join("\n") + "\n").expect("write the plan");

    let run = Command::new(&exe)
        .arg(&descriptor)
        .arg(&plan)
        // Leak checking needs ptrace-free process control, which some CI sandboxes lack;
        // the program frees everything anyway and ASan still checks every access.
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .output()
        .expect("run the C vector program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the C program failed ({}):\n{}\n{stdout}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), entries.len(), "one result per vector:\n{stdout}");
    let mut wrong = Vec::new();
    for ((entry, want), got) in entries.iter().zip(&expected).zip(&got) {
        if want != got {
            wrong.push(format!(
                "{} ({}): expected {want}, C API gave {got}",
                text(&entry["file"]),
                text(&entry["attack"])
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
