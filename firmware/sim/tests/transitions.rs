//! Every otadata state transition, in both bootloader modes, driven through
//! the simulated bootloader and the agent's boot logic.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::otadata::{OtaSelectEntry, SECTOR_SIZE};
use ota_agent::unverified::select_slot;
use ota_agent::{BootAttempt, BootError, BootTarget, OtaState};
use ota_device_sim::LayoutSpec;
use ota_device_sim::layout::OTADATA_OFFSET;
use support::boot::{self, Device, validator};

const OTA0: BootTarget = BootTarget::Ota(0);
const OTA1: BootTarget = BootTarget::Ota(1);

fn entry(d: &Device, i: usize) -> OtaSelectEntry {
    let at = (OTADATA_OFFSET + i as u32 * SECTOR_SIZE) as usize;
    OtaSelectEntry::from_bytes(d.flash.bytes()[at..at + 32].try_into().unwrap())
}

/// The app running from ota_0 selects `slot` for the next boot.
fn select_from_ota0(d: &mut Device, slot: u8) {
    select_slot(&mut d.state(OTA0).unwrap(), &mut d.flash, slot).unwrap();
}

/// What the agent records for an unconfirmed boot: the `attempt`-th of `max`.
fn counted(attempt: u8, max: u8, bootloader_mismatch: bool) -> BootAttempt {
    BootAttempt::Counted {
        attempt,
        max,
        bootloader_mismatch,
    }
}

/// A device that was flashed with ota_0 and booted once (no factory).
fn fresh(mode: BootloaderMode) -> Device {
    Device::flashed(LayoutSpec::small(false, 2), mode, &[(OTA0, 1), (OTA1, 2)])
}

#[test]
fn first_boot_without_factory_records_ota_0_as_valid() {
    for mode in [RollbackEnabled, RollbackDisabled] {
        let d = fresh(mode);
        assert_eq!(entry(&d, 0), OtaSelectEntry::new(1, OtaState::Valid));
        assert_eq!(entry(&d, 1), OtaSelectEntry::ERASED);
    }
}

#[test]
fn first_boot_with_factory_writes_nothing() {
    let mut d = Device::new(LayoutSpec::small(true, 2), RollbackEnabled, 3);
    d.put_image(BootTarget::Factory, 1);
    let ops = d.flash.operations();
    assert_eq!(d.boot().unwrap(), Some(BootTarget::Factory));
    assert_eq!(d.flash.operations(), ops);
    let mut st = d.state(BootTarget::Factory).unwrap();
    assert_eq!(st.confirm(&mut d.flash), Err(BootError::NoActiveEntry));
    assert_eq!(
        st.record_boot_attempt(&mut d.flash, validator()),
        Ok(BootAttempt::Untracked)
    );
    assert_eq!(st.next_update_slot(), Some(0));
}

#[test]
fn switch_writes_the_other_sector_exactly() {
    for (mode, state) in [
        (RollbackEnabled, OtaState::New),
        (RollbackDisabled, OtaState::Undefined),
    ] {
        let mut d = fresh(mode);
        let mut st = d.state(OTA0).unwrap();
        let ops = d.flash.operations();
        select_slot(&mut st, &mut d.flash, 1).unwrap();
        assert_eq!(d.flash.operations() - ops, 2, "erase + write");
        assert_eq!(entry(&d, 1), OtaSelectEntry::new(2, state));
        let at = (OTADATA_OFFSET + SECTOR_SIZE) as usize;
        assert!(
            d.flash.bytes()[at + 32..at + SECTOR_SIZE as usize]
                .iter()
                .all(|&b| b == 0xFF)
        );
        assert_eq!(
            entry(&d, 0),
            OtaSelectEntry::new(1, OtaState::Valid),
            "active sector untouched"
        );
        assert_eq!(st.select_boot_slot(), OTA1);
        assert_eq!(st.slot_state(1), Some(state));
    }
}

#[test]
fn rollback_bootloader_full_cycle_confirmed() {
    let mut d = fresh(RollbackEnabled);
    select_from_ota0(&mut d, 1);
    // NEW -> PENDING_VERIFY by the bootloader.
    let (running, attempt, mut st) = d.boot_and_record().unwrap();
    assert_eq!(running, OTA1);
    assert_eq!(attempt, BootAttempt::BootloaderTracked);
    assert_eq!(entry(&d, 1).ota_state(), OtaState::PendingVerify);
    // PENDING_VERIFY -> VALID by the app (erase + rewrite, bits must be set).
    let ops = d.flash.operations();
    st.confirm(&mut d.flash).unwrap();
    assert_eq!(d.flash.operations() - ops, 2);
    assert_eq!(entry(&d, 1), OtaSelectEntry::new(2, OtaState::Valid));
    assert_eq!(d.next_boot(), (OTA1, BootAttempt::Confirmed));
}

#[test]
fn rollback_bootloader_aborts_an_unconfirmed_slot() {
    let mut d = fresh(RollbackEnabled);
    select_from_ota0(&mut d, 1);
    assert_eq!(d.boot().unwrap(), Some(OTA1));
    // Crash before confirming: PENDING_VERIFY -> ABORTED, old slot.
    assert_eq!(d.boot().unwrap(), Some(OTA0));
    assert_eq!(entry(&d, 1).ota_state(), OtaState::Aborted);
    assert_eq!(
        d.state(OTA0).unwrap().slot_state(1),
        Some(OtaState::Aborted)
    );
}

#[test]
fn app_rollback_marks_invalid_in_both_modes() {
    for mode in [RollbackEnabled, RollbackDisabled] {
        let mut d = fresh(mode);
        select_from_ota0(&mut d, 1);
        let (running, _, mut st) = d.boot_and_record().unwrap();
        assert_eq!(running, OTA1);
        st.rollback(&mut d.flash, validator()).unwrap();
        assert_eq!(entry(&d, 1).ota_state(), OtaState::Invalid);
        assert_eq!(entry(&d, 1).seq, 2);
        assert_eq!(d.boot().unwrap(), Some(OTA0), "{mode:?}");
    }
}

#[test]
fn rollback_refused_when_nothing_else_boots() {
    let mut d = fresh(RollbackDisabled);
    // Only otadata[0] exists (ota_0): no other entry, no factory.
    let mut st = d.state(OTA0).unwrap();
    let before = d.flash.bytes().to_vec();
    assert_eq!(
        st.rollback(&mut d.flash, validator()),
        Err(BootError::RollbackNotPossible)
    );
    assert_eq!(d.flash.bytes(), &before[..]);
    // Other entry valid but its image does not load: refused too.
    select_slot(&mut st, &mut d.flash, 1).unwrap();
    let mut st = d.state(OTA1).unwrap();
    assert_eq!(
        st.rollback(&mut d.flash, |_: &mut _, _, _| false),
        Err(BootError::RollbackNotPossible)
    );
}

#[test]
fn counting_mode_rolls_back_after_max_attempts() {
    let mut d = fresh(RollbackDisabled);
    select_from_ota0(&mut d, 1);
    for n in 1..=3u8 {
        let ops = d.flash.operations();
        let (running, attempt, st) = d.boot_and_record().unwrap();
        assert_eq!(running, OTA1);
        assert_eq!(attempt, counted(n, 3, false));
        assert_eq!(
            d.flash.operations() - ops,
            1,
            "one word write per attempt, bootloader writes nothing"
        );
        assert_eq!(st.boot_attempts(), Some(n));
        assert_eq!(entry(&d, 1).ota_state(), OtaState::Undefined);
    }
    assert_eq!(d.next_boot(), (OTA1, BootAttempt::RolledBack));
    assert_eq!(entry(&d, 1).ota_state(), OtaState::Invalid);
    assert_eq!(entry(&d, 1).seq, 2);
    assert_eq!(d.next_boot(), (OTA0, BootAttempt::Confirmed));
}

#[test]
fn counting_mode_confirm_is_one_word_write() {
    let mut d = fresh(RollbackDisabled);
    select_from_ota0(&mut d, 1);
    let (_, _, mut st) = d.boot_and_record().unwrap();
    let ops = d.flash.operations();
    st.confirm(&mut d.flash).unwrap();
    assert_eq!(d.flash.operations() - ops, 1);
    let e = entry(&d, 1);
    assert_eq!(
        (e.seq, e.ota_state(), e.crc_matches()),
        (2, OtaState::Valid, true)
    );
    // Confirming again writes nothing.
    st.confirm(&mut d.flash).unwrap();
    assert_eq!(d.flash.operations() - ops, 1);
    assert_eq!(d.next_boot(), (OTA1, BootAttempt::Confirmed));
}

#[test]
fn counting_mode_exhausted_without_fallback_keeps_running() {
    let mut d = fresh(RollbackDisabled);
    // Make the only entry unconfirmed: switch "to" the running slot in place.
    select_from_ota0(&mut d, 0);
    assert_eq!(entry(&d, 0), OtaSelectEntry::new(1, OtaState::Undefined));
    for _ in 0..3 {
        d.boot_and_record().unwrap();
    }
    assert_eq!(d.next_boot(), (OTA0, BootAttempt::ExhaustedNoFallback));
    assert_eq!(entry(&d, 0).ota_state(), OtaState::Undefined);
}

#[test]
fn bootloader_mode_mismatch_is_counted_and_reported() {
    // Agent thinks the bootloader rolls back, but it does not: NEW stays NEW.
    let mut d = fresh(RollbackDisabled);
    d.config = boot::config(RollbackEnabled, 2);
    select_from_ota0(&mut d, 1);
    assert_eq!(entry(&d, 1).ota_state(), OtaState::New);
    assert_eq!(d.next_boot().1, counted(1, 2, true));
    d.boot_and_record().unwrap();
    assert_eq!(d.next_boot().1, BootAttempt::RolledBack);
    assert_eq!(
        entry(&d, 1).ota_state(),
        OtaState::Invalid,
        "NEW -> INVALID needs erase + rewrite"
    );
    assert_eq!(d.boot().unwrap(), Some(OTA0));

    // The other way round: agent counts, bootloader rolls back; PENDING_VERIFY is reported.
    let mut d = fresh(RollbackEnabled);
    d.config = boot::config(RollbackDisabled, 3);
    select_from_ota0(&mut d, 1);
    assert_eq!(d.next_boot().1, counted(1, 3, false));
    assert_eq!(
        entry(&d, 1).ota_state(),
        OtaState::Undefined,
        "UNDEFINED is not monitored by the bootloader"
    );
}

#[test]
fn selected_image_that_does_not_load_is_invalidated() {
    for mode in [RollbackEnabled, RollbackDisabled] {
        let mut d = fresh(mode);
        select_from_ota0(&mut d, 1);
        let r = d.region(OTA1);
        d.flash.bytes_mut()[r.offset as usize] = 0; // corrupt the new image
        let (running, attempt, _) = d.boot_and_record().unwrap();
        assert_eq!(running, OTA0, "bootloader falls back");
        assert_eq!(attempt, BootAttempt::SelectedNotBooted { selected: OTA1 });
        assert_eq!(entry(&d, 1).ota_state(), OtaState::Invalid);
        assert_eq!(d.next_boot(), (OTA0, BootAttempt::Confirmed));
    }
}

#[test]
fn confirm_refuses_when_running_another_slot() {
    let mut d = fresh(RollbackDisabled);
    select_from_ota0(&mut d, 1);
    let mut st = d.state(OTA0).unwrap();
    assert_eq!(
        st.confirm(&mut d.flash),
        Err(BootError::RunningNotSelected {
            running: OTA0,
            selected: OTA1
        })
    );
    assert_eq!(
        st.rollback(&mut d.flash, validator()),
        Err(BootError::RunningNotSelected {
            running: OTA0,
            selected: OTA1
        })
    );
}

#[test]
fn sequence_numbers_follow_esp_idf_over_many_updates() {
    let mut d = fresh(RollbackDisabled);
    let mut running = OTA0;
    for expected_seq in 2..12u32 {
        let mut st = d.state(running).unwrap();
        let target = st.next_update_slot().unwrap();
        select_slot(&mut st, &mut d.flash, target).unwrap();
        let sector = ((expected_seq + 1) % 2) as usize;
        assert_eq!(entry(&d, sector).seq, expected_seq);
        let (r, _, mut st) = d.boot_and_record().unwrap();
        assert_eq!(r, BootTarget::Ota(target));
        st.confirm(&mut d.flash).unwrap();
        running = r;
    }
}

#[test]
fn three_slots_switch_computes_esp_idf_seq() {
    let mut d = Device::new(LayoutSpec::small(false, 3), RollbackDisabled, 3);
    for n in 0..3 {
        d.put_image(BootTarget::Ota(n), n + 1);
    }
    assert_eq!(d.boot().unwrap(), Some(OTA0));
    let mut st = d.state(OTA0).unwrap();
    select_slot(&mut st, &mut d.flash, 2).unwrap();
    assert_eq!(entry(&d, 1).seq, 3);
    assert_eq!(d.boot().unwrap(), Some(BootTarget::Ota(2)));
    let mut st = d.state(BootTarget::Ota(2)).unwrap();
    select_slot(&mut st, &mut d.flash, 1).unwrap();
    assert_eq!(entry(&d, 0).seq, 5, "(1 + 1) % 3 + 3 * 1");
    assert_eq!(d.boot().unwrap(), Some(OTA1));
    assert_eq!(
        select_slot(&mut st, &mut d.flash, 3),
        Err(BootError::SlotOutOfRange { slot: 3, count: 3 })
    );
}

#[test]
fn boot_factory_erases_otadata() {
    let mut d = Device::new(LayoutSpec::small(true, 2), RollbackDisabled, 3);
    d.put_image(BootTarget::Factory, 1);
    d.put_image(OTA0, 2);
    let mut st = d.state(BootTarget::Factory).unwrap();
    select_slot(&mut st, &mut d.flash, 0).unwrap();
    assert_eq!(d.boot().unwrap(), Some(OTA0));
    let mut st = d.state(OTA0).unwrap();
    st.set_boot_factory(&mut d.flash).unwrap();
    assert_eq!(entry(&d, 0), OtaSelectEntry::ERASED);
    assert_eq!(entry(&d, 1), OtaSelectEntry::ERASED);
    assert_eq!(d.boot().unwrap(), Some(BootTarget::Factory));
    let mut d = fresh(RollbackDisabled);
    assert_eq!(
        d.state(OTA0).unwrap().set_boot_factory(&mut d.flash),
        Err(BootError::NoFactory)
    );
}

#[test]
fn bad_attempt_limits_are_refused() {
    let mut d = fresh(RollbackDisabled);
    d.config = boot::config(RollbackDisabled, 0);
    assert_eq!(d.state(OTA0).unwrap_err(), BootError::BadAttemptLimit);
    d.config = boot::config(RollbackDisabled, 161);
    assert_eq!(d.state(OTA0).unwrap_err(), BootError::BadAttemptLimit);
    d.config = boot::config(RollbackDisabled, 160);
    assert!(d.state(OTA0).is_ok());
}

#[test]
fn counter_uses_all_label_bits() {
    let mut d = fresh(RollbackDisabled);
    d.config = boot::config(RollbackDisabled, 160);
    select_from_ota0(&mut d, 1);
    for n in 1..=160u8 {
        let (_, a, _) = d.boot_and_record().unwrap();
        assert_eq!(a, counted(n, 160, false));
    }
    assert_eq!(entry(&d, 1).label, [0u8; 20]);
    let e = entry(&d, 1);
    assert!(
        e.crc_matches() && e.seq == 2,
        "counter never touches seq or crc"
    );
    let (_, a, _) = d.boot_and_record().unwrap();
    assert_eq!(a, BootAttempt::RolledBack);
}
