//! Every test vector of ota-format (format/tests/vectors/vectors.json), run through the C
//! API by a C program (tests/c/vectors.c) linked with this crate's static library, twice:
//! compiled with gcc's AddressSanitizer and UndefinedBehaviorSanitizer, which instrument
//! the C side (every buffer it hands over is an exact-size heap block, every object the
//! size the header states); and plain under valgrind, which also sees every access the
//! uninstrumented Rust library makes to that memory.

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

/// The static library cargo built for this test run. Cargo copies it to
/// `target/<profile>/` only when the library is a root of the build (`cargo build`, or
/// `cargo test --workspace`); under `cargo test -p ota-format-c` it stays in `deps/` with
/// a hash in its name, so the newest one there is the one just built.
fn static_library() -> PathBuf {
    let deps = profile_dir().join("deps");
    let newest_in_deps = std::fs::read_dir(&deps)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libota_format_c-") && name.ends_with(".a")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path);
    let uplifted = profile_dir().join("libota_format_c.a");
    match newest_in_deps {
        Some(path) => path,
        None if uplifted.is_file() => uplifted,
        None => panic!(
            "libota_format_c.a was built neither in {} nor in {}",
            deps.display(),
            profile_dir().display()
        ),
    }
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

/// Compiles tests/c/vectors.c into `dir`, with ASan and UBSan when `sanitize`.
fn compile(dir: &Path, sanitize: bool) -> PathBuf {
    let cc = compiler();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = static_library();
    let exe = dir.join(if sanitize { "vectors-asan" } else { "vectors" });
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]);
    if sanitize {
        cmd.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]);
    }
    let out = cmd
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
    exe
}

/// Writes the trusted descriptor and the plan into `dir`; returns their paths, the
/// vectors and what each must print.
fn prepare(dir: &Path) -> (PathBuf, PathBuf, Vec<Value>, Vec<String>) {
    let vectors = vectors_dir();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors.join("vectors.json")).expect("read vectors.json"),
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
    let descriptor = dir.join("trusted.bin");
    std::fs::write(
        &descriptor,
        ota_format::TrustedKeyDescriptor::new(&trusted).to_bytes(),
    )
    .expect("write the trusted descriptor");
    // The C API does not verify deltas nor apply their difference streams yet (README,
    // "Guarantees and limits"): every other kind runs through it.
    let entries: Vec<Value> = index["vectors"]
        .as_array()
        .expect("vectors list")
        .iter()
        .filter(|e| e["kind"] != "delta" && e["kind"] != "diff")
        .cloned()
        .collect();
    let (lines, expected): (Vec<String>, Vec<String>) =
        entries.iter().map(|e| plan_line(e, &vectors)).unzip();
    let plan = dir.join("plan.tsv");
    std::fs::write(&plan, lines.join("\n") + "\n").expect("write the plan");
    (descriptor, plan, entries, expected)
}

/// Runs the vector program (under `wrapper`, if any) and checks every result.
fn run_and_check(sanitize: bool, wrapper: &[&str]) {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let exe = compile(scratch.path(), sanitize);
    let (descriptor, plan, entries, expected) = prepare(scratch.path());
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let run = cmd
        .arg(&descriptor)
        .arg(&plan)
        // Leak checking needs ptrace-free process control, which some CI sandboxes lack;
        // the program frees everything anyway and ASan still checks every access.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd_name(wrapper, &exe)));
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

fn cmd_name(wrapper: &[&str], exe: &Path) -> String {
    format!("{} {}", wrapper.join(" "), exe.display())
}

#[test]
fn c_program_gives_every_vector_its_labelled_result_under_asan() {
    run_and_check(true, &[]);
}

/// ASan sees only the C side; valgrind also checks every access the (uninstrumented)
/// Rust library makes to the exact-size buffers and objects C hands it.
#[test]
fn c_program_gives_every_vector_its_labelled_result_under_valgrind() {
    let found = Command::new("valgrind").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test runs the C vector program under valgrind: install it with \
         scripts/install-test-deps.sh (apt-get install valgrind)"
    );
    run_and_check(false, &["valgrind", "-q", "--error-exitcode=99"]);
}
