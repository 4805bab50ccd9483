use espflash::flasher::{FlashSettings, FlashSize};
use ota_format::esp::{AppDescriptor, AppImageError, ValidateOptions, validate};
use ota_format::{ChipId, FormatError, Version};
use ota_testkit::{Chip, Corruption, TestFirmware, corrupt};
use sha2::{Digest, Sha256};

use super::*;

const KEY: [u8; 32] = [0x5A; 32];

fn fw(chip: Chip) -> TestFirmware {
    TestFirmware::new(chip)
        .version("1.4.2-rc.1")
        .project_name("thermostat")
        .trusted_keys(&[KEY])
        .payload_size(150_000)
        .seed(11)
}

fn elf_err(elf: &[u8], chip: ChipId) -> FirmwareError {
    load_elf(elf, chip, &ElfOptions::default()).unwrap_err()
}

#[test]
fn elf_round_trips_through_espflash_for_every_chip() {
    for chip in Chip::ALL {
        for with_metadata in [true, false] {
            let mut t = fw(chip);
            if !with_metadata {
                t = t.without_build_metadata();
            }
            let elf = t.elf();
            let firmware = load_elf(&elf, chip.id(), &ElfOptions::default())
                .unwrap_or_else(|e| panic!("{chip:?} metadata={with_metadata}: {e}"));
            assert_eq!(firmware.chip, chip.id());
            assert_eq!(firmware.version, Version::parse("1.4.2-rc.1").unwrap());
            assert_eq!(firmware.version_text, "1.4.2-rc.1");
            assert_eq!(firmware.project_name, "thermostat");
            let keys = firmware.trusted_keys.unwrap();
            assert_eq!(keys.keys().len(), 1);
            assert_eq!(keys.keys()[0].public_key, KEY);

            // The validator accepts espflash's output on its own terms too.
            let info = validate(
                &firmware.app_image,
                ValidateOptions::default().chip(chip.id()),
            )
            .unwrap();
            assert_eq!(info.len as usize, firmware.app_image.len());
            assert_eq!(info.header.entry_addr, chip.layout().irom);
            // espflash records the ELF's SHA-256 in the descriptor.
            let desc = AppDescriptor::find_in_image(&firmware.app_image).unwrap();
            assert_eq!(desc.app_elf_sha256()[..], Sha256::digest(&elf)[..]);
            // Flash segments sit at their MMU page offset, as the bootloader needs.
            for seg in info.segments() {
                if seg.load_addr == chip.layout().irom {
                    assert_eq!(seg.data_offset % 0x10000, seg.load_addr % 0x10000);
                }
            }
        }
    }
}

#[test]
fn elf_for_another_chip_of_the_same_architecture() {
    let err = elf_err(&fw(Chip::Esp32s3).elf(), ChipId::ESP32);
    assert!(
        matches!(err, FirmwareError::ElfChipMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "ELF is for esp32s3 but --chip esp32 was given"
    );

    let err = elf_err(&fw(Chip::Esp32c6).elf(), ChipId::ESP32C3);
    assert_eq!(
        err.to_string(),
        "ELF is for esp32c6 but --chip esp32c3 was given"
    );

    // Without esp-hal metadata the app descriptor's flash window decides.
    let bare = |chip| fw(chip).without_build_metadata().elf();
    let err = elf_err(&bare(Chip::Esp32), ChipId::ESP32S3);
    assert_eq!(
        err.to_string(),
        "ELF is for esp32 but --chip esp32s3 was given"
    );
    let err = elf_err(&bare(Chip::Esp32c3), ChipId::ESP32C6);
    assert_eq!(
        err.to_string(),
        "ELF is for esp32c3 or esp32c2 but --chip esp32c6 was given"
    );
    match elf_err(&bare(Chip::Esp32c6), ChipId::ESP32C3) {
        FirmwareError::ElfChipMismatch { elf, given } => {
            assert!(elf.contains("esp32c6") && !elf.contains("esp32c3"), "{elf}");
            assert_eq!(given, ChipId::ESP32C3);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn elf_for_another_architecture() {
    let err = elf_err(&fw(Chip::Esp32s3).elf(), ChipId::ESP32C3);
    assert!(matches!(
        err,
        FirmwareError::ElfArchMismatch {
            machine: 94,
            given: ChipId::ESP32C3,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "ELF is for Xtensa (e_machine 94) but --chip esp32c3 is a RISC-V chip"
    );
    let err = elf_err(&fw(Chip::Esp32c3).elf(), ChipId::ESP32S3);
    assert!(matches!(
        err,
        FirmwareError::ElfArchMismatch { machine: 243, .. }
    ));
}

#[test]
fn detect_elf_chips_names_the_chip() {
    for chip in Chip::ALL {
        assert_eq!(detect_elf_chips(&fw(chip).elf()).unwrap(), [chip.id()]);
    }
    let s3 = detect_elf_chips(&fw(Chip::Esp32s3).without_build_metadata().elf()).unwrap();
    assert_eq!(s3, [ChipId::ESP32S3]);
}

#[test]
fn not_an_elf() {
    let err = elf_err(b"\x7fELF but not really", ChipId::ESP32C3);
    assert!(matches!(err, FirmwareError::NotElf(_)), "{err:?}");
    let image = fw(Chip::Esp32c3).app_image();
    assert!(matches!(
        elf_err(&image, ChipId::ESP32C3),
        FirmwareError::NotElf(_)
    ));
}

#[test]
fn missing_app_descriptor() {
    let elf = fw(Chip::Esp32c3).without_app_descriptor().elf();
    assert!(matches!(
        elf_err(&elf, ChipId::ESP32C3),
        FirmwareError::MissingAppDescriptor
    ));
    let image = fw(Chip::Esp32c3).without_app_descriptor().app_image();
    assert!(matches!(
        load_app_image(image, ChipId::ESP32C3).unwrap_err(),
        FirmwareError::MissingAppDescriptor
    ));
    let image = corrupt(&fw(Chip::Esp32).app_image(), Corruption::AppDescriptorMagic);
    let err = load_app_image(image, ChipId::ESP32).unwrap_err();
    assert!(matches!(err, FirmwareError::MissingAppDescriptor));
    assert!(err.to_string().contains("esp_app_desc!()"));
}

#[test]
fn version_must_be_semver() {
    for bad in ["1.2", "v1", "1.2.3.4", "01.2.3", "latest", ""] {
        let t = fw(Chip::Esp32c6).version(bad);
        match load_elf(&t.elf(), ChipId::ESP32C6, &ElfOptions::default()).unwrap_err() {
            FirmwareError::VersionNotSemver(v) => assert_eq!(v, bad),
            e => panic!("{bad:?}: {e:?}"),
        }
        assert!(matches!(
            load_app_image(t.app_image(), ChipId::ESP32C6).unwrap_err(),
            FirmwareError::VersionNotSemver(_)
        ));
    }
}

#[test]
fn app_image_input_is_checked() {
    let image = fw(Chip::Esp32c3).app_image();
    let ok = load_app_image(image.clone(), ChipId::ESP32C3).unwrap();
    assert_eq!(ok.app_image, image);
    assert_eq!(ok.info.image_sha256[..], Sha256::digest(&image)[..]);

    let err = load_app_image(image.clone(), ChipId::ESP32S3).unwrap_err();
    assert!(matches!(
        err,
        FirmwareError::AppImageChipMismatch {
            image: ChipId::ESP32C3,
            given: ChipId::ESP32S3
        }
    ));
    assert_eq!(
        err.to_string(),
        "app image is for esp32c3 but --chip esp32s3 was given"
    );

    let cases = [
        (
            Corruption::Magic(0x7F),
            AppImageError::BadMagic { found: 0x7F },
        ),
        (Corruption::Digest, AppImageError::DigestMismatch),
        (Corruption::StripDigest, AppImageError::DigestMissing),
        (Corruption::Truncate(1000), AppImageError::Truncated),
        (
            Corruption::Trailing(16),
            AppImageError::TrailingBytes { len: 16 },
        ),
        (
            Corruption::SegmentLength {
                index: 0,
                len: 0x7FFF_FFFC,
            },
            AppImageError::SegmentTooLarge {
                index: 0,
                len: 0x7FFF_FFFC,
            },
        ),
    ];
    for (how, expected) in cases {
        match load_app_image(corrupt(&image, how), ChipId::ESP32C3).unwrap_err() {
            FirmwareError::AppImage(e) => assert_eq!(e, expected, "{how:?}"),
            e => panic!("{how:?}: {e:?}"),
        }
    }
    let err = load_app_image(corrupt(&image, Corruption::Checksum), ChipId::ESP32C3).unwrap_err();
    assert!(matches!(
        err,
        FirmwareError::AppImage(AppImageError::ChecksumMismatch { .. })
    ));
    assert!(
        err.to_string()
            .starts_with("invalid app image: checksum mismatch")
    );
}

#[test]
fn trusted_keys_absent_or_ambiguous() {
    let none = TestFirmware::new(Chip::Esp32s3).version("2.0.0");
    assert_eq!(
        load_app_image(none.app_image(), ChipId::ESP32S3)
            .unwrap()
            .trusted_keys,
        None
    );
    let firmware = load_elf(&none.elf(), ChipId::ESP32S3, &ElfOptions::default()).unwrap();
    assert_eq!(firmware.trusted_keys, None);

    // A second, different descriptor written into the payload.
    let other = ota_format::TrustedKeyDescriptor::new(&[[1; 32]]).to_bytes();
    let mut with_desc = fw(Chip::Esp32c3).app_image();
    let at = with_desc.len() - 2000;
    with_desc[at..at + other.len()].copy_from_slice(&other);
    ota_testkit::reseal(&mut with_desc);
    assert!(matches!(
        load_app_image(with_desc, ChipId::ESP32C3).unwrap_err(),
        FirmwareError::KeyDescriptor(FormatError::AmbiguousDescriptor)
    ));
}

#[test]
fn image_larger_than_the_flash_allows() {
    // espflash assumes a 1 MB app partition for esp32s3 when no flash size is given.
    let big = TestFirmware::new(Chip::Esp32s3)
        .version("1.0.0")
        .payload_size(1_200_000);
    let elf = big.elf();
    match elf_err(&elf, ChipId::ESP32S3) {
        FirmwareError::TooLargeForFlash { size, partition } => {
            assert!(size > 1_200_000);
            assert_eq!(partition, 0x10_0000);
        }
        e => panic!("{e:?}"),
    }
    let opts = ElfOptions {
        flash: FlashSettings::new(None, Some(FlashSize::_4Mb), None),
    };
    let firmware = load_elf(&elf, ChipId::ESP32S3, &opts).unwrap();
    assert_eq!(firmware.info.header.spi_size, 2, "4 MB in the header");
}
