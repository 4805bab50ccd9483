//! Synthetic ESP32-family firmware for ota-sign tests.
//!
//! [`TestFirmware`] describes a firmware (chip, app descriptor, trusted keys, payload)
//! and renders it either as an ELF file shaped like an esp-hal / ESP-IDF build
//! ([`TestFirmware::elf`]), which `ota-sign package` turns into an app image with
//! espflash, or directly as an ESP-IDF app image ([`TestFirmware::app_image`]) for tests
//! that need one without espflash. [`Corruption`] breaks app images in one named way
//! each. [`release`] packages an app image as a signed `.ota` file and manifest, with
//! knobs to lie in one place; [`fixture`] is the `sensor` device the agent tests
//! update. See `README.md` for how the fixtures are laid out.
#![forbid(unsafe_code)]

mod chip;
pub mod delta;
mod elf;
mod filler;
mod firmware;
pub mod fixture;
mod image;
pub mod release;
mod secure_boot;

pub use chip::{Chip, MemoryLayout};
pub use filler::filler;
pub use firmware::{TestFirmware, TestSection};
pub use image::{Corruption, corrupt, reseal};
pub use secure_boot::{secure_boot_key_digest, secure_boot_signed};
