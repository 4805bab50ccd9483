use ed25519_dalek::SigningKey;
use ota_format::*;
use sha2::{Digest, Sha256};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

#[test]
fn image_and_manifest_round_trip() {
    let sk = key();
    let pk = sk.verifying_key().to_bytes();
    let trusted = [TrustedKey::new(pk)];
    let keys = TrustedKeys::new(&trusted);
    let payload = vec![0xAB; 5000];
    let digest: [u8; 32] = Sha256::digest(&payload).into();
    let info = ImageInfo {
        device_type: DeviceType::new("thermo").unwrap(),
        chip: ChipId::ESP32C3,
        version: Version::parse("1.2.3").unwrap(),
        security_counter: 3,
        created: 1_700_000_000,
        image_size: 5000,
        payload_size: 5000,
        compression: Compression::None,
        payload_sha256: digest,
        image_sha256: digest,
        key_id: KeyId::of(&pk),
        flags: 0,
    };
    let header = info.sign(&sk).unwrap();
    let mut file = header.to_vec();
    file.extend_from_slice(&payload);
    let verified = verify_image(&file, keys, Expectations::default()).unwrap();
    assert_eq!(verified.header.info, info);

    let manifest = Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel: Channel::new("stable").unwrap(),
        version: info.version,
        security_counter: 3,
        sequence: 1,
        created: 1_700_000_000,
        not_after: None,
        rollout: FULL_ROLLOUT,
        image_file_size: file.len() as u32,
        image_size: 5000,
        image_header_sha256: Sha256::digest(header).into(),
        min_running_version: None,
        allow_downgrade: false,
        image_name: ImageName::new("thermo-1.2.3-abcdef01.ota").unwrap(),
        key_id: KeyId::of(&pk),
    };
    let m = manifest.sign(&sk).unwrap();
    let vm = Manifest::verify(&m, &keys).unwrap();
    assert_eq!(vm.manifest(), &manifest);
    let expect = Expectations {
        manifest: Some(&vm),
        ..Default::default()
    };
    // byte at a time
    let mut v = ImageVerifier::new(keys, expect);
    let mut out = Vec::new();
    for b in &file {
        out.extend_from_slice(v.feed(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(out, payload);
    v.finish().unwrap();
    // trailing byte
    file.push(0);
    assert_eq!(
        verify_image(&file, keys, expect).unwrap_err(),
        FormatError::TrailingBytes
    );
}
