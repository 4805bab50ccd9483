//! Writes the inputs of the RV32IMC install-cost harness (`firmware/install-cost/harness`,
//! run by `scripts/install-cost.sh`), in the harness's container format (its
//! `src/input.rs`):
//!
//! - `full.input`: the app image as a signed `.ota`, zstd level 19, window log 23, blocks
//!   capped at 8 KiB (what the device decoder takes), no content checksum (as
//!   `ota-sign package`: the signed SHA-256 covers it), signed with test vector key A;
//! - `delta.input`: base = that app image, target = the same image edited (see [`edited`]),
//!   compressed against the base as raw prefix (libzstd `ref_prefix`, as
//!   `zstd --patch-from`), with both digests;
//! - `difference.input`: the same base and target as delta encoding 3: the difference
//!   stream (`ota_sign_lib::delta::difference_stream`) compressed as the delta frame is,
//!   but without a prefix and with the window covering the stream, with both digests and
//!   the stream's size;
//! - four that must fail: `bad-signature.input` (one signature bit flipped),
//!   `bad-payload.input` (one payload bit flipped), `wrong-base.input` (the running slot
//!   holds a different base than the delta was made against), `bad-stream.input` (a
//!   difference stream whose first control record reads past the end of the base).
//!
//! Usage: `ota-install-cost-inputs (--elf FIRMWARE.elf | --raw FILE) --out DIR`.
//! `--elf` converts an ESP32-C3 ELF exactly as `ota-sign package --elf` does; `--raw`
//! takes any file as the app image (a stand-in when the firmware is not built).
//! Deterministic: the same input gives the same files.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ed25519_dalek::SigningKey;
use ota_format::diff::{MAX_RECORD_LEN, Record, control_offset};
use ota_format::{ChipId, Compression, DeviceType, ImageInfo, KeyId, Version};
use sha2::{Digest, Sha256};
use zstd::zstd_safe::CParameter;

/// Test vector key A: its private half is published, as the harness's trusted key.
const KEY_SEED_HEX: &str =
    include_str!("../../../../format/tests/vectors/keys/TEST-ONLY-key-a.seed.hex");
const LEVEL: i32 = 19;
const WINDOW_LOG: u8 = 23;
/// The device decoder's block buffer (`Decoder<4096, 8192>`).
const MAX_BLOCK: u32 = 8192;
const MAGIC: &[u8; 8] = b"OTACOST1";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let usage = "usage: ota-install-cost-inputs (--elf FIRMWARE.elf | --raw FILE) --out DIR";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source_flag, source, out_flag, out] = args.as_slice() else {
        return Err(usage.into());
    };
    if out_flag != "--out" {
        return Err(usage.into());
    }
    let bytes = std::fs::read(source).map_err(|e| format!("{source}: {e}"))?;
    let app = match source_flag.as_str() {
        "--elf" => ota_sign_lib::input::to_app_image(
            &bytes,
            ChipId::ESP32C3,
            &ota_sign_lib::input::ElfOptions::default(),
        )?,
        "--raw" => bytes,
        _ => return Err(usage.into()),
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;

    let key = test_key()?;
    let (ota, header_len) = signed_image(&app, &key)?;
    write(&out, "full.input", &full_container(&ota))?;
    let mut bad_signature = ota.clone();
    bad_signature[header_len - 1] ^= 0x01;
    write(&out, "bad-signature.input", &full_container(&bad_signature))?;
    let mut bad_payload = ota.clone();
    bad_payload[header_len + (ota.len() - header_len) / 2] ^= 0x10;
    write(&out, "bad-payload.input", &full_container(&bad_payload))?;

    let target = edited(&app);
    let frame = zstd_frame(&app, &target)?;
    write(
        &out,
        "delta.input",
        &delta_container(&app, &app, &target, &frame),
    )?;
    let mut other_base = app.clone();
    other_base[app.len() / 2] ^= 0x01;
    write(
        &out,
        "wrong-base.input",
        &delta_container(&other_base, &app, &target, &frame),
    )?;

    let stream = ota_sign_lib::delta::difference_stream(&app, &target)?;
    let difference = zstd_frame(&[], &stream)?;
    write(
        &out,
        "difference.input",
        &difference_container(&app, &target, &stream, &difference)?,
    )?;
    let bad_stream = beyond_base(&stream, target.len(), app.len())?;
    write(
        &out,
        "bad-stream.input",
        &difference_container(&app, &target, &bad_stream, &zstd_frame(&[], &bad_stream)?)?,
    )?;

    println!(
        "app image {} B; full payload {} B (level {LEVEL}, window log {WINDOW_LOG}); \
         delta target {} B, frame {} B; difference stream {} B, frame {} B",
        app.len(),
        ota.len() - header_len,
        target.len(),
        frame.len(),
        stream.len(),
        difference.len()
    );
    Ok(())
}

fn test_key() -> Result<SigningKey> {
    let seed: [u8; 32] = hex::decode(KEY_SEED_HEX.trim())?
        .try_into()
        .map_err(|_| "the test key seed is not 32 bytes")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The `.ota` file and its header length.
fn signed_image(app: &[u8], key: &SigningKey) -> Result<(Vec<u8>, usize)> {
    let mut compressor = zstd::bulk::Compressor::new(LEVEL)?;
    for parameter in [
        CParameter::WindowLog(u32::from(WINDOW_LOG)),
        CParameter::MaxBlockSize(MAX_BLOCK),
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(false),
    ] {
        compressor.set_parameter(parameter)?;
    }
    let payload = compressor.compress(app)?;
    let info = ImageInfo {
        device_type: DeviceType::new("install-cost").ok_or("device type")?,
        chip: ChipId::ESP32C3,
        version: Version::new(1, 0, 0),
        security_counter: 1,
        created: 1_767_225_600,
        image_size: u32::try_from(app.len())?,
        payload_size: u32::try_from(payload.len())?,
        compression: Compression::ZstdFlashWindow {
            window_log: WINDOW_LOG,
        },
        payload_sha256: Sha256::digest(&payload).into(),
        image_sha256: Sha256::digest(app).into(),
        key_id: KeyId::of(&key.verifying_key().to_bytes()),
        flags: 0,
    };
    let header = info.sign(key)?;
    Ok(([header.as_slice(), &payload].concat(), header.len()))
}

/// The base image with the kind of change a new release makes, deterministically: a
/// 4-byte word rewritten at a random place per 4 KiB on average (constants, relocated
/// addresses) and 2 KiB of new, incompressible bytes inserted a third of the way in (a
/// changed function; everything after it moves).
fn edited(base: &[u8]) -> Vec<u8> {
    let mut rng = Rng(0x0051_6e5e_ed00_cafe);
    let mut target = base.to_vec();
    for _ in 0..base.len() / 4096 {
        let at = rng.below(target.len() - 4);
        target[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
    }
    let at = target.len() / 3;
    let inserted: Vec<u8> = (0..2048).map(|_| rng.next() as u8).collect();
    target.splice(at..at, inserted);
    target
}

/// `data` compressed against `prefix` as raw prefix, as `zstd --patch-from` does: long
/// distance matching and a window that spans prefix and data. An encoding-2 delta's
/// frame has the base as prefix; an encoding-3 delta's (the difference stream) none.
fn zstd_frame(prefix: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let span = (prefix.len() + data.len()).next_power_of_two();
    let window_log = span.trailing_zeros().max(10);
    // An empty prefix is none: libzstd treats a zero-length prefix as no prefix.
    let mut encoder = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), LEVEL, prefix)?;
    for parameter in [
        CParameter::WindowLog(window_log),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::MaxBlockSize(MAX_BLOCK),
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(false),
    ] {
        encoder.set_parameter(parameter)?;
    }
    encoder.set_pledged_src_size(Some(data.len() as u64))?;
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// `stream` (a difference stream for a `target_len`-byte image) with its first control
/// record replaced by one whose add run is one byte longer than the base: the device must
/// refuse it when it reads that record, before any base byte past the end.
fn beyond_base(stream: &[u8], target_len: usize, base_len: usize) -> Result<Vec<u8>> {
    let control = control_offset(u32::try_from(target_len)?) as usize;
    let mut first = [0u8; MAX_RECORD_LEN];
    let first_len = leb128_record_len(stream.get(control..).ok_or("no control records")?)?;
    let bad = Record {
        add_len: u32::try_from(base_len + 1)?,
        copy_len: 0,
        seek: 0,
    };
    let bad_len = bad.encode(&mut first);
    Ok([
        &stream[..control],
        &first[..bad_len],
        &stream[control + first_len..],
    ]
    .concat())
}

/// The encoded length of the control record at the start of `control`: three LEB128
/// values, each ending at a byte without the high bit.
fn leb128_record_len(control: &[u8]) -> Result<usize> {
    let mut values = 0;
    for (at, byte) in control.iter().enumerate() {
        if byte & 0x80 == 0 {
            values += 1;
            if values == 3 {
                return Ok(at + 1);
            }
        }
    }
    Err("the first control record is cut short".into())
}

fn full_container(ota: &[u8]) -> Vec<u8> {
    [MAGIC.as_slice(), &1u32.to_le_bytes(), ota].concat()
}

/// `running` is what the harness puts in the running slot; `base` what the delta was
/// made against (its digest is the one checked).
fn delta_container(running: &[u8], base: &[u8], target: &[u8], frame: &[u8]) -> Vec<u8> {
    let base_digest: [u8; 32] = Sha256::digest(base).into();
    let target_digest: [u8; 32] = Sha256::digest(target).into();
    [
        MAGIC.as_slice(),
        &2u32.to_le_bytes(),
        &(running.len() as u32).to_le_bytes(),
        &(target.len() as u32).to_le_bytes(),
        &base_digest,
        &target_digest,
        running,
        frame,
    ]
    .concat()
}

/// Kind 3: as kind 2 (the running slot holds the base), then the stream's size and the
/// frame of the difference stream `stream`.
fn difference_container(
    base: &[u8],
    target: &[u8],
    stream: &[u8],
    frame: &[u8],
) -> Result<Vec<u8>> {
    let base_digest: [u8; 32] = Sha256::digest(base).into();
    let target_digest: [u8; 32] = Sha256::digest(target).into();
    Ok([
        MAGIC.as_slice(),
        &3u32.to_le_bytes(),
        &u32::try_from(base.len())?.to_le_bytes(),
        &u32::try_from(target.len())?.to_le_bytes(),
        &base_digest,
        &target_digest,
        &u32::try_from(stream.len())?.to_le_bytes(),
        base,
        frame,
    ]
    .concat())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// xorshift64*: deterministic edits without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
