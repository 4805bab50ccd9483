//! Where otadata, the OTA app slots and the agent's state live, read from the ESP-IDF
//! partition table at 0x8000 with ota-agent's parser (the one the simulator checks
//! against esp-idf-part), and which slot the MMU booted.
//!
//! The agent works on the whole flash through the `embedded-storage` NOR-flash traits
//! (esp-storage's [`FlashStorage`]) and needs only these absolute regions.
//!
//! Erasing needs no wrapper: esp-storage 0.10's `erase(from, to)` erases the 64 KiB-aligned
//! part of a range in 64 KiB blocks (the ROM's `esp_rom_spiflash_erase_block`) and the
//! rest in 4 KiB sectors, so the agent gets block erases by asking for block-aligned
//! ranges. Each erase runs with interrupts off (esp-storage's critical section): ~45 ms
//! for a sector, ~150 ms for a block (typical datasheet times, docs/BENCHMARKS.md).

use core::fmt;

use embedded_storage::nor_flash::ReadNorFlash as _;
use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_storage::FlashStorage;
use ota_agent::geometry::{BootTarget, Geometry, Region};
use ota_agent::partition_table::{PartitionTable, PartitionTableError, TYPE_DATA};
use ota_agent::status::target_label;

/// Label of the agent's state partition (as in the simulator's default table).
pub use ota_format::esp::layout::STATE_PARTITION;
/// Its data subtype: `undefined`, so that no ESP-IDF component claims it.
const SUBTYPE_UNDEFINED: u8 = 0x06;
/// Two 4 KiB sectors: the state store alternates between halves.
const STATE_MIN_SIZE: u32 = 0x2000;

/// The partitions the update agent works with.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub geometry: Geometry,
    pub state: Region,
    pub running: BootTarget,
}

/// Why the flash cannot carry OTA updates.
#[derive(Clone, Copy, Debug, thiserror::Error)]
pub enum LayoutError {
    /// The agent writes plaintext and counts boots with single-word writes; neither works
    /// under flash encryption (that needs the rollback bootloader and encrypted writes).
    #[error("flash encryption is enabled; the agent does not support it")]
    FlashEncryption,
    #[error("partition table unreadable: {0:?}")]
    Read(partitions::Error),
    #[error("partition table: {0}")]
    Table(#[from] PartitionTableError),
    #[error("no data partition `{STATE_PARTITION}` (subtype undefined, 8 KiB) for the agent")]
    NoStatePartition,
    #[error("the running app is mapped from {0:#x}, which is no app partition")]
    UnknownRunningSlot(u32),
}

impl From<partitions::Error> for LayoutError {
    fn from(e: partitions::Error) -> Self {
        LayoutError::Read(e)
    }
}

impl Layout {
    pub fn read(flash: &mut FlashStorage<'_>) -> Result<Self, LayoutError> {
        if esp_storage::flash_encryption() {
            return Err(LayoutError::FlashEncryption);
        }
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        // esp-bootloader-esp-idf reads the MMU's first mapping: the partition the
        // bootloader really started, which differs from otadata's choice after a fallback.
        let booted = partitions::read_partition_table(flash, &mut buf)?
            .booted_partition()?
            .map(|p| p.offset());

        let capacity = u32::try_from(flash.capacity()).unwrap_or(u32::MAX);
        let table = PartitionTable::parse(&buf, capacity)?;
        let geometry = table.geometry()?;
        let state = table
            .entries()
            .find(|e| e.label_str() == Some(STATE_PARTITION))
            .filter(|e| {
                e.ty == TYPE_DATA
                    && e.subtype == SUBTYPE_UNDEFINED
                    && e.region.size >= STATE_MIN_SIZE
            })
            .ok_or(LayoutError::NoStatePartition)?
            .region;

        let booted = booted.unwrap_or(u32::MAX);
        let running = (0..geometry.slot_count())
            .map(BootTarget::Ota)
            .chain([BootTarget::Factory])
            .find(|&t| geometry.region(t).is_some_and(|r| r.offset == booted))
            .ok_or(LayoutError::UnknownRunningSlot(booted))?;
        Ok(Layout {
            geometry,
            state,
            running,
        })
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.geometry;
        write!(
            f,
            "otadata {:#x}+{:#x}, {} OTA slots",
            g.otadata().offset,
            g.otadata().size,
            g.slot_count()
        )?;
        for (n, slot) in g.slots().iter().enumerate() {
            write!(f, ", ota_{n} {:#x}+{:#x}", slot.offset, slot.size)?;
        }
        write!(
            f,
            ", {STATE_PARTITION} {:#x}+{:#x}, running {}",
            self.state.offset,
            self.state.size,
            target_label(self.running)
        )
    }
}
