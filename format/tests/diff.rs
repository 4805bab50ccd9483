//! The difference stream of delta encoding 3: round trips through [`DiffPatcher`] in
//! pieces of every awkward size, the address-pair rule on moved code, and every refusal.

use ota_format::diff::{
    DiffCorruption, DiffError, DiffPatcher, OutOfRange, Record, SliceSource, control_offset,
    encode_stream,
};

/// Deterministic bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn le(word: u32) -> [u8; 4] {
    word.to_le_bytes()
}

/// RV32IMC-like code: compressed instructions, plain 4-byte ones, and address pairs
/// (`auipc ra` + `jalr ra`, `lui a5` + `addi a5`, `auipc a4` + `sw`) whose 32-bit value is
/// `value(i)`.
fn code(pairs: usize, value: impl Fn(usize) -> u32) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..pairs {
        let v = value(i);
        let lo = v & 0xFFF;
        let hi = v.wrapping_sub(((lo << 20) as i32 >> 20) as u32) & 0xFFFF_F000;
        match i % 3 {
            0 => {
                out.extend(le(hi | (1 << 7) | 0x17)); // auipc ra
                out.extend(le((lo << 20) | (1 << 15) | (1 << 7) | 0x67)); // jalr ra, lo(ra)
            }
            1 => {
                out.extend(le(hi | (15 << 7) | 0x37)); // lui a5
                out.extend(le((lo << 20) | (15 << 15) | (15 << 7) | 0x13)); // addi a5, a5, lo
            }
            _ => {
                out.extend(le(hi | (14 << 7) | 0x17)); // auipc a4
                let s = ((lo >> 5) << 25) | (10 << 20) | (14 << 15) | (2 << 12) | ((lo & 31) << 7);
                out.extend(le(s | 0x23)); // sw a0, lo(a4)
            }
        }
        out.extend([0x01, 0x00]); // c.nop
        out.extend(le(0x0015_0513)); // addi a0, a0, 1 (not part of a pair)
    }
    out
}

fn apply(
    stream: &[u8],
    base: &[u8],
    image_size: u32,
    piece: usize,
) -> Result<Vec<u8>, DiffError<OutOfRange>> {
    let mut patcher = DiffPatcher::new(image_size, base.len() as u32, stream.len() as u32)?;
    let mut source = SliceSource {
        stream,
        base,
        control_offset: control_offset(image_size),
    };
    let mut out = vec![0u8; image_size as usize];
    for chunk in out.chunks_mut(piece.max(1)) {
        patcher.fill(&mut source, chunk)?;
    }
    patcher.finish()?;
    Ok(out)
}

fn record(add_len: u32, copy_len: u32, seek: i32) -> Record {
    Record {
        add_len,
        copy_len,
        seek,
    }
}

#[test]
fn moved_code_round_trips_in_pieces_of_every_size_and_its_pairs_diff_alike() {
    let base = code(300, |i| 0x4200_0000 + 40 * i as u32);
    // Code inserted after pair 100 moves everything after it by 0x1234 bytes, and pairs
    // that reach across the move change their value by the same amount.
    let split = 100 * 14;
    let inserted = noise(0x1234, 5);
    let moved = code(300, |i| 0x4200_0000 + 40 * i as u32 + 0x1234);
    let mut target = base[..split].to_vec();
    target.extend(&inserted);
    target.extend(&moved[split..]);
    let records = [
        record(split as u32, inserted.len() as u32, 0),
        record((base.len() - split) as u32, 0, 0),
    ];
    let stream = encode_stream(&base, &target, &records).unwrap();
    let size = target.len() as u32;
    for piece in [1, 2, 3, 7, 8, 255, 256, 257, 4096, target.len()] {
        assert_eq!(
            apply(&stream, &base, size, piece).unwrap(),
            target,
            "piece {piece}"
        );
    }
    // Every moved pair of one kind (every third) has the same 8 diff bytes: that is what
    // compresses.
    let at = split + inserted.len();
    let diffs: Vec<&[u8]> = (0..60)
        .map(|k| &stream[at + k * 42..at + k * 42 + 8])
        .collect();
    assert!(diffs.iter().all(|d| d == &diffs[0]), "{diffs:02x?}");
    assert_ne!(diffs[0], &[0; 8], "the move is in the diff");
    // The plain instructions between the pairs did not change.
    assert_eq!(&stream[at + 8..at + 14], &[0; 6]);
}

#[test]
fn any_bytes_round_trip_including_data_that_looks_like_pairs() {
    for seed in 1..40u64 {
        let mut base = noise(3_000, seed);
        // Pair-shaped words at odd places, so walks meet them at every alignment.
        for k in 0..40 {
            let at = (k * 71 + seed as usize) % 2_990;
            base[at..at + 4].copy_from_slice(&le(0x0000_0097 | (k as u32) << 12));
            base[at + 4..at + 8].copy_from_slice(&le(0x0000_80e7));
        }
        let target = noise(2_500, seed + 100);
        let records = [
            record(1_000, 10, 333),
            record(7, 0, -500),
            record(1_200, 283, 1),
        ];
        let stream = encode_stream(&base, &target, &records).unwrap();
        for piece in [1, 5, 256, 4096] {
            assert_eq!(
                apply(&stream, &base, 2_500, piece).unwrap(),
                target,
                "seed {seed}"
            );
        }
    }
}

/// A one-record stream: `records` encoded after `image_size` diff bytes of zero.
fn stream_of(image_size: u32, records: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; control_offset(image_size) as usize];
    s.extend_from_slice(records);
    s
}

fn refusal(stream: &[u8], base_len: usize, image_size: u32) -> DiffCorruption {
    match apply(stream, &vec![0u8; base_len], image_size, 64) {
        Err(DiffError::Corrupt(c)) => c,
        other => panic!("expected a corruption, got {other:?}"),
    }
}

#[test]
fn every_malformed_stream_is_refused_with_its_reason() {
    // 100 bytes of image need 4096 bytes before the control records.
    assert!(matches!(
        DiffPatcher::new(100, 10, 4095),
        Err(DiffCorruption::StreamTooShort)
    ));
    assert_eq!(
        refusal(&stream_of(100, &[]), 10, 100),
        DiffCorruption::ControlEnds
    );
    assert_eq!(
        refusal(&stream_of(100, &[10, 0]), 10, 100),
        DiffCorruption::BadRecord
    );
    assert_eq!(
        refusal(
            &stream_of(100, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0]),
            10,
            100
        ),
        DiffCorruption::BadRecord,
        "six-byte LEB128"
    );
    assert_eq!(
        refusal(
            &stream_of(100, &[0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0, 0]),
            10,
            100
        ),
        DiffCorruption::BadRecord,
        "beyond 32 bits"
    );
    assert_eq!(
        refusal(&stream_of(100, &[11, 89, 0]), 10, 100),
        DiffCorruption::BeyondBase
    );
    assert_eq!(
        refusal(&stream_of(100, &[10, 91, 0]), 10, 100),
        DiffCorruption::BeyondImage
    );
    // Seek to -1, then to one past the end; the last record's seek counts too.
    assert_eq!(
        refusal(&stream_of(100, &[5, 0, 11, 5, 90, 0]), 10, 100),
        DiffCorruption::SeekOutsideBase
    );
    assert_eq!(
        refusal(&stream_of(100, &[10, 90, 2]), 10, 100),
        DiffCorruption::SeekOutsideBase
    );
    assert_eq!(
        refusal(&stream_of(100, &[10, 90, 0, 0, 0, 0]), 10, 100),
        DiffCorruption::TrailingControl
    );
    // Well-formed, for contrast: 10 bytes from the base, 90 copied, seek back to 0.
    assert!(apply(&stream_of(100, &[10, 90, 19]), &[7; 10], 100, 3).is_ok());
}

#[test]
fn records_that_do_not_fit_are_refused_by_the_encoder() {
    let (base, target) = (noise(100, 1), noise(100, 2));
    assert!(encode_stream(&base, &target, &[record(101, 0, 0)]).is_err());
    assert!(
        encode_stream(&base, &target, &[record(50, 40, 0)]).is_err(),
        "short"
    );
    assert!(encode_stream(&base, &target, &[record(50, 0, -51), record(50, 0, 0)]).is_err());
    assert!(encode_stream(&base, &target, &[record(50, 0, -50), record(50, 0, 0)]).is_ok());
}

#[test]
fn records_encode_as_leb128_with_a_zigzag_seek() {
    let mut out = [0u8; 15];
    let n = record(300, 0, -2).encode(&mut out);
    assert_eq!(&out[..n], &[0xAC, 0x02, 0x00, 0x03]);
    let n = record(u32::MAX, 1, i32::MIN).encode(&mut out);
    assert_eq!(
        &out[..n],
        &[
            0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F
        ]
    );
}

#[test]
fn bsdiff_patches_give_their_control_records_and_broken_ones_are_refused() {
    use ota_format::diff::{BsdiffPatchError, records_from_bsdiff};
    let int = |v: i64| {
        let raw = if v < 0 {
            (-v) as u64 | 1 << 63
        } else {
            v as u64
        };
        raw.to_le_bytes()
    };
    let entry = |add: i64, copy: i64, seek: i64| [int(add), int(copy), int(seek)].concat();
    let mut patch = entry(3, 2, -4);
    patch.extend([9; 5]); // 3 difference bytes, 2 copied bytes: skipped
    patch.extend(entry(1, 0, 0));
    patch.push(0);
    assert_eq!(
        records_from_bsdiff(&patch).unwrap(),
        [record(3, 2, -4), record(1, 0, 0)]
    );
    assert_eq!(
        records_from_bsdiff(&patch[..patch.len() - 1]),
        Err(BsdiffPatchError::Truncated(29))
    );
    assert_eq!(
        records_from_bsdiff(&patch[..20]),
        Err(BsdiffPatchError::Truncated(0))
    );
    assert_eq!(
        records_from_bsdiff(&entry(-1, 0, 0)),
        Err(BsdiffPatchError::OutOfRange(0))
    );
    assert_eq!(
        records_from_bsdiff(&entry(0, 0, 1 << 40)),
        Err(BsdiffPatchError::OutOfRange(0))
    );
}

#[test]
fn empty_records_cost_control_bytes_so_the_walk_ends_with_the_control_area() {
    // 5,000 records of nothing: each is read (3 bytes), none makes progress, and the
    // area's end stops them: the loop is bounded by the control bytes.
    let records = [0u8, 0, 0].repeat(5_000);
    assert_eq!(
        refusal(&stream_of(100, &records), 10, 100),
        DiffCorruption::ControlEnds
    );
    // Between real records they are allowed.
    let mut mixed = vec![0, 0, 0, 0, 0, 0];
    mixed.extend([10, 90, 19]);
    assert!(apply(&stream_of(100, &mixed), &[7; 10], 100, 9).is_ok());
}
