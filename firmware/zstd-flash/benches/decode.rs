//! Decode throughput for 1 MiB of machine code (this bench's own executable), zstd 19
//! with a 2^23 window and 8 KiB blocks: the history in RAM vs on a simulated NOR flash
//! (a Vec behind `NorFlash`: 4-byte read granularity, 4 KiB sector erases). The input is a
//! slice of this executable, so its compressed size (printed) varies by build.
//!
//! `cargo bench -p ota-zstd --bench decode`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{MemFlash, Params, TestDecoder, code_data, compress};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ota_zstd::{DecoderConfig, NorFlashOutput, Region, SliceOutput};

const LEN: usize = 1 << 20;

fn decode(c: &mut Criterion) {
    let input = code_data(LEN, 1);
    let params = Params {
        long: true,
        ..Params::new(19, 23)
    };
    let compressed = compress(&input, params);
    println!(
        "input {LEN} B, compressed {} B ({:.1} %), decoder state {} B",
        compressed.len(),
        compressed.len() as f64 * 100.0 / LEN as f64,
        core::mem::size_of::<TestDecoder>()
    );
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    report_flash_reads(&mut decoder, &compressed);
    let mut group = c.benchmark_group("zstd_decode_1MiB_code");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(20);
    let mut buf = vec![0u8; LEN];
    group.bench_function("ram_history", |b| {
        b.iter(|| {
            decoder.reset();
            let mut out = SliceOutput::new(&mut buf);
            decoder.feed(&compressed, &mut out).unwrap();
            assert_eq!(decoder.finish(&mut out).unwrap(), LEN as u64);
        })
    });
    let empty = Region { offset: 0, len: 0 };
    let slot = Region {
        offset: 0,
        len: LEN as u32,
    };
    let mut flash = Some(MemFlash::new(LEN));
    group.bench_function("nor_flash_history", |b| {
        b.iter(|| {
            decoder.reset();
            let mut out = NorFlashOutput::new(flash.take().unwrap(), empty, slot);
            decoder.feed(&compressed, &mut out).unwrap();
            assert_eq!(decoder.finish(&mut out).unwrap(), LEN as u64);
            flash = Some(out.into_inner());
        })
    });
    group.finish();
    let flash = flash.unwrap();
    assert!(flash.bytes == input);
}

/// How often and how much one decode reads back from flash.
fn report_flash_reads(decoder: &mut TestDecoder, compressed: &[u8]) {
    let empty = Region { offset: 0, len: 0 };
    let slot = Region {
        offset: 0,
        len: LEN as u32,
    };
    let mut out = NorFlashOutput::new(MemFlash::new(LEN), empty, slot);
    decoder.reset();
    decoder.feed(compressed, &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    let flash = out.into_inner();
    println!(
        "one decode: {} flash reads of {} B in all",
        flash.reads, flash.read_bytes
    );
}

criterion_group!(benches, decode);
criterion_main!(benches);
