//! The signed delta object (`.otad`): a valid delta verifies whole and in any chunking,
//! and every field of the delta header, the carried target header, the payload and the
//! bindings to the running image and to the manifest is refused with its own error, in
//! the order docs/FORMAT.md gives ("Delta validation, in order").
//!
//! The verifier does not decode the payload (the agent does, against the base), so the
//! payload here is a few opaque bytes: only its size and digest are signed.

mod common;

use common::*;
use ota_format::*;

const D: usize = DELTA_HEADER_LEN;
const H: usize = IMAGE_HEADER_LEN;

/// The running image of the device (the delta's base): an installed image of 2000 bytes.
fn base() -> Vec<u8> {
    (0..2000u32)
        .map(|i| (i.wrapping_mul(7) % 253) as u8)
        .collect()
}

fn delta_payload() -> Vec<u8> {
    b"opaque delta payload: the verifier only hashes it".to_vec()
}

/// The valid delta from [`base`] to [`valid_image`], window log 20, signed by key A.
fn valid_delta() -> Vec<u8> {
    let target = valid_image();
    let info = delta_info_for(&base(), &target, &delta_payload(), 20, &key_a());
    delta_file(&info, &key_a(), &target, &delta_payload())
}

/// Everything a device that runs [`base`] and was offered the valid manifest expects.
fn full_expectations(manifest: &VerifiedManifest) -> DeltaExpectations<'_> {
    let base = base();
    DeltaExpectations {
        target: Expectations {
            manifest: Some(manifest),
            device_type: Some(DeviceType::new("thermostat").unwrap()),
            chip: Some(ChipId::ESP32C3),
        },
        base: Some((base.len() as u32, sha(&base))),
    }
}

fn verified_manifest(m: &Manifest) -> VerifiedManifest {
    let trusted = trusted();
    Manifest::verify(&m.sign(&key_a()).unwrap(), &TrustedKeys::new(&trusted)).unwrap()
}

/// The verdict with no expectations beyond the trusted key A.
fn verdict(file: &[u8]) -> Result<VerifiedDelta, FormatError> {
    let trusted = trusted();
    verify_delta(
        file,
        TrustedKeys::new(&trusted),
        DeltaExpectations::default(),
    )
}

fn error(file: &[u8]) -> FormatError {
    verdict(file).expect_err("a hostile delta was accepted")
}

/// The valid delta with its delta header changed by `patch` and signed again by key A,
/// so that the field rule, not the signature, is what refuses it.
fn resigned(patch: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut f = valid_delta();
    patch(&mut f);
    resign(&mut f, D, &key_a(), DELTA_DOMAIN);
    f
}

fn u32_at(f: &mut [u8], offset: usize, value: u32) {
    f[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Feeds `file` in the given chunks; returns the payload handed out and the verdict.
fn stream<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    expect: DeltaExpectations<'_>,
) -> (Vec<u8>, Result<VerifiedDelta, FormatError>) {
    let trusted = trusted();
    let mut v = DeltaVerifier::new(TrustedKeys::new(&trusted), expect);
    let mut out = Vec::new();
    for chunk in chunks {
        match v.feed(chunk) {
            Ok(payload) => {
                // No payload byte before both headers are verified.
                if !payload.is_empty() {
                    assert!(v.delta_header().is_some() && v.target_header().is_some());
                }
                out.extend_from_slice(payload);
            }
            Err(e) => {
                // Errors are final.
                assert_eq!(v.feed(&[]).unwrap_err(), e);
                assert_eq!(v.finish().unwrap_err(), e);
                return (out, Err(e));
            }
        }
    }
    (out, v.finish())
}

#[test]
fn a_valid_delta_verifies_and_carries_the_target_header() {
    let file = valid_delta();
    let manifest = verified_manifest(&valid_manifest());
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let verified = verify_delta(&file, keys, full_expectations(&manifest)).unwrap();
    let target = verify_image(&valid_image(), keys, Expectations::default()).unwrap();
    assert_eq!(verified.target, target.header);
    assert_eq!(verified.delta.header_len(), D);
    let info = verified.delta.info;
    assert_eq!(info.window_log, 20);
    assert_eq!(
        info.compression(),
        Compression::ZstdFlashWindow { window_log: 20 }
    );
    assert_eq!(info.base_sha256, sha(&base()));
    assert_eq!(info.target_header_sha256, sha(&valid_image()[..H]));
    // What a tool shows without verifying is what the signature covers.
    assert_eq!(inspect_delta_header(&file).unwrap(), (info, D));
    // The target header is the full image's, verbatim.
    assert_eq!(&file[D..D + H], &valid_image()[..H]);
}

#[test]
fn every_split_point_gives_the_same_result() {
    let file = valid_delta();
    let manifest = verified_manifest(&valid_manifest());
    let expect = full_expectations(&manifest);
    let trusted = trusted();
    let whole = verify_delta(&file, TrustedKeys::new(&trusted), expect).unwrap();
    for at in 0..=file.len() {
        let (a, b) = file.split_at(at);
        let (out, got) = stream([a, b].into_iter(), expect);
        assert_eq!(got.unwrap(), whole, "split at {at}");
        assert_eq!(out, delta_payload(), "split at {at}");
    }
    let (out, got) = stream(file.chunks(1), expect);
    assert_eq!(got.unwrap(), whole);
    assert_eq!(out, delta_payload());
}

#[test]
fn hostile_deltas_fail_the_same_way_at_every_split_point() {
    let mut trailing = valid_delta();
    trailing.push(0);
    let mut payload_bit = valid_delta();
    *payload_bit.last_mut().unwrap() ^= 1;
    let mut target_bit = valid_delta();
    target_bit[D + 0x40] ^= 1;
    let cases = [
        (trailing, FormatError::TrailingBytes),
        (payload_bit, FormatError::PayloadDigestMismatch),
        (target_bit, FormatError::DeltaTargetMismatch),
        (
            resigned(|f| f[0x0F] = 26),
            FormatError::InvalidField(FieldError::Compression),
        ),
    ];
    for (file, want) in &cases {
        assert_eq!(error(file), *want);
        for at in 0..=file.len() {
            let (a, b) = file.split_at(at);
            let (_, got) = stream([a, b].into_iter(), DeltaExpectations::default());
            assert_eq!(got.unwrap_err(), *want, "split at {at}");
        }
    }
}

#[test]
fn truncated_at_every_length_is_truncated() {
    let file = valid_delta();
    for len in 0..file.len() {
        assert_eq!(error(&file[..len]), FormatError::Truncated, "length {len}");
    }
}

#[test]
fn a_trailing_byte_is_refused_as_it_arrives() {
    let mut file = valid_delta();
    file.push(0);
    assert_eq!(error(&file), FormatError::TrailingBytes);
    let trusted = trusted();
    let mut v = DeltaVerifier::new(TrustedKeys::new(&trusted), DeltaExpectations::default());
    v.feed(&file[..file.len() - 1]).unwrap();
    assert_eq!(v.feed(&[0]).unwrap_err(), FormatError::TrailingBytes);
}

#[test]
fn a_changed_payload_is_a_payload_digest_mismatch() {
    let len = valid_delta().len();
    for offset in D + H..len {
        let mut f = valid_delta();
        f[offset] ^= 0x80;
        assert_eq!(
            error(&f),
            FormatError::PayloadDigestMismatch,
            "offset {offset}"
        );
    }
    // A payload digest that is not the payload's, validly signed.
    let f = resigned(|f| f[0x78] ^= 1);
    assert_eq!(error(&f), FormatError::PayloadDigestMismatch);
}

#[test]
fn the_prefix_of_the_delta_header_is_checked_as_it_arrives() {
    for offset in 0..4 {
        let mut f = valid_delta();
        f[offset] ^= 0x20;
        assert_eq!(error(&f), FormatError::BadMagic, "offset {offset}");
        // The first wrong byte alone is enough.
        assert_eq!(
            error(&f[..=offset]),
            FormatError::BadMagic,
            "offset {offset}"
        );
    }
    // An image is not a delta, and a delta is not an image.
    assert_eq!(error(&valid_image()), FormatError::BadMagic);
    let trusted = trusted();
    assert_eq!(
        verify_image(
            &valid_delta(),
            TrustedKeys::new(&trusted),
            Expectations::default()
        )
        .unwrap_err(),
        FormatError::BadMagic
    );
    let mut f = valid_delta();
    f[4] = 2;
    assert_eq!(error(&f), FormatError::UnsupportedVersion);
    for len in [0u16, 255, 1025, 0xFFFF] {
        let mut f = valid_delta();
        f[6..8].copy_from_slice(&len.to_le_bytes());
        assert_eq!(error(&f), FormatError::BadLength, "length {len}");
    }
}

#[test]
fn each_delta_header_field_has_its_error() {
    let compression = FormatError::InvalidField(FieldError::Compression);
    let sizes = FormatError::InvalidField(FieldError::Sizes);
    for bit in 0..16 {
        let f = resigned(|f| u32_at(f, 0x08, 1 << bit));
        assert_eq!(
            error(&f),
            FormatError::UnknownCriticalFlag,
            "flag bit {bit}"
        );
    }
    // 2 and 3 are defined; 3 with the stream size 0xA0 left zero is `Sizes`.
    for method in [0u8, 1, 4, 0xFF] {
        let f = resigned(|f| f[0x0E] = method);
        assert_eq!(error(&f), compression, "method {method}");
    }
    let f = resigned(|f| f[0x0E] = 3);
    assert_eq!(error(&f), sizes, "method 3, stream size 0");
    for log in [0u8, 9, 26, 31, 0xFF] {
        let f = resigned(|f| f[0x0F] = log);
        assert_eq!(error(&f), compression, "window log {log}");
    }
    let f = resigned(|f| f[0x10] = b'T');
    assert_eq!(error(&f), FormatError::InvalidField(FieldError::DeviceType));
    let f = resigned(|f| f[0x10..0x30].fill(0));
    assert_eq!(error(&f), FormatError::InvalidField(FieldError::DeviceType));
    for (offset, value) in [
        (0x30, 0),
        (0x30, MAX_IMAGE_SIZE + 1),
        (0x34, 0),
        (0x34, MAX_PAYLOAD_SIZE + 1),
    ] {
        let f = resigned(|f| u32_at(f, offset, value));
        assert_eq!(error(&f), sizes, "{offset:#x} = {value}");
    }
    // The signature: its key id, its bytes, and what it covers.
    let f = resigned(|f| f[0x98] ^= 1);
    assert_eq!(error(&f), FormatError::UnknownKey);
    let mut f = valid_delta();
    f[D - 1] ^= 1;
    assert_eq!(error(&f), FormatError::SignatureInvalid);
    for offset in (0x38..0x98).chain(0xA0..D - 64) {
        let mut f = valid_delta();
        f[offset] ^= 0x01;
        assert_eq!(
            error(&f),
            FormatError::SignatureInvalid,
            "offset {offset:#x}"
        );
    }
}

#[test]
fn the_first_failing_check_is_the_one_reported() {
    let compression = FormatError::InvalidField(FieldError::Compression);
    // Critical flag before every field.
    let f = resigned(|f| {
        f[0x08] = 1;
        f[0x0E] = 1;
        f[0x10] = b'T';
    });
    assert_eq!(error(&f), FormatError::UnknownCriticalFlag);
    // Device type before compression, as in the image header.
    let f = resigned(|f| {
        f[0x0E] = 1;
        f[0x10] = b'T';
    });
    assert_eq!(error(&f), FormatError::InvalidField(FieldError::DeviceType));
    // Compression before sizes.
    let f = resigned(|f| {
        f[0x0F] = 9;
        u32_at(f, 0x30, 0);
    });
    assert_eq!(error(&f), compression);
    // Field rules before the signature.
    let mut f = valid_delta();
    f[0x0E] = 1;
    assert_eq!(error(&f), compression);
}

#[test]
fn the_window_log_bounds_are_10_and_25() {
    for log in [10u8, 25] {
        let f = resigned(|f| f[0x0F] = log);
        assert_eq!(verdict(&f).unwrap().delta.info.window_log, log);
    }
    let target = valid_image();
    for log in [9u8, 26] {
        let info = delta_info_for(&base(), &target, &delta_payload(), log, &key_a());
        assert_eq!(
            info.sign(&key_a()).unwrap_err(),
            FormatError::InvalidField(FieldError::Compression)
        );
    }
}

#[test]
fn informational_flags_and_the_extension_area_are_signed_but_ignored() {
    let f = resigned(|f| u32_at(f, 0x08, 0xFFFF_0000));
    assert_eq!(verdict(&f).unwrap().delta.info.flags, 0xFFFF_0000);
    let f = resigned(|f| f[0xA0..D - 64].fill(0xA5));
    verdict(&f).unwrap();
    // A longer delta header with an extension area: the target header starts at D.
    let valid = valid_delta();
    let mut long = valid[..D - 64].to_vec();
    long[6..8].copy_from_slice(&320u16.to_le_bytes());
    long.resize(320 - 64, 0);
    let sig = sign_raw(&key_a(), DELTA_DOMAIN, &long);
    long.extend_from_slice(&sig);
    long.extend_from_slice(&valid[D..]);
    assert_eq!(verdict(&long).unwrap().delta.header_len(), 320);
}

#[test]
fn a_delta_signed_by_an_untrusted_key_is_unknown_key() {
    let target = valid_image();
    let info = delta_info_for(&base(), &target, &delta_payload(), 20, &key_b());
    let f = delta_file(&info, &key_b(), &target, &delta_payload());
    assert_eq!(error(&f), FormatError::UnknownKey);
    // Key A's id over key B's signature.
    let info = DeltaInfo {
        key_id: KeyId::of(&pk(&key_a())),
        ..info
    };
    let mut f = delta_file(&info, &key_b(), &target, &delta_payload());
    let sig = sign_raw(&key_b(), DELTA_DOMAIN, &f[..D - 64]);
    f[D - 64..D].copy_from_slice(&sig);
    assert_eq!(error(&f), FormatError::SignatureInvalid);
}

#[test]
fn a_delta_for_another_base_is_refused_before_the_target_header() {
    let manifest = verified_manifest(&valid_manifest());
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = valid_delta();
    let mut other = base();
    other[0] ^= 1;
    for running in [
        (other.len() as u32, sha(&other)),
        (base().len() as u32 + 1, sha(&base())),
    ] {
        let expect = DeltaExpectations {
            base: Some(running),
            ..full_expectations(&manifest)
        };
        assert_eq!(
            verify_delta(&file, keys, expect).unwrap_err(),
            FormatError::DeltaBaseMismatch
        );
        // The delta header alone decides it.
        let (_, got) = stream([&file[..D]].into_iter(), expect);
        assert_eq!(got.unwrap_err(), FormatError::DeltaBaseMismatch);
    }
}

#[test]
fn a_target_header_other_than_the_named_one_is_refused() {
    let mismatch = FormatError::DeltaTargetMismatch;
    let delta = valid_delta();
    // Every byte of the target header after its prefix (magic, version, length).
    for offset in D + 8..D + H {
        let mut f = delta.clone();
        f[offset] ^= 0x01;
        assert_eq!(error(&f), mismatch, "target byte {:#x}", offset - D);
    }
    // The prefix is checked as it arrives, before the header is complete.
    let mut f = delta.clone();
    f[D] = b'X';
    assert_eq!(error(&f), FormatError::BadMagic);
    // Another valid image's header swapped in.
    let p = payload();
    let other_info = ImageInfo {
        version: Version::parse("1.2.4").unwrap(),
        ..info_for(&p, &key_a())
    };
    let other = image(&other_info, &key_a(), &p);
    let mut f = delta.clone();
    f[D..D + H].copy_from_slice(&other[..H]);
    assert_eq!(error(&f), mismatch);
    // The named digest changed, validly signed.
    assert_eq!(error(&resigned(|f| f[0x58] ^= 1)), mismatch);
}

/// A delta whose header names (and carries) `target`, with the delta header's own device
/// type and chip as given.
fn delta_to(target: &[u8], device_type: &str, chip: ChipId) -> Vec<u8> {
    let info = DeltaInfo {
        device_type: DeviceType::new(device_type).unwrap(),
        chip,
        ..delta_info_for(&base(), target, &delta_payload(), 20, &key_a())
    };
    delta_file(&info, &key_a(), target, &delta_payload())
}

#[test]
fn a_target_for_another_device_type_or_chip_is_refused() {
    let p = payload();
    let other_type = image(
        &ImageInfo {
            device_type: DeviceType::new("doorbell").unwrap(),
            ..info_for(&p, &key_a())
        },
        &key_a(),
        &p,
    );
    assert_eq!(
        error(&delta_to(&other_type, "thermostat", ChipId::ESP32C3)),
        FormatError::DeltaTargetMismatch
    );
    assert_eq!(
        error(&delta_to(&valid_image(), "thermostat", ChipId::ESP32S3)),
        FormatError::DeltaTargetMismatch
    );
    // Consistent, but not the device's: refused on the delta header already.
    let doorbell = delta_to(&other_type, "doorbell", ChipId::ESP32C3);
    verdict(&doorbell).unwrap();
    let manifest = verified_manifest(&valid_manifest());
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    assert_eq!(
        verify_delta(&doorbell[..D], keys, full_expectations(&manifest)).unwrap_err(),
        FormatError::WrongDeviceType
    );
    let mut c6 = delta_to(&valid_image(), "thermostat", ChipId::ESP32C3);
    c6[0x0C..0x0E].copy_from_slice(&ChipId::ESP32C6.0.to_le_bytes());
    resign(&mut c6, D, &key_a(), DELTA_DOMAIN);
    assert_eq!(
        verify_delta(&c6, keys, full_expectations(&manifest)).unwrap_err(),
        FormatError::WrongChip
    );
}

#[test]
fn a_named_target_header_must_pass_every_image_header_check() {
    // Signed by an untrusted key: the delta's signature does not stand in for it.
    let p = payload();
    let by_b = image(&info_for(&p, &key_b()), &key_b(), &p);
    assert_eq!(
        error(&delta_to(&by_b, "thermostat", ChipId::ESP32C3)),
        FormatError::UnknownKey
    );
}

#[test]
fn the_manifest_binding_is_checked_on_both_headers() {
    let trusted = trusted();
    let keys = TrustedKeys::new(&trusted);
    let file = valid_delta();
    // A manifest for another image: the delta header names another target.
    let p = payload();
    let other_info = ImageInfo {
        version: Version::parse("1.2.4").unwrap(),
        ..info_for(&p, &key_a())
    };
    let other = image(&other_info, &key_a(), &p);
    let m = verified_manifest(&manifest_for(&other, &other_info));
    assert_eq!(
        verify_delta(&file[..D], keys, full_expectations(&m)).unwrap_err(),
        FormatError::ManifestImageMismatch
    );
    // The right header digest but another file size: caught on the target header.
    let m = verified_manifest(&Manifest {
        image_file_size: valid_image().len() as u32 + 1,
        ..valid_manifest()
    });
    assert_eq!(
        verify_delta(&file, keys, full_expectations(&m)).unwrap_err(),
        FormatError::ManifestImageMismatch
    );
    // The right image, but the manifest says another version.
    let m = verified_manifest(&Manifest {
        version: Version::parse("1.2.4").unwrap(),
        ..valid_manifest()
    });
    assert_eq!(
        verify_delta(&file, keys, full_expectations(&m)).unwrap_err(),
        FormatError::ManifestFieldMismatch(MismatchedField::Version)
    );
}

#[test]
fn encoders_refuse_what_decoders_refuse() {
    let target = valid_image();
    let valid = delta_info_for(&base(), &target, &delta_payload(), 20, &key_a());
    let sizes = FormatError::InvalidField(FieldError::Sizes);
    for (info, want) in [
        (
            DeltaInfo { flags: 1, ..valid },
            FormatError::UnknownCriticalFlag,
        ),
        (
            DeltaInfo {
                base_size: 0,
                ..valid
            },
            sizes,
        ),
        (
            DeltaInfo {
                base_size: MAX_IMAGE_SIZE + 1,
                ..valid
            },
            sizes,
        ),
        (
            DeltaInfo {
                payload_size: 0,
                ..valid
            },
            sizes,
        ),
        (
            DeltaInfo {
                payload_size: MAX_PAYLOAD_SIZE + 1,
                ..valid
            },
            sizes,
        ),
    ] {
        assert_eq!(info.sign(&key_a()).unwrap_err(), want, "{info:?}");
    }
}

#[test]
fn image_headers_accept_method_2_with_window_logs_10_to_25() {
    let p = payload();
    let base = info_for(&p, &key_a());
    for log in [10u8, 17, 25] {
        let info = ImageInfo {
            compression: Compression::ZstdFlashWindow { window_log: log },
            ..base
        };
        // The payload need not decode for the header verifier; installing decodes it.
        let file = image(&info, &key_a(), &p);
        assert_eq!(&file[0x0E..0x10], &[2, log]);
        let trusted = trusted();
        let verified =
            verify_image(&file, TrustedKeys::new(&trusted), Expectations::default()).unwrap();
        assert_eq!(verified.header.info.compression, info.compression);
    }
    let compression = FormatError::InvalidField(FieldError::Compression);
    // The encoder refuses what the decoder refuses, for method 1 too.
    for log in [9u8, 32] {
        let info = ImageInfo {
            compression: Compression::Zstd { window_log: log },
            ..base
        };
        assert_eq!(
            info.sign(&key_a()).unwrap_err(),
            compression,
            "method 1, log {log}"
        );
    }
    for log in [0u8, 9, 26, 31] {
        let info = ImageInfo {
            compression: Compression::ZstdFlashWindow { window_log: log },
            ..base
        };
        assert_eq!(info.sign(&key_a()).unwrap_err(), compression, "log {log}");
        let mut file = valid_image();
        file[0x0E] = 2;
        file[0x0F] = log;
        resign(&mut file, H, &key_a(), IMAGE_DOMAIN);
        let trusted = trusted();
        assert_eq!(
            verify_image(&file, TrustedKeys::new(&trusted), Expectations::default()).unwrap_err(),
            compression,
            "log {log}"
        );
    }
}

#[test]
fn every_single_byte_change_is_rejected() {
    let file = valid_delta();
    for offset in 0..file.len() {
        for mask in [0x01, 0x80] {
            let mut f = file.clone();
            f[offset] ^= mask;
            let e = error(&f);
            // Past both prefixes, the rule that catches a change is unambiguous.
            let want = match offset {
                o if (0x38..0x98).contains(&o) || (0xA0..D).contains(&o) => {
                    Some(FormatError::SignatureInvalid)
                }
                o if (D + 8..D + H).contains(&o) => Some(FormatError::DeltaTargetMismatch),
                o if o >= D + H => Some(FormatError::PayloadDigestMismatch),
                _ => None,
            };
            if let Some(want) = want {
                assert_eq!(e, want, "offset {offset:#x} ^ {mask:#x}");
            }
        }
    }
}

#[test]
fn a_delta_is_named_after_its_image_and_the_start_of_its_base_digest() {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    digest[8..].fill(0xff);
    let name = ota_format::delta_file_name("lamp-1.1.0-0123abcd.ota", &digest).unwrap();
    assert_eq!(
        name.as_str(),
        "lamp-1.1.0-0123abcd.ota.0123456789abcdef.otad"
    );
    // 74 + 22 bytes is the longest name the rules allow; one more and there is no delta.
    assert!(ota_format::delta_file_name(&"a".repeat(74), &digest).is_some());
    assert_eq!(ota_format::delta_file_name(&"a".repeat(75), &digest), None);
}
