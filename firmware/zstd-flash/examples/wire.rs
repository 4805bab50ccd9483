//! Bytes on the wire (issue 13): the sizes `scripts/delta-pairs.sh` reports for "ours".
//!
//! - `wire delta BASE TARGET`: TARGET compressed with BASE as a raw prefix (libzstd's
//!   `ZSTD_CCtx_refPrefix`, what `zstd --patch-from` does), compressed blocks capped at
//!   8 KiB (`ZSTD_c_maxBlockSize`, what `Decoder<_, 8192>` takes), window log
//!   ceil(log2(base + target)), under several encoder settings;
//! - `wire full APP`: APP alone, with today's 2^12 window and with method 2's windows.
//!
//! Every result is decoded back by `ota-zstd` (`Decoder<4096, 8192>`, prefix in RAM) and
//! compared (all but the `reference` settings, whose blocks exceed the device's 8 KiB
//! buffer and which only show what that cap costs). Output lines are
//! `name<TAB>bytes<TAB>device|reference<TAB>compression time` for the script to pick up
//! (`full`: `name<TAB>bytes`).
//!
//! `cargo run -p ota-zstd --release --example wire -- delta OLD.bin NEW.bin`

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::time::Instant;

use common::{MAX_BLOCK, Rng, decode_chunked};
use zstd::zstd_safe::{CParameter, Strategy};

/// libzstd's own block limit (ZSTD_BLOCKSIZE_MAX).
const BLOCK_MAX_LIBZSTD: u32 = 128 * 1024;

/// One encoder setting: a name and the parameters on top of level, window and block cap.
struct Setting {
    name: &'static str,
    level: i32,
    extra: Vec<CParameter>,
    /// Compressed block cap: `MAX_BLOCK` for what the device decodes; larger only to
    /// measure what the cap costs.
    max_block: u32,
}

/// The settings tried for deltas. The first is the packager's candidate default.
fn delta_settings() -> Vec<Setting> {
    let btultra2 = |search_log, target_length| {
        vec![
            CParameter::Strategy(Strategy::ZSTD_btultra2),
            CParameter::SearchLog(search_log),
            CParameter::TargetLength(target_length),
        ]
    };
    vec![
        Setting {
            name: "l19",
            level: 19,
            extra: vec![],
            max_block: MAX_BLOCK,
        },
        Setting {
            name: "l19-ldm",
            level: 19,
            extra: vec![CParameter::EnableLongDistanceMatching(true)],
            max_block: MAX_BLOCK,
        },
        Setting {
            name: "l22",
            level: 22,
            extra: vec![],
            max_block: MAX_BLOCK,
        },
        Setting {
            name: "l22-ldm",
            level: 22,
            extra: vec![CParameter::EnableLongDistanceMatching(true)],
            max_block: MAX_BLOCK,
        },
        // A wider search than level 22 (searchLog 9, targetLength 999): more candidates per
        // position and longer matches accepted before the optimal parser stops looking.
        Setting {
            name: "l22-s12-tl4096",
            level: 22,
            extra: btultra2(12, 4096),
            max_block: MAX_BLOCK,
        },
        Setting {
            name: "l22-s16-tl131072",
            level: 22,
            extra: btultra2(16, 131_072),
            max_block: MAX_BLOCK,
        },
        // Code differs from its base in short stretches (relocated offsets): a shorter
        // minimum match lets the parser resume a copy after 3 changed bytes.
        Setting {
            name: "l22-s12-mm3",
            level: 22,
            extra: [btultra2(12, 4096), vec![CParameter::MinMatch(3)]].concat(),
            max_block: MAX_BLOCK,
        },
        // Not for `Decoder<_, 8192>`: what the 8 KiB cap costs against larger block
        // buffers and libzstd's 128 KiB blocks (as `zstd --patch-from` writes them).
        Setting {
            name: "l19-blocks16k",
            level: 19,
            extra: vec![],
            max_block: 16 * 1024,
        },
        Setting {
            name: "l19-blocks32k",
            level: 19,
            extra: vec![],
            max_block: 32 * 1024,
        },
        Setting {
            name: "l19-blocks128k",
            level: 19,
            extra: vec![],
            max_block: BLOCK_MAX_LIBZSTD,
        },
    ]
}

fn compress(data: &[u8], prefix: &[u8], window_log: u32, s: &Setting) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), s.level, prefix)
        .expect("encoder");
    // As the packager writes frames: content size on, no checksum (the signed header
    // carries the SHA-256 of the result).
    let base = [
        CParameter::WindowLog(window_log),
        CParameter::ChecksumFlag(false),
        CParameter::ContentSizeFlag(true),
        CParameter::MaxBlockSize(s.max_block),
    ];
    for parameter in base.into_iter().chain(s.extra.iter().copied()) {
        encoder.set_parameter(parameter).expect("parameter");
    }
    encoder
        .set_pledged_src_size(Some(data.len() as u64))
        .expect("pledged size");
    encoder.write_all(data).expect("compress");
    encoder.finish().expect("finish")
}

/// Decodes with the device decoder and checks the output; panics on any difference.
fn check(compressed: &[u8], prefix: &[u8], expected: &[u8], what: &str) {
    let decoded = decode_chunked(compressed, prefix, expected.len(), &mut Rng(1))
        .unwrap_or_else(|e| panic!("{what}: ota-zstd refused the frame: {e}"));
    assert!(decoded == expected, "{what}: ota-zstd output differs");
}

/// Whether the device decoder takes the frame and gives `expected`.
fn decodes(compressed: &[u8], prefix: &[u8], expected: &[u8]) -> bool {
    decode_chunked(compressed, prefix, expected.len(), &mut Rng(1)).is_ok_and(|d| d == expected)
}

/// `setting` with the largest block cap, from libzstd's 128 KiB down to the device's
/// 8 KiB, whose frame the device decoder takes, and that cap. The decoder's limit is the
/// *compressed* block (its buffer), while the cap bounds a block's output: a delta's
/// blocks are mostly long matches, so large blocks often compress below 8 KiB. A
/// packager can do the same: compress, check with the device decoder, fall back.
fn adaptive(target: &[u8], base: &[u8], window_log: u32, setting: &Setting) -> (Vec<u8>, u32) {
    for cap in [BLOCK_MAX_LIBZSTD, 64 * 1024, 32 * 1024, 16 * 1024] {
        let trial = Setting {
            extra: setting.extra.clone(),
            max_block: cap,
            ..*setting
        };
        let out = compress(target, base, window_log, &trial);
        if decodes(&out, base, target) {
            return (out, cap);
        }
    }
    (compress(target, base, window_log, setting), MAX_BLOCK)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["delta", base, target] => delta(&read(base), &read(target)),
        ["full", app] => full(&read(app)),
        _ => {
            eprintln!("usage: wire delta BASE TARGET | wire full APP");
            std::process::exit(2);
        }
    }
}

fn delta(base: &[u8], target: &[u8]) {
    let total = (base.len() + target.len()) as u64;
    let window_log = total.next_power_of_two().trailing_zeros().max(10);
    println!("# window_log\t{window_log}");
    for setting in delta_settings() {
        let started = Instant::now();
        let out = compress(target, base, window_log, &setting);
        let ms = started.elapsed().as_millis();
        let kind = if setting.max_block <= MAX_BLOCK {
            check(&out, base, target, setting.name);
            "device"
        } else if decodes(&out, base, target) {
            // Larger blocks whose compressed size still happens to fit the buffer.
            "reference, decodable"
        } else {
            "reference"
        };
        println!("{}\t{}\t{kind}\t{ms} ms", setting.name, out.len());
    }
    // The two candidate defaults with the largest block cap the device decoder takes.
    for setting in delta_settings()
        .into_iter()
        .filter(|s| matches!(s.name, "l19" | "l22-s12-tl4096"))
    {
        let started = Instant::now();
        let (out, cap) = adaptive(target, base, window_log, &setting);
        let ms = started.elapsed().as_millis();
        check(&out, base, target, setting.name);
        println!(
            "{}-adaptive\t{}\tdevice\t{ms} ms\tblocks <= {} KiB",
            setting.name,
            out.len(),
            cap / 1024
        );
    }
}

fn full(app: &[u8]) {
    let l19 = |name, max_block| Setting {
        name,
        level: 19,
        extra: vec![],
        max_block,
    };
    // Today's default: window 2^12, libzstd's 128 KiB block limit (ruzstd decodes it).
    let cases = [
        (l19("w12", BLOCK_MAX_LIBZSTD), 12),
        (l19("w23-b8k", MAX_BLOCK), 23),
        (l19("w25-b8k", MAX_BLOCK), 25),
        (l19("w23-b128k", BLOCK_MAX_LIBZSTD), 23),
    ];
    for (setting, window_log) in cases {
        let out = compress(app, &[], window_log, &setting);
        if setting.max_block <= MAX_BLOCK {
            check(&out, &[], app, setting.name);
        }
        println!("{}\t{}", setting.name, out.len());
    }
}
