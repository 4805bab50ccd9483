//! Delta updates on the simulated device: the agent asks for
//! `IMAGE.<first 8 bytes of its running image's installed SHA-256, hex>.otad` beside the
//! image the manifest names, decodes it against its running slot, and proves the result
//! exactly as it proves a full image. Whatever goes wrong with the delta (none for this
//! base, another base, a corrupt or swapped payload), the full image follows in the same
//! check and the device ends on the new version. A power cut at every flash operation of
//! a delta install, in both bootloader modes and both delta encodings, never bricks it.

mod support;

use ota_agent::bootloader::BootloaderMode::{self, RollbackDisabled, RollbackEnabled};
use ota_agent::install::Generation;
use ota_agent::status::{CheckResult, LastUpdate, UpdateVia};
use ota_device_sim::device::{Behaviour, VirtualDevice};
use ota_format::diff::Record;
use ota_testkit::Chip;
use ota_testkit::delta::{
    Delta, build_delta, build_delta_with_payload, build_difference_delta,
    build_difference_delta_with_stream, build_encoded_delta, delta_payload, difference_stream,
    stream_with_records,
};
use support::*;

/// Filler of both firmwares: the same code with another version string, as a release
/// that changes a little.
const FILLER: usize = 60_000;

/// The running firmware (1.0.0) and the release of 1.1.0 (method 2, as a new release
/// for new agents is packaged).
fn base_and_release() -> (Vec<u8>, Release) {
    base_and_release_of(FILLER)
}

/// The same with `filler` bytes of code and data in both firmwares.
fn base_and_release_of(filler: usize) -> (Vec<u8>, Release) {
    let keys = [public(SIGNER)];
    let base = firmware_sized("1.0.0", Behaviour::Normal, &keys, Chip::Esp32c3, filler);
    let target = firmware_sized("1.1.0", Behaviour::Normal, &keys, Chip::Esp32c3, filler);
    let spec = Spec {
        window_log: Some(20),
        flash_window: true,
        ..Spec::default()
    };
    (base, release_of(&spec, target))
}

/// A host publishing `release` and, when given, `delta` beside it.
fn host_with(release: &Release, delta: Option<&Delta>) -> Host {
    let host = Host::start();
    if let Some(delta) = delta {
        host.put(&format!("/fw/{}", delta.name), delta.file.clone());
    }
    host.publish(release);
    host
}

/// One check on a device running `base`: what it returned and how the update came.
fn check<const W: usize>(
    d: &mut VirtualDevice<W>,
) -> (
    Result<CheckResult, ota_agent::agent::AgentError>,
    Option<LastUpdate>,
) {
    let (running, r) = boot_until_running(d, |s| (s.check(), s.agent.status().last_update));
    assert_eq!(running, v("1.0.0"));
    r
}

/// Checks once, reboots, and asserts the device runs 1.1.0 having installed it `via`.
#[track_caller]
fn assert_installs_via(d: &mut VirtualDevice, via: UpdateVia) -> LastUpdate {
    let (r, last) = check(d);
    assert_eq!(
        r,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    let last = last.expect("an update was recorded");
    assert_eq!((last.version, last.via), (v("1.1.0"), via));
    let (running, ()) = boot_until_running(d, |_| ());
    assert_eq!(running, v("1.1.0"));
    last
}

/// `delta` installs by itself (the full image never fetched), boots, and moves under a
/// fifth of the bytes the same update takes from a host without it.
fn installs_by_delta_with_far_fewer_bytes(base: &[u8], rel: &Release, delta: &Delta) {
    let host = host_with(rel, Some(delta));
    let mut d = device_with(&host, RollbackEnabled, base);
    let last = assert_installs_via(&mut d, UpdateVia::Delta);
    assert_eq!(
        host.requests_for(&image_path(rel)),
        0,
        "the full image was fetched"
    );
    assert_eq!(last.bytes_downloaded, delta.file.len() as u64);
    let delta_wire = host.stats().bytes_sent;

    let full_host = host_with(rel, None);
    let mut full = device_with(&full_host, RollbackEnabled, base);
    let last = assert_installs_via(&mut full, UpdateVia::Full);
    assert_eq!(last.bytes_downloaded, rel.ota.len() as u64);
    let full_wire = full_host.stats().bytes_sent;
    eprintln!(
        "1.0.0 -> 1.1.0 ({} B installed), {:?}: delta {} B (file {} B), full {} B (file {} B) on the wire",
        rel.app.len(),
        delta.encoding,
        delta_wire,
        delta.file.len(),
        full_wire,
        rel.ota.len()
    );
    assert!(
        delta_wire * 5 < full_wire,
        "delta {delta_wire} B against full {full_wire} B"
    );
}

#[test]
fn a_delta_installs_boots_and_moves_far_fewer_bytes() {
    let (base, rel) = base_and_release();
    installs_by_delta_with_far_fewer_bytes(&base, &rel, &build_delta(&base, &rel, SIGNER));
}

#[test]
fn no_delta_for_this_base_means_the_full_image_in_the_same_check() {
    let (base, rel) = base_and_release();
    let host = host_with(&rel, None);
    let mut d = device_with(&host, RollbackDisabled, &base);
    assert_installs_via(&mut d, UpdateVia::Full);
    let delta = build_delta(&base, &rel, SIGNER);
    assert_eq!(host.requests_for(&format!("/fw/{}", delta.name)), 1);
}

#[test]
fn a_delta_for_another_base_is_refused_and_the_full_image_installs() {
    let (base, rel) = base_and_release();
    // Built against another 1.0.0 build, served under this device's name (a mix-up).
    let other = firmware_sized(
        "1.0.0",
        Behaviour::Normal,
        &[public(SIGNER)],
        Chip::Esp32c3,
        FILLER + 4096,
    );
    let mut delta = build_delta(&other, &rel, SIGNER);
    delta.name = build_delta(&base, &rel, SIGNER).name;
    let host = host_with(&rel, Some(&delta));
    let mut d = device_with(&host, RollbackDisabled, &base);
    assert_installs_via(&mut d, UpdateVia::Full);
    assert_eq!(host.requests_for(&image_path(&rel)), 1);
}

#[test]
fn a_corrupt_delta_payload_falls_back_to_the_full_image() {
    let (base, rel) = base_and_release();
    let good = build_delta(&base, &rel, SIGNER);
    let mut cases = Vec::new();
    // Signature valid, payload digest wrong: one payload byte flipped in transit.
    let mut flipped = build_delta(&base, &rel, SIGNER);
    let last = flipped.file.len() - 1;
    flipped.file[last] ^= 0x40;
    cases.push(("payload digest", flipped));
    // Signed over its payload, but the payload decodes to another image: the server
    // swapped in the payload of another release.
    let other = firmware_sized(
        "1.1.0",
        Behaviour::Normal,
        &[public(SIGNER)],
        Chip::Esp32c3,
        FILLER - 1000,
    );
    let swapped = build_delta_with_payload(
        &base,
        &rel,
        SIGNER,
        delta_payload(&base, &other, good.window_log),
        good.window_log,
    );
    cases.push(("swapped payload", swapped));
    // The payload's window beyond what the header declares.
    let wide = build_delta_with_payload(
        &base,
        &rel,
        SIGNER,
        delta_payload(&base, &rel.app, 23),
        good.window_log - 3,
    );
    cases.push(("window beyond the header", wide));
    for (name, delta) in cases {
        for mode in [RollbackDisabled, RollbackEnabled] {
            let host = host_with(&rel, Some(&delta));
            let mut d = device_with(&host, mode, &base);
            let last = assert_installs_via(&mut d, UpdateVia::Full);
            // The failed delta's bytes count too.
            assert!(last.bytes_downloaded > rel.ota.len() as u64, "{name}");
            assert_eq!(host.requests_for(&image_path(&rel)), 1, "{name}");
        }
    }
}

#[test]
fn a_generation_1_agent_never_asks_for_a_delta_and_refuses_method_2() {
    let (base, rel) = base_and_release();
    let delta = build_delta(&base, &rel, SIGNER);
    let host = host_with(&rel, Some(&delta));
    let mut d = device_with(&host, RollbackDisabled, &base);
    d.config.generation = Generation::One;
    let (r, last) = check(&mut d);
    assert!(
        matches!(
            r,
            Err(ota_agent::agent::AgentError::Download(
                ota_agent::download::DownloadError::Install(
                    ota_agent::install::InstallError::Format(
                        ota_format::FormatError::InvalidField(ota_format::FieldError::Compression)
                    )
                )
            ))
        ),
        "{r:?}"
    );
    assert_eq!(last, None);
    assert_eq!(host.requests_for(&format!("/fw/{}", delta.name)), 0);

    // A method-1 release reaches it.
    let keys = [public(SIGNER)];
    let old_style = release_of(
        &Spec::default(),
        firmware_sized("1.1.0", Behaviour::Normal, &keys, Chip::Esp32c3, FILLER),
    );
    let host = host_with(&old_style, Some(&delta));
    let mut d = device_with(&host, RollbackDisabled, &base);
    d.config.generation = Generation::One;
    assert_installs_via(&mut d, UpdateVia::Full);
    assert_eq!(host.requests_for(&format!("/fw/{}", delta.name)), 0);
}

/// Makes a delta of one encoding: [`build_delta`] (2) or [`build_difference_delta`] (3).
type DeltaBuilder = fn(&[u8], &Release, [u8; 32]) -> Delta;

fn power_cut_sweep(mode: BootloaderMode, build: DeltaBuilder) {
    // Over 128 KiB: the update slot's first 64 KiB blocks are erased in one call, the
    // rest by sectors.
    let (base_app, rel) = base_and_release_of(140_000);
    assert!(rel.app.len() > 128 * 1024);
    let delta = build(&base_app, &rel, SIGNER);
    let encoding = delta.encoding;
    let host = host_with(&rel, Some(&delta));
    let mut base = device_with(&host, mode, &base_app);
    let (running, ()) = boot_until_running(&mut base, |_| ());
    assert_eq!(running, v("1.0.0"));
    let start = base.flash.operations();

    let mut clean = VirtualDevice::new(base.flash.clone(), base.config.clone());
    assert!(!power_cut_scenario(&mut clean));
    assert_eq!(
        host.requests_for(&image_path(&rel)),
        0,
        "the clean run used the delta"
    );
    let total = (clean.flash.operations() - start) as usize;
    assert!(total > 10, "only {total} operations");
    let step = if std::env::var_os("OTA_QUICK").is_some() {
        8
    } else {
        1
    };
    let mut tested = 0;
    for n in (0..total).step_by(step) {
        let flash = base.flash.clone().with_seed(n as u64 + 1);
        let mut d = VirtualDevice::new(flash, base.config.clone());
        d.flash.cut_after(start + n as u64);
        let ctx = format!("{mode:?} {encoding:?} cut {n}");
        assert!(power_cut_scenario(&mut d), "{ctx}: the cut never happened");
        tested += 1;
        // Power stays on: a valid image runs (old or new), says so, and a later check
        // ends on the new version.
        let (running, status) = boot_until_running(&mut d, |s| s.agent.status());
        assert!(
            running == v("1.0.0") || running == v("1.1.0"),
            "{ctx}: runs {running}"
        );
        assert_eq!(status.installed_version, running, "{ctx}");
        if running == v("1.0.0") {
            let (r, after) = check_and_reboot(&mut d);
            assert!(r.is_ok(), "{ctx}: {r:?}");
            assert_eq!(after, v("1.1.0"), "{ctx}");
        }
    }
    eprintln!(
        "{mode:?} {encoding:?}: {total} flash operations in a delta update, {tested} cut points tested"
    );
}

#[test]
fn power_cut_at_every_operation_of_a_delta_install_plain_bootloader() {
    power_cut_sweep(RollbackDisabled, build_delta);
}

#[test]
fn power_cut_at_every_operation_of_a_delta_install_rollback_bootloader() {
    power_cut_sweep(RollbackEnabled, build_delta);
}

// Encoding 3 rewrites the slot in place after decoding: cuts in either pass.
#[test]
fn power_cut_at_every_operation_of_an_encoding_3_delta_install_plain_bootloader() {
    power_cut_sweep(RollbackDisabled, build_difference_delta);
}

#[test]
fn power_cut_at_every_operation_of_an_encoding_3_delta_install_rollback_bootloader() {
    power_cut_sweep(RollbackEnabled, build_difference_delta);
}

#[test]
fn an_encoding_3_delta_installs_boots_and_moves_far_fewer_bytes() {
    let (base, rel) = base_and_release();
    let delta = build_difference_delta(&base, &rel, SIGNER);
    assert!(matches!(
        delta.encoding,
        ota_format::DeltaEncoding::Difference { .. }
    ));
    installs_by_delta_with_far_fewer_bytes(&base, &rel, &delta);
}

#[test]
fn a_corrupt_difference_stream_falls_back_to_the_full_image_in_the_same_check() {
    let (base, rel) = base_and_release();
    let image_len = rel.app.len() as u32;
    let good = difference_stream(&base, &rel.app);
    // Signed, decodes, but its second record reads past the end of the base.
    let beyond_base = stream_with_records(
        &good,
        rel.app.len(),
        &[
            Record {
                add_len: 16,
                copy_len: 0,
                seek: base.len() as i32 - 32,
            },
            Record {
                add_len: image_len - 16,
                copy_len: 0,
                seek: 0,
            },
        ],
    );
    let delta = build_difference_delta_with_stream(&base, &rel, SIGNER, &beyond_base);
    for mode in [RollbackDisabled, RollbackEnabled] {
        let host = host_with(&rel, Some(&delta));
        let mut d = device_with(&host, mode, &base);
        let last = assert_installs_via(&mut d, UpdateVia::Full);
        // The whole delta came (the stream is refused once decoded), then the image.
        assert_eq!(
            last.bytes_downloaded,
            (delta.file.len() + rel.ota.len()) as u64,
            "{mode:?}"
        );
        assert_eq!(host.requests_for(&image_path(&rel)), 1, "{mode:?}");
    }
}

#[test]
fn a_difference_stream_larger_than_the_slot_falls_back_before_its_payload() {
    let (base, rel) = base_and_release();
    // Signed, with 64 KiB of valid frames that a device would decode: refused at the
    // delta header all the same.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let payload = ota_testkit::release::compress(&noise, 20);
    assert!(payload.len() > 60_000);
    let delta = build_encoded_delta(
        &base,
        &rel,
        SIGNER,
        payload,
        20,
        ota_format::DeltaEncoding::Difference {
            stream_size: SLOT_SIZE + 1,
        },
    );
    let host = host_with(&rel, Some(&delta));
    let mut d = device_with(&host, RollbackDisabled, &base);
    let last = assert_installs_via(&mut d, UpdateVia::Full);
    assert_eq!(host.requests_for(&image_path(&rel)), 1);
    assert_eq!(host.requests_for(&format!("/fw/{}", delta.name)), 1);
    // No more of the delta than its headers and one receive buffer.
    let of_delta = last.bytes_downloaded - rel.ota.len() as u64;
    assert!(of_delta <= 2048, "{of_delta} B of the delta taken");
}

#[test]
fn a_misbehaving_delta_host_still_ends_on_the_full_image_in_the_same_check() {
    let (base, rel) = base_and_release();
    let delta = build_delta(&base, &rel, SIGNER);
    let path = format!("/fw/{}", delta.name);
    // A dropped connection that made progress resumes (the delta completes); what
    // cannot complete falls back to the image.
    let cases: Vec<(&str, Vec<Fault>, UpdateVia)> = vec![
        (
            "503 every time",
            vec![Fault::Status(503); 10],
            UpdateVia::Full,
        ),
        (
            "dropped, resumed",
            vec![Fault::DropAfter(100); 10],
            UpdateVia::Delta,
        ),
        (
            "garbage after the file",
            vec![Fault::Endless; 10],
            UpdateVia::Full,
        ),
        (
            "a flipped payload byte",
            vec![Fault::WrongByte(delta.file.len() - 5); 10],
            UpdateVia::Full,
        ),
    ];
    for (name, faults, via) in cases {
        let host = host_with(&rel, Some(&delta));
        host.fault(&path, faults);
        let mut d = device_with(&host, RollbackDisabled, &base);
        let (r, last) = check(&mut d);
        assert_eq!(
            r,
            Ok(CheckResult::Installed {
                version: v("1.1.0")
            }),
            "{name}"
        );
        assert_eq!(last.map(|l| l.via), Some(via), "{name}");
        if via == UpdateVia::Full {
            // At most two tries of the delta, then the image.
            assert!(host.requests_for(&path) <= 2, "{name}");
        }
        let (running, ()) = boot_until_running(&mut d, |_| ());
        assert_eq!(running, v("1.1.0"), "{name}");
    }
}

#[test]
fn a_silent_delta_host_gets_half_the_download_deadline_then_the_full_image_installs() {
    let (base, rel) = base_and_release();
    let delta = build_delta(&base, &rel, SIGNER);
    let path = format!("/fw/{}", delta.name);
    let host = host_with(&rel, Some(&delta));
    host.fault(
        &path,
        vec![Fault::Silent(std::time::Duration::from_secs(12)); 4],
    );
    let mut d = device_with(&host, RollbackDisabled, &base);
    // A read may wait 20 s, the download 8 s: the delta gets 4 s of them (README, "How
    // long a check can take"), not the whole 8 s, and the full image the rest.
    d.config.retry.timeout_ms = 20_000;
    d.config.retry.head_timeout_ms = 20_000;
    d.config.retry.deadline_ms = 8_000;
    let started = std::time::Instant::now();
    let (r, last) = check(&mut d);
    let took = started.elapsed();
    assert_eq!(
        r,
        Ok(CheckResult::Installed {
            version: v("1.1.0")
        })
    );
    assert_eq!(last.map(|l| l.via), Some(UpdateVia::Full));
    assert_eq!(
        host.requests_for(&path),
        1,
        "the one attempt used the delta's time"
    );
    assert!(
        took >= std::time::Duration::from_secs(4) && took < std::time::Duration::from_millis(6_500),
        "the silent delta host held the check for {took:?}: half the download deadline is 4 s"
    );
}
