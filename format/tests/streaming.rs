//! The streaming verifier: the verdict and the payload handed out do not depend on how the
//! file is cut into chunks; the header is complete and verified before any payload byte is
//! handed out; errors are final; bindings to the manifest are checked field by field.

mod common;

use common::*;
use ota_format::*;

/// Feeds `file` in chunks of `size`; returns the payload handed out and the verdict.
fn stream(
    file: &[u8],
    size: usize,
    keys: TrustedKeys<'_>,
    expect: Expectations<'_>,
) -> (Vec<u8>, Result<ImageHeader, FormatError>) {
    let mut v = ImageVerifier::new(keys, expect);
    let mut out = Vec::new();
    for chunk in file.chunks(size) {
        match v.feed(chunk) {
            Ok(payload) => {
                // Nothing is handed out before the header is verified.
                if !payload.is_empty() {
                    assert!(v.header().is_some());
                }
                out.extend_from_slice(payload);
            }
            Err(e) => {
                // Errors are final.
                assert_eq!(v.feed(&[0]).unwrap_err(), e);
                assert_eq!(v.finish().unwrap_err(), e);
                return (out, Err(e));
            }
        }
        assert!(v.payload_seen() as usize <= file.len().saturating_sub(IMAGE_HEADER_LEN));
    }
    (out, v.finish().map(|verified| verified.header))
}

#[test]
fn every_chunk_size_from_1_to_300_gives_the_same_result() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = valid_image();
    let whole = verify_image(&file, keys, Expectations::default()).unwrap();
    for size in 1..=300 {
        let (out, verdict) = stream(&file, size, keys, Expectations::default());
        assert_eq!(verdict.unwrap(), whole.header, "chunk size {size}");
        assert_eq!(out, payload(), "chunk size {size}");
    }
}

#[test]
fn hostile_files_fail_the_same_way_whatever_the_chunking() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = small_image();
    let h = IMAGE_HEADER_LEN;
    let mut cases: Vec<(&str, Vec<u8>, FormatError)> = Vec::new();
    let mut f = file.clone();
    f.push(0);
    cases.push(("trailing byte", f, FormatError::TrailingBytes));
    let mut f = file.clone();
    f[h + 5] ^= 1;
    cases.push(("payload bit", f, FormatError::PayloadDigestMismatch));
    let mut f = file.clone();
    f[h - 1] ^= 1;
    cases.push(("signature bit", f, FormatError::SignatureInvalid));
    cases.push((
        "truncated",
        file[..file.len() - 1].to_vec(),
        FormatError::Truncated,
    ));
    let mut f = file.clone();
    f[2] = b'X';
    cases.push(("bad magic", f, FormatError::BadMagic));
    for (name, bad, want) in &cases {
        assert_eq!(
            verify_image(bad, keys, Expectations::default()).unwrap_err(),
            *want,
            "{name}"
        );
        for size in 1..=300 {
            let (out, verdict) = stream(bad, size, keys, Expectations::default());
            assert_eq!(verdict.unwrap_err(), *want, "{name}, chunk size {size}");
            // A bad header hands out nothing; a bad payload at most the declared bytes.
            if matches!(want, FormatError::SignatureInvalid | FormatError::BadMagic) {
                assert!(out.is_empty(), "{name}, chunk size {size}");
            }
            assert!(out.len() <= 97);
        }
    }
}

#[test]
fn a_bad_magic_is_refused_at_the_first_byte() {
    let trusted = trusted();
    let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
    assert_eq!(v.feed(b"X").unwrap_err(), FormatError::BadMagic);
    let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
    v.feed(b"OTA").unwrap();
    assert_eq!(v.feed(b"M").unwrap_err(), FormatError::BadMagic);
    let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
    assert_eq!(
        v.feed(b"OTAI\x02\x00").unwrap_err(),
        FormatError::UnsupportedVersion
    );
    let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
    assert_eq!(
        v.feed(b"OTAI\x01\x00\x00\x08").unwrap_err(),
        FormatError::BadLength
    );
}

#[test]
fn the_header_is_verified_before_any_payload_byte_is_handed_out() {
    let trusted = trusted();
    let file = valid_image();
    let mut v = ImageVerifier::new(TrustedKeys::new(&trusted), Expectations::default());
    assert!(v.feed(&file[..IMAGE_HEADER_LEN - 1]).unwrap().is_empty());
    assert!(v.header().is_none());
    let out = v
        .feed(&file[IMAGE_HEADER_LEN - 1..IMAGE_HEADER_LEN + 10])
        .unwrap();
    assert_eq!(out, &file[IMAGE_HEADER_LEN..IMAGE_HEADER_LEN + 10]);
    assert_eq!(v.header().unwrap().info, info_for(&payload(), &key_a()));
}

#[test]
fn the_image_must_be_the_one_the_manifest_binds() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = valid_image();
    let info = info_for(&payload(), &key_a());
    let good = manifest_for(&file, &info);
    let check = |m: Manifest| {
        let vm = Manifest::verify(&m.sign(&key_a()).unwrap(), &keys).unwrap();
        let expect = Expectations {
            manifest: Some(&vm),
            ..Default::default()
        };
        verify_image(&file, keys, expect).map(|v| v.header)
    };
    assert!(check(good).is_ok());
    let mismatch = |f| Err(FormatError::ManifestFieldMismatch(f));
    let other = Version::parse("9.9.9").unwrap();
    assert_eq!(
        check(Manifest {
            device_type: DeviceType::new("doorbell").unwrap(),
            ..good
        }),
        mismatch(MismatchedField::DeviceType)
    );
    assert_eq!(
        check(Manifest {
            chip: ChipId::ESP32,
            ..good
        }),
        mismatch(MismatchedField::Chip)
    );
    assert_eq!(
        check(Manifest {
            version: other,
            ..good
        }),
        mismatch(MismatchedField::Version)
    );
    assert_eq!(
        check(Manifest {
            security_counter: 1,
            ..good
        }),
        mismatch(MismatchedField::SecurityCounter)
    );
    assert_eq!(
        check(Manifest {
            image_size: 2999,
            ..good
        }),
        mismatch(MismatchedField::ImageSize)
    );
    assert_eq!(
        check(Manifest {
            image_file_size: good.image_file_size - 1,
            ..good
        }),
        Err(FormatError::ManifestImageMismatch)
    );
    let mut other_header = good.image_header_sha256;
    other_header[31] ^= 1;
    assert_eq!(
        check(Manifest {
            image_header_sha256: other_header,
            ..good
        }),
        Err(FormatError::ManifestImageMismatch)
    );
}

#[test]
fn device_expectations_reject_other_types_and_chips() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = valid_image();
    let expect = |t: &str, c: ChipId| Expectations {
        device_type: Some(DeviceType::new(t).unwrap()),
        chip: Some(c),
        manifest: None,
    };
    assert!(verify_image(&file, keys, expect("thermostat", ChipId::ESP32C3)).is_ok());
    assert_eq!(
        verify_image(&file, keys, expect("doorbell", ChipId::ESP32C3)).unwrap_err(),
        FormatError::WrongDeviceType
    );
    assert_eq!(
        verify_image(&file, keys, expect("thermostat", ChipId::ESP32S3)).unwrap_err(),
        FormatError::WrongChip
    );
}

#[test]
fn the_installed_digest_is_checked_against_the_header() {
    let trusted = trusted();
    let file = valid_image();
    let header = verify_image(&file, TrustedKeys::new(&trusted), Expectations::default())
        .unwrap()
        .header;
    assert!(header.check_installed_digest(&sha(&payload())).is_ok());
    assert_eq!(
        header.check_installed_digest(&sha(b"something else")),
        Err(FormatError::InstalledDigestMismatch)
    );
    assert_eq!(header.file_size() as usize, file.len());
    assert_eq!(header.header_sha256(), &sha(&file[..IMAGE_HEADER_LEN]));
}

#[test]
fn a_key_among_several_is_chosen_by_its_id() {
    let both = [TrustedKey::new(pk(&key_b())), TrustedKey::new(pk(&key_a()))];
    let file = valid_image();
    assert!(verify_image(&file, TrustedKeys::new(&both), Expectations::default()).is_ok());
    let none: [TrustedKey; 0] = [];
    assert_eq!(
        verify_image(&file, TrustedKeys::new(&none), Expectations::default()).unwrap_err(),
        FormatError::UnknownKey
    );
}
