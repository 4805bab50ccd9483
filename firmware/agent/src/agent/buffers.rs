//! The update path's memory: borrowed from the caller, never allocated by the agent.

use ota_format::MAX_MANIFEST_LEN;

use super::config::{DEFAULT_WINDOW_LOG, MAX_URL_LEN, MAX_WINDOW_LOG};
use crate::zstd::staging_len;

/// The update path's buffers, borrowed from wherever the caller keeps them (a `static`
/// on the device). With the decoder's window, this is all the RAM an update takes,
/// whatever the image size.
pub struct UpdateBuffers<'b> {
    /// Compressed input staging: at least [`staging_len`] of the window log accepted.
    pub staging: &'b mut [u8],
    /// Decompressor output.
    pub output: &'b mut [u8],
    /// Flash write (and read-back) buffer, a multiple of the flash write size.
    pub write: &'b mut [u8],
    /// Network receive buffer.
    pub recv: &'b mut [u8],
    /// The manifest.
    pub manifest: &'b mut [u8; MAX_MANIFEST_LEN],
    /// The image URL.
    pub url: &'b mut [u8],
}

/// Owned buffers for a window of up to `2^WINDOW_LOG` bytes; `STAGING` must be
/// `staging_len(WINDOW_LOG)`, see [`DefaultUpdateMemory`].
pub struct UpdateMemory<const STAGING: usize> {
    staging: [u8; STAGING],
    output: [u8; 1024],
    write: [u8; 1024],
    recv: [u8; 1024],
    manifest: [u8; MAX_MANIFEST_LEN],
    url: [u8; MAX_URL_LEN],
}

/// Buffers for [`DEFAULT_WINDOW_LOG`].
pub type DefaultUpdateMemory = UpdateMemory<{ staging_len(DEFAULT_WINDOW_LOG) }>;
/// Buffers for [`MAX_WINDOW_LOG`].
pub type LargeUpdateMemory = UpdateMemory<{ staging_len(MAX_WINDOW_LOG) }>;

impl<const STAGING: usize> UpdateMemory<STAGING> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        UpdateMemory {
            staging: [0; STAGING],
            output: [0; 1024],
            write: [0; 1024],
            recv: [0; 1024],
            manifest: [0; MAX_MANIFEST_LEN],
            url: [0; MAX_URL_LEN],
        }
    }

    /// Lends the buffers to an agent.
    pub fn buffers(&mut self) -> UpdateBuffers<'_> {
        UpdateBuffers {
            staging: &mut self.staging,
            output: &mut self.output,
            write: &mut self.write,
            recv: &mut self.recv,
            manifest: &mut self.manifest,
            url: &mut self.url,
        }
    }
}

impl<const STAGING: usize> Default for UpdateMemory<STAGING> {
    fn default() -> Self {
        Self::new()
    }
}
