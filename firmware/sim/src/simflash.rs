//! The simulated device's flash: [`ota_flash_sim`]'s strict NOR flash with ESP32
//! 4 KiB sectors, in ESP32's 4-byte write words ([`SimFlash`]) or others
//! ([`WordFlash`]), so that the whole device runs over several flash geometries.

pub use ota_flash_sim::{ESP32_SECTOR_SIZE, FlashOp, SimFlash, SimFlashError, SimNorFlash};

/// ESP32 4 KiB sectors with `WRITE_SIZE`-byte write words.
pub type WordFlash<const WRITE_SIZE: usize> = SimNorFlash<WRITE_SIZE, ESP32_SECTOR_SIZE>;
