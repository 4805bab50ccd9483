//! The trusted-key descriptor of this firmware: the only keys whose signatures this device
//! accepts, found by `ota-sign package` / `inspect` through its magic.
//!
//! The device takes its keys from [`DESCRIPTOR`], the same constant the embedded bytes are
//! encoded from, instead of parsing [`OTA_TRUSTED_KEYS`] at run time: parsing compares
//! against the magic, which would put a second, bare copy of the magic into `.rodata` and
//! make the firmware's descriptor ambiguous to `TrustedKeyDescriptor::find_in`.

use ota_format::{DESCRIPTOR_LEN, TrustedKeyDescriptor};

use crate::build_config::TRUSTED_KEYS;

/// The keys this firmware trusts.
pub const DESCRIPTOR: TrustedKeyDescriptor = TrustedKeyDescriptor::new(&TRUSTED_KEYS);

/// Lands in flash (`.rodata`), inside the app image that the signed header's digest binds.
/// `#[used]` keeps it although no code reads it.
#[used]
pub static OTA_TRUSTED_KEYS: [u8; DESCRIPTOR_LEN] = DESCRIPTOR.to_bytes();
