//! The delta builder: encoding-3 deltas carry a difference stream from bsdiff's records
//! that patches the base into exactly the target, and that a change costs little.

use ota_format::diff::{DiffPatcher, SliceSource, control_offset};
use ota_format::{DeltaEncoding, TrustedKey, TrustedKeys, inspect_header, verify_delta};
use ota_testkit::delta::{build_difference_delta, difference_records, difference_stream};
use ota_testkit::fixture::{self as ts, Spec};
use ota_testkit::release::public_key;

/// `stream` applied to `base` as a device does, for an image of `image_size`.
fn patch(stream: &[u8], base: &[u8], image_size: u32) -> Vec<u8> {
    let mut patcher = DiffPatcher::new(image_size, base.len() as u32, stream.len() as u32).unwrap();
    let mut source = SliceSource {
        stream,
        base,
        control_offset: control_offset(image_size),
    };
    let mut out = vec![0u8; image_size as usize];
    // Pieces of a sector, as the device fills them.
    for piece in out.chunks_mut(4096) {
        patcher.fill(&mut source, piece).unwrap();
    }
    patcher.finish().unwrap();
    out
}

#[test]
fn bsdiff_records_cover_the_target_and_patch_the_base_into_it() {
    let base = ts::app_image("1.0.0", 60_000);
    let target = ts::app_image("1.1.0", 60_000);
    let records = difference_records(&base, &target);
    let covered: u64 = records
        .iter()
        .map(|r| u64::from(r.add_len) + u64::from(r.copy_len))
        .sum();
    assert_eq!(covered, target.len() as u64);
    // A version string changed: a few records, not one per byte.
    assert!(records.len() < 50, "{} records", records.len());
    assert!(records.iter().any(|r| r.add_len > 10_000));
    let stream = difference_stream(&base, &target);
    assert!(stream.len() >= control_offset(target.len() as u32) as usize);
    assert_eq!(patch(&stream, &base, target.len() as u32), target);
    // Another target size, and a base that is not a prefix of it.
    let other = ts::app_image("1.2.0", 45_000);
    let stream = difference_stream(&base, &other);
    assert_eq!(patch(&stream, &base, other.len() as u32), other);
}

#[test]
fn an_encoding_3_delta_is_signed_over_its_stream_size_and_decodes_to_the_target() {
    let base = ts::app_image("1.0.0", 60_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 60_000));
    let delta = build_difference_delta(&base, &release, ts::SEED);
    let keys = [TrustedKey::new(public_key(ts::SEED))];
    let verified = verify_delta(&delta.file, TrustedKeys::new(&keys), Default::default()).unwrap();
    let DeltaEncoding::Difference { stream_size } = verified.delta.info.encoding else {
        panic!("{:?}", verified.delta.info.encoding);
    };
    assert_eq!(delta.encoding, verified.delta.info.encoding);
    assert_eq!(verified.delta.info.window_log, delta.window_log);
    let header_len = verified.delta.header_len();
    let target_header_len = inspect_header(&delta.file[header_len..]).unwrap().1;
    let payload = &delta.file[header_len + target_header_len..];
    let stream = zstd::stream::decode_all(payload).unwrap();
    assert_eq!(stream.len(), stream_size as usize);
    assert_eq!(patch(&stream, &base, release.app.len() as u32), release.app);
    // The point of it: far smaller than the image compressed alone.
    let full = ota_testkit::release::compress(&release.app, 20);
    assert!(
        payload.len() * 5 < full.len(),
        "payload {} B, image alone {} B",
        payload.len(),
        full.len()
    );
}
