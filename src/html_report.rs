//! The self-contained HTML report. No external file: it opens anywhere, offline.
//!
//! Up to [`STATIC_MAX_CLIENTS`] clients the page is static, without a script: the report
//! table, a chart of all clients' throughput together (the report's `total.series`, from the
//! common start), and inline SVG charts of each client's throughput and CPU over time.
//! Throughput is charted for every client that wrote something: from its stats samples where
//! it sent any, otherwise as its average over its run (from the bytes and files it reported and
//! its start and end times), so that a seed client, which sends no periodic stats, has a line
//! too. CPU is charted from stats samples only.
//!
//! Above that the page stays small and usable however many clients ran (under 4 MB at 10,000
//! clients, where one chart per client made 50 MB and more): a summary drawn statically
//! (clients by status; min, 10th percentile, median, 90th percentile and max of each figure
//! across the clients), the fleet charts (all clients together, and the spread of per-client
//! throughput and CPU over time), then the per-client table a page of 100 rows at a time
//! (filter by status, search, sort by any column) and one client's detail and charts when it
//! is opened (`report.html#client-<id>`), drawn by a small inline script from compact data the
//! page embeds: each client's row, and its series kept to a budget of points (all 96 up to
//! about 3,500 clients), 12 bits per value. The JSON and CSV reports keep everything exact.

use std::fmt::Write as _;

use crate::report::Report;
use crate::series::{ClientSeries, Sample};
use crate::units::BYTES_PER_MB;

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

/// Up to this many clients the page is static (every row, every client's line in one
/// chart, no script); above it the page is the paged one (see the module docs).
pub(crate) const STATIC_MAX_CLIENTS: usize = 50;

/// Bytes of per-client series a paged page embeds, about: each client keeps at most
/// `SERIES_BUDGET_BYTES / (6 × clients)` points (6 characters a point), 16 to all 96.
const SERIES_BUDGET_BYTES: usize = 2_000_000;

/// Longest reason the paged page keeps per client (characters; the JSON and CSV reports keep
/// it whole).
const REASON_MAX_CHARS: usize = 200;

/// The page's style, both kinds.
const STYLE: &str = concat!(
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}",
    "table{border-collapse:collapse;margin:1em 0}",
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}",
    "th{background:#f3f3f3}td.l{text-align:left}",
    ".PASS{color:#0a7d2c}.ABORTED,.FAILED,.TIMED{color:#b00020}",
    "svg.chart{display:block;margin:1em 0}",
);

/// The whole report as one HTML page: static up to [`STATIC_MAX_CLIENTS`] clients, paged
/// above.
pub(crate) fn render(report: &Report) -> String {
    if report.clients.len() <= STATIC_MAX_CLIENTS {
        render_static(report)
    } else {
        render_paged(report)
    }
}

/// The page's head and the report's first lines (times, totals, the fleet line).
fn head(s: &mut String, report: &Report, extra_style: &str) {
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>loadmon report</title><style>{STYLE}{extra_style}</style></head><body>\n"
    );
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
}

/// The per-client table's header row (both kinds of page).
const CLIENT_COLUMNS: &str = concat!(
    "<tr><th>Client</th><th>Status</th><th>Time ran (s)</th>",
    "<th>Files</th><th>File / chunk (MB)</th><th>Written (MB)</th><th>MB/s</th>",
    "<th>Avg CPU %</th><th>Avg MEM %</th><th>Peak RSS (MiB)</th>",
    "<th title=\"The most loadmon clients that shared the client's process at once during its run: MEM and RSS are that whole process's\">Clients in process</th>",
    "<th>Chunk p50 / p99 (ms)</th>",
    "<th>Heartbeats</th><th>Reason</th></tr>",
);

const CPU_MEM_NOTE: &str = concat!(
    "<p><small>CPU: the CPU time of each client's own threads (100 % = one core), so ",
    "clients that share a process each show their own share. MEM and RSS: the whole ",
    "process's resident memory, shared by the clients in that process.</small></p>\n"
);

/// The all-clients chart (the report's `total.series`), if there is one.
fn fleet_chart(s: &mut String, report: &Report) {
    let t = &report.total;
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
}

fn footer(s: &mut String) {
    let _ = writeln!(
        s,
        "<p><small>Generated by loadmon {}.</small></p></body></html>",
        crate::VERSION
    );
}

/// The page of a small run: every row, and one chart with every client's line.
fn render_static(report: &Report) -> String {
    let mut s = String::new();
    head(&mut s, report, "");
    let _ = writeln!(
        s,
        "<table id=\"clients\"><thead>{CLIENT_COLUMNS}</thead><tbody>"
    );
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
    s.push_str(CPU_MEM_NOTE);
    fleet_chart(&mut s, report);
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
    footer(&mut s);
    s
}

/// The page of a large run: a summary (clients by status, the spread of each figure across
/// the clients) and fleet charts drawn statically, then the per-client table a page at a time
/// and one client's charts when it is opened, drawn by a small inline script from data the
/// page embeds (each client's series kept to a budget of points).
fn render_paged(report: &Report) -> String {
    let mut s = String::new();
    head(
        &mut s,
        report,
        concat!(
            "th.sortable{cursor:pointer}#controls{margin:1em 0}#controls *{margin-right:.6em}",
            "#detail{border:1px solid #999;padding:0 1em;margin:1em 0;background:#fafafa}",
            "table.fields th{text-align:left}"
        ),
    );
    summary_tables(&mut s, report);
    s.push_str("<h2>Fleet charts</h2>\n");
    fleet_chart(&mut s, report);
    let bands = |f: fn(&Sample) -> f64| fleet_bands(&report.series, f);
    let throughput = bands(|p| p.throughput_mb_s);
    if throughput.is_empty() {
        s.push_str("<p>No client sent stats: no per-client spread charts.</p>\n");
    } else {
        s.push_str(&svg_chart(
            "Throughput per client across the fleet: the spread",
            "MB/s",
            &throughput,
        ));
        s.push('\n');
        s.push_str(&svg_chart(
            "CPU per client across the fleet: the spread",
            "%",
            &bands(|p| p.cpu_pct),
        ));
        s.push('\n');
        s.push_str(concat!(
            "<p><small>At each moment, the slowest, the 10th percentile, the median, the 90th ",
            "percentile and the fastest of the clients running then (from their stats samples).",
            "</small></p>\n"
        ));
    }
    s.push_str(CPU_MEM_NOTE);
    let _ = writeln!(
        s,
        "<h2>Clients</h2>\n<noscript><p>The per-client table and charts need JavaScript; the \
         CSV and JSON reports have every client.</p></noscript>\n<div id=\"controls\">\
         <select id=\"status-filter\" aria-label=\"status\"></select>\
         <input id=\"search\" type=\"search\" placeholder=\"client id, reason or peer\" \
         aria-label=\"search\"><button id=\"prev\" type=\"button\">previous</button>\
         <button id=\"next\" type=\"button\">next</button><span id=\"pager-text\"></span></div>\n\
         <div id=\"detail\" hidden></div>\n\
         <table id=\"clients\"><thead>{CLIENT_COLUMNS}</thead><tbody></tbody></table>"
    );
    s.push_str("<script type=\"application/json\" id=\"loadmon-data\">");
    s.push_str(&page_data(report));
    s.push_str("</script>\n<script>\n");
    s.push_str(PAGE_SCRIPT);
    s.push_str("</script>\n");
    footer(&mut s);
    s
}

/// The paged page's script.
const PAGE_SCRIPT: &str = include_str!("html_report.js");

/// Min, 10th percentile, median, 90th percentile and max of `v` (nearest rank); `None` for
/// no value.
fn spread(mut v: Vec<f64>) -> Option<[f64; 5]> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some([at(0.0), at(0.1), at(0.5), at(0.9), at(1.0)])
}

/// The summary of a paged page: clients by status, and the spread of each figure.
fn summary_tables(s: &mut String, report: &Report) {
    use crate::report::Status;
    s.push_str("<h2>Summary</h2>\n<table id=\"statuses\"><thead><tr><th>Status</th><th>Clients</th></tr></thead><tbody>\n");
    for status in [
        Status::Pass,
        Status::Failed,
        Status::TimedOut,
        Status::Aborted,
        Status::Running,
        Status::NotStarted,
    ] {
        let n = report.clients.iter().filter(|c| c.status == status).count();
        if n > 0 {
            let name = status.as_str();
            let _ = writeln!(
                s,
                "<tr><td class=\"l {}\">{name}</td><td>{n}</td></tr>",
                name.split(' ').next().unwrap_or(name)
            );
        }
    }
    s.push_str("</tbody></table>\n");
    s.push_str(concat!(
        "<table id=\"summary\"><thead><tr><th>Per client</th><th>Clients</th><th>Min</th>",
        "<th>10th pct</th><th>Median</th><th>90th pct</th><th>Max</th></tr></thead><tbody>\n"
    ));
    type Figure = fn(&crate::report::ClientReport) -> Option<f64>;
    let figures: [(&str, Figure); 10] = [
        ("Time ran (s)", |c| Some(c.time_ran_s)),
        ("Written (MB)", |c| {
            Some(c.bytes_written as f64 / BYTES_PER_MB)
        }),
        ("MB/s", |c| Some(c.throughput_mb_s)),
        ("Avg CPU %", |c| Some(c.cpu_avg_pct)),
        ("Avg MEM %", |c| Some(c.mem_avg_pct)),
        ("Peak RSS (MiB)", |c| {
            c.rss_peak_bytes.map(|b| b as f64 / BYTES_PER_MB)
        }),
        ("Chunk p50 (ms)", |c| c.chunk_p50_ms),
        ("Chunk p99 (ms)", |c| c.chunk_p99_ms),
        ("Heartbeats", |c| Some(c.heartbeats as f64)),
        ("Clients in process", |c| c.process_clients.map(f64::from)),
    ];
    for (name, f) in figures {
        let values: Vec<f64> = report.clients.iter().filter_map(f).collect();
        let n = values.len();
        let cells = spread(values).map_or_else(
            || "<td>–</td>".repeat(5),
            |q| {
                q.iter()
                    .map(|v| format!("<td>{}</td>", trim_number(*v)))
                    .collect()
            },
        );
        let _ = writeln!(s, "<tr><th>{name}</th><td>{n}</td>{cells}</tr>");
    }
    s.push_str("</tbody></table>\n");
}

/// The spread of one figure across the clients over time: at each of up to 96 moments from
/// the first sample to the last, the min, 10th percentile, median, 90th percentile and max
/// over the clients running then (a client's value at a moment is that of its first sample
/// at or after it). Empty if no client has a sample.
fn fleet_bands(
    series: &[ClientSeries],
    field: fn(&Sample) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let with: Vec<&ClientSeries> = series.iter().filter(|c| !c.samples.is_empty()).collect();
    let first = with
        .iter()
        .map(|c| c.samples[0].t_s)
        .fold(f64::INFINITY, f64::min);
    let last = with
        .iter()
        .filter_map(|c| c.samples.last().map(|p| p.t_s))
        .fold(f64::NEG_INFINITY, f64::max);
    if !(first.is_finite() && last.is_finite()) {
        return Vec::new();
    }
    let steps = crate::series::MAX_TOTAL_SAMPLES;
    let mut cursor = vec![0usize; with.len()];
    let names = ["max", "90th percentile", "median", "10th percentile", "min"];
    let mut lines: Vec<(String, Vec<(f64, f64)>)> =
        names.iter().map(|n| (n.to_string(), Vec::new())).collect();
    for k in 0..steps {
        let t = if last > first {
            first + (last - first) * k as f64 / (steps - 1) as f64
        } else {
            first
        };
        let mut values = Vec::new();
        for (c, at) in with.iter().zip(cursor.iter_mut()) {
            let p = &c.samples;
            if t < p[0].t_s || t > p[p.len() - 1].t_s {
                continue;
            }
            while *at + 1 < p.len() && p[*at].t_s < t {
                *at += 1;
            }
            values.push(field(&p[*at]));
        }
        if let Some(q) = spread(values) {
            for (line, v) in lines.iter_mut().zip(q.iter().rev()) {
                line.1.push((t, *v));
            }
        }
        if last <= first {
            break;
        }
    }
    lines
}

/// A client's series kept to `max_points`: the first point, then the rest merged in runs of
/// equal length, each run's throughput and CPU its time-weighted average, at its last
/// point's time. `(t_s, MB/s, CPU %)`.
fn downsample(samples: &[Sample], max_points: usize) -> Vec<(f64, f64, f64)> {
    let point = |p: &Sample| (p.t_s, p.throughput_mb_s, p.cpu_pct);
    if samples.len() <= max_points || max_points < 2 {
        return samples.iter().map(point).collect();
    }
    let run = (samples.len() - 1).div_ceil(max_points - 1);
    let mut out = vec![point(&samples[0])];
    let mut before = 0;
    while before + 1 < samples.len() {
        let end = (before + run).min(samples.len() - 1);
        let (mut w, mut tp, mut cpu) = (0.0, 0.0, 0.0);
        for i in before + 1..=end {
            let dt = (samples[i].t_s - samples[i - 1].t_s).max(0.0);
            w += dt;
            tp += dt * samples[i].throughput_mb_s;
            cpu += dt * samples[i].cpu_pct;
        }
        let last = &samples[end];
        out.push(if w > 0.0 {
            (last.t_s, tp / w, cpu / w)
        } else {
            point(last)
        });
        before = end;
    }
    out
}

/// 12 bits as two characters of the URL-safe base64 alphabet.
fn push_12_bits(out: &mut String, v: f64) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let q = if v.is_finite() {
        v.clamp(0.0, 4095.0).round() as usize
    } else {
        0
    };
    out.push(char::from(B64[q >> 6]));
    out.push(char::from(B64[q & 63]));
}

/// A number rounded to `decimals` for the page's data (`None` for a non-finite one).
fn round(v: f64, decimals: i32) -> serde_json::Value {
    let m = 10f64.powi(decimals);
    serde_json::Number::from_f64((v * m).round() / m).map_or(serde_json::Value::Null, Into::into)
}

/// The data the paged page's script reads: one row per client (the columns are named in
/// `cols`), each with its series encoded 6 characters a point (time over the run's length,
/// MB/s and CPU over the client's maxima, 12 bits each). `<` is escaped, so the text can sit
/// in a `<script>` element whatever a peer sent.
fn page_data(report: &Report) -> String {
    use serde_json::{json, Value};
    let with_series = report
        .series
        .iter()
        .filter(|c| !c.samples.is_empty())
        .count()
        .max(1);
    let points = (SERIES_BUDGET_BYTES / (6 * with_series)).clamp(16, crate::series::MAX_SAMPLES);
    let t_max = report
        .series
        .iter()
        .filter_map(|c| c.samples.last().map(|p| p.t_s))
        .fold(0.0, f64::max);
    let t_max = if t_max > 0.0 { t_max } else { 1.0 };
    let series: std::collections::HashMap<u32, &ClientSeries> =
        report.series.iter().map(|c| (c.id, c)).collect();
    let offset = |t: Option<&str>| -> Value {
        t.and_then(|t| seconds_between(&report.start_time, t))
            .map_or(Value::Null, |s| round(s, 2))
    };
    let mib = |b: Option<u64>| b.map_or(Value::Null, |b| round(b as f64 / BYTES_PER_MB, 1));
    let opt2 = |v: Option<f64>| v.map_or(Value::Null, |v| round(v, 2));
    let clients: Vec<Value> = report
        .clients
        .iter()
        .map(|c| {
            let pts = series
                .get(&c.id)
                .map(|s| downsample(&s.samples, points))
                .unwrap_or_default();
            let tp_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
            let cpu_max = pts.iter().map(|p| p.2).fold(0.0, f64::max);
            let mut enc = String::with_capacity(pts.len() * 6);
            for (t, tp, cpu) in &pts {
                push_12_bits(&mut enc, t / t_max * 4095.0);
                push_12_bits(
                    &mut enc,
                    if tp_max > 0.0 {
                        tp / tp_max * 4095.0
                    } else {
                        0.0
                    },
                );
                push_12_bits(
                    &mut enc,
                    if cpu_max > 0.0 {
                        cpu / cpu_max * 4095.0
                    } else {
                        0.0
                    },
                );
            }
            let reason = c.reason.as_deref().map(|r| {
                let mut short: String = r.chars().take(REASON_MAX_CHARS).collect();
                if short.len() < r.len() {
                    short.push('…');
                }
                short
            });
            json!([
                c.id,
                c.status.as_str(),
                round(c.time_ran_s, 2),
                c.files_written,
                c.file_size_mb,
                c.chunk_size_mb,
                round(c.bytes_written as f64 / BYTES_PER_MB, 1),
                round(c.throughput_mb_s, 2),
                round(c.cpu_avg_pct, 2),
                opt2(c.cpu_core_avg_pct),
                round(c.mem_avg_pct, 2),
                mib(c.rss_peak_bytes),
                c.process_clients,
                opt2(c.chunk_p50_ms),
                opt2(c.chunk_p99_ms),
                c.heartbeats,
                c.stats_reports,
                reason,
                c.peer,
                c.protocol_version,
                offset(c.start_time.as_deref()),
                offset(c.end_time.as_deref()),
                round(tp_max, 3),
                round(cpu_max, 3),
                enc,
            ])
        })
        .collect();
    let data = json!({
        "cols": [
            "id", "status", "time_ran_s", "files_written", "file_size_mb", "chunk_size_mb",
            "written_mb", "throughput_mb_s", "cpu_avg_pct", "cpu_core_avg_pct", "mem_avg_pct",
            "rss_peak_mib", "process_clients", "chunk_p50_ms", "chunk_p99_ms", "heartbeats",
            "stats_reports", "reason", "peer", "protocol_version", "start_s", "end_s", "tp_max",
            "cpu_max", "series"
        ],
        "t_max": t_max,
        "points": points,
        "clients": clients,
    });
    // Serialising plain values cannot fail.
    serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
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

    fn sample(t_s: f64, throughput_mb_s: f64, cpu_pct: f64) -> Sample {
        Sample {
            t_s,
            bytes_written: 0,
            throughput_mb_s,
            cpu_pct,
            mem_pct: 0.0,
            rss_bytes: None,
        }
    }

    #[test]
    fn a_downsampled_series_keeps_the_time_weighted_averages() {
        // 1 s at 10 MB/s, then 3 s at 30: merged, 25 MB/s over the 4 s.
        let s = [
            sample(1.0, 5.0, 1.0),
            sample(2.0, 10.0, 10.0),
            sample(5.0, 30.0, 50.0),
            sample(6.0, 8.0, 0.0),
        ];
        let d = downsample(&s, 3);
        assert_eq!(d, [(1.0, 5.0, 1.0), (5.0, 25.0, 40.0), (6.0, 8.0, 0.0)]);
        assert_eq!(downsample(&s, 96).len(), 4, "short series are kept whole");
        let long: Vec<Sample> = (0..96).map(|i| sample(f64::from(i), 1.0, 2.0)).collect();
        let d = downsample(&long, 33);
        assert!(d.len() <= 33, "{}", d.len());
        assert_eq!(d.last().unwrap().0, 95.0, "the run is covered to its end");
        assert!(d.iter().all(|p| p.1 == 1.0 && p.2 == 2.0));
    }

    #[test]
    fn the_spread_across_clients_is_drawn_per_moment() {
        let series: Vec<ClientSeries> = (0..10)
            .map(|i| ClientSeries {
                id: i,
                samples: vec![
                    sample(1.0, f64::from(i), 0.0),
                    sample(2.0, f64::from(i), 0.0),
                ],
            })
            .collect();
        let lines = fleet_bands(&series, |p| p.throughput_mb_s);
        let names: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            names,
            ["max", "90th percentile", "median", "10th percentile", "min"]
        );
        assert_eq!(lines[0].1[0], (1.0, 9.0));
        assert_eq!(lines[4].1[0], (1.0, 0.0));
        assert!(fleet_bands(&[], |p| p.cpu_pct).is_empty());
    }

    #[test]
    fn page_data_cannot_close_its_script_element() {
        let data = r#"</script><!-- "#;
        let report = crate::report::Report::from_json(&format!(
            r#"{{"start_time":"2026-11-25T10:00:00+00:00","end_time":"2026-11-25T10:00:20+00:00",
            "clients":[{{"id":1,"status":"FAILED","time_ran_s":1.0,"cpu_avg_pct":0.0,
            "mem_avg_pct":0.0,"files_written":0,"file_size_mb":1,"chunk_size_mb":1,
            "heartbeats":0,"stats_reports":0,"bytes_written":0,"throughput_mb_s":0.0,
            "reason":{},"peer":null,"protocol_version":null,"start_time":null,"end_time":null,
            "cpu_core_avg_pct":null,"rss_avg_bytes":null,"rss_peak_bytes":null,
            "chunk_p50_ms":null,"chunk_p99_ms":null,"last_heartbeat_age_s":null}}],
            "total":{{"clients":1,"passed":0,"files_written":0,"bytes_written":0,
            "throughput_mb_s":0.0,"first_done":null,"last_done":null}}}}"#,
            serde_json::to_string(&data.repeat(100)).unwrap()
        ))
        .unwrap();
        let text = page_data(&report);
        assert!(!text.contains('<'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let reason = v["clients"][0][17].as_str().unwrap();
        assert!(
            reason.starts_with(data) && reason.ends_with('…'),
            "{reason}"
        );
        assert_eq!(reason.chars().count(), REASON_MAX_CHARS + 1);
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
