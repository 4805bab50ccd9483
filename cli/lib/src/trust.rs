//! Trust checks: a signed image checked completely, as a device of its type would check
//! it, and firmware checked for trusting a key its publisher holds (the lock-out rule).

use ota_agent::contents::CheckedPayload;
use ota_agent::install::InstallError;
use ota_format::{
    Expectations, FormatError, ImageHeader, KeyId, TrustedKeyDescriptor, TrustedKeys,
    VerifiedImage, verify_image,
};

use crate::devices::{FleetSettings, declared_window_log};

/// Why a signed image is refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageRejection {
    /// The signature, a digest, the structure or a policy rule of the signed header.
    #[error("{error}")]
    Format {
        /// The violated rule.
        error: FormatError,
        /// The key id the header names as its signer, when the header can be read.
        signer: Option<KeyId>,
    },
    /// The image verifies, but its payload breaks a rule devices apply after the
    /// signature (checked with the agent's own code).
    #[error("devices refuse it: {error}")]
    NotInstallable {
        /// The rule the payload breaks.
        error: InstallError,
        /// The zstd window log the signed header declares (`None`: stored payload).
        declared_window_log: Option<u8>,
        /// The window log devices of the image's type accept.
        max_window_log: u8,
    },
}

/// Verifies an image completely, as a device of its type would: signature, payload
/// digest, then the payload through the agent's own decoder and install rules (zstd
/// frames within the window the device type accepts, decompressed length, installed
/// digest, ESP-IDF app image for the header's chip, app version, trusted keys). Returns
/// the verified header and the app image a device would install.
pub fn check_image(
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    expect: Expectations<'_>,
    limits: &FleetSettings,
) -> Result<(VerifiedImage, Vec<u8>), ImageRejection> {
    let verified = verify_image(bytes, keys, expect).map_err(|error| ImageRejection::Format {
        error,
        signer: ota_format::inspect_header(bytes)
            .ok()
            .map(|(info, _)| info.key_id),
    })?;
    let max_window_log = limits.max_window_log(verified.header.info.device_type.as_str());
    let checked = installable(bytes, &verified.header, max_window_log).map_err(|error| {
        ImageRejection::NotInstallable {
            error,
            declared_window_log: declared_window_log(verified.header.info.compression),
            max_window_log,
        }
    })?;
    Ok((verified, checked.app_image))
}

/// Runs the agent's post-signature rules on the payload of a verified image for devices
/// that accept windows up to `2^max_window_log` bytes.
pub fn installable(
    bytes: &[u8],
    header: &ImageHeader,
    max_window_log: u8,
) -> Result<CheckedPayload, InstallError> {
    check_payload(header, &bytes[header.header_len()..], max_window_log)
}

/// Runs the agent's post-signature rules on `payload`, the payload of the verified
/// `header`, for devices whose method-1 window is at most `2^max_window_log` bytes.
pub fn check_payload(
    header: &ImageHeader,
    payload: &[u8],
    max_window_log: u8,
) -> Result<CheckedPayload, InstallError> {
    ota_agent::contents::check_payload(header, payload, header.info.chip, max_window_log)
}

/// Whether firmware that trusts none of the keys its publisher holds may be packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockoutPolicy {
    /// Refuse it: devices running it could never be updated by this publisher again.
    Refuse,
    /// Package it anyway (a deliberate hand-over to whoever holds the keys it trusts).
    Allow,
}

/// Firmware that would lock its publisher out of later updates.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lockout {
    /// The firmware embeds no trusted-key descriptor.
    #[error(
        "the firmware carries no trusted-key descriptor: devices running it would accept no update ever again"
    )]
    NoDescriptor,
    /// The firmware trusts keys, none of them held.
    #[error(
        "the firmware trusts keys [{}] but you hold [{}]: devices running it would refuse every later update you sign",
        list(trusted),
        list(held)
    )]
    NoHeldKey {
        /// The keys the firmware trusts, each once.
        trusted: Vec<KeyId>,
        /// The keys held, each once.
        held: Vec<KeyId>,
    },
}

fn list(ids: &[KeyId]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that firmware with `descriptor` trusts one of the `held` keys. `Ok(None)`: it
/// does; `Ok(Some(lockout))`: it does not but `policy` allows it (tell the user);
/// `Err(lockout)`: refused.
pub fn check_lockout(
    descriptor: Option<&TrustedKeyDescriptor>,
    held: impl IntoIterator<Item = KeyId>,
    policy: LockoutPolicy,
) -> Result<Option<Lockout>, Lockout> {
    let mut held_ids: Vec<KeyId> = Vec::new();
    for id in held {
        push_once(&mut held_ids, id);
    }
    let mut trusted: Vec<KeyId> = Vec::new();
    for k in descriptor.map(|d| d.keys()).unwrap_or_default() {
        push_once(&mut trusted, k.id());
    }
    if trusted.iter().any(|id| held_ids.contains(id)) {
        return Ok(None);
    }
    let lockout = match descriptor {
        None => Lockout::NoDescriptor,
        Some(_) => Lockout::NoHeldKey {
            trusted,
            held: held_ids,
        },
    };
    match policy {
        LockoutPolicy::Allow => Ok(Some(lockout)),
        LockoutPolicy::Refuse => Err(lockout),
    }
}

/// Appends `id` unless it is already listed (messages name each key once).
fn push_once(ids: &mut Vec<KeyId>, id: KeyId) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
