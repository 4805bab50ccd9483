//! Compares libzstd settings for method-2 payloads (blocks capped at 8 KiB, a window
//! covering the image) on an app image, and checks each output with the device's
//! decoder: how `packaging::ZstdParams` was chosen.
//!
//! `cargo run --release -p ota-sign-lib --example zstd_params -- APP.bin [BASE.bin]`
//!
//! With BASE.bin, the sizes are those of a delta from BASE to APP.

use std::io::Write;
use std::time::Instant;

use ota_sign_lib::flash_window;
use ota_sign_lib::packaging::{MAX_BLOCK, covering_window_log};
use zstd::zstd_safe::{CParameter, ParamSwitch, Strategy};

fn main() {
    let mut args = std::env::args().skip(1);
    let app = std::fs::read(args.next().expect("usage: zstd_params APP.bin [BASE.bin]")).unwrap();
    let base = args
        .next()
        .map(|p| std::fs::read(p).unwrap())
        .unwrap_or_default();
    let window_log = covering_window_log(base.len() + app.len());
    let ultra = |level| {
        vec![
            CParameter::CompressionLevel(level),
            CParameter::Strategy(Strategy::ZSTD_btultra2),
            CParameter::ChainLog(u32::from(window_log) + 1),
            CParameter::HashLog(u32::from(window_log) + 1),
            CParameter::SearchLog(u32::from(window_log)),
            CParameter::MinMatch(3),
            CParameter::TargetLength(999),
        ]
    };
    let sets: Vec<(&str, Vec<CParameter>)> = vec![
        ("level 19", vec![CParameter::CompressionLevel(19)]),
        // For comparison only: what the 8 KiB cap costs (no device decodes this).
        (
            "level 19, blocks uncapped (128 KiB)",
            vec![
                CParameter::CompressionLevel(19),
                CParameter::MaxBlockSize(128 * 1024),
            ],
        ),
        ("level 22", vec![CParameter::CompressionLevel(22)]),
        (
            "19, no block splitter",
            vec![
                CParameter::CompressionLevel(19),
                CParameter::UseBlockSplitter(ParamSwitch::Disable),
            ],
        ),
        (
            "19, long distance matching",
            vec![
                CParameter::CompressionLevel(19),
                CParameter::EnableLongDistanceMatching(true),
            ],
        ),
        (
            "19, literals uncompressed",
            vec![
                CParameter::CompressionLevel(19),
                CParameter::LiteralCompressionMode(ParamSwitch::Disable),
            ],
        ),
        ("btultra2, full search, minmatch 3, target 999", ultra(19)),
        ("same, minmatch 4", {
            let mut v = ultra(19);
            v.push(CParameter::MinMatch(4));
            v
        }),
    ];
    println!(
        "input {} B{}, window 2^{window_log}, blocks <= {MAX_BLOCK} B",
        app.len(),
        if base.is_empty() {
            String::new()
        } else {
            format!(" against a {} B base", base.len())
        }
    );
    for (name, params) in sets {
        let start = Instant::now();
        let mut enc = if base.is_empty() {
            zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap()
        } else {
            zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, &base).unwrap()
        };
        let uncapped = params
            .iter()
            .any(|p| matches!(p, CParameter::MaxBlockSize(_)));
        for p in [CParameter::MaxBlockSize(MAX_BLOCK)]
            .into_iter()
            .chain(params)
            .chain([
                CParameter::WindowLog(u32::from(window_log)),
                CParameter::ContentSizeFlag(true),
                CParameter::ChecksumFlag(false),
            ])
        {
            enc.set_parameter(p).unwrap();
        }
        enc.set_pledged_src_size(Some(app.len() as u64)).unwrap();
        enc.write_all(&app).unwrap();
        let out = enc.finish().unwrap();
        let took = start.elapsed();
        let decoded = flash_window::decode(&out, &base, window_log, app.len() as u32);
        if !uncapped {
            assert_eq!(
                decoded.as_deref().ok(),
                Some(&app[..]),
                "{name}: the device decoder disagrees"
            );
        }
        println!(
            "{name:48} {:>8} B  {:>6.2}%  {:>6.2} s",
            out.len(),
            out.len() as f64 * 100.0 / app.len() as f64,
            took.as_secs_f64()
        );
    }
}
