//! The input file the host generator writes (firmware/install-cost/inputs): which
//! pipeline to run and its bytes. Little-endian throughout.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `OTACOST1` |
//! | 8 | 4 | kind: 1 full image, 2 delta (encoding 2), 3 difference delta (encoding 3) |
//! | 12 | … | full: the signed `.ota` file |
//! | 12 | 4 | delta, difference: base length *B* |
//! | 16 | 4 | delta, difference: target length |
//! | 20 | 32 | delta, difference: SHA-256 of the base |
//! | 52 | 32 | delta, difference: SHA-256 of the target |
//! | 84 | *B* | delta: the base image |
//! | 84 + *B* | … | delta: the zstd frame, compressed with the base as raw prefix |
//! | 84 | 4 | difference: the difference stream's size |
//! | 88 | *B* | difference: the base image |
//! | 88 + *B* | … | difference: the zstd frame of the difference stream (no prefix) |

use crate::pipeline::Failure;

/// What to install.
pub enum Input<'a> {
    /// A signed `.ota` file with a zstd payload.
    Full {
        /// The file.
        ota: &'a [u8],
    },
    /// A zstd frame against a base image.
    Delta(Delta<'a>),
    /// A zstd frame of a difference stream (`ota_format::diff`) against a base image.
    Difference {
        /// The frame (no prefix), the base and the digests.
        delta: Delta<'a>,
        /// Bytes the frame decodes to.
        stream_size: u32,
    },
}

/// A delta and the digests its result is checked against. (The signed delta object is
/// defined elsewhere; here the digests stand for what its header will bind.)
pub struct Delta<'a> {
    /// The image in the running slot.
    pub base: &'a [u8],
    /// SHA-256 of `base`.
    pub base_sha256: [u8; 32],
    /// Length of the image the frame produces.
    pub target_len: u32,
    /// SHA-256 of that image.
    pub target_sha256: [u8; 32],
    /// The zstd frame.
    pub frame: &'a [u8],
}

const MAGIC: &[u8; 8] = b"OTACOST1";
const BAD: Failure = Failure::Input("malformed input file");

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, Failure> {
    let field = bytes.get(at..at + 4).ok_or(BAD)?;
    Ok(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

fn digest_at(bytes: &[u8], at: usize) -> Result<[u8; 32], Failure> {
    bytes
        .get(at..at + 32)
        .and_then(|d| d.try_into().ok())
        .ok_or(BAD)
}

impl<'a> Input<'a> {
    /// Parses the file.
    pub fn parse(file: &'a [u8]) -> Result<Self, Failure> {
        if file.get(..8) != Some(MAGIC.as_slice()) {
            return Err(BAD);
        }
        match u32_at(file, 8)? {
            1 => Ok(Input::Full { ota: &file[12..] }),
            2 => Ok(Input::Delta(delta(file, 84)?)),
            3 => Ok(Input::Difference {
                stream_size: u32_at(file, 84)?,
                delta: delta(file, 88)?,
            }),
            _ => Err(BAD),
        }
    }
}

/// The fields kinds 2 and 3 share; the base starts at `base_at`.
fn delta(file: &[u8], base_at: usize) -> Result<Delta<'_>, Failure> {
    let base_len = u32_at(file, 12)? as usize;
    let base_end = base_at.checked_add(base_len).ok_or(BAD)?;
    Ok(Delta {
        target_len: u32_at(file, 16)?,
        base_sha256: digest_at(file, 20)?,
        target_sha256: digest_at(file, 52)?,
        base: file.get(base_at..base_end).ok_or(BAD)?,
        frame: file.get(base_end..).ok_or(BAD)?,
    })
}
