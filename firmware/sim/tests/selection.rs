//! Slot selection over every combination of two otadata entries: sequence
//! numbers (including 0 and 0xFFFFFFFF), every state, good and bad CRC; two
//! and three slots; with and without factory. The app's view
//! (`BootState::select_boot_slot`) and the bootloader's (`bootloader::select`
//! plus its load order) are checked against a reference written from the
//! ESP-IDF rules, and a few rows are spelled out by hand.

use ota_agent::bootloader::{self, BootloaderMode};
use ota_agent::crc::ota_seq_crc;
use ota_agent::otadata::{OtaSelectEntry, SECTOR_SIZE};
use ota_agent::{BootConfig, BootState, BootTarget, Geometry, OtaState, Region};
use ota_device_sim::SimFlash;
use proptest::prelude::*;

const OTADATA: u32 = 0x1000;
const STATES: [u32; 7] = [0, 1, 2, 3, 4, u32::MAX, 7];
const SEQS: [u32; 6] = [0, 1, 2, 3, 0x7FFF_FFFF, u32::MAX];

fn geometry(factory: bool, slots: u8) -> Geometry {
    let mut base = 0x1_0000;
    let f = factory.then(|| {
        base += 0x1_0000;
        Region::new(0x1_0000, 0x1_0000)
    });
    let slots: Vec<Region> = (0..u32::from(slots))
        .map(|i| Region::new(base + i * 0x1_0000, 0x1_0000))
        .collect();
    Geometry::new(Region::new(OTADATA, 0x2000), f, &slots).unwrap()
}

fn flash_with(entries: [OtaSelectEntry; 2]) -> SimFlash {
    let mut f = SimFlash::new(0x10_0000);
    for (i, e) in entries.iter().enumerate() {
        f.flash_image(OTADATA + i as u32 * SECTOR_SIZE, &e.to_bytes());
    }
    f
}

fn entry(seq: u32, state: u32, good_crc: bool) -> OtaSelectEntry {
    let crc = if good_crc {
        ota_seq_crc(seq)
    } else {
        ota_seq_crc(seq) ^ 0x0100_0000
    };
    OtaSelectEntry {
        seq,
        label: [0xFF; 20],
        state,
        crc,
    }
}

/// The ESP-IDF rules, written independently of the implementation.
fn reference(e: [OtaSelectEntry; 2], factory: bool, slots: u8) -> BootTarget {
    let rejected = |x: &OtaSelectEntry| x.seq == u32::MAX || x.state == 3 || x.state == 4;
    let usable = |x: &OtaSelectEntry| !rejected(x) && x.crc == ota_seq_crc(x.seq);
    let default = if factory {
        BootTarget::Factory
    } else {
        BootTarget::Ota(0)
    };
    if rejected(&e[0]) && rejected(&e[1]) {
        return default;
    }
    let best = match (usable(&e[0]), usable(&e[1])) {
        (true, true) => Some(if e[0].seq >= e[1].seq { e[0] } else { e[1] }),
        (true, false) => Some(e[0]),
        (false, true) => Some(e[1]),
        (false, false) => None,
    };
    match best {
        Some(b) => BootTarget::Ota((b.seq.wrapping_sub(1) % u32::from(slots)) as u8),
        None => default,
    }
}

fn app_view(e: [OtaSelectEntry; 2], g: &Geometry) -> BootTarget {
    let mut f = flash_with(e);
    BootState::read(&mut f, g, BootConfig::counting(3))
        .unwrap()
        .select_boot_slot()
}

fn bootloader_first(e: [OtaSelectEntry; 2], g: &Geometry) -> BootTarget {
    let mut f = flash_with(e);
    let ops = f.operations();
    let sel = bootloader::select(&mut f, g, BootloaderMode::RollbackDisabled).unwrap();
    assert_eq!(
        f.operations(),
        ops,
        "a no-rollback bootloader never writes otadata on selection"
    );
    bootloader::boot_order(sel.start, g).next().unwrap()
}

#[test]
fn exhaustive_two_entry_table() {
    let mut rows = 0;
    for factory in [false, true] {
        for slots in [2u8, 3] {
            let g = geometry(factory, slots);
            for s0 in SEQS {
                for s1 in SEQS {
                    for st0 in STATES {
                        for st1 in STATES {
                            for (c0, c1) in
                                [(true, true), (true, false), (false, true), (false, false)]
                            {
                                let e = [entry(s0, st0, c0), entry(s1, st1, c1)];
                                let want = reference(e, factory, slots);
                                assert_eq!(
                                    app_view(e, &g),
                                    want,
                                    "{e:?} factory {factory} slots {slots}"
                                );
                                assert_eq!(
                                    bootloader_first(e, &g),
                                    want,
                                    "{e:?} factory {factory} slots {slots}"
                                );
                                rows += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(rows, 4 * 36 * 49 * 4);
}

#[test]
fn hand_written_rows() {
    use OtaState::*;
    let g2 = geometry(false, 2);
    let g2f = geometry(true, 2);
    let n = |seq, s: OtaState| OtaSelectEntry::new(seq, s);
    let erased = OtaSelectEntry::ERASED;
    let rows: &[([OtaSelectEntry; 2], &Geometry, BootTarget)] = &[
        ([erased, erased], &g2, BootTarget::Ota(0)),
        ([erased, erased], &g2f, BootTarget::Factory),
        ([n(1, Valid), erased], &g2, BootTarget::Ota(0)),
        ([n(1, Valid), n(2, New)], &g2, BootTarget::Ota(1)),
        ([n(3, Undefined), n(2, Valid)], &g2, BootTarget::Ota(0)),
        ([n(1, Valid), n(2, Invalid)], &g2, BootTarget::Ota(0)),
        ([n(1, Valid), n(2, Aborted)], &g2f, BootTarget::Ota(0)),
        ([n(1, Invalid), n(2, Aborted)], &g2f, BootTarget::Factory),
        ([n(1, Invalid), n(2, Aborted)], &g2, BootTarget::Ota(0)),
        ([n(2, Valid), n(2, PendingVerify)], &g2, BootTarget::Ota(1)),
        ([n(4, Valid), n(5, Valid)], &g2, BootTarget::Ota(0)),
        // seq 0 has CRC 0xFFFFFFFF: a half-written entry with only seq = 0
        // is valid for ESP-IDF and selects the last slot.
        (
            [OtaSelectEntry { seq: 0, ..erased }, erased],
            &g2,
            BootTarget::Ota(1),
        ),
    ];
    for (e, g, want) in rows {
        assert_eq!(app_view(*e, g), *want, "{e:?}");
        assert_eq!(bootloader_first(*e, g), *want, "{e:?}");
    }
}

#[test]
fn rollback_bootloader_state_writes() {
    let g = geometry(false, 2);
    // PENDING_VERIFY anywhere becomes ABORTED (even with a bad CRC), then NEW
    // of the winner becomes PENDING_VERIFY.
    let mut f = flash_with([entry(1, 1, false), OtaSelectEntry::new(2, OtaState::New)]);
    let sel = bootloader::select(&mut f, &g, BootloaderMode::RollbackEnabled).unwrap();
    assert_eq!(sel.start, BootTarget::Ota(1));
    let st = BootState::read(&mut f, &g, BootConfig::rollback_bootloader(3)).unwrap();
    assert_eq!(st.entries()[0].ota_state(), OtaState::Aborted);
    assert_eq!(
        st.entries()[0].crc,
        entry(1, 1, false).crc,
        "rewritten as read"
    );
    assert_eq!(
        st.entries()[1],
        OtaSelectEntry::new(2, OtaState::PendingVerify)
    );
    assert_eq!(f.operations(), 4);
}

#[test]
fn boot_order_follows_esp_idf() {
    let g = geometry(true, 3);
    let order = |s| bootloader::boot_order(s, &g).collect::<Vec<_>>();
    use BootTarget::*;
    assert_eq!(order(Ota(1)), vec![Ota(1), Ota(0), Factory, Ota(2)]);
    assert_eq!(order(Factory), vec![Factory, Ota(0), Ota(1), Ota(2)]);
    let g = geometry(false, 2);
    assert_eq!(
        bootloader::boot_order(Factory, &g).collect::<Vec<_>>(),
        vec![Ota(0), Ota(1)]
    );
}

proptest! {
    /// Arbitrary otadata bytes (torn, garbage) never panic, and both views
    /// agree with the reference.
    #[test]
    fn garbage_otadata(a in proptest::array::uniform32(any::<u8>()), b in proptest::array::uniform32(any::<u8>()), factory in any::<bool>()) {
        let e = [OtaSelectEntry::from_bytes(&a), OtaSelectEntry::from_bytes(&b)];
        let g = geometry(factory, 2);
        let want = reference(e, factory, 2);
        prop_assert_eq!(app_view(e, &g), want);
        prop_assert_eq!(bootloader_first(e, &g), want);
    }
}
