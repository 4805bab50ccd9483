//! Every threat of DESIGN.md against a running device: the attack fails, the device
//! keeps running its firmware and reports the error.

mod support;

use ota_agent::agent::AgentError;
use ota_agent::bootloader::BootloaderMode::RollbackDisabled;
use ota_agent::download::DownloadError;
use ota_agent::install::InstallError;
use ota_agent::status::UpdateState;
use ota_device_sim::device::{Behaviour, VirtualDevice};
use ota_format::esp::AppImageError;
use ota_format::{ChipId, FormatError};
use ota_testkit::Chip;
use support::*;

/// A device that already installed 1.1.0 (counter 5) from a manifest with `sequence`, and
/// rebooted into it.
fn updated_device_at_sequence(host: &Host, sequence: u64) -> VirtualDevice {
    let mut d = device(host, RollbackDisabled);
    host.publish(&release(&Spec {
        counter: 5,
        sequence,
        ..Spec::default()
    }));
    assert_updates_to(&mut d, "1.1.0");
    d
}

/// Checks once against what `host` serves; the device must keep `running` and report
/// `expected` as its last error.
fn attack(d: &mut VirtualDevice, running: &str, expected: AgentError) {
    let (_, (r, status)) = boot_until_running(d, |s| (s.check(), s.agent.status()));
    assert_eq!(r, Err(expected));
    assert_eq!(status.installed_version, v(running));
    assert_eq!(status.last_error.unwrap().error, expected);
    // Still running it after a reboot.
    let (after, ()) = boot_until_running(d, |_| ());
    assert_eq!(after, v(running));
}

/// A device running 1.0.0 is offered `rel`: it refuses with `expected`.
fn fresh_device_refuses(rel: &Release, expected: AgentError) {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    host.publish(rel);
    attack(d, "1.0.0", expected);
}

/// A release offered to a device: version, security counter, manifest sequence.
type Offer = (&'static str, u64, u64);

/// A device that installed 1.1.0 (counter 5) from a manifest with `sequence` is offered
/// `version` with `counter` under manifest sequence `offered_sequence`: it refuses the
/// manifest with `expected`.
fn updated_device_refuses(
    sequence: u64,
    (version, counter, offered_sequence): Offer,
    expected: FormatError,
) {
    let host = Host::start();
    let d = &mut updated_device_at_sequence(&host, sequence);
    host.publish(&release(&Spec {
        version,
        counter,
        sequence: offered_sequence,
        ..Spec::default()
    }));
    attack(d, "1.1.0", AgentError::Manifest(expected));
}

fn install_error(e: FormatError) -> AgentError {
    AgentError::Download(DownloadError::Install(InstallError::Format(e)))
}

#[test]
fn manifest_from_a_wrong_signer() {
    let forged = release(&Spec {
        signer: ATTACKER,
        ..Spec::default()
    });
    fresh_device_refuses(&forged, AgentError::Manifest(FormatError::UnknownKey));
}

#[test]
fn image_from_a_wrong_signer_under_a_good_manifest() {
    let forged = release(&Spec {
        signer: ATTACKER,
        manifest_signer: Some(SIGNER),
        ..Spec::default()
    });
    fresh_device_refuses(&forged, install_error(FormatError::UnknownKey));
}

#[test]
fn tampered_manifest() {
    let mut rel = release(&Spec::default());
    rel.manifest[0x60] ^= 1; // security counter
    fresh_device_refuses(&rel, AgentError::Manifest(FormatError::SignatureInvalid));
}

#[test]
fn tampered_image_header_and_payload() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    let mut rel = release(&Spec::default());
    rel.ota[0x30] ^= 1; // version in the signed header
    host.publish(&rel);
    attack(d, "1.0.0", install_error(FormatError::SignatureInvalid));

    let mut rel = release(&Spec {
        window_log: None,
        sequence: 3,
        ..Spec::default()
    });
    let at = rel.ota.len() - 50;
    rel.ota[at] ^= 1;
    host.publish(&rel);
    attack(
        d,
        "1.0.0",
        AgentError::Install(InstallError::Format(FormatError::PayloadDigestMismatch)),
    );
}

#[test]
fn security_counter_rollback() {
    updated_device_refuses(10, ("1.2.0", 4, 11), FormatError::CounterRollback);
}

#[test]
fn old_image_downgrade() {
    updated_device_refuses(10, ("1.0.5", 5, 11), FormatError::Downgrade);
}

#[test]
fn replayed_old_manifest() {
    // The attacker replays an older, validly signed manifest (freeze / rollback).
    updated_device_refuses(10, ("1.2.0", 5, 9), FormatError::SequenceRollback);
}

#[test]
fn replay_after_sequence_2_pow_64_minus_1_and_a_reboot() {
    // The last sequence there is: the device must still remember it after its reboot.
    updated_device_refuses(u64::MAX, ("1.2.0", 5, 9), FormatError::SequenceRollback);
}

#[test]
fn image_for_another_device_type_or_chip() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    host.publish(&release(&Spec {
        device_type: "camera",
        ..Spec::default()
    }));
    attack(
        d,
        "1.0.0",
        AgentError::Manifest(FormatError::WrongDeviceType),
    );
    host.publish(&release(&Spec {
        chip: ChipId(13),
        sequence: 3,
        ..Spec::default()
    }));
    attack(d, "1.0.0", AgentError::Manifest(FormatError::WrongChip));
}

#[test]
fn wrong_chip_app_image_signed_as_the_right_chip() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    let c6 = firmware("1.1.0", Behaviour::Normal, &[public(SIGNER)], Chip::Esp32c6);
    host.publish(&release_of(&Spec::default(), c6));
    let (_, (r, status)) = boot_until_running(d, |s| (s.check(), s.agent.status()));
    assert!(
        matches!(
            r,
            Err(AgentError::Install(InstallError::AppImage(
                AppImageError::WrongChip { .. }
            )))
        ),
        "{r:?}"
    );
    assert_eq!(status.installed_version, v("1.0.0"));
    assert_eq!(status.last_error.unwrap().phase, UpdateState::Verifying);
}

#[test]
fn old_build_signed_under_a_newer_version() {
    // A signed header claiming 1.1.0 (counter, version and manifest all pass) over an
    // old 0.9.0 build: once running it would report 1.1.0 and never be offered the
    // real one. Refused after the read-back, before otadata points at it.
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    host.publish(&release_of(&Spec::default(), app("0.9.0")));
    let expected = AgentError::Install(InstallError::AppVersionMismatch {
        signed: v("1.1.0"),
        installed: v("0.9.0"),
    });
    attack(d, "1.0.0", expected);
    let (_, slot) = boot_until_running(d, |s| s.agent.status().running.slot);
    assert_eq!(slot, ota_agent::geometry::BootTarget::Ota(0));
    // The release that tells the truth installs.
    host.publish(&release(&Spec {
        sequence: 3,
        ..Spec::default()
    }));
    assert_updates_to(d, "1.1.0");
}

#[test]
fn trailing_data_after_the_image() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    // A served file longer than the manifest says: refused before any byte is used.
    let mut rel = release(&Spec::default());
    rel.ota.extend_from_slice(&[0u8; 100]);
    host.publish(&rel);
    attack(
        d,
        "1.0.0",
        AgentError::Download(DownloadError::SizeMismatch {
            served: rel.ota.len() as u64,
            expected: rel.ota.len() as u64 - 100,
        }),
    );
    // Endless data without a declared length: refused at the first byte past the
    // signed payload.
    let rel = release(&Spec {
        sequence: 3,
        ..Spec::default()
    });
    host.publish(&rel);
    host.fault(&format!("/fw/{}", rel.image_name), vec![Fault::Endless]);
    attack(d, "1.0.0", install_error(FormatError::TrailingBytes));
    // A (signed) manifest that names a longer file than the image header declares.
    host.publish(&release(&Spec {
        trailing: 64,
        sequence: 4,
        ..Spec::default()
    }));
    attack(
        d,
        "1.0.0",
        install_error(FormatError::ManifestImageMismatch),
    );
}

#[test]
fn oversized_image() {
    let big = ota_testkit::TestFirmware::new(Chip::Esp32c3)
        .version("1.1.0")
        .project_name(DEVICE_TYPE)
        .trusted_keys(&[public(SIGNER)])
        .payload_size(SLOT_SIZE as usize + 4096)
        .app_image();
    fresh_device_refuses(
        &release_of(&Spec::default(), big),
        AgentError::Manifest(FormatError::TooLarge),
    );
}

#[test]
fn redirect_to_a_hostile_host() {
    let origin = Host::start();
    let hostile = Host::start();
    let d = &mut device(&origin, RollbackDisabled);
    hostile.publish(&release(&Spec {
        signer: ATTACKER,
        ..Spec::default()
    }));
    origin.fault(
        MANIFEST_PATH,
        vec![Fault::Redirect(hostile.url(MANIFEST_PATH)); 2],
    );
    attack(d, "1.0.0", AgentError::Manifest(FormatError::UnknownKey));
}

#[test]
fn image_swapped_between_check_and_use() {
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    let checked = release(&Spec::default());
    // Another (validly signed) release appears under the name the manifest gave.
    let swapped = release_with(
        &Spec {
            version: "1.1.0",
            counter: 2,
            ..Spec::default()
        },
        &NewFirmware {
            behaviour: Behaviour::HealthFail,
            ..NewFirmware::default()
        },
    );
    host.put(MANIFEST_PATH, checked.manifest.clone());
    host.put(&format!("/fw/{}", checked.image_name), swapped.ota.clone());
    let (_, r) = boot_until_running(d, |s| s.check());
    assert!(
        matches!(
            r,
            Err(AgentError::Download(DownloadError::Install(
                InstallError::Format(FormatError::ManifestImageMismatch)
            ))) | Err(AgentError::Download(DownloadError::SizeMismatch { .. }))
        ),
        "{r:?}"
    );
    let (running, ()) = boot_until_running(d, |_| ());
    assert_eq!(running, v("1.0.0"));
}

#[test]
fn key_rotation_follows_the_new_firmware() {
    const NEW_KEY: [u8; 32] = [9; 32];
    let host = Host::start();
    let d = &mut device(&host, RollbackDisabled);
    // 1.1.0, signed with the old key, trusts only the new one.
    host.publish(&release_with(
        &Spec::default(),
        &NewFirmware {
            keys: Some(vec![public(NEW_KEY)]),
            ..NewFirmware::default()
        },
    ));
    assert_eq!(check_and_reboot(d).1, v("1.1.0"));
    // The old (say stolen) key no longer works.
    host.publish(&release(&Spec {
        version: "1.2.0",
        sequence: 3,
        ..Spec::default()
    }));
    attack(d, "1.1.0", AgentError::Manifest(FormatError::UnknownKey));
    // The new one does.
    host.publish(&release_with(
        &Spec {
            version: "1.3.0",
            sequence: 4,
            signer: NEW_KEY,
            ..Spec::default()
        },
        &NewFirmware {
            keys: Some(vec![public(NEW_KEY)]),
            ..NewFirmware::default()
        },
    ));
    assert_eq!(check_and_reboot(d).1, v("1.3.0"));
}

#[test]
fn firmware_without_trusted_keys_cannot_be_updated() {
    let host = Host::start();
    let no_keys = firmware("1.0.0", Behaviour::Normal, &[], Chip::Esp32c3);
    let d = &mut device_with(&host, RollbackDisabled, &no_keys);
    host.publish(&release(&Spec::default()));
    attack(d, "1.0.0", AgentError::Manifest(FormatError::UnknownKey));
}

#[test]
fn release_that_would_lock_the_device_out() {
    // Correctly signed, but the new firmware trusts no key at all.
    let trusting_nobody = NewFirmware {
        keys: Some(vec![]),
        ..NewFirmware::default()
    };
    fresh_device_refuses(
        &release_with(&Spec::default(), &trusting_nobody),
        AgentError::Install(InstallError::NoTrustedKeys),
    );
}
