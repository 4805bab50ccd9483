//! Folds device requests into what the report shows: per device, the latest of what it
//! said; per release, who runs it, who downloaded it and still runs something else, who
//! went silent; over time, how many devices ran each version.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::record::{Outcome, Request, Token, image_version};

/// What the requests of one device add up to.
#[derive(Clone, Debug, Default)]
pub struct DeviceLog {
    /// Device type (latest).
    pub device_type: String,
    /// Channel (latest).
    pub channel: String,
    /// Running version (latest), an index into [`Fleet::versions`].
    pub version: usize,
    /// Running slot (latest).
    pub slot: String,
    /// First and last request.
    pub first_seen: i64,
    /// Time of the latest request.
    pub last_seen: i64,
    /// The `r=` code of the latest request.
    pub outcome: String,
    /// Manifest requests (checks).
    pub checks: u64,
    /// Releases the device reported failing (rolled back, or install given up).
    pub failed: BTreeSet<String>,
    /// Releases whose image the device downloaded (200 or 206), with the last time.
    pub downloaded: BTreeMap<String, i64>,
    /// `(time, version)` whenever the version differed from the previous request read.
    pub history: Vec<(i64, usize)>,
}

/// Lines read, by what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LineCounts {
    /// Every line read, blank and comment lines excluded.
    pub lines: u64,
    /// Requests from ota-agent devices with an identity token.
    pub device_requests: u64,
    /// Well-formed requests from other clients (browsers, monitors, agents with
    /// `identify = off`).
    pub other_clients: u64,
    /// Lines no parser accepted (truncated, foreign formats, binary noise).
    pub malformed: u64,
}

/// The fleet as the logs show it.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Devices by id.
    pub devices: HashMap<Box<str>, DeviceLog>,
    /// Version strings seen, interned.
    pub versions: Vec<String>,
    version_ids: HashMap<String, usize>,
    /// Line counts.
    pub counts: LineCounts,
}

impl Fleet {
    fn version_id(&mut self, version: &str) -> usize {
        if let Some(&id) = self.version_ids.get(version) {
            return id;
        }
        let id = self.versions.len();
        self.versions.push(version.to_owned());
        self.version_ids.insert(version.to_owned(), id);
        id
    }

    /// Takes one parsed request into account.
    pub fn add(&mut self, request: &Request<'_>) {
        let Some(token) = Token::parse(request.user_agent) else {
            self.counts.other_clients += 1;
            return;
        };
        self.counts.device_requests += 1;
        let version = self.version_id(token.version);
        let device = match self.devices.get_mut(token.id) {
            Some(d) => d,
            None => self
                .devices
                .entry(token.id.into())
                .or_insert_with(|| DeviceLog {
                    first_seen: request.time,
                    last_seen: request.time,
                    version,
                    ..DeviceLog::default()
                }),
        };
        let t = request.time;
        device.first_seen = device.first_seen.min(t);
        if device.history.last().is_none_or(|&(_, v)| v != version) {
            device.history.push((t, version));
        }
        if let Some(failed) = Outcome::parse(token.outcome).failed_release()
            && !device.failed.contains(failed)
        {
            device.failed.insert(failed.to_owned());
        }
        let ok = matches!(request.status, 200 | 206 | 304);
        let file = request.file_name();
        if file.ends_with(".manifest") {
            device.checks += 1;
        } else if ok
            && request.method == "GET"
            && let Some(v) = image_version(file, token.device_type)
        {
            let at = device.downloaded.entry(v.to_owned()).or_insert(t);
            *at = (*at).max(t);
        }
        // Logs are not always in time order (S3 delivers records late, files are read
        // in name order): the latest request decides what the device runs now.
        if t >= device.last_seen {
            device.last_seen = t;
            device.version = version;
            set(&mut device.device_type, token.device_type);
            set(&mut device.channel, token.channel);
            set(&mut device.slot, token.slot);
            set(&mut device.outcome, token.outcome);
        }
    }

    /// The first and last request of any device.
    pub fn window(&self) -> Option<(i64, i64)> {
        let first = self.devices.values().map(|d| d.first_seen).min()?;
        let last = self.devices.values().map(|d| d.last_seen).max()?;
        Some((first, last))
    }

    /// The check interval the devices keep: the median over devices of their mean time
    /// between checks (devices seen checking at least twice).
    pub fn typical_interval(&self) -> Option<i64> {
        let mut means: Vec<i64> = self
            .devices
            .values()
            .filter(|d| d.checks >= 2 && d.last_seen > d.first_seen)
            .map(|d| (d.last_seen - d.first_seen) / (d.checks as i64 - 1))
            .collect();
        if means.is_empty() {
            return None;
        }
        means.sort_unstable();
        Some(means[means.len() / 2].max(1))
    }

    /// Devices running each version at each of `points` times from `from` to `to`. A
    /// device counts from its first request on.
    pub fn timeline(&self, from: i64, to: i64, points: usize) -> Timeline {
        let points = points.max(2);
        let times: Vec<i64> = (0..points)
            .map(|i| from + (to - from) * i as i64 / (points as i64 - 1))
            .collect();
        let mut counts = vec![vec![0u32; points]; self.versions.len()];
        for device in self.devices.values() {
            let mut history = device.history.clone();
            history.sort_by_key(|&(t, _)| t);
            let mut next = 0;
            let mut current = None;
            for (i, &at) in times.iter().enumerate() {
                while next < history.len() && history[next].0 <= at {
                    current = Some(history[next].1);
                    next += 1;
                }
                if let Some(v) = current {
                    counts[v][i] += 1;
                }
            }
        }
        Timeline { times, counts }
    }
}

/// Devices per version over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The sample times.
    pub times: Vec<i64>,
    /// Per version (index into [`Fleet::versions`]), devices running it at each time.
    pub counts: Vec<Vec<u32>>,
}

fn set(field: &mut String, value: &str) {
    if field != value {
        value.clone_into(field);
    }
}
