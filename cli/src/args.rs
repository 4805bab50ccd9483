//! Value parsers shared by the commands' arguments, so a value is spelled the same way
//! wherever it is accepted (`--flash-size 0x400000` works for `package` and `flash`).

use espflash::flasher::FlashSize;
use ota_format::{ChipId, Version};
use ota_sign_lib::flash::bootloader::flash_size_of;

/// Parses a chip name for clap.
pub fn parse_chip(s: &str) -> Result<ChipId, String> {
    ChipId::from_name(s).ok_or_else(|| {
        let known: Vec<&str> = ChipId::known().map(|(_, n)| n).collect();
        format!("unknown chip {s:?}; known: {}", known.join(", "))
    })
}

/// Parses a semantic version for clap.
pub fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s)
        .ok_or_else(|| format!("{s:?} is not a semantic version (MAJOR.MINOR.PATCH[-PRE])"))
}

/// Parses a byte size: `1572864`, `0x180000`, `1536K`, `1536KiB`, `2M`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t
        .strip_suffix("KiB")
        .or(t.strip_suffix("K"))
        .or(t.strip_suffix("k"))
    {
        (n, 1024u64)
    } else if let Some(n) = t.strip_suffix("MiB").or(t.strip_suffix("M")) {
        (n, 1024 * 1024)
    } else {
        (t, 1)
    };
    let value = match num.strip_prefix("0x").or(num.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => num.parse(),
    }
    .map_err(|_| format!("{s:?} is not a size (e.g. 1572864, 0x180000, 1536K, 2M)"))?;
    value
        .checked_mul(mult)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a flash size: `4MB`, `4mb`, `4M`, `0x400000` or `4194304` (1 to 32 MB).
pub fn parse_flash_size(s: &str) -> Result<FlashSize, String> {
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let t = match t.strip_suffix('m') {
        Some(n) => format!("{n}M"),
        None => t.to_owned(),
    };
    parse_size(&t)
        .ok()
        .and_then(flash_size_of)
        .ok_or_else(|| format!("{s:?} is not a flash size (1MB, 2MB, 4MB, 8MB, 16MB, 32MB)"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn sizes_parse_in_every_documented_form() {
        assert_eq!(parse_size("1572864"), Ok(1_572_864));
        assert_eq!(parse_size("0x180000"), Ok(0x18_0000));
        assert_eq!(parse_size("1536K"), Ok(1_572_864));
        assert_eq!(parse_size("1536KiB"), Ok(1_572_864));
        assert_eq!(parse_size("2M"), Ok(2 * 1024 * 1024));
        assert!(parse_size("5G").is_err());
        assert!(parse_size("99999999M").is_err());
    }

    #[test]
    fn flash_sizes_parse_in_every_form() {
        assert_eq!(parse_flash_size("4MB"), Ok(FlashSize::_4Mb));
        assert_eq!(parse_flash_size("16mb"), Ok(FlashSize::_16Mb));
        assert_eq!(parse_flash_size("16M"), Ok(FlashSize::_16Mb));
        assert_eq!(parse_flash_size("0x200000"), Ok(FlashSize::_2Mb));
        assert_eq!(parse_flash_size("4194304"), Ok(FlashSize::_4Mb));
        assert!(parse_flash_size("3MB").is_err());
        assert!(parse_flash_size("0x300000").is_err());
        assert!(parse_flash_size("lots").is_err());
    }

    /// `package` refused `--flash-size 0x400000` that `flash` took: both read one parser.
    #[test]
    fn package_and_flash_accept_the_same_flash_sizes() {
        let parses = |command: &[&str], size: &str| {
            let mut line = vec!["ota-sign"];
            line.extend_from_slice(command);
            line.extend_from_slice(&["--flash-size", size]);
            Cli::try_parse_from(line).is_ok()
        };
        let package = ["package", "--elf", "app.elf", "-o", "app.ota"];
        let flash = ["flash", "--elf", "app.elf", "--dry-run"];
        for size in ["4MB", "4mb", "4M", "0x400000", "4194304"] {
            assert!(parses(&package, size), "package --flash-size {size}");
            assert!(parses(&flash, size), "flash --flash-size {size}");
        }
        for size in ["3MB", "0x300000"] {
            assert!(!parses(&package, size), "package refuses {size}");
            assert!(!parses(&flash, size), "flash refuses {size}");
        }
    }
}
