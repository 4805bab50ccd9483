//! `ota-sign release`: signed images into a local release tree, and the channel manifests
//! that point devices at them. Offline: needs the key, never the network.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use ota_format::{Channel, FULL_ROLLOUT};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::config;
use crate::exit::Failure;
use ota_sign_lib::repo::ReleaseTree;
use ota_sign_lib::repo::channel::{DowngradePolicy, ReleaseOptions, parse_rollout};
use ota_sign_lib::repo::release::{ChannelOutcome, ReleaseRequest, prepare};

pub const ABOUT: &str = "\
Put signed images into a local release tree and sign the channel manifests that point
devices at them. Offline: this needs the signing key and no network; `ota-sign publish`
then copies the tree to a host without any key.

The tree is the flat layout every host serves unchanged:
  <device-type>.<channel>.manifest        signed head of a channel (devices poll it)
  <device-type>-<version>-<digest8>.ota   signed image, never replaced
  index.json, SHA256SUMS                  for people and scripts

Each manifest's sequence number grows by one per release of its device type and channel.
The current manifest in the tree is the channel's state, so run `release` against the same
tree each time (keep it, or fetch it back from the host).

Rules:
  - a lower security counter than the channel's current one is always refused: devices
    would refuse it too;
  - a lower version is refused unless --allow-downgrade, which marks the manifest so
    devices running the newer version install it;
  - a version already released as a different image is refused (bump the version);
  - releasing the image the channel already carries, with a new --rollout or --expires,
    re-signs only the manifest: a staged rollout is 5 -> 50 -> 100, and 0 pauses it;
  - --expires less than 7 days away is signed with a warning: devices refuse an expired
    manifest, so re-sign (release again with a later --expires) before it runs out.
Everything is checked and signed before the first write; images are written before the
manifests that name them.

Every image is checked as its devices would check it, with the device's own decoder and
install rules (method-1 zstd frames within the window the device type accepts:
`max_window_log` in ota-sign.toml, default 12; method-2 blocks of at most 8 KiB; the
ESP-IDF app image, its version and trusted keys): a release that every device would
refuse is refused here.

Deltas: for each new image, release also makes signed deltas (`ota-sign delta`) from the
channel's last releases: its current image, then the device type's other images in the
tree, newest first; 3 of them, or `deltas` of the device type in ota-sign.toml, or
--deltas N (0: none). Each is named `<image>.<16 hex of the base's installed SHA-256>.otad`
beside the image, where devices running that base look for it (a 404 means the full
image), signed with the release key, decoded against its base before it is written, and
listed in index.json and SHA256SUMS so `publish` uploads it. A delta that would not save
a tenth of the full image, or whose base is for another chip or no longer verifies
(--trust for a rotated key), is left out with a note. Deltas are made for
`agent_generation = 1` too: generation-1 agents never ask for them and install the full
image, while the fleet's generation-2 agents take the delta.

Mixed fleets: a device type's `agent_generation` in ota-sign.toml says the oldest update
agent its devices run. A method-2 image (what `package` writes for generation 2, the default)
is refused for `agent_generation = 1`: package it with --agent-generation 1. When a device
type has no `agent_generation` and the channel currently serves a method-0/1 image, a
method-2 image is refused too, so that upgrading ota-sign never silently strands devices
on the old agent: set `agent_generation = 1` to keep them updating, or 2 once the whole
fleet runs the new agent.

Exit codes: 0 released (or nothing to change); 6 refused by a rule above (including an
image the device type's agents cannot decode), or zstd frames larger than the device
type's window; 3 an image or the tree's current manifest does not
verify (--trust for a rotated key), or devices refuse an image's payload; 7 another build
under the same image name in the tree; 5 key problem; 4 unreadable file; 2 usage.

Examples:
  ota-sign release --key release.key --repo site --channel stable t.ota
  ota-sign release --key release.key --repo site --channel stable \\
      --rollout 5 thermostat.ota
  ota-sign release --key release.key --repo site --channel stable \\
      --rollout 50 thermostat.ota
  ota-sign release --key release.key --repo site --channel beta \\
      --expires 30d a.ota b.ota
  ota-sign release --key release.key --repo site --channel beta \\
      --expires 2027-01-31 a.ota
  ota-sign release --key release.key --repo site --channel stable \\
      --dry-run --json fix.ota";

/// Sign channel manifests for images in a local release tree
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// Private key that signs the manifests [default: $OTA_SIGN_KEY, then `key` in ota-sign.toml]
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,

    /// The local release tree (created if missing)
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,

    /// Channel to release to [default: $OTA_SIGN_CHANNEL, then `channel` in ota-sign.toml]
    #[arg(long, value_parser = config::parse_channel)]
    pub channel: Option<Channel>,

    /// Share of devices that install it, in percent (5, 12.5, 100; 0 pauses)
    /// [default: the current rollout for the same image, 100 for a new one]
    // Negative numbers reach the value parser, which says what a rollout is, instead of
    // clap's tip to pass `-- -5`.
    #[arg(long, value_name = "PCT", value_parser = parse_rollout_arg, allow_negative_numbers = true)]
    pub rollout: Option<u16>,

    /// When devices stop accepting the manifest: a time after signing (90m, 12h, 30d) or
    /// a date (2027-01-31, midnight UTC; or RFC 3339 2027-01-31T12:00:00Z)
    /// [default: the current expiry for the same image, none for a new one]
    #[arg(long, value_name = "WHEN", value_parser = parse_expiry)]
    pub expires: Option<Expiry>,

    /// Release a lower version than the channel's current one, and let devices install it
    /// (a lower security counter stays refused)
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Also trust this public key for images and manifests already signed (before a key
    /// rotation); repeat for several
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,

    /// Make deltas from the last N releases of the channel to each new image (0: none)
    /// [default: `deltas` of the device type in ota-sign.toml, else 3]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=16))]
    pub deltas: Option<u32>,

    /// The deltas' payload encoding: `auto` writes both and keeps the smaller,
    /// `difference` (fewest bytes when code moved; the device erases each sector twice),
    /// `patch-from` (fastest to install) [default: `delta_encoding` of the device type in
    /// ota-sign.toml, else auto]
    #[arg(long, value_enum, value_name = "ENCODING")]
    pub delta_encoding: Option<super::delta::Encoding>,

    /// Check and sign, print what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Signed images (.ota) made by `ota-sign package`, at most one per device type
    #[arg(value_name = "IMAGE.ota", required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Summary {
    repo: String,
    channel: String,
    dry_run: bool,
    channels: Vec<ChannelOutcome>,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let cfg = global.config()?;
    let channel = config::channel(args.channel, cfg)?.ok_or_else(|| {
        Failure::usage(
            "no channel given",
            Some("pass --channel NAME (e.g. stable), set OTA_SIGN_CHANNEL, or set `channel` in [defaults] of ota-sign.toml".to_owned()),
        )
    })?;
    let key = super::signing_key(args.key.as_deref(), global)?;
    let mut extra_trusted = Vec::new();
    for spec in &args.trust {
        extra_trusted.push(super::public_key(spec, global)?.to_bytes());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_in = args.expires.map(|e| e.seconds_after(now)).transpose()?;
    if let Some(secs) = expires_in
        && secs < SHORT_EXPIRY.as_secs()
    {
        global.warn(&format!(
            "the manifest expires in {}, less than {}: publishing, a staged rollout (5 -> 50 -> 100) and re-signing before devices refuse it can take longer",
            humantime::format_duration(Duration::from_secs(secs)),
            humantime::format_duration(SHORT_EXPIRY)
        ));
    }
    let request = ReleaseRequest {
        channel,
        images: args.images,
        options: ReleaseOptions {
            rollout: args.rollout,
            expires_in,
            downgrade: if args.allow_downgrade {
                DowngradePolicy::Allow
            } else {
                DowngradePolicy::Refuse
            },
        },
        extra_trusted,
        now,
        devices: config::device_settings(cfg),
        deltas: args.deltas,
        delta_encoding: args.delta_encoding.map(Into::into),
    };
    let tree = ReleaseTree::new(&args.repo);
    let signed = prepare(&tree, &*key, &request)?;
    let outcomes = if args.dry_run {
        signed.outcomes()
    } else {
        signed.write(&tree)?
    };

    let verb = if args.dry_run {
        "would release"
    } else {
        "released"
    };
    global.say(&format!(
        "{verb} to channel {channel} in {}:",
        args.repo.display()
    ));
    for o in &outcomes {
        global.say(&describe(o));
    }
    if args.dry_run {
        global.say("nothing written (--dry-run)");
    } else if outcomes.iter().any(|o| o.change.is_some()) {
        global.say(&format!(
            "next: ota-sign publish --repo {} --to DEST",
            args.repo.display()
        ));
    }
    global.json_result(&Summary {
        repo: args.repo.display().to_string(),
        channel: channel.to_string(),
        dry_run: args.dry_run,
        channels: outcomes,
    });
    Ok(())
}

/// One line per channel: what the head is and how it moved.
fn describe(o: &ChannelOutcome) -> String {
    let change = match o.change {
        None => "unchanged".to_owned(),
        Some(c) => serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    let mut line = format!(
        "  {}  {} (counter {})  sequence {}  rollout {}  {change}\n    image {}{}",
        o.manifest,
        o.version,
        o.security_counter,
        o.sequence,
        percent(o.rollout),
        o.image,
        if o.image_added { " (added)" } else { "" },
    );
    if let Some(t) = o.not_after {
        let t = UNIX_EPOCH + Duration::from_secs(t);
        line.push_str(&format!(
            "  expires {}",
            humantime::format_rfc3339_seconds(t)
        ));
    }
    if o.allow_downgrade {
        line.push_str("  allows downgrade");
    }
    for d in &o.deltas {
        line.push_str(&format!(
            "\n    delta from {} {}: {} bytes{}, {:.1}% of the full image's {} bytes{}",
            d.from_version,
            d.name,
            d.size,
            if d.encoding.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.encoding)
            },
            d.size as f64 * 100.0 / d.full_size.max(1) as f64,
            d.full_size,
            if d.added { " (added)" } else { "" },
        ));
    }
    for note in &o.delta_notes {
        line.push_str(&format!("\n    {note}"));
    }
    line
}

fn percent(bp: u16) -> String {
    let pct = f64::from(bp) * 100.0 / f64::from(FULL_ROLLOUT);
    let text = format!("{pct:.2}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

fn parse_rollout_arg(s: &str) -> Result<u16, String> {
    parse_rollout(s).map_err(|_| {
        format!("{s:?} is not a rollout: a percentage from 0 to 100, at most two decimals (5, 12.5, 100)")
    })
}

/// Expiries shorter than this get a warning: a week is what a publish, a staged rollout
/// over days and a re-sign before the deadline can take.
pub const SHORT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// `--expires`: a time after signing, or an absolute time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// This long after signing.
    In(Duration),
    /// At this Unix time.
    At(u64),
}

impl Expiry {
    /// Seconds from `now` (signing time) to the expiry; an expiry not in the future is a
    /// usage error, since devices would refuse the manifest at once.
    fn seconds_after(self, now: u64) -> Result<u64, Failure> {
        match self {
            Expiry::In(d) => Ok(d.as_secs()),
            Expiry::At(at) if at > now => Ok(at - now),
            Expiry::At(at) => Err(Failure::usage(
                format!(
                    "--expires {} is not in the future",
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at))
                ),
                Some("give a later date, or a duration such as 30d".to_owned()),
            )),
        }
    }
}

fn parse_expiry(s: &str) -> Result<Expiry, String> {
    let text = s.trim();
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        return absolute(&format!("{text}T00:00:00Z"), s);
    }
    if text.contains('T') || text.contains(':') {
        return absolute(text, s);
    }
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("{s:?} is neither a duration (90m, 12h, 30d) nor a date (2027-01-31, 2027-01-31T12:00:00Z): {e}")
    })?;
    if d.as_secs() == 0 {
        return Err("an expiry must be at least one second".to_owned());
    }
    Ok(Expiry::In(d))
}

fn absolute(rfc3339: &str, given: &str) -> Result<Expiry, String> {
    let at = humantime::parse_rfc3339(rfc3339).map_err(|e| {
        format!("{given:?} is not a date (2027-01-31) or RFC 3339 time (2027-01-31T12:00:00Z): {e}")
    })?;
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{given:?} is before 1970"))?
        .as_secs();
    Ok(Expiry::At(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    #[test]
    fn rollout_prints_as_people_write_it() {
        assert_eq!(percent(500), "5%");
        assert_eq!(percent(1250), "12.5%");
        assert_eq!(percent(1), "0.01%");
        assert_eq!(percent(0), "0%");
        assert_eq!(percent(FULL_ROLLOUT), "100%");
    }

    #[test]
    fn expiry_needs_a_positive_duration() {
        assert_eq!(
            parse_expiry("30d"),
            Ok(Expiry::In(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!(
            parse_expiry("90m"),
            Ok(Expiry::In(Duration::from_secs(5_400)))
        );
        assert!(parse_expiry("0s").is_err());
        assert!(parse_expiry("soon").is_err());
    }

    #[test]
    fn expiry_takes_a_date_or_an_rfc3339_time() {
        // 2027-01-31T00:00:00Z
        assert_eq!(parse_expiry("2027-01-31"), Ok(Expiry::At(1_801_353_600)));
        assert_eq!(
            parse_expiry("2027-01-31T12:00:00Z"),
            Ok(Expiry::At(1_801_353_600 + 12 * 3600))
        );
        assert!(parse_expiry("2027-02-30").is_err());
        assert!(parse_expiry("2027-01-31T25:00:00Z").is_err());
        let now = 1_801_353_600;
        assert_eq!(Expiry::At(now + 60).seconds_after(now).unwrap(), 60);
        assert_eq!(
            Expiry::At(now).seconds_after(now).unwrap_err().code(),
            exit::USAGE
        );
    }
}
