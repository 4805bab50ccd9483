//! The report as terminal tables.

use std::fmt::Write as _;

use super::report::Report;
use super::time;

/// Columns padded to their widest cell; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The report for a terminal: a summary line, releases, then devices (unless
/// `releases_only`).
pub fn render(report: &Report, releases_only: bool) -> String {
    let mut out = String::new();
    let lines = &report.lines;
    let _ = writeln!(
        out,
        "{} devices, {} silent (no request for {}; checks every {}{}), {}",
        report.devices.len(),
        report.silent_devices(),
        time::format_duration(report.silent_after_seconds),
        time::format_duration(report.interval_seconds),
        if report.interval_measured {
            ", measured"
        } else {
            ""
        },
        report.window_text(),
    );
    let _ = writeln!(
        out,
        "{} lines: {} device requests, {} from other clients, {} malformed (skipped)\n",
        lines.lines, lines.device_requests, lines.other_clients, lines.malformed
    );
    let rows: Vec<Vec<String>> = report
        .releases
        .iter()
        .map(|r| {
            vec![
                r.device_type.clone(),
                r.version.clone(),
                or_dash(r.channel.clone()),
                or_dash(r.rollout_percent.map(|p| format!("{p}%"))),
                r.devices.to_string(),
                r.in_rollout.to_string(),
                r.running.to_string(),
                r.downloaded_not_running.to_string(),
                r.failed.to_string(),
                r.silent.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "TYPE",
            "RELEASE",
            "CHANNEL",
            "ROLLOUT",
            "DEVICES",
            "IN ROLLOUT",
            "RUNNING",
            "DOWNLOADED, NOT RUNNING",
            "FAILED",
            "SILENT",
        ],
        &rows,
    ));
    if releases_only {
        return out;
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = report
        .devices
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.device_type.clone(),
                d.channel.clone(),
                d.version.clone(),
                d.slot.clone(),
                format!(
                    "{}{}",
                    time::format(d.last_seen),
                    if d.silent { " (silent)" } else { "" }
                ),
                d.last_result_text.clone(),
                if d.failed_releases.is_empty() {
                    "-".to_owned()
                } else {
                    d.failed_releases.join(", ")
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "DEVICE",
            "TYPE",
            "CHANNEL",
            "VERSION",
            "SLOT",
            "LAST SEEN",
            "LAST RESULT",
            "FAILED RELEASES",
        ],
        &rows,
    ));
    out
}
