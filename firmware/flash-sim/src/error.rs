//! What the simulated flash refuses, and the simulated power loss.

use embedded_storage::nor_flash::{NorFlashError, NorFlashErrorKind};

/// A NOR-rule violation or a simulated power loss. A refused call changes nothing and
/// is not counted as an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimFlashError {
    /// Offset or length not a multiple of the erase or write unit.
    #[error("{op} at {offset:#x} len {len:#x} is not aligned")]
    NotAligned {
        /// `"erase"` or `"write"`.
        op: &'static str,
        /// Start offset.
        offset: u32,
        /// Length.
        len: usize,
    },
    /// Range past the end of the flash (or `to < from`).
    #[error("{op} at {offset:#x} len {len:#x} is out of bounds")]
    OutOfBounds {
        /// `"read"`, `"erase"` or `"write"`.
        op: &'static str,
        /// Start offset.
        offset: u32,
        /// Length.
        len: usize,
    },
    /// A write would turn a 0 bit into a 1 without an erase.
    #[error(
        "write would set bits at {offset:#x} (held {held:#04x}, wrote {wrote:#04x}); erase first"
    )]
    WriteOverZero {
        /// The first offending byte.
        offset: u32,
        /// What flash held there.
        held: u8,
        /// What the write asked for.
        wrote: u8,
    },
    /// A write to a programmed byte outside the region where re-programming is allowed
    /// (see [`crate::SimNorFlash::require_erase_outside`]): legal on NOR, but a sign of a
    /// missing erase even when the same data is written again.
    #[error("write at {offset:#x} over a programmed byte ({held:#04x}); erase first")]
    NotErased {
        /// The first offending byte.
        offset: u32,
        /// What flash held there.
        held: u8,
    },
    /// The simulated power failed during this or an earlier operation.
    #[error("power lost")]
    PowerLost,
}

impl NorFlashError for SimFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned { .. } => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds { .. } => NorFlashErrorKind::OutOfBounds,
            Self::WriteOverZero { .. } | Self::NotErased { .. } | Self::PowerLost => {
                NorFlashErrorKind::Other
            }
        }
    }
}
