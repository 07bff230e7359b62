//! The page of a small run (up to [`STATIC_MAX_CLIENTS`](super::STATIC_MAX_CLIENTS) clients):
//! every row, and one chart with every client's line; no script.

use std::fmt::Write as _;

use super::chart::{fleet_chart, latency_chart, svg_chart, Line};
use super::format::{escape, opt, seconds_between};
use super::page::{footer, head, CLIENT_COLUMNS, CPU_MEM_NOTE};
use crate::report::types::{ClientReport, Report};
use crate::units::BYTES_PER_MB;

/// The page of a small run: every row, and one chart with every client's line.
pub(super) fn render_static(report: &Report) -> String {
    let mut s = String::new();
    head(&mut s, report, "");
    let _ = writeln!(
        s,
        "<table id=\"clients\"><thead>{CLIENT_COLUMNS}</thead><tbody>"
    );
    for c in &report.clients {
        client_row(&mut s, c);
    }
    s.push_str("</tbody></table>\n");
    s.push_str(CPU_MEM_NOTE);
    fleet_chart(&mut s, report);
    latency_chart(&mut s, report);
    client_charts(&mut s, report);
    footer(&mut s);
    s
}

/// One client's row of the table.
fn client_row(s: &mut String, c: &ClientReport) {
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

/// The throughput chart of every client, and the CPU chart of those that sent samples.
fn client_charts(s: &mut String, report: &Report) {
    let throughput = throughput_lines(report);
    if throughput.is_empty() {
        s.push_str("<p>No client sent stats or wrote data: no charts.</p>\n");
    } else {
        s.push_str(&svg_chart("Throughput per client", "MB/s", &throughput));
        s.push('\n');
        let cpu: Vec<Line> = report
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
}

/// Each client's throughput line: its stats samples, or else its average over its run as two
/// points (start, end) from the bytes and files it reported.
fn throughput_lines(report: &Report) -> Vec<Line> {
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
