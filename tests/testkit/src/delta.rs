//! Signed delta objects (`.otad`) for tests: what `ota-sign delta` makes, built here so
//! that device tests do not depend on the command line tool.

use std::io::Write;

use ota_format::{DeltaInfo, KeyId};
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

/// A delta whose payload is `payload`, whatever it holds (hostile or wrong payloads).
pub fn build_delta_with_payload(
    base: &[u8],
    target: &Release,
    signer: [u8; 32],
    payload: Vec<u8>,
    window_log: u8,
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
        encoding: ota_format::DeltaEncoding::PatchFrom,
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
    }
}
