//! Bad input gives a typed error, never a panic and never output libzstd would not give.

mod common;

use common::{
    Params, Rng, TestDecoder, code_data, compress, compress_with_prefix, decode_chunked,
    reference_decompress, repetitive_data,
};
use ota_zstd::{Corruption, DecodeError, Decoder, DecoderConfig, SliceOutput};

fn decode(compressed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decode_chunked(compressed, &[], 1 << 20, &mut Rng(7))
}

/// A frame (no single segment, 1 KiB window, no checksum) holding one compressed block.
fn frame_with_block(block: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00];
    let header = 1 | (2 << 1) | ((block.len() as u32) << 3);
    frame.extend_from_slice(&header.to_le_bytes()[..3]);
    frame.extend_from_slice(block);
    frame
}

/// A block starting with a 3-byte literals section header, then `body`.
fn literals_block(header: u32, body: &[u8]) -> Vec<u8> {
    let mut block = header.to_le_bytes()[..3].to_vec();
    block.extend_from_slice(body);
    block
}

#[test]
fn the_decoder_state_is_small_and_fixed() {
    // The whole decoder: ring, block buffer, Huffman and FSE tables, header state.
    let default = core::mem::size_of::<Decoder>();
    let small = core::mem::size_of::<Decoder<4096, 4096>>();
    println!("Decoder<4096, 8192>: {default} B, Decoder<4096, 4096>: {small} B");
    assert!(default <= 22 * 1024, "{default} B");
    assert!(small <= 18 * 1024, "{small} B");
    assert_eq!(
        default - small,
        4096,
        "the block buffer is the only difference"
    );
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let input = repetitive_data(20_000, 3);
    // Params::new asks for the checksum: a cut-off checksum must be an error too.
    let compressed = compress(&input, Params::new(19, 14));
    for len in 0..compressed.len() {
        let result = decode(&compressed[..len]);
        assert!(
            result.is_err(),
            "{len} of {} bytes decoded",
            compressed.len()
        );
    }
    assert_eq!(decode(&compressed).unwrap(), input);
}

#[test]
fn every_single_byte_corruption_errs_or_matches_libzstd() {
    let input = code_data(12_000, 9);
    for checksum in [false, true] {
        let compressed = compress(
            &input,
            Params {
                checksum,
                ..Params::new(19, 15)
            },
        );
        let mut rng = Rng(5);
        for at in 0..compressed.len() {
            let mut damaged = compressed.clone();
            damaged[at] ^= 1 << rng.below(8);
            let ours = decode(&damaged);
            let reference = reference_decompress(&damaged, &[], 1 << 20);
            if let Ok(output) = ours {
                assert_eq!(
                    Some(&output),
                    reference.as_ref(),
                    "flip at {at}: libzstd disagrees"
                );
                assert!(
                    !checksum || output == input,
                    "checksum missed a flip at {at}"
                );
            }
        }
    }
}

#[test]
fn checksum_mismatch_is_reported() {
    let input = repetitive_data(5_000, 1);
    let mut compressed = compress(&input, Params::new(3, 16));
    let last = compressed.len() - 1;
    compressed[last] ^= 0x80;
    assert!(matches!(
        decode(&compressed),
        Err(DecodeError::ChecksumMismatch { .. })
    ));
}

#[test]
fn a_window_above_the_callers_maximum_is_refused() {
    let input = repetitive_data(70_000, 2);
    let compressed = compress(
        &input,
        Params {
            streaming: true,
            ..Params::new(3, 20)
        },
    );
    let mut buf = vec![0u8; 100_000];
    let mut out = SliceOutput::new(&mut buf);
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig {
        max_window: 1 << 16,
        prefix_len: 0,
        skippable_frames: true,
    }));
    assert_eq!(
        decoder.feed(&compressed, &mut out),
        Err(DecodeError::WindowTooLarge {
            window: 1 << 20,
            max: 1 << 16
        })
    );
    // The error sticks.
    assert!(decoder.feed(&[], &mut out).is_err());
    assert!(decoder.finish(&mut out).is_err());
}

#[test]
fn a_match_into_a_missing_prefix_is_refused() {
    let base = code_data(50_000, 1);
    let mut target = base.clone();
    target[100] ^= 0xFF;
    let delta = compress_with_prefix(&target, Params::new(19, 17), &base);
    assert!(matches!(
        decode(&delta),
        Err(DecodeError::OffsetBeyondHistory { .. })
    ));
    let shorter = &base[..40_000];
    let result = decode_chunked(&delta, shorter, 1 << 20, &mut Rng(3));
    assert!(result.is_err(), "a shorter prefix cannot give the target");
}

#[test]
fn blocks_beyond_the_block_buffer_are_refused() {
    let input = code_data(300_000, 4);
    let compressed = compress(
        &input,
        Params {
            max_block: 128 * 1024,
            ..Params::new(19, 20)
        },
    );
    assert!(matches!(
        decode(&compressed),
        Err(DecodeError::BlockBufferTooSmall { capacity: 8192, .. })
    ));
}

#[test]
fn frame_header_faults() {
    assert_eq!(
        decode(&[1, 2, 3, 4]),
        Err(DecodeError::BadMagic(0x0403_0201))
    );
    assert_eq!(decode(&[]), Err(DecodeError::Truncated));
    // Only a skippable frame: no content.
    assert_eq!(
        decode(&[0x50, 0x2A, 0x4D, 0x18, 1, 0, 0, 0, 7]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x08, 0x00]),
        Err(DecodeError::ReservedBit)
    );
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x01, 0x00, 0x2A]),
        Err(DecodeError::DictionaryRequired(42))
    );
    // Block type 3.
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x07, 0x00, 0x00]),
        Err(DecodeError::ReservedBlockType)
    );
    // A 2 KiB raw block in a 1 KiB window.
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x01, 0x40, 0x00]),
        Err(DecodeError::BlockTooLarge {
            size: 2048,
            max: 1024
        })
    );
    // Single segment, content size 7, but an RLE block of 5 bytes.
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x07, 0x2B, 0x00, 0x00, 0x41]),
        Err(DecodeError::ContentSizeMismatch {
            declared: 7,
            produced: 5
        })
    );
    // Content size 3 is also the window: a 5-byte block exceeds it.
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x03, 0x2B, 0x00, 0x00, 0x41]),
        Err(DecodeError::BlockTooLarge { size: 5, max: 3 })
    );
    // The same with the right size decodes.
    assert_eq!(
        decode(&[0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x05, 0x2B, 0x00, 0x00, 0x41]),
        Ok(b"AAAAA".to_vec())
    );
}

#[test]
fn malformed_tables_are_typed_errors() {
    let corrupt = |block: &[u8]| match decode(&frame_with_block(block)) {
        Err(DecodeError::Corrupt(kind)) => kind,
        other => panic!("{block:02x?}: {other:?}"),
    };
    // Literals: raw, 0 bytes. Sequences: 1, literal lengths "repeat" with no table.
    assert_eq!(
        corrupt(&[0x00, 0x01, 0xC0, 0x01]),
        Corruption::MissingFseTable
    );
    // Literal lengths FSE-compressed with accuracy log 10 (above 9).
    assert_eq!(
        corrupt(&[0x00, 0x01, 0x80, 0x05, 0, 0, 0x01]),
        Corruption::FseTable
    );
    // Literal lengths RLE with symbol 36 (above 35).
    assert_eq!(corrupt(&[0x00, 0x01, 0x40, 36, 0x01]), Corruption::FseTable);
    // Offsets RLE with symbol 32 (above 31).
    assert_eq!(corrupt(&[0x00, 0x01, 0x10, 32, 0x01]), Corruption::FseTable);
    // Reserved bits of the modes byte.
    assert_eq!(
        corrupt(&[0x00, 0x01, 0x01, 0x01]),
        Corruption::SequencesHeader
    );
    // Sequences but an empty bitstream.
    assert_eq!(corrupt(&[0x00, 0x01, 0x00]), Corruption::SequenceBitstream);
    // No sequences, but bytes after the count.
    assert_eq!(corrupt(&[0x00, 0x00, 0x00]), Corruption::SequencesHeader);
    // Treeless literals (4 regenerated, 2 compressed) with no previous table.
    let treeless = 3 | (4 << 4) | (2 << 14);
    assert_eq!(
        corrupt(&literals_block(treeless, &[1, 1, 0])),
        Corruption::MissingHuffmanTable
    );
    // Huffman literals whose direct weights are all zero.
    let compressed = 2 | (4 << 4) | (4 << 14);
    assert_eq!(
        corrupt(&literals_block(compressed, &[0x81, 0x00, 1, 1, 0])),
        Corruption::HuffmanTable
    );
    // Huffman weights FSE-compressed, but their FSE description is cut short.
    assert_eq!(
        corrupt(&literals_block(compressed, &[0x02, 0xFF, 0x00, 0x00])),
        Corruption::FseTable
    );
    // Raw literals larger than the block.
    assert_eq!(corrupt(&[0x0D, 0x0F]), Corruption::LiteralsHeader);
    // Four streams for three literals.
    let four = 2 | (1 << 2) | (3 << 4) | (9 << 14);
    let streams = [0x80, 0x10, 1, 0, 1, 0, 1, 0, 1, 1, 1];
    assert_eq!(
        corrupt(&literals_block(four, &streams)),
        Corruption::HuffmanStream
    );
    // A sequence asking for more literals than there are: predefined tables, state bits
    // chosen so the literal length is large.
    let overrun = corrupt(&[0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0x01]);
    assert!(
        matches!(
            overrun,
            Corruption::LiteralsOverrun | Corruption::SequenceBitstream
        ),
        "{overrun:?}"
    );
}

#[test]
fn random_bytes_after_a_valid_header_never_panic() {
    let mut rng = Rng(11);
    for round in 0..3000 {
        let len = 1 + rng.below(200);
        let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode(&frame_with_block(&body));
        // Random block headers too.
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (round % 64) as u8];
        frame.extend_from_slice(&body);
        let _ = decode(&frame);
    }
}

#[test]
fn skippable_frames_are_refused_when_the_caller_says_so() {
    let input = repetitive_data(10_000, 3);
    let frame = compress(&input, Params::new(3, 12));
    let skippable = [0x53u8, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 7, 7];
    let refusing = DecoderConfig {
        skippable_frames: false,
        ..DecoderConfig::DEFAULT
    };
    // First, and after a data frame: both refused with the skippable magic.
    for payload in [
        [&skippable[..], &frame].concat(),
        [&frame, &skippable[..]].concat(),
    ] {
        let mut buf = vec![0u8; 30_000];
        let mut out = SliceOutput::new(&mut buf);
        let mut decoder = Box::new(TestDecoder::new(refusing));
        assert_eq!(
            decoder.feed(&payload, &mut out),
            Err(DecodeError::BadMagic(0x184D_2A53))
        );
        // The default passes over it.
        let mut buf = vec![0u8; 30_000];
        let mut out = SliceOutput::new(&mut buf);
        decoder.reset_with(DecoderConfig::DEFAULT);
        decoder.feed(&payload, &mut out).unwrap();
        assert_eq!(decoder.finish(&mut out), Ok(input.len() as u64));
        assert_eq!(out.written(), &input[..]);
    }
}
