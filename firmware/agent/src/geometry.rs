//! Where otadata and the app slots live in flash (absolute offsets).

use crate::otadata::{OTADATA_MIN_SIZE, SECTOR_SIZE};

/// ESP-IDF has at most 16 OTA app slots (`ota_0` .. `ota_15`).
pub const MAX_OTA_SLOTS: usize = 16;
/// ESP-IDF requires app partitions to start on a 64 KiB boundary (MMU page).
pub const APP_ALIGN: u32 = 0x1_0000;

/// A contiguous flash range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Region {
    /// Absolute flash offset.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
}

impl Region {
    /// A region; see [`Geometry::new`] for the checks.
    pub const fn new(offset: u32, size: u32) -> Self {
        Self { offset, size }
    }

    /// One past the last byte, or `None` if that overflows `u32`.
    pub const fn end(&self) -> Option<u32> {
        self.offset.checked_add(self.size)
    }

    fn overlaps(&self, other: &Region) -> bool {
        // Both ends were checked not to overflow before this is called.
        let (a_end, b_end) = (self.offset + self.size, other.offset + other.size);
        self.offset < b_end && other.offset < a_end
    }
}

/// An app partition the bootloader can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BootTarget {
    /// The `factory` app partition.
    Factory,
    /// OTA slot `ota_N`.
    Ota(u8),
}

/// Why a [`Geometry`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// otadata must be at least two 4 KiB sectors.
    #[error("otadata is {size:#x} bytes, needs at least two 4 KiB sectors")]
    OtadataTooSmall {
        /// The size given.
        size: u32,
    },
    /// otadata must start on a sector boundary.
    #[error("otadata offset {offset:#x} is not 4 KiB aligned")]
    OtadataMisaligned {
        /// The offset given.
        offset: u32,
    },
    /// App partitions must start on a 64 KiB boundary.
    #[error("app partition at {offset:#x} is not 64 KiB aligned")]
    AppMisaligned {
        /// The offset given.
        offset: u32,
    },
    /// An app partition has no bytes.
    #[error("app partition at {offset:#x} is empty")]
    EmptyApp {
        /// The offset given.
        offset: u32,
    },
    /// More than 16 OTA slots.
    #[error("{count} OTA slots given, ESP-IDF supports at most 16")]
    TooManySlots {
        /// The number of slots given.
        count: usize,
    },
    /// A region's end does not fit in 32 bits.
    #[error("region at {offset:#x} runs past the 4 GiB address space")]
    RegionOverflow {
        /// The offset given.
        offset: u32,
    },
    /// Two regions share bytes.
    #[error("regions at {first:#x} and {second:#x} overlap")]
    Overlap {
        /// Offset of one region.
        first: u32,
        /// Offset of the other.
        second: u32,
    },
}

/// otadata plus the app partitions, as read from the partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    otadata: Region,
    factory: Option<Region>,
    slots: [Region; MAX_OTA_SLOTS],
    slot_count: u8,
}

impl Geometry {
    /// Checks and builds a geometry. `slots[n]` is `ota_n`.
    pub fn new(
        otadata: Region,
        factory: Option<Region>,
        slots: &[Region],
    ) -> Result<Self, GeometryError> {
        if slots.len() > MAX_OTA_SLOTS {
            return Err(GeometryError::TooManySlots { count: slots.len() });
        }
        if otadata.size < OTADATA_MIN_SIZE {
            return Err(GeometryError::OtadataTooSmall { size: otadata.size });
        }
        if !otadata.offset.is_multiple_of(SECTOR_SIZE) {
            return Err(GeometryError::OtadataMisaligned {
                offset: otadata.offset,
            });
        }
        let mut all = [Region::default(); MAX_OTA_SLOTS + 2];
        all[0] = otadata;
        let mut n = 1;
        for app in factory.iter().chain(slots.iter()) {
            if !app.offset.is_multiple_of(APP_ALIGN) {
                return Err(GeometryError::AppMisaligned { offset: app.offset });
            }
            if app.size == 0 {
                return Err(GeometryError::EmptyApp { offset: app.offset });
            }
            all[n] = *app;
            n += 1;
        }
        for r in &all[..n] {
            if r.end().is_none() {
                return Err(GeometryError::RegionOverflow { offset: r.offset });
            }
        }
        for (i, a) in all[..n].iter().enumerate() {
            for b in &all[i + 1..n] {
                if a.overlaps(b) {
                    return Err(GeometryError::Overlap {
                        first: a.offset,
                        second: b.offset,
                    });
                }
            }
        }
        let mut table = [Region::default(); MAX_OTA_SLOTS];
        table[..slots.len()].copy_from_slice(slots);
        Ok(Self {
            otadata,
            factory,
            slots: table,
            slot_count: slots.len() as u8,
        })
    }

    /// The otadata partition.
    pub const fn otadata(&self) -> Region {
        self.otadata
    }

    /// Absolute offset of otadata sector `index` (0 or 1).
    pub const fn otadata_sector(&self, index: usize) -> u32 {
        self.otadata.offset + index as u32 * SECTOR_SIZE
    }

    /// The factory app partition, if any.
    pub const fn factory(&self) -> Option<Region> {
        self.factory
    }

    /// The OTA slots, `ota_0` first.
    pub fn slots(&self) -> &[Region] {
        &self.slots[..self.slot_count as usize]
    }

    /// Number of OTA slots.
    pub const fn slot_count(&self) -> u8 {
        self.slot_count
    }

    /// The region of a boot target, if the partition exists.
    pub fn region(&self, target: BootTarget) -> Option<Region> {
        match target {
            BootTarget::Factory => self.factory,
            BootTarget::Ota(n) => self.slots().get(n as usize).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTADATA: Region = Region::new(0xD000, 0x2000);

    #[test]
    fn typical_layout() {
        let g = Geometry::new(
            OTADATA,
            None,
            &[
                Region::new(0x10000, 0x100000),
                Region::new(0x110000, 0x100000),
            ],
        )
        .unwrap();
        assert_eq!(g.slot_count(), 2);
        assert_eq!(g.otadata_sector(1), 0xE000);
        assert_eq!(
            g.region(BootTarget::Ota(1)),
            Some(Region::new(0x110000, 0x100000))
        );
        assert_eq!(g.region(BootTarget::Ota(2)), None);
        assert_eq!(g.region(BootTarget::Factory), None);
    }

    #[test]
    fn rejects_bad_layouts() {
        let app = Region::new(0x10000, 0x10000);
        assert_eq!(
            Geometry::new(Region::new(0xD000, 0x1000), None, &[app]),
            Err(GeometryError::OtadataTooSmall { size: 0x1000 })
        );
        assert_eq!(
            Geometry::new(Region::new(0xD100, 0x2000), None, &[app]),
            Err(GeometryError::OtadataMisaligned { offset: 0xD100 })
        );
        assert_eq!(
            Geometry::new(OTADATA, None, &[Region::new(0x11000, 0x1000)]),
            Err(GeometryError::AppMisaligned { offset: 0x11000 })
        );
        assert_eq!(
            Geometry::new(OTADATA, None, &[Region::new(0x10000, 0)]),
            Err(GeometryError::EmptyApp { offset: 0x10000 })
        );
        assert_eq!(
            Geometry::new(OTADATA, Some(app), &[Region::new(0x10000, 0x20000)]),
            Err(GeometryError::Overlap {
                first: 0x10000,
                second: 0x10000
            })
        );
        assert_eq!(
            Geometry::new(OTADATA, None, &[Region::new(0xFFFF_0000, 0x20000)]),
            Err(GeometryError::RegionOverflow {
                offset: 0xFFFF_0000
            })
        );
        assert_eq!(
            Geometry::new(OTADATA, None, &[app; 17]),
            Err(GeometryError::TooManySlots { count: 17 })
        );
        assert_eq!(
            Geometry::new(
                Region::new(0x10000, 0x2000),
                None,
                &[Region::new(0x10000, 0x10000)]
            ),
            Err(GeometryError::Overlap {
                first: 0x10000,
                second: 0x10000
            })
        );
    }
}
