use ota_flash_sim::SimFlash as TestFlash;

use super::*;

const REGION: Region = Region::new(0x2000, 0x2000);

fn sample() -> AgentState {
    let mut s = AgentState {
        manifest_sequence: Some(42),
        security_counter: 7,
        pending: Some(PendingInstall {
            slot: 1,
            image_id: [9; 32],
            security_counter: 8,
            version: Version::parse("1.2.3-rc.1").unwrap(),
            base_seq: 0x0102_0304,
        }),
        ..AgentState::default()
    };
    s.record_failed([1; 32]);
    s.record_failed([2; 32]);
    s
}

/// A fresh flash whose state region holds [`sample`], its store and that sample.
fn flash_with_sample() -> (TestFlash, StateStore, AgentState) {
    let mut flash = TestFlash::strict(0x4000);
    let (mut store, _) = StateStore::open(&mut flash, REGION).unwrap();
    let old = sample();
    store.save(&mut flash, &old).unwrap();
    (flash, store, old)
}

#[test]
fn empty_region_is_default_state() {
    let mut flash = TestFlash::strict(0x4000);
    let (_, state) = StateStore::open(&mut flash, REGION).unwrap();
    assert_eq!(state, AgentState::default());
    assert_eq!(state.manifest_sequence, None);
}

#[test]
fn round_trips_and_alternates_halves() {
    let mut flash = TestFlash::strict(0x4000);
    let (mut store, _) = StateStore::open(&mut flash, REGION).unwrap();
    let mut s = sample();
    for seq in 0..5 {
        s.manifest_sequence = Some(seq);
        store.save(&mut flash, &s).unwrap();
        let (_, back) = StateStore::open(&mut flash, REGION).unwrap();
        assert_eq!(back, s);
    }
    // Both halves now hold a record: the older one must lose.
    assert!(flash.bytes()[0x2000..0x2004] == MAGIC && flash.bytes()[0x3000..0x3004] == MAGIC);
}

#[test]
fn failed_list_keeps_the_newest_four() {
    let mut s = AgentState::default();
    for i in 0..6u8 {
        s.record_failed([i; 32]);
    }
    s.record_failed([5; 32]);
    assert_eq!(s.failed_images(), &[[5; 32], [4; 32], [3; 32], [2; 32]]);
    assert!(s.has_failed(&[2; 32]) && !s.has_failed(&[1; 32]));
}

#[test]
fn power_cut_at_every_operation_keeps_old_or_new() {
    let (base, _, old) = flash_with_sample();
    let mut new = old;
    new.manifest_sequence = Some(43);
    new.pending = None;
    // One erase and one write per save; cut each, torn in several ways (a torn
    // write may land whole).
    for (cut, seed) in (0..2).flat_map(|cut| (0..16).map(move |seed| (cut, seed))) {
        let mut flash = base.clone().with_seed(seed);
        flash.cut_after(base.operations() + cut);
        let (mut store, _) = StateStore::open(&mut flash, REGION).unwrap();
        assert!(store.save(&mut flash, &new).is_err());
        flash.power_cycle();
        let (_, back) = StateStore::open(&mut flash, REGION).unwrap();
        assert!(back == old || back == new, "cut at {cut} seed {seed}");
    }
}

#[test]
fn corrupted_record_is_ignored() {
    let (mut flash, mut store, old) = flash_with_sample();
    let mut new = old;
    new.security_counter = 99;
    store.save(&mut flash, &new).unwrap();
    // Flip one bit of the newest record (half 1): the older one wins again.
    flash.bytes_mut()[0x3010] ^= 1;
    assert_eq!(StateStore::open(&mut flash, REGION).unwrap().1, old);
    // A record claiming more failed images than exist is not trusted either.
    let mut r = new.encode(5);
    r[0x19] = 5;
    seal(&mut r);
    assert_eq!(AgentState::decode(&r), None);
}

#[test]
fn sequence_2_pow_64_minus_1_is_remembered_across_a_reopen() {
    let mut flash = TestFlash::strict(0x4000);
    let (mut store, _) = StateStore::open(&mut flash, REGION).unwrap();
    for sequence in [Some(u64::MAX), None, Some(0), Some(u64::MAX - 1)] {
        let state = AgentState {
            manifest_sequence: sequence,
            ..sample()
        };
        store.save(&mut flash, &state).unwrap();
        let (_, back) = StateStore::open(&mut flash, REGION).unwrap();
        assert_eq!(back.manifest_sequence, sequence);
    }
}

/// A record as an agent before the presence flags wrote it.
fn layout_0(state: &AgentState) -> [u8; RECORD_LEN] {
    let mut r = state.encode(3);
    r[0x1A] = 0;
    r[0x1B] = 0;
    seal(&mut r);
    r
}

#[test]
fn layout_0_records_read_as_their_agent_meant_them() {
    let with = sample();
    assert_eq!(AgentState::decode(&layout_0(&with)), Some((3, with)));
    // Its reserved values meant "none": a sequence of u64::MAX, a slot of 0xFF.
    let without = AgentState {
        manifest_sequence: None,
        pending: None,
        ..sample()
    };
    assert_eq!(AgentState::decode(&layout_0(&without)), Some((3, without)));
}

#[test]
fn records_keep_the_reserved_values_older_agents_read_as_none() {
    let r = AgentState::default().encode(1);
    assert_eq!(r[8..16], u64::MAX.to_le_bytes());
    assert_eq!(r[0x18], NO_SLOT);
    let r = sample().encode(1);
    assert_eq!(r[8..16], 42u64.to_le_bytes());
    assert_eq!(r[0x18], 1);
}

#[test]
fn unknown_layouts_flags_and_contradictions_are_not_trusted() {
    let good = sample().encode(1);
    let broken: [fn(&mut [u8; RECORD_LEN]); 5] = [
        |r| r[0x1A] = 2,                            // a layout this agent does not know
        |r| r[0x1B] |= 1 << 2,                      // a flag this agent does not know
        |r| r[0x1B] &= !HAS_PENDING,                // a slot without the pending flag
        |r| r[0x18] = NO_SLOT,                      // the pending flag without a slot
        |r| r[0x1A..0x1C].copy_from_slice(&[0, 1]), // flags in a layout-0 record
    ];
    for (i, change) in broken.iter().enumerate() {
        let mut r = good;
        change(&mut r);
        seal(&mut r);
        assert_eq!(AgentState::decode(&r), None, "case {i}");
    }
}

#[test]
fn the_newer_record_wins_when_the_generation_wraps() {
    let mut flash = TestFlash::strict(0x4000);
    let old = sample();
    let new = AgentState {
        manifest_sequence: Some(43),
        ..sample()
    };
    flash.bytes_mut()[0x2000..0x2100].copy_from_slice(&old.encode(u32::MAX));
    flash.bytes_mut()[0x3000..0x3100].copy_from_slice(&new.encode(0));
    let (mut store, back) = StateStore::open(&mut flash, REGION).unwrap();
    assert_eq!(back, new);
    // The next save goes to the older half, with the next generation.
    store.save(&mut flash, &old).unwrap();
    assert_eq!(flash.bytes()[0x2004..0x2008], 1u32.to_le_bytes());
    assert_eq!(StateStore::open(&mut flash, REGION).unwrap().1, old);
}

#[test]
fn rejects_unusable_regions() {
    let mut flash = TestFlash::strict(0x4000);
    for region in [
        Region::new(0x2000, 0x1000),
        Region::new(0x2100, 0x2000),
        Region::new(0, 0x3000),
    ] {
        assert_eq!(
            StateStore::open(&mut flash, region).unwrap_err(),
            StateError::Geometry {
                offset: region.offset,
                size: region.size
            }
        );
    }
}
