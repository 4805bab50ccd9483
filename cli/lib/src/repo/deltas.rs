//! The deltas `release` lays beside a new image: one from each of the channel's last
//! releases (its current image first, then the device type's other images in the tree,
//! newest first), so devices running any of them download a few percent of the image.
//! A delta that would not save at least a tenth of the full image is left out, as is
//! one from a base that no longer verifies or is for another chip.

use ota_format::{ImageHeader, Manifest, TrustedKeys, inspect_header};
use ota_keys::SigningKeySource;
use serde::Serialize;

use super::{FileKind, ReleaseTree, RepoError};
use crate::delta::{self, DeltaSide};
use crate::devices::FleetSettings;
use crate::trust::check_image;

/// How many releases back `release` makes deltas from, unless configured.
pub const DEFAULT_DELTAS: u32 = 3;

/// A delta is kept only when it is below this share of the full image, in percent.
pub const WORTH_PERCENT: u64 = 90;

/// One delta `release` writes (or found already written) beside the new image.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeltaOutcome {
    /// File name in the tree.
    pub name: String,
    /// Version of the base image.
    pub from_version: String,
    /// Delta size in bytes.
    pub size: u64,
    /// Size of the full image it stands in for.
    pub full_size: u64,
    /// Its payload encoding (`difference` or `patch-from`; empty when already in the
    /// tree: not read again).
    pub encoding: String,
    /// Whether this run makes it (false: already in the tree).
    pub added: bool,
}

/// The deltas for one new image, and why others were left out.
#[derive(Default)]
pub struct DeltaPlan {
    /// Each delta with its bytes (empty when already in the tree).
    pub deltas: Vec<(DeltaOutcome, Vec<u8>)>,
    /// One line per base left out.
    pub notes: Vec<String>,
}

/// The new image, verified.
pub struct Target<'a> {
    /// Its file name in the tree.
    pub name: &'a str,
    /// The verified header.
    pub header: &'a ImageHeader,
    /// The `.ota` bytes.
    pub ota: &'a [u8],
    /// The installed image.
    pub installed: &'a [u8],
}

/// Makes the deltas from up to `count` earlier releases to `target`, signed by
/// `signer`; `keys` (and `trusted`, the same keys raw) verify the bases and the target.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument distinct"
)]
pub fn plan(
    tree: &ReleaseTree,
    signer: &dyn SigningKeySource,
    keys: TrustedKeys<'_>,
    trusted: &[[u8; 32]],
    devices: &FleetSettings,
    count: u32,
    encoding: Option<delta::EncodingChoice>,
    target: &Target<'_>,
    current: Option<&Manifest>,
) -> Result<DeltaPlan, RepoError> {
    let mut plan = DeltaPlan::default();
    let info = &target.header.info;
    if count == 0 {
        return Ok(plan);
    }
    // Deltas whatever the device type's `agent_generation`: it names the oldest agent in
    // the fleet, and generation-1 agents never ask for a delta, so a mixed fleet's newer
    // agents save the bytes while the old ones keep installing the full image.
    for base_name in bases(tree, target, current, count as usize)? {
        let Some(base_ota) = tree.read(&base_name)? else {
            continue;
        };
        let Ok((base_info, _)) = inspect_header(&base_ota) else {
            plan.notes
                .push(format!("no delta from {base_name}: not a readable image"));
            continue;
        };
        if base_info.chip != info.chip {
            plan.notes.push(format!(
                "no delta from {base_name}: it is for chip {}, the new image for {}",
                base_info.chip, info.chip
            ));
            continue;
        }
        let Some(name) = delta::delta_name(target.name, &base_info.image_sha256) else {
            plan.notes.push(format!(
                "no delta from {base_name}: `{}.<16 hex>.otad` would be longer than the {} \
                 characters a file name may have, so devices fetch the full image",
                target.name,
                ota_format::MAX_IMAGE_NAME_LEN
            ));
            break;
        };
        if let Some(existing) = tree.read(&name)? {
            plan.deltas.push((
                DeltaOutcome {
                    name,
                    from_version: base_info.version.to_string(),
                    size: existing.len() as u64,
                    full_size: target.ota.len() as u64,
                    encoding: String::new(),
                    added: false,
                },
                Vec::new(),
            ));
            continue;
        }
        let (base_verified, base_installed) = match check_image(
            &base_ota,
            keys,
            Default::default(),
            devices,
        ) {
            Ok(checked) => checked,
            Err(e) => {
                plan.notes.push(format!(
                        "no delta from {base_name}: it does not verify ({e}); pass --trust with the key that signed it"
                    ));
                continue;
            }
        };
        let choice = encoding
            .or(devices
                .for_device_type(info.device_type.as_str())
                .delta_encoding)
            .unwrap_or_default();
        let made = delta::make_with(
            DeltaSide {
                header: &base_verified.header,
                ota: &base_ota,
                installed: &base_installed,
            },
            DeltaSide {
                header: target.header,
                ota: target.ota,
                installed: target.installed,
            },
            signer,
            trusted,
            choice,
        )
        .map_err(|source| RepoError::Delta {
            name: name.clone(),
            source,
        })?;
        let (size, full) = (made.bytes.len() as u64, target.ota.len() as u64);
        if size * 100 >= full * WORTH_PERCENT {
            plan.notes.push(format!(
                "no delta from {base_name}: {size} bytes would not save a tenth of the full image's {full}"
            ));
            continue;
        }
        plan.deltas.push((
            DeltaOutcome {
                name,
                from_version: base_info.version.to_string(),
                size,
                full_size: full,
                encoding: delta::encoding_name(made.info.encoding).to_owned(),
                added: true,
            },
            made.bytes,
        ));
    }
    Ok(plan)
}

/// Up to `count` image names to make deltas from: the channel's current image, then the
/// device type's other images in the tree, newest (by signed creation time) first.
fn bases(
    tree: &ReleaseTree,
    target: &Target<'_>,
    current: Option<&Manifest>,
    count: usize,
) -> Result<Vec<String>, RepoError> {
    let mut out: Vec<String> = Vec::new();
    if let Some(m) = current
        && m.image_name.as_str() != target.name
    {
        out.push(m.image_name.to_string());
    }
    let mut others = Vec::new();
    // Image names start with their device type (`names::image_name`): only those are
    // read, and their headers say for sure (`lamp-` also starts `lamp-v2-` images).
    let prefix = format!("{}-", target.header.info.device_type);
    for (name, kind) in tree.files()? {
        if kind != FileKind::Image
            || !name.starts_with(&prefix)
            || name == target.name
            || out.contains(&name)
        {
            continue;
        }
        let Some(bytes) = tree.read(&name)? else {
            continue;
        };
        if let Ok((info, _)) = inspect_header(&bytes)
            && info.device_type == target.header.info.device_type
        {
            others.push((info.created, info.version, name));
        }
    }
    others.sort_by_key(|o| std::cmp::Reverse((o.0, o.1)));
    out.extend(others.into_iter().map(|(_, _, name)| name));
    out.truncate(count);
    Ok(out)
}
