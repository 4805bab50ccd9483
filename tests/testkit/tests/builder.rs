use object::read::elf::{ElfFile32, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use ota_format::esp::{AppImageError, DigestPolicy, ValidateOptions, find_descriptors, validate};
use ota_format::{ChipId, TrustedKeyDescriptor};
use ota_testkit::{Chip, Corruption, TestFirmware, corrupt, filler};

const KEY: [u8; 32] = [0x42; 32];

fn fw(chip: Chip) -> TestFirmware {
    TestFirmware::new(chip)
        .version("1.2.0")
        .project_name("thermo")
        .trusted_keys(&[KEY])
        .payload_size(20_000)
        .seed(7)
}

#[test]
fn elf_has_the_shape_of_an_esp_build() {
    for chip in Chip::ALL {
        let bytes = fw(chip).elf();
        let elf = ElfFile32::<Endianness>::parse(&*bytes).unwrap();
        let header = elf.elf_header();
        let layout = chip.layout();
        assert_eq!(
            header.e_machine(Endianness::Little).0,
            layout.e_machine,
            "{chip:?}"
        );
        assert_eq!(header.e_flags(Endianness::Little).0, layout.e_flags);
        assert_eq!(header.e_type(Endianness::Little), object::elf::ET_EXEC);
        assert_eq!(elf.entry(), u64::from(layout.irom));

        let desc = elf.section_by_name(".flash.appdesc").unwrap();
        assert_eq!(desc.address(), u64::from(layout.drom));
        assert_eq!(&desc.data().unwrap()[..4], &0xABCD_5432u32.to_le_bytes());
        assert_eq!(&desc.data().unwrap()[16..21], b"1.2.0");
        let rodata = elf.section_by_name(".rodata").unwrap();
        assert_eq!(rodata.address(), u64::from(layout.drom) + 256);
        let text = elf.section_by_name(".text").unwrap();
        assert_eq!(text.address(), u64::from(layout.irom));
        assert!(text.size() >= 12_000);
        assert_eq!(
            elf.section_by_name(".data").unwrap().address(),
            u64::from(layout.dram)
        );
        assert_eq!(
            elf.section_by_name(".rwtext").unwrap().address(),
            u64::from(layout.iram)
        );

        let loads = elf
            .elf_program_headers()
            .iter()
            .filter(|p| p.p_type(Endianness::Little) == object::elf::PT_LOAD)
            .count();
        assert_eq!(loads, 5);

        let chip_name = elf
            .symbols()
            .find(|s| s.name() == Ok("build_info.CHIP_NAME"))
            .unwrap();
        let meta = elf.section_by_name(".espressif.metadata").unwrap();
        let name =
            &meta.data().unwrap()[chip_name.address() as usize..][..chip_name.size() as usize];
        assert_eq!(name, chip.name().as_bytes());
        assert!(elf.symbols().any(|s| s.name() == Ok("esp_app_desc")));

        let keys = TrustedKeyDescriptor::find_in(&bytes).unwrap().unwrap();
        assert_eq!(keys.keys()[0].public_key, KEY);
    }
}

#[test]
fn optional_parts_can_be_left_out() {
    let bytes = TestFirmware::new(Chip::Esp32c3)
        .without_app_descriptor()
        .without_build_metadata()
        .elf();
    let elf = ElfFile32::<Endianness>::parse(&*bytes).unwrap();
    assert!(elf.section_by_name(".flash.appdesc").is_none());
    assert!(elf.section_by_name(".espressif.metadata").is_none());
    assert!(!elf.symbols().any(|s| s.name() == Ok("OTA_TRUSTED_KEYS")));
    assert_eq!(TrustedKeyDescriptor::find_in(&bytes).unwrap(), None);
    assert_eq!(
        elf.section_by_name(".rodata").unwrap().address(),
        u64::from(Chip::Esp32c3.layout().drom)
    );
}

#[test]
fn app_image_is_valid_for_its_chip() {
    for chip in Chip::ALL {
        let image = fw(chip).app_image();
        let info = validate(&image, ValidateOptions::default().chip(chip.id())).unwrap();
        assert_eq!(info.len as usize, image.len());
        assert_eq!(info.header.entry_addr, chip.layout().irom);
        let addrs: Vec<u32> = info.segments().iter().map(|s| s.load_addr).collect();
        let l = chip.layout();
        assert_eq!(addrs, [l.drom, l.irom, l.dram, l.iram]);
        let found = find_descriptors(&image).unwrap();
        assert_eq!(found.app.version(), "1.2.0");
        assert_eq!(found.app.project_name(), "thermo");
        assert_eq!(found.app.mmu_page_size(), 16);
        assert_eq!(found.trusted_keys.unwrap().keys()[0].public_key, KEY);
        assert_eq!(info.app_descriptor().unwrap(), found.app);
    }
}

#[test]
fn markers_land_in_rodata_of_a_valid_image() {
    let marked = fw(Chip::Esp32c3)
        .marker("OTA-SIM-BEHAVIOUR:hang")
        .marker("second");
    let image = marked.app_image();
    validate(&image, ValidateOptions::default().chip(ChipId::ESP32C3)).unwrap();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    // Right after the key descriptor, NUL-terminated, in the order given.
    let keys = find(&image, &ota_format::DESCRIPTOR_MAGIC).unwrap();
    let at = keys + ota_format::DESCRIPTOR_LEN;
    assert_eq!(&image[at..at + 23], b"OTA-SIM-BEHAVIOUR:hang\0");
    assert_eq!(&image[at + 23..at + 30], b"second\0");
    // The descriptors are untouched and the ELF carries the same bytes.
    assert_eq!(find_descriptors(&image).unwrap().app.version(), "1.2.0");
    let elf = marked.elf();
    let elf = ElfFile32::<Endianness>::parse(&*elf).unwrap();
    let rodata = elf.section_by_name(".rodata").unwrap();
    assert!(find(rodata.data().unwrap(), b"OTA-SIM-BEHAVIOUR:hang\0").is_some());
    // Unmarked firmware has no marker.
    assert!(find(&fw(Chip::Esp32c3).app_image(), b"OTA-SIM-BEHAVIOUR").is_none());
}

#[test]
fn output_is_deterministic_per_seed() {
    let a = fw(Chip::Esp32s3);
    assert_eq!(a.elf(), a.clone().elf());
    assert_eq!(a.app_image(), a.clone().app_image());
    assert_ne!(a.app_image(), a.clone().seed(8).app_image());
    assert_eq!(filler(1000, 1), filler(1000, 1));
    assert_ne!(filler(1000, 1), filler(1000, 2));
    assert_eq!(filler(1001, 3).len(), 1001);
}

#[test]
fn filler_looks_like_firmware_not_noise_or_zeros() {
    let data = filler(256 * 1024, 9);
    let mut counts = [0usize; 256];
    for &b in &data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    assert!((4.0..7.5).contains(&entropy), "entropy {entropy} bits/byte");
}

#[test]
fn payload_size_sets_the_image_size() {
    let small = TestFirmware::new(Chip::Esp32c6)
        .payload_size(10_000)
        .app_image();
    let large = TestFirmware::new(Chip::Esp32c6)
        .payload_size(200_000)
        .app_image();
    assert!(large.len() - small.len() >= 189_000 && large.len() - small.len() <= 191_000);
}

#[test]
fn corruptions_fail_the_check_they_name() {
    let image = fw(Chip::Esp32c3).app_image();
    let opts = ValidateOptions::default().chip(ChipId::ESP32C3);
    let check = |how, expected| {
        assert_eq!(
            validate(&corrupt(&image, how), opts).unwrap_err(),
            expected,
            "{how:?}"
        );
    };
    check(
        Corruption::Magic(0xE8),
        AppImageError::BadMagic { found: 0xE8 },
    );
    check(
        Corruption::Chip(ChipId::ESP32S3),
        AppImageError::WrongChip {
            expected: ChipId::ESP32C3,
            found: ChipId::ESP32S3,
        },
    );
    check(
        Corruption::SegmentCount(17),
        AppImageError::TooManySegments { count: 17 },
    );
    check(Corruption::SegmentCount(0), AppImageError::NoSegments);
    check(
        Corruption::SegmentLength {
            index: 1,
            len: 0xFFFF_FFF0,
        },
        AppImageError::SegmentTooLarge {
            index: 1,
            len: 0xFFFF_FFF0,
        },
    );
    check(
        Corruption::SegmentLength { index: 2, len: 3 },
        AppImageError::SegmentMisaligned { index: 2, len: 3 },
    );
    check(Corruption::Digest, AppImageError::DigestMismatch);
    check(Corruption::StripDigest, AppImageError::DigestMissing);
    check(
        Corruption::Trailing(5),
        AppImageError::TrailingBytes { len: 5 },
    );
    check(
        Corruption::Truncate(image.len() - 1),
        AppImageError::Truncated,
    );
    // The SPI mode byte is covered by the digest only.
    check(Corruption::FlipByte(2), AppImageError::DigestMismatch);
    assert!(matches!(
        validate(&corrupt(&image, Corruption::FlipByte(100)), opts).unwrap_err(),
        AppImageError::ChecksumMismatch { .. }
    ));
    let bad = corrupt(&image, Corruption::Checksum);
    assert!(matches!(
        validate(&bad, opts).unwrap_err(),
        AppImageError::ChecksumMismatch { .. }
    ));
    let stripped = corrupt(&image, Corruption::StripDigest);
    let info = validate(&stripped, opts.digest(DigestPolicy::IfPresent)).unwrap();
    assert_eq!(info.appended_digest, None);
    let no_desc = corrupt(&image, Corruption::AppDescriptorMagic);
    assert_eq!(
        validate(&no_desc, opts)
            .unwrap()
            .app_descriptor()
            .unwrap_err(),
        AppImageError::AppDescriptorMissing
    );
}
