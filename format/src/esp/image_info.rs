//! What validating an app image found: its segments, digests and descriptor.

use super::app_desc::{APP_DESC_LEN, AppDescriptor};
use super::error::AppImageError;
use super::header::{DIGEST_LEN, ImageHeader, MAX_SEGMENTS};
use super::secure_boot::SignatureSector;
use crate::chip::ChipId;

/// One segment as found in the image.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SegmentInfo {
    /// Load address from the segment header.
    pub load_addr: u32,
    /// Image offset of the segment's data (its header is the 8 bytes before).
    pub data_offset: u32,
    /// Data length.
    pub len: u32,
}

/// A valid app image, as reported by [`AppImageValidator::finish`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppImageInfo {
    /// The image header.
    pub header: ImageHeader,
    /// App image length: header, segments, padding, checksum and digest.
    pub len: u32,
    /// Length of what a device installs: `len`, or with a signature sector the end of
    /// that sector.
    pub installed_len: u32,
    /// The checksum byte (it matched the data).
    pub checksum: u8,
    /// The appended SHA-256 (it matched), `None` when the image has none.
    pub appended_digest: Option<[u8; DIGEST_LEN]>,
    /// SHA-256 of all `installed_len` bytes (with a signature sector: the image, its
    /// `0xFF` padding and the sector): what the signed `.ota` header binds as the
    /// installed image digest.
    pub image_sha256: [u8; 32],
    /// The Secure Boot V2 signature sector after the image, when there is one.
    pub signature_sector: Option<SignatureSector>,
    pub(super) segments: [SegmentInfo; MAX_SEGMENTS],
    pub(super) desc: [u8; APP_DESC_LEN],
    pub(super) desc_len: u16,
}

impl AppImageInfo {
    /// The chip the image is built for.
    pub fn chip(&self) -> ChipId {
        self.header.chip_id
    }

    /// The segments, in image order.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments[..self.header.segment_count as usize]
    }

    /// The app descriptor at the start of the first segment.
    pub fn app_descriptor(&self) -> Result<AppDescriptor, AppImageError> {
        if (self.desc_len as usize) < APP_DESC_LEN {
            return Err(AppImageError::AppDescriptorMissing);
        }
        AppDescriptor::parse(&self.desc)
    }
}
