//! Finding the trusted-key descriptor in firmware: the rules of `find_in`, and the
//! streaming scanner giving the same answer however the firmware is cut into chunks.

use ota_format::{
    DESCRIPTOR_LEN, DESCRIPTOR_MAGIC, DescriptorScanner, FormatError, TrustedKeyDescriptor,
};
use proptest::prelude::*;

fn descriptor(first_key_byte: u8) -> [u8; DESCRIPTOR_LEN] {
    TrustedKeyDescriptor::new(&[[first_key_byte; 32], [9; 32]]).to_bytes()
}

fn firmware_with(len: usize, parts: &[(usize, &[u8])]) -> Vec<u8> {
    let mut fw: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    for (at, bytes) in parts {
        fw[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    fw
}

fn scan_in_chunks(
    firmware: &[u8],
    chunk: usize,
) -> Result<Option<TrustedKeyDescriptor>, FormatError> {
    let mut scanner = DescriptorScanner::new();
    for piece in firmware.chunks(chunk) {
        scanner.update(piece)?;
    }
    scanner.finish()
}

/// The rule as FORMAT.md states it, written the obvious way: every magic followed by a
/// well-formed descriptor counts, and they must all be the same.
fn reference(firmware: &[u8]) -> Result<Option<TrustedKeyDescriptor>, FormatError> {
    let mut found = None;
    for at in 0..firmware.len() {
        if firmware[at..].starts_with(&DESCRIPTOR_MAGIC)
            && let Ok(d) = TrustedKeyDescriptor::parse(&firmware[at..])
        {
            if found.is_some_and(|f| f != d) {
                return Err(FormatError::AmbiguousDescriptor);
            }
            found = Some(d);
        }
    }
    Ok(found)
}

/// The encoding of the one descriptor `find_in` finds in `fw`; panics if none or an error.
fn found_bytes(fw: &[u8]) -> [u8; DESCRIPTOR_LEN] {
    TrustedKeyDescriptor::find_in(fw)
        .unwrap()
        .expect("a descriptor is found")
        .to_bytes()
}

#[test]
fn finds_one_descriptor_anywhere() {
    let d = descriptor(1);
    for at in [0, 1, 275, 276, 551, 552, 1000, 4096 - DESCRIPTOR_LEN] {
        let fw = firmware_with(4096, &[(at, &d)]);
        assert_eq!(found_bytes(&fw), d, "descriptor at {at}");
    }
}

#[test]
fn no_descriptor_is_none() {
    assert_eq!(TrustedKeyDescriptor::find_in(&[]), Ok(None));
    assert_eq!(
        TrustedKeyDescriptor::find_in(&firmware_with(5000, &[])),
        Ok(None)
    );
}

#[test]
fn bare_magic_is_skipped() {
    // Firmware that parses descriptors keeps a copy of the magic for the comparison.
    let d = descriptor(1);
    let fw = firmware_with(4096, &[(100, &DESCRIPTOR_MAGIC), (2000, &d)]);
    assert_eq!(found_bytes(&fw), d);
    let only_magic = firmware_with(4096, &[(100, &DESCRIPTOR_MAGIC)]);
    assert_eq!(TrustedKeyDescriptor::find_in(&only_magic), Ok(None));
}

#[test]
fn descriptor_cut_short_by_the_end_is_not_one() {
    let d = descriptor(1);
    let fw = firmware_with(
        1000,
        &[(1000 - DESCRIPTOR_LEN + 1, &d[..DESCRIPTOR_LEN - 1])],
    );
    assert_eq!(TrustedKeyDescriptor::find_in(&fw), Ok(None));
    for chunk in [1, 16, 275, 276, 277, 1000] {
        assert_eq!(scan_in_chunks(&fw, chunk), Ok(None), "chunks of {chunk}");
    }
}

#[test]
fn two_copies_of_the_same_descriptor_are_fine() {
    let d = descriptor(1);
    let fw = firmware_with(4096, &[(10, &d), (3000, &d)]);
    assert_eq!(found_bytes(&fw), d);
}

#[test]
fn two_different_descriptors_are_ambiguous_in_any_chunking() {
    // The second one right after the first, and far from it.
    for second_at in [DESCRIPTOR_LEN, DESCRIPTOR_LEN + 1, 3000] {
        let fw = firmware_with(4096, &[(0, &descriptor(1)), (second_at, &descriptor(2))]);
        assert_eq!(
            TrustedKeyDescriptor::find_in(&fw),
            Err(FormatError::AmbiguousDescriptor)
        );
        for chunk in [1, 7, 276, 552, 553, 4096] {
            assert_eq!(
                scan_in_chunks(&fw, chunk),
                Err(FormatError::AmbiguousDescriptor),
                "second at {second_at}, chunks of {chunk}"
            );
        }
    }
}

#[test]
fn chunking_never_changes_the_answer() {
    let d = descriptor(3);
    // Descriptors straddling every kind of boundary: the scanner's window halves and
    // common read sizes.
    for at in [
        0, 15, 16, 275, 276, 277, 540, 551, 552, 553, 1023, 1024, 4000,
    ] {
        let fw = firmware_with(4500, &[(at, &d)]);
        for chunk in (1..=600).chain([1023, 1024, 4096, 4500]) {
            assert_eq!(
                scan_in_chunks(&fw, chunk).unwrap().map(|f| f.to_bytes()),
                Some(d),
                "descriptor at {at}, chunks of {chunk}"
            );
        }
    }
}

proptest! {
    #[test]
    fn scanner_agrees_with_the_reference(
        len in 0usize..3000,
        inserts in prop::collection::vec((0usize..3000, 0u8..4, 0u8..3), 0..4),
        chunk in 1usize..700,
    ) {
        let mut fw: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
        for (at, what, key) in inserts {
            // A whole descriptor, a bare magic, or a descriptor with a bad count byte.
            let mut bytes = descriptor(key).to_vec();
            match what {
                0 => bytes.truncate(DESCRIPTOR_MAGIC.len()),
                1 => bytes[17] = 0,
                _ => {}
            }
            if at + bytes.len() <= fw.len() {
                fw[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        let expected = reference(&fw);
        prop_assert_eq!(TrustedKeyDescriptor::find_in(&fw), expected);
        prop_assert_eq!(scan_in_chunks(&fw, chunk), expected);
    }
}
