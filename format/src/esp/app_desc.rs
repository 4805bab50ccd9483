//! The application descriptor (`esp_app_desc_t`), found at the start of the first
//! segment of an app image, i.e. at image offset [`APP_DESC_OFFSET`].
//!
//! | offset | size | field                                              |
//! |-------:|-----:|----------------------------------------------------|
//! | 0      | 4    | magic word `0xABCD5432`                            |
//! | 4      | 4    | secure version (anti-rollback counter of ESP-IDF)  |
//! | 8      | 8    | reserved                                           |
//! | 16     | 32   | version, NUL-terminated text                       |
//! | 48     | 32   | project name                                       |
//! | 80     | 16   | compile time                                       |
//! | 96     | 16   | compile date                                       |
//! | 112    | 32   | ESP-IDF version                                    |
//! | 144    | 32   | SHA-256 of the ELF file (filled in by the image tool) |
//! | 176    | 2    | minimum eFuse block revision, `major * 100 + minor` |
//! | 178    | 2    | maximum eFuse block revision                       |
//! | 180    | 1    | MMU page size, log2 (0 = chip default)             |
//! | 181    | 75   | reserved                                           |
//!
//! Layout from ESP-IDF `components/esp_app_format/include/esp_app_desc.h` (v5.x); the
//! same struct is emitted by esp-hal's `esp_bootloader_esp_idf::esp_app_desc!()`.

use super::error::AppImageError;
use super::header::{IMAGE_HEADER_LEN, IMAGE_MAGIC, SEGMENT_HEADER_LEN};
use crate::descriptor::TrustedKeyDescriptor;

/// `ESP_APP_DESC_MAGIC_WORD`.
pub const APP_DESC_MAGIC: u32 = 0xABCD_5432;
/// Size of `esp_app_desc_t`.
pub const APP_DESC_LEN: usize = 256;
/// Image offset of the descriptor: after the image header and the first segment header.
pub const APP_DESC_OFFSET: usize = IMAGE_HEADER_LEN + SEGMENT_HEADER_LEN;

const VERSION: (usize, usize) = (16, 32);
const PROJECT_NAME: (usize, usize) = (48, 32);
const TIME: (usize, usize) = (80, 16);
const DATE: (usize, usize) = (96, 16);
const IDF_VER: (usize, usize) = (112, 32);
const ELF_SHA256: usize = 144;

/// A decoded `esp_app_desc_t`. Text fields are guaranteed to be UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppDescriptor {
    raw: [u8; APP_DESC_LEN],
}

impl AppDescriptor {
    /// A descriptor with the given version and project name; other text fields empty,
    /// numbers zero. Fails when a string does not fit (31 bytes plus the NUL).
    pub fn new(version: &str, project_name: &str) -> Result<Self, AppImageError> {
        let mut raw = [0u8; APP_DESC_LEN];
        raw[..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
        let mut d = AppDescriptor { raw };
        d.set_text(VERSION, "version", version)?;
        d.set_text(PROJECT_NAME, "project_name", project_name)?;
        Ok(d)
    }

    /// Sets compile time and date (`"12:34:56"`, `"Jan  1 2025"`).
    pub fn with_build_time(mut self, time: &str, date: &str) -> Result<Self, AppImageError> {
        self.set_text(TIME, "time", time)?;
        self.set_text(DATE, "date", date)?;
        Ok(self)
    }

    /// Sets the ESP-IDF version string.
    pub fn with_idf_ver(mut self, idf_ver: &str) -> Result<Self, AppImageError> {
        self.set_text(IDF_VER, "idf_ver", idf_ver)?;
        Ok(self)
    }

    /// Sets the ESP-IDF secure version.
    pub fn with_secure_version(mut self, secure_version: u32) -> Self {
        self.raw[4..8].copy_from_slice(&secure_version.to_le_bytes());
        self
    }

    /// Sets the MMU page size field (log2; 16 = 64 KiB, 0 = unspecified).
    pub fn with_mmu_page_size(mut self, log2: u8) -> Self {
        self.raw[180] = log2;
        self
    }

    /// Decodes a descriptor starting at `bytes[0]` (its magic word).
    pub fn parse(bytes: &[u8]) -> Result<Self, AppImageError> {
        let magic = bytes.get(..4).ok_or(AppImageError::Truncated)?;
        if magic != APP_DESC_MAGIC.to_le_bytes() {
            return Err(AppImageError::AppDescriptorMissing);
        }
        let bytes = bytes.get(..APP_DESC_LEN).ok_or(AppImageError::Truncated)?;
        let mut raw = [0u8; APP_DESC_LEN];
        raw.copy_from_slice(bytes);
        let d = AppDescriptor { raw };
        for (range, field) in [
            (VERSION, "version"),
            (PROJECT_NAME, "project_name"),
            (TIME, "time"),
            (DATE, "date"),
            (IDF_VER, "idf_ver"),
        ] {
            if core::str::from_utf8(d.text_bytes(range)).is_err() {
                return Err(AppImageError::AppDescriptorInvalid { field });
            }
        }
        Ok(d)
    }

    /// Reads the descriptor of a complete (or at least long enough) app image.
    pub fn find_in_image(image: &[u8]) -> Result<Self, AppImageError> {
        let magic = *image.first().ok_or(AppImageError::Truncated)?;
        if magic != IMAGE_MAGIC {
            return Err(AppImageError::BadMagic { found: magic });
        }
        let count = *image.get(1).ok_or(AppImageError::Truncated)?;
        if count == 0 {
            return Err(AppImageError::NoSegments);
        }
        let len_at = IMAGE_HEADER_LEN + 4;
        let len = image
            .get(len_at..len_at + 4)
            .ok_or(AppImageError::Truncated)?;
        let first_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        if (first_len as usize) < APP_DESC_LEN {
            return Err(AppImageError::AppDescriptorMissing);
        }
        let rest = image
            .get(APP_DESC_OFFSET..)
            .ok_or(AppImageError::Truncated)?;
        Self::parse(rest)
    }

    /// The encoded 256 bytes.
    pub fn to_bytes(&self) -> [u8; APP_DESC_LEN] {
        self.raw
    }

    /// The application version string (ota-sign requires semver).
    pub fn version(&self) -> &str {
        self.text(VERSION)
    }

    /// The project name.
    pub fn project_name(&self) -> &str {
        self.text(PROJECT_NAME)
    }

    /// Compile time.
    pub fn time(&self) -> &str {
        self.text(TIME)
    }

    /// Compile date.
    pub fn date(&self) -> &str {
        self.text(DATE)
    }

    /// ESP-IDF version.
    pub fn idf_ver(&self) -> &str {
        self.text(IDF_VER)
    }

    /// ESP-IDF secure version.
    pub fn secure_version(&self) -> u32 {
        u32::from_le_bytes([self.raw[4], self.raw[5], self.raw[6], self.raw[7]])
    }

    /// SHA-256 of the ELF file the image was made from (zero if the tool did not set it).
    pub fn app_elf_sha256(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.raw[ELF_SHA256..ELF_SHA256 + 32]);
        out
    }

    /// Minimum and maximum eFuse block revision.
    pub fn efuse_blk_rev_range(&self) -> (u16, u16) {
        (
            u16::from_le_bytes([self.raw[176], self.raw[177]]),
            u16::from_le_bytes([self.raw[178], self.raw[179]]),
        )
    }

    /// MMU page size field (log2, 0 = unspecified).
    pub fn mmu_page_size(&self) -> u8 {
        self.raw[180]
    }

    fn text_bytes(&self, (at, len): (usize, usize)) -> &[u8] {
        let field = &self.raw[at..at + len];
        let end = field.iter().position(|&b| b == 0).unwrap_or(len);
        &field[..end]
    }

    fn text(&self, range: (usize, usize)) -> &str {
        // Checked by `parse` and `set_text`, the only ways text gets in.
        core::str::from_utf8(self.text_bytes(range)).unwrap_or("")
    }

    fn set_text(
        &mut self,
        (at, len): (usize, usize),
        field: &'static str,
        value: &str,
    ) -> Result<(), AppImageError> {
        if value.len() >= len || value.as_bytes().contains(&0) {
            return Err(AppImageError::AppDescriptorInvalid { field });
        }
        let slot = &mut self.raw[at..at + len];
        slot.fill(0);
        slot[..value.len()].copy_from_slice(value.as_bytes());
        Ok(())
    }
}

/// What a firmware says about itself: its app descriptor and whom it trusts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FirmwareDescriptors {
    /// The ESP-IDF app descriptor.
    pub app: AppDescriptor,
    /// The trusted-key descriptor, if the firmware has one.
    pub trusted_keys: Option<TrustedKeyDescriptor>,
}

/// Reads both descriptors from an app image.
pub fn find_descriptors(image: &[u8]) -> Result<FirmwareDescriptors, AppImageError> {
    let app = AppDescriptor::find_in_image(image)?;
    let trusted_keys =
        TrustedKeyDescriptor::find_in(image).map_err(AppImageError::KeyDescriptor)?;
    Ok(FirmwareDescriptors { app, trusted_keys })
}
