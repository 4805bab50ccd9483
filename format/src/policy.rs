//! The device's decision on a verified manifest, made before downloading a byte of image
//! (RFC 9124's "pre-check").

use sha2::{Digest, Sha256};

use crate::chip::ChipId;
use crate::error::FormatError;
use crate::manifest::{FULL_ROLLOUT, VerifiedManifest};
use crate::name::{Channel, DeviceType};
use crate::version::Version;

/// Prefix of the rollout hash input.
pub const ROLLOUT_DOMAIN: &[u8] = b"ota-sign rollout v1\0";

/// What the device knows about itself when it decides.
#[derive(Clone, Copy, Debug)]
pub struct Device<'a> {
    /// The device's type.
    pub device_type: DeviceType,
    /// The device's chip.
    pub chip: ChipId,
    /// The channel the device follows.
    pub channel: Channel,
    /// The version it runs.
    pub running_version: Version,
    /// The highest security counter it has accepted.
    pub security_counter: u64,
    /// The highest manifest sequence it has accepted on this channel, if any.
    pub last_sequence: Option<u64>,
    /// A stable unique id (e.g. the MAC address), for the rollout bucket.
    pub device_id: &'a [u8],
    /// Current Unix time, if the device has a trustworthy clock.
    pub now: Option<u64>,
    /// Size of the update slot, in bytes.
    pub slot_size: u32,
}

/// What to do about a manifest that verified and passed every check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decision {
    /// The manifest names the version already running.
    UpToDate,
    /// A newer release exists but this device is outside its staged rollout for now.
    NotInRollout {
        /// This device's bucket for this image, 0..10000.
        bucket: u16,
        /// The rollout threshold, in basis points.
        rollout: u16,
    },
    /// Download and install the named image.
    Install,
}

/// The device's rollout bucket for one image: stable across checks and rollout changes
/// (so raising 5% -> 50% keeps the first 5%), different for each image (so the same
/// devices are not always first).
pub fn rollout_bucket(image_header_sha256: &[u8; 32], device_id: &[u8]) -> u16 {
    let digest = Sha256::new()
        .chain_update(ROLLOUT_DOMAIN)
        .chain_update(image_header_sha256)
        .chain_update(device_id)
        .finalize();
    let word = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (word % FULL_ROLLOUT as u32) as u16
}

impl VerifiedManifest {
    /// Decides whether `device` should install this release. Errors name the rule that
    /// forbids it; `Ok` says whether there is anything to do.
    pub fn decide(&self, device: &Device<'_>) -> Result<Decision, FormatError> {
        let m = self.manifest();
        if m.device_type != device.device_type {
            return Err(FormatError::WrongDeviceType);
        }
        if m.chip != device.chip {
            return Err(FormatError::WrongChip);
        }
        if m.channel != device.channel {
            return Err(FormatError::WrongChannel);
        }
        if let (Some(not_after), Some(now)) = (m.not_after, device.now)
            && now > not_after
        {
            return Err(FormatError::Expired);
        }
        if let Some(last) = device.last_sequence
            && m.sequence < last
        {
            return Err(FormatError::SequenceRollback);
        }
        if m.version == device.running_version {
            return Ok(Decision::UpToDate);
        }
        if m.security_counter < device.security_counter {
            return Err(FormatError::CounterRollback);
        }
        if m.version < device.running_version && !m.allow_downgrade {
            return Err(FormatError::Downgrade);
        }
        if let Some(min) = m.min_running_version
            && device.running_version < min
        {
            return Err(FormatError::BelowMinimumVersion);
        }
        if m.image_size > device.slot_size {
            return Err(FormatError::TooLarge);
        }
        let bucket = rollout_bucket(&m.image_header_sha256, device.device_id);
        if bucket >= m.rollout {
            return Ok(Decision::NotInRollout {
                bucket,
                rollout: m.rollout,
            });
        }
        Ok(Decision::Install)
    }
}
