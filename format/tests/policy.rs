//! `VerifiedManifest::decide`: each rule rejects with its own error, the rules apply in
//! the documented order, and rollout buckets are stable, monotonic and well spread.

mod common;

use common::*;
use ota_format::*;

fn verified(m: &Manifest) -> VerifiedManifest {
    let trusted = trusted();
    Manifest::verify(&m.sign(&key_a()).unwrap(), &TrustedKeys::new(&trusted)).unwrap()
}

fn decide(m: &Manifest, d: &Device<'_>) -> Result<Decision, FormatError> {
    verified(m).decide(d)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

#[test]
fn a_device_one_version_behind_installs() {
    assert_eq!(decide(&valid_manifest(), &device()), Ok(Decision::Install));
}

#[test]
fn each_rule_rejects_with_its_own_error() {
    let m = valid_manifest();
    let d = device();
    let cases: [(&str, Manifest, Device<'_>, FormatError); 10] = [
        (
            "device type",
            m,
            Device {
                device_type: DeviceType::new("doorbell").unwrap(),
                ..d
            },
            FormatError::WrongDeviceType,
        ),
        (
            "chip",
            m,
            Device {
                chip: ChipId::ESP32,
                ..d
            },
            FormatError::WrongChip,
        ),
        (
            "channel",
            m,
            Device {
                channel: Channel::new("beta").unwrap(),
                ..d
            },
            FormatError::WrongChannel,
        ),
        (
            "expiry",
            Manifest {
                not_after: Some(T0),
                ..m
            },
            Device {
                now: Some(T0 + 1),
                ..d
            },
            FormatError::Expired,
        ),
        (
            "sequence",
            m,
            Device {
                last_sequence: Some(m.sequence + 1),
                ..d
            },
            FormatError::SequenceRollback,
        ),
        (
            "counter",
            m,
            Device {
                security_counter: m.security_counter + 1,
                ..d
            },
            FormatError::CounterRollback,
        ),
        (
            "downgrade",
            m,
            Device {
                running_version: v("1.2.4"),
                ..d
            },
            FormatError::Downgrade,
        ),
        (
            "pre-release of the same version is a downgrade",
            Manifest {
                version: v("1.2.3-rc.1"),
                ..m
            },
            Device {
                running_version: v("1.2.3"),
                ..d
            },
            FormatError::Downgrade,
        ),
        (
            "minimum version",
            Manifest {
                min_running_version: Some(v("1.2.2-beta.11")),
                ..m
            },
            Device {
                running_version: v("1.2.2-beta.2"),
                ..d
            },
            FormatError::BelowMinimumVersion,
        ),
        (
            "slot size",
            m,
            Device {
                slot_size: m.image_size - 1,
                ..d
            },
            FormatError::TooLarge,
        ),
    ];
    for (name, m, d, want) in cases {
        assert_eq!(decide(&m, &d), Err(want), "{name}");
    }
}

#[test]
fn the_boundaries_are_inclusive_where_the_spec_says() {
    let m = valid_manifest();
    let d = device();
    let expiring = Manifest {
        not_after: Some(T0),
        ..m
    };
    // now == not_after is still valid; a device without a clock cannot check.
    assert_eq!(
        decide(&expiring, &Device { now: Some(T0), ..d }),
        Ok(Decision::Install)
    );
    assert_eq!(
        decide(&expiring, &Device { now: None, ..d }),
        Ok(Decision::Install)
    );
    // Seeing the same sequence again is not a replay; a fresh device has none.
    assert_eq!(
        decide(
            &m,
            &Device {
                last_sequence: Some(m.sequence),
                ..d
            }
        ),
        Ok(Decision::Install)
    );
    assert_eq!(
        decide(
            &m,
            &Device {
                last_sequence: None,
                ..d
            }
        ),
        Ok(Decision::Install)
    );
    // Equal counter, exact slot fit and exact minimum are all fine.
    assert_eq!(
        decide(
            &Manifest {
                min_running_version: Some(d.running_version),
                ..m
            },
            &Device {
                slot_size: m.image_size,
                ..d
            }
        ),
        Ok(Decision::Install)
    );
}

#[test]
fn the_running_version_is_up_to_date_even_when_other_rules_would_refuse() {
    let m = valid_manifest();
    let d = Device {
        running_version: m.version,
        security_counter: 99,
        slot_size: 1,
        ..device()
    };
    assert_eq!(decide(&m, &d), Ok(Decision::UpToDate));
}

#[test]
fn rules_apply_in_the_documented_order() {
    let m = valid_manifest();
    let everything_wrong = Device {
        device_type: DeviceType::new("doorbell").unwrap(),
        chip: ChipId::ESP32,
        channel: Channel::new("beta").unwrap(),
        running_version: v("9.0.0"),
        security_counter: 99,
        last_sequence: Some(99),
        device_id: b"x",
        now: Some(u64::MAX),
        slot_size: 1,
    };
    let mut m = Manifest {
        not_after: Some(T0),
        min_running_version: Some(v("10.0.0")),
        ..m
    };
    // Fix one rule at a time, in order: the next rule's error appears.
    let mut d = everything_wrong;
    let order = [
        FormatError::WrongDeviceType,
        FormatError::WrongChip,
        FormatError::WrongChannel,
        FormatError::Expired,
        FormatError::SequenceRollback,
        FormatError::CounterRollback,
        FormatError::Downgrade,
        FormatError::BelowMinimumVersion,
        FormatError::TooLarge,
    ];
    for (step, want) in order.iter().enumerate() {
        assert_eq!(decide(&m, &d), Err(*want), "step {step}");
        match step {
            0 => d.device_type = m.device_type,
            1 => d.chip = m.chip,
            2 => d.channel = m.channel,
            3 => d.now = Some(T0),
            4 => d.last_sequence = Some(m.sequence),
            5 => d.security_counter = m.security_counter,
            6 => d.running_version = v("1.0.0"),
            7 => m.min_running_version = None,
            _ => d.slot_size = m.image_size,
        }
    }
    assert_eq!(decide(&m, &d), Ok(Decision::Install));
}

#[test]
fn allow_downgrade_permits_a_lower_version_but_never_a_lower_counter() {
    let m = Manifest {
        version: v("1.0.0"),
        allow_downgrade: true,
        ..valid_manifest()
    };
    assert_eq!(decide(&m, &device()), Ok(Decision::Install));
    assert_eq!(
        decide(
            &m,
            &Device {
                security_counter: m.security_counter + 1,
                ..device()
            }
        ),
        Err(FormatError::CounterRollback)
    );
}

fn id(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x24, 0x0a, b[0], b[1], b[2], b[3]]
}

#[test]
fn rollout_bucket_is_stable_bounded_and_matches_the_spec_formula() {
    use sha2::{Digest, Sha256};
    let h = valid_manifest().image_header_sha256;
    for i in 0..1000 {
        let b = rollout_bucket(&h, &id(i));
        assert!(b < FULL_ROLLOUT);
        assert_eq!(b, rollout_bucket(&h, &id(i)));
        let d = Sha256::new()
            .chain_update(b"ota-sign rollout v1\0")
            .chain_update(h)
            .chain_update(id(i))
            .finalize();
        let word = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        assert_eq!(u32::from(b), word % 10_000);
    }
}

#[test]
fn raising_the_rollout_never_drops_a_device() {
    let base = valid_manifest();
    let steps = [0u16, 1, 100, 500, 1000, 2500, 5000, 9999, 10_000];
    let manifests: Vec<VerifiedManifest> = steps
        .iter()
        .map(|&rollout| verified(&Manifest { rollout, ..base }))
        .collect();
    let mut admitted = [0usize; 9];
    for i in 0..2000 {
        let device_id = id(i);
        let d = Device {
            device_id: &device_id,
            ..device()
        };
        let mut was_in = false;
        for (k, m) in manifests.iter().enumerate() {
            let is_in = match m.decide(&d).unwrap() {
                Decision::Install => true,
                Decision::NotInRollout { bucket, rollout } => {
                    assert_eq!(rollout, steps[k]);
                    assert!(bucket >= rollout);
                    false
                }
                other => panic!("{other:?}"),
            };
            assert!(
                !was_in || is_in,
                "device {i} dropped at rollout {}",
                steps[k]
            );
            was_in = is_in;
            admitted[k] += usize::from(is_in);
        }
    }
    assert_eq!(admitted[0], 0, "rollout 0 holds everyone back");
    assert_eq!(admitted[8], 2000, "rollout 10000 lets everyone in");
}

#[test]
fn ten_percent_admits_about_ten_percent_and_each_image_picks_others() {
    let h1 = valid_manifest().image_header_sha256;
    let mut h2 = h1;
    h2[0] ^= 1;
    let n = 10_000;
    let in1: Vec<bool> = (0..n).map(|i| rollout_bucket(&h1, &id(i)) < 1000).collect();
    let in2: Vec<bool> = (0..n).map(|i| rollout_bucket(&h2, &id(i)) < 1000).collect();
    let count1 = in1.iter().filter(|&&x| x).count();
    let count2 = in2.iter().filter(|&&x| x).count();
    // Binomial(10000, 0.1): standard deviation 30; allow more than 3 of them.
    assert!((900..=1100).contains(&count1), "{count1}");
    assert!((900..=1100).contains(&count2), "{count2}");
    // Independent images: about 1% of devices are early for both, not 10%.
    let both = in1.iter().zip(&in2).filter(|(a, b)| **a && **b).count();
    assert!((50..=160).contains(&both), "{both}");
}
