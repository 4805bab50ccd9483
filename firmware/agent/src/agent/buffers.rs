//! The update path's memory: borrowed from the caller, never allocated by the agent.

use ota_format::MAX_MANIFEST_LEN;
use ota_zstd::DecoderConfig;

use super::config::MAX_URL_LEN;
use crate::zstd::FrameDecoder;

/// The update path's buffers, borrowed from wherever the caller keeps them (a `static`
/// on the device). This is all the RAM an update takes beyond the agent and its `check`
/// future, whatever the image size and the zstd window.
pub struct UpdateBuffers<'b> {
    /// The zstd decoder: its 4 KiB ring is the slot writer's sector buffer, its 8 KiB
    /// block buffer the read-back buffer once the payload is decoded.
    pub decoder: &'b mut FrameDecoder,
    /// Network receive buffer.
    pub recv: &'b mut [u8],
    /// The manifest.
    pub manifest: &'b mut [u8; MAX_MANIFEST_LEN],
    /// The image URL.
    pub url: &'b mut [u8],
}

/// Owned buffers for the update path: the same for every window (the decoder reads its
/// window back from flash).
pub struct UpdateMemory {
    decoder: FrameDecoder,
    recv: [u8; 1024],
    manifest: [u8; MAX_MANIFEST_LEN],
    url: [u8; MAX_URL_LEN],
}

/// The update path's buffers (one size fits every window since the decoder reads its
/// window from flash; the name stays for firmware written against it).
pub type DefaultUpdateMemory = UpdateMemory;

impl UpdateMemory {
    /// Zeroed buffers (`const`: a device keeps them in a `static`, never on its stack).
    pub const fn new() -> Self {
        UpdateMemory {
            decoder: FrameDecoder::new(DecoderConfig::DEFAULT),
            recv: [0; 1024],
            manifest: [0; MAX_MANIFEST_LEN],
            url: [0; MAX_URL_LEN],
        }
    }

    /// Lends the buffers to an agent.
    pub fn buffers(&mut self) -> UpdateBuffers<'_> {
        UpdateBuffers {
            decoder: &mut self.decoder,
            recv: &mut self.recv,
            manifest: &mut self.manifest,
            url: &mut self.url,
        }
    }
}

impl Default for UpdateMemory {
    fn default() -> Self {
        Self::new()
    }
}
