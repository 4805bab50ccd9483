//! What the demo shows: a live view of the fleet while it converges (redrawn in place on a
//! terminal, plain log lines otherwise) and a table per device afterwards.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::fleet::{DeviceView, Event, EventKind, Fleet};

/// How far the fleet is towards a goal.
pub struct Progress {
    /// Devices that reached the goal.
    pub done: usize,
    /// Devices in the fleet.
    pub total: usize,
}

/// Redraws the fleet until `goal` holds for every device or `timeout` passes. Returns
/// whether the goal was reached.
pub fn follow(
    fleet: &Fleet,
    title: &str,
    timeout: Duration,
    goal: impl Fn(&DeviceView) -> bool,
) -> bool {
    let live = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut drawn = 0usize;
    let mut last_summary = Instant::now();
    loop {
        let views = fleet.snapshot();
        let done = views.iter().filter(|v| goal(v)).count();
        let progress = Progress {
            done,
            total: views.len(),
        };
        let finished = done == views.len();
        let timed_out = start.elapsed() > timeout;
        if live {
            drawn = redraw(&views, &progress, title, start.elapsed(), drawn, &goal);
        } else {
            for e in fleet.events() {
                println!(
                    "  [{:>5.1}s] {}",
                    start.elapsed().as_secs_f64(),
                    describe(&views, &e)
                );
            }
            if finished || timed_out || last_summary.elapsed() > Duration::from_secs(5) {
                println!(
                    "  [{:>5.1}s] {title}: {}/{} devices",
                    start.elapsed().as_secs_f64(),
                    progress.done,
                    progress.total
                );
                last_summary = Instant::now();
            }
        }
        if finished || timed_out {
            if live {
                // Events were shown in the grid; drop them so the next phase starts clean.
                let _ = fleet.events();
            }
            return finished;
        }
        std::thread::sleep(Duration::from_millis(if live { 200 } else { 250 }));
    }
}

fn describe(views: &[DeviceView], e: &Event) -> String {
    let id = views.get(e.device).map_or("?", |v| v.id.as_str());
    match &e.kind {
        EventKind::Installed(v) => format!("{id}: installed {v} into the other slot, rebooting"),
        EventKind::Confirmed(v) => {
            format!("{id}: runs {v}: its trial boot passed the health check")
        }
        EventKind::TrialFailed(how, v) => {
            format!("{id}: trial boot of {v} failed ({how}), rolling back")
        }
        EventKind::CheckFailed(err) => format!("{id}: check failed: {err}"),
        EventKind::Fatal(why) => format!("{id}: simulation stopped: {why}"),
    }
}

/// One character per device: where it is.
fn cell(v: &DeviceView, goal: &impl Fn(&DeviceView) -> bool) -> char {
    if v.fatal.is_some() {
        'X'
    } else if goal(v) {
        '#'
    } else if v.update.starts_with("downloading") || v.update == "verifying" {
        'v'
    } else if v.update == "rebooting" || v.update == "trial" || v.update == "switching" {
        '*'
    } else {
        '.'
    }
}

fn redraw(
    views: &[DeviceView],
    progress: &Progress,
    title: &str,
    elapsed: Duration,
    previous_lines: usize,
    goal: &impl Fn(&DeviceView) -> bool,
) -> usize {
    let mut out = String::new();
    if previous_lines > 0 {
        out.push_str(&format!("\x1b[{previous_lines}A"));
    }
    let mut lines = Vec::new();
    let width = 30;
    let filled = progress.done * width / progress.total.max(1);
    lines.push(format!(
        "{title}  [{}{}] {}/{}  {:.1}s",
        "#".repeat(filled),
        " ".repeat(width - filled),
        progress.done,
        progress.total,
        elapsed.as_secs_f64()
    ));
    if views.len() <= 40 {
        for v in views {
            lines.push(format!(
                "  {:<12} {:<8} {:<6} {:<16} {}",
                v.id,
                v.version.as_deref().unwrap_or("-"),
                v.slot,
                v.update,
                v.last_check
            ));
        }
    } else {
        // A compact grid: one character per device, 64 per row.
        let cells: Vec<char> = views.iter().map(|v| cell(v, goal)).collect();
        for row in cells.chunks(64) {
            lines.push(format!("  {}", row.iter().collect::<String>()));
        }
        lines.push("  # done  v downloading  * rebooting/trial  . waiting  X stopped".into());
    }
    for l in &lines {
        out.push_str("\x1b[2K");
        out.push_str(l);
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    lines.len()
}

/// Formats bytes for people.
pub fn bytes(n: u64) -> String {
    if n >= 10 * 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 10 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The table per device: version before and after, slot and its state, bytes downloaded
/// since `before` was taken, time from `since` to running the current version.
pub fn table(views: &[DeviceView], before: &[DeviceView], since: Instant) -> String {
    let mut out = format!(
        "  {:<12} {:>8} {:>8} {:<6} {:<8} {:>5} {:>10} {:>10} {:>11} {:>13}\n",
        "device",
        "before",
        "after",
        "slot",
        "state",
        "via",
        "downloaded",
        "http total",
        "update took",
        "failed trials"
    );
    for (v, before) in views.iter().zip(before) {
        let updated = match v.version_since {
            Some(t) if t >= since && before.version != v.version => {
                format!("{:.1}s", (t - since).as_secs_f64())
            }
            _ => "-".into(),
        };
        let via = match (&v.last_via, v.image_bytes > before.image_bytes) {
            (Some(via), true) => via.as_str(),
            _ => "-",
        };
        out.push_str(&format!(
            "  {:<12} {:>8} {:>8} {:<6} {:<8} {:>5} {:>10} {:>10} {:>11} {:>13}\n",
            v.id,
            before.version.as_deref().unwrap_or("-"),
            v.version.as_deref().unwrap_or("-"),
            v.slot,
            v.slot_state,
            via,
            bytes(v.image_bytes - before.image_bytes),
            bytes(v.bytes_received - before.bytes_received),
            updated,
            v.failed_trials - before.failed_trials,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(20 * 1024), "20.0 KiB");
        assert_eq!(bytes(30 * 1024 * 1024), "30.0 MiB");
    }
}
