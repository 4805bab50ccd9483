//! What the agent is told: about the device, and about the firmware it runs.

use ota_format::{Channel, ChipId, DeviceType, TrustedKey, Version};

use crate::boot::BootConfig;
use crate::download::RetryPolicy;
use crate::geometry::{BootTarget, Geometry, Region};
use crate::identity::Identify;

pub use crate::install::Generation;
pub use crate::zstd::{DEFAULT_WINDOW_LOG, MAX_WINDOW_LOG};
/// Longest image URL the agent builds.
pub const MAX_URL_LEN: usize = 512;

/// What the running firmware knows about itself, from its own descriptors.
#[derive(Clone, Copy, Debug)]
pub struct Firmware<'a> {
    /// Device type this firmware is built for.
    pub device_type: DeviceType,
    /// Chip this firmware is built for.
    pub chip: ChipId,
    /// Version from its app descriptor.
    pub version: Version,
    /// Keys from its trusted-key descriptor.
    pub trusted_keys: &'a [TrustedKey],
    /// The partition it runs from (told by the bootloader / the MMU mapping).
    pub running: BootTarget,
}

/// Device configuration.
#[derive(Clone, Copy, Debug)]
pub struct AgentConfig<'a> {
    /// The manifest URL as configured (images are resolved against it, not against
    /// where redirects lead).
    pub manifest_url: &'a str,
    /// A stable unique id (MAC address), for the rollout bucket and backoff jitter.
    pub device_id: &'a [u8],
    /// The channel the device follows.
    pub channel: Channel,
    /// otadata and app slots.
    pub geometry: Geometry,
    /// Two erase-aligned halves for [`crate::state`].
    pub state_region: Region,
    /// Bootloader mode and trial-boot limit.
    pub boot: BootConfig,
    /// Download retries and timeouts.
    pub retry: RetryPolicy,
    /// Largest method-1 zstd window log accepted (at most [`MAX_WINDOW_LOG`]; the
    /// shipped firmware's [`DEFAULT_WINDOW_LOG`]). Method 2 windows are not limited by it
    /// (see [`crate::zstd`]); the RAM is the same for every window.
    pub max_window_log: u8,
    /// Which agent this one behaves as: [`Generation::Two`] (this one) or
    /// [`Generation::One`] (agents in the field before issue 13, for mixed-fleet tests).
    pub generation: Generation,
    /// Lowest security counter this firmware accepts, whatever the state says.
    pub security_counter_floor: u64,
    /// What the device says about itself in every request's `User-Agent`
    /// ([`crate::identity`]).
    pub identify: Identify,
}
