//! `ota-sign release` and `ota-sign publish` of 3 device types x 1 MiB images to a local
//! s3s-fs (signature checking on), timed as whole processes, as a release pipeline runs
//! them. A counting proxy in front of s3s-fs gives the requests and bytes of one first
//! publish and one publish with nothing to do; they do not vary between runs, so they
//! are printed once.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ota_test_servers::proxy::Proxy;
use ota_test_servers::s3::{self, S3sFs};
use ota_testkit::{Chip, TestFirmware};

mod common;
use common::{BIN, bench_key, run_ok};

const DEVICE_TYPES: [&str; 3] = ["lamp", "plug", "hub"];
const SIZE: usize = 1 << 20;

fn run(dir: &Path, args: &[&str]) {
    run_ok(
        Command::new(BIN)
            .current_dir(dir)
            .env("SOURCE_DATE_EPOCH", "1764000000")
            .env("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY)
            .env("AWS_REGION", s3::REGION)
            .env_remove("OTA_SIGN_KEY")
            .env_remove("OTA_SIGN_CONFIG")
            .args(args)
            .arg("-q"),
    );
}

/// keygen and three uncompressed 1 MiB images, one per device type.
fn setup(dir: &Path) -> Vec<String> {
    let pk = bench_key(dir);
    let mut images = Vec::new();
    for (i, dt) in DEVICE_TYPES.iter().enumerate() {
        let app = TestFirmware::new(Chip::Esp32c3)
            .version("1.0.0")
            .project_name(dt)
            .trusted_keys(&[pk])
            .payload_size(SIZE)
            .seed(i as u64 + 1)
            .app_image();
        std::fs::write(dir.join(format!("{dt}.bin")), app).unwrap();
        let out = format!("{dt}.ota");
        run(
            dir,
            &[
                "package",
                "--key",
                "bench.key",
                "--device-type",
                dt,
                "--app-image",
                &format!("{dt}.bin"),
                "--no-compress",
                "-o",
                &out,
            ],
        );
        images.push(out);
    }
    images
}

fn release_args<'a>(tree: &'a str, images: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "release",
        "--key",
        "bench.key",
        "--repo",
        tree,
        "--channel",
        "stable",
    ];
    args.extend(images.iter().map(String::as_str));
    args
}

fn publish(dir: &Path, to: &str, endpoint: &str) {
    run(
        dir,
        &[
            "publish",
            "--repo",
            "tree",
            "--to",
            to,
            "--s3-endpoint",
            endpoint,
        ],
    );
}

fn bench(c: &mut Criterion) {
    let server = S3sFs::start(&["bench", "runs"]).expect("s3s-fs (scripts/install-test-deps.sh)");
    let proxy = Proxy::start(&server.endpoint);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let images = setup(dir);
    let image_bytes: u64 = images
        .iter()
        .map(|i| std::fs::metadata(dir.join(i)).unwrap().len())
        .sum();

    // Counts of one first publish and one with nothing to do, through the proxy.
    run(dir, &release_args("tree", &images));
    proxy.reset();
    publish(dir, "s3://bench/counted", &proxy.url);
    let (first_up, first_down) = proxy.bytes();
    let first = proxy.requests();
    proxy.reset();
    publish(dir, "s3://bench/counted", &proxy.url);
    let (noop_up, noop_down) = proxy.bytes();
    let noop = proxy.requests();
    let methods = |r: &[ota_test_servers::proxy::Seen]| {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for s in r {
            *counts.entry(s.method.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(m, n)| format!("{n} {m}"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!(
        "images: {} x {} bytes ({image_bytes} bytes in all)",
        images.len(),
        image_bytes / images.len() as u64
    );
    println!(
        "first publish: {} requests ({}), {first_up} bytes up, {first_down} bytes down",
        first.len(),
        methods(&first)
    );
    println!(
        "no-op publish: {} requests ({}), {noop_up} bytes up, {noop_down} bytes down",
        noop.len(),
        methods(&noop)
    );

    let mut g = c.benchmark_group("publish");
    g.sample_size(10);
    g.bench_function("release 3 x 1 MiB into a new tree", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(dir.join("fresh"));
            },
            |()| run(dir, &release_args("fresh", &images)),
            BatchSize::PerIteration,
        )
    });
    let n = AtomicU32::new(0);
    g.bench_function("first publish to s3s-fs", |b| {
        b.iter(|| {
            // Its own bucket: s3s-fs lists by walking the bucket's directory, so the
            // objects of these runs must not slow down the other measurements.
            let prefix = format!("s3://runs/{}", n.fetch_add(1, Ordering::Relaxed));
            publish(dir, &prefix, &server.endpoint);
        })
    });
    g.bench_function("publish with nothing to do", |b| {
        b.iter(|| publish(dir, "s3://bench/counted", &server.endpoint))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
