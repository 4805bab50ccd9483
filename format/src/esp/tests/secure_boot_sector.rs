//! The Secure Boot V2 signature sector after an app image: accepted exactly where
//! ESP-IDF puts it, refused everywhere else. Blocks here are well-formed but carry
//! made-up keys and signatures (the validator checks structure, CRC and the signed image
//! digest; `espsecure` checks real signatures in `cli/tests/secure_boot_cli.rs`).

use sha2::{Digest, Sha256};

use super::{good, opts};
use crate::esp::secure_boot::{
    self, RSA_KEY_MATERIAL_LEN, SIGNATURE_BLOCK_LEN, SIGNATURE_SECTOR_LEN, SecureBootError,
    SecureBootKeyDigest, SignatureScheme,
};
use crate::esp::*;

extern crate std;
use std::vec;
use std::vec::Vec;

const SECTOR: usize = SIGNATURE_SECTOR_LEN as usize;
const BLOCK: usize = SIGNATURE_BLOCK_LEN as usize;

/// The image padded with `0xFF` to the next 4 KiB boundary, as espsecure pads it.
fn padded(image: &[u8]) -> Vec<u8> {
    let mut out = image.to_vec();
    out.resize(image.len().next_multiple_of(SECTOR), 0xFF);
    out
}

/// An RSA (version 2) block signing `signed` with a made-up key chosen by `key_seed`.
fn rsa_block(signed: &[u8], key_seed: u8) -> Vec<u8> {
    let mut key = [0u8; RSA_KEY_MATERIAL_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(13).wrapping_add(key_seed);
    }
    secure_boot::rsa_block(&Sha256::digest(signed).into(), &key, &[key_seed; 384]).to_vec()
}

/// An ECDSA P-256 (version 3) block.
fn ecdsa_block(signed: &[u8], key_seed: u8) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    b[0] = 0xE7;
    b[1] = 3;
    b[4..36].copy_from_slice(&Sha256::digest(signed));
    b[36] = 2;
    for (i, byte) in b[37..165].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(7).wrapping_add(key_seed);
    }
    seal(&mut b);
    b
}

fn seal(block: &mut [u8]) {
    let crc = crc32_le(0, &block[..1196]);
    block[1196..1200].copy_from_slice(&crc.to_le_bytes());
}

/// `image`, padding, and a sector holding `blocks`.
fn signed_with(image: &[u8], blocks: &[Vec<u8>]) -> Vec<u8> {
    let blocks: Vec<[u8; BLOCK]> = blocks.iter().map(|b| b[..].try_into().unwrap()).collect();
    let mut out = padded(image);
    out.extend_from_slice(&secure_boot::sector(&blocks));
    out
}

fn signed(image: &[u8]) -> Vec<u8> {
    signed_with(image, &[rsa_block(&padded(image), 1)])
}

fn sb(e: SecureBootError) -> AppImageError {
    AppImageError::SecureBoot(e)
}

#[test]
fn a_sector_at_the_next_4k_boundary_is_part_of_the_installed_image() {
    let image = good();
    let file = signed(&image);
    let info = validate(&file, opts()).unwrap();
    assert_eq!(info.len as usize, image.len());
    assert_eq!(info.installed_len as usize, file.len());
    assert_eq!(info.image_sha256[..], Sha256::digest(&file)[..]);
    let sector = info.signature_sector.unwrap();
    assert_eq!(sector.offset as usize, padded(&image).len());
    let blocks: Vec<_> = sector.blocks().copied().collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].scheme, SignatureScheme::RsaPss3072);
    let block = &file[sector.offset as usize..][..BLOCK];
    let key = SecureBootKeyDigest(Sha256::digest(&block[36..812]).into());
    assert_eq!(blocks[0].key_digest, key);
    assert!(sector.names_key(&key));
    assert!(!sector.names_key(&SecureBootKeyDigest([0; 32])));
}

#[test]
fn three_blocks_of_both_schemes_are_reported_in_order() {
    let image = good();
    let p = padded(&image);
    let file = signed_with(
        &image,
        &[rsa_block(&p, 1), ecdsa_block(&p, 2), rsa_block(&p, 3)],
    );
    let info = validate(&file, opts()).unwrap();
    let sector = info.signature_sector.unwrap();
    let schemes: Vec<_> = sector.blocks().map(|b| b.scheme).collect();
    assert_eq!(
        schemes,
        [
            SignatureScheme::RsaPss3072,
            SignatureScheme::EcdsaP256,
            SignatureScheme::RsaPss3072
        ]
    );
    let ecdsa = &file[sector.offset as usize + BLOCK..][..101];
    assert_eq!(
        sector.blocks().nth(1).unwrap().key_digest.0[..],
        Sha256::digest(&ecdsa[36..101])[..]
    );
}

#[test]
fn any_chunking_of_a_signed_image_gives_the_same_report() {
    let file = signed(&good());
    let whole = validate(&file, opts()).unwrap();
    for size in [1, 7, 64, 1216, 4095, 4096, 5000] {
        let mut v = AppImageValidator::new(opts());
        for chunk in file.chunks(size) {
            assert_eq!(v.update(chunk).unwrap(), chunk.len(), "chunk size {size}");
        }
        assert!(v.is_done());
        assert_eq!(v.finish().unwrap(), whole, "chunk size {size}");
    }
}

#[test]
fn junk_after_the_image_is_still_refused() {
    let image = good();
    for junk in [&[0u8; 3][..], &[0xFF; 16], &[0xAB; 5000], &[0xFF; 8192]] {
        let mut file = image.clone();
        file.extend_from_slice(junk);
        assert_eq!(
            validate(&file, opts()).unwrap_err(),
            AppImageError::TrailingBytes {
                len: junk.len() as u32
            },
            "{} bytes of {:#x}",
            junk.len(),
            junk[0]
        );
    }
}

#[test]
fn a_sector_at_the_wrong_offset_is_refused() {
    let image = good();
    let p = padded(&image);
    let expected = p.len() as u32;
    // Appended straight after the image, without padding.
    let mut file = image.clone();
    file.extend_from_slice(&rsa_block(&image, 1));
    file.resize(image.len() + SECTOR, 0xFF);
    assert_eq!(
        validate(&file, opts()).unwrap_err(),
        sb(SecureBootError::Misplaced {
            found: image.len() as u32,
            expected
        })
    );
    // One sector too late.
    let mut late = p.clone();
    late.resize(p.len() + SECTOR, 0xFF);
    let block = rsa_block(&late, 1);
    late.extend_from_slice(&block);
    late.resize(p.len() + 2 * SECTOR, 0xFF);
    assert_eq!(
        validate(&late, opts()).unwrap_err(),
        sb(SecureBootError::Misplaced {
            found: expected + SECTOR as u32,
            expected
        })
    );
}

#[test]
fn every_truncation_of_the_sector_is_refused() {
    let image = good();
    let file = signed(&image);
    let start = padded(&image).len();
    for len in start + 1..file.len() {
        let e = validate(&file[..len], opts()).unwrap_err();
        assert_eq!(
            e,
            sb(SecureBootError::Truncated { offset: len as u32 }),
            "length {len}"
        );
    }
    // Only the padding: trailing bytes, not a sector.
    assert_eq!(
        validate(&file[..start], opts()).unwrap_err(),
        AppImageError::TrailingBytes {
            len: (start - image.len()) as u32
        }
    );
}

#[test]
fn a_crc_mismatch_is_refused_in_every_block() {
    let image = good();
    let p = padded(&image);
    for index in 0..3 {
        let mut blocks = vec![rsa_block(&p, 1), rsa_block(&p, 2), rsa_block(&p, 3)];
        blocks[index][500] ^= 1;
        let file = signed_with(&image, &blocks);
        assert_eq!(
            validate(&file, opts()).unwrap_err(),
            sb(SecureBootError::CrcMismatch { block: index as u8 })
        );
    }
}

#[test]
fn a_block_signing_another_image_is_refused() {
    let image = good();
    let mut other = padded(&image);
    other[40] ^= 1;
    let file = signed_with(&image, &[rsa_block(&other, 1)]);
    assert_eq!(
        validate(&file, opts()).unwrap_err(),
        sb(SecureBootError::ImageDigestMismatch { block: 0 })
    );
}

#[test]
fn every_malformed_block_field_has_its_error() {
    let image = good();
    let p = padded(&image);
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = rsa_block(&p, 1);
        edit(&mut b);
        seal(&mut b);
        validate(&signed_with(&image, &[b]), opts()).unwrap_err()
    };
    assert_eq!(
        with(&|b| b[1] = 1),
        sb(SecureBootError::UnknownVersion {
            block: 0,
            version: 1
        })
    );
    let sha384 = |b: &mut Vec<u8>| {
        b[1] = 3;
        b[2] = 1;
    };
    assert_eq!(
        with(&sha384),
        sb(SecureBootError::UnsupportedEcdsa { block: 0 })
    );
    assert_eq!(
        with(&|b| b[1210] = 1),
        sb(SecureBootError::BlockPaddingNotZero { block: 0 })
    );
}

#[test]
fn the_sector_must_be_erased_after_its_last_block_and_nothing_may_follow_it() {
    let image = good();
    let file = signed(&image);
    let start = padded(&image).len();
    for at in [start + BLOCK, start + 2 * BLOCK + 5, file.len() - 1] {
        let mut bad = file.clone();
        bad[at] = 0;
        assert_eq!(
            validate(&bad, opts()).unwrap_err(),
            sb(SecureBootError::FillNotErased { offset: at as u32 })
        );
    }
    let mut longer = file.clone();
    longer.push(0xFF);
    assert_eq!(
        validate(&longer, opts()).unwrap_err(),
        AppImageError::TrailingBytes { len: 1 }
    );
    let mut dirty_padding = file.clone();
    dirty_padding[image.len()] = 0;
    assert!(matches!(
        validate(&dirty_padding, opts()).unwrap_err(),
        AppImageError::TrailingBytes { .. }
    ));
}

#[test]
fn a_sector_beyond_the_slot_is_refused() {
    let file = signed(&good());
    let limit = file.len() as u32 - 1;
    assert_eq!(
        validate(&file, opts().max_len(limit)).unwrap_err(),
        sb(SecureBootError::TooLarge { max: limit })
    );
}

#[test]
fn slot_scanning_stops_at_the_image_end_and_leaves_the_sector() {
    let image = good();
    let file = signed(&image);
    let mut v =
        AppImageValidator::new(opts().signature_sector(SignatureSectorPolicy::StopAtImageEnd));
    assert_eq!(v.update(&file).unwrap(), image.len());
    assert_eq!(v.image_len(), Some(image.len() as u32));
    let info = v.finish().unwrap();
    assert_eq!(info.signature_sector, None);
    assert_eq!(info.installed_len as usize, image.len());
}

#[test]
fn every_single_byte_change_after_the_image_is_refused() {
    let image = good();
    let file = signed(&image);
    for at in image.len()..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x01;
        assert!(validate(&bad, opts()).is_err(), "flip at {at} accepted");
    }
}
