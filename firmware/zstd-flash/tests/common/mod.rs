//! Shared by the tests and the bench: libzstd as the reference encoder, data generators,
//! a chunked decode driver and a Vec-backed NOR flash.
#![allow(dead_code)]

use std::io::Write;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ota_zstd::{DecodeError, Decoder, DecoderConfig, History, NorFlashOutput, Region, SliceOutput};
use zstd::zstd_safe::CParameter;

/// The decoder the tests use: a 4 KiB ring (one flash sector) and 8 KiB blocks.
pub type TestDecoder = Decoder<4096, 8192>;
/// What the encoder must keep blocks to for `TestDecoder`.
pub const MAX_BLOCK: u32 = 8192;

/// How libzstd compresses a case.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub level: i32,
    pub window_log: u32,
    pub checksum: bool,
    pub long: bool,
    /// Streaming (window descriptor, no content size) or one shot (content size,
    /// single segment when the window covers the input).
    pub streaming: bool,
    pub max_block: u32,
}

impl Params {
    pub fn new(level: i32, window_log: u32) -> Self {
        Self {
            level,
            window_log,
            checksum: true,
            long: false,
            streaming: false,
            max_block: MAX_BLOCK,
        }
    }

    fn parameters(&self) -> [CParameter; 5] {
        [
            CParameter::CompressionLevel(self.level),
            CParameter::WindowLog(self.window_log),
            CParameter::ChecksumFlag(self.checksum),
            CParameter::EnableLongDistanceMatching(self.long),
            CParameter::MaxBlockSize(self.max_block),
        ]
    }
}

/// libzstd's compression of `data`, optionally against a raw prefix.
pub fn compress_with_prefix(data: &[u8], params: Params, prefix: &[u8]) -> Vec<u8> {
    if params.streaming || !prefix.is_empty() {
        let mut encoder =
            zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), params.level, prefix)
                .expect("encoder");
        for parameter in params.parameters() {
            encoder.set_parameter(parameter).expect("parameter");
        }
        if !params.streaming {
            encoder
                .set_pledged_src_size(Some(data.len() as u64))
                .expect("pledged size");
        }
        // Small writes, as a streaming producer makes them.
        for piece in data.chunks(10_000) {
            encoder.write_all(piece).expect("compress");
        }
        encoder.finish().expect("finish")
    } else {
        let mut compressor = zstd::bulk::Compressor::new(params.level).expect("compressor");
        for parameter in params.parameters() {
            compressor.set_parameter(parameter).expect("parameter");
        }
        compressor.compress(data).expect("compress")
    }
}

pub fn compress(data: &[u8], params: Params) -> Vec<u8> {
    compress_with_prefix(data, params, &[])
}

/// libzstd's decompression (the reference output), or None where libzstd refuses.
pub fn reference_decompress(compressed: &[u8], prefix: &[u8], limit: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut decoder = zstd::stream::read::Decoder::with_ref_prefix(compressed, prefix).ok()?;
    decoder
        .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(31))
        .ok()?;
    let mut output = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut output)
        .ok()?;
    (output.len() <= limit).then_some(output)
}

/// xorshift64*: deterministic, seeded, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A chunk size from 1 to 64 KiB, log-uniform so single bytes and whole blocks both
    /// occur often.
    pub fn chunk_size(&mut self) -> usize {
        let bits = self.below(17) as u32;
        1 + self.below(1usize << bits).min(65_535)
    }
}

pub fn random_data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Text-like records with repeats near and far: long matches, repeat offsets, RLE runs.
pub fn repetitive_data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let words: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            (0..3 + rng.below(9))
                .map(|_| b'a' + rng.below(26) as u8)
                .collect()
        })
        .collect();
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        match rng.below(10) {
            0 if data.len() > 1000 => {
                let start = rng.below(data.len() - 500);
                let copy = data[start..start + 20 + rng.below(400)].to_vec();
                data.extend_from_slice(&copy);
            }
            1 => data.extend(std::iter::repeat_n(b'=', rng.below(300))),
            _ => {
                data.extend_from_slice(&words[rng.below(words.len())]);
                data.push(b' ');
            }
        }
    }
    data.truncate(len);
    data
}

/// Real machine code: a slice of this test's own executable, which any machine that
/// runs the test has.
pub fn code_data(len: usize, seed: u64) -> Vec<u8> {
    let exe = std::fs::read(std::env::current_exe().expect("own executable")).expect("read");
    assert!(
        exe.len() >= len,
        "executable of {} bytes is below {len}",
        exe.len()
    );
    let start = (seed as usize * 7919) % (exe.len() - len + 1);
    exe[start..start + len].to_vec()
}

/// Feeds `compressed` in chunks drawn from `rng` into an in-RAM output.
pub fn decode_chunked(
    compressed: &[u8],
    prefix: &[u8],
    capacity: usize,
    rng: &mut Rng,
) -> Result<Vec<u8>, DecodeError> {
    let mut buf = vec![0u8; capacity];
    let mut out = SliceOutput::with_prefix(prefix, &mut buf);
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig {
        prefix_len: prefix.len() as u64,
        ..DecoderConfig::DEFAULT
    }));
    feed_chunks(&mut decoder, compressed, &mut out, rng)?;
    let len = decoder.finish(&mut out)? as usize;
    assert_eq!(
        len,
        out.written().len(),
        "finish reports what the sink received"
    );
    Ok(out.written().to_vec())
}

pub fn feed_chunks<O: ota_zstd::Sink + History, const R: usize, const B: usize>(
    decoder: &mut Decoder<R, B>,
    compressed: &[u8],
    out: &mut O,
    rng: &mut Rng,
) -> Result<(), DecodeError> {
    let mut rest = compressed;
    while !rest.is_empty() {
        let take = rng.chunk_size().min(rest.len());
        decoder.feed(&rest[..take], out)?;
        rest = &rest[take..];
    }
    Ok(())
}

/// Decodes through a simulated NOR flash: prefix in one region, output in another, the
/// window read back from the flash.
pub fn decode_via_flash(
    compressed: &[u8],
    prefix: &[u8],
    capacity: usize,
    rng: &mut Rng,
) -> Result<Vec<u8>, DecodeError> {
    let sector = MemFlash::ERASE;
    let prefix_region = Region {
        offset: 0,
        len: prefix.len() as u32,
    };
    let output_offset = prefix.len().div_ceil(sector) * sector;
    let output_len = capacity.div_ceil(sector) * sector;
    let mut flash = MemFlash::new(output_offset + output_len);
    flash.bytes[..prefix.len()].copy_from_slice(prefix);
    let mut out = NorFlashOutput::new(
        flash,
        prefix_region,
        Region {
            offset: output_offset as u32,
            len: output_len as u32,
        },
    );
    let mut decoder = Box::new(TestDecoder::new(DecoderConfig {
        prefix_len: prefix.len() as u64,
        ..DecoderConfig::DEFAULT
    }));
    feed_chunks(&mut decoder, compressed, &mut out, rng)?;
    let len = decoder.finish(&mut out)? as usize;
    let flash = out.into_inner();
    Ok(flash.bytes[output_offset..output_offset + len].to_vec())
}

/// NOR flash in a Vec: 4-byte reads and writes, 4 KiB erase sectors, writes only clear
/// bits (so a write without erase shows up as wrong output).
pub struct MemFlash {
    pub bytes: Vec<u8>,
    pub reads: u64,
    pub read_bytes: u64,
}

#[derive(Debug)]
pub struct MemFlashError(NorFlashErrorKind);

impl NorFlashError for MemFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl MemFlash {
    pub const ERASE: usize = 4096;

    pub fn new(len: usize) -> Self {
        Self {
            bytes: vec![0x00; len],
            reads: 0,
            read_bytes: 0,
        }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, MemFlashError> {
        let offset = offset as usize;
        if !offset.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MemFlashError(NorFlashErrorKind::NotAligned));
        }
        if offset + len > self.bytes.len() {
            return Err(MemFlashError(NorFlashErrorKind::OutOfBounds));
        }
        Ok(offset)
    }
}

impl ErrorType for MemFlash {
    type Error = MemFlashError;
}

impl ReadNorFlash for MemFlash {
    const READ_SIZE: usize = 4;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let start = self.check(offset, bytes.len(), Self::READ_SIZE)?;
        self.reads += 1;
        self.read_bytes += bytes.len() as u64;
        bytes.copy_from_slice(&self.bytes[start..start + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for MemFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = Self::ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let start = self.check(from, (to - from) as usize, Self::ERASE_SIZE)?;
        self.bytes[start..to as usize].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let start = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (cell, &byte) in self.bytes[start..].iter_mut().zip(bytes) {
            *cell &= byte;
        }
        Ok(())
    }
}
