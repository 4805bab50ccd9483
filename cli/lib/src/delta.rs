//! Signed deltas (`.otad`): the target image's installed bytes encoded against the base
//! image a device already runs, with the target's signed header carried verbatim so the
//! manifest's binding and the installed digest stay the single source of truth. Two
//! encodings (`docs/FORMAT.md`): zstd with the base as raw prefix (`zstd --patch-from`),
//! and a bsdiff-style difference stream with RISC-V address pairs normalised
//! ([`ota_format::diff`]); [`make`] writes both and keeps the smaller unless told which.
//! Every delta made here is verified and decoded with the device's decoder before it is
//! returned.

use std::io::Write;

use ota_format::diff::{encode_stream, records_from_bsdiff};
use ota_format::{
    DeltaEncoding, DeltaExpectations, DeltaInfo, FormatError, ImageHeader, KeyId, TrustedKey,
    TrustedKeys, verify_delta,
};
use ota_keys::SigningKeySource;
use sha2::{Digest, Sha256};

use ota_agent::install::InstallError;
use ota_agent::zstd::{DecompressError, MAX_WINDOW_LOG};

use crate::packaging::{DEFAULT_LEVEL, ZstdParams, covering_window_log};

/// Why a delta could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The base and the target are for different device types or chips.
    #[error(
        "the base is for {base}, the target for {target}: a delta needs both for one device type and chip"
    )]
    Mismatch {
        /// Device type and chip of the base.
        base: String,
        /// Device type and chip of the target.
        target: String,
    },
    /// The compressor failed.
    #[error("zstd compression failed: {0}")]
    Compression(#[source] std::io::Error),
    /// The difference matcher's output could not be turned into a difference stream.
    #[error("the difference matcher's records do not fit the images: {0}")]
    Matcher(String),
    /// The payload is larger than the format allows.
    #[error("the delta payload of {0} bytes is larger than the format allows")]
    TooLarge(usize),
    /// The header could not be encoded.
    #[error("invalid delta header: {0}")]
    Header(#[source] FormatError),
    /// The signer failed.
    #[error("signing failed")]
    Signing(#[source] ota_keys::KeyError),
    /// The finished delta does not verify: the signer does not hold the key it claims.
    #[error(
        "the signed delta does not verify with the signer's public key ({0}); the key source is broken"
    )]
    SelfCheck(#[source] FormatError),
    /// The finished delta does not decode to the target with the device's decoder.
    #[error("the delta does not decode to the target image with the device's decoder: {0}")]
    Decode(String),
}

/// One side of a delta: a verified image and its installed bytes.
#[derive(Clone, Copy, Debug)]
pub struct DeltaSide<'a> {
    /// The verified header.
    pub header: &'a ImageHeader,
    /// The image's `.ota` bytes (the target's header is carried from them).
    pub ota: &'a [u8],
    /// The installed image (the decoded payload).
    pub installed: &'a [u8],
}

pub use crate::devices::EncodingChoice;

/// The name `--encoding`, `--json` and `inspect` use for a delta's encoding.
pub fn encoding_name(encoding: DeltaEncoding) -> &'static str {
    match encoding {
        DeltaEncoding::PatchFrom => "patch-from",
        DeltaEncoding::Difference { .. } => "difference",
    }
}

/// A signed, self-checked delta.
#[derive(Clone, Debug)]
pub struct Delta {
    /// The complete `.otad` file.
    pub bytes: Vec<u8>,
    /// Its signed header fields.
    pub info: DeltaInfo,
}

/// The name a device asks for ([`ota_format::delta_file_name`]); `None` when it would
/// break the image name rules, so no device could ask for it.
pub fn delta_name(image_name: &str, base_installed_sha256: &[u8; 32]) -> Option<String> {
    ota_format::delta_file_name(image_name, base_installed_sha256).map(|n| n.as_str().to_owned())
}

/// What [`delta_name`] appends to an image's name for this base (`.<16 hex>.otad`).
pub fn delta_name_suffix(base_installed_sha256: &[u8; 32]) -> String {
    const SHORT: &str = "x.ota";
    delta_name(SHORT, base_installed_sha256)
        .and_then(|n| n.strip_prefix(SHORT).map(str::to_owned))
        .unwrap_or_default()
}

pub use crate::repo::names::delta_target;

/// Makes the delta from `base` to `target`, signed by `signer`. `trusted` must hold the
/// key that signed the target's header (the self-check verifies the delta as a device
/// would, which includes the target header).
pub fn make(
    base: DeltaSide<'_>,
    target: DeltaSide<'_>,
    signer: &dyn SigningKeySource,
    trusted: &[[u8; 32]],
) -> Result<Delta, DeltaError> {
    make_with(base, target, signer, trusted, EncodingChoice::Auto)
}

/// [`make`] with the payload encoding chosen by the caller.
pub fn make_with(
    base: DeltaSide<'_>,
    target: DeltaSide<'_>,
    signer: &dyn SigningKeySource,
    trusted: &[[u8; 32]],
    choice: EncodingChoice,
) -> Result<Delta, DeltaError> {
    let (b, t) = (&base.header.info, &target.header.info);
    if b.device_type != t.device_type || b.chip != t.chip {
        return Err(DeltaError::Mismatch {
            base: format!("{} ({})", b.device_type, b.chip),
            target: format!("{} ({})", t.device_type, t.chip),
        });
    }
    let (encoding, window_log, payload) = encode_payload(base.installed, target.installed, choice)?;
    let public_key = signer.public_key();
    let base_sha256: [u8; 32] = Sha256::digest(base.installed).into();
    let info = DeltaInfo {
        device_type: t.device_type,
        chip: t.chip,
        window_log,
        encoding,
        base_size: u32::try_from(base.installed.len())
            .map_err(|_| DeltaError::TooLarge(base.installed.len()))?,
        payload_size: u32::try_from(payload.len())
            .map_err(|_| DeltaError::TooLarge(payload.len()))?,
        base_sha256,
        target_header_sha256: *target.header.header_sha256(),
        payload_sha256: Sha256::digest(&payload).into(),
        key_id: KeyId::of(&public_key),
        flags: 0,
    };
    let message = info.signing_message().map_err(DeltaError::Header)?;
    let signature = signer
        .sign(message.as_bytes())
        .map_err(DeltaError::Signing)?;
    let header = info.assemble(&signature).map_err(DeltaError::Header)?;
    let target_header = &target.ota[..target.header.header_len()];
    let mut bytes = Vec::with_capacity(header.len() + target_header.len() + payload.len());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(target_header);
    bytes.extend_from_slice(&payload);

    let keys: Vec<TrustedKey> = std::iter::once(public_key)
        .chain(trusted.iter().copied())
        .map(TrustedKey::new)
        .collect();
    check(&bytes, TrustedKeys::new(&keys), base.installed).map_err(|e| match e {
        Checked::Format(f) => DeltaError::SelfCheck(f),
        Checked::Decode(d) => DeltaError::Decode(d),
    })?;
    Ok(Delta { bytes, info })
}

/// Why [`check`] refused a delta.
#[derive(Debug, thiserror::Error)]
pub enum Checked {
    /// A signature, digest, binding or structure rule.
    #[error("{0}")]
    Format(#[source] FormatError),
    /// The payload does not decode to the target's installed image.
    #[error("{0}")]
    Decode(String),
}

/// Verifies a delta as a device running `base` does: both signatures, the base binding,
/// the payload digest, then decodes the payload with the device's decoder and checks
/// the output against the target header's installed digest. Returns the verified
/// headers and the installed target image.
pub fn check(
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    base: &[u8],
) -> Result<(ota_format::VerifiedDelta, Vec<u8>), Checked> {
    let base_sha256: [u8; 32] = Sha256::digest(base).into();
    let base_size = u32::try_from(base.len()).unwrap_or(u32::MAX);
    let expect = DeltaExpectations {
        base: Some((base_size, base_sha256)),
        ..DeltaExpectations::default()
    };
    let verified = verify_delta(bytes, keys, expect).map_err(Checked::Format)?;
    let payload_at = bytes.len() - verified.delta.info.payload_size as usize;
    let installed = ota_agent::contents::decode_delta_payload(
        &verified.delta.info,
        &bytes[payload_at..],
        base,
        verified.target.info.image_size,
    )
    .map_err(|e| Checked::Decode(e.to_string()))?;
    verified
        .target
        .check_installed_digest(&Sha256::digest(&installed).into())
        .map_err(Checked::Format)?;
    Ok((verified, installed))
}

/// zstd frames decoded with `prefix` as a generation-2 device decodes them (the agent's
/// own decoder and limits).
fn decode(
    payload: &[u8],
    prefix: &[u8],
    window_log: u8,
    size: u32,
) -> Result<Vec<u8>, InstallError> {
    let compression = ota_format::Compression::ZstdFlashWindow { window_log };
    ota_agent::contents::decode_payload(compression, payload, prefix, size, MAX_WINDOW_LOG)
}

/// The payload for `choice`: its encoding, window log and bytes.
fn encode_payload(
    base: &[u8],
    target: &[u8],
    choice: EncodingChoice,
) -> Result<(DeltaEncoding, u8, Vec<u8>), DeltaError> {
    let patch_from = || {
        let window_log = covering_window_log(base.len() + target.len());
        encode(base, target, window_log, DEFAULT_LEVEL)
            .map(|p| (DeltaEncoding::PatchFrom, window_log, p))
    };
    let difference = || {
        let stream = difference_stream(base, target)?;
        let stream_size =
            u32::try_from(stream.len()).map_err(|_| DeltaError::TooLarge(stream.len()))?;
        let window_log = covering_window_log(stream.len());
        // The stream is mostly zero runs with sparse differences, where level 22's
        // larger search sometimes wins by ~8 % and sometimes loses (measured on the
        // firmware pairs, docs/BENCHMARKS.md): both, the smaller kept.
        let mut best = encode(&[], &stream, window_log, DEFAULT_LEVEL)?;
        let ultra = encode(&[], &stream, window_log, DIFFERENCE_ULTRA_LEVEL)?;
        if ultra.len() < best.len() {
            best = ultra;
        }
        Ok((DeltaEncoding::Difference { stream_size }, window_log, best))
    };
    match choice {
        EncodingChoice::PatchFrom => patch_from(),
        EncodingChoice::Difference => difference(),
        EncodingChoice::Auto => {
            let (a, b) = (patch_from()?, difference()?);
            Ok(if b.2.len() < a.2.len() { b } else { a })
        }
    }
}

/// The difference stream from `base` to `target` (delta encoding 3, before zstd): bsdiff's
/// control records (its matcher finds approximate matches, which is what moved code
/// needs) written by [`encode_stream`], which also applies the RISC-V address-pair rule.
pub fn difference_stream(base: &[u8], target: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut patch = Vec::new();
    bsdiff::diff(base, target, &mut patch).map_err(DeltaError::Compression)?;
    let records = records_from_bsdiff(&patch).map_err(|e| DeltaError::Matcher(e.to_string()))?;
    encode_stream(base, target, &records).map_err(|e| DeltaError::Matcher(e.to_string()))
}

/// The second zstd level a difference stream is compressed at (the first is
/// [`DEFAULT_LEVEL`]).
const DIFFERENCE_ULTRA_LEVEL: i32 = 22;

/// Caps on the decoded size of a block that [`encode`] tries, largest first. A delta's
/// blocks are mostly long copies (or runs of zero diff bytes), so a block decoding to far
/// more than 8 KiB often compresses to under 8 KiB, and fewer blocks cost fewer headers
/// and restarted entropy tables: on the ESP32-C3 firmware pairs of
/// `scripts/delta-pairs.sh` this made deltas ~10 % smaller (docs/BENCHMARKS.md).
const BLOCK_CAPS: [u32; 3] = [128 * 1024, 32 * 1024, crate::packaging::MAX_BLOCK];
/// Decoded bytes per piece when measuring where the data is dense ([`block_plan`]).
const PIECE: usize = 32 * 1024;
/// Compressed bytes a planned block aims to stay under: the device's 8 KiB block buffer,
/// less a margin for what a merged block costs beyond its pieces' sum.
const PLANNED_BLOCK: usize = 7 * 1024;

/// `target` as zstd frames whose first may copy from `base` (its raw prefix; empty: none),
/// within a `2^window_log` window, every compressed block within the device decoder's
/// 8 KiB. Tries, smallest output first as measured: one 128 KiB cap; then blocks planned
/// by density ([`block_plan`]: 128 KiB where the data compresses well, 8 KiB where it does
/// not); then caps of 32 and 8 KiB. Each try is checked with the device's decoder, and
/// the last always fits. At most five compressions bound the work.
fn encode(base: &[u8], target: &[u8], window_log: u8, level: i32) -> Result<Vec<u8>, DeltaError> {
    let size = u32::try_from(target.len()).map_err(|_| DeltaError::TooLarge(target.len()))?;
    let fits = |payload: &[u8]| {
        !matches!(
            decode(payload, base, window_log, size),
            Err(InstallError::Decompress(
                DecompressError::BlockTooLarge { .. }
            ))
        )
    };
    let params = |max_block| ZstdParams {
        max_block,
        ..ZstdParams::new(level, window_log)
    };
    let (large, _) = compress_cut(&params(BLOCK_CAPS[0]), base, target, &[])?;
    if fits(&large) {
        return Ok(large);
    }
    let cuts = block_plan(&params(BLOCK_CAPS[0]), base, target)?;
    let (planned, _) = compress_cut(&params(BLOCK_CAPS[0]), base, target, &cuts)?;
    if fits(&planned) {
        return Ok(planned);
    }
    let mut payload = Vec::new();
    for max_block in &BLOCK_CAPS[1..] {
        payload = compress_cut(&params(*max_block), base, target, &[])?.0;
        if fits(&payload) {
            break;
        }
    }
    // The last cap is the device's block size: every compressed block fits (the
    // self-check in `make` decodes it again either way).
    Ok(payload)
}

/// Compresses `data` into one frame, ending a block at each of `cuts` (decoded offsets,
/// increasing): a zstd flush ends the current block without touching the window. Returns
/// the frame and its length after each cut.
fn compress_cut(
    params: &ZstdParams,
    prefix: &[u8],
    data: &[u8],
    cuts: &[usize],
) -> Result<(Vec<u8>, Vec<usize>), DeltaError> {
    let mut encoder = params.encoder(prefix).map_err(DeltaError::Compression)?;
    encoder
        .set_pledged_src_size(Some(data.len() as u64))
        .map_err(DeltaError::Compression)?;
    let mut at = 0;
    let mut lengths = Vec::with_capacity(cuts.len());
    for &cut in cuts {
        encoder
            .write_all(&data[at..cut])
            .and_then(|()| encoder.flush())
            .map_err(DeltaError::Compression)?;
        lengths.push(encoder.get_ref().len());
        at = cut;
    }
    encoder
        .write_all(&data[at..])
        .map_err(DeltaError::Compression)?;
    Ok((encoder.finish().map_err(DeltaError::Compression)?, lengths))
}

/// Where to end blocks so that sparse stretches get 128 KiB blocks and dense ones 8 KiB:
/// one compression with a block ended every [`PIECE`] bytes measures each piece; pieces
/// over [`PLANNED_BLOCK`] are cut every 8 KiB, and consecutive others are merged while
/// their sum stays under it (and within 128 KiB decoded).
fn block_plan(params: &ZstdParams, prefix: &[u8], data: &[u8]) -> Result<Vec<usize>, DeltaError> {
    let probes: Vec<usize> = (PIECE..data.len()).step_by(PIECE).collect();
    let (_, lengths) = compress_cut(params, prefix, data, &probes)?;
    let fine = crate::packaging::MAX_BLOCK as usize;
    let mut cuts = Vec::new();
    let (mut since_cut, mut compressed, mut last_len) = (0usize, 0usize, 0usize);
    for (index, &end) in probes.iter().enumerate() {
        let start = end - PIECE;
        let piece = lengths[index] - last_len;
        last_len = lengths[index];
        if piece > PLANNED_BLOCK {
            if since_cut > 0 {
                cuts.push(start);
            }
            // As many equal blocks as the piece needs to stay under the plan, at
            // least 8 KiB of output each (the size that always fits).
            let parts = piece.div_ceil(PLANNED_BLOCK).min(PIECE / fine);
            cuts.extend((1..parts).map(|k| start + k * PIECE / parts));
            cuts.push(end);
            (since_cut, compressed) = (0, 0);
            continue;
        }
        if compressed + piece > PLANNED_BLOCK || since_cut + PIECE > BLOCK_CAPS[0] as usize {
            if since_cut > 0 {
                cuts.push(start);
            }
            (since_cut, compressed) = (0, 0);
        }
        since_cut += PIECE;
        compressed += piece;
    }
    cuts.dedup();
    Ok(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Machine-code-like bytes: compressible, like firmware, but far from uniform.
    fn firmware_like(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [0x13, 0x00, 0x97, 0xef, (x >> 56) as u8][(x % 5) as usize]
            })
            .collect()
    }

    #[test]
    fn deltas_use_larger_blocks_when_the_device_decodes_them_and_8_kib_otherwise() {
        let base = firmware_like(300_000, 7);
        let mut target = base.clone();
        // A few edits and an insertion, as a small fix moves code.
        for at in [1_000, 90_000, 200_000] {
            target[at..at + 40].fill(0x55);
        }
        target.splice(150_000..150_000, firmware_like(3_000, 9));
        let window_log = covering_window_log(base.len() + target.len());
        let adaptive = encode(&base, &target, window_log, DEFAULT_LEVEL).unwrap();
        let size = target.len() as u32;
        assert_eq!(decode(&adaptive, &base, window_log, size).unwrap(), target);
        let mut capped = ZstdParams::new(DEFAULT_LEVEL, window_log)
            .encoder(&base)
            .unwrap();
        capped.write_all(&target).unwrap();
        let capped = capped.finish().unwrap();
        assert!(
            adaptive.len() < capped.len(),
            "larger blocks should save bytes: {} vs {} with 8 KiB blocks",
            adaptive.len(),
            capped.len()
        );
        // An unrelated target compresses to blocks above 8 KiB with a large cap: the
        // device's block size is what remains, and the device decodes it.
        let other = firmware_like(300_000, 11);
        let fallback = encode(&base, &other, window_log, DEFAULT_LEVEL).unwrap();
        assert_eq!(
            decode(&fallback, &base, window_log, 300_000).unwrap(),
            other
        );
    }

    #[test]
    fn names_follow_the_device_rule_and_parse_back() {
        let digest = [0xab; 32];
        let n = delta_name("lamp-1.1.0-0123abcd.ota", &digest).unwrap();
        assert_eq!(delta_name_suffix(&digest), ".abababababababab.otad");
        assert_eq!(
            delta_name(&"x".repeat(80), &digest),
            None,
            "beyond the name rules"
        );
        assert_eq!(n, "lamp-1.1.0-0123abcd.ota.abababababababab.otad");
        assert_eq!(delta_target(&n), Some("lamp-1.1.0-0123abcd.ota"));
        for bad in [
            "lamp-1.1.0-0123abcd.ota.ABABABABABABABAB.otad",
            "lamp-1.1.0-0123abcd.ota.abab.otad",
            "lamp-1.1.0-0123abcd.abababababababab.otad",
            "lamp-1.1.0-0123abcd.ota",
        ] {
            assert_eq!(delta_target(bad), None, "{bad}");
        }
    }
}
