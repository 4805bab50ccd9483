//! `ota-format`: the two signed objects of ota-sign.
//!
//! * the **image** (`.ota` file): a fixed, fully signed [`ImageHeader`] followed by the
//!   payload (an ESP-IDF app image, optionally zstd-compressed);
//! * the **release manifest**: a small signed record per device type and channel that
//!   names the current image ([`Manifest`]);
//! * the **delta** (`.otad` file): a signed header, the target image's own header and a
//!   payload that decodes to the target image against the image a device runs
//!   ([`DeltaVerifier`]).
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
mod delta;
mod descriptor;
pub mod diff;
mod error;
pub mod esp;
mod image;
mod key;
mod manifest;
mod name;
mod policy;
mod signature;
mod verifier;
mod version;

pub use chip::ChipId;
pub use delta::{
    DELTA_DOMAIN, DELTA_FILE_SUFFIX, DELTA_FORMAT_VERSION, DELTA_HEADER_LEN, DELTA_MAGIC,
    DeltaEncoding, DeltaExpectations, DeltaHeader, DeltaInfo, DeltaVerifier, VerifiedDelta,
    delta_file_name, inspect_delta_header, verify_delta,
};
pub use descriptor::{
    DESCRIPTOR_LEN, DESCRIPTOR_MAGIC, DescriptorScanner, MAX_TRUSTED_KEYS, TrustedKeyDescriptor,
};
pub use error::{FieldError, FormatError, MismatchedField};
pub use image::{
    Compression, FLASH_WINDOW_MAX_BLOCK, FLASH_WINDOW_MAX_LOG, IMAGE_DOMAIN, IMAGE_FORMAT_VERSION,
    IMAGE_HEADER_LEN, IMAGE_MAGIC, ImageHeader, ImageInfo, MAX_HEADER_LEN, MAX_IMAGE_SIZE,
    MAX_PAYLOAD_SIZE, SigningMessage, inspect_header,
};
pub use key::{KeyId, TrustedKey, TrustedKeys};
pub use manifest::{
    FLAG_ALLOW_DOWNGRADE, FLAG_HAS_MIN_VERSION, FULL_ROLLOUT, MANIFEST_DOMAIN,
    MANIFEST_FORMAT_VERSION, MANIFEST_LEN, MANIFEST_MAGIC, MAX_MANIFEST_LEN, Manifest,
    ManifestSigningMessage, VerifiedManifest,
};
pub use name::{
    Channel, DeviceType, FileName, Identifier, ImageName, MAX_IMAGE_NAME_LEN, Name, NameRule,
};
pub use policy::{Decision, Device, ROLLOUT_DOMAIN, rollout_bucket};
pub use signature::SIGNATURE_LEN;
pub use verifier::{Expectations, ImageVerifier, VerifiedImage, verify_image};
pub use version::Version;
