//! The paced clients' section (clients with a rate; the report's `total.pace`): its line, a
//! table of the paced clients (the static page only), and charts of the fleet's schedule lag
//! and response times over time. Nothing when no client was paced.

use std::fmt::Write as _;

use super::chart::{svg_chart_of, Line};
use super::format::{escape, opt};
use crate::latency::LatencyPoint;
use crate::report::types::Report;

/// The paced section: the text report's pace line, with `table` each paced client's row, and
/// the fleet's schedule lag (p50, p99, max) and response times (p50, p99, p99.9) over time.
pub(super) fn pace_section(s: &mut String, report: &Report, table: bool) {
    let (Some(p), Some(line)) = (&report.total.pace, report.total.pace_line()) else {
        return;
    };
    let _ = writeln!(
        s,
        "<h2>Paced writes</h2>\n<p id=\"pace\">{}</p>",
        escape(&line)
    );
    if table {
        pace_table(s, report);
    }
    let line = |points: &[LatencyPoint], label: &str, get: fn(&LatencyPoint) -> f64| -> Line {
        let pts = points.iter().map(|p| (p.t_s, get(p))).collect();
        (label.to_string(), pts)
    };
    for (title, points, lines) in [
        (
            "Schedule lag: how late chunks began, all paced clients merged (seconds since the \
             server started)",
            &p.schedule_lag_series,
            [
                ("p50", (|p| p.p50_ms) as fn(&LatencyPoint) -> f64),
                ("p99", |p| p.p99_ms),
                ("max", |p| p.max_ms),
            ],
        ),
        (
            "Chunk response time from the schedule (coordinated omission corrected), all paced \
             clients merged (seconds since the server started)",
            &p.response_series,
            [
                ("p50", |p| p.p50_ms),
                ("p99", |p| p.p99_ms),
                ("p99.9", |p| p.p999_ms),
            ],
        ),
    ] {
        if points.is_empty() {
            continue;
        }
        let lines: Vec<Line> = lines.iter().map(|(l, f)| line(points, l, *f)).collect();
        s.push_str(&svg_chart_of(title, "ms", &lines, "pace"));
        s.push('\n');
    }
}

/// One row per paced client: its target and what it reached, its schedule lag and response
/// times, whether it kept pace.
fn pace_table(s: &mut String, report: &Report) {
    s.push_str(concat!(
        "<table id=\"paced\"><thead><tr><th>Client</th><th>Target MB/s</th>",
        "<th>Reached MB/s</th><th>Schedule lag now / p99 / max (ms)</th>",
        "<th>Response p50 / p99 / max (ms)</th><th>Kept pace</th></tr></thead><tbody>\n"
    ));
    let ms = |v: Option<f64>| opt(v.map(|v| format!("{v:.2}")));
    for c in report
        .clients
        .iter()
        .filter(|c| c.pace_target_mb_s.is_some())
    {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{} / {} / {}</td><td>{} / {} / {}</td>\
             <td>{}</td></tr>",
            c.id,
            ms(c.pace_target_mb_s),
            c.throughput_mb_s,
            ms(c.schedule_lag_ms),
            ms(c.schedule_lag_p99_ms),
            ms(c.schedule_lag_max_ms),
            ms(c.response_p50_ms),
            ms(c.response_p99_ms),
            ms(c.response_max_ms),
            match c.kept_pace {
                Some(true) => "yes",
                Some(false) => "no: could not keep pace",
                None => "–",
            }
        );
    }
    s.push_str("</tbody></table>\n");
}
