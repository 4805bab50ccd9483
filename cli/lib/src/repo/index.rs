//! `index.json` and `SHA256SUMS`: derived from signed files, for people and scripts.
//! Devices never read them; nothing here is trusted or signed. `release` writes them for
//! the tree; `publish` builds them again for everything the host serves
//! ([`crate::publish::inventory`]) from the same entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{FileKind, ReleaseTree, RepoError};
use ota_format::{FULL_ROLLOUT, FormatError, Manifest, inspect_header};

/// One channel head as `index.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelEntry {
    /// Device type.
    pub device_type: String,
    /// Channel.
    pub channel: String,
    /// Manifest file name.
    pub manifest: String,
    /// Manifest sequence number.
    pub sequence: u64,
    /// Firmware version.
    pub version: String,
    /// Security counter.
    pub security_counter: u64,
    /// Chip name (or number when unknown).
    pub chip: String,
    /// Rollout in percent.
    pub rollout_percent: f64,
    /// Signing time, RFC 3339.
    pub signed: String,
    /// Expiry, RFC 3339, if any.
    pub expires: Option<String>,
    /// Whether devices may install it over a newer version.
    pub allow_downgrade: bool,
    /// Image file name.
    pub image: String,
    /// Image file size.
    pub image_file_size: u32,
    /// Installed image size.
    pub installed_size: u32,
    /// SHA-256 of the image's signed header (what the manifest binds), hex.
    pub image_header_sha256: String,
    /// Signing key id.
    pub key_id: String,
}

/// One image as `index.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageEntry {
    /// File name.
    pub name: String,
    /// Device type.
    pub device_type: String,
    /// Firmware version.
    pub version: String,
    /// Security counter.
    pub security_counter: u64,
    /// File size.
    pub size: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// Build time from the header, RFC 3339.
    pub created: String,
}

/// One delta as `index.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeltaEntry {
    /// File name.
    pub name: String,
    /// The image it installs (the file name it sits beside).
    pub image: String,
    /// Device type.
    pub device_type: String,
    /// SHA-256 of the installed base image it applies to, hex.
    pub base_sha256: String,
    /// File size.
    pub size: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
}

/// The whole of `index.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Index {
    /// Layout version of this file.
    pub format: u32,
    /// Channel heads, sorted by manifest name.
    pub channels: Vec<ChannelEntry>,
    /// Images, sorted by name.
    pub images: Vec<ImageEntry>,
    /// Deltas, sorted by name; absent from trees without any (as before deltas existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<DeltaEntry>,
}

fn rfc3339(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn chip_name(chip: ota_format::ChipId) -> String {
    chip.name()
        .map(str::to_owned)
        .unwrap_or_else(|| chip.0.to_string())
}

/// The entry of the manifest `name`.
pub fn channel_entry(name: &str, m: &Manifest) -> ChannelEntry {
    ChannelEntry {
        device_type: m.device_type.to_string(),
        channel: m.channel.to_string(),
        manifest: name.to_owned(),
        sequence: m.sequence,
        version: m.version.to_string(),
        security_counter: m.security_counter,
        chip: chip_name(m.chip),
        rollout_percent: f64::from(m.rollout) * 100.0 / f64::from(FULL_ROLLOUT),
        signed: rfc3339(m.created),
        expires: m.not_after.map(rfc3339),
        allow_downgrade: m.allow_downgrade,
        image: m.image_name.to_string(),
        image_file_size: m.image_file_size,
        installed_size: m.image_size,
        image_header_sha256: hex::encode(m.image_header_sha256),
        key_id: m.key_id.to_string(),
    }
}

/// The entry of the image file `name` holding `bytes`.
pub fn image_entry(name: &str, bytes: &[u8]) -> Result<ImageEntry, FormatError> {
    let (info, _) = inspect_header(bytes)?;
    Ok(ImageEntry {
        name: name.to_owned(),
        device_type: info.device_type.to_string(),
        version: info.version.to_string(),
        security_counter: info.security_counter,
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        created: rfc3339(info.created),
    })
}

/// The entry of the delta file `name` holding `bytes`.
pub fn delta_entry(name: &str, bytes: &[u8]) -> Result<DeltaEntry, FormatError> {
    let (info, _) = ota_format::inspect_delta_header(bytes)?;
    Ok(DeltaEntry {
        name: name.to_owned(),
        image: crate::delta::delta_target(name)
            .unwrap_or_default()
            .to_owned(),
        device_type: info.device_type.to_string(),
        base_sha256: hex::encode(info.base_sha256),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

/// Builds the index from the tree's manifests and images. Deterministic: the same tree
/// gives the same bytes, so an unchanged release publishes nothing.
pub fn build(tree: &ReleaseTree) -> Result<Index, RepoError> {
    let mut channels = Vec::new();
    for (name, (m, _)) in tree.manifests()? {
        channels.push(channel_entry(&name, &m));
    }
    let mut images = Vec::new();
    let mut deltas = Vec::new();
    for (name, kind) in tree.files()? {
        let bad = |source| RepoError::BadImage {
            path: tree.path(&name),
            source,
        };
        match kind {
            FileKind::Image => {
                let bytes = tree.read(&name)?.unwrap_or_default();
                images.push(image_entry(&name, &bytes).map_err(bad)?);
            }
            FileKind::Delta => {
                let bytes = tree.read(&name)?.unwrap_or_default();
                deltas.push(delta_entry(&name, &bytes).map_err(bad)?);
            }
            FileKind::Manifest { .. } | FileKind::Info => {}
        }
    }
    Ok(Index {
        format: 1,
        channels,
        images,
        deltas,
    })
}

/// `index.json`'s bytes.
pub fn render_index(index: &Index) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(index).expect("index serializes");
    json.push(b'\n');
    json
}

/// `sha256sum`-compatible lines (`<hex>  <name>`), sorted by name.
pub fn render_sums(digests: &BTreeMap<String, [u8; 32]>) -> String {
    let mut out = String::new();
    for (name, digest) in digests {
        out.push_str(&hex::encode(digest));
        out.push_str("  ");
        out.push_str(name);
        out.push('\n');
    }
    out
}

/// `SHA256SUMS` for every manifest, image and `index.json` in the tree.
pub fn sha256sums(tree: &ReleaseTree) -> Result<String, RepoError> {
    let mut digests = BTreeMap::new();
    for (name, _) in tree.files()? {
        if name == super::names::SHA256SUMS {
            continue;
        }
        let bytes = tree.read(&name)?.unwrap_or_default();
        digests.insert(name, Sha256::digest(&bytes).into());
    }
    Ok(render_sums(&digests))
}

/// Rewrites `index.json` and then `SHA256SUMS` (which covers the new index).
pub fn write(tree: &ReleaseTree) -> Result<(), RepoError> {
    let json = render_index(&build(tree)?);
    let path = tree.path(super::names::INDEX_JSON);
    super::atomic::write_replace(&path, &json).map_err(super::io_err(&path))?;
    let sums = sha256sums(tree)?;
    let path = tree.path(super::names::SHA256SUMS);
    super::atomic::write_replace(&path, sums.as_bytes()).map_err(super::io_err(&path))
}
