//! File names of the one flat layout that every host serves (a directory, a bucket prefix
//! or a GitHub release hold the same names, so a device's URL rules never depend on the
//! host):
//!
//! | file                                   | what                                  |
//! |----------------------------------------|---------------------------------------|
//! | `<device-type>.<channel>.manifest`     | signed head of a channel, no-cache    |
//! | `<device-type>-<version>-<digest8>.ota`| signed image, immutable               |
//! | `<image name>.<base16>.otad`           | signed delta to that image from the base whose installed SHA-256 starts with base16 (16 lowercase hex), immutable |
//! | `index.json`, `SHA256SUMS`             | informational, for people and scripts |
//!
//! Device types and channels never contain a `.`, so a manifest name splits unambiguously.

use ota_format::{Channel, DeviceType, ImageName, Version};

/// Name of the informational index.
pub const INDEX_JSON: &str = "index.json";
/// Name of the checksum list.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// Suffix of manifest files.
pub const MANIFEST_SUFFIX: &str = ".manifest";
/// Suffix of image files.
pub const IMAGE_SUFFIX: &str = ".ota";

/// What a file in a release tree (or on a host) is, judged by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// The signed head of one channel of one device type.
    Manifest {
        /// Device type named by the file.
        device_type: DeviceType,
        /// Channel named by the file.
        channel: Channel,
    },
    /// A signed image.
    Image,
    /// A signed delta to an image, named after it (see [`crate::delta::delta_name`]).
    Delta,
    /// `index.json` or `SHA256SUMS`.
    Info,
}

impl FileKind {
    /// Publish order: images before manifests before the informational files, so a device
    /// never sees a manifest whose image is missing.
    pub fn upload_rank(&self) -> u8 {
        match self {
            FileKind::Image | FileKind::Delta => 0,
            FileKind::Manifest { .. } => 1,
            FileKind::Info => 2,
        }
    }
}

/// `<device-type>.<channel>.manifest`
pub fn manifest_name(device_type: &DeviceType, channel: &Channel) -> String {
    format!("{device_type}.{channel}{MANIFEST_SUFFIX}")
}

/// `<device-type>-<version>-<digest8>.ota`, where digest8 is the first 8 hex digits of the
/// SHA-256 of the image's signed header: two builds of one version never share a name.
pub fn image_name(
    device_type: &DeviceType,
    version: &Version,
    header_sha256: &[u8; 32],
) -> Option<ImageName> {
    let digest8 = hex::encode(&header_sha256[..4]);
    ImageName::new(&format!("{device_type}-{version}-{digest8}{IMAGE_SUFFIX}"))
}

/// Classifies a file name; `None` for anything that is not part of the layout (temporary
/// files, editor backups, subdirectories), which publish then ignores.
pub fn classify(name: &str) -> Option<FileKind> {
    if name == INDEX_JSON || name == SHA256SUMS {
        return Some(FileKind::Info);
    }
    if let Some(stem) = name.strip_suffix(MANIFEST_SUFFIX) {
        let (device_type, channel) = stem.split_once('.')?;
        return Some(FileKind::Manifest {
            device_type: DeviceType::new(device_type)?,
            channel: Channel::new(channel)?,
        });
    }
    if delta_target(name).is_some_and(|image| ImageName::new(image).is_some()) {
        return Some(FileKind::Delta);
    }
    if name.ends_with(IMAGE_SUFFIX) && ImageName::new(name).is_some() {
        return Some(FileKind::Image);
    }
    None
}

/// The image name a delta file name belongs to (`None`: not a delta's name).
pub fn delta_target(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(ota_format::DELTA_FILE_SUFFIX)?;
    let (image, digest) = stem.rsplit_once('.')?;
    let hex_ok = digest.len() == 16
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex_ok && image.ends_with(IMAGE_SUFFIX)).then_some(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_classify() {
        let dt = DeviceType::new("thermostat-v2").unwrap();
        let ch = Channel::new("beta").unwrap();
        let m = manifest_name(&dt, &ch);
        assert_eq!(m, "thermostat-v2.beta.manifest");
        assert_eq!(
            classify(&m),
            Some(FileKind::Manifest {
                device_type: dt,
                channel: ch
            })
        );
        let v = Version::parse("1.2.3-rc.1").unwrap();
        let i = image_name(&dt, &v, &[0xab; 32]).unwrap();
        assert_eq!(i.as_str(), "thermostat-v2-1.2.3-rc.1-abababab.ota");
        assert_eq!(classify(i.as_str()), Some(FileKind::Image));
        let d = crate::delta::delta_name(i.as_str(), &[0x01; 32]).unwrap();
        assert_eq!(
            d,
            "thermostat-v2-1.2.3-rc.1-abababab.ota.0101010101010101.otad"
        );
        assert_eq!(classify(&d), Some(FileKind::Delta));
        assert_eq!(classify("notes.ota.0101010101010101.otad.tmp"), None);
    }

    #[test]
    fn foreign_files_are_not_part_of_the_layout() {
        for name in [
            ".x.stable.manifest.tmp",
            "a.b.c.manifest",
            "UPPER.stable.manifest",
            "notes.txt",
            ".hidden.ota",
            "a..ota",
        ] {
            assert_eq!(classify(name), None, "{name}");
        }
        assert_eq!(classify("index.json"), Some(FileKind::Info));
        assert_eq!(classify("SHA256SUMS"), Some(FileKind::Info));
    }
}
