//! One request as the host logged it, and the identity token devices put in their
//! `User-Agent` (`ota_agent::identity`), read back.

/// The fields of one access-log line the fleet report needs, whatever the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Unix time of the request, seconds.
    pub time: i64,
    /// `GET`, `HEAD`, ...
    pub method: &'a str,
    /// The path asked for, without the query string.
    pub path: &'a str,
    /// HTTP status of the answer.
    pub status: u16,
    /// The `User-Agent` as logged (CloudFront's URL encoding already undone).
    pub user_agent: &'a str,
}

impl Request<'_> {
    /// The last segment of the path: the file asked for.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// What a device said about itself in one request:
/// `ota-agent/0.1.0 (i=3f9a1c2e8b01;t=sensor;c=stable;v=1.2.0;s=1;r=up)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// Device id (a hash unless the device is configured to send its own).
    pub id: &'a str,
    /// Device type.
    pub device_type: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Running version.
    pub version: &'a str,
    /// Running slot (`0`, `1`, ..., `f` for factory).
    pub slot: &'a str,
    /// Outcome of the last check (`up`, `nr-4711`, `pf-1.3.0`, ..., see [`Outcome`]).
    pub outcome: &'a str,
}

/// Product token every agent's `User-Agent` starts with.
pub const AGENT_PRODUCT: &str = "ota-agent/";

impl<'a> Token<'a> {
    /// Reads the token out of a `User-Agent`; `None` for other clients, an agent that
    /// identifies itself with nothing (`identify = off`), or a token missing a field.
    pub fn parse(user_agent: &'a str) -> Option<Self> {
        let rest = user_agent.trim().strip_prefix(AGENT_PRODUCT)?;
        let open = rest.find('(')?;
        let inner = rest[open + 1..].strip_suffix(')')?;
        let mut token = Token {
            id: "",
            device_type: "",
            channel: "",
            version: "",
            slot: "",
            outcome: "",
        };
        for field in inner.split(';') {
            let (key, value) = field.split_once('=')?;
            match key {
                "i" => token.id = value,
                "t" => token.device_type = value,
                "c" => token.channel = value,
                "v" => token.version = value,
                "s" => token.slot = value,
                "r" => token.outcome = value,
                // A later agent may add fields; they are ignored, not fatal.
                _ => {}
            }
        }
        let complete = [token.id, token.device_type, token.channel, token.version]
            .iter()
            .all(|f| !f.is_empty());
        complete.then_some(token)
    }
}

/// The `r=` field of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// No check since the device booted.
    Boot,
    /// Running what the manifest names.
    UpToDate,
    /// Outside the staged rollout, with the device's bucket (0..10000).
    NotInRollout(u16),
    /// This release failed its trial boot on the device (rolled back).
    PreviouslyFailed(&'a str),
    /// Installing this release failed; the device retries.
    RetryLater(&'a str),
    /// Installing this release failed too often; the device gave up on it.
    GaveUp(&'a str),
    /// This release is installed and waits for the reboot.
    Installed(&'a str),
    /// The last check failed.
    Error,
    /// A code this version of ota-sign does not know.
    Unknown(&'a str),
}

impl<'a> Outcome<'a> {
    /// Reads an `r=` value.
    pub fn parse(code: &'a str) -> Self {
        match code.split_once('-') {
            _ if code == "boot" => Outcome::Boot,
            _ if code == "up" => Outcome::UpToDate,
            _ if code == "err" => Outcome::Error,
            Some(("nr", bucket)) => bucket
                .parse()
                .map_or(Outcome::Unknown(code), Outcome::NotInRollout),
            Some(("pf", v)) => Outcome::PreviouslyFailed(v),
            Some(("rl", v)) => Outcome::RetryLater(v),
            Some(("gu", v)) => Outcome::GaveUp(v),
            Some(("in", v)) => Outcome::Installed(v),
            _ => Outcome::Unknown(code),
        }
    }

    /// The release a failure names, when the outcome is one (trial failed or install
    /// given up).
    pub fn failed_release(&self) -> Option<&'a str> {
        match *self {
            Outcome::PreviouslyFailed(v) | Outcome::GaveUp(v) => Some(v),
            _ => None,
        }
    }

    /// In words, for the report.
    pub fn describe(code: &str) -> String {
        match Outcome::parse(code) {
            Outcome::Boot => "booted".into(),
            Outcome::UpToDate => "up to date".into(),
            Outcome::NotInRollout(b) => format!("not in rollout (bucket {b})"),
            Outcome::PreviouslyFailed(v) => format!("rolled back from {v}"),
            Outcome::RetryLater(v) => format!("install of {v} failed, retrying"),
            Outcome::GaveUp(v) => format!("gave up on {v}"),
            Outcome::Installed(v) => format!("installed {v}, reboot pending"),
            Outcome::Error => "check failed".into(),
            Outcome::Unknown(c) => format!("unknown ({c})"),
        }
    }
}

/// The version in an image name `<device-type>-<version>-<digest8>.ota` of a device of
/// `device_type`, or in the name of a delta to such an image (`<image>.<16 hex>.otad`): a
/// device that fetched the delta downloaded that release.
pub fn image_version<'n>(file_name: &'n str, device_type: &str) -> Option<&'n str> {
    let file_name = crate::delta::delta_target(file_name).unwrap_or(file_name);
    let stem = file_name.strip_suffix(".ota")?;
    let rest = stem.strip_prefix(device_type)?.strip_prefix('-')?;
    let (version, digest) = rest.rsplit_once('-')?;
    (digest.len() == 8 && digest.bytes().all(|b| b.is_ascii_hexdigit()) && !version.is_empty())
        .then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_the_agent_user_agent_only() {
        let t = Token::parse(
            "ota-agent/0.1.0 (i=3f9a1c2e8b01;t=sensor;c=stable;v=1.2.0;s=1;r=pf-1.3.0)",
        )
        .unwrap();
        assert_eq!(
            (t.id, t.device_type, t.channel, t.version, t.slot),
            ("3f9a1c2e8b01", "sensor", "stable", "1.2.0", "1")
        );
        assert_eq!(
            Outcome::parse(t.outcome),
            Outcome::PreviouslyFailed("1.3.0")
        );
        // Fields added by a later agent are ignored.
        assert!(Token::parse("ota-agent/0.2.0 (i=a;t=b;c=c;v=1.0.0;s=0;r=up;x=1)").is_some());
        for foreign in [
            "Mozilla/5.0 (X11; Linux x86_64)",
            "ota-agent/0.1.0",
            "ota-agent/0.1.0 (t=sensor;c=stable;v=1.2.0)",
            "ota-agent/0.1.0 (i=a;t=b;c=c;v=1.0.0;s=0;r=up",
            "ota-agent/0.1.0 (garbage)",
            "-",
        ] {
            assert_eq!(Token::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn outcome_codes() {
        assert_eq!(Outcome::parse("nr-4711"), Outcome::NotInRollout(4711));
        assert_eq!(Outcome::parse("nr-x"), Outcome::Unknown("nr-x"));
        assert_eq!(
            Outcome::parse("gu-2.0.0-rc.1").failed_release(),
            Some("2.0.0-rc.1")
        );
        assert_eq!(Outcome::parse("rl-2.0.0").failed_release(), None);
        assert_eq!(Outcome::parse("boot"), Outcome::Boot);
        assert_eq!(Outcome::parse("zz"), Outcome::Unknown("zz"));
    }

    #[test]
    fn image_names_give_their_version() {
        assert_eq!(
            image_version("sensor-v2-1.3.0-rc.1-0a1b2c3d.ota", "sensor-v2"),
            Some("1.3.0-rc.1")
        );
        assert_eq!(image_version("sensor-1.3.0-0a1b2c3d.ota", "other"), None);
        assert_eq!(
            image_version("sensor-1.3.0-0a1b2c3d.ota.00112233445566ff.otad", "sensor"),
            Some("1.3.0")
        );
        assert_eq!(
            image_version("sensor-1.3.0-0a1b2c3d.ota.0011.otad", "sensor"),
            None
        );
        assert_eq!(image_version("sensor.stable.manifest", "sensor"), None);
        assert_eq!(image_version("sensor-1.3.0-xyz.ota", "sensor"), None);
    }
}
