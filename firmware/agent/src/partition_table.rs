//! The ESP-IDF binary partition table, parsed and checked the way the
//! second-stage bootloader does (`esp_partition_table_verify`), without `std`.
//!
//! The table sits at [`PARTITION_TABLE_OFFSET`] and is at most
//! [`PARTITION_TABLE_MAX_LEN`] bytes: a run of 32-byte records.
//!
//! | offset | size | partition record (`esp_partition_info_t`) | MD5 record                    |
//! |-------:|-----:|-------------------------------------------|-------------------------------|
//! | 0      | 2    | magic `AA 50` (u16 LE `0x50AA`)          | magic `EB EB`                 |
//! | 2      | 1    | type (0 app, 1 data, ...)                 | `0xFF` × 14                   |
//! | 3      | 1    | subtype (app: 0 factory, 0x10+N `ota_N`; data: 0 ota) |                   |
//! | 4      | 4    | offset, u32 LE                            |                               |
//! | 8      | 4    | size, u32 LE                              |                               |
//! | 12     | 16   | label, NUL padded                         |                               |
//! | 16     | 16   | (label continues)                         | MD5 of all preceding records  |
//! | 28     | 4    | flags, u32 LE                             |                               |
//!
//! The table ends with a record of all `0xFF`. The MD5 record is optional (it
//! is checked when present) and may appear once.

use md5::{Digest, Md5};

use crate::geometry::{Geometry, GeometryError, MAX_OTA_SLOTS, Region};

/// Where the bootloader looks for the partition table.
pub const PARTITION_TABLE_OFFSET: u32 = 0x8000;
/// Longest table the bootloader reads.
pub const PARTITION_TABLE_MAX_LEN: usize = 0xC00;
/// Length of one record.
pub const RECORD_LEN: usize = 32;
/// Partition type "app".
pub const TYPE_APP: u8 = 0x00;
/// Partition type "data".
pub const TYPE_DATA: u8 = 0x01;
/// App subtype "factory".
pub const SUBTYPE_FACTORY: u8 = 0x00;
/// App subtype of `ota_0`; `ota_N` is this plus N.
pub const SUBTYPE_OTA_0: u8 = 0x10;
/// Data subtype "ota" (otadata).
pub const SUBTYPE_DATA_OTA: u8 = 0x00;

const MAGIC: [u8; 2] = [0xAA, 0x50];
const MAGIC_MD5: [u8; 2] = [0xEB, 0xEB];
const MD5_OFFSET: usize = 16;

/// Why a partition table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionTableError {
    /// A record starts with neither magic nor is it the end marker.
    #[error("record {index} has invalid magic {magic:#06x}")]
    BadMagic {
        /// Record index.
        index: usize,
        /// The magic found (u16 LE).
        magic: u16,
    },
    /// The first record is the end marker.
    #[error("partition table is empty")]
    Empty,
    /// A partition lies (partly) beyond the flash chip.
    #[error("partition {index} exceeds the flash size")]
    OutOfFlash {
        /// Record index.
        index: usize,
    },
    /// More than one MD5 record.
    #[error("more than one MD5 record")]
    DuplicateMd5,
    /// The MD5 record does not match the records before it.
    #[error("partition table MD5 mismatch")]
    Md5Mismatch,
    /// A partition record follows the MD5 record (it would not be covered).
    #[error("record {index} follows the MD5 record")]
    RecordAfterMd5 {
        /// Record index.
        index: usize,
    },
    /// No end marker within the bytes given (or within 0xC00 bytes).
    #[error("partition table has no end marker")]
    NoEndMarker,
    /// There is no otadata (data/ota) partition.
    #[error("no otadata partition")]
    NoOtadata,
    /// Two partitions of the same type and subtype the agent relies on.
    #[error("duplicate partition type {ty:#04x} subtype {subtype:#04x}")]
    Duplicate {
        /// Type.
        ty: u8,
        /// Subtype.
        subtype: u8,
    },
    /// `ota_N` exists but some `ota_M` with `M < N` does not.
    #[error("ota_{missing} is missing but a higher OTA slot exists")]
    OtaSlotGap {
        /// The first missing slot.
        missing: u8,
    },
    /// The partitions do not form a usable geometry.
    #[error("bad layout: {0}")]
    Geometry(#[from] GeometryError),
}

/// One partition record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionEntry {
    /// Type byte.
    pub ty: u8,
    /// Subtype byte.
    pub subtype: u8,
    /// Where it lives.
    pub region: Region,
    /// Label, NUL padded.
    pub label: [u8; 16],
    /// Flags word (bit 0 encrypted, bit 1 read-only).
    pub flags: u32,
}

impl PartitionEntry {
    fn parse(record: &[u8]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
        };
        let mut label = [0u8; 16];
        label.copy_from_slice(&record[12..28]);
        Self {
            ty: record[2],
            subtype: record[3],
            region: Region::new(word(4), word(8)),
            label,
            flags: word(28),
        }
    }

    /// The label up to its first NUL, if it is UTF-8.
    pub fn label_str(&self) -> Option<&str> {
        let end = self
            .label
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.label.len());
        core::str::from_utf8(&self.label[..end]).ok()
    }
}

/// A verified partition table borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct PartitionTable<'a> {
    records: &'a [u8],
    md5_checked: bool,
}

impl<'a> PartitionTable<'a> {
    /// Verifies `bytes` (read from [`PARTITION_TABLE_OFFSET`]) like the
    /// bootloader: magics, sizes within `flash_size`, the optional MD5, and
    /// the end marker.
    pub fn parse(bytes: &'a [u8], flash_size: u32) -> Result<Self, PartitionTableError> {
        let usable = &bytes[..bytes.len().min(PARTITION_TABLE_MAX_LEN)];
        let mut md5_at = None;
        for (index, record) in usable.chunks_exact(RECORD_LEN).enumerate() {
            let magic = [record[0], record[1]];
            if magic == MAGIC {
                if md5_at.is_some() {
                    return Err(PartitionTableError::RecordAfterMd5 { index });
                }
                let e = PartitionEntry::parse(record);
                if e.region.offset > flash_size || e.region.size > flash_size - e.region.offset {
                    return Err(PartitionTableError::OutOfFlash { index });
                }
            } else if magic == MAGIC_MD5 {
                if md5_at.is_some() {
                    return Err(PartitionTableError::DuplicateMd5);
                }
                let digest = Md5::digest(&usable[..index * RECORD_LEN]);
                if digest.as_slice() != &record[MD5_OFFSET..] {
                    return Err(PartitionTableError::Md5Mismatch);
                }
                md5_at = Some(index);
            } else if record.iter().all(|&b| b == 0xFF) {
                // ESP-IDF only looks at magic, type and subtype of the end
                // record; requiring all 0xFF is stricter and costs nothing.
                if index == 0 {
                    return Err(PartitionTableError::Empty);
                }
                let count = md5_at.unwrap_or(index);
                return Ok(Self {
                    records: &usable[..count * RECORD_LEN],
                    md5_checked: md5_at.is_some(),
                });
            } else {
                return Err(PartitionTableError::BadMagic {
                    index,
                    magic: u16::from_le_bytes(magic),
                });
            }
        }
        Err(PartitionTableError::NoEndMarker)
    }

    /// Whether the table carried an MD5 record (which then matched).
    pub const fn md5_checked(&self) -> bool {
        self.md5_checked
    }

    /// The partition records in table order.
    pub fn entries(&self) -> impl Iterator<Item = PartitionEntry> + 'a {
        self.records
            .chunks_exact(RECORD_LEN)
            .map(PartitionEntry::parse)
    }

    /// The first partition of a type and subtype.
    pub fn find(&self, ty: u8, subtype: u8) -> Option<PartitionEntry> {
        self.entries().find(|e| e.ty == ty && e.subtype == subtype)
    }

    /// otadata, factory and `ota_0..ota_N`. Duplicates and gaps in the OTA
    /// slots are refused: ESP-IDF's bootloader and app disagree about them
    /// (the bootloader counts partitions, the app counts consecutive slots).
    pub fn geometry(&self) -> Result<Geometry, PartitionTableError> {
        let mut otadata = None;
        let mut factory = None;
        let mut slots: [Option<Region>; MAX_OTA_SLOTS] = [None; MAX_OTA_SLOTS];
        for e in self.entries() {
            let place = match (e.ty, e.subtype) {
                (TYPE_DATA, SUBTYPE_DATA_OTA) => &mut otadata,
                (TYPE_APP, SUBTYPE_FACTORY) => &mut factory,
                (TYPE_APP, s)
                    if (SUBTYPE_OTA_0..SUBTYPE_OTA_0 + MAX_OTA_SLOTS as u8).contains(&s) =>
                {
                    &mut slots[usize::from(s - SUBTYPE_OTA_0)]
                }
                _ => continue,
            };
            if place.replace(e.region).is_some() {
                return Err(PartitionTableError::Duplicate {
                    ty: e.ty,
                    subtype: e.subtype,
                });
            }
        }
        let otadata = otadata.ok_or(PartitionTableError::NoOtadata)?;
        let count = slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(MAX_OTA_SLOTS);
        if slots[count..].iter().any(Option::is_some) {
            return Err(PartitionTableError::OtaSlotGap {
                missing: count as u8,
            });
        }
        let mut regions = [Region::default(); MAX_OTA_SLOTS];
        for (dst, src) in regions.iter_mut().zip(&slots[..count]) {
            *dst = src.unwrap_or_default();
        }
        Ok(Geometry::new(otadata, factory, &regions[..count])?)
    }
}
