//! The self-contained HTML report: the report table, a chart of all clients' throughput
//! together (the report's `total.series`, from the common start), and inline SVG charts of each
//! client's throughput and CPU over time. No script, no external file: it opens anywhere,
//! offline.
//!
//! Throughput is charted for every client that wrote something: from its stats samples where
//! it sent any, otherwise as its average over its run (from the bytes and files it reported and
//! its start and end times), so that a seed client, which sends no periodic stats, has a line
//! too. CPU is charted from stats samples only.

use std::fmt::Write as _;

use crate::report::{Report, BYTES_PER_MB};

/// Line colours, cycled per client (colour-blind-friendly Okabe–Ito palette).
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// One line chart as inline SVG: `lines` are (label, points (x = seconds, y)).
fn svg_chart(title: &str, unit: &str, lines: &[(String, Vec<(f64, f64)>)]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 260.0, 60.0, 140.0, 30.0, 40.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let pts = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = nice_ceiling(y1);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| top + ph - (y / y1) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="18" font-weight="bold">{} ({})</text>"#,
        escape(title),
        escape(unit)
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let py = sy(y);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            left + pw,
            left - 6.0,
            py + 4.0,
            trim_number(y)
        );
    }
    // Enough decimals that the five time ticks differ.
    let decimals = if x1 - x0 >= 20.0 {
        0
    } else if x1 - x0 >= 2.0 {
        1
    } else {
        2
    };
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{x:.decimals$} s</text>"#,
            sx(x),
            top + ph + 16.0,
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for (i, (label, points)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" data-client="{l}" data-points="{n}" fill="none" stroke="{colour}" stroke-width="2" points="{p}"/>"#,
            l = escape(label),
            n = points.len(),
            p = path.join(" ")
        );
        for &(x, y) in points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"><title>{} at {:.1} s: {}</title></circle>"#,
                sx(x),
                sy(y),
                escape(label),
                x,
                trim_number(y)
            );
        }
        let ly = top + 14.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            left + pw + 12.0,
            ly - 4.0,
            left + pw + 30.0,
            ly,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// An RFC 3339 time as `YYYY-mm-dd HH:MM:SS` (as given if it does not parse).
fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn trim_number(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Seconds from `from` to `to` (both RFC 3339), if both parse.
fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

/// Each client's throughput line: its stats samples, or else its average over its run as two
/// points (start, end) from the bytes and files it reported.
fn throughput_lines(report: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    report
        .clients
        .iter()
        .filter_map(|c| {
            let pts: Vec<(f64, f64)> = match report.series.iter().find(|cs| cs.id == c.id) {
                Some(cs) => cs
                    .samples
                    .iter()
                    .map(|p| (p.t_s, p.throughput_mb_s))
                    .collect(),
                None if c.bytes_written > 0 && c.time_ran_s > 0.0 => {
                    let t0 = seconds_between(&report.start_time, c.start_time.as_deref()?)?;
                    vec![
                        (t0, c.throughput_mb_s),
                        (t0 + c.time_ran_s, c.throughput_mb_s),
                    ]
                }
                None => return None,
            };
            Some((format!("client {}", c.id), pts))
        })
        .collect()
}

/// The whole report as one HTML page.
pub(crate) fn render(report: &Report) -> String {
    let mut s = String::new();
    s.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>loadmon report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}",
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}",
        "th{background:#f3f3f3}td.l{text-align:left}",
        ".PASS{color:#0a7d2c}.ABORTED,.FAILED,.TIMED{color:#b00020}",
        "svg.chart{display:block;margin:1em 0}",
        "</style></head><body>\n"
    ));
    let t = &report.total;
    let _ = writeln!(
        s,
        "<h1>loadmon report</h1><p>Start {} · end {} · {} client(s), {} PASS · {} file(s), {:.1} MB written, {:.2} MB/s overall</p>",
        escape(&local_time(&report.start_time)),
        escape(&local_time(&report.end_time)),
        t.clients,
        t.passed,
        t.files_written,
        t.bytes_written as f64 / BYTES_PER_MB,
        t.throughput_mb_s
    );
    if let Some(line) = t.fleet_line() {
        let _ = writeln!(s, "<p id=\"fleet\">{}</p>", escape(&line));
    }
    s.push_str(concat!(
        "<table id=\"clients\"><thead><tr><th>Client</th><th>Status</th><th>Time ran (s)</th>",
        "<th>Files</th><th>File / chunk (MB)</th><th>Written (MB)</th><th>MB/s</th>",
        "<th>Avg CPU %</th><th>Avg MEM %</th><th>Peak RSS (MiB)</th>",
        "<th title=\"The most loadmon clients that shared the client's process at once during its run: MEM and RSS are that whole process's\">Clients in process</th>",
        "<th>Chunk p50 / p99 (ms)</th>",
        "<th>Heartbeats</th><th>Reason</th></tr></thead><tbody>\n"
    ));
    for c in &report.clients {
        let status = c.status.as_str();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"l {}\">{}</td><td>{:.2}</td><td>{}</td><td>{} / {}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            c.id,
            status.split(' ').next().unwrap_or(status),
            status,
            c.time_ran_s,
            c.files_written,
            c.file_size_mb,
            c.chunk_size_mb,
            c.bytes_written as f64 / BYTES_PER_MB,
            c.throughput_mb_s,
            c.cpu_avg_pct,
            c.mem_avg_pct,
            opt(c.rss_peak_bytes.map(|b| format!("{:.1}", b as f64 / BYTES_PER_MB))),
            opt(c.process_clients),
            opt(c.chunk_p50_ms.map(|v| format!("{v:.2}"))),
            opt(c.chunk_p99_ms.map(|v| format!("{v:.2}"))),
            c.heartbeats,
            escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table>\n");
    s.push_str(concat!(
        "<p><small>CPU: the CPU time of each client's own threads (100 % = one core), so ",
        "clients that share a process each show their own share. MEM and RSS: the whole ",
        "process's resident memory, shared by the clients in that process.</small></p>\n"
    ));
    if !t.series.is_empty() {
        let all: Vec<(f64, f64)> = t
            .series
            .iter()
            .map(|p| (p.t_s, p.throughput_mb_s))
            .collect();
        s.push_str(&svg_chart(
            "All clients together (seconds from the common start)",
            "MB/s",
            &[("all clients".to_string(), all)],
        ));
        s.push('\n');
    }
    let throughput = throughput_lines(report);
    if throughput.is_empty() {
        s.push_str("<p>No client sent stats or wrote data: no charts.</p>\n");
    } else {
        s.push_str(&svg_chart("Throughput per client", "MB/s", &throughput));
        s.push('\n');
        let cpu: Vec<(String, Vec<(f64, f64)>)> = report
            .series
            .iter()
            .map(|cs| {
                let pts = cs.samples.iter().map(|p| (p.t_s, p.cpu_pct)).collect();
                (format!("client {}", cs.id), pts)
            })
            .collect();
        if cpu.is_empty() {
            s.push_str("<p>No client sent CPU samples: no CPU chart.</p>\n");
        } else {
            s.push_str(&svg_chart("CPU per client", "%", &cpu));
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "<p><small>Generated by loadmon {}.</small></p></body></html>",
        crate::VERSION
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn axis_ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(0.42), 0.5);
    }

    #[test]
    fn a_chart_draws_every_point_of_every_line() {
        let svg = svg_chart(
            "t",
            "MB/s",
            &[
                ("a".into(), vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]),
                ("b<".into(), vec![(0.5, 0.5)]),
            ],
        );
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(r#"data-client="a" data-points="3""#));
        assert!(svg.contains("b&lt;"));
        assert!(!svg.contains("NaN"));
    }
}
