//! The partition table a first install writes, and the rules it must meet so the device
//! can boot and later update itself.
//!
//! Default layout (what `ota-device-sim` creates too, see its `default_partition_table`):
//!
//! | offset    | size        | partition   | type / subtype     | why                                     |
//! |----------:|------------:|-------------|--------------------|-----------------------------------------|
//! | 0x0/0x1000/0x2000 | < 0x7000 | (bootloader) |               | where the chip's ROM looks for it      |
//! | 0x8000    | 0x1000      | (table)     |                    | where the bootloader looks for it       |
//! | 0x9000    | 0x2000      | `nvs`       | data / nvs         | ESP-IDF and WiFi settings               |
//! | 0xB000    | 0x2000      | `ota_state` | data / undefined   | the update agent's state (two sectors)  |
//! | 0xD000    | 0x2000      | `otadata`   | data / ota         | which slot boots (two sectors)          |
//! | 0xF000    | 0x1000      | `phy_init`  | data / phy         | RF calibration                          |
//! | 0x10000   | S           | `factory`   | app / factory      | only with `--factory`                   |
//! | ...       | S           | `ota_0`     | app / ota_0        | the first install goes here             |
//! | ...       | S           | `ota_1`     | app / ota_1        | the first update goes here              |
//!
//! S is the rest of the flash split evenly and rounded down to 64 KiB.

use esp_idf_part::{AppType, DataType, Flags, Partition, PartitionTable, SubType, Type};

use super::FlashError;

/// Where the second-stage bootloader reads the partition table.
pub const PARTITION_TABLE_OFFSET: u32 = 0x8000;
/// The sector reserved for the table; partitions start after it.
pub const PARTITION_TABLE_END: u32 = 0x9000;
/// Name of the update agent's state partition (the simulator and the firmware look it
/// up by this name).
pub use ota_format::esp::layout::{
    FIRST_APP_OFFSET, STATE_PARTITION, STATE_PARTITION_SIZE as STATE_SIZE,
};

const SECTOR: u32 = 0x1000;
const APP_ALIGN: u32 = 0x1_0000;
/// ESP-IDF maps at most 16 MiB of one app.
const MAX_APP_SIZE: u32 = 0x100_0000;

/// The default table for a flash of `flash_size` bytes: nvs, `ota_state`, otadata,
/// phy_init, optionally `factory`, then `ota_0` and `ota_1` of equal size.
pub fn default_table(flash_size: u32, factory: bool) -> Result<PartitionTable, FlashError> {
    let apps = if factory { 3 } else { 2 };
    let slot = (flash_size.saturating_sub(FIRST_APP_OFFSET) / apps / APP_ALIGN * APP_ALIGN)
        .min(MAX_APP_SIZE);
    if slot == 0 {
        return Err(FlashError::FlashTooSmall { flash_size, apps });
    }
    let mut parts = default_data_partitions();
    let mut offset = FIRST_APP_OFFSET;
    if factory {
        parts.push(Partition::new(
            "factory",
            Type::App,
            SubType::App(AppType::Factory),
            offset,
            slot,
            Flags::empty(),
        ));
        offset += slot;
    }
    for n in 0..2u8 {
        parts.push(Partition::new(
            format!("ota_{n}"),
            Type::App,
            SubType::app(0x10 + n),
            offset,
            slot,
            Flags::empty(),
        ));
        offset += slot;
    }
    Ok(PartitionTable::new(parts))
}

/// Parses a partition table given as ESP-IDF CSV or as a binary table (see
/// [`super::table`]; esp-idf-part's own readers panic on some valid tables).
pub fn parse_table(bytes: &[u8], origin: &str) -> Result<PartitionTable, FlashError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FlashError::EmptyTable {
            origin: origin.to_owned(),
        });
    }
    let table = PartitionTable::new(super::table::parse(bytes).map_err(|error| {
        FlashError::InvalidTable {
            origin: origin.to_owned(),
            error: error.to_string(),
        }
    })?);
    table.validate().map_err(|error| FlashError::InvalidTable {
        origin: origin.to_owned(),
        error: error.to_string(),
    })?;
    Ok(table)
}

/// A partition table that a device can boot from and update with.
#[derive(Clone, Debug)]
pub struct CheckedTable {
    /// The table.
    pub table: PartitionTable,
    /// Flash size it was checked against.
    pub flash_size: u32,
    /// `otadata`.
    pub otadata: Partition,
    /// `ota_state`.
    pub state: Partition,
    /// Where the app goes: the partition the stock bootloader starts when otadata is
    /// blank (`factory` if there is one, else `ota_0`).
    pub boot: Partition,
    /// The OTA slots, `ota_0` first.
    pub slots: Vec<Partition>,
}

impl CheckedTable {
    /// Checks `table` for a flash of `flash_size` bytes: every partition inside the
    /// flash, after the partition table, aligned, not overlapping; otadata, `ota_state`
    /// and at least `ota_0` and `ota_1`.
    pub fn check(table: PartitionTable, flash_size: u32) -> Result<CheckedTable, FlashError> {
        // Our own checks first, with messages that name the partition: esp-idf-part
        // validates too, but skips pairs of identical entries and knows no flash size.
        table.validate().map_err(|error| FlashError::InvalidTable {
            origin: "partition table".to_owned(),
            error: error.to_string(),
        })?;
        let parts = table.partitions();
        for p in parts {
            let align = if p.ty() == Type::App {
                APP_ALIGN
            } else {
                SECTOR
            };
            if !p.offset().is_multiple_of(align) {
                return Err(FlashError::Misaligned {
                    name: p.name(),
                    offset: p.offset(),
                    align,
                });
            }
            if p.offset() < PARTITION_TABLE_END {
                return Err(FlashError::BeforeTableEnd {
                    name: p.name(),
                    offset: p.offset(),
                });
            }
            let end = u64::from(p.offset()) + u64::from(p.size());
            if p.size() == 0 || end > u64::from(flash_size) {
                return Err(FlashError::OutsideFlash {
                    name: p.name(),
                    offset: p.offset(),
                    size: p.size(),
                    flash_size,
                });
            }
        }
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                let (a_end, b_end) = (a.offset() + a.size(), b.offset() + b.size());
                if a.offset() < b_end && b.offset() < a_end {
                    return Err(FlashError::Overlap {
                        first: a.name(),
                        second: b.name(),
                    });
                }
            }
        }

        let otadata = table
            .find_by_subtype(Type::Data, SubType::Data(DataType::Ota))
            .cloned()
            .ok_or(FlashError::NoOtadata)?;
        let slots: Vec<Partition> = (0..16u8)
            .map_while(|n| {
                table
                    .find_by_subtype(Type::App, SubType::app(0x10 + n))
                    .cloned()
            })
            .collect();
        if slots.len() < 2 {
            return Err(FlashError::TooFewSlots { found: slots.len() });
        }
        let state = table
            .find(STATE_PARTITION)
            .cloned()
            .ok_or(FlashError::NoStatePartition)?;
        if state.ty() != Type::Data
            || state.size() < STATE_SIZE
            || !state.size().is_multiple_of(SECTOR)
        {
            return Err(FlashError::BadStatePartition {
                size: state.size(),
                is_data: state.ty() == Type::Data,
            });
        }
        let boot = table
            .find_by_subtype(Type::App, SubType::App(AppType::Factory))
            .cloned()
            .unwrap_or_else(|| slots[0].clone());
        Ok(CheckedTable {
            flash_size,
            otadata,
            state,
            boot,
            slots,
            table,
        })
    }
}

/// The data partitions of the default layout (shared with the simulator through
/// `ota_format::esp::layout`) as esp-idf-part partitions.
pub fn default_data_partitions() -> Vec<Partition> {
    ota_format::esp::layout::DEFAULT_DATA_PARTITIONS
        .iter()
        .map(|p| {
            Partition::new(
                p.name,
                Type::Data,
                SubType::data(p.subtype),
                p.offset,
                p.size,
                Flags::empty(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(body: &str) -> PartitionTable {
        parse_table(body.as_bytes(), "test.csv").unwrap()
    }

    /// A table that passes every check (shared with the CLI's flash tests).
    const GOOD: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/ota_state_partitions.csv"
    ));

    #[test]
    fn default_tables_pass_their_own_checks_for_every_flash_size() {
        for mb in [1u32, 2, 4, 8, 16, 32] {
            let size = mb * 1024 * 1024;
            for factory in [false, true] {
                let partitions =
                    CheckedTable::check(default_table(size, factory).unwrap(), size).unwrap();
                assert_eq!(partitions.slots.len(), 2);
                assert_eq!(partitions.slots[0].size(), partitions.slots[1].size());
                assert_eq!(
                    partitions.boot.name(),
                    if factory { "factory" } else { "ota_0" }
                );
                let end = partitions.slots[1].offset() + partitions.slots[1].size();
                assert!(end <= size && size - end < 3 * APP_ALIGN, "{mb} MB");
            }
        }
        let four = default_table(4 * 1024 * 1024, false).unwrap();
        assert_eq!(four.find("ota_0").unwrap().size(), 0x1F_0000);
        assert_eq!(four.find("ota_1").unwrap().offset(), 0x20_0000);
    }

    #[test]
    fn tiny_flash_has_no_default_layout() {
        assert!(matches!(
            default_table(0x1_0000, false),
            Err(FlashError::FlashTooSmall { .. })
        ));
    }

    #[test]
    fn good_csv_is_accepted() {
        let l = CheckedTable::check(csv(GOOD), 0x40_0000).unwrap();
        assert_eq!(l.otadata.offset(), 0xD000);
        assert_eq!(l.state.offset(), 0xB000);
        assert_eq!(l.boot.name(), "ota_0");
    }

    #[test]
    fn each_missing_piece_is_named() {
        let without = |name: &str| {
            GOOD.lines()
                .filter(|l| !l.starts_with(name))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let check = |text: String| CheckedTable::check(csv(&text), 0x40_0000).unwrap_err();
        assert!(matches!(check(without("otadata")), FlashError::NoOtadata));
        assert!(matches!(
            check(without("ota_1")),
            FlashError::TooFewSlots { found: 1 }
        ));
        assert!(matches!(
            check(without("ota_state")),
            FlashError::NoStatePartition
        ));
        let small_state = GOOD.replace("0xb000,  0x2000", "0xb000,  0x1000");
        assert!(matches!(
            check(small_state),
            FlashError::BadStatePartition { size: 0x1000, .. }
        ));
    }

    #[test]
    fn partitions_must_fit_the_flash_and_follow_the_table() {
        assert!(matches!(
            CheckedTable::check(csv(GOOD), 0x10_0000).unwrap_err(),
            FlashError::OutsideFlash { ref name, .. } if name == "ota_0"
        ));
        let early = GOOD.replace(
            "nvs,      data, nvs,       0x9000",
            "nvs,      data, nvs,       0x7000",
        );
        assert!(matches!(
            CheckedTable::check(csv(&early), 0x40_0000).unwrap_err(),
            FlashError::BeforeTableEnd { offset: 0x7000, .. }
        ));
    }

    #[test]
    fn overlap_and_misalignment_are_refused_when_parsing() {
        let overlap = GOOD.replace("0x110000,0x100000", "0x100000,0x100000");
        let e = parse_table(overlap.as_bytes(), "t.csv").unwrap_err();
        assert!(matches!(e, FlashError::InvalidTable { .. }), "{e}");
        let misaligned = GOOD.replace("0x110000,0x100000", "0x118000,0x100000");
        let e = parse_table(misaligned.as_bytes(), "t.csv").unwrap_err();
        assert!(e.to_string().contains("aligned"), "{e}");
        assert!(matches!(
            parse_table(b"", "t.csv"),
            Err(FlashError::EmptyTable { .. })
        ));
    }
}
