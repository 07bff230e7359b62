//! The page of a small run (up to [`STATIC_MAX_CLIENTS`](super::STATIC_MAX_CLIENTS) clients):
//! every row, and one chart with every client's line; no script.

use std::fmt::Write as _;

use super::chart::{fleet_chart, latency_chart, svg_chart, svg_chart_of, Line};
use super::format::{escape, opt, seconds_between};
use super::page::{footer, head, CLIENT_COLUMNS, CPU_MEM_NOTE};
use crate::report::types::{ClientReport, Report};
use crate::series::IoPoint;
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
    super::pace::pace_section(&mut s, report, true);
    super::verify::verify_section(&mut s, report, true);
    client_charts(&mut s, report);
    host_io(&mut s, report);
    footer(&mut s);
    s
}

// The host's I/O view (`io` lines).

/// One figure of a host I/O point.
type IoFigure = fn(&IoPoint) -> Option<f64>;

/// The host I/O table of the clients that sent `io` lines (their latest sample; "n/a" for a
/// figure the client could not measure) and their device's utilisation and write wait over
/// time, on the server's timeline.
fn host_io(s: &mut String, report: &Report) {
    if report.io_series.is_empty() {
        return;
    }
    s.push_str(concat!(
        "<h2>Host I/O</h2>\n<table id=\"host-io\"><thead><tr><th>Client</th>",
        "<th>Device util %</th><th>Write await (ms)</th><th>Queue depth</th>",
        "<th>Device MB/s</th><th>I/O pressure some / full %</th>",
        "<th>Dirty / writeback (MiB)</th></tr></thead><tbody>\n"
    ));
    let na =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}"));
    let mib = |b: Option<u64>| na(b.map(|b| b as f64 / BYTES_PER_MB), 1);
    for io in &report.io_series {
        let Some(c) = report.clients.iter().find(|c| c.id == io.id) else {
            continue;
        };
        let _ = writeln!(
            s,
            "<tr class=\"io\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{} / {}</td></tr>",
            c.id,
            na(c.device_util_pct, 1),
            na(c.device_write_await_ms, 2),
            na(c.device_queue_depth, 2),
            na(c.device_write_mb_s, 1),
            na(c.io_pressure_some_pct, 2),
            na(c.io_pressure_full_pct, 2),
            mib(c.dirty_bytes),
            mib(c.writeback_bytes)
        );
    }
    s.push_str("</tbody></table>\n");
    s.push_str(concat!(
        "<p><small>The latest sample of the block device under each client's data directory ",
        "and of its host, every second: n/a where the client could not measure it (no block ",
        "device under the directory, a kernel without I/O pressure).</small></p>\n"
    ));
    let lines = |f: IoFigure| -> Vec<Line> {
        report
            .io_series
            .iter()
            .map(|cs| {
                let pts: Vec<(f64, f64)> = cs
                    .samples
                    .iter()
                    .filter_map(|p| Some((p.t_s, f(p)?)))
                    .collect();
                (format!("client {}", cs.id), pts)
            })
            .filter(|(_, pts): &Line| !pts.is_empty())
            .collect()
    };
    let charts: [(&str, &str, IoFigure); 2] = [
        ("Device utilisation per client", "%", |p| p.util_pct),
        ("Device write await per client", "ms", |p| p.write_await_ms),
    ];
    for (title, unit, f) in charts {
        let l = lines(f);
        if !l.is_empty() {
            s.push_str(&svg_chart_of(title, unit, &l, "io"));
            s.push('\n');
        }
    }
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
            .filter(|cs| !cs.samples.is_empty())
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

/// Each client's throughput line: its measured seconds (`tput`, gaps as gaps) if it sent
/// them and they are the finer series, else its stats samples, or else its average over its run as two points (start, end)
/// from the bytes and files it reported.
fn throughput_lines(report: &Report) -> Vec<Line> {
    report
        .clients
        .iter()
        .filter_map(|c| {
            let pts: Vec<(f64, f64)> = match report.series.iter().find(|cs| cs.id == c.id) {
                Some(cs) if cs.throughput_from_tput() => cs
                    .tput
                    .iter()
                    .map(|p| (p.t_s, p.throughput_mb_s.unwrap_or(f64::NAN)))
                    .collect(),
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
