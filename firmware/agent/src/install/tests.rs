extern crate std;

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use ota_flash_sim::{FlashOp, SimFlash as TestFlash};
use ota_format::{Manifest, TrustedKeys};
use ota_testkit::fixture::{self as ts, Release, Spec};

use super::*;

/// The update slot the install, contents and download tests write.
pub(crate) const SLOT: Region = Region::new(0x10000, 0x30000);

const MAX_WINDOW_LOG: u8 = 14;

/// The matching device: takes zstd windows up to 2^14.
pub(crate) fn target() -> Target {
    Target {
        slot: SLOT,
        device_type: ts::device_type(),
        chip: ts::chip(),
        max_window_log: MAX_WINDOW_LOG,
        generation: Generation::Two,
    }
}

/// Owned buffers for an install into [`target`]: the device's decoder, boxed (it is
/// 21 KiB, more than a test thread's stack should carry around).
pub(crate) struct Buffers {
    decoder: Box<crate::zstd::FrameDecoder>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            decoder: Box::new(crate::zstd::FrameDecoder::new(
                ota_zstd::DecoderConfig::DEFAULT,
            )),
        }
    }
}

impl Buffers {
    pub(crate) fn install(&mut self) -> InstallBuffers<'_> {
        InstallBuffers {
            decoder: &mut self.decoder,
        }
    }
}

/// Installs `release` fed in `chunk`-sized pieces; `target` may be adjusted.
fn install_with(
    release: &Release,
    chunk: usize,
    target: Target,
    flash: &mut TestFlash,
) -> Result<InstalledImage, InstallError> {
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut buffers = Buffers::default();
    let mut inst = Installer::<TestFlash>::new(
        TrustedKeys::new(&keys),
        &manifest,
        target,
        buffers.install(),
    )?;
    for piece in release.ota.chunks(chunk) {
        inst.feed(flash, piece)?;
    }
    inst.finish(flash)
}

fn install(release: &Release, chunk: usize) -> (Result<InstalledImage, InstallError>, TestFlash) {
    let mut flash = TestFlash::strict(0x40000);
    let r = install_with(release, chunk, target(), &mut flash);
    (r, flash)
}

/// Installs `app` released with the default spec, fed in 4 KiB pieces.
fn install_app(app: Vec<u8>) -> Result<InstalledImage, InstallError> {
    install(&ts::release(&Spec::default(), app), 4096).0
}

/// A 20 000-byte app for `chip` that trusts no key yet: each test adds what it is about.
fn firmware(chip: ota_testkit::Chip) -> ota_testkit::TestFirmware {
    ota_testkit::TestFirmware::new(chip).payload_size(20_000)
}

fn slot_holds(flash: &TestFlash, app: &[u8]) -> bool {
    let at = SLOT.offset as usize;
    flash.bytes()[at..at + app.len()] == *app
}

#[test]
fn stored_and_compressed_images_install_in_any_chunking() {
    let app = ts::app_image("1.1.0", 40_000);
    for window_log in [None, Some(10), Some(14)] {
        let release = ts::release(
            &Spec {
                window_log,
                ..Spec::default()
            },
            app.clone(),
        );
        for chunk in [1usize, 7, 1000, 4096, 1 << 20] {
            if chunk == 1 && window_log != Some(14) {
                continue; // byte-by-byte once is enough (slow in debug builds)
            }
            let (r, flash) = install(&release, chunk);
            let installed = r.unwrap_or_else(|e| panic!("{window_log:?}/{chunk}: {e}"));
            assert!(slot_holds(&flash, &app));
            assert_eq!(installed.slot(), SLOT);
            assert_eq!(Some(installed.app_version()), Version::parse("1.1.0"));
        }
    }
}

/// Installs a 40 000-byte app compressed with a `window_log` frame whose header
/// declares `declared_window_log` (the real one when `None`).
fn install_windowed(
    window_log: u8,
    declared_window_log: Option<u8>,
) -> Result<InstalledImage, InstallError> {
    let spec = Spec {
        window_log: Some(window_log),
        declared_window_log,
        ..Spec::default()
    };
    install(&ts::release(&spec, ts::app_image("1.1.0", 40_000)), 4096).0
}

#[test]
fn frame_window_above_the_header_is_refused() {
    assert!(matches!(
        install_windowed(16, Some(12)),
        Err(InstallError::Decompress(DecompressError::WindowTooLarge {
            allowed: 4096,
            ..
        }))
    ));
}

#[test]
fn frame_window_above_the_device_is_refused() {
    assert_eq!(
        install_windowed(15, None).err(),
        Some(InstallError::Decompress(DecompressError::WindowTooLarge {
            requested: 32768,
            allowed: 16384
        }))
    );
}

#[test]
fn tampered_payload_is_refused() {
    let app = ts::app_image("1.1.0", 40_000);
    for window_log in [None, Some(14)] {
        let mut release = ts::release(
            &Spec {
                window_log,
                ..Spec::default()
            },
            app.clone(),
        );
        let at = release.ota.len() - 100;
        release.ota[at] ^= 0x40;
        let (r, _) = install(&release, 4096);
        if window_log.is_none() {
            // Stored: the payload digest is the first check to see it.
            assert_eq!(
                r,
                Err(InstallError::Format(FormatError::PayloadDigestMismatch))
            );
            continue;
        }
        // Compressed: the decoder may trip over the flipped bit first.
        assert!(
            matches!(
                r,
                Err(InstallError::Format(FormatError::PayloadDigestMismatch))
                    | Err(InstallError::Decompress(DecompressError::Corrupt))
                    | Err(InstallError::OutputTooShort)
                    | Err(InstallError::OutputTooLong)
            ),
            "{window_log:?}: {r:?}"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let app = ts::app_image("1.1.0", 20_000);
    let mut release = ts::release(&Spec::default(), app);
    release.ota.push(0);
    let (r, _) = install(&release, 4096);
    assert_eq!(r, Err(InstallError::Format(FormatError::TrailingBytes)));
}

#[test]
fn truncated_stream_is_refused() {
    let app = ts::app_image("1.1.0", 20_000);
    let mut release = ts::release(&Spec::default(), app);
    release.ota.truncate(release.ota.len() - 1);
    let (r, _) = install(&release, 4096);
    assert_eq!(r, Err(InstallError::Format(FormatError::Truncated)));
}

#[test]
fn output_of_another_size_than_signed_is_refused() {
    let app = ts::app_image("1.1.0", 20_000);
    let len = app.len() as u32;
    for (declared, expected) in [
        (len - 16, InstallError::OutputTooLong),
        (len + 16, InstallError::OutputTooShort),
    ] {
        let spec = Spec {
            declared_image_size: Some(declared),
            ..Spec::default()
        };
        let (r, _) = install(&ts::release(&spec, app.clone()), 4096);
        assert_eq!(r, Err(expected), "declared {declared}");
    }
}

#[test]
fn installed_digest_is_checked_from_flash() {
    let app = ts::app_image("1.1.0", 20_000);
    let spec = Spec {
        declared_image_sha256: Some([0xAB; 32]),
        ..Spec::default()
    };
    let (r, _) = install(&ts::release(&spec, app), 4096);
    assert_eq!(
        r,
        Err(InstallError::Format(FormatError::InstalledDigestMismatch))
    );
}

#[test]
fn app_image_for_another_chip_is_refused_even_when_signed() {
    let app = firmware(ota_testkit::Chip::Esp32c6).version("1.1.0");
    assert!(matches!(
        install_app(app.app_image()),
        Err(InstallError::AppImage(AppImageError::WrongChip { .. }))
    ));
}

#[test]
fn app_descriptor_version_must_equal_the_signed_version() {
    // An old build (1.0.0) signed as 1.1.0: it would pass the counter and version
    // checks, then report and decide on a version nobody signed.
    let app = ts::app_image("1.0.0", 20_000);
    let r = install_app(app);
    assert_eq!(
        r,
        Err(InstallError::AppVersionMismatch {
            signed: Version::parse("1.1.0").unwrap(),
            installed: Version::parse("1.0.0").unwrap(),
        })
    );
    // A descriptor whose version is not semver, or no descriptor at all, says
    // nothing the device could compare.
    let c3 = || firmware(ota_testkit::Chip::Esp32c3);
    for app in [c3().version("nightly"), c3().without_app_descriptor()] {
        let app = app.trusted_keys(&[ts::key(ts::SEED).verifying_key().to_bytes()]);
        assert_eq!(
            install_app(app.app_image()),
            Err(InstallError::NoAppVersion)
        );
    }
}

#[test]
fn firmware_that_trusts_no_key_is_refused() {
    let app = firmware(ota_testkit::Chip::Esp32c3).version("1.1.0");
    assert_eq!(
        install_app(app.app_image()),
        Err(InstallError::NoTrustedKeys)
    );
}

#[test]
fn two_different_key_descriptors_are_refused() {
    let mut app = ts::app_image("1.1.0", 20_000);
    let other = TrustedKeyDescriptor::new(&[[1; 32]]).to_bytes();
    // A second, different descriptor in the filler of the same segment.
    let at = app.len() / 2;
    app[at..at + ota_format::DESCRIPTOR_LEN].copy_from_slice(&other);
    ota_testkit::reseal(&mut app);
    let r = install_app(app);
    assert_eq!(
        r,
        Err(InstallError::Format(FormatError::AmbiguousDescriptor))
    );
}

#[test]
fn slot_is_read_back_whole_with_any_buffer() {
    // Descriptor and app descriptor straddle read boundaries for some of these sizes;
    // the answer must not depend on them.
    let app = ts::app_image("1.1.0", 20_000);
    let release = ts::release(&Spec::default(), app.clone());
    let keys = ts::trusted();
    let header = ota_format::verify_image(
        &release.ota,
        TrustedKeys::new(&keys),
        Expectations::default(),
    )
    .unwrap()
    .header;
    let expected = SlotContents {
        app_version: Version::parse("1.1.0"),
        trusted_keys: TrustedKeyDescriptor::find_in(&app).unwrap(),
        signature_sector: None,
    };
    assert!(expected.trusted_keys.is_some());
    let mut flash = TestFlash::strict(0x40000);
    flash.bytes_mut()[0x10000..0x10000 + app.len()].copy_from_slice(&app);
    let slot = Region::new(0x10000, 0x30000);
    for len in (4..400).step_by(4).chain([1024, 4096, 65536]) {
        let mut buf = vec![0u8; len];
        assert_eq!(
            read_back_slot(&mut flash, slot, &header, ts::chip(), &mut buf),
            Ok(expected),
            "read buffer {len}"
        );
    }
}

#[test]
fn restart_rewrites_from_zero() {
    let app = ts::app_image("1.1.0", 40_000);
    let release = ts::release(&Spec::default(), app.clone());
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut flash = TestFlash::strict(0x40000);
    let mut buffers = Buffers::default();
    let mut inst = Installer::<TestFlash>::new(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
    )
    .unwrap();
    let half = release.ota.len() / 2;
    inst.feed(&mut flash, &release.ota[..half]).unwrap();
    assert_eq!(inst.received(), half as u64);
    inst.restart();
    assert_eq!(inst.received(), 0);
    // The strict flash refuses writes to unerased bytes: this passes only if the
    // writer erases again after the restart.
    for piece in release.ota.chunks(3000) {
        inst.feed(&mut flash, piece).unwrap();
    }
    inst.finish(&mut flash).unwrap();
    assert!(slot_holds(&flash, &app));
}

#[test]
fn image_larger_than_the_slot_is_refused_before_download() {
    let app = ts::app_image("1.1.0", 20_000);
    let release = ts::release(&Spec::default(), app.clone());
    let mut flash = TestFlash::strict(0x40000);
    let small = Target {
        slot: Region::new(0x10000, 0x1000),
        ..target()
    };
    assert_eq!(
        install_with(&release, 4096, small, &mut flash),
        Err(InstallError::DoesNotFit {
            image: app.len() as u32,
            slot: 0x1000
        })
    );
}

#[test]
fn flash_and_slot_are_checked() {
    let app = ts::app_image("1.1.0", 20_000);
    let release = ts::release(&Spec::default(), app);
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let misaligned = Target {
        slot: Region::new(SLOT.offset + 0x100, SLOT.size),
        ..target()
    };
    let mut buffers = Buffers::default();
    let r = Installer::<TestFlash>::new(
        TrustedKeys::new(&keys),
        &manifest,
        misaligned,
        buffers.install(),
    );
    assert_eq!(r.err(), Some(InstallError::SlotNotEraseAligned));
    // A write size (128) the writer cannot pad a last piece to.
    let r = Installer::<ota_flash_sim::SimNorFlash<128, 4096>>::new(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
    );
    assert_eq!(r.err(), Some(InstallError::WriteBufferMisfit));
    let r = Installer::<TestFlash>::new(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
    );
    assert!(r.is_ok());
}

/// A release compressed with method 2 (window in flash) and a `2^window_log` window.
fn flash_window_release(app: Vec<u8>, window_log: u8) -> Release {
    ts::release(
        &Spec {
            window_log: Some(window_log),
            flash_window: true,
            ..Spec::default()
        },
        app,
    )
}

#[test]
fn method_2_images_install_with_windows_beyond_the_ring() {
    // Repetitions 40 KiB apart: matches reach 10 ring lengths back, into the slot.
    let app = ts::app_image("1.1.0", 150_000);
    for window_log in [16u8, 20, 23] {
        let release = flash_window_release(app.clone(), window_log);
        for chunk in [1000usize, 4096, 1 << 20] {
            let (r, flash) = install(&release, chunk);
            let installed = r.unwrap_or_else(|e| panic!("2^{window_log}/{chunk}: {e}"));
            assert!(slot_holds(&flash, &release.app));
            assert_eq!(
                installed.header().info.compression,
                ota_format::Compression::ZstdFlashWindow { window_log }
            );
        }
    }
}

/// Bytes zstd compresses to about 3/4: 16 KiB blocks stay above 8 KiB compressed.
fn half_random(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) & 0x3F
        })
        .collect()
}

#[test]
fn a_compressed_block_above_8_kib_is_refused_before_the_slot_holds_anything_switchable() {
    let app = ts::app_image("1.1.0", 60_000);
    let data = half_random(60_000);
    for (method, log) in [
        (
            ota_format::Compression::ZstdFlashWindow { window_log: 20 },
            20,
        ),
        (ota_format::Compression::Zstd { window_log: 14 }, 14),
    ] {
        let payload = ota_testkit::release::compress_blocks(&data, log, 128 * 1024);
        let release = ota_testkit::release::build_with_payload(
            &Spec::default(),
            app.clone(),
            payload,
            method,
        );
        let (r, _) = install(&release, 4096);
        match r {
            Err(InstallError::Decompress(DecompressError::BlockTooLarge { size, max: 8192 })) => {
                assert!(size > 8192, "{method}: {size}")
            }
            other => panic!("{method}: {other:?}"),
        }
    }
}

#[test]
fn the_64_kib_aligned_part_of_the_slot_is_erased_in_one_call_before_any_write() {
    // The slot starts on a 64 KiB boundary; the image ends 0x25xxx into it.
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 150_000));
    let size = release.app.len() as u32;
    let (r, flash) = install(&release, 4096);
    r.unwrap();
    let in_slot = |at: u32| (SLOT.offset..SLOT.offset + SLOT.size).contains(&at);
    let ops: Vec<_> = flash
        .log()
        .iter()
        .filter(|op| match op {
            FlashOp::Erase { from, .. } => in_slot(*from),
            FlashOp::Write { offset, .. } => in_slot(*offset),
        })
        .copied()
        .collect();
    let block_end = SLOT.offset + size / 0x10000 * 0x10000;
    assert_eq!(
        ops[0],
        FlashOp::Erase {
            from: SLOT.offset,
            to: block_end
        }
    );
    // The rest: 4 KiB sectors up to the image's end, each just before its first write.
    let sectors: Vec<u32> = ops[1..]
        .iter()
        .filter_map(|op| match op {
            FlashOp::Erase { from, to } => {
                assert_eq!(to - from, 0x1000);
                Some(*from)
            }
            FlashOp::Write { .. } => None,
        })
        .collect();
    let expected: Vec<u32> = (block_end..SLOT.offset + size.next_multiple_of(0x1000))
        .step_by(0x1000)
        .collect();
    assert_eq!(sectors, expected);
}

/// Where the delta tests keep the running image: the other slot.
const BASE_SLOT: Region = Region::new(0x40000, 0x30000);

/// A flash holding `base` in [`BASE_SLOT`], and the base as a delta sees it.
fn flash_with_base(base: &[u8]) -> (TestFlash, Base) {
    let mut flash = TestFlash::strict(0x80000);
    let at = BASE_SLOT.offset as usize;
    flash.bytes_mut()[at..at + base.len()].copy_from_slice(base);
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(base).into()
    };
    let base = Base {
        slot: BASE_SLOT,
        size: base.len() as u32,
        sha256: digest,
    };
    (flash, base)
}

fn install_delta(
    release: &Release,
    delta: &[u8],
    flash: &mut TestFlash,
    base: Base,
) -> Result<InstalledImage, InstallError> {
    install_delta_in(release, delta, flash, base, 700)
}

/// Installs `delta` fed in `chunk`-sized pieces into any flash.
fn install_delta_in<F: NorFlash>(
    release: &Release,
    delta: &[u8],
    flash: &mut F,
    base: Base,
    chunk: usize,
) -> Result<InstalledImage, InstallError> {
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut buffers = Buffers::default();
    let mut inst = Installer::<F>::new_delta(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
        base,
    )?;
    assert_eq!(inst.file_size(), None, "unknown before the headers");
    for piece in delta.chunks(chunk) {
        inst.feed(flash, piece)?;
    }
    assert_eq!(inst.file_size(), Some(delta.len() as u64));
    inst.finish(flash)
}

#[test]
fn an_encoding_3_in_place_pass_is_one_sector_erase_per_step_and_a_full_image_has_none() {
    use ota_testkit::delta::build_difference_delta;
    let base_app = ts::app_image("1.0.0", 60_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 60_000));
    let delta = build_difference_delta(&base_app, &release, ts::SEED);
    let (mut flash, base) = flash_with_base(&base_app);
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut buffers = Buffers::default();
    let mut inst = Installer::new_delta(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
        base,
    )
    .unwrap();
    inst.feed(&mut flash, &delta.file).unwrap();
    let mut finishing = inst.finish_download(&mut flash).unwrap();
    let sectors = release.app.len().div_ceil(4096);
    let mut steps = 0;
    loop {
        let erases_before = slot_ops(&flash)
            .iter()
            .filter(|op| matches!(op, FlashOp::Erase { .. }))
            .count();
        let done = finishing.step(&mut flash).unwrap();
        let erases = slot_ops(&flash)
            .iter()
            .filter(|op| matches!(op, FlashOp::Erase { .. }))
            .count()
            - erases_before;
        if done {
            assert_eq!(erases, 0, "the last step only checks the records' end");
            break;
        }
        // What lets a caller yield between erases: never two in one step.
        assert_eq!(erases, 1, "step {steps}");
        steps += 1;
        assert!(steps <= sectors, "more steps than sectors");
    }
    assert_eq!(steps, sectors);
    let installed = finishing.prove(&mut flash).unwrap();
    assert_eq!(installed.app_version(), Version::parse("1.1.0").unwrap());
    assert!(slot_holds(&flash, &release.app));

    // A full image: nothing left after the download but the read-back.
    let mut buffers = Buffers::default();
    let (mut flash, _) = flash_with_base(&base_app);
    let mut inst = Installer::new(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
    )
    .unwrap();
    inst.feed(&mut flash, &release.ota).unwrap();
    let mut finishing = inst.finish_download(&mut flash).unwrap();
    assert!(finishing.step(&mut flash).unwrap());
    assert!(finishing.prove(&mut flash).is_ok());
}

#[test]
fn a_flash_failure_in_the_in_place_pass_is_a_flash_error_at_the_erase_and_at_the_reads() {
    use ota_testkit::delta::build_difference_delta;
    let base_app = ts::app_image("1.0.0", 30_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 30_000));
    let delta = build_difference_delta(&base_app, &release, ts::SEED);
    let (mut flash, base) = flash_with_base(&base_app);
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut buffers = Buffers::default();
    let mut inst = Installer::new_delta(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
        base,
    )
    .unwrap();
    inst.feed(&mut flash, &delta.file).unwrap();
    let mut finishing = inst.finish_download(&mut flash).unwrap();
    assert_eq!(finishing.step(&mut flash), Ok(false));
    // The next sector's erase is torn: the chip stops answering.
    flash.cut_after(flash.operations());
    assert!(matches!(
        finishing.step(&mut flash),
        Err(InstallError::Flash(_))
    ));
    // Then the patcher's own reads fail (diff, base, control): a flash error too, not a
    // corrupt stream.
    assert!(matches!(
        finishing.step(&mut flash),
        Err(InstallError::Flash(_))
    ));
}

#[test]
fn a_delta_installs_the_released_image_reading_the_base_slot_only() {
    let base_app = ts::app_image("1.0.0", 100_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 100_000));
    let delta = ota_testkit::delta::build_delta(&base_app, &release, ts::SEED);
    let (mut flash, base) = flash_with_base(&base_app);
    let installed = install_delta(&release, &delta.file, &mut flash, base).unwrap();
    assert!(slot_holds(&flash, &release.app));
    assert_eq!(installed.app_version(), Version::parse("1.1.0").unwrap());
    // The same proof as a full install: the header is the released image's.
    let full = install(&release, 4096).0.unwrap();
    assert_eq!(installed.header(), full.header());
    let base_range = BASE_SLOT.offset..BASE_SLOT.offset + BASE_SLOT.size;
    assert!(
        flash.log().iter().all(|op| match op {
            FlashOp::Erase { from, .. } => !base_range.contains(from),
            FlashOp::Write { offset, .. } => !base_range.contains(offset),
        }),
        "the running slot was written"
    );
}

#[test]
fn a_delta_is_refused_for_another_base_and_when_its_output_is_not_the_image() {
    let base_app = ts::app_image("1.0.0", 100_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 100_000));
    // Another base: refused at the delta header, before anything is written.
    let other = ts::app_image("1.0.0", 90_000);
    let delta = ota_testkit::delta::build_delta(&other, &release, ts::SEED);
    let (mut flash, base) = flash_with_base(&base_app);
    assert_eq!(
        install_delta(&release, &delta.file, &mut flash, base).err(),
        Some(FormatError::DeltaBaseMismatch.into())
    );
    assert!(flash.log().is_empty());
    // A payload (validly signed) that decodes to another valid app image of the same
    // size: only the installed digest tells them apart.
    let wrong = ota_testkit::TestFirmware::new(ota_testkit::Chip::Esp32c3)
        .version("1.1.0")
        .trusted_keys(&[ts::key(ts::SEED).verifying_key().to_bytes()])
        .payload_size(100_000)
        .seed(4242)
        .app_image();
    assert_eq!(wrong.len(), release.app.len());
    assert_ne!(wrong, release.app);
    let log = ota_testkit::delta::window_log_for(base_app.len(), wrong.len());
    let swapped = ota_testkit::delta::build_delta_with_payload(
        &base_app,
        &release,
        ts::SEED,
        ota_testkit::delta::delta_payload(&base_app, &wrong, log),
        log,
    );
    let (mut flash, base) = flash_with_base(&base_app);
    assert_eq!(
        install_delta(&release, &swapped.file, &mut flash, base).err(),
        Some(FormatError::InstalledDigestMismatch.into())
    );
}

/// The slot operations of a flash log (the running slot's would be a bug of their own).
fn slot_ops(flash: &TestFlash) -> Vec<FlashOp> {
    let in_slot = |at: u32| (SLOT.offset..SLOT.offset + SLOT.size).contains(&at);
    flash
        .log()
        .iter()
        .filter(|op| match op {
            FlashOp::Erase { from, .. } => in_slot(*from),
            FlashOp::Write { offset, .. } => in_slot(*offset),
        })
        .copied()
        .collect()
}

#[test]
fn an_encoding_3_delta_is_decoded_then_applied_in_place_reading_the_base_slot_only() {
    use ota_testkit::delta::{build_difference_delta, difference_stream};
    let base_app = ts::app_image("1.0.0", 100_000);
    // Another size than the base: diff, padding and control records all move.
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 90_000));
    let delta = build_difference_delta(&base_app, &release, ts::SEED);
    let stream_size = difference_stream(&base_app, &release.app).len() as u32;
    assert_eq!(
        delta.encoding,
        ota_format::DeltaEncoding::Difference { stream_size }
    );
    for chunk in [1usize, 700, 4096, 1 << 20] {
        if chunk == 1 && cfg!(debug_assertions) && delta.file.len() > 20_000 {
            continue; // byte by byte only where it is quick
        }
        let (mut flash, base) = flash_with_base(&base_app);
        let installed = install_delta_in(&release, &delta.file, &mut flash, base, chunk)
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        assert!(slot_holds(&flash, &release.app), "chunk {chunk}");
        assert_eq!(installed.app_version(), Version::parse("1.1.0").unwrap());
        let full = install(&release, 4096).0.unwrap();
        assert_eq!(installed.header(), full.header());
        let base_range = BASE_SLOT.offset..BASE_SLOT.offset + BASE_SLOT.size;
        assert!(
            flash.log().iter().all(|op| match op {
                FlashOp::Erase { from, .. } => !base_range.contains(from),
                FlashOp::Write { offset, .. } => !base_range.contains(offset),
            }),
            "the running slot was written"
        );
        // Pass 1 wrote the whole stream (control records included, still there); pass 2
        // erased and rewrote each sector of the image once, in order, and nothing else.
        let image_size = release.app.len() as u32;
        let control = SLOT.offset + ota_format::diff::control_offset(image_size);
        let at = control as usize;
        let stream = difference_stream(&base_app, &release.app);
        assert_eq!(
            flash.bytes()[at..at + (stream.len() - (control - SLOT.offset) as usize)],
            stream[(control - SLOT.offset) as usize..]
        );
        let sectors = image_size.div_ceil(4096) as usize;
        let ops = slot_ops(&flash);
        let pass_2 = &ops[ops.len() - 2 * sectors..];
        for (k, pair) in pass_2.chunks(2).enumerate() {
            let from = SLOT.offset + 4096 * k as u32;
            let len = (image_size - 4096 * k as u32).min(4096) as usize;
            assert_eq!(
                pair,
                [
                    FlashOp::Erase {
                        from,
                        to: from + 4096
                    },
                    FlashOp::Write {
                        offset: from,
                        len: len.next_multiple_of(4)
                    }
                ],
                "chunk {chunk}, sector {k}"
            );
        }
        // Pass 1's writes end at the stream's end (padded to the write size).
        let last_pass_1 = ops[..ops.len() - 2 * sectors]
            .iter()
            .rev()
            .find_map(|op| match op {
                FlashOp::Write { offset, len } => Some(offset + *len as u32),
                FlashOp::Erase { .. } => None,
            })
            .unwrap();
        assert_eq!(last_pass_1, SLOT.offset + stream_size.next_multiple_of(4));
    }
}

/// A flash that reads only whole 4-byte words at word addresses, as some drivers do.
struct WordReads(TestFlash);

impl embedded_storage::nor_flash::ErrorType for WordReads {
    type Error = <TestFlash as embedded_storage::nor_flash::ErrorType>::Error;
}

impl embedded_storage::nor_flash::ReadNorFlash for WordReads {
    const READ_SIZE: usize = 4;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(ota_flash_sim::SimFlashError::NotAligned {
                op: "read",
                offset,
                len: bytes.len(),
            });
        }
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl NorFlash for WordReads {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

#[test]
fn an_encoding_3_delta_reads_a_word_read_flash_at_word_boundaries_only() {
    // The patcher asks for diff, base and control bytes at any offset and length.
    let base_app = ts::app_image("1.0.0", 60_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 60_001));
    let delta = ota_testkit::delta::build_difference_delta(&base_app, &release, ts::SEED);
    let (flash, base) = flash_with_base(&base_app);
    let mut flash = WordReads(flash);
    install_delta_in(&release, &delta.file, &mut flash, base, 4096).unwrap();
    assert!(slot_holds(&flash.0, &release.app));
}

#[test]
fn an_encoding_3_stream_larger_than_the_slot_is_refused_at_its_header() {
    use ota_testkit::delta::{build_difference_delta, build_encoded_delta};
    let base_app = ts::app_image("1.0.0", 60_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 60_000));
    let good = build_difference_delta(&base_app, &release, ts::SEED);
    let payload_at = good.file.len()
        - ota_format::inspect_delta_header(&good.file)
            .unwrap()
            .0
            .payload_size as usize;
    let delta = build_encoded_delta(
        &base_app,
        &release,
        ts::SEED,
        good.file[payload_at..].to_vec(),
        good.window_log,
        ota_format::DeltaEncoding::Difference {
            stream_size: SLOT.size + 1,
        },
    );
    let keys = ts::trusted();
    let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
    let mut buffers = Buffers::default();
    let (mut flash, base) = flash_with_base(&base_app);
    let mut inst = Installer::<TestFlash>::new_delta(
        TrustedKeys::new(&keys),
        &manifest,
        target(),
        buffers.install(),
        base,
    )
    .unwrap();
    // The delta header alone: refused before a payload byte arrives.
    let header_len = ota_format::DELTA_HEADER_LEN;
    assert_eq!(
        inst.feed(&mut flash, &delta.file[..header_len]),
        Err(InstallError::DoesNotFit {
            image: SLOT.size + 1,
            slot: SLOT.size
        })
    );
    assert!(flash.log().is_empty());
    // And stays refused.
    assert!(inst.feed(&mut flash, &delta.file[header_len..]).is_err());
    assert!(flash.log().is_empty());
}

#[test]
fn a_corrupt_encoding_3_stream_is_refused_and_host_and_device_agree() {
    use ota_format::diff::Record;
    use ota_testkit::delta::{
        build_difference_delta_with_stream, difference_stream, stream_with_records,
    };
    let base_app = ts::app_image("1.0.0", 60_000);
    let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 70_000));
    let (image_len, base_len) = (release.app.len() as u32, base_app.len() as u32);
    let good = difference_stream(&base_app, &release.app);
    let control = ota_format::diff::control_offset(image_len) as usize;
    let record = |add_len, copy_len, seek| Record {
        add_len,
        copy_len,
        seek,
    };
    let cases: Vec<(&str, Vec<u8>, Option<u32>)> = vec![
        (
            "an add run beyond the base",
            stream_with_records(
                &good,
                release.app.len(),
                &[
                    record(16, 0, base_len as i32 - 32),
                    record(image_len - 16, 0, 0),
                ],
            ),
            None,
        ),
        (
            "a seek before the base",
            stream_with_records(&good, release.app.len(), &[record(0, 16, -1)]),
            None,
        ),
        (
            "records ending before the image",
            stream_with_records(&good, release.app.len(), &[record(0, image_len - 1, 0)]),
            None,
        ),
        (
            "a trailing record",
            stream_with_records(
                &good,
                release.app.len(),
                &[record(0, image_len, 0), record(0, 0, 0)],
            ),
            None,
        ),
        (
            "shorter than the image's diff bytes",
            good[..control - 1].to_vec(),
            None,
        ),
        (
            "declared one byte longer than decoded",
            good.clone(),
            Some(good.len() as u32 + 1),
        ),
        (
            "declared one byte shorter than decoded",
            good.clone(),
            Some(good.len() as u32 - 1),
        ),
    ];
    let keys = ts::trusted();
    for (name, stream, declared) in cases {
        let mut delta = build_difference_delta_with_stream(&base_app, &release, ts::SEED, &stream);
        if let Some(stream_size) = declared {
            let payload_at = delta.file.len()
                - ota_format::inspect_delta_header(&delta.file)
                    .unwrap()
                    .0
                    .payload_size as usize;
            delta = ota_testkit::delta::build_encoded_delta(
                &base_app,
                &release,
                ts::SEED,
                delta.file[payload_at..].to_vec(),
                delta.window_log,
                ota_format::DeltaEncoding::Difference { stream_size },
            );
        }
        let (mut flash, base) = flash_with_base(&base_app);
        let device = install_delta(&release, &delta.file, &mut flash, base).err();
        let verified = ota_format::verify_delta(
            &delta.file,
            TrustedKeys::new(&keys),
            ota_format::DeltaExpectations::default(),
        )
        .unwrap();
        let payload_at = delta.file.len() - verified.delta.info.payload_size as usize;
        let host = crate::contents::decode_delta_payload(
            &verified.delta.info,
            &delta.file[payload_at..],
            &base_app,
            image_len,
        )
        .err();
        let expected = match declared {
            Some(size) if size > good.len() as u32 => InstallError::OutputTooShort,
            Some(_) => InstallError::OutputTooLong,
            None => InstallError::Decompress(DecompressError::Corrupt),
        };
        assert_eq!(device, Some(expected), "{name}: device");
        assert_eq!(host, Some(expected), "{name}: host");
    }
}

/// RV32 code full of `auipc`/`jalr` pairs, after a 2-byte instruction so that pairs
/// straddle every 4 KiB boundary; `shift` moves every pair's target.
fn pair_code(len: usize, shift: u32, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u32
    };
    let mut code = vec![0x01, 0x00]; // c.nop
    while code.len() < len {
        let rd = 1 + next() % 31;
        let value = (next() & 0x00FF_FFFF).wrapping_add(shift);
        let lo = value & 0xFFF;
        let hi = value.wrapping_sub(((lo << 20) as i32 >> 20) as u32);
        let auipc = (hi & 0xFFFF_F000) | (rd << 7) | 0x17;
        let jalr = (lo << 20) | (rd << 15) | (1 << 7) | 0x67;
        code.extend_from_slice(&auipc.to_le_bytes());
        code.extend_from_slice(&jalr.to_le_bytes());
    }
    code.truncate(len);
    code
}

#[test]
fn the_in_place_pass_turns_any_stream_into_its_target_across_sector_boundaries() {
    use ota_format::diff::{DiffPatcher, SliceSource, control_offset};
    let base = pair_code(20_000, 0, 7);
    for image_size in [
        1usize, 4095, 4096, 4097, 4100, 8191, 8192, 8193, 12_289, 19_999,
    ] {
        // The same code moved by 0x1234 (every pair's bytes change), a few bytes
        // inserted in front.
        let mut target = vec![0x13, 0, 0, 0];
        target.extend(pair_code(image_size, 0x1234, 7));
        target.truncate(image_size);
        let stream = ota_testkit::delta::difference_stream(&base, &target);
        let size = image_size as u32;
        let (stream_size, base_size) = (stream.len() as u32, base.len() as u32);
        // The host's way: one fill over the stream in memory.
        let mut expected = vec![0u8; image_size];
        let mut patcher = DiffPatcher::new(size, base_size, stream_size).unwrap();
        let mut slices = SliceSource {
            stream: &stream,
            base: &base,
            control_offset: control_offset(size),
        };
        patcher.fill(&mut slices, &mut expected).unwrap();
        patcher.finish().unwrap();
        assert_eq!(expected, target, "{image_size}: host");
        // The device's: the stream in the slot as pass 1 leaves it, rewritten in place.
        let (mut flash, base_region) = flash_with_base(&base);
        let at = SLOT.offset as usize;
        let written = stream.len().next_multiple_of(4);
        flash
            .erase(
                SLOT.offset,
                SLOT.offset + written.next_multiple_of(4096) as u32,
            )
            .unwrap();
        let mut padded = stream.clone();
        padded.resize(written, 0xFF);
        flash.write(SLOT.offset, &padded).unwrap();
        let mut flash = WordReads(flash);
        let mut buf = vec![0u8; crate::zstd::BLOCK];
        let mut pass = InPlace {
            patcher: DiffPatcher::new(size, base_size, stream_size).unwrap(),
            base: base_region,
            at: 0,
        };
        while pass.at < size {
            pass.at += apply_sector(&mut flash, SLOT, &mut pass, size, &mut buf)
                .unwrap_or_else(|e| panic!("{image_size}: {e}"));
        }
        pass.patcher.finish().unwrap();
        assert_eq!(
            flash.0.bytes()[at..at + image_size],
            target,
            "{image_size}: device"
        );
    }
}
