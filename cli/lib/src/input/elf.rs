//! ELF to ESP-IDF app image, with espflash doing the conversion exactly as
//! `espflash save-image` would, after we made sure the ELF is for the chip asked for
//! (espflash itself would happily build an image for any chip).

use std::str::FromStr;

use espflash::flasher::{FlashData, FlashSettings};
use espflash::image_format::Metadata;
use espflash::image_format::idf::IdfBootloaderFormat;
use espflash::target::Chip as EspChip;
use object::read::elf::{ElfFile32, FileHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use ota_format::ChipId;

use super::FirmwareError;

const EM_XTENSA: u16 = 94;
/// Chips in the order to suggest them when an ELF fits several (most used first).
const LIKELIEST_FIRST: [ChipId; 8] = [
    ChipId::ESP32C3,
    ChipId::ESP32,
    ChipId::ESP32S3,
    ChipId::ESP32C6,
    ChipId::ESP32S2,
    ChipId::ESP32H2,
    ChipId::ESP32C2,
    ChipId::ESP32P4,
];
const EM_RISCV: u16 = 243;

/// Flash settings written into the app image header. The defaults are espflash's (DIO,
/// 40 MHz, 4 MB); the flash size also bounds the image size espflash accepts.
#[derive(Clone, Copy, Debug)]
pub struct ElfOptions {
    /// Flash mode, size and frequency.
    pub flash: FlashSettings,
}

impl Default for ElfOptions {
    fn default() -> Self {
        ElfOptions {
            flash: FlashSettings::default(),
        }
    }
}

fn arch_of(chip: ChipId) -> (&'static str, u16) {
    match chip {
        ChipId::ESP32 | ChipId::ESP32S2 | ChipId::ESP32S3 => ("Xtensa", EM_XTENSA),
        _ => ("RISC-V", EM_RISCV),
    }
}

fn arch_name(machine: u16) -> &'static str {
    match machine {
        EM_XTENSA => "Xtensa",
        EM_RISCV => "RISC-V",
        _ => "an architecture no ESP32 uses",
    }
}

fn parse(elf: &[u8]) -> Result<ElfFile32<'_, Endianness>, FirmwareError> {
    ElfFile32::<Endianness>::parse(elf).map_err(|e| FirmwareError::NotElf(e.to_string()))
}

/// Address of the app descriptor: the section ESP-IDF 5 / esp-hal (`.flash.appdesc`) or
/// ESP-IDF 4 (`.rodata_desc`) puts it in, or the `esp_app_desc` symbol.
fn app_desc_addr(elf: &ElfFile32<'_, Endianness>) -> Option<u32> {
    [".flash.appdesc", ".rodata_desc"]
        .iter()
        .find_map(|name| elf.section_by_name(name))
        .map(|s| s.address())
        .or_else(|| {
            elf.symbols()
                .find(|s| s.name() == Ok("esp_app_desc"))
                .map(|s| s.address())
        })
        .and_then(|a| u32::try_from(a).ok())
}

/// The chips an ELF can be for. esp-hal's build metadata names the chip exactly;
/// otherwise the architecture and the flash window holding the app descriptor narrow it
/// down (esp32c2 and esp32c3 share one, for example).
pub fn detect_elf_chips(elf: &[u8]) -> Result<Vec<ChipId>, FirmwareError> {
    let file = parse(elf)?;
    if let Some(chip) = Metadata::from_bytes(Some(elf))
        .chip_name()
        .and_then(ChipId::from_name)
    {
        return Ok(vec![chip]);
    }
    let machine = file.elf_header().e_machine(Endianness::Little).0;
    let desc = app_desc_addr(&file);
    let mut chips: Vec<ChipId> = ChipId::known()
        .map(|(id, _)| id)
        .filter(|&id| arch_of(id).1 == machine)
        .filter(|&id| match (desc, esp_chip(id)) {
            (Some(addr), Some(esp)) => esp.addr_is_flash(addr),
            (None, _) => true,
            (Some(_), None) => false,
        })
        .collect();
    // Most likely first, so that the first is the one to suggest: an esp32c3 ELF also
    // fits the esp32c2's flash window, and the C3 is by far the more common chip.
    chips.sort_by_key(|c| {
        LIKELIEST_FIRST
            .iter()
            .position(|l| l == c)
            .unwrap_or(usize::MAX)
    });
    Ok(chips)
}

fn esp_chip(chip: ChipId) -> Option<EspChip> {
    let esp = EspChip::from_str(chip.name()?).ok()?;
    (esp.id() == chip.0).then_some(esp)
}

/// Converts an ELF built for `chip` into an ESP-IDF app image (the bytes
/// `espflash save-image` writes), after checking that the ELF is for that chip and has an
/// app descriptor.
pub fn to_app_image(elf: &[u8], chip: ChipId, opts: &ElfOptions) -> Result<Vec<u8>, FirmwareError> {
    let esp = esp_chip(chip).ok_or(FirmwareError::UnsupportedChip(chip))?;
    let file = parse(elf)?;
    let machine = file.elf_header().e_machine(Endianness::Little).0;
    let (expected_arch, expected_machine) = arch_of(chip);
    if machine != expected_machine {
        return Err(FirmwareError::ElfArchMismatch {
            arch: arch_name(machine),
            machine,
            expected_arch,
            given: chip,
        });
    }
    let chips = detect_elf_chips(elf)?;
    if !chips.is_empty() && !chips.contains(&chip) {
        let names: Vec<String> = chips.iter().map(ToString::to_string).collect();
        return Err(FirmwareError::ElfChipMismatch {
            elf: names.join(" or "),
            given: chip,
        });
    }
    if app_desc_addr(&file).is_none() {
        return Err(FirmwareError::MissingAppDescriptor);
    }

    let flash = FlashData::new(opts.flash, 0, None, esp, esp.default_xtal_frequency());
    let format =
        IdfBootloaderFormat::new(elf, &flash, None, None, None, None).map_err(|e| match e {
            espflash::Error::ElfTooBig(size, partition) => {
                FirmwareError::TooLargeForFlash { size, partition }
            }
            e => FirmwareError::Espflash(Box::new(e)),
        })?;
    let segment = format
        .ota_segments()
        .next()
        .ok_or_else(|| FirmwareError::NotElf("espflash produced no app image".into()))?;
    Ok(segment.data.into_owned())
}
