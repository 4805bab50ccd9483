//! `ota-sign flash` with partition tables of the user's own: every valid ESP-IDF form is
//! read (numeric subtypes included), and no table, however hostile, panics the CLI.

mod common;

use common::*;
use ota_testkit::{Chip, TestFirmware};

const TABLE_AT: usize = 0x8000;

/// The default layout plus a data partition whose subtype is a number, as ESP-IDF's
/// documentation shows for custom data.
const NUMERIC_SUBTYPE: &str = "\
# Name,   Type, SubType,   Offset,  Size, Flags
nvs,      data, nvs,       0x9000,  0x2000,
ota_state,data, undefined, 0xb000,  0x2000,
otadata,  data, ota,       0xd000,  0x2000,
phy_init, data, phy,       0xf000,  0x1000,
ota_0,    app,  ota_0,     0x10000, 0x180000,
ota_1,    app,  ota_1,     ,        0x180000,
storage,  data, 0x40,      ,        64K,
";

fn app_image(s: &Scratch) -> String {
    let pk = s.keygen("release");
    let app = TestFirmware::new(Chip::Esp32c3)
        .version("1.0.0")
        .project_name("thermostat")
        .trusted_keys(&[pk])
        .payload_size(20_000)
        .app_image();
    s.write("app.bin", &app);
    "app.bin".to_owned()
}

fn flash_with_table(s: &Scratch, table: &str, out: &str) -> std::process::Output {
    s.run(&[
        "flash",
        "--app-image",
        "app.bin",
        "--partition-table",
        table,
        "--output",
        out,
    ])
}

#[test]
fn flash_writes_a_table_with_a_numeric_data_subtype() {
    let s = Scratch::new();
    app_image(&s);
    s.write("parts.csv", NUMERIC_SUBTYPE.as_bytes());
    let out = flash_with_table(&s, "parts.csv", "flash.bin");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    let records: Vec<&[u8]> = image[TABLE_AT..TABLE_AT + 0xC00].chunks(32).collect();
    let storage = records
        .iter()
        .find(|r| r.starts_with(&[0xAA, 0x50]) && r[12..19] == *b"storage")
        .expect("the storage partition is in the written table");
    assert_eq!(
        (storage[2], storage[3]),
        (0x01, 0x40),
        "type data, subtype 0x40"
    );
    assert_eq!(
        u32::from_le_bytes(storage[4..8].try_into().unwrap()),
        0x31_0000
    );
    assert_eq!(
        u32::from_le_bytes(storage[8..12].try_into().unwrap()),
        0x1_0000
    );

    // The binary table it wrote is itself a valid --partition-table.
    s.write("parts.bin", &image[TABLE_AT..TABLE_AT + 0xC00]);
    let again = flash_with_table(&s, "parts.bin", "flash2.bin");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(s.path("flash2.bin")).unwrap(), image);
}

#[test]
fn hostile_partition_tables_are_refused_without_a_panic() {
    let s = Scratch::new();
    app_image(&s);
    let mut binary_bad_flags = vec![0xFF; 64];
    binary_bad_flags[..32].copy_from_slice(
        &[
            &[0xAA, 0x50, 0x01, 0x40][..],
            &0x9000u32.to_le_bytes(),
            &0x1000u32.to_le_bytes(),
            b"storage\0\0\0\0\0\0\0\0\0",
            &0xF0u32.to_le_bytes(),
        ]
        .concat(),
    );
    let mut binary_overflow = binary_bad_flags.clone();
    binary_overflow[4..12].copy_from_slice(&[0xFF; 8]);
    binary_overflow[28..32].copy_from_slice(&[0; 4]);
    let cases: [(&str, Vec<u8>); 7] = [
        (
            "overflow.csv",
            b"a, data, nvs, 0xffff0000, 0xffff0000\nb, app, ota_0, , 1M\n".to_vec(),
        ),
        ("huge.csv", b"a, data, nvs, , 99999999999999\n".to_vec()),
        ("type.csv", b"a, bogus, nvs, 0x9000, 0x1000\n".to_vec()),
        ("short.csv", b"a, data\n".to_vec()),
        ("flags.bin", binary_bad_flags),
        ("overflow.bin", binary_overflow),
        (
            "too-many.csv",
            (0..200)
                .map(|n| format!("p{n}, data, nvs, , 0x1000\n"))
                .collect::<String>()
                .into_bytes(),
        ),
    ];
    for (name, bytes) in cases {
        s.write(name, &bytes);
        let out = flash_with_table(&s, name, "never.bin");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(FAILURE), "{name}: {stderr}");
        assert!(stderr.contains("partition table"), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_absent(&s.path("never.bin"));
    }
}
