//! Signed delta objects (`.otad`) for tests: what `ota-sign delta` makes, built here so
//! that device tests do not depend on the command line tool.

use std::io::Write;

use ota_format::diff::{Record, encode_stream};
use ota_format::{DeltaEncoding, DeltaInfo, KeyId};
use sha2::{Digest, Sha256};
use zstd::zstd_safe::CParameter;

use crate::release::{Release, signing_key};

/// A delta from `base` (the installed image a device runs) to `target`, signed with the
/// key of seed `signer`.
pub struct Delta {
    /// The `.otad` file: delta header, the target's image header verbatim, payload.
    pub file: Vec<u8>,
    /// Its file name beside the target image: `IMAGE.<16 hex digits>.otad`.
    pub name: String,
    /// The window log the header declares.
    pub window_log: u8,
    /// How its payload encodes the target.
    pub encoding: DeltaEncoding,
}

/// The window a delta needs: the base and the target both within reach, at least 2^10.
pub fn window_log_for(base_len: usize, target_len: usize) -> u8 {
    let span = (base_len + target_len).max(1024) as u64;
    (64 - (span - 1).leading_zeros()) as u8
}

/// The delta payload: `target` compressed with zstd level 19 against `base` as a raw
/// prefix (`ZSTD_CCtx_refPrefix`, what `zstd --patch-from` does), blocks within 8 KiB.
pub fn delta_payload(base: &[u8], target: &[u8], window_log: u8) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, base).unwrap();
    enc.set_parameter(CParameter::WindowLog(u32::from(window_log)))
        .unwrap();
    enc.set_parameter(CParameter::MaxBlockSize(ota_format::FLASH_WINDOW_MAX_BLOCK))
        .unwrap();
    enc.set_pledged_src_size(Some(target.len() as u64)).unwrap();
    enc.write_all(target).unwrap();
    enc.finish().unwrap()
}

/// The file name of the delta from the base with installed digest `base_sha256` to the
/// image `image_name`, written from FORMAT.md's rule rather than by calling
/// `ota_format::delta_file_name`: device tests then catch a device asking for another name.
pub fn delta_name(image_name: &str, base_sha256: &[u8; 32]) -> String {
    let hex: String = base_sha256[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{image_name}.{hex}.otad")
}

/// The delta from `base` to `target`'s image, signed by `signer`.
pub fn build_delta(base: &[u8], target: &Release, signer: [u8; 32]) -> Delta {
    let window_log = window_log_for(base.len(), target.app.len());
    build_delta_with_payload(
        base,
        target,
        signer,
        delta_payload(base, &target.app, window_log),
        window_log,
    )
}

/// A patch-from (encoding 2) delta whose payload is `payload`, whatever it holds
/// (hostile or wrong payloads).
pub fn build_delta_with_payload(
    base: &[u8],
    target: &Release,
    signer: [u8; 32],
    payload: Vec<u8>,
    window_log: u8,
) -> Delta {
    build_encoded_delta(
        base,
        target,
        signer,
        payload,
        window_log,
        DeltaEncoding::PatchFrom,
    )
}

/// The control records bsdiff's matcher finds for `target` against `base`
/// ([`ota_format::diff::records_from_bsdiff`]).
pub fn difference_records(base: &[u8], target: &[u8]) -> Vec<Record> {
    let mut patch = Vec::new();
    bsdiff::diff(base, target, &mut patch).unwrap();
    ota_format::diff::records_from_bsdiff(&patch).unwrap()
}

/// The difference stream (encoding 3) that turns `base` into `target`, with bsdiff's
/// records.
pub fn difference_stream(base: &[u8], target: &[u8]) -> Vec<u8> {
    encode_stream(base, target, &difference_records(base, target)).unwrap()
}

/// `stream`'s diff bytes (and padding) for an image of `image_len` bytes followed by
/// `records`, whatever they say: hostile difference streams, signed all the same.
pub fn stream_with_records(stream: &[u8], image_len: usize, records: &[Record]) -> Vec<u8> {
    let control = ota_format::diff::control_offset(image_len as u32) as usize;
    let mut out = stream[..control].to_vec();
    for record in records {
        let mut encoded = [0u8; ota_format::diff::MAX_RECORD_LEN];
        let len = record.encode(&mut encoded);
        out.extend_from_slice(&encoded[..len]);
    }
    out
}

/// The window an encoding-3 payload's frames use: the whole stream within reach (the
/// decoder's window is in flash), at most the format's limit for windows in flash.
pub fn difference_window_log(stream_len: usize) -> u8 {
    window_log_for(0, stream_len).min(ota_format::FLASH_WINDOW_MAX_LOG)
}

/// An encoding-3 payload: `stream` compressed as a method-2 image payload is (level 19,
/// blocks within 8 KiB), without a prefix.
pub fn difference_payload(stream: &[u8], window_log: u8) -> Vec<u8> {
    crate::release::compress(stream, window_log)
}

/// The encoding-3 (difference stream) delta from `base` to `target`'s image, signed by
/// `signer`.
pub fn build_difference_delta(base: &[u8], target: &Release, signer: [u8; 32]) -> Delta {
    let stream = difference_stream(base, &target.app);
    build_difference_delta_with_stream(base, target, signer, &stream)
}

/// An encoding-3 delta carrying `stream`, whatever it holds, as its difference stream
/// (its header's stream size is the stream's length).
pub fn build_difference_delta_with_stream(
    base: &[u8],
    target: &Release,
    signer: [u8; 32],
    stream: &[u8],
) -> Delta {
    let window_log = difference_window_log(stream.len());
    build_encoded_delta(
        base,
        target,
        signer,
        difference_payload(stream, window_log),
        window_log,
        DeltaEncoding::Difference {
            stream_size: stream.len() as u32,
        },
    )
}

/// A delta of any encoding whose header declares `window_log` and `encoding` and whose
/// payload is `payload`, whatever they hold.
pub fn build_encoded_delta(
    base: &[u8],
    target: &Release,
    signer: [u8; 32],
    payload: Vec<u8>,
    window_log: u8,
    encoding: DeltaEncoding,
) -> Delta {
    let header_len = u16::from_le_bytes([target.ota[6], target.ota[7]]) as usize;
    let target_header = &target.ota[..header_len];
    let info = ota_format::inspect_header(target_header).unwrap().0;
    let key = signing_key(signer);
    let base_sha256: [u8; 32] = Sha256::digest(base).into();
    let delta = DeltaInfo {
        device_type: info.device_type,
        chip: info.chip,
        window_log,
        encoding,
        base_size: base.len() as u32,
        payload_size: payload.len() as u32,
        base_sha256,
        target_header_sha256: Sha256::digest(target_header).into(),
        payload_sha256: Sha256::digest(&payload).into(),
        key_id: KeyId::of(&key.verifying_key().to_bytes()),
        flags: 0,
    }
    .sign(&key)
    .unwrap();
    let mut file = delta.to_vec();
    file.extend_from_slice(target_header);
    file.extend_from_slice(&payload);
    Delta {
        file,
        name: delta_name(&target.image_name, &base_sha256),
        window_log,
        encoding,
    }
}
