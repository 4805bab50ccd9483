//! `ota-sign package` on a 4 MiB ESP app image, beside MCUboot's `imgtool sign` on the same
//! bytes in the same run (when imgtool is installed: `pip install imgtool`). Both are
//! timed as whole processes, as a release pipeline runs them. The compressed sizes are
//! printed once, since they do not vary between runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ota_testkit::{Chip, TestFirmware};

mod common;
use common::{BIN, bench_key, run_ok};

const SIZE: usize = 4 * 1024 * 1024;

fn package(dir: &Path, out: &str, extra: &[&str]) {
    let _ = std::fs::remove_file(dir.join(out));
    run_ok(
        Command::new(BIN)
            .current_dir(dir)
            .env("SOURCE_DATE_EPOCH", "1764000000")
            .args([
                "package",
                "--key",
                "bench.key",
                "--device-type",
                "bench",
                "--app-image",
                "app.bin",
            ])
            .args(["-q", "-o", out])
            .args(extra),
    );
}

fn imgtool_available() -> bool {
    Command::new("imgtool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pk = bench_key(d);
    let app = TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .trusted_keys(&[pk])
        .payload_size(SIZE)
        .seed(11)
        .app_image();
    std::fs::write(d.join("app.bin"), &app).unwrap();

    let variants: [(&str, &[&str]); 3] = [
        ("stored", &["--no-compress"]),
        ("zstd-3", &["--zstd-level", "3"]),
        ("zstd-19", &[]),
    ];
    for (name, extra) in variants {
        let out = format!("{name}.ota");
        package(d, &out, extra);
        let size = std::fs::metadata(d.join(&out)).unwrap().len();
        println!(
            "size: {name}: {} -> {} bytes ({:.1}%)",
            app.len(),
            size,
            size as f64 * 100.0 / app.len() as f64
        );
    }

    let mut group = c.benchmark_group("package_4MiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, extra) in variants {
        group.bench_function(format!("ota-sign package ({name})"), |b| {
            b.iter(|| package(d, &format!("{name}.ota"), extra))
        });
    }
    if imgtool_available() {
        run_ok(
            Command::new("imgtool")
                .current_dir(d)
                .args(["keygen", "-k", "ed.pem", "-t", "ed25519"]),
        );
        group.bench_function("imgtool sign (ed25519, uncompressed)", |b| {
            b.iter(|| {
                run_ok(Command::new("imgtool").current_dir(d).args([
                    "sign",
                    "-k",
                    "ed.pem",
                    "--header-size",
                    "0x200",
                    "--pad-header",
                    "--align",
                    "4",
                    "--version",
                    "1.0.0",
                    "--slot-size",
                    "0x500000",
                    "app.bin",
                    "signed.bin",
                ]))
            })
        });
    } else {
        println!("imgtool not installed (pip install imgtool): comparison skipped");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
