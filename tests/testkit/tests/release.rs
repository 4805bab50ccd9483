//! The release builder: a default release verifies end to end, and each knob lies in
//! exactly the place it names.

use ota_format::{
    Compression, Expectations, FormatError, Manifest, TrustedKey, TrustedKeys, inspect_header,
    verify_image,
};
use ota_testkit::release::{SIGNER, Spec, build, public_key, sign_manifest};
use ota_testkit::{Chip, TestFirmware};
use sha2::{Digest, Sha256};

const OTHER: [u8; 32] = [8; 32];

fn app() -> Vec<u8> {
    TestFirmware::new(Chip::Esp32c3)
        .version("1.1.0")
        .trusted_keys(&[public_key(SIGNER)])
        .payload_size(20_000)
        .seed(3)
        .app_image()
}

fn keys(seed: [u8; 32]) -> [TrustedKey; 1] {
    [TrustedKey::new(public_key(seed))]
}

#[test]
fn the_default_release_verifies_and_names_its_image() {
    let app = app();
    let rel = build(&Spec::default(), app.clone());
    assert_eq!(rel.app, app);
    assert_eq!(rel.image_name, "sensor-1.1.0.ota");

    let keys = keys(SIGNER);
    let image = verify_image(&rel.ota, TrustedKeys::new(&keys), Expectations::default()).unwrap();
    let info = image.header.info;
    assert_eq!(info.compression, Compression::Zstd { window_log: 12 });
    assert_eq!(info.image_size as usize, app.len());
    assert_eq!(info.image_sha256, <[u8; 32]>::from(Sha256::digest(&app)));
    assert_eq!(info.security_counter, 1);

    let manifest = Manifest::verify(&rel.manifest, &TrustedKeys::new(&keys)).unwrap();
    let m = manifest.manifest();
    assert_eq!(m.sequence, 2);
    assert_eq!(m.image_file_size as usize, rel.ota.len());
    assert_eq!(m.image_name.as_str(), "sensor-1.1.0.ota");
    assert_eq!(
        m.image_header_sha256,
        <[u8; 32]>::from(Sha256::digest(&rel.ota[..image.header.header_len()]))
    );
}

#[test]
fn a_stored_release_carries_the_app_as_its_payload() {
    let app = app();
    let rel = build(
        &Spec {
            window_log: None,
            ..Spec::default()
        },
        app.clone(),
    );
    let (info, header_len) = inspect_header(&rel.ota).unwrap();
    assert_eq!(info.compression, Compression::None);
    assert_eq!(&rel.ota[header_len..], &app[..]);
}

#[test]
fn header_lies_land_in_the_header_only() {
    let app = app();
    let rel = build(
        &Spec {
            window_log: Some(16),
            declared_window_log: Some(12),
            declared_image_size: Some(1234),
            declared_image_sha256: Some([0xAB; 32]),
            ..Spec::default()
        },
        app.clone(),
    );
    let (info, header_len) = inspect_header(&rel.ota).unwrap();
    assert_eq!(info.compression, Compression::Zstd { window_log: 12 });
    assert_eq!(info.image_size, 1234);
    assert_eq!(info.image_sha256, [0xAB; 32]);
    // The payload is still the app, compressed with the real window.
    let payload = &rel.ota[header_len..];
    assert_eq!(zstd::decode_all(payload).unwrap(), app);
    assert_eq!(
        info.payload_sha256,
        <[u8; 32]>::from(Sha256::digest(payload))
    );
}

#[test]
fn trailing_bytes_are_counted_in_the_manifest() {
    let rel = build(
        &Spec {
            trailing: 64,
            window_log: None,
            ..Spec::default()
        },
        app(),
    );
    let (_, header_len) = inspect_header(&rel.ota).unwrap();
    assert_eq!(rel.ota.len(), header_len + rel.app.len() + 64);
    let manifest = Manifest::verify(&rel.manifest, &TrustedKeys::new(&keys(SIGNER))).unwrap();
    assert_eq!(manifest.manifest().image_file_size as usize, rel.ota.len());
}

#[test]
fn the_manifest_signer_can_differ_from_the_image_signer() {
    let rel = build(
        &Spec {
            manifest_signer: Some(OTHER),
            image_name: Some("other.ota"),
            ..Spec::default()
        },
        app(),
    );
    assert_eq!(rel.image_name, "other.ota");
    assert_eq!(
        Manifest::verify(&rel.manifest, &TrustedKeys::new(&keys(SIGNER))).map(|_| ()),
        Err(FormatError::UnknownKey)
    );
    let manifest = Manifest::verify(&rel.manifest, &TrustedKeys::new(&keys(OTHER))).unwrap();
    assert_eq!(manifest.manifest().image_name.as_str(), "other.ota");
    // The image is still the signer's.
    verify_image(
        &rel.ota,
        TrustedKeys::new(&keys(SIGNER)),
        Expectations::default(),
    )
    .unwrap();
}

#[test]
fn sign_manifest_names_an_existing_image() {
    let rel = build(&Spec::default(), app());
    let (info, header_len) = inspect_header(&rel.ota).unwrap();
    let spec = Spec {
        sequence: 9,
        created: 1_764_000_000,
        ..Spec::default()
    };
    let bytes = sign_manifest(
        &spec,
        &info,
        &rel.ota[..header_len],
        rel.ota.len(),
        "again.ota",
    );
    let manifest = Manifest::verify(&bytes, &TrustedKeys::new(&keys(SIGNER))).unwrap();
    let m = manifest.manifest();
    assert_eq!((m.sequence, m.created), (9, 1_764_000_000));
    assert_eq!(m.version, info.version);
    assert_eq!(m.image_name.as_str(), "again.ota");
    assert_eq!(m.image_file_size as usize, rel.ota.len());
}
