//! The report as one self-contained HTML file: tables and an inline SVG chart of the
//! devices running each version over time. No scripts, fonts or images from anywhere:
//! it opens from disk, offline, in any browser.

use std::fmt::Write as _;

use super::report::Report;
use super::time;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours of the chart's series, distinguishable in print and for most colour vision.
const PALETTE: [&str; 8] = [
    "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000",
];

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// The chart: one line per version, devices on the y axis, time on the x axis.
pub fn chart(report: &Report) -> String {
    let times = &report.timeline_times;
    let (Some(&from), Some(&to)) = (times.first(), times.last()) else {
        return "<p>No device requests in the logs.</p>".to_owned();
    };
    let max = report
        .timeline
        .iter()
        .flat_map(|s| s.devices.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * (WIDTH - LEFT - RIGHT);
    let y = |n: u32| TOP + (1.0 - f64::from(n) / f64::from(max)) * (HEIGHT - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"devices per version over time\">"
    );
    // Axes with a few ticks.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#333\"/>",
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT
    );
    for i in 0..=4u32 {
        let n = max * i / 4;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{n}</text>\
             <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            LEFT - 6.0,
            y(n) + 4.0,
            y(n),
            WIDTH - RIGHT,
            y(n)
        );
    }
    for i in 0..=4i64 {
        let t = from + (to - from) * i / 4;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\" font-size=\"11\">{}</text>",
            x(t),
            HEIGHT - BOTTOM + 16.0,
            escape(&time::format(t))
        );
    }
    for (i, series) in report.timeline.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = times
            .iter()
            .zip(&series.devices)
            .map(|(&t, &n)| format!("{:.1},{:.1}", x(t), y(n)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" data-version=\"{v}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2.5\" points=\"{}\"><title>{v}</title></polyline>",
            points.join(" "),
            v = escape(&series.version)
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=\"legend\">");
    for (i, series) in report.timeline.iter().enumerate() {
        let _ = write!(
            legend,
            "<li><span style=\"background:{}\"></span>{} (now {})</li>",
            PALETTE[i % PALETTE.len()],
            escape(&series.version),
            series.devices.last().copied().unwrap_or(0)
        );
    }
    legend.push_str("</ul>");
    svg + &legend
}

fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;margin:8px 0 24px}th,td{border:1px solid #ccc;padding:3px 8px;\
text-align:left;font-size:13px}th{background:#f3f3f3}td.n{text-align:right}\
tr.silent td{color:#999}.legend{list-style:none;padding:0;display:flex;gap:16px;flex-wrap:wrap}\
.legend span{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:middle}\
.failed{color:#b00}";

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = String::new();
    let lines = &report.lines;
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Fleet status</title><style>{STYLE}</style></head><body>\
         <h1>Fleet status</h1><p id=\"summary\">{} devices, {} silent (no request for {}; \
         checks every {}). {}. {} lines: {} device requests, {} from other clients, \
         {} malformed (skipped).</p><h2>Devices per version</h2>{}",
        report.devices.len(),
        report.silent_devices(),
        time::format_duration(report.silent_after_seconds),
        time::format_duration(report.interval_seconds),
        escape(&report.window_text()),
        lines.lines,
        lines.device_requests,
        lines.other_clients,
        lines.malformed,
        chart(report)
    );
    page.push_str(
        "<h2>Releases</h2><table id=\"releases\"><tr><th>Type</th><th>Release</th>\
         <th>Channel</th><th>Rollout</th><th>Devices</th><th>In rollout</th><th>Running</th>\
         <th>Downloaded, not running</th><th>Failed</th><th>Silent</th></tr>",
    );
    for r in &report.releases {
        page.push_str("<tr>");
        page.push_str(&cell(&r.device_type));
        page.push_str(&cell(&r.version));
        page.push_str(&cell(r.channel.as_deref().unwrap_or("-")));
        page.push_str(&cell(
            &r.rollout_percent
                .map_or("-".to_owned(), |p| format!("{p}%")),
        ));
        for n in [
            r.devices,
            r.in_rollout,
            r.running,
            r.downloaded_not_running,
            r.failed,
            r.silent,
        ] {
            let _ = write!(page, "<td class=\"n\">{n}</td>");
        }
        page.push_str("</tr>");
    }
    page.push_str(
        "</table><h2>Devices</h2><table id=\"devices\"><tr><th>Device</th><th>Type</th>\
         <th>Channel</th><th>Version</th><th>Slot</th><th>Last seen</th><th>Last result</th>\
         <th>Failed releases</th></tr>",
    );
    for d in &report.devices {
        page.push_str(if d.silent {
            "<tr class=\"silent\">"
        } else {
            "<tr>"
        });
        for text in [&d.id, &d.device_type, &d.channel, &d.version, &d.slot] {
            page.push_str(&cell(text));
        }
        page.push_str(&cell(&time::format(d.last_seen)));
        page.push_str(&cell(&d.last_result_text));
        let _ = write!(
            page,
            "<td class=\"failed\">{}</td></tr>",
            escape(&d.failed_releases.join(", "))
        );
    }
    page.push_str("</table></body></html>\n");
    page
}
