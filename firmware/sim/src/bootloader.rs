//! The stock ESP-IDF second-stage bootloader, run over a simulated flash
//! ([`WordFlash`]):
//! partition table, otadata rules (from `ota_agent::bootloader`, in either
//! app-rollback mode), then image validation in ESP-IDF's fallback order.
//!
//! App image checks (magic, chip id, checksum, SHA-256) come from the format
//! crate's ESP image module; until it is wired in, callers pass any
//! [`ImageValidator`].

use ota_agent::bootloader::{self, BootloaderMode, Selection};
use ota_agent::{BootTarget, Region};

use crate::layout::{Layout, LayoutError};
use crate::simflash::{SimFlashError, WordFlash};

/// Decides whether the app image in a partition would load.
pub trait ImageValidator<const WRITE_SIZE: usize = 4> {
    /// `true` if the bootloader can start the image at `region`.
    fn is_bootable(
        &mut self,
        flash: &mut WordFlash<WRITE_SIZE>,
        target: BootTarget,
        region: Region,
    ) -> bool;
}

impl<const WRITE_SIZE: usize, T> ImageValidator<WRITE_SIZE> for T
where
    T: FnMut(&mut WordFlash<WRITE_SIZE>, BootTarget, Region) -> bool,
{
    fn is_bootable(
        &mut self,
        flash: &mut WordFlash<WRITE_SIZE>,
        target: BootTarget,
        region: Region,
    ) -> bool {
        self(flash, target, region)
    }
}

/// Why the simulated bootloader stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimBootError {
    /// No usable partition table (the real bootloader resets forever).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A flash operation failed (in particular a power cut while the
    /// bootloader rewrote otadata).
    #[error("flash: {0}")]
    Flash(#[from] SimFlashError),
}

/// What one boot did.
#[derive(Clone, Debug)]
pub struct BootReport {
    /// The partition table read.
    pub layout: Layout,
    /// The otadata decision.
    pub selection: Selection,
    /// The partition started, `None` if nothing would load (the real
    /// bootloader resets in a loop).
    pub booted: Option<BootTarget>,
}

impl BootReport {
    /// The region of the app that was started.
    pub fn booted_region(&self) -> Option<Region> {
        self.booted.and_then(|t| self.layout.geometry.region(t))
    }
}

/// A simulated ESP-IDF bootloader build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimBootloader {
    /// Whether it was built with app rollback.
    pub mode: BootloaderMode,
}

impl SimBootloader {
    /// A bootloader of the given build.
    pub const fn new(mode: BootloaderMode) -> Self {
        Self { mode }
    }

    /// One power-on: read the table, select from otadata (writing it as the
    /// real bootloader does), and start the first partition, in ESP-IDF's
    /// order, that `validator` accepts.
    pub fn boot<const WRITE_SIZE: usize, V: ImageValidator<WRITE_SIZE>>(
        &self,
        flash: &mut WordFlash<WRITE_SIZE>,
        validator: &mut V,
    ) -> Result<BootReport, SimBootError> {
        let layout = Layout::read(flash)?;
        let geometry = layout.geometry;
        let selection = bootloader::select(flash, &geometry, self.mode)?;
        let mut booted = None;
        for target in bootloader::boot_order(selection.start, &geometry) {
            let Some(region) = geometry.region(target) else {
                continue;
            };
            if validator.is_bootable(flash, target, region) {
                bootloader::record_initial_boot(flash, &geometry, &selection, target)?;
                booted = Some(target);
                break;
            }
        }
        Ok(BootReport {
            layout,
            selection,
            booted,
        })
    }
}
