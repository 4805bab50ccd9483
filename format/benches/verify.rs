//! Streaming verification of a 4 MiB image beside plain SHA-256 over the same bytes (the
//! ratio is the verifier's overhead), manifest verification, and the verifier's memory.
//!
//! `cargo bench -p ota-format --bench verify -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use ota_format::*;
use sha2::{Digest, Sha256};
use std::hint::black_box;

const PAYLOAD_LEN: usize = 4 * 1024 * 1024;
/// A typical download buffer on the device.
const CHUNK: usize = 4096;

fn key() -> SigningKey {
    // TEST ONLY key, as in tests/vectors.
    SigningKey::from_bytes(&Sha256::digest(b"ota-sign test vectors: TEST ONLY key A").into())
}

fn fixture() -> (Vec<u8>, [u8; MANIFEST_LEN], [TrustedKey; 1]) {
    let key = key();
    let pk = key.verifying_key().to_bytes();
    let payload: Vec<u8> = (0..PAYLOAD_LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let digest: [u8; 32] = Sha256::digest(&payload).into();
    let info = ImageInfo {
        device_type: DeviceType::new("thermostat").unwrap(),
        chip: ChipId::ESP32C3,
        version: Version::new(1, 2, 3),
        security_counter: 2,
        created: 1_767_225_600,
        image_size: PAYLOAD_LEN as u32,
        payload_size: PAYLOAD_LEN as u32,
        compression: Compression::None,
        payload_sha256: digest,
        image_sha256: digest,
        key_id: KeyId::of(&pk),
        flags: 0,
    };
    let header = info.sign(&key).unwrap();
    let mut file = header.to_vec();
    file.extend_from_slice(&payload);
    let manifest = Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel: Channel::new("stable").unwrap(),
        version: info.version,
        security_counter: 2,
        sequence: 7,
        created: 1_767_225_600,
        not_after: None,
        rollout: FULL_ROLLOUT,
        image_file_size: file.len() as u32,
        image_size: info.image_size,
        image_header_sha256: Sha256::digest(header).into(),
        min_running_version: None,
        allow_downgrade: false,
        image_name: ImageName::new("thermostat-1.2.3.ota").unwrap(),
        key_id: KeyId::of(&pk),
    }
    .sign(&key)
    .unwrap();
    (file, manifest, [TrustedKey::new(pk)])
}

fn bench(c: &mut Criterion) {
    let (file, manifest, trusted) = fixture();
    let keys = TrustedKeys::new(&trusted);
    let payload = &file[IMAGE_HEADER_LEN..];

    // Printed so the number lands in the bench log; recorded in docs/BENCHMARKS.md.
    println!(
        "size_of::<ImageVerifier>() = {} bytes, size_of::<VerifiedManifest>() = {} bytes",
        core::mem::size_of::<ImageVerifier<'static, 'static>>(),
        core::mem::size_of::<VerifiedManifest>()
    );

    let mut g = c.benchmark_group("4MiB");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("sha256", CHUNK), |b| {
        b.iter(|| {
            let mut h = Sha256::new();
            for chunk in payload.chunks(CHUNK) {
                h.update(black_box(chunk));
            }
            black_box(h.finalize())
        })
    });
    g.bench_function(BenchmarkId::new("stream_verify", CHUNK), |b| {
        b.iter(|| {
            let mut v = ImageVerifier::new(keys, Expectations::default());
            for chunk in file.chunks(CHUNK) {
                black_box(v.feed(black_box(chunk)).unwrap());
            }
            black_box(v.finish().unwrap())
        })
    });
    g.finish();

    c.bench_function("manifest_verify", |b| {
        b.iter(|| Manifest::verify(black_box(&manifest), &keys).unwrap())
    });
    let header = &file[..IMAGE_HEADER_LEN];
    c.bench_function("image_header_verify", |b| {
        b.iter(|| {
            let mut v = ImageVerifier::new(keys, Expectations::default());
            v.feed(black_box(header)).unwrap();
            black_box(v.header().is_some())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
