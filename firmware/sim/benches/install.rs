//! The install pipeline, timed and weighed: a signed, zstd-compressed (window 2^12)
//! `.ota` file fed in 1 KiB network chunks through the streaming verifier, the zstd
//! decoder and the erase-ahead slot writer into the strict simulated flash, then
//! `finish` (payload digest, read-back hash of the whole slot, ESP app image
//! validation, key descriptor scan). Image sizes 1 MiB and 4 MiB.
//!
//! Before timing, one install per size runs under a counting allocator and prints the
//! RAM it took: the caller's buffers (the ota-zstd decoder and a receive chunk), the
//! installer itself, and the heap peak (zero: nothing on the update path allocates).
//!
//! `cargo bench -p ota-device-sim --bench install -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ota_agent::agent::DEFAULT_WINDOW_LOG;
use ota_agent::geometry::Region;
use ota_agent::install::{InstallBuffers, InstalledImage, Installer, Target};
use ota_agent::zstd::{DecoderConfig, FrameDecoder};
use ota_device_sim::SimFlash;
use ota_device_sim::device::Behaviour;
use ota_format::{ChipId, DeviceType, Manifest, TrustedKey, TrustedKeys};
use ota_testkit::Chip;

#[path = "../tests/support/mod.rs"]
mod support;

use support::{SIGNER, Spec, public, release_of};

#[path = "../../agent/tests/common/heap_peak.rs"]
mod heap_peak;

use heap_peak::{Counting, heap_peak_of};

#[global_allocator]
static GLOBAL: Counting = Counting;

const SLOT: Region = Region::new(0x1_0000, 0x48_0000);
const CHUNK: usize = 1024;

/// The agent's buffers ([`ota_agent::agent::UpdateMemory`] minus the manifest and URL,
/// which the install does not touch).
struct Buffers {
    decoder: Box<FrameDecoder>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            decoder: Box::new(FrameDecoder::new(DecoderConfig::DEFAULT)),
        }
    }

    fn bytes(&self) -> usize {
        size_of::<FrameDecoder>() + CHUNK
    }
}

struct Case {
    name: &'static str,
    app_len: usize,
    ota: Vec<u8>,
    manifest: Vec<u8>,
}

fn case(name: &'static str, image_size: usize) -> Case {
    // The filler is the payload; the descriptors and segment headers add about 2 KiB.
    let app = support::firmware_sized(
        "1.1.0",
        Behaviour::Normal,
        &[public(SIGNER)],
        Chip::Esp32c3,
        image_size - 2048,
    );
    let rel = release_of(
        &Spec {
            window_log: Some(DEFAULT_WINDOW_LOG),
            ..Spec::default()
        },
        app,
    );
    Case {
        name,
        app_len: rel.app.len(),
        ota: rel.ota,
        manifest: rel.manifest,
    }
}

fn install(case: &Case, flash: &mut SimFlash, buffers: &mut Buffers) -> (InstalledImage, usize) {
    let keys = [TrustedKey::new(public(SIGNER))];
    let manifest = Manifest::verify(&case.manifest, &TrustedKeys::new(&keys)).unwrap();
    let target = Target {
        slot: SLOT,
        device_type: DeviceType::new("sensor").unwrap(),
        chip: ChipId::ESP32C3,
        max_window_log: DEFAULT_WINDOW_LOG,
        generation: Default::default(),
    };
    let mut installer = Installer::<SimFlash>::new(
        TrustedKeys::new(&keys),
        &manifest,
        target,
        InstallBuffers {
            decoder: &mut buffers.decoder,
        },
    )
    .unwrap();
    let size = size_of_val(&installer);
    let mut chunk = [0u8; CHUNK];
    for piece in case.ota.chunks(CHUNK) {
        // As from the network: through the receive buffer.
        chunk[..piece.len()].copy_from_slice(piece);
        installer.feed(flash, &chunk[..piece.len()]).unwrap();
    }
    (installer.finish(flash).unwrap(), size)
}

fn ram(case: &Case) {
    let mut flash = SimFlash::new(SLOT.offset as usize + SLOT.size as usize);
    flash.reserve_log(case.app_len / 512 + 64);
    let mut buffers = Buffers::new();
    let ((installed, installer), heap) = heap_peak_of(|| install(case, &mut flash, &mut buffers));
    assert_eq!(installed.header().info.image_size as usize, case.app_len);
    let buffers = buffers.bytes();
    println!(
        "ram {}: image {} B, .ota {} B; buffers {buffers} + installer {installer} + heap peak {heap} = {} B",
        case.name,
        case.app_len,
        case.ota.len(),
        buffers + installer + heap
    );
}

fn bench_install(c: &mut Criterion) {
    let cases = [case("1MiB", 1 << 20), case("4MiB", 4 << 20)];
    for case in &cases {
        ram(case);
    }
    let mut group = c.benchmark_group("install_pipeline");
    group.sample_size(10);
    for case in &cases {
        let mut flash = SimFlash::new(SLOT.offset as usize + SLOT.size as usize);
        let mut buffers = Buffers::new();
        group.throughput(Throughput::Bytes(case.app_len as u64));
        group.bench_with_input(BenchmarkId::new("zstd12", case.name), case, |b, case| {
            b.iter(|| black_box(install(case, &mut flash, &mut buffers)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_install);
criterion_main!(benches);
