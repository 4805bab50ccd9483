//! Where each chip's firmware lives in its address space.
//!
//! Addresses follow the `irom`/`drom`/`dram` regions of esp-metadata (the tables
//! espflash uses to tell flash segments from RAM segments) and the esp-hal linker
//! scripts: the app descriptor is the first thing in DROM, 0x20 past a 64 KiB MMU page
//! so that it lands at image offset 0x20 as the bootloader expects.

use ota_format::ChipId;

/// A chip the test kit can build firmware for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Chip {
    /// ESP32 (Xtensa LX6).
    Esp32,
    /// ESP32-C3 (RISC-V, RV32IMC).
    Esp32c3,
    /// ESP32-C6 (RISC-V, RV32IMAC).
    Esp32c6,
    /// ESP32-S3 (Xtensa LX7).
    Esp32s3,
}

/// Addresses and ELF header values of one chip.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemoryLayout {
    /// Start of the app descriptor (flash-mapped data).
    pub drom: u32,
    /// Start of `.text` (flash-mapped code).
    pub irom: u32,
    /// Start of `.data` (internal data RAM).
    pub dram: u32,
    /// Start of `.rwtext` (internal instruction RAM).
    pub iram: u32,
    /// ELF `e_machine`: Xtensa 94, RISC-V 243.
    pub e_machine: u16,
    /// ELF `e_flags`.
    pub e_flags: u32,
}

/// `EM_XTENSA`.
const EM_XTENSA: u16 = 94;
/// `EM_RISCV`.
const EM_RISCV: u16 = 243;
/// What xtensa-esp32*-elf-gcc and LLVM write: `EF_XTENSA_XT_INSN | EF_XTENSA_XT_LIT`.
const XTENSA_FLAGS: u32 = 0x300;
/// `EF_RISCV_RVC` with the soft-float ABI, as for `riscv32imc`/`riscv32imac`.
const RISCV_FLAGS: u32 = 0x1;

impl Chip {
    /// Every chip, for test matrices.
    pub const ALL: [Chip; 4] = [Chip::Esp32, Chip::Esp32c3, Chip::Esp32c6, Chip::Esp32s3];

    /// The ESP-IDF chip id.
    pub fn id(self) -> ChipId {
        match self {
            Chip::Esp32 => ChipId::ESP32,
            Chip::Esp32c3 => ChipId::ESP32C3,
            Chip::Esp32c6 => ChipId::ESP32C6,
            Chip::Esp32s3 => ChipId::ESP32S3,
        }
    }

    /// The lower-case chip name (`"esp32c3"`).
    pub fn name(self) -> &'static str {
        match self {
            Chip::Esp32 => "esp32",
            Chip::Esp32c3 => "esp32c3",
            Chip::Esp32c6 => "esp32c6",
            Chip::Esp32s3 => "esp32s3",
        }
    }

    /// The chip's memory layout.
    pub fn layout(self) -> MemoryLayout {
        match self {
            Chip::Esp32 => MemoryLayout {
                drom: 0x3F40_0020,
                irom: 0x400D_0020,
                dram: 0x3FFB_0000,
                iram: 0x4008_0000,
                e_machine: EM_XTENSA,
                e_flags: XTENSA_FLAGS,
            },
            Chip::Esp32c3 => MemoryLayout {
                drom: 0x3C00_0020,
                irom: 0x4200_0020,
                dram: 0x3FC8_0000,
                iram: 0x4037_C000,
                e_machine: EM_RISCV,
                e_flags: RISCV_FLAGS,
            },
            // One flash window for code and data; DROM sits in its upper half as in
            // ESP-IDF. RAM is unified: code first, data after it.
            Chip::Esp32c6 => MemoryLayout {
                drom: 0x4280_0020,
                irom: 0x4200_0020,
                dram: 0x4081_0000,
                iram: 0x4080_0000,
                e_machine: EM_RISCV,
                e_flags: RISCV_FLAGS,
            },
            Chip::Esp32s3 => MemoryLayout {
                drom: 0x3C00_0020,
                irom: 0x4200_0020,
                dram: 0x3FC8_8000,
                iram: 0x4037_8000,
                e_machine: EM_XTENSA,
                e_flags: XTENSA_FLAGS,
            },
        }
    }
}
