//! C firmware: the trusted-key descriptor `ota-sign pubkey --format c` prints, compiled
//! with Debian's RISC-V cross compiler (`riscv64-unknown-elf-gcc -march=rv32imc
//! -mabi=ilp32`) into an ELF laid out like an ESP32-C3 ESP-IDF app
//! (tests/c_firmware/esp32c3_app.ld), linked as ESP-IDF links it (components as
//! archives, `--gc-sections`), is found by `package` and listed by `inspect`.
//!
//! Needs `gcc-riscv64-unknown-elf` (scripts/install-test-deps.sh installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const CC: &str = "riscv64-unknown-elf-gcc";
const AR: &str = "riscv64-unknown-elf-ar";
const FLAGS: [&str; 7] = [
    "-march=rv32imc",
    "-mabi=ilp32",
    "-Os",
    "-ffreestanding",
    "-ffunction-sections",
    "-fdata-sections",
    "-Werror",
];

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_firmware")
}

/// `esp_app_desc_t` comes from the ESP-IDF stub headers of examples/esp-idf.
fn esp_idf_stubs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/esp-idf/stubs")
}

fn tool(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {what} ({e}): this test needs Debian's gcc-riscv64-unknown-elf \
             (apt-get install gcc-riscv64-unknown-elf, or scripts/install-test-deps.sh)"
        )
    });
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `trusted_keys.c` (in `s`) into an archive, as an ESP-IDF component library,
/// and links it with `main.c` into `out`. `link_flags` are what the component's
/// CMakeLists would add (e.g. `-u ota_trusted_keys`).
fn build_firmware(s: &Scratch, keys_c: &str, out: &str, link_flags: &[&str]) -> PathBuf {
    let dir = s.dir.path();
    tool(
        Command::new(CC)
            .args(FLAGS)
            .arg("-I")
            .arg(esp_idf_stubs())
            .args(["-c", "-o"])
            .arg(dir.join("main.o"))
            .arg(sources().join("main.c")),
        "riscv64-unknown-elf-gcc (main.c)",
    );
    tool(
        Command::new(CC)
            .args(FLAGS)
            .args(["-Wall", "-Wextra", "-c", "-o"])
            .arg(dir.join("trusted_keys.o"))
            .arg(dir.join(keys_c)),
        "riscv64-unknown-elf-gcc (the pubkey output)",
    );
    let lib = dir.join("libtrusted_keys.a");
    let _ = std::fs::remove_file(&lib);
    tool(
        Command::new(AR)
            .arg("rcs")
            .arg(&lib)
            .arg(dir.join("trusted_keys.o")),
        "riscv64-unknown-elf-ar",
    );
    link(s, &[dir.join("main.o"), lib], link_flags, out)
}

/// Links `inputs` (sources, objects, archives) with the ESP32-C3 app layout and
/// `--gc-sections` into `out`, keeping `esp_app_desc` as ESP-IDF does.
fn link(s: &Scratch, inputs: &[PathBuf], link_flags: &[&str], out: &str) -> PathBuf {
    let elf = s.path(out);
    tool(
        Command::new(CC)
            .args(FLAGS)
            .arg("-I")
            .arg(esp_idf_stubs())
            .args([
                "-nostdlib",
                "-Wl,--gc-sections",
                "-Wl,-u,esp_app_desc",
                "-T",
            ])
            .arg(sources().join("esp32c3_app.ld"))
            .args(link_flags)
            .args(inputs)
            .arg("-o")
            .arg(&elf),
        "riscv64-unknown-elf-gcc (link)",
    );
    elf
}

#[test]
fn c_descriptor_survives_esp_idf_style_linking_and_package_finds_both_keys() {
    let s = Scratch::new();
    s.keygen("release");
    s.keygen("next");
    let c = s.ok(&["pubkey", "release.pub", "next.pub", "--format", "c"]);
    s.write("trusted_keys.c", c.as_bytes());
    let ids: Vec<String> = ["release.pub", "next.pub"]
        .iter()
        .map(|k| {
            s.json(&["pubkey", k])["key_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    // As the ESP-IDF component links it: the descriptor's object comes from an archive,
    // pulled in by `-u ota_trusted_keys` (as ESP-IDF pulls esp_app_desc).
    let elf = build_firmware(&s, "trusted_keys.c", "fw.elf", &["-Wl,-u,ota_trusted_keys"]);
    let elf = elf.to_str().unwrap();

    let inspected = s.json(&["inspect", elf]);
    assert_eq!(inspected["chips"][0], "esp32c3", "{inspected}");
    assert_eq!(
        inspected["trusted_key_ids"],
        serde_json::json!(ids),
        "{inspected}"
    );

    let packaged = s.json(
        &[
            &PACKAGE_THERMOSTAT[..],
            &["--elf", elf, "--chip", "esp32c3", "-o", "fw.ota"],
        ]
        .concat(),
    );
    assert_eq!(packaged["version"], "1.4.0", "{packaged}");
    let verdict = s.json(&[
        "verify",
        "--pubkey",
        "release.pub",
        "--device-type",
        "thermostat",
        "fw.ota",
    ]);
    assert_eq!(verdict["valid"], true, "{verdict}");

    // The app image inside the signed file carries the descriptor with both keys.
    let app = s.extract("release.pub", "fw.ota", "fw.bin");
    let found = ota_format::TrustedKeyDescriptor::find_in(&app)
        .unwrap()
        .expect("the extracted app image has a descriptor");
    let found_ids: Vec<String> = found.keys().iter().map(|k| k.id().to_string()).collect();
    assert_eq!(found_ids, ids);
}

#[test]
fn c_descriptor_survives_gc_sections_by_its_own_attributes() {
    // Linked as an object (no archive, no `-u`, no reference): only `used` and `retain`
    // keep the section through --gc-sections.
    let s = Scratch::new();
    s.keygen("release");
    let c = s.ok(&["pubkey", "release.pub", "--format", "c"]);
    s.write("trusted_keys.c", c.as_bytes());
    let elf = link(
        &s,
        &[sources().join("main.c"), s.path("trusted_keys.c")],
        &[],
        "fw.elf",
    );
    let elf = elf.to_str().unwrap();
    let inspected = s.json(&["inspect", elf]);
    assert_eq!(
        inspected["trusted_key_ids"].as_array().map(Vec::len),
        Some(1),
        "{inspected}"
    );
    s.ok(&[
        &PACKAGE_THERMOSTAT[..],
        &["--elf", elf, "--chip", "esp32c3", "-o", "fw.ota"],
    ]
    .concat());
}

#[test]
fn a_plain_key_array_is_dropped_by_the_linker_and_package_refuses_the_firmware() {
    // The control: what `--format c` printed before (a bare `static const` array) does
    // not survive --gc-sections, and `package` says the firmware trusts no key.
    let s = Scratch::new();
    let pk = s.keygen("release");
    let cells: Vec<String> = ota_format::TrustedKeyDescriptor::new(&[pk])
        .to_bytes()
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    s.write(
        "plain_keys.c",
        format!(
            "#include <stdint.h>\nconst uint8_t ota_trusted_keys[276] = {{{}}};\n",
            cells.join(", ")
        )
        .as_bytes(),
    );
    let elf = build_firmware(&s, "plain_keys.c", "fw.elf", &[]);
    let elf = elf.to_str().unwrap();
    assert_eq!(
        s.json(&["inspect", elf])["trusted_key_ids"],
        serde_json::Value::Null
    );
    let stderr = s.fails(
        &[
            &PACKAGE_THERMOSTAT[..],
            &["--elf", elf, "--chip", "esp32c3", "-o", "fw.ota"],
        ]
        .concat(),
        POLICY,
    );
    assert!(stderr.contains("descriptor"), "{stderr}");
}
