//! One decoder reused for several inputs (`reset`, `reset_with`), as a device reuses the
//! decoder it keeps in place rather than building a new one per install: after either,
//! it decodes exactly what a new decoder would, whatever state the last input left.

mod common;

use common::{
    Params, Rng, TestDecoder, code_data, compress, compress_with_prefix, feed_chunks, random_data,
    repetitive_data,
};
use ota_zstd::{DecodeError, DecoderConfig, SliceOutput};

/// Decodes `compressed` whole with `decoder` into a fresh output after `prefix`.
fn decode_with(
    decoder: &mut TestDecoder,
    compressed: &[u8],
    prefix: &[u8],
    capacity: usize,
) -> Result<Vec<u8>, DecodeError> {
    let mut buf = vec![0u8; capacity];
    let mut out = SliceOutput::with_prefix(prefix, &mut buf);
    feed_chunks(decoder, compressed, &mut out, &mut Rng(3))?;
    let len = decoder.finish(&mut out)? as usize;
    assert_eq!(len, out.written().len());
    Ok(out.written().to_vec())
}

#[test]
fn reset_after_an_error_decodes_the_next_input() {
    let data = code_data(50_000, 1);
    let compressed = compress(&data, Params::new(19, 16));
    let mut corrupt = compressed.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x40;
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    let error = decode_with(&mut decoder, &corrupt, &[], data.len() * 2).unwrap_err();
    // The error is sticky until a reset...
    assert_eq!(
        decode_with(&mut decoder, &compressed, &[], data.len()),
        Err(error)
    );
    // ...after which the decoder is as new.
    decoder.reset();
    assert!(decode_with(&mut decoder, &compressed, &[], data.len()).unwrap() == data);
}

#[test]
fn reset_mid_frame_forgets_the_frame_its_tables_and_its_output() {
    let first = repetitive_data(40_000, 2);
    let second = code_data(60_000, 3);
    let first_frame = compress(&first, Params::new(19, 17));
    let second_frame = compress(&second, Params::new(19, 17));
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    let mut buf = vec![0u8; first.len()];
    let mut out = SliceOutput::new(&mut buf);
    // Most of the first frame: its tables are loaded and the ring holds its output.
    decoder
        .feed(&first_frame[..first_frame.len() * 3 / 4], &mut out)
        .unwrap();
    assert!(decoder.produced() > 0);
    decoder.reset();
    assert_eq!(decoder.produced(), 0);
    assert!(decode_with(&mut decoder, &second_frame, &[], second.len()).unwrap() == second);
    // Ending without a frame after a reset is a truncated input, as for a new decoder.
    decoder.reset();
    let mut empty = SliceOutput::new(&mut []);
    assert_eq!(decoder.finish(&mut empty), Err(DecodeError::Truncated));
}

#[test]
fn reset_with_takes_the_new_prefix_and_window_limit() {
    let base = code_data(200_000, 4);
    let mut target = base.clone();
    target.splice(5_000..5_000, random_data(2_000, 5));
    let delta = compress_with_prefix(
        &target,
        Params {
            long: true,
            ..Params::new(19, 20)
        },
        &base,
    );
    let full = compress(&target, Params::new(19, 20));
    let delta_config = DecoderConfig {
        prefix_len: base.len() as u64,
        ..DecoderConfig::DEFAULT
    };

    // A full image first, then the delta with its base as prefix.
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    assert!(decode_with(&mut decoder, &full, &[], target.len()).unwrap() == target);
    decoder.reset_with(delta_config);
    assert!(decode_with(&mut decoder, &delta, &base, target.len()).unwrap() == target);

    // Back to no prefix and a window limit below the frame's: refused as by a new decoder
    // with that configuration, not decoded with the previous one's.
    let small = DecoderConfig {
        max_window: 1 << 16,
        prefix_len: 0,
        ..DecoderConfig::DEFAULT
    };
    decoder.reset_with(small);
    let refused = decode_with(&mut decoder, &full, &[], target.len());
    assert!(
        matches!(refused, Err(DecodeError::WindowTooLarge { max, .. }) if max == 1 << 16),
        "{refused:?}"
    );
    let mut fresh = Box::new(TestDecoder::new(small));
    assert_eq!(decode_with(&mut fresh, &full, &[], target.len()), refused);

    // Without the prefix, the delta's first match into the base reaches past the history.
    decoder.reset_with(DecoderConfig::DEFAULT);
    assert!(matches!(
        decode_with(&mut decoder, &delta, &[], target.len()),
        Err(DecodeError::OffsetBeyondHistory { .. })
    ));
}
