//! The simulated device's flash: [`ota_flash_sim`]'s strict NOR flash, in the ESP32
//! geometry ([`SimFlash`]) or another one ([`SimNorFlash`]).

pub use ota_flash_sim::{FlashOp, SimFlash, SimFlashError, SimNorFlash};
