use sha2::{Digest, Sha256};

use super::*;
use crate::chip::ChipId;
use crate::descriptor::TrustedKeyDescriptor;
use crate::error::FormatError;

extern crate std;
use std::vec::Vec;

/// Builds an image the way esptool/espflash do: header, segments, zero padding,
/// checksum, optional SHA-256.
fn build(chip: ChipId, segments: &[(u32, Vec<u8>)], hash: bool) -> Vec<u8> {
    let header = ImageHeader {
        magic: IMAGE_MAGIC,
        segment_count: segments.len() as u8,
        spi_mode: 2,
        spi_speed: 0,
        spi_size: 2,
        entry_addr: 0x4200_0020,
        wp_pin: 0xEE,
        spi_pin_drv: [0; 3],
        chip_id: chip,
        min_chip_rev: 0,
        min_chip_rev_full: 0,
        max_chip_rev_full: 0xFFFF,
        reserved: [0; 4],
        hash_appended: hash as u8,
    };
    let mut out = header.encode().to_vec();
    let mut checksum = CHECKSUM_SEED;
    for (addr, data) in segments {
        let seg = SegmentHeader {
            load_addr: *addr,
            data_len: data.len() as u32,
        };
        out.extend_from_slice(&seg.encode());
        out.extend_from_slice(data);
        checksum = data.iter().fold(checksum, |c, b| c ^ b);
    }
    while out.len() % 16 != 15 {
        out.push(0);
    }
    out.push(checksum);
    if hash {
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
    }
    out
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn desc_segment(version: &str, extra: usize) -> Vec<u8> {
    let mut seg = AppDescriptor::new(version, "thermostat")
        .unwrap()
        .to_bytes()
        .to_vec();
    seg.extend_from_slice(&data(extra, 7));
    seg
}

fn good() -> Vec<u8> {
    build(
        ChipId::ESP32C3,
        &[
            (0x3C00_0020, desc_segment("1.2.3", 100)),
            (0x3FC8_0000, data(64, 1)),
            (0x4200_0020, data(1000, 2)),
        ],
        true,
    )
}

fn opts() -> ValidateOptions {
    ValidateOptions::default().chip(ChipId::ESP32C3)
}

#[test]
fn good_image_reports_its_structure() {
    let image = good();
    let info = validate(&image, opts()).unwrap();
    assert_eq!(info.len as usize, image.len());
    assert_eq!(
        info.len % 16,
        0,
        "checksum ends a block, digest is 32 bytes"
    );
    assert_eq!(info.chip(), ChipId::ESP32C3);
    assert_eq!(info.segments().len(), 3);
    assert_eq!(info.segments()[0].data_offset as usize, APP_DESC_OFFSET);
    assert_eq!(info.segments()[2].load_addr, 0x4200_0020);
    assert_eq!(info.segments()[2].len, 1000);
    let hashed = image.len() - 32;
    assert_eq!(info.checksum, image[hashed - 1]);
    assert_eq!(
        info.appended_digest.unwrap()[..],
        Sha256::digest(&image[..hashed])[..]
    );
    assert_eq!(info.image_sha256[..], Sha256::digest(&image)[..]);
    assert_eq!(info.app_descriptor().unwrap().version(), "1.2.3");
}

#[test]
fn any_chunking_gives_the_same_report() {
    let image = good();
    let whole = validate(&image, opts()).unwrap();
    for size in 1..=70 {
        let mut v = AppImageValidator::new(opts());
        for chunk in image.chunks(size) {
            assert_eq!(v.update(chunk).unwrap(), chunk.len());
        }
        assert_eq!(v.finish().unwrap(), whole, "chunk size {size}");
    }
    for split in 0..=image.len() {
        let mut v = AppImageValidator::new(opts());
        v.update(&image[..split]).unwrap();
        v.update(&image[split..]).unwrap();
        assert_eq!(v.finish().unwrap(), whole, "split at {split}");
    }
}

#[test]
fn slot_read_back_stops_at_the_image_end() {
    let image = good();
    let mut slot = image.clone();
    slot.resize(image.len() + 5000, 0xFF);
    let mut v =
        AppImageValidator::new(opts().signature_sector(SignatureSectorPolicy::StopAtImageEnd));
    let mut used = 0;
    for chunk in slot.chunks(4096) {
        let n = v.update(chunk).unwrap();
        used += n;
        if n < chunk.len() {
            break;
        }
    }
    assert_eq!(used, image.len());
    assert!(v.is_done());
    assert_eq!(v.consumed() as usize, image.len());
    assert_eq!(v.update(&[0xFF; 16]).unwrap(), 0);
    assert_eq!(v.finish().unwrap().len as usize, image.len());
}

#[test]
fn every_truncation_is_truncated() {
    let image = good();
    for len in 0..image.len() {
        assert_eq!(
            validate(&image[..len], opts()).unwrap_err(),
            AppImageError::Truncated,
            "length {len}"
        );
    }
}

#[test]
fn every_single_byte_change_is_rejected() {
    let image = good();
    for at in 0..image.len() {
        let mut bad = image.clone();
        bad[at] ^= 0x01;
        assert!(validate(&bad, opts()).is_err(), "flip at {at} accepted");
    }
}

#[test]
fn trailing_bytes_are_rejected_in_one_shot_validation() {
    let mut image = good();
    image.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::TrailingBytes { len: 3 }
    );
}

#[test]
fn bad_magic() {
    let mut image = good();
    image[0] = 0xEA;
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::BadMagic { found: 0xEA }
    );
}

#[test]
fn segment_count_limits() {
    let none = build(ChipId::ESP32C3, &[], true);
    assert_eq!(
        validate(&none, opts()).unwrap_err(),
        AppImageError::NoSegments
    );
    let segs: Vec<_> = (0..17)
        .map(|i| (0x3FC8_0000 + i * 4, data(4, i as u8)))
        .collect();
    let many = build(ChipId::ESP32C3, &segs, true);
    assert_eq!(
        validate(&many, opts()).unwrap_err(),
        AppImageError::TooManySegments { count: 17 }
    );
    let sixteen = build(ChipId::ESP32C3, &segs[..16], true);
    assert_eq!(validate(&sixteen, opts()).unwrap().segments().len(), 16);
}

#[test]
fn segment_length_not_multiple_of_four() {
    let image = build(ChipId::ESP32C3, &[(0x3FC8_0000, data(6, 0))], true);
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::SegmentMisaligned { index: 0, len: 6 }
    );
}

#[test]
fn segment_length_overflow_and_limit() {
    let mut image = good();
    // Second segment header: after header, first segment header and data.
    let at = IMAGE_HEADER_LEN + 8 + APP_DESC_LEN + 100 + 4;
    image[at..at + 4].copy_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::SegmentTooLarge {
            index: 1,
            len: 0xFFFF_FFFC
        }
    );
    let image = good();
    let small = opts().max_len(1000);
    assert_eq!(
        validate(&image, small).unwrap_err(),
        AppImageError::SegmentTooLarge {
            index: 2,
            len: 1000
        }
    );
    // Data fits, but padding + checksum + digest do not.
    let tight = opts().max_len(image.len() as u32 - 1);
    assert_eq!(
        validate(&image, tight).unwrap_err(),
        AppImageError::ImageTooLarge {
            max: image.len() as u32 - 1
        }
    );
    assert!(validate(&image, opts().max_len(image.len() as u32)).is_ok());
}

#[test]
fn non_zero_padding() {
    let mut image = good();
    let cs = image.len() - 33;
    assert_eq!(image[cs - 1], 0, "this image has padding");
    image[cs - 1] = 0x55;
    // Rewrites checksum and digest so that only the padding is wrong. ota-testkit links
    // its own copy of this crate, which is fine for a function of bytes.
    ota_testkit::reseal(&mut image);
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::NonZeroPadding {
            offset: cs as u32 - 1
        }
    );
}

#[test]
fn checksum_mismatch() {
    let mut image = good();
    let cs = image.len() - 33;
    let stored = image[cs];
    image[cs] ^= 0xFF;
    let digest = Sha256::digest(&image[..=cs]);
    image[cs + 1..].copy_from_slice(&digest);
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::ChecksumMismatch {
            computed: stored,
            stored: stored ^ 0xFF
        }
    );
}

#[test]
fn digest_mismatch() {
    let mut image = good();
    let last = image.len() - 1;
    image[last] ^= 0x80;
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::DigestMismatch
    );
}

#[test]
fn digest_policy() {
    let image = build(
        ChipId::ESP32C3,
        &[(0x3C00_0020, desc_segment("1.0.0", 0))],
        false,
    );
    assert_eq!(
        validate(&image, opts()).unwrap_err(),
        AppImageError::DigestMissing
    );
    let info = validate(&image, opts().digest(DigestPolicy::IfPresent)).unwrap();
    assert_eq!(info.appended_digest, None);
    assert_eq!(info.len as usize, image.len());
    assert_eq!(info.len % 16, 0);
    // A digest that is present must match even when optional.
    let mut hashed = good();
    let last = hashed.len() - 1;
    hashed[last] ^= 1;
    assert_eq!(
        validate(&hashed, opts().digest(DigestPolicy::IfPresent)).unwrap_err(),
        AppImageError::DigestMismatch
    );
}

#[test]
fn wrong_chip() {
    let image = good();
    assert_eq!(
        validate(&image, ValidateOptions::default().chip(ChipId::ESP32S3)).unwrap_err(),
        AppImageError::WrongChip {
            expected: ChipId::ESP32S3,
            found: ChipId::ESP32C3
        }
    );
    assert_eq!(
        validate(&image, ValidateOptions::default()).unwrap().chip(),
        ChipId::ESP32C3
    );
}

#[test]
fn errors_are_sticky() {
    let mut image = good();
    image[0] = 0;
    let mut v = AppImageValidator::new(opts());
    let err = v.update(&image[..30]).unwrap_err();
    assert_eq!(err, AppImageError::BadMagic { found: 0 });
    assert_eq!(v.update(&image[30..]).unwrap_err(), err);
    assert_eq!(v.finish().unwrap_err(), err);
}

#[test]
fn app_descriptor_round_trip() {
    let d = AppDescriptor::new("2.0.0-rc.1", "my-project")
        .unwrap()
        .with_build_time("12:34:56", "Jan  1 2025")
        .unwrap()
        .with_idf_ver("v5.3.1")
        .unwrap()
        .with_secure_version(3)
        .with_mmu_page_size(16);
    let bytes = d.to_bytes();
    assert_eq!(&bytes[..4], &[0x32, 0x54, 0xCD, 0xAB]);
    assert_eq!(&bytes[16..26], b"2.0.0-rc.1");
    assert_eq!(&bytes[48..58], b"my-project");
    assert_eq!(bytes[180], 16);
    let back = AppDescriptor::parse(&bytes).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.version(), "2.0.0-rc.1");
    assert_eq!(back.project_name(), "my-project");
    assert_eq!(back.time(), "12:34:56");
    assert_eq!(back.date(), "Jan  1 2025");
    assert_eq!(back.idf_ver(), "v5.3.1");
    assert_eq!(back.secure_version(), 3);
    assert_eq!(back.mmu_page_size(), 16);
    assert_eq!(back.app_elf_sha256(), [0; 32]);
}

#[test]
fn app_descriptor_full_width_text_without_nul() {
    let mut bytes = AppDescriptor::new("1.0.0", "p").unwrap().to_bytes();
    bytes[48..80].copy_from_slice(&[b'x'; 32]);
    let d = AppDescriptor::parse(&bytes).unwrap();
    assert_eq!(d.project_name().len(), 32);
}

#[test]
fn app_descriptor_errors() {
    assert_eq!(
        AppDescriptor::new(&"1".repeat(32), "p").unwrap_err(),
        AppImageError::AppDescriptorInvalid { field: "version" }
    );
    assert_eq!(
        AppDescriptor::new("1.0.0", "a\0b").unwrap_err(),
        AppImageError::AppDescriptorInvalid {
            field: "project_name"
        }
    );
    let mut bytes = AppDescriptor::new("1.0.0", "p").unwrap().to_bytes();
    bytes[17] = 0xFF;
    assert_eq!(
        AppDescriptor::parse(&bytes).unwrap_err(),
        AppImageError::AppDescriptorInvalid { field: "version" }
    );
    bytes[0] = 0;
    assert_eq!(
        AppDescriptor::parse(&bytes).unwrap_err(),
        AppImageError::AppDescriptorMissing
    );
    let good = AppDescriptor::new("1.0.0", "p").unwrap().to_bytes();
    for len in 0..APP_DESC_LEN {
        assert_eq!(
            AppDescriptor::parse(&good[..len]).unwrap_err(),
            AppImageError::Truncated
        );
    }
}

/// Both ways of reading the app descriptor of `image` (directly and from a validated
/// image) say it has none.
fn assert_no_app_descriptor(image: &[u8]) {
    assert_eq!(
        AppDescriptor::find_in_image(image).unwrap_err(),
        AppImageError::AppDescriptorMissing
    );
    assert_eq!(
        validate(image, opts())
            .unwrap()
            .app_descriptor()
            .unwrap_err(),
        AppImageError::AppDescriptorMissing
    );
}

#[test]
fn descriptor_in_image() {
    let image = good();
    let d = AppDescriptor::find_in_image(&image).unwrap();
    assert_eq!(d.version(), "1.2.3");
    assert_eq!(d.project_name(), "thermostat");

    // First segment without the magic.
    let plain = build(ChipId::ESP32C3, &[(0x3C00_0020, data(512, 3))], true);
    assert_no_app_descriptor(&plain);
    // First segment too short to hold one, even if the magic happens to be there.
    let mut short_seg = APP_DESC_MAGIC.to_le_bytes().to_vec();
    short_seg.extend_from_slice(&[0; 60]);
    let short = build(
        ChipId::ESP32C3,
        &[(0x3C00_0020, short_seg), (0x3FC8_0000, data(400, 1))],
        true,
    );
    assert_no_app_descriptor(&short);
    assert_eq!(
        AppDescriptor::find_in_image(&[0xE8]).unwrap_err(),
        AppImageError::BadMagic { found: 0xE8 }
    );
    for len in 0..APP_DESC_OFFSET + APP_DESC_LEN {
        let err = AppDescriptor::find_in_image(&image[..len]).unwrap_err();
        assert_eq!(err, AppImageError::Truncated, "length {len}");
    }
}

#[test]
fn trusted_key_descriptor_in_image() {
    let keys = [[7u8; 32], [9u8; 32]];
    let kd = TrustedKeyDescriptor::new(&keys).to_bytes();
    let mut seg = desc_segment("1.0.0", 0);
    seg.extend_from_slice(&kd);
    let image = build(ChipId::ESP32, &[(0x3F40_0020, seg.clone())], true);
    let found = find_descriptors(&image).unwrap();
    assert_eq!(found.app.version(), "1.0.0");
    let trusted = found.trusted_keys.unwrap();
    assert_eq!(trusted.keys().len(), 2);
    assert_eq!(trusted.keys()[1].public_key, [9u8; 32]);

    let without = build(
        ChipId::ESP32,
        &[(0x3F40_0020, desc_segment("1.0.0", 0))],
        true,
    );
    assert_eq!(find_descriptors(&without).unwrap().trusted_keys, None);

    let other = TrustedKeyDescriptor::new(&[[1u8; 32]]).to_bytes();
    let mut two = seg;
    two.extend_from_slice(&other);
    let image = build(ChipId::ESP32, &[(0x3F40_0020, two)], true);
    assert_eq!(
        find_descriptors(&image).unwrap_err(),
        AppImageError::KeyDescriptor(FormatError::AmbiguousDescriptor)
    );
}

// Segments must be a multiple of 4 long, so appending descriptors needs no padding.
const _: () = assert!(crate::DESCRIPTOR_LEN.is_multiple_of(4));

#[test]
fn header_round_trip() {
    let image = good();
    let raw: [u8; IMAGE_HEADER_LEN] = image[..IMAGE_HEADER_LEN].try_into().unwrap();
    let h = ImageHeader::decode(&raw);
    assert_eq!(h.encode(), raw);
    assert_eq!(h.chip_id, ChipId::ESP32C3);
    assert_eq!(h.spi_size, 2);
    assert_eq!(h.wp_pin, 0xEE);
    assert_eq!(h.max_chip_rev_full, 0xFFFF);
    assert!(h.has_digest());
}

mod secure_boot_sector;
