//! The report: what `fleet status` prints as a table, as JSON and as HTML.

use std::cmp::Ordering;

use serde::Serialize;

use super::record::Outcome;
use super::summary::{Fleet, LineCounts};
use super::time;

/// A release the report covers: from the release tree's manifests (`--repo`), or every
/// version the devices ran or downloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownRelease {
    /// Device type.
    pub device_type: String,
    /// Version.
    pub version: String,
    /// The channel whose manifest names it, when it is a channel's head.
    pub channel: Option<String>,
    /// Its staged rollout in basis points, when it is a channel's head.
    pub rollout: Option<u16>,
}

/// How the report is built.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Seconds between checks; `None`: what the devices keep (median).
    pub interval: Option<i64>,
    /// A device is silent after this many intervals without a request.
    pub silent_after: u32,
    /// The report's "now": by default the last request in the logs.
    pub now: Option<i64>,
    /// Points of the timeline.
    pub timeline_points: usize,
}

/// One device.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    pub id: String,
    pub device_type: String,
    pub channel: String,
    pub version: String,
    pub slot: String,
    pub last_seen: i64,
    pub last_result: String,
    pub last_result_text: String,
    pub failed_releases: Vec<String>,
    pub checks: u64,
    pub silent: bool,
}

/// One release.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseRow {
    pub device_type: String,
    pub version: String,
    pub channel: Option<String>,
    /// Rollout in percent, when known.
    pub rollout_percent: Option<f64>,
    /// Devices of its type (and channel) in the logs.
    pub devices: usize,
    /// Of these, the devices its rollout reaches: all but those whose last check said
    /// "not in rollout" with a bucket at or above the rollout.
    pub in_rollout: usize,
    /// Devices running it.
    pub running: usize,
    /// Devices that downloaded its image and still report another version (a failed
    /// install or trial).
    pub downloaded_not_running: usize,
    /// Devices that reported it failed (rolled back or gave up).
    pub failed: usize,
    /// Devices of its type silent for longer than the silence threshold.
    pub silent: usize,
}

/// Devices per version over time.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub version: String,
    pub devices: Vec<u32>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub interval_seconds: i64,
    pub interval_measured: bool,
    pub silent_after_seconds: i64,
    pub lines: LineCounts,
    pub devices: Vec<DeviceRow>,
    pub releases: Vec<ReleaseRow>,
    pub timeline_times: Vec<i64>,
    pub timeline: Vec<Series>,
}

/// Orders versions as semver does (unparsable ones last, by text).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (ota_format::Version::parse(a), ota_format::Version::parse(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Default seconds between checks when the logs cannot tell (the firmware's default).
pub const DEFAULT_INTERVAL: i64 = 600;

impl Report {
    /// Builds the report of `fleet` for `known` releases (and every version seen).
    pub fn build(fleet: &Fleet, known: &[KnownRelease], options: Options) -> Report {
        let window = fleet.window();
        let measured = fleet.typical_interval();
        let interval = options.interval.or(measured).unwrap_or(DEFAULT_INTERVAL);
        let silent_after = interval * i64::from(options.silent_after);
        let now = options.now.or(window.map(|w| w.1)).unwrap_or(0);

        let mut devices: Vec<DeviceRow> = fleet
            .devices
            .iter()
            .map(|(id, d)| DeviceRow {
                id: id.to_string(),
                device_type: d.device_type.clone(),
                channel: d.channel.clone(),
                version: fleet.versions[d.version].clone(),
                slot: d.slot.clone(),
                last_seen: d.last_seen,
                last_result: d.outcome.clone(),
                last_result_text: Outcome::describe(&d.outcome),
                failed_releases: d.failed.iter().cloned().collect(),
                checks: d.checks,
                silent: now - d.last_seen > silent_after,
            })
            .collect();
        devices.sort_by(|a, b| {
            (&a.device_type, &a.channel, &a.id).cmp(&(&b.device_type, &b.channel, &b.id))
        });

        let mut releases = known.to_vec();
        for d in fleet.devices.values() {
            let seen = d
                .history
                .iter()
                .map(|&(_, v)| fleet.versions[v].as_str())
                .chain(d.downloaded.keys().map(String::as_str))
                .chain(d.failed.iter().map(String::as_str));
            for version in seen {
                if !releases
                    .iter()
                    .any(|r| r.device_type == d.device_type && r.version == version)
                {
                    releases.push(KnownRelease {
                        device_type: d.device_type.clone(),
                        version: version.to_owned(),
                        channel: None,
                        rollout: None,
                    });
                }
            }
        }
        releases.sort_by(|a, b| {
            a.device_type
                .cmp(&b.device_type)
                .then_with(|| compare_versions(&a.version, &b.version))
                .then_with(|| a.channel.cmp(&b.channel))
        });
        let releases = releases
            .iter()
            .map(|r| release_row(fleet, r, now, silent_after))
            .collect();

        let (timeline_times, timeline) = match window {
            Some((from, to)) => {
                let t = fleet.timeline(from, to, options.timeline_points);
                let mut series: Vec<Series> = t
                    .counts
                    .into_iter()
                    .enumerate()
                    .map(|(v, devices)| Series {
                        version: fleet.versions[v].clone(),
                        devices,
                    })
                    .collect();
                series.sort_by(|a, b| compare_versions(&a.version, &b.version));
                (t.times, series)
            }
            None => (Vec::new(), Vec::new()),
        };

        Report {
            from: window.map(|w| w.0),
            to: window.map(|w| w.1),
            interval_seconds: interval,
            interval_measured: options.interval.is_none() && measured.is_some(),
            silent_after_seconds: silent_after,
            lines: fleet.counts,
            devices,
            releases,
            timeline_times,
            timeline,
        }
    }

    /// Devices silent for longer than the threshold.
    pub fn silent_devices(&self) -> usize {
        self.devices.iter().filter(|d| d.silent).count()
    }

    /// The window in words.
    pub fn window_text(&self) -> String {
        match (self.from, self.to) {
            (Some(from), Some(to)) => format!("{} .. {}", time::format(from), time::format(to)),
            _ => "no device requests".to_owned(),
        }
    }
}

fn release_row(fleet: &Fleet, release: &KnownRelease, now: i64, silent_after: i64) -> ReleaseRow {
    let mut row = ReleaseRow {
        device_type: release.device_type.clone(),
        version: release.version.clone(),
        channel: release.channel.clone(),
        rollout_percent: release.rollout.map(|r| f64::from(r) / 100.0),
        devices: 0,
        in_rollout: 0,
        running: 0,
        downloaded_not_running: 0,
        failed: 0,
        silent: 0,
    };
    for d in fleet.devices.values() {
        let same_channel = release.channel.as_ref().is_none_or(|c| *c == d.channel);
        if d.device_type != release.device_type || !same_channel {
            continue;
        }
        row.devices += 1;
        let out = match Outcome::parse(&d.outcome) {
            Outcome::NotInRollout(bucket) => release.rollout.is_none_or(|r| bucket >= r),
            _ => false,
        };
        row.in_rollout += usize::from(!out);
        let running = fleet.versions[d.version] == release.version;
        row.running += usize::from(running);
        row.downloaded_not_running +=
            usize::from(!running && d.downloaded.contains_key(&release.version));
        row.failed += usize::from(d.failed.contains(&release.version));
        row.silent += usize::from(now - d.last_seen > silent_after);
    }
    row
}
