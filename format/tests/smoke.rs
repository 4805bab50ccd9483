//! The whole happy path in one place: sign an image and its manifest, verify both, then
//! stream the image one byte at a time under the manifest's expectations.

mod common;

use common::*;
use ota_format::*;

#[test]
fn image_and_manifest_round_trip() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let payload = payload();
    let info = info_for(&payload, &key_a());
    let mut file = image(&info, &key_a(), &payload);
    let verified = verify_image(&file, keys, Expectations::default()).unwrap();
    assert_eq!(verified.header.info, info);

    let manifest = manifest_for(&file, &info);
    let m = manifest.sign(&key_a()).unwrap();
    let vm = Manifest::verify(&m, &keys).unwrap();
    assert_eq!(vm.manifest(), &manifest);
    let expect = Expectations {
        manifest: Some(&vm),
        ..Default::default()
    };
    let mut v = ImageVerifier::new(keys, expect);
    let mut out = Vec::new();
    for b in &file {
        out.extend_from_slice(v.feed(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(out, payload);
    v.finish().unwrap();
    file.push(0);
    assert_eq!(
        verify_image(&file, keys, expect).unwrap_err(),
        FormatError::TrailingBytes
    );
}
