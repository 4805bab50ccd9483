//! First install: everything a device needs on its flash before it can update itself
//! over the air, planned once and then written either over a serial port or into a full
//! flash image file.
//!
//! Data flow: partition table ([`partitions`]: from a file or the default for the flash
//! size, then checked) + bootloader ([`bootloader`]: espflash's build for the chip) +
//! app image --[`Plan::new`]--> [`Plan`] (writes by offset) --> [`Plan::image`] or
//! `serial::SerialDevice::write`.

pub mod bootloader;
mod error;
pub mod partitions;
mod plan;
#[cfg(feature = "serial")]
pub mod serial;
pub mod table;

pub use error::FlashError;
pub use partitions::CheckedTable;
pub use plan::{Plan, PlanInput, PlanSummary};
