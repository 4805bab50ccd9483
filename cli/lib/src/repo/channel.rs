//! The rules for moving a channel's head: what the next manifest of a device type and
//! channel may be, given the current one. Pure functions over decoded values, so every
//! rule is tested without files or keys.

use ota_format::{FULL_ROLLOUT, ImageInfo, ImageName, KeyId, Manifest};

use super::RepoError;

/// Whether a release may name a lower version than the channel's current one. Defaults to
/// refusing; a lower security counter is refused either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DowngradePolicy {
    /// Refuse a lower version.
    #[default]
    Refuse,
    /// Accept a lower version and set the manifest's allow-downgrade flag, so devices
    /// running a newer version install it.
    Allow,
}

/// What the operator asked for, beyond the image itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReleaseOptions {
    /// Rollout in basis points; `None` keeps the current one for the same image and means
    /// 100% for a new image.
    pub rollout: Option<u16>,
    /// Seconds after signing when devices stop accepting the manifest; `None` keeps the
    /// current expiry for the same image and means none for a new image.
    pub expires_in: Option<u64>,
    /// Lower versions.
    pub downgrade: DowngradePolicy,
}

/// The signed facts of a verified image that a manifest repeats.
#[derive(Clone, Copy, Debug)]
pub struct ImageFacts {
    /// The header's signed fields.
    pub info: ImageInfo,
    /// SHA-256 of the whole header, signature included.
    pub header_sha256: [u8; 32],
    /// Size of the `.ota` file.
    pub file_size: u32,
    /// The file name in the tree.
    pub name: ImageName,
}

/// How the new head relates to the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The channel had no manifest.
    New,
    /// A higher version.
    Upgrade,
    /// A lower version, allowed by the operator.
    Downgrade,
    /// The same image with new rollout, expiry or flags.
    Resign,
}

/// The channel's next manifest (unsigned), or `None` when the request changes nothing.
pub fn next_manifest(
    channel_label: &str,
    current: Option<&Manifest>,
    image: &ImageFacts,
    options: &ReleaseOptions,
    now: u64,
    key_id: KeyId,
    channel: ota_format::Channel,
) -> Result<Option<(Manifest, Change)>, RepoError> {
    let info = &image.info;
    let expiry = |secs: u64| now.saturating_add(secs);
    let (change, rollout, not_after, allow_downgrade) = match current {
        None => (
            Change::New,
            options.rollout.unwrap_or(FULL_ROLLOUT),
            options.expires_in.map(expiry),
            options.downgrade == DowngradePolicy::Allow,
        ),
        Some(cur) => {
            if info.security_counter < cur.security_counter {
                return Err(RepoError::CounterRollback {
                    channel: channel_label.to_owned(),
                    new: info.security_counter,
                    current: cur.security_counter,
                });
            }
            if image.header_sha256 == cur.image_header_sha256 {
                let rollout = options.rollout.unwrap_or(cur.rollout);
                let not_after = options.expires_in.map(expiry).or(cur.not_after);
                let allow = cur.allow_downgrade || options.downgrade == DowngradePolicy::Allow;
                if rollout == cur.rollout
                    && not_after == cur.not_after
                    && allow == cur.allow_downgrade
                    && key_id == cur.key_id
                {
                    return Ok(None);
                }
                (Change::Resign, rollout, not_after, allow)
            } else if info.version == cur.version {
                return Err(RepoError::VersionReused {
                    channel: channel_label.to_owned(),
                    version: info.version,
                });
            } else if info.version < cur.version {
                if options.downgrade != DowngradePolicy::Allow {
                    return Err(RepoError::Downgrade {
                        channel: channel_label.to_owned(),
                        new: info.version,
                        current: cur.version,
                    });
                }
                (
                    Change::Downgrade,
                    options.rollout.unwrap_or(FULL_ROLLOUT),
                    options.expires_in.map(expiry),
                    true,
                )
            } else {
                (
                    Change::Upgrade,
                    options.rollout.unwrap_or(FULL_ROLLOUT),
                    options.expires_in.map(expiry),
                    options.downgrade == DowngradePolicy::Allow,
                )
            }
        }
    };
    let sequence = match current {
        None => 1,
        Some(cur) => cur
            .sequence
            .checked_add(1)
            .ok_or_else(|| RepoError::SequenceExhausted(channel_label.to_owned()))?,
    };
    let manifest = Manifest {
        device_type: info.device_type,
        chip: info.chip,
        channel,
        version: info.version,
        security_counter: info.security_counter,
        sequence,
        created: now,
        not_after,
        rollout,
        image_file_size: image.file_size,
        image_size: info.image_size,
        image_header_sha256: image.header_sha256,
        min_running_version: None,
        allow_downgrade,
        image_name: image.name,
        key_id,
    };
    Ok(Some((manifest, change)))
}

/// Parses a rollout given as a percentage (`5`, `5%`, `12.5`, `0`) into basis points.
pub fn parse_rollout(s: &str) -> Result<u16, RepoError> {
    let t = s.trim().trim_end_matches('%');
    let pct: f64 = t.parse().map_err(|_| RepoError::BadRollout)?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(RepoError::BadRollout);
    }
    let bp = (pct * 100.0).round();
    // Finer than a basis point cannot be represented; refuse rather than round silently.
    if (pct * 100.0 - bp).abs() > 1e-6 {
        return Err(RepoError::BadRollout);
    }
    Ok(bp as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_format::{Channel, ChipId, Compression, DeviceType, Version};

    fn facts(version: &str, counter: u64, digest: u8) -> ImageFacts {
        let info = ImageInfo {
            device_type: DeviceType::new("dev").unwrap(),
            chip: ChipId(5),
            version: Version::parse(version).unwrap(),
            security_counter: counter,
            created: 1,
            image_size: 1000,
            payload_size: 1000,
            compression: Compression::None,
            payload_sha256: [digest; 32],
            image_sha256: [digest; 32],
            key_id: KeyId([1; 8]),
            flags: 0,
        };
        ImageFacts {
            info,
            header_sha256: [digest; 32],
            file_size: 1256,
            name: ImageName::new(&format!("dev-{version}-{digest:02x}.ota")).unwrap(),
        }
    }

    fn release(
        current: Option<&Manifest>,
        image: &ImageFacts,
        options: ReleaseOptions,
    ) -> Result<Option<(Manifest, Change)>, RepoError> {
        next_manifest(
            "dev.stable",
            current,
            image,
            &options,
            1000,
            KeyId([1; 8]),
            Channel::new("stable").unwrap(),
        )
    }

    fn head(version: &str, counter: u64, digest: u8) -> Manifest {
        release(
            None,
            &facts(version, counter, digest),
            ReleaseOptions::default(),
        )
        .unwrap()
        .unwrap()
        .0
    }

    /// Default options but for the rollout share, in basis points.
    fn with_rollout(rollout: u16) -> ReleaseOptions {
        ReleaseOptions {
            rollout: Some(rollout),
            ..Default::default()
        }
    }

    #[test]
    fn first_release_starts_at_sequence_one_full_rollout() {
        let m = head("1.0.0", 0, 1);
        assert_eq!(
            (m.sequence, m.rollout, m.not_after),
            (1, FULL_ROLLOUT, None)
        );
        assert!(!m.allow_downgrade);
    }

    #[test]
    fn upgrade_increments_sequence() {
        let cur = head("1.0.0", 0, 1);
        let (m, c) = release(Some(&cur), &facts("1.1.0", 0, 2), Default::default())
            .unwrap()
            .unwrap();
        assert_eq!((m.sequence, c), (2, Change::Upgrade));
    }

    #[test]
    fn lower_counter_is_refused_even_with_allow_downgrade() {
        let cur = head("1.0.0", 3, 1);
        let opts = ReleaseOptions {
            downgrade: DowngradePolicy::Allow,
            ..Default::default()
        };
        for image in [facts("2.0.0", 2, 2), facts("0.9.0", 2, 2)] {
            let err = release(Some(&cur), &image, opts).unwrap_err();
            assert!(
                matches!(
                    err,
                    RepoError::CounterRollback {
                        new: 2,
                        current: 3,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn lower_version_needs_allow_downgrade_which_sets_the_flag() {
        let cur = head("1.0.0", 0, 1);
        let err = release(Some(&cur), &facts("0.9.0", 0, 2), Default::default()).unwrap_err();
        assert!(matches!(err, RepoError::Downgrade { .. }), "{err}");
        let opts = ReleaseOptions {
            downgrade: DowngradePolicy::Allow,
            ..Default::default()
        };
        let (m, c) = release(Some(&cur), &facts("0.9.0", 0, 2), opts)
            .unwrap()
            .unwrap();
        assert_eq!(c, Change::Downgrade);
        assert!(m.allow_downgrade);
        assert_eq!(m.sequence, 2);
    }

    #[test]
    fn same_version_as_a_different_image_is_refused() {
        let cur = head("1.0.0", 0, 1);
        let err = release(Some(&cur), &facts("1.0.0", 0, 2), Default::default()).unwrap_err();
        assert!(matches!(err, RepoError::VersionReused { .. }), "{err}");
    }

    #[test]
    fn new_rollout_resigns_the_same_image() {
        let image = facts("1.0.0", 0, 1);
        let five = with_rollout(500);
        let (cur, _) = release(None, &image, five).unwrap().unwrap();
        assert_eq!(cur.rollout, 500);
        let fifty = with_rollout(5000);
        let (m, c) = release(Some(&cur), &image, fifty).unwrap().unwrap();
        assert_eq!((c, m.rollout, m.sequence), (Change::Resign, 5000, 2));
        assert_eq!(m.image_name, cur.image_name);
        assert_eq!(m.image_header_sha256, cur.image_header_sha256);
    }

    #[test]
    fn repeating_the_same_request_changes_nothing() {
        let image = facts("1.0.0", 0, 1);
        let cur = head("1.0.0", 0, 1);
        assert!(
            release(Some(&cur), &image, Default::default())
                .unwrap()
                .is_none()
        );
        let again = with_rollout(FULL_ROLLOUT);
        assert!(release(Some(&cur), &image, again).unwrap().is_none());
    }

    #[test]
    fn expiry_is_relative_to_signing_and_kept_on_resign() {
        let image = facts("1.0.0", 0, 1);
        let opts = ReleaseOptions {
            expires_in: Some(3600),
            ..Default::default()
        };
        let (cur, _) = release(None, &image, opts).unwrap().unwrap();
        assert_eq!(cur.not_after, Some(4600));
        let rollout = with_rollout(100);
        let (m, _) = release(Some(&cur), &image, rollout).unwrap().unwrap();
        assert_eq!(m.not_after, Some(4600));
    }

    #[test]
    fn exhausted_sequence_is_an_error() {
        let mut cur = head("1.0.0", 0, 1);
        cur.sequence = u64::MAX;
        let err = release(Some(&cur), &facts("2.0.0", 0, 2), Default::default()).unwrap_err();
        assert!(matches!(err, RepoError::SequenceExhausted(_)), "{err}");
    }

    #[test]
    fn rollout_parsing() {
        assert_eq!(parse_rollout("5").unwrap(), 500);
        assert_eq!(parse_rollout("5%").unwrap(), 500);
        assert_eq!(parse_rollout("12.5").unwrap(), 1250);
        assert_eq!(parse_rollout("0").unwrap(), 0);
        assert_eq!(parse_rollout("100").unwrap(), 10000);
        for bad in ["101", "-1", "abc", "", "0.001", "nan"] {
            assert!(
                matches!(parse_rollout(bad), Err(RepoError::BadRollout)),
                "{bad}"
            );
        }
    }
}
