//! ESP-IDF app images built directly (without espflash), and ways to break them.
//!
//! The image lists the descriptor segment first (so the app descriptor sits at offset
//! 32), then `.text`, `.data` and `.rwtext`, each as one segment. Unlike espflash it does
//! not pad flash segments to MMU page alignment: nothing in ota-sign or the simulator
//! maps pages, and smaller fixtures keep the tests fast.

use ota_format::ChipId;
use ota_format::esp::{CHECKSUM_SEED, IMAGE_HEADER_LEN, IMAGE_MAGIC, ImageHeader, SegmentHeader};
use sha2::{Digest, Sha256};

use crate::firmware::TestFirmware;

pub(crate) fn build(fw: &TestFirmware) -> Vec<u8> {
    // Merge sections that are contiguous in memory, as espflash does, so the app
    // descriptor and `.rodata` form the first segment.
    let mut segments: Vec<(u32, Vec<u8>)> = Vec::new();
    for s in fw.sections() {
        match segments.last_mut() {
            Some((addr, data)) if *addr + data.len() as u32 == s.addr => {
                data.extend_from_slice(&s.data)
            }
            _ => segments.push((s.addr, s.data.clone())),
        }
    }
    let header = ImageHeader {
        magic: IMAGE_MAGIC,
        segment_count: segments.len() as u8,
        spi_mode: 2,  // DIO
        spi_speed: 0, // 40 MHz
        spi_size: 2,  // 4 MB
        entry_addr: fw.entry(),
        wp_pin: 0xEE,
        spi_pin_drv: [0; 3],
        chip_id: fw.chip().id(),
        min_chip_rev: 0,
        min_chip_rev_full: 0,
        max_chip_rev_full: u16::MAX,
        reserved: [0; 4],
        hash_appended: 1,
    };
    let mut out = header.encode().to_vec();
    for (addr, data) in &segments {
        let seg = SegmentHeader {
            load_addr: *addr,
            data_len: data.len() as u32,
        };
        out.extend_from_slice(&seg.encode());
        out.extend_from_slice(data);
    }
    let checksum_at = out.len() + 15 - out.len() % 16;
    out.resize(checksum_at + 1 + 32, 0);
    reseal(&mut out);
    out
}

/// Recomputes the checksum and, when `hash_appended` is set, the SHA-256 of an image
/// from its segment headers, so that a deliberate change elsewhere is the only thing
/// wrong with it. The image must be long enough to hold them.
///
/// # Panics
/// When the segment headers run past the end of the image.
pub fn reseal(image: &mut [u8]) {
    let count = image[1] as usize;
    let mut at = IMAGE_HEADER_LEN;
    let mut checksum = CHECKSUM_SEED;
    for _ in 0..count {
        let len = u32::from_le_bytes(image[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        checksum = image[at + 8..at + 8 + len]
            .iter()
            .fold(checksum, |c, b| c ^ b);
        at += 8 + len;
    }
    let checksum_at = at + 15 - at % 16;
    image[checksum_at] = checksum;
    if image[23] != 0 {
        let digest = Sha256::digest(&image[..=checksum_at]);
        image[checksum_at + 1..checksum_at + 33].copy_from_slice(&digest);
    }
}

/// One way to break an app image. Each names the check that must catch it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Corruption {
    /// Keep only the first `n` bytes.
    Truncate(usize),
    /// Flip the lowest bit of the byte at this offset (nothing resealed).
    FlipByte(usize),
    /// Replace the magic byte, resealed (only the magic is wrong).
    Magic(u8),
    /// Claim another chip, resealed (checksum and digest valid).
    Chip(ChipId),
    /// Set the segment count (not resealed).
    SegmentCount(u8),
    /// Set the declared length of a segment (not resealed).
    SegmentLength {
        /// Segment index.
        index: usize,
        /// New declared length.
        len: u32,
    },
    /// Flip the checksum byte; the digest is recomputed so only the checksum is wrong.
    Checksum,
    /// Flip a bit of the appended SHA-256.
    Digest,
    /// Clear `hash_appended` and drop the digest, resealed: a valid image without one.
    StripDigest,
    /// Overwrite the app descriptor's magic word, resealed.
    AppDescriptorMagic,
    /// Append bytes after the image.
    Trailing(usize),
}

/// A copy of `image` broken in the given way.
///
/// # Panics
/// When the image is too short for the corruption (a bug in the test).
pub fn corrupt(image: &[u8], how: Corruption) -> Vec<u8> {
    let mut out = image.to_vec();
    match how {
        Corruption::Truncate(n) => out.truncate(n),
        Corruption::FlipByte(at) => out[at] ^= 0x01,
        Corruption::Magic(m) => {
            out[0] = m;
            reseal(&mut out);
        }
        Corruption::Chip(chip) => {
            out[12..14].copy_from_slice(&chip.0.to_le_bytes());
            reseal(&mut out);
        }
        Corruption::SegmentCount(n) => out[1] = n,
        Corruption::SegmentLength { index, len } => {
            let at = segment_header_offset(&out, index);
            out[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
        }
        Corruption::Checksum => {
            let at = out.len() - 33;
            out[at] ^= 0xFF;
            let digest = Sha256::digest(&out[..=at]);
            out[at + 1..].copy_from_slice(&digest);
        }
        Corruption::Digest => {
            let last = out.len() - 1;
            out[last] ^= 0x80;
        }
        Corruption::StripDigest => {
            out[23] = 0;
            out.truncate(out.len() - 32);
            reseal(&mut out);
        }
        Corruption::AppDescriptorMagic => {
            out[32..36].copy_from_slice(&[0; 4]);
            reseal(&mut out);
        }
        Corruption::Trailing(n) => out.resize(out.len() + n, 0xFF),
    }
    out
}

fn segment_header_offset(image: &[u8], index: usize) -> usize {
    let mut at = IMAGE_HEADER_LEN;
    for _ in 0..index {
        let len = u32::from_le_bytes(image[at + 4..at + 8].try_into().expect("4 bytes"));
        at += 8 + len as usize;
    }
    at
}
