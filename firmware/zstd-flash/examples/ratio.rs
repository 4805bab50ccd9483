//! Compressed size of a file at zstd 19 for the windows and block sizes that matter to
//! the device: the 4 KiB window of today's decoder (ruzstd, window in RAM) against the
//! large windows this decoder reads from flash, with the block sizes its buffer takes.
//! Each result is decoded back by `ota-zstd` (RAM history) and compared.
//!
//! `cargo run -p ota-zstd --release --example ratio -- FILE...`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Params, Rng, compress};
use ota_zstd::{Decoder, DecoderConfig, SliceOutput};

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    assert!(!files.is_empty(), "usage: ratio FILE...");
    let cases: [(&str, u32, bool, u32); 8] = [
        ("window 2^12 (today's default)", 12, false, 128 * 1024),
        ("window 2^14", 14, false, 128 * 1024),
        ("window 2^23", 23, false, 128 * 1024),
        ("window 2^23 --long", 23, true, 128 * 1024),
        ("window 2^23 --long, blocks 16 KiB", 23, true, 16 * 1024),
        ("window 2^23 --long, blocks 8 KiB", 23, true, 8 * 1024),
        ("window 2^23 --long, blocks 4 KiB", 23, true, 4 * 1024),
        ("window 2^23, blocks 8 KiB", 23, false, 8 * 1024),
    ];
    for file in files {
        let data = std::fs::read(&file).expect("read input");
        println!("{file}: {} B", data.len());
        for (name, window_log, long, max_block) in cases {
            let params = Params {
                long,
                max_block,
                ..Params::new(19, window_log)
            };
            let compressed = compress(&data, params);
            let mut buf = vec![0u8; data.len()];
            let mut out = SliceOutput::new(&mut buf);
            let mut decoder = Box::new(Decoder::<4096, 8192>::new(DecoderConfig::DEFAULT));
            let decodes =
                match common::feed_chunks(&mut decoder, &compressed, &mut out, &mut Rng(1))
                    .and_then(|()| decoder.finish(&mut out))
                {
                    Ok(_) => {
                        assert!(out.written() == data, "ota-zstd output differs");
                        "decoded by ota-zstd<4096, 8192>".to_string()
                    }
                    Err(error) => format!("ota-zstd<4096, 8192>: {error}"),
                };
            println!(
                "  {name:<36} {:>9} B  {:>5.1} %  ({decodes})",
                compressed.len(),
                compressed.len() as f64 * 100.0 / data.len() as f64
            );
        }
    }
}
