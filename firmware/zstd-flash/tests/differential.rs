//! The decoder against libzstd: every level 1-19, windows 2^10-2^27, with and without
//! checksums and long-distance matching, on random, repetitive and machine-code data, fed
//! in random chunk sizes (1 B to 64 KiB); through an in-RAM history and a simulated NOR
//! flash. The default run covers each level and window once (seconds); the full cross
//! product is `--ignored`.

mod common;

use common::{
    Params, Rng, code_data, compress, compress_with_prefix, decode_chunked, decode_via_flash,
    random_data, reference_decompress, repetitive_data,
};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Random,
    Repetitive,
    Code,
}

fn data(kind: Kind, len: usize, seed: u64) -> Vec<u8> {
    match kind {
        Kind::Random => random_data(len, seed),
        Kind::Repetitive => repetitive_data(len, seed),
        Kind::Code => code_data(len, seed),
    }
}

/// Compresses with libzstd, checks libzstd reads it back, then checks this decoder gives
/// the same bytes in RAM and via flash.
fn check(kind: Kind, len: usize, params: Params, seed: u64) {
    let input = data(kind, len, seed);
    let compressed = compress(&input, params);
    assert_eq!(
        reference_decompress(&compressed, &[], len).as_deref(),
        Some(&input[..]),
        "libzstd round trip {params:?}"
    );
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9) | 1);
    let decoded = decode_chunked(&compressed, &[], len, &mut rng)
        .unwrap_or_else(|error| panic!("{kind:?} {len} B {params:?}: {error}"));
    assert!(
        decoded == input,
        "{kind:?} {len} B {params:?}: output differs"
    );
    let via_flash = decode_via_flash(&compressed, &[], len, &mut rng)
        .unwrap_or_else(|error| panic!("flash: {kind:?} {len} B {params:?}: {error}"));
    assert!(
        via_flash == input,
        "flash: {kind:?} {len} B {params:?}: output differs"
    );
}

/// Window log `10 + (i mod 18)`: walks 2^10..2^27.
fn window_for(index: usize) -> u32 {
    10 + (index % 18) as u32
}

#[test]
fn every_level_and_window_once() {
    for level in 1..=19 {
        for (index, kind) in [Kind::Random, Kind::Repetitive, Kind::Code]
            .into_iter()
            .enumerate()
        {
            let case = level as usize * 3 + index;
            let params = Params {
                checksum: case.is_multiple_of(2),
                long: case.is_multiple_of(3),
                streaming: case % 4 < 2,
                ..Params::new(level, window_for(case))
            };
            let len = match kind {
                Kind::Random => 20_000,
                Kind::Repetitive => 90_000,
                Kind::Code => 120_000,
            };
            check(kind, len, params, case as u64);
        }
    }
}

#[test]
fn every_window_log_at_level_19_on_code() {
    for window_log in 10..=27u32 {
        let params = Params {
            streaming: window_log.is_multiple_of(2),
            long: window_log >= 20,
            ..Params::new(19, window_log)
        };
        check(Kind::Code, 200_000, params, u64::from(window_log));
    }
}

#[test]
fn windows_far_beyond_the_ring_are_read_back() {
    // 600 KiB of code with a 2^20 window: most match sources are far older than the 4 KiB
    // ring, so they come back through the history.
    let params = Params {
        streaming: true,
        long: true,
        ..Params::new(19, 20)
    };
    check(Kind::Code, 600_000, params, 77);
}

#[test]
fn concatenated_and_skippable_frames() {
    let first = repetitive_data(30_000, 1);
    let second = code_data(40_000, 2);
    let mut compressed = compress(&first, Params::new(5, 16));
    compressed.extend_from_slice(&[0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    compressed.extend_from_slice(&compress(&second, Params::new(12, 17)));
    let expected = [first, second].concat();
    for seed in 1..20 {
        let decoded = decode_chunked(&compressed, &[], expected.len(), &mut Rng(seed)).unwrap();
        assert!(decoded == expected);
    }
}

#[test]
fn raw_prefix_like_patch_from() {
    // A "new image" that is the old one with edits: the frame copies most bytes from the
    // prefix (libzstd's ref_prefix, what `zstd --patch-from` uses).
    let base = code_data(300_000, 5);
    let mut target = base.clone();
    let mut rng = Rng(99);
    for _ in 0..200 {
        let at = rng.below(target.len() - 8);
        target[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
    }
    target.splice(1000..1000, random_data(3000, 4));
    for (level, window_log) in [(3, 20), (19, 20), (19, 23)] {
        let params = Params {
            long: true,
            ..Params::new(level, window_log)
        };
        let delta = compress_with_prefix(&target, params, &base);
        assert!(
            delta.len() < target.len() / 10,
            "delta of {} B",
            delta.len()
        );
        assert_eq!(
            reference_decompress(&delta, &base, target.len()).as_deref(),
            Some(&target[..])
        );
        let decoded = decode_chunked(&delta, &base, target.len(), &mut rng).unwrap();
        assert!(decoded == target, "RAM prefix, level {level}");
        let via_flash = decode_via_flash(&delta, &base, target.len(), &mut rng).unwrap();
        assert!(via_flash == target, "flash prefix, level {level}");
    }
}

#[test]
#[ignore = "full sweep, minutes: cargo test -p ota-zstd --release --test differential -- --ignored"]
fn full_sweep() {
    let mut case = 0u64;
    for level in 1..=19 {
        for window_log in 10..=27 {
            for kind in [Kind::Random, Kind::Repetitive, Kind::Code] {
                for (checksum, long) in [(true, false), (false, true)] {
                    case += 1;
                    let params = Params {
                        checksum,
                        long,
                        streaming: case.is_multiple_of(2),
                        ..Params::new(level, window_log)
                    };
                    check(kind, 256 * 1024, params, case);
                }
            }
        }
    }
}
