//! `ota-format`: the two signed objects of ota-sign.
//!
//! * the **image** (`.ota` file): a fixed, fully signed [`ImageHeader`] followed by the
//!   payload (an ESP-IDF app image, optionally zstd-compressed);
//! * the **release manifest**: a small signed record per device type and channel that
//!   names the current image ([`Manifest`]).
//!
//! Parsing and verification need neither `std` nor an allocator and run in constant
//! memory: [`ImageVerifier`] takes the image in chunks of any size. The byte-level
//! specification is `docs/FORMAT.md`; this crate is its reference implementation.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod bytes;
mod chip;
mod descriptor;
mod error;
mod key;
mod name;
mod version;

pub use chip::ChipId;
pub use descriptor::{TrustedKeyDescriptor, DESCRIPTOR_LEN, DESCRIPTOR_MAGIC, MAX_TRUSTED_KEYS};
pub use error::{FieldError, FormatError};
pub use key::{KeyId, TrustedKey, TrustedKeys};
pub use name::{Channel, DeviceType, Name};
pub use version::Version;
