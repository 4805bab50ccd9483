//! Device side of ota-sign: the parts of the update agent that live next to the
//! ESP-IDF boot flow.
//!
//! * [`otadata`]: the two-sector `otadata` partition, byte-exact with ESP-IDF.
//! * [`geometry`] and [`partition_table`]: where otadata and the app slots live.
//! * [`boot`]: the application's view (switch slot, confirm, roll back, count
//!   trial boots) generic over `embedded-storage` NOR flash.
//! * [`bootloader`]: the stock ESP-IDF second-stage bootloader's otadata rules,
//!   so a simulator (or a test) can reproduce what the real bootloader does.
//!
//! Everything is `no_std`, allocation-free and works on caller-owned stack
//! buffers of at most 64 bytes.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot;
pub mod bootloader;
pub mod crc;
pub mod geometry;
mod io;
pub mod otadata;
pub mod partition_table;
// agent: the update path
extern crate alloc;
pub mod agent;
#[cfg(test)]
mod agent_tests;
pub mod download;
pub mod http;
pub mod install;
pub mod state;
pub mod status;
#[cfg(test)]
mod test_flash;
#[cfg(test)]
mod test_support;
pub mod url;
pub mod zstd;

pub use boot::{BootAttempt, BootConfig, BootError, BootState, BootloaderMode};
pub use geometry::{BootTarget, Geometry, GeometryError, Region};
pub use otadata::{OtaSelectEntry, OtaState};
