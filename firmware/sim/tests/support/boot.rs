//! Boot-logic fixtures: a formatted flash with marked test images and a device that
//! boots it with the simulated bootloader and runs the agent's boot logic, without
//! firmware images or a network.

use ota_agent::bootloader::BootloaderMode;
use ota_agent::{BootAttempt, BootConfig, BootError, BootState, BootTarget, Region};
use ota_device_sim::{LayoutSpec, SimBootloader, SimFlashError, WordFlash};

/// Test images start with this marker followed by a version byte. The real
/// ESP image validator replaces this once ota_format::esp lands.
pub const MARK: &[u8; 4] = b"TAPP";

pub fn write_image<const W: usize>(flash: &mut WordFlash<W>, region: Region, version: u8) {
    let mut img = [0u8; 8];
    img[..4].copy_from_slice(MARK);
    img[4] = version;
    flash.flash_image(region.offset, &img);
}

pub fn image_version<const W: usize>(flash: &WordFlash<W>, region: Region) -> Option<u8> {
    let b = &flash.bytes()[region.offset as usize..region.offset as usize + 8];
    (&b[..4] == MARK).then_some(b[4])
}

pub fn validator<const W: usize>() -> impl FnMut(&mut WordFlash<W>, BootTarget, Region) -> bool {
    |flash: &mut WordFlash<W>, _t, region| image_version(flash, region).is_some()
}

pub fn config(mode: BootloaderMode, max: u8) -> BootConfig {
    match mode {
        BootloaderMode::RollbackEnabled => BootConfig::rollback_bootloader(max),
        BootloaderMode::RollbackDisabled => BootConfig::counting(max),
    }
}

/// A simulated device: flash (in `W`-byte write words) + bootloader build + agent config.
#[derive(Clone, Debug)]
pub struct Device<const W: usize = 4> {
    pub flash: WordFlash<W>,
    pub mode: BootloaderMode,
    pub config: BootConfig,
}

impl Device {
    pub fn new(spec: LayoutSpec, mode: BootloaderMode, max: u8) -> Self {
        Self {
            flash: spec.format().expect("layout"),
            mode,
            config: config(mode, max),
        }
    }

    /// The same device over flash written in `W`-byte words.
    pub fn into_geometry<const W: usize>(self) -> Device<W> {
        Device {
            flash: self.flash.into_geometry(),
            mode: self.mode,
            config: self.config,
        }
    }

    /// A device with these `(slot, version)` images flashed, booted once: it must start
    /// the first of them.
    #[track_caller]
    pub fn flashed(spec: LayoutSpec, mode: BootloaderMode, images: &[(BootTarget, u8)]) -> Self {
        let mut d = Self::new(spec, mode, 3);
        for &(slot, version) in images {
            d.put_image(slot, version);
        }
        assert_eq!(d.boot().unwrap(), images.first().map(|&(slot, _)| slot));
        d
    }
}

impl<const W: usize> Device<W> {
    pub fn region(&mut self, t: BootTarget) -> Region {
        ota_device_sim::Layout::read(&mut self.flash)
            .unwrap()
            .geometry
            .region(t)
            .unwrap()
    }

    pub fn put_image(&mut self, t: BootTarget, version: u8) {
        let r = self.region(t);
        write_image(&mut self.flash, r, version);
    }

    /// Power on: the bootloader picks and starts an app. `Ok(None)` = nothing
    /// bootable.
    pub fn boot(&mut self) -> Result<Option<BootTarget>, SimFlashError> {
        match SimBootloader::new(self.mode).boot(&mut self.flash, &mut validator()) {
            Ok(report) => Ok(report.booted),
            Err(ota_device_sim::SimBootError::Flash(e)) => Err(e),
            Err(e) => panic!("bootloader: {e}"),
        }
    }

    /// The app's view after booting `running`.
    pub fn state(&mut self, running: BootTarget) -> Result<BootState, BootError<SimFlashError>> {
        let g = ota_device_sim::Layout::read(&mut self.flash)
            .unwrap()
            .geometry;
        BootState::read_running(&mut self.flash, &g, self.config, running)
    }

    /// Boot, then run the agent's per-boot step.
    pub fn boot_and_record(&mut self) -> Result<(BootTarget, BootAttempt, BootState), String> {
        let running = self
            .boot()
            .map_err(|e| e.to_string())?
            .ok_or("nothing bootable")?;
        let mut st = self.state(running).map_err(|e| e.to_string())?;
        let a = st
            .record_boot_attempt(&mut self.flash, validator())
            .map_err(|e| e.to_string())?;
        Ok((running, a, st))
    }

    /// [`Device::boot_and_record`] that must succeed: which slot ran and what the agent
    /// recorded.
    #[track_caller]
    pub fn next_boot(&mut self) -> (BootTarget, BootAttempt) {
        let (running, attempt, _) = self.boot_and_record().unwrap();
        (running, attempt)
    }

    /// Power cut: the flash comes back with whatever the cut left.
    pub fn power_cycle(&mut self) {
        self.flash.power_cycle();
    }
}
