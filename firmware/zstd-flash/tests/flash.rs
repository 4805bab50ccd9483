//! The flash-backed history and sink: reads across the prefix/output boundary at any
//! alignment, sector erases, the region bound.

mod common;

use common::{MemFlash, Params, Rng, TestDecoder, code_data, compress};
use ota_zstd::{
    DecodeError, DecoderConfig, History, IoError, NorFlashHistory, NorFlashOutput, Region, Sink,
    SliceOutput, Split,
};

#[test]
fn history_reads_straddle_prefix_and_output_at_any_alignment() {
    let mut flash = MemFlash::new(3 * 4096);
    let stream: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    // Prefix: 1000 bytes at 4096; output: the rest at 8192.
    flash.bytes[4096..5096].copy_from_slice(&stream[..1000]);
    flash.bytes[8192..8192 + 4000].copy_from_slice(&stream[1000..]);
    let mut history = NorFlashHistory::new(
        flash,
        Region {
            offset: 4096,
            len: 1000,
        },
        8192,
    );
    let mut rng = Rng(3);
    for _ in 0..2000 {
        let start = rng.below(stream.len());
        let len = rng.below(stream.len() - start).min(300);
        let mut buf = vec![0u8; len];
        history.read(start as u64, &mut buf).unwrap();
        assert_eq!(buf, stream[start..start + len], "at {start}, {len} B");
    }
}

#[test]
fn output_beyond_its_region_is_refused() {
    let input = code_data(20_000, 3);
    let compressed = compress(&input, Params::new(3, 16));
    let flash = MemFlash::new(16 * 1024);
    let empty = Region { offset: 0, len: 0 };
    let slot = Region {
        offset: 0,
        len: 16 * 1024,
    };
    let mut out = NorFlashOutput::new(flash, empty, slot);
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    let result = decoder
        .feed(&compressed, &mut out)
        .and_then(|()| decoder.finish(&mut out));
    assert_eq!(result, Err(DecodeError::Io(IoError::OutputFull)));
    // What was written is the start of the output.
    let written = out.written() as usize;
    assert_eq!(written, 16 * 1024);
    assert!(out.into_inner().bytes[..written] == input[..written]);
}

/// Records the size of every piece the sink receives; serves history from what it got.
struct Recorder {
    sizes: Vec<usize>,
    bytes: Vec<u8>,
}

impl Sink for Recorder {
    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        self.sizes.push(bytes.len());
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
}

impl History for Recorder {
    fn read(&mut self, position: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let start = position as usize;
        let source = self.bytes.get(start..start + buf.len());
        buf.copy_from_slice(source.ok_or(IoError::OutOfHistory)?);
        Ok(())
    }
}

#[test]
fn the_sink_receives_whole_ring_pieces() {
    let input = code_data(50_000, 8);
    let compressed = compress(&input, Params::new(9, 18));
    let mut recorder = Recorder {
        sizes: Vec::new(),
        bytes: Vec::new(),
    };
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    common::feed_chunks(&mut decoder, &compressed, &mut recorder, &mut Rng(2)).unwrap();
    decoder.finish(&mut recorder).unwrap();
    assert!(recorder.bytes == input);
    let (last, whole) = recorder.sizes.split_last().unwrap();
    assert!(
        whole.iter().all(|&size| size == 4096),
        "{:?}",
        recorder.sizes
    );
    assert_eq!(*last, input.len() - 4096 * whole.len());
}

#[test]
fn split_pairs_a_sink_with_a_separate_history() {
    let input = code_data(30_000, 6);
    let compressed = compress(&input, Params::new(12, 17));
    let mut flash = MemFlash::new(32 * 1024);
    let mut history_copy = vec![0u8; input.len()];
    // The sink writes into RAM; the history reads a flash that already holds the output
    // (as if another writer had programmed it).
    flash.bytes[..input.len()].copy_from_slice(&input);
    let mut out = Split {
        sink: SliceOutput::new(&mut history_copy),
        history: NorFlashHistory::new(flash, Region { offset: 0, len: 0 }, 0),
    };
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig::DEFAULT));
    decoder.feed(&compressed, &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    assert!(out.sink.written() == input);
}
