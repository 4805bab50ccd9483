//! Partition tables on the simulated flash. Tables are generated and parsed
//! with `esp-idf-part` (what espflash uses); the agent's own `no_std` parser
//! reads the same bytes and both must agree, which keeps the device-side
//! parser honest.

use esp_idf_part::{AppType, DataType, Flags, Partition, PartitionTable, SubType, Type};
use ota_agent::Geometry;
use ota_agent::partition_table::{
    PARTITION_TABLE_MAX_LEN, PARTITION_TABLE_OFFSET, PartitionTableError,
};

use crate::simflash::{SimFlash, SimFlashError, WordFlash};
use embedded_storage::nor_flash::ReadNorFlash;

/// Offset of the first app partition in the layouts made here.
pub const FIRST_APP_OFFSET: u32 = 0x1_0000;
/// otadata offset in the layouts made here (ESP-IDF's default).
pub const OTADATA_OFFSET: u32 = 0xD000;

/// Why the partition table on a flash could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// Reading the flash failed.
    #[error("reading the partition table: {0}")]
    Flash(#[from] SimFlashError),
    /// `esp-idf-part` refused the table.
    #[error("partition table: {0}")]
    Table(#[from] esp_idf_part::Error),
    /// The agent's parser refused the table.
    #[error("partition table (device parser): {0}")]
    Device(#[from] PartitionTableError),
    /// The two parsers disagree (a bug in one of them).
    #[error(
        "partition table parsers disagree: esp-idf-part sees {host} partitions, the device parser {device}"
    )]
    ParserMismatch {
        /// Partitions seen by esp-idf-part.
        host: usize,
        /// Partitions seen by the agent.
        device: usize,
    },
    /// The spec cannot be laid out.
    #[error("layout does not fit: {0}")]
    Spec(&'static str),
}

/// A simple ESP-IDF style layout: nvs, otadata, phy_init, optional factory,
/// then `ota_slots` slots of `slot_size` bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutSpec {
    /// Flash chip size.
    pub flash_size: u32,
    /// Whether there is a factory app (same size as a slot).
    pub factory: bool,
    /// Number of OTA slots (0..=16).
    pub ota_slots: u8,
    /// Size of each app partition (multiple of 64 KiB).
    pub slot_size: u32,
}

impl LayoutSpec {
    /// Two 1 MiB OTA slots on 4 MiB flash, no factory (the usual Rust-on-ESP
    /// layout).
    pub const fn two_slots() -> Self {
        Self {
            flash_size: 4 * 1024 * 1024,
            factory: false,
            ota_slots: 2,
            slot_size: 0x10_0000,
        }
    }

    /// A small layout for fast tests: 64 KiB slots.
    pub const fn small(factory: bool, ota_slots: u8) -> Self {
        let apps = ota_slots as u32 + factory as u32;
        Self {
            flash_size: FIRST_APP_OFFSET + apps * 0x1_0000,
            factory,
            ota_slots,
            slot_size: 0x1_0000,
        }
    }

    /// The partition table for this spec.
    pub fn partition_table(&self) -> Result<PartitionTable, LayoutError> {
        if self.slot_size == 0 || !self.slot_size.is_multiple_of(0x1_0000) {
            return Err(LayoutError::Spec(
                "slot size must be a non-zero multiple of 64 KiB",
            ));
        }
        if self.ota_slots > 16 {
            return Err(LayoutError::Spec("at most 16 OTA slots"));
        }
        let apps = u64::from(self.ota_slots) + u64::from(self.factory);
        if u64::from(FIRST_APP_OFFSET) + apps * u64::from(self.slot_size)
            > u64::from(self.flash_size)
        {
            return Err(LayoutError::Spec("apps do not fit in the flash"));
        }
        let mut parts = vec![
            Partition::new(
                "nvs",
                Type::Data,
                SubType::Data(DataType::Nvs),
                0x9000,
                0x4000,
                Flags::empty(),
            ),
            Partition::new(
                "otadata",
                Type::Data,
                SubType::Data(DataType::Ota),
                OTADATA_OFFSET,
                0x2000,
                Flags::empty(),
            ),
            Partition::new(
                "phy_init",
                Type::Data,
                SubType::Data(DataType::Phy),
                0xF000,
                0x1000,
                Flags::empty(),
            ),
        ];
        let mut offset = FIRST_APP_OFFSET;
        if self.factory {
            parts.push(Partition::new(
                "factory",
                Type::App,
                SubType::App(AppType::Factory),
                offset,
                self.slot_size,
                Flags::empty(),
            ));
            offset += self.slot_size;
        }
        for n in 0..self.ota_slots {
            let ty = SubType::app(0x10 + n);
            parts.push(Partition::new(
                format!("ota_{n}"),
                Type::App,
                ty,
                offset,
                self.slot_size,
                Flags::empty(),
            ));
            offset += self.slot_size;
        }
        let table = PartitionTable::new(parts);
        table.validate()?;
        Ok(table)
    }

    /// An erased flash with this layout's partition table programmed at
    /// 0x8000 (otadata and slots erased, as after `espflash erase-flash`).
    pub fn format(&self) -> Result<SimFlash, LayoutError> {
        let table = self.partition_table()?.to_bin()?;
        let mut flash = SimFlash::new(self.flash_size as usize);
        flash.flash_image(PARTITION_TABLE_OFFSET, &table);
        Ok(flash)
    }
}

/// The partition table read back from a flash.
#[derive(Clone, Debug)]
pub struct Layout {
    /// As `esp-idf-part` parsed it.
    pub table: PartitionTable,
    /// As the agent (and the device) sees it.
    pub geometry: Geometry,
}

impl Layout {
    /// Reads and parses the table at 0x8000 with both parsers.
    ///
    /// esp-idf-part panics on records it has no name for (a data subtype such as 0x40,
    /// which ESP-IDF and `ota-sign flash` accept, or unknown flag bits); such a table
    /// is taken from the device parser alone instead of crashing the simulator.
    pub fn read<const WRITE_SIZE: usize>(
        flash: &mut WordFlash<WRITE_SIZE>,
    ) -> Result<Self, LayoutError> {
        let mut bytes = vec![0u8; PARTITION_TABLE_MAX_LEN];
        flash.read(PARTITION_TABLE_OFFSET, &mut bytes)?;
        let device =
            ota_agent::partition_table::PartitionTable::parse(&bytes, flash.capacity() as u32)?;
        let table = if device.entries().all(|e| esp_idf_part_reads(&e)) {
            let table = PartitionTable::try_from_bytes(bytes.clone())?;
            let device_count = device.entries().count();
            if device_count != table.partitions().len() {
                return Err(LayoutError::ParserMismatch {
                    host: table.partitions().len(),
                    device: device_count,
                });
            }
            table
        } else {
            PartitionTable::new(device.entries().map(|e| host_partition(&e)).collect())
        };
        Ok(Self {
            geometry: device.geometry()?,
            table,
        })
    }
}

/// Whether esp-idf-part's binary reader takes this record without panicking: it
/// unwraps the name of every app and data subtype and the flag bits.
fn esp_idf_part_reads(e: &ota_agent::partition_table::PartitionEntry) -> bool {
    let subtype_named = match e.ty {
        0x00 => AppType::from_repr(usize::from(e.subtype)).is_some(),
        0x01 => DataType::from_repr(usize::from(e.subtype)).is_some(),
        _ => true,
    };
    subtype_named && Flags::from_bits(e.flags).is_some()
}

/// A device-parser record as an esp-idf-part partition (subtypes without a name as
/// `SubType::Custom`).
fn host_partition(e: &ota_agent::partition_table::PartitionEntry) -> Partition {
    let ty = Type::from(e.ty);
    let named = match ty {
        Type::App => AppType::from_repr(usize::from(e.subtype)).map(SubType::App),
        Type::Data => DataType::from_repr(usize::from(e.subtype)).map(SubType::Data),
        Type::Custom(_) => None,
    };
    Partition::new(
        e.label_str().unwrap_or_default(),
        ty,
        named.unwrap_or(SubType::Custom(e.subtype)),
        e.region.offset,
        e.region.size,
        Flags::from_bits_truncate(e.flags),
    )
}
