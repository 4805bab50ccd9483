//! ESP-IDF partition tables read from a file: the CSV that `gen_esp32part.py` reads, or
//! the binary table it writes. Any input gives partitions or an error, never a panic.
//!
//! esp-idf-part's own readers panic on valid tables (a numeric data subtype such as
//! `storage, data, 0x40, , 64K` reaches an `unwrap`) and on hostile ones (sizes whose
//! sum overflows), so tables are parsed here and only the checked partitions are handed
//! to esp-idf-part. Every offset + size fits in a `u32` and there are at most
//! [`MAX_PARTITIONS`], which is what its `validate` and `to_bin` rely on.
//!
//! This file depends only on esp-idf-part, md-5 and thiserror, so the fuzz workspace
//! (`fuzz/`) compiles this very file into its `partition_table` target.
//!
//! CSV, one partition per line, `#` starts a comment line:
//!
//! | field   | forms                                                                 |
//! |---------|-----------------------------------------------------------------------|
//! | name    | 1 to 16 bytes                                                         |
//! | type    | `app`, `data`, or a number 0..=0xFE                                   |
//! | subtype | a name of the type (`ota_0`, `nvs`, `spiffs`, ...), a number 0..=0xFF, or empty for 0 |
//! | offset  | a number, or empty: after the previous partition (64 KiB aligned for apps, 4 KiB else) |
//! | size    | a number                                                              |
//! | flags   | optional: `encrypted`, `readonly`, joined with `:`                     |
//!
//! Numbers are decimal, `0x` hex, `0o` octal or `0b` binary, optionally with a `K` or `M`
//! suffix (KiB, MiB).

use esp_idf_part::{AppType, DataType, Flags, Partition, SubType, Type};
use md5::{Digest, Md5};

/// The most partitions a binary table holds: 0xC00 bytes of 32-byte records, one of
/// them the MD5 record.
pub const MAX_PARTITIONS: usize = 95;
/// Longest binary table the bootloader reads.
pub const MAX_BINARY_LEN: usize = 0xC00;
/// Longest partition name (the binary record's label field).
pub const MAX_NAME_LEN: usize = 16;
/// Where CSV partitions without an offset start: after the table's sector at 0x8000.
pub const FIRST_AUTO_OFFSET: u32 = 0x9000;

const RECORD_LEN: usize = 32;
const RECORD_MAGIC: [u8; 2] = [0xAA, 0x50];
const MD5_MAGIC: [u8; 2] = [0xEB, 0xEB];
const APP_ALIGN: u32 = 0x1_0000;
const DATA_ALIGN: u32 = 0x1000;

/// Why a partition table file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The file is empty or holds no partition.
    #[error("the table holds no partition")]
    Empty,
    /// Neither a binary table (magic `AA 50`) nor UTF-8 text.
    #[error("neither a binary partition table (it would start with AA 50) nor CSV text")]
    NotText,
    /// A CSV line is wrong.
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A binary record is wrong.
    #[error("record {index} (at byte {offset:#x}): {message}", offset = index * RECORD_LEN)]
    Record {
        /// 0-based record index.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The binary table's MD5 record does not match the records before it.
    #[error("the MD5 record does not match the partitions before it")]
    Md5Mismatch,
    /// More partitions than a binary table can hold.
    #[error("more than {MAX_PARTITIONS} partitions (a table holds at most {MAX_PARTITIONS})")]
    TooMany,
}

/// Parses a CSV or binary partition table (binary when it starts with `AA 50`).
pub fn parse(bytes: &[u8]) -> Result<Vec<Partition>, TableError> {
    let partitions = if bytes.starts_with(&RECORD_MAGIC) {
        parse_binary(bytes)?
    } else {
        parse_csv(std::str::from_utf8(bytes).map_err(|_| TableError::NotText)?)?
    };
    if partitions.is_empty() {
        return Err(TableError::Empty);
    }
    Ok(partitions)
}

/// Parses the CSV form.
pub fn parse_csv(text: &str) -> Result<Vec<Partition>, TableError> {
    let mut partitions = Vec::new();
    let mut next_offset = FIRST_AUTO_OFFSET;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |message: String| TableError::Csv {
            line: index + 1,
            message,
        };
        if partitions.len() == MAX_PARTITIONS {
            return Err(TableError::TooMany);
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 5 {
            return Err(at(format!(
                "{} fields; expected name, type, subtype, offset, size[, flags]",
                fields.len()
            )));
        }
        if fields.iter().skip(6).any(|f| !f.is_empty()) {
            return Err(at(
                "more than 6 fields; expected name, type, subtype, offset, size[, flags]"
                    .to_owned(),
            ));
        }
        let name = check_name(fields[0]).map_err(at)?;
        let ty = csv_type(fields[1]).map_err(at)?;
        let subtype = csv_subtype(ty, fields[2]).map_err(at)?;
        let align = if ty == Type::App {
            APP_ALIGN
        } else {
            DATA_ALIGN
        };
        let offset = if fields[3].is_empty() {
            next_offset
                .checked_next_multiple_of(align)
                .ok_or_else(|| at("no room left in a 32-bit address space".to_owned()))?
        } else {
            parse_number(fields[3]).map_err(|m| at(format!("offset: {m}")))?
        };
        if fields[4].is_empty() {
            return Err(at("size is empty".to_owned()));
        }
        let size = parse_number(fields[4]).map_err(|m| at(format!("size: {m}")))?;
        next_offset = offset.checked_add(size).ok_or_else(|| {
            at(format!(
                "offset {offset:#x} + size {size:#x} is past the 4 GiB address space"
            ))
        })?;
        let flags = csv_flags(fields.get(5).copied().unwrap_or("")).map_err(at)?;
        partitions.push(Partition::new(name, ty, subtype, offset, size, flags));
    }
    Ok(partitions)
}

/// Parses the binary form: 32-byte records, an optional MD5 record, an end marker of
/// `0xFF` (or the end of the bytes).
pub fn parse_binary(bytes: &[u8]) -> Result<Vec<Partition>, TableError> {
    let mut partitions = Vec::new();
    let mut md5 = Md5::new();
    let mut md5_seen = false;
    let table = &bytes[..bytes.len().min(MAX_BINARY_LEN)];
    for (index, record) in table.chunks(RECORD_LEN).enumerate() {
        let at = |message: &str| TableError::Record {
            index,
            message: message.to_owned(),
        };
        if record.iter().all(|&b| b == 0xFF) {
            // The end marker (a short run of 0xFF at the end is erased flash too).
            return Ok(partitions);
        }
        if record.len() < RECORD_LEN {
            return Err(at("truncated record"));
        }
        if md5_seen {
            return Err(at("a record follows the MD5 record, which must come last"));
        }
        if record.starts_with(&MD5_MAGIC) {
            if record[16..] != md5.clone().finalize()[..] {
                return Err(TableError::Md5Mismatch);
            }
            md5_seen = true;
            continue;
        }
        if !record.starts_with(&RECORD_MAGIC) {
            return Err(at(&format!(
                "magic {:02x} {:02x}, expected aa 50 (a partition), eb eb (MD5) or ff ff (end)",
                record[0], record[1]
            )));
        }
        if partitions.len() == MAX_PARTITIONS {
            return Err(TableError::TooMany);
        }
        let word = |at: usize| {
            u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
        };
        // 0xFF is no type (ESP-IDF's tools accept 0..=0xFE); the CSV form refuses it too.
        if record[2] == 0xFF {
            return Err(at("type 0xff: expected app, data or a number 0..=0xfe"));
        }
        let ty = Type::from(record[2]);
        let subtype = subtype_of(ty, record[3]);
        let (offset, size) = (word(4), word(8));
        if offset.checked_add(size).is_none() {
            return Err(at(&format!(
                "offset {offset:#x} + size {size:#x} is past the 4 GiB address space"
            )));
        }
        let label = &record[12..28];
        let label = &label[..label.iter().position(|&b| b == 0).unwrap_or(label.len())];
        let name = std::str::from_utf8(label)
            .map_err(|_| at("the name is not UTF-8"))
            .and_then(|n| check_name(n).map_err(|m| at(&m)))?;
        let flags = Flags::from_bits(word(28))
            .ok_or_else(|| at(&format!("unknown flags {:#x}", word(28))))?;
        partitions.push(Partition::new(name, ty, subtype, offset, size, flags));
        md5.update(record);
    }
    Ok(partitions)
}

fn check_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name {name:?} is {} bytes; at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err("the name contains a NUL byte".to_owned());
    }
    Ok(name.to_owned())
}

fn csv_type(field: &str) -> Result<Type, String> {
    match field {
        "app" => Ok(Type::App),
        "data" => Ok(Type::Data),
        _ => match parse_number(field) {
            Ok(n) if n < 0xFF => Ok(Type::from(n as u8)),
            _ => Err(format!(
                "type {field:?}: expected app, data or a number 0..=0xfe"
            )),
        },
    }
}

fn csv_subtype(ty: Type, field: &str) -> Result<SubType, String> {
    if field.is_empty() {
        return Ok(subtype_of(ty, 0));
    }
    let named = match ty {
        Type::App => field.parse::<AppType>().ok().map(SubType::App),
        Type::Data => field.parse::<DataType>().ok().map(SubType::Data),
        Type::Custom(_) => None,
    };
    if let Some(subtype) = named {
        return Ok(subtype);
    }
    match parse_number(field) {
        Ok(n) if n <= 0xFF => Ok(subtype_of(ty, n as u8)),
        _ => Err(format!(
            "subtype {field:?} for type {ty}: expected {} or a number 0..=0xff",
            ty.subtype_hint()
        )),
    }
}

/// The subtype as esp-idf-part names it: a known app or data subtype by name, any other
/// byte as `Custom` (esp-idf-part's `SubType::app`/`data` panic on those).
fn subtype_of(ty: Type, byte: u8) -> SubType {
    let named = match ty {
        Type::App => AppType::from_repr(usize::from(byte)).map(SubType::App),
        Type::Data => DataType::from_repr(usize::from(byte)).map(SubType::Data),
        Type::Custom(_) => None,
    };
    named.unwrap_or(SubType::Custom(byte))
}

fn csv_flags(field: &str) -> Result<Flags, String> {
    let mut flags = Flags::empty();
    for flag in field.split(':').map(str::trim) {
        flags |= match flag {
            "" => Flags::empty(),
            "encrypted" => Flags::ENCRYPTED,
            "readonly" => Flags::READONLY,
            other => {
                return Err(format!("flag {other:?}: expected encrypted or readonly"));
            }
        };
    }
    Ok(flags)
}

/// A number as ESP-IDF's tools read one: decimal, `0x`, `0o` or `0b`, with an optional
/// `K` or `M` multiplier.
fn parse_number(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a number (e.g. 0x10000, 64K, 1M)");
    let (digits, multiplier) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1024u32),
        Some((at, 'm' | 'M')) => (&text[..at], 1024 * 1024),
        _ => (text, 1),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (8, oct)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (2, bin)
    } else {
        (10, lower.as_str())
    };
    // from_str_radix takes a leading '+', which no ESP-IDF tool writes.
    if body.is_empty() || !body.bytes().all(|b| (b as char).is_digit(radix)) {
        return Err(bad());
    }
    u32::from_str_radix(body, radix)
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} does not fit in 32 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     0x9000,  0x2000,
ota_state,data, undefined, ,      0x2000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
storage,  data, 0x40,    ,        64K, readonly
";

    #[test]
    fn numeric_data_subtypes_are_read() {
        let parts = parse(GOOD.as_bytes()).unwrap();
        let storage = parts.iter().find(|p| p.name() == "storage").unwrap();
        assert_eq!(storage.ty(), Type::Data);
        assert_eq!(storage.subtype(), SubType::Custom(0x40));
        assert_eq!(storage.offset(), 0x21_0000);
        assert_eq!(storage.size(), 0x1_0000);
        assert_eq!(storage.flags(), Flags::READONLY);
        let ota_0 = parts.iter().find(|p| p.name() == "ota_0").unwrap();
        assert_eq!(
            ota_0.offset(),
            0x1_0000,
            "apps are placed on 64 KiB boundaries"
        );
    }

    #[test]
    fn binary_round_trips_through_esp_idf_part() {
        let parts = parse(GOOD.as_bytes()).unwrap();
        let bin = esp_idf_part::PartitionTable::new(parts.clone())
            .to_bin()
            .unwrap();
        assert_eq!(parse(&bin).unwrap(), parts);
        let mut corrupt = bin.clone();
        corrupt[4] ^= 1;
        assert_eq!(parse(&corrupt), Err(TableError::Md5Mismatch));
    }

    #[test]
    fn hostile_numbers_are_errors() {
        for line in [
            "a, data, nvs, 0xffffffff, 0x2000",
            "a, data, nvs, , 4096M",
            "a, data, nvs, 0x9000, 99999999999",
            "a, data, nvs, 0x9000, +5",
            "a, data, nvs, 0x9000, 0x",
            "a, 0xff, 0, 0x9000, 0x1000",
            "a, data, 0x100, 0x9000, 0x1000",
            "a, data, nvs, 0x9000",
            "a, data, nvs, 0x9000, 0x1000, bogus",
            "a_name_longer_than_16, data, nvs, 0x9000, 0x1000",
        ] {
            assert!(
                matches!(parse(line.as_bytes()), Err(TableError::Csv { line: 1, .. })),
                "{line}"
            );
        }
        assert_eq!(parse(b"# nothing\n"), Err(TableError::Empty));
        assert_eq!(
            parse(&[0xAA, 0x50, 1]),
            Err(TableError::Record {
                index: 0,
                message: "truncated record".to_owned()
            })
        );
        assert_eq!(parse(&[0xC3, 0x28]), Err(TableError::NotText));
        // Found by the fuzz target: binary and CSV agree that 0xFF is no type.
        let mut record = [0u8; 32];
        record[..4].copy_from_slice(&[0xAA, 0x50, 0xFF, 0x00]);
        record[12] = b'a';
        assert!(matches!(
            parse(&record),
            Err(TableError::Record { index: 0, .. })
        ));
    }

    #[test]
    fn at_most_max_partitions() {
        let line = |n: usize| format!("p{n}, data, nvs, , 0x1000\n");
        let fits: String = (0..MAX_PARTITIONS).map(line).collect();
        let parts = parse(fits.as_bytes()).unwrap();
        let bin = esp_idf_part::PartitionTable::new(parts).to_bin().unwrap();
        assert_eq!(bin.len(), MAX_BINARY_LEN);
        let too_many: String = (0..=MAX_PARTITIONS).map(line).collect();
        assert_eq!(parse(too_many.as_bytes()), Err(TableError::TooMany));
    }
}
