//! The device and buffers the install and download unit tests share.
//! (`test_support` is also compiled into `tests/ram.rs`, outside the crate, so these
//! crate-internal pieces live here.)

extern crate std;

use std::vec;
use std::vec::Vec;

use crate::geometry::Region;
use crate::install::{InstallBuffers, Target};
use crate::test_support::{chip, device_type};

/// The update slot the install and download tests write.
pub const SLOT: Region = Region::new(0x10000, 0x30000);

const MAX_WINDOW_LOG: u8 = 14;

/// The matching device: takes zstd windows up to 2^14.
pub fn target() -> Target {
    Target {
        slot: SLOT,
        device_type: device_type(),
        chip: chip(),
        max_window_log: MAX_WINDOW_LOG,
    }
}

/// Owned buffers for an install into [`target`]: the smallest staging its window takes
/// (not a power of two), and output and write buffers smaller than a zstd block.
pub struct Buffers {
    staging: Vec<u8>,
    output: [u8; 512],
    write: [u8; 256],
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            staging: vec![0u8; crate::zstd::staging_len(MAX_WINDOW_LOG)],
            output: [0u8; 512],
            write: [0u8; 256],
        }
    }
}

impl Buffers {
    pub fn install(&mut self) -> InstallBuffers<'_> {
        InstallBuffers {
            staging: &mut self.staging,
            output: &mut self.output,
            write: &mut self.write,
        }
    }
}
