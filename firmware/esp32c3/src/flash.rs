//! Where otadata and the OTA app slots live, read from the ESP-IDF partition table at 0x8000.
//!
//! The update agent works on the whole flash through the `embedded-storage` NOR-flash traits
//! (esp-storage's [`FlashStorage`]) and needs only these absolute regions.

use core::fmt;

use esp_bootloader_esp_idf::partitions::{
    self, AppPartitionSubType, DataPartitionSubType, PARTITION_TABLE_MAX_LEN, PartitionEntry,
    PartitionType,
};
use esp_storage::FlashStorage;

/// Flash erase unit; otadata is exactly two of them and every region must start on one.
pub const SECTOR: u32 = 4096;

/// An absolute byte range of the flash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Region {
    pub offset: u32,
    pub size: u32,
}

impl Region {
    fn of(entry: &PartitionEntry) -> Self {
        Region {
            offset: entry.offset(),
            size: entry.len(),
        }
    }

    fn contains(&self, addr: u32) -> bool {
        addr >= self.offset && addr - self.offset < self.size
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}+{:#x}", self.offset, self.size)
    }
}

/// The app slot the running firmware was loaded from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunningSlot {
    Ota(u8),
    Factory,
}

impl RunningSlot {
    pub fn name(self) -> &'static str {
        match self {
            RunningSlot::Ota(0) => "ota_0",
            RunningSlot::Ota(_) => "ota_1",
            RunningSlot::Factory => "factory",
        }
    }
}

/// otadata and the two OTA slots of an ESP-IDF partition table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlashLayout {
    pub otadata: Region,
    pub slots: [Region; 2],
    pub factory: Option<Region>,
    /// `None` when the running code is mapped from no partition the table lists, which only
    /// happens with a table that does not match the flash contents.
    pub running: Option<RunningSlot>,
}

/// Why the partition table cannot carry OTA updates.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("partition table unreadable: {0}")]
    Table(partitions::Error),
    #[error("no otadata partition")]
    NoOtadata,
    #[error("otadata is {0:#x} bytes, ESP-IDF needs exactly two 4 KiB sectors")]
    OtadataSize(u32),
    #[error("no ota_{0} partition")]
    NoSlot(u8),
    #[error("partition at {0:#x} does not start on a 4 KiB sector")]
    Unaligned(u32),
}

impl From<partitions::Error> for LayoutError {
    fn from(e: partitions::Error) -> Self {
        LayoutError::Table(e)
    }
}

impl FlashLayout {
    pub fn read(flash: &mut FlashStorage<'_>) -> Result<Self, LayoutError> {
        let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
        let table = partitions::read_partition_table(flash, &mut buf)?;

        let find = |kind| -> Result<Option<Region>, LayoutError> {
            Ok(table.find_partition(kind)?.as_ref().map(Region::of))
        };
        let otadata =
            find(PartitionType::Data(DataPartitionSubType::Ota))?.ok_or(LayoutError::NoOtadata)?;
        if otadata.size != 2 * SECTOR {
            return Err(LayoutError::OtadataSize(otadata.size));
        }
        let slots = [
            find(PartitionType::App(AppPartitionSubType::Ota0))?.ok_or(LayoutError::NoSlot(0))?,
            find(PartitionType::App(AppPartitionSubType::Ota1))?.ok_or(LayoutError::NoSlot(1))?,
        ];
        let factory = find(PartitionType::App(AppPartitionSubType::Factory))?;
        for region in [otadata, slots[0], slots[1]] {
            if region.offset % SECTOR != 0 {
                return Err(LayoutError::Unaligned(region.offset));
            }
        }

        // The MMU maps the booted partition's first page; comparing offsets instead of
        // trusting otadata is what tells a bootloader fallback apart from the selected slot.
        let running = table
            .booted_partition()?
            .map(|p| p.offset())
            .and_then(|at| {
                if slots[0].contains(at) {
                    Some(RunningSlot::Ota(0))
                } else if slots[1].contains(at) {
                    Some(RunningSlot::Ota(1))
                } else if factory.is_some_and(|f| f.contains(at)) {
                    Some(RunningSlot::Factory)
                } else {
                    None
                }
            });

        Ok(FlashLayout {
            otadata,
            slots,
            factory,
            running,
        })
    }
}

impl fmt::Display for FlashLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "otadata {}, ota_0 {}, ota_1 {}, running {}",
            self.otadata,
            self.slots[0],
            self.slots[1],
            self.running.map_or("unknown", RunningSlot::name)
        )
    }
}
