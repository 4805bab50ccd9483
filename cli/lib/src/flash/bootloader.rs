//! The ESP-IDF second-stage bootloader for a chip, exactly as espflash writes it.
//!
//! espflash ships ESP-IDF bootloaders for every chip but only hands one out together
//! with an app built from an ELF: it patches the flash size into the bootloader's header
//! and re-computes its SHA-256 while doing so. We let it do exactly that with an empty
//! ELF and keep only the bootloader, so the bytes match what `espflash flash` writes.

use std::str::FromStr;

use espflash::flasher::{FlashData, FlashSettings, FlashSize};
use espflash::image_format::idf::IdfBootloaderFormat;
use espflash::target::{Chip, XtalFrequency};
use ota_format::ChipId;

use super::FlashError;

const EM_XTENSA: u16 = 94;
const EM_RISCV: u16 = 243;

/// espflash's name for a chip, if it knows the chip.
pub fn esp_chip(chip: ChipId) -> Option<Chip> {
    let esp = Chip::from_str(chip.name()?).ok()?;
    (esp.id() == chip.0).then_some(esp)
}

/// A 32-bit ELF header with no sections and no segments for the chip's architecture:
/// an app of nothing, enough for espflash to assemble a flash image around it.
fn empty_elf(chip: Chip) -> Vec<u8> {
    let machine = match chip {
        Chip::Esp32 | Chip::Esp32s2 | Chip::Esp32s3 => EM_XTENSA,
        _ => EM_RISCV,
    };
    let mut elf = vec![0x7F, b'E', b'L', b'F', 1, 1, 1];
    elf.resize(16, 0);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&[0; 12]); // entry, phoff, shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [52u16, 32, 0, 40, 0, 0] {
        // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf
}

/// The bootloader for `chip` on a flash of `flash_size`, and the offset it goes to.
/// `xtal` is the crystal of the board when known (it picks the bootloader build on the
/// ESP32 and ESP32-C2); the chip's usual crystal otherwise.
pub fn bootloader(
    chip: ChipId,
    flash_size: FlashSize,
    xtal: Option<XtalFrequency>,
) -> Result<(u32, Vec<u8>), FlashError> {
    let fail = |reason: String| FlashError::Bootloader {
        chip: chip.to_string(),
        reason,
    };
    let esp = esp_chip(chip).ok_or_else(|| fail("espflash does not know this chip".into()))?;
    let elf = empty_elf(esp);
    let flash = FlashData::new(
        FlashSettings::new(None, Some(flash_size), None),
        0,
        None,
        esp,
        xtal.unwrap_or_else(|| esp.default_xtal_frequency()),
    );
    let format = IdfBootloaderFormat::new(&elf, &flash, None, None, None, None)
        .map_err(|e| fail(e.to_string()))?;
    let segment = format
        .flash_segments()
        .next()
        .ok_or_else(|| fail("espflash returned no bootloader".into()))?;
    if segment.addr != esp.boot_address() {
        return Err(fail(format!(
            "espflash placed it at {:#x}, not at the boot address {:#x}",
            segment.addr,
            esp.boot_address()
        )));
    }
    Ok((segment.addr, segment.data.into_owned()))
}

/// Flash size as espflash names it, from bytes.
pub fn flash_size_of(bytes: u32) -> Option<FlashSize> {
    use FlashSize::*;
    [
        _256Kb, _512Kb, _1Mb, _2Mb, _4Mb, _8Mb, _16Mb, _32Mb, _64Mb, _128Mb, _256Mb,
    ]
    .into_iter()
    .find(|s| s.size() == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_format::esp::{ValidateOptions, validate};

    #[test]
    fn every_chip_gets_a_valid_bootloader_at_its_boot_address() {
        for (name, addr) in [
            ("esp32", 0x1000),
            ("esp32s2", 0x1000),
            ("esp32c3", 0x0),
            ("esp32c6", 0x0),
            ("esp32s3", 0x0),
            ("esp32h2", 0x0),
            ("esp32c2", 0x0),
            ("esp32p4", 0x2000),
        ] {
            let chip = ChipId::from_name(name).unwrap();
            let (at, bytes) = bootloader(chip, FlashSize::_4Mb, None).unwrap();
            assert_eq!(at, addr, "{name}");
            assert!(
                at as usize + bytes.len() <= 0x8000,
                "{name} overlaps the table"
            );
            // A bootloader is an ESP image too: header, segments, checksum, SHA-256.
            let info = validate(&bytes, ValidateOptions::default().chip(chip));
            assert!(info.is_ok(), "{name}: {info:?}");
            // espflash wrote the flash size (4 MB = 2) into the header's high nibble.
            assert_eq!(bytes[3] >> 4, 2, "{name}");
        }
    }

    #[test]
    fn flash_size_is_patched_into_the_header() {
        let chip = ChipId::from_name("esp32c3").unwrap();
        let (_, four) = bootloader(chip, FlashSize::_4Mb, None).unwrap();
        let (_, sixteen) = bootloader(chip, FlashSize::_16Mb, None).unwrap();
        assert_eq!(sixteen[3] >> 4, 4);
        assert_eq!(four.len(), sixteen.len());
        assert_ne!(four, sixteen);
    }

    #[test]
    fn flash_sizes_convert() {
        assert_eq!(flash_size_of(0x40_0000), Some(FlashSize::_4Mb));
        assert_eq!(flash_size_of(0x30_0000), None);
    }
}
