//! Every single-byte change, every truncation and a trailing byte: each is rejected, and
//! where the rule that must catch it is unambiguous, with that rule's error.

mod common;

use common::*;
use ota_format::*;

fn keys(trusted: &[TrustedKey]) -> TrustedKeys<'_> {
    TrustedKeys::new(trusted)
}

/// The error `verify_image` gives for `file` with no expectations; panics if it accepts it.
fn image_error(trusted: &[TrustedKey], file: &[u8]) -> FormatError {
    verify_image(file, keys(trusted), Expectations::default())
        .expect_err("a changed image was accepted")
}

/// Flips `mask(offset)` into each byte of `offsets` of the image `file`, one at a time,
/// and asserts that each change is rejected with `expected`.
fn assert_every_flip_is(
    file: &[u8],
    offsets: std::ops::Range<usize>,
    mask: impl Fn(usize) -> u8,
    expected: FormatError,
) {
    let trusted = trusted();
    for offset in offsets {
        let mask = mask(offset);
        assert_eq!(
            image_error(&trusted, &flipped(file, offset, mask)),
            expected,
            "offset {offset:#x} ^ {mask:#x}"
        );
    }
}

/// The valid manifest, signed by key A.
fn signed_manifest() -> [u8; MANIFEST_LEN] {
    valid_manifest().sign(&key_a()).unwrap()
}

/// `bytes` with `mask` XORed into the byte at `offset`.
fn flipped(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    bad[offset] ^= mask;
    bad
}

/// The errors a change inside the image header's signed fields may produce: the signature
/// covers them all, but a field rule may fire first.
fn is_header_rejection(e: FormatError) -> bool {
    matches!(
        e,
        FormatError::BadMagic
            | FormatError::UnsupportedVersion
            | FormatError::BadLength
            | FormatError::UnknownCriticalFlag
            | FormatError::InvalidField(_)
            | FormatError::UnknownKey
            | FormatError::SignatureInvalid
            | FormatError::Truncated
    )
}

#[test]
fn every_single_byte_change_of_the_image_header_is_rejected() {
    let trusted = trusted();
    let file = valid_image();
    verify_image(&file, keys(&trusted), Expectations::default()).unwrap();
    for offset in 0..IMAGE_HEADER_LEN {
        for mask in [0x01u8, 0xFF] {
            let err = verify_image(
                &flipped(&file, offset, mask),
                keys(&trusted),
                Expectations::default(),
            )
            .expect_err(&format!("offset {offset:#x} ^ {mask:#x} accepted"));
            let expected = match offset {
                0..4 => Some(FormatError::BadMagic),
                4..6 => Some(FormatError::UnsupportedVersion),
                // Every other signed byte: some rule, at the latest the signature.
                6..0xC0 => None,
                // The signature itself (including its R half, which no field rule reads).
                _ => Some(FormatError::SignatureInvalid),
            };
            match expected {
                Some(want) => assert_eq!(err, want, "offset {offset:#x} ^ {mask:#x}"),
                None => assert!(is_header_rejection(err), "offset {offset:#x}: {err:?}"),
            }
        }
    }
}

#[test]
fn every_single_byte_change_of_the_payload_is_a_digest_mismatch() {
    let file = small_image();
    let payload = IMAGE_HEADER_LEN..file.len();
    let mask = |offset: usize| if offset.is_multiple_of(2) { 0x01 } else { 0xFF };
    assert_every_flip_is(&file, payload, mask, FormatError::PayloadDigestMismatch);
}

#[test]
fn every_single_byte_change_of_the_manifest_is_rejected() {
    let trusted = trusted();
    let m = signed_manifest();
    Manifest::verify(&m, &keys(&trusted)).unwrap();
    for offset in 0..MANIFEST_LEN {
        for mask in [0x01u8, 0xFF] {
            let err = Manifest::verify(&flipped(&m, offset, mask), &keys(&trusted))
                .expect_err(&format!("offset {offset:#x} ^ {mask:#x} accepted"));
            match offset {
                0..4 => assert_eq!(err, FormatError::BadMagic),
                4..6 => assert_eq!(err, FormatError::UnsupportedVersion),
                // Any other length than 368 is either out of range or not the input's length.
                6..8 => assert!(
                    matches!(
                        err,
                        FormatError::BadLength
                            | FormatError::Truncated
                            | FormatError::TrailingBytes
                    ),
                    "offset {offset}: {err:?}"
                ),
                0x128..0x130 => assert_eq!(err, FormatError::UnknownKey, "key id {offset}"),
                0x130.. => assert_eq!(err, FormatError::SignatureInvalid, "signature {offset}"),
                _ => assert!(
                    matches!(
                        err,
                        FormatError::UnknownCriticalFlag
                            | FormatError::InvalidField(_)
                            | FormatError::SignatureInvalid
                    ),
                    "offset {offset:#x} ^ {mask:#x}: {err:?}"
                ),
            }
        }
    }
}

#[test]
fn changing_the_signer_key_id_of_an_image_is_unknown_key() {
    let key_id = 0xA8..0xB0;
    assert_every_flip_is(&valid_image(), key_id, |_| 0x01, FormatError::UnknownKey);
}

#[test]
fn every_truncation_of_an_image_is_truncated() {
    let trusted = trusted();
    let file = small_image();
    for len in 0..file.len() {
        assert_eq!(
            image_error(&trusted, &file[..len]),
            FormatError::Truncated,
            "cut at {len}"
        );
    }
    // The same through the streaming verifier: nothing fails until the end is declared.
    for len in [0, 1, 7, 8, 255, 256, 257, file.len() - 1] {
        let mut v = ImageVerifier::new(keys(&trusted), Expectations::default());
        v.feed(&file[..len]).unwrap();
        assert_eq!(
            v.finish().unwrap_err(),
            FormatError::Truncated,
            "cut at {len}"
        );
    }
}

#[test]
fn every_truncation_of_a_manifest_is_truncated() {
    let trusted = trusted();
    let m = signed_manifest();
    for len in 0..MANIFEST_LEN {
        assert_eq!(
            Manifest::verify(&m[..len], &keys(&trusted)).unwrap_err(),
            FormatError::Truncated,
            "cut at {len}"
        );
        assert_eq!(
            Manifest::inspect(&m[..len]).unwrap_err(),
            FormatError::Truncated
        );
    }
}

#[test]
fn every_truncation_of_a_descriptor_is_truncated() {
    let d = TrustedKeyDescriptor::new(&[pk(&key_a())]).to_bytes();
    for len in 0..DESCRIPTOR_LEN {
        assert_eq!(
            TrustedKeyDescriptor::parse(&d[..len]).unwrap_err(),
            FormatError::Truncated
        );
    }
    assert_eq!(TrustedKeyDescriptor::parse(&d).unwrap().keys().len(), 1);
}

#[test]
fn a_trailing_byte_is_rejected_whatever_its_value() {
    let trusted = trusted();
    let file = valid_image();
    let m = signed_manifest();
    for extra in [0x00u8, 0x01, 0xFF] {
        let mut f = file.clone();
        f.push(extra);
        assert_eq!(image_error(&trusted, &f), FormatError::TrailingBytes);
        let mut mm = m.to_vec();
        mm.push(extra);
        assert_eq!(
            Manifest::verify(&mm, &keys(&trusted)).unwrap_err(),
            FormatError::TrailingBytes
        );
    }
    // The trailing byte is refused when it arrives, before the digest could be checked,
    // and after the payload was accepted in full.
    let mut v = ImageVerifier::new(keys(&trusted), Expectations::default());
    assert_eq!(v.feed(&file).unwrap().len(), file.len() - IMAGE_HEADER_LEN);
    assert_eq!(v.feed(&[0]).unwrap_err(), FormatError::TrailingBytes);
    assert_eq!(v.payload_seen() as usize, file.len() - IMAGE_HEADER_LEN);
    assert_eq!(v.finish().unwrap_err(), FormatError::TrailingBytes);
}

#[test]
fn inspect_reads_unverified_fields_without_trusting_them() {
    let file = valid_image();
    let (info, len) = inspect_header(&file).unwrap();
    assert_eq!(len, IMAGE_HEADER_LEN);
    assert_eq!(info, info_for(&payload(), &key_a()));
    // A bad signature does not stop inspection, but does stop verification.
    let bad = flipped(&file, IMAGE_HEADER_LEN - 1, 1);
    assert_eq!(inspect_header(&bad).unwrap().0, info);
    assert_eq!(image_error(&trusted(), &bad), FormatError::SignatureInvalid);
}
