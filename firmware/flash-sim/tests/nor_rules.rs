//! The NOR rules and the power-cut model of the simulated flash, in the ESP32 geometry
//! (the default) and a 32-byte-word one.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use ota_flash_sim::{FlashOp, SimFlash, SimFlashError, SimNorFlash};

fn flash() -> SimFlash {
    SimFlash::new(4 * 4096)
}

#[test]
fn starts_erased_and_reads_back_writes() {
    let mut f = flash();
    let mut buf = [0u8; 8];
    f.read(4096, &mut buf).unwrap();
    assert_eq!(buf, [0xFF; 8]);
    f.write(4096, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    f.read(4096, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(f.capacity(), 4 * 4096);
}

#[test]
fn writing_a_one_over_a_zero_is_refused_and_changes_nothing() {
    let mut f = flash();
    f.write(0, &[0x0F, 0xFF, 0xFF, 0xFF]).unwrap();
    let before = f.bytes().to_vec();
    let err = f.write(0, &[0xFF, 0xFF, 0x00, 0x00]).unwrap_err();
    assert_eq!(
        err,
        SimFlashError::WriteOverZero {
            offset: 0,
            held: 0x0F,
            wrote: 0xFF
        }
    );
    assert_eq!(err.kind(), NorFlashErrorKind::Other);
    assert_eq!(f.bytes(), &before[..]);
    assert_eq!(f.operations(), 1, "a refused write is not an operation");
}

#[test]
fn clearing_more_bits_of_a_written_word_is_allowed() {
    let mut f = flash();
    f.write(8, &[0xF0, 0xFF, 0xFF, 0xFF]).unwrap();
    f.write(8, &[0x30, 0xFF, 0x7F, 0xFF]).unwrap();
    assert_eq!(&f.bytes()[8..12], &[0x30, 0xFF, 0x7F, 0xFF]);
}

#[test]
fn erase_restores_ones() {
    let mut f = flash();
    f.write(4096, &[0; 16]).unwrap();
    f.erase(4096, 8192).unwrap();
    assert!(f.bytes()[4096..8192].iter().all(|&b| b == 0xFF));
    f.write(4096, &[0xAB; 4]).unwrap();
}

#[test]
fn unaligned_erase_is_refused() {
    let mut f = flash();
    assert_eq!(
        f.erase(100, 4096),
        Err(SimFlashError::NotAligned {
            op: "erase",
            offset: 100,
            len: 3996
        })
    );
    assert_eq!(
        f.erase(0, 100),
        Err(SimFlashError::NotAligned {
            op: "erase",
            offset: 0,
            len: 100
        })
    );
    assert_eq!(
        f.erase(0, 100).unwrap_err().kind(),
        NorFlashErrorKind::NotAligned
    );
    assert_eq!(
        f.erase(8192, 4096),
        Err(SimFlashError::OutOfBounds {
            op: "erase",
            offset: 8192,
            len: 0
        })
    );
}

#[test]
fn unaligned_write_is_refused() {
    let mut f = flash();
    assert_eq!(
        f.write(2, &[0; 4]),
        Err(SimFlashError::NotAligned {
            op: "write",
            offset: 2,
            len: 4
        })
    );
    assert_eq!(
        f.write(0, &[0; 3]),
        Err(SimFlashError::NotAligned {
            op: "write",
            offset: 0,
            len: 3
        })
    );
    assert!(f.bytes().iter().all(|&b| b == 0xFF));
}

#[test]
fn out_of_bounds_is_refused() {
    let mut f = flash();
    let mut b = [0u8; 2];
    assert_eq!(
        f.read(4 * 4096 - 1, &mut b),
        Err(SimFlashError::OutOfBounds {
            op: "read",
            offset: 4 * 4096 - 1,
            len: 2
        })
    );
    assert_eq!(
        f.write(4 * 4096, &[0; 4]),
        Err(SimFlashError::OutOfBounds {
            op: "write",
            offset: 4 * 4096,
            len: 4
        })
    );
    assert_eq!(
        f.erase(0, 5 * 4096),
        Err(SimFlashError::OutOfBounds {
            op: "erase",
            offset: 0,
            len: 5 * 4096
        })
    );
    assert_eq!(
        f.write(4 * 4096, &[0; 4]).unwrap_err().kind(),
        NorFlashErrorKind::OutOfBounds
    );
}

#[test]
fn operations_are_counted_and_logged() {
    let mut f = flash();
    f.erase(0, 8192).unwrap();
    f.write(0, &[0; 8]).unwrap();
    let mut b = [0u8; 1];
    f.read(0, &mut b).unwrap();
    assert_eq!(f.operations(), 2);
    assert_eq!(f.reads(), 1);
    assert_eq!(
        f.log(),
        &[
            FlashOp::Erase { from: 0, to: 8192 },
            FlashOp::Write { offset: 0, len: 8 }
        ]
    );
}

#[test]
fn a_cut_write_lands_a_prefix_and_kills_the_flash() {
    let data: Vec<u8> = (0..64u8).collect();
    let mut prefixes = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let mut f = flash().with_seed(seed);
        f.write(0, &[0xEE; 4]).unwrap();
        f.cut_after(1);
        assert_eq!(f.write(4096, &data), Err(SimFlashError::PowerLost));
        assert!(f.is_dead());
        let got = &f.bytes()[4096..4096 + 64];
        let landed = got.iter().zip(&data).take_while(|(g, d)| g == d).count();
        prefixes.insert(landed);
        // After the prefix: one byte between old and new value, then untouched.
        if landed < 64 {
            assert_eq!(
                got[landed] & data[landed],
                data[landed],
                "only bits to clear may be cleared"
            );
            assert!(got[landed + 1..].iter().all(|&b| b == 0xFF));
        }
        let mut b = [0u8; 4];
        assert_eq!(f.read(0, &mut b), Err(SimFlashError::PowerLost));
        assert_eq!(f.erase(0, 4096), Err(SimFlashError::PowerLost));
        assert_eq!(f.write(0, &[0; 4]), Err(SimFlashError::PowerLost));
        f.power_cycle();
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0xEE; 4], "operations before the cut completed");
    }
    assert!(
        prefixes.len() > 10,
        "seeds give different tears: {prefixes:?}"
    );
}

#[test]
fn a_cut_erase_leaves_old_erased_or_half_erased_bytes() {
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let mut f = flash().with_seed(seed);
        f.write(0, &[0x00; 4096]).unwrap();
        f.cut_after(1);
        assert_eq!(f.erase(0, 4096), Err(SimFlashError::PowerLost));
        let s = &f.bytes()[..4096];
        kinds.insert(if s.iter().all(|&b| b == 0) {
            "untouched"
        } else if s.iter().all(|&b| b == 0xFF) {
            "erased"
        } else {
            "garbage"
        });
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn damage_is_reproducible_from_the_seed() {
    let run = |seed| {
        let mut f = flash().with_seed(seed);
        f.write(0, &[0; 4096]).unwrap();
        f.cut_after(1);
        let _ = f.erase(0, 4096);
        f.bytes().to_vec()
    };
    assert_eq!(run(7), run(7));
}

#[test]
fn save_and_load_round_trip() {
    let dir = std::env::temp_dir().join(format!("simflash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flash.bin");
    let mut f = flash();
    f.write(12, &[1, 2, 3, 4]).unwrap();
    f.save(&path).unwrap();
    let g = SimFlash::load(&path).unwrap();
    assert_eq!(g.bytes(), f.bytes());
    std::fs::write(&path, [0u8; 100]).unwrap();
    assert_eq!(
        SimFlash::load(&path).unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_replaces_the_file_by_rename_and_never_rewrites_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.bin");
    let mut f = flash();
    f.write(0, &[1, 2, 3, 4]).unwrap();
    f.save(&path).unwrap();
    // A second name for the saved file sees its bytes for as long as they are not
    // overwritten in place: a kill during a save in place would leave them torn.
    let earlier = dir.path().join("earlier.bin");
    std::fs::hard_link(&path, &earlier).unwrap();
    // A short temporary file left by a save that was killed is simply replaced.
    let leftover = dir.path().join(".flash.bin.save-tmp");
    std::fs::write(&leftover, [0u8; 100]).unwrap();
    f.write(4, &[5, 6, 7, 8]).unwrap();
    f.save(&path).unwrap();
    assert_eq!(SimFlash::load(&path).unwrap().bytes(), f.bytes());
    let before = SimFlash::load(&earlier).unwrap();
    assert_eq!(&before.bytes()[..8], &[1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF]);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["earlier.bin", "flash.bin"]);
}

/// 32-byte write words (as flash with encryption or ECC has), 4 KiB sectors.
type WideFlash = SimNorFlash<32, 4096>;

#[test]
fn a_wide_word_flash_refuses_writes_narrower_or_off_its_words() {
    let mut f = WideFlash::new(2 * 4096);
    assert_eq!(<WideFlash as NorFlash>::WRITE_SIZE, 32);
    for (offset, len) in [(0, 4), (4, 32), (16, 32), (0, 36)] {
        assert_eq!(
            f.write(offset, &vec![0; len]),
            Err(SimFlashError::NotAligned {
                op: "write",
                offset,
                len
            }),
            "write at {offset} len {len}"
        );
    }
    assert_eq!(f.operations(), 0);
    f.write(32, &[0x5A; 64]).unwrap();
    assert_eq!(&f.bytes()[32..96], &[0x5A; 64]);
    assert!(f.bytes()[..32].iter().all(|&b| b == 0xFF));
}

#[test]
fn writes_outside_the_reprogrammable_region_need_erased_bytes() {
    let mut f = flash().require_erase_outside(4096..8192);
    f.write(0, &[0x0F; 4]).unwrap();
    // The same bytes again, or more bits cleared: legal NOR, but a missing erase here.
    assert_eq!(
        f.write(0, &[0x0F; 4]),
        Err(SimFlashError::NotErased {
            offset: 0,
            held: 0x0F
        })
    );
    assert_eq!(
        f.write(0, &[0x00; 4]).unwrap_err().kind(),
        NorFlashErrorKind::Other
    );
    assert_eq!(&f.bytes()[..4], &[0x0F; 4]);
    // Inside the region, words are updated by clearing more bits.
    f.write(4096, &[0xF0; 4]).unwrap();
    f.write(4096, &[0x30; 4]).unwrap();
    assert_eq!(&f.bytes()[4096..4100], &[0x30; 4]);
    f.erase(0, 4096).unwrap();
    f.write(0, &[0x0F; 4]).unwrap();
}

#[test]
fn erases_are_counted_per_sector_torn_ones_included() {
    let mut f = flash();
    f.erase(0, 8192).unwrap();
    f.erase(4096, 8192).unwrap();
    assert_eq!(
        (0..5).map(|i| f.erase_count(i)).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(0), Some(0), None]
    );
    f.cut_after(f.operations());
    assert_eq!(f.erase(12288, 16384), Err(SimFlashError::PowerLost));
    assert_eq!(f.erase_count(3), Some(1));
    assert_eq!(f.max_erase_count(), 2);
    // A refused erase wears nothing.
    f.power_cycle();
    assert!(f.erase(100, 4096).is_err());
    assert_eq!(f.erase_count(0), Some(1));
}

#[test]
fn another_geometry_keeps_contents_counters_and_the_pending_cut() {
    let mut f = flash();
    f.erase(4096, 8192).unwrap();
    f.write(4096, &[1, 2, 3, 4]).unwrap();
    f.cut_after(3);
    let mut wide: WideFlash = f.clone().into_geometry();
    assert_eq!(wide.bytes(), f.bytes());
    assert_eq!((wide.operations(), wide.log()), (2, f.log()));
    assert_eq!(wide.erase_count(1), Some(1));
    wide.write(64, &[0; 32]).unwrap();
    assert_eq!(wide.write(96, &[0; 32]), Err(SimFlashError::PowerLost));
    assert!(wide.is_dead());
}
