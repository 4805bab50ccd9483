//! The agent's no_std partition-table parser against tables made by
//! esp-idf-part, and one test per malformed table.

use esp_idf_part::{
    AppType, DataType, Flags, Partition, PartitionTable as HostTable, SubType, Type,
};
use ota_agent::partition_table::{PartitionTable, PartitionTableError};
use ota_agent::{BootTarget, GeometryError, Region};
use ota_device_sim::{Layout, LayoutSpec};

const FLASH: u32 = 4 * 1024 * 1024;

fn bin(spec: LayoutSpec) -> Vec<u8> {
    spec.partition_table().unwrap().to_bin().unwrap()
}

/// Recomputes the MD5 record (at record `md5_index`) after editing records.
fn fix_md5(t: &mut [u8], md5_index: usize) {
    use md5::{Digest, Md5};
    let d = Md5::digest(&t[..md5_index * 32]);
    t[md5_index * 32 + 16..md5_index * 32 + 32].copy_from_slice(&d);
}

#[test]
fn parses_esp_idf_part_tables() {
    for factory in [false, true] {
        let spec = LayoutSpec {
            factory,
            ..LayoutSpec::two_slots()
        };
        let bytes = bin(spec);
        let t = PartitionTable::parse(&bytes, FLASH).unwrap();
        assert!(t.md5_checked());
        let host = HostTable::try_from_bytes(bytes.clone()).unwrap();
        assert_eq!(t.entries().count(), host.partitions().len());
        for (d, h) in t.entries().zip(host.partitions()) {
            assert_eq!(d.label_str(), Some(h.name().as_str()));
            assert_eq!((d.region.offset, d.region.size), (h.offset(), h.size()));
        }
        let g = t.geometry().unwrap();
        assert_eq!(g.otadata(), Region::new(0xD000, 0x2000));
        assert_eq!(g.slot_count(), 2);
        let first = if factory { 0x11_0000 } else { 0x1_0000 };
        assert_eq!(
            g.region(BootTarget::Ota(0)),
            Some(Region::new(first, 0x10_0000))
        );
        assert_eq!(g.factory().is_some(), factory);
    }
}

#[test]
fn md5_helper_matches_esp_idf_part() {
    let bytes = bin(LayoutSpec::two_slots());
    let mut copy = bytes.clone();
    fix_md5(&mut copy, 5);
    assert_eq!(copy, bytes);
}

#[test]
fn layout_reads_back_from_flash() {
    let mut flash = LayoutSpec::small(true, 3).format().unwrap();
    let layout = Layout::read(&mut flash).unwrap();
    assert_eq!(layout.geometry.slot_count(), 3);
    assert_eq!(layout.table.partitions().len(), 7);
}

#[test]
fn table_without_md5_is_accepted() {
    let mut bytes = bin(LayoutSpec::two_slots());
    bytes[5 * 32..6 * 32].fill(0xFF);
    let t = PartitionTable::parse(&bytes, FLASH).unwrap();
    assert!(!t.md5_checked());
    assert_eq!(t.entries().count(), 5);
}

#[test]
fn bad_tables_are_refused() {
    let good = bin(LayoutSpec::two_slots());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        PartitionTable::parse(&b, FLASH).and_then(|t| t.geometry().map(|_| ()))
    };
    assert_eq!(
        with(&|b| b[32] = 0x00),
        Err(PartitionTableError::BadMagic {
            index: 1,
            magic: 0x5000
        })
    );
    assert_eq!(with(&|b| b[20] ^= 1), Err(PartitionTableError::Md5Mismatch));
    assert_eq!(
        with(&|b| b[5 * 32 + 20] ^= 1),
        Err(PartitionTableError::Md5Mismatch)
    );
    assert_eq!(
        with(&|b| b[..32].fill(0xFF)),
        Err(PartitionTableError::Empty)
    );
    assert_eq!(
        with(&|b| {
            let md5 = b[5 * 32..6 * 32].to_vec();
            b[6 * 32..7 * 32].copy_from_slice(&md5);
        }),
        Err(PartitionTableError::DuplicateMd5)
    );
    assert_eq!(
        with(&|b| {
            let rec = b[..32].to_vec();
            b[6 * 32..7 * 32].copy_from_slice(&rec);
        }),
        Err(PartitionTableError::RecordAfterMd5 { index: 6 })
    );
    assert_eq!(
        with(&|b| {
            b[4 * 32 + 8..4 * 32 + 12].copy_from_slice(&0x40_0000u32.to_le_bytes());
            fix_md5(b, 5);
        }),
        Err(PartitionTableError::OutOfFlash { index: 4 })
    );
    // Records all the way to 0xC00 without an end marker (no MD5 record).
    assert_eq!(
        with(&|b| {
            for i in 5..0xC00 / 32 {
                let rec = b[..32].to_vec();
                b[i * 32..i * 32 + 32].copy_from_slice(&rec);
            }
        }),
        Err(PartitionTableError::NoEndMarker)
    );
    // Truncated: no end marker within the bytes given.
    assert_eq!(
        PartitionTable::parse(&good[..6 * 32], FLASH).unwrap_err(),
        PartitionTableError::NoEndMarker
    );
    for len in 0..6 * 32 {
        assert!(
            PartitionTable::parse(&good[..len], FLASH).is_err(),
            "truncated at {len}"
        );
    }
}

fn table(parts: Vec<Partition>) -> Vec<u8> {
    HostTable::new(parts).to_bin().unwrap()
}

fn app(name: &str, ty: AppType, offset: u32) -> Partition {
    Partition::new(
        name,
        Type::App,
        SubType::App(ty),
        offset,
        0x10000,
        Flags::empty(),
    )
}

fn otadata() -> Partition {
    Partition::new(
        "otadata",
        Type::Data,
        SubType::Data(DataType::Ota),
        0xD000,
        0x2000,
        Flags::empty(),
    )
}

#[test]
fn bad_layouts_are_refused() {
    let geom = |parts| {
        PartitionTable::parse(&table(parts), FLASH)
            .unwrap()
            .geometry()
    };
    assert_eq!(
        geom(vec![app("ota_0", AppType::Ota_0, 0x10000)]),
        Err(PartitionTableError::NoOtadata)
    );
    assert_eq!(
        geom(vec![
            otadata(),
            app("ota_0", AppType::Ota_0, 0x10000),
            app("ota_2", AppType::Ota_2, 0x20000)
        ]),
        Err(PartitionTableError::OtaSlotGap { missing: 1 })
    );
    assert_eq!(
        geom(vec![
            otadata(),
            app("a", AppType::Ota_0, 0x10000),
            app("b", AppType::Ota_0, 0x20000)
        ]),
        Err(PartitionTableError::Duplicate {
            ty: 0,
            subtype: 0x10
        })
    );
    assert_eq!(
        geom(vec![
            otadata(),
            app("a", AppType::Ota_0, 0x10000),
            app("b", AppType::Ota_1, 0x10000)
        ]),
        Err(PartitionTableError::Geometry(GeometryError::Overlap {
            first: 0x10000,
            second: 0x10000
        }))
    );
    // Factory only, no OTA slots: a valid geometry with zero slots.
    let g = geom(vec![otadata(), app("factory", AppType::Factory, 0x10000)]).unwrap();
    assert_eq!(g.slot_count(), 0);
}

/// A flash whose table has a numeric data subtype (as `ota-sign flash` writes from
/// `storage, data, 0x40, , 64K`) is read, not a panic in esp-idf-part.
#[test]
fn a_numeric_data_subtype_is_read() {
    let mut parts = LayoutSpec::two_slots()
        .partition_table()
        .unwrap()
        .partitions()
        .clone();
    let end = parts.iter().map(|p| p.offset() + p.size()).max().unwrap();
    parts.push(Partition::new(
        "storage",
        Type::Data,
        SubType::Custom(0x40),
        end,
        0x1_0000,
        Flags::empty(),
    ));
    let table = HostTable::new(parts).to_bin().unwrap();
    let mut flash = ota_device_sim::SimFlash::new(FLASH as usize);
    flash.flash_image(ota_agent::partition_table::PARTITION_TABLE_OFFSET, &table);
    let layout = Layout::read(&mut flash).unwrap();
    let storage = layout.table.find("storage").unwrap();
    assert_eq!(storage.subtype(), SubType::Custom(0x40));
    assert_eq!(layout.geometry.slot_count(), 2);
}
