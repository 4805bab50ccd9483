//! The releases a release tree (`ota-sign release`'s output) holds: each channel's head
//! from its manifest (version, staged rollout), and every image's version. The manifests
//! are read, not verified: the report only counts devices, it trusts nothing.

use std::fs;
use std::path::Path;

use ota_format::Manifest;

use super::FleetError;
use super::record::image_version;
use super::report::KnownRelease;

/// The releases in `dir`.
pub fn releases(dir: &Path) -> Result<Vec<KnownRelease>, FleetError> {
    let read_error = |what: &Path, source| FleetError::Read {
        what: what.display().to_string(),
        source,
    };
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| read_error(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut releases = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(".manifest")) {
        let path = dir.join(name);
        let bytes = fs::read(&path).map_err(|e| read_error(&path, e))?;
        // A file that is not a manifest is not part of the tree (publish skips it too).
        let Ok(m) = Manifest::inspect(&bytes) else {
            continue;
        };
        releases.push(KnownRelease {
            device_type: m.device_type.to_string(),
            version: m.version.to_string(),
            channel: Some(m.channel.to_string()),
            rollout: Some(m.rollout),
        });
    }
    let types: Vec<String> = releases.iter().map(|r| r.device_type.clone()).collect();
    for name in names.iter().filter(|n| n.ends_with(".ota")) {
        for device_type in &types {
            let Some(version) = image_version(name, device_type) else {
                continue;
            };
            let known = releases
                .iter()
                .any(|r| r.device_type == *device_type && r.version == version);
            if !known {
                releases.push(KnownRelease {
                    device_type: device_type.clone(),
                    version: version.to_owned(),
                    channel: None,
                    rollout: None,
                });
            }
        }
    }
    Ok(releases)
}
