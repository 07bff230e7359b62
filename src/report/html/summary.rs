//! The paged page's statically drawn summary: clients by status, the spread of each figure
//! across the clients, and the spread over time across the fleet.

use std::fmt::Write as _;

use super::chart::Line;
use super::format::trim_number;
use crate::report::types::{ClientReport, Report, Status};
use crate::series::{ClientSeries, Sample};
use crate::units::BYTES_PER_MB;

/// The summary of a paged page: clients by status, and the spread of each figure.
pub(super) fn summary_tables(s: &mut String, report: &Report) {
    status_table(s, report);
    figures_table(s, report);
}

/// How many clients ended in each status.
fn status_table(s: &mut String, report: &Report) {
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
}

/// The spread of each figure across the clients.
fn figures_table(s: &mut String, report: &Report) {
    s.push_str(concat!(
        "<table id=\"summary\"><thead><tr><th>Per client</th><th>Clients</th><th>Min</th>",
        "<th>10th pct</th><th>Median</th><th>90th pct</th><th>Max</th></tr></thead><tbody>\n"
    ));
    type Figure = fn(&ClientReport) -> Option<f64>;
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

/// The spread of one figure across the clients over time: at each of up to 96 moments from
/// the first sample to the last, the min, 10th percentile, median, 90th percentile and max
/// over the clients running then (a client's value at a moment is that of its first sample
/// at or after it). Empty if no client has a sample.
pub(super) fn fleet_bands(series: &[ClientSeries], field: fn(&Sample) -> f64) -> Vec<Line> {
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
    let mut lines: Vec<Line> = names.iter().map(|n| (n.to_string(), Vec::new())).collect();
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

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_spread_across_clients_is_drawn_per_moment() {
        let series: Vec<ClientSeries> = (0..10)
            .map(|i| ClientSeries {
                id: i,
                samples: vec![
                    sample(1.0, f64::from(i), 0.0),
                    sample(2.0, f64::from(i), 0.0),
                ],
                tput: Vec::new(),
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
}
