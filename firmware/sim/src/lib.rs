//! Host simulator of an ESP32 running the ota-sign agent.
//!
//! * [`simflash`]: a strict NOR flash (ESP32 sectors, any write word) with operation
//!   counting and power-cut injection, from `ota-flash-sim`.
//! * [`layout`]: ESP-IDF partition tables (via `esp-idf-part`) written to and
//!   read from the simulated flash.
//! * [`project`]: the device type from the project's `ota-sign.toml`.
//! * [`bootloader`]: the stock ESP-IDF second-stage bootloader over the
//!   simulated flash, in both app-rollback modes, with a pluggable image
//!   validator.
//! * [`status_server`]: the bounded connection handling of `ota-device-sim`'s status
//!   endpoint.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bootloader;
// agent: the virtual device and its HTTP client
pub mod device;
pub mod http_client;
pub mod layout;
pub mod project;
pub mod simflash;
pub mod status_server;

pub use bootloader::{BootReport, ImageValidator, SimBootError, SimBootloader};
pub use layout::{Layout, LayoutError, LayoutSpec};
pub use simflash::{FlashOp, SimFlash, SimFlashError, SimNorFlash, WordFlash};
