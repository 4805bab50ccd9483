//! Method-2 payloads (`Compression::ZstdFlashWindow`) and delta payloads decoded on the
//! host with the decoder generation-2 devices run (`ota-zstd`, a 4 KiB ring and an
//! 8 KiB compressed-block buffer), so `package`, `verify`, `release` and `delta` refuse
//! exactly what those devices would refuse while decoding.

use ota_agent::install::InstallError;
use ota_agent::zstd::DecompressError;
use ota_format::FLASH_WINDOW_MAX_BLOCK;
use ota_zstd::{DecodeError, Decoder, DecoderConfig, IoError, SliceOutput};

/// RAM window of the device's decoder: one flash sector.
const RING: usize = 4096;
/// The device's compressed-block buffer: a larger compressed block cannot be decoded.
const BLOCK: usize = FLASH_WINDOW_MAX_BLOCK as usize;

/// The decoder generation-2 devices run.
pub type DeviceDecoder = Decoder<RING, BLOCK>;

/// Decodes `payload` (zstd frames, window at most `2^window_log`, compressed blocks at
/// most [`FLASH_WINDOW_MAX_BLOCK`]) into exactly `size` bytes; match copies of the first
/// frame may reach into `prefix` (a delta's base image; empty for a full image).
pub fn decode(
    payload: &[u8],
    prefix: &[u8],
    window_log: u8,
    size: u32,
) -> Result<Vec<u8>, InstallError> {
    let mut out = vec![0u8; size as usize];
    let mut sink = SliceOutput::with_prefix(prefix, &mut out);
    // Boxed: the decoder holds its ring and block buffer inline (~22 KB).
    let mut decoder = Box::new(DeviceDecoder::new(DecoderConfig {
        max_window: 1u64 << window_log,
        prefix_len: prefix.len() as u64,
    }));
    decoder.feed(payload, &mut sink).map_err(install_error)?;
    let produced = decoder.finish(&mut sink).map_err(install_error)?;
    if produced != u64::from(size) {
        return Err(InstallError::OutputTooShort);
    }
    Ok(out)
}

/// The agent's name for each refusal, so diagnostics and exit codes stay those of the
/// agent's own checks.
fn install_error(e: DecodeError) -> InstallError {
    use DecompressError as D;
    InstallError::Decompress(match e {
        DecodeError::Io(IoError::OutputFull) => return InstallError::OutputTooLong,
        DecodeError::BadMagic(_) => D::BadFrameMagic,
        DecodeError::ReservedBit | DecodeError::ReservedBlockType => D::BadHeader,
        DecodeError::DictionaryRequired(_) => D::Dictionary,
        DecodeError::WindowTooLarge { window, max } => D::WindowTooLarge {
            requested: window,
            allowed: max,
        },
        DecodeError::BlockTooLarge { size, max } => D::BlockTooLarge {
            size,
            max: u32::try_from(max).unwrap_or(u32::MAX),
        },
        DecodeError::BlockBufferTooSmall { size, capacity } => D::BlockTooLarge {
            size,
            max: u32::try_from(capacity).unwrap_or(u32::MAX),
        },
        DecodeError::Truncated => D::Truncated,
        _ => D::Corrupt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zstd::zstd_safe::CParameter;

    /// 4 random bits a byte: compressible, yet a 128 KiB block of it compresses to far
    /// more than 8 KiB when blocks are not capped.
    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 60) as u8
            })
            .collect()
    }

    fn compress(input: &[u8], prefix: &[u8], max_block: Option<u32>) -> Vec<u8> {
        use std::io::Write;
        let mut c = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, prefix).unwrap();
        c.set_parameter(CParameter::WindowLog(20)).unwrap();
        if let Some(b) = max_block {
            c.set_parameter(CParameter::MaxBlockSize(b)).unwrap();
        }
        c.write_all(input).unwrap();
        c.finish().unwrap()
    }

    #[test]
    fn decodes_capped_blocks_and_refuses_larger_ones() {
        let input = data(200_000);
        let good = compress(&input, &[], Some(FLASH_WINDOW_MAX_BLOCK));
        assert_eq!(decode(&good, &[], 20, 200_000).unwrap(), input);
        let big = compress(&input, &[], None);
        let e = decode(&big, &[], 20, 200_000).map(|_| ());
        assert!(
            matches!(
                e,
                Err(InstallError::Decompress(DecompressError::BlockTooLarge {
                    max: 8192,
                    ..
                }))
            ),
            "{e:?}"
        );
    }

    #[test]
    fn refuses_wrong_sizes_and_windows() {
        let input = data(50_000);
        let good = compress(&input, &[], Some(FLASH_WINDOW_MAX_BLOCK));
        assert!(matches!(
            decode(&good, &[], 20, 49_999),
            Err(InstallError::OutputTooLong)
        ));
        assert!(matches!(
            decode(&good, &[], 20, 50_001),
            Err(InstallError::OutputTooShort)
        ));
        assert!(matches!(
            decode(&good, &[], 12, 50_000),
            Err(InstallError::Decompress(
                DecompressError::WindowTooLarge { .. }
            ))
        ));
        assert!(matches!(
            decode(&good[..good.len() - 1], &[], 20, 50_000),
            Err(InstallError::Decompress(DecompressError::Truncated))
        ));
    }

    #[test]
    fn a_prefix_frame_needs_its_prefix() {
        let base = data(60_000);
        let mut target = base.clone();
        target[30_000..30_010].copy_from_slice(b"0123456789");
        let delta = compress(&target, &base, Some(FLASH_WINDOW_MAX_BLOCK));
        assert!(delta.len() < 1_000, "{}", delta.len());
        assert!(compress(&target, &[], Some(FLASH_WINDOW_MAX_BLOCK)).len() > 20_000);
        assert_eq!(decode(&delta, &base, 20, 60_000).unwrap(), target);
        assert!(decode(&delta, &[], 20, 60_000).is_err());
    }
}
