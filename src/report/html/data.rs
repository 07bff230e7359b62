//! The data the paged page's script reads (`page.js`): one row per client, each column named
//! once in [`COLUMNS`], and each client's series kept to a budget of points and encoded 12
//! bits a value.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::format::seconds_between;
use crate::report::types::{ClientReport, Report};
use crate::series::{ClientSeries, Sample};
use crate::units::BYTES_PER_MB;

/// Bytes of per-client series a paged page embeds, about: each client keeps at most
/// `SERIES_BUDGET_BYTES / (6 × clients)` points (6 characters a point), 16 to all 96.
const SERIES_BUDGET_BYTES: usize = 2_000_000;

/// Longest reason the paged page keeps per client (characters; the JSON and CSV reports keep
/// it whole).
const REASON_MAX_CHARS: usize = 200;

/// One client as the page's columns read it: its row, the report's start (for the start and
/// end offsets) and its series encoded, with the series' maxima.
struct Row<'a> {
    c: &'a ClientReport,
    /// The report's start (RFC 3339).
    start: &'a str,
    /// The series, 6 characters a point (see [`encode`]).
    series: String,
    /// The series' highest MB/s and CPU %.
    tp_max: f64,
    cpu_max: f64,
}

/// A column of the page's data.
type Column = (&'static str, fn(&Row<'_>) -> Value);

/// The page's columns in order: each one's name (the script finds a column by its name) and
/// its value.
const COLUMNS: [Column; 26] = [
    ("id", |r| r.c.id.into()),
    ("status", |r| r.c.status.as_str().into()),
    ("time_ran_s", |r| round(r.c.time_ran_s, 2)),
    ("files_written", |r| r.c.files_written.into()),
    ("file_size_mb", |r| r.c.file_size_mb.into()),
    ("chunk_size_mb", |r| r.c.chunk_size_mb.into()),
    ("written_mb", |r| {
        round(r.c.bytes_written as f64 / BYTES_PER_MB, 1)
    }),
    ("throughput_mb_s", |r| round(r.c.throughput_mb_s, 2)),
    ("cpu_avg_pct", |r| round(r.c.cpu_avg_pct, 2)),
    ("cpu_core_avg_pct", |r| opt2(r.c.cpu_core_avg_pct)),
    ("mem_avg_pct", |r| round(r.c.mem_avg_pct, 2)),
    ("rss_peak_mib", |r| mib(r.c.rss_peak_bytes)),
    ("process_clients", |r| r.c.process_clients.into()),
    ("chunk_p50_ms", |r| opt2(r.c.chunk_p50_ms)),
    ("chunk_p99_ms", |r| opt2(r.c.chunk_p99_ms)),
    ("heartbeats", |r| r.c.heartbeats.into()),
    ("stats_reports", |r| r.c.stats_reports.into()),
    ("reason", |r| short_reason(r.c.reason.as_deref()).into()),
    ("peer", |r| r.c.peer.clone().into()),
    ("protocol_version", |r| r.c.protocol_version.clone().into()),
    ("start_s", |r| offset(r.start, r.c.start_time.as_deref())),
    ("end_s", |r| offset(r.start, r.c.end_time.as_deref())),
    ("tp_max", |r| round(r.tp_max, 3)),
    ("cpu_max", |r| round(r.cpu_max, 3)),
    ("series", |r| r.series.clone().into()),
    ("host_io", |r| host_io(r.c)),
];

/// The host I/O figures of a client's row (`io` lines): util %, write await ms, queue depth,
/// device MB/s, I/O pressure some and full %, dirty and writeback MiB, each null when
/// unknown; null for a client without any.
fn host_io(c: &ClientReport) -> Value {
    let figures = [
        c.device_util_pct,
        c.device_write_await_ms,
        c.device_queue_depth,
        c.device_write_mb_s,
        c.io_pressure_some_pct,
        c.io_pressure_full_pct,
        c.dirty_bytes.map(|b| b as f64 / BYTES_PER_MB),
        c.writeback_bytes.map(|b| b as f64 / BYTES_PER_MB),
    ];
    if figures.iter().all(Option::is_none) {
        return Value::Null;
    }
    Value::Array(figures.iter().map(|v| opt2(*v)).collect())
}

/// The data the paged page's script reads: one row per client (the columns are named in
/// `cols`), each with its series encoded 6 characters a point (time over the run's length,
/// MB/s and CPU over the client's maxima, 12 bits each). `<` is escaped, so the text can sit
/// in a `<script>` element whatever a peer sent.
pub(super) fn page_data(report: &Report) -> String {
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
    let series: HashMap<u32, &ClientSeries> = report.series.iter().map(|c| (c.id, c)).collect();
    let clients: Vec<Value> = report
        .clients
        .iter()
        .map(|c| {
            let pts = series
                .get(&c.id)
                .map(|s| downsample(&s.samples, points))
                .unwrap_or_default();
            let (series, tp_max, cpu_max) = encode(&pts, t_max);
            let row = Row {
                c,
                start: &report.start_time,
                series,
                tp_max,
                cpu_max,
            };
            Value::Array(COLUMNS.iter().map(|(_, value)| value(&row)).collect())
        })
        .collect();
    let cols: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    let data = json!({
        "cols": cols,
        "t_max": t_max,
        "points": points,
        "clients": clients,
    });
    // Serialising plain values cannot fail.
    serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
}

/// A downsampled series (`(t_s, MB/s, CPU %)`) encoded 6 characters a point: time over the
/// run's length `t_max`, MB/s and CPU over the series' maxima, 12 bits each; with those
/// maxima.
fn encode(pts: &[(f64, f64, f64)], t_max: f64) -> (String, f64, f64) {
    let tp_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let cpu_max = pts.iter().map(|p| p.2).fold(0.0, f64::max);
    let scaled = |v: f64, max: f64| if max > 0.0 { v / max * 4095.0 } else { 0.0 };
    let mut enc = String::with_capacity(pts.len() * 6);
    for (t, tp, cpu) in pts {
        push_12_bits(&mut enc, t / t_max * 4095.0);
        push_12_bits(&mut enc, scaled(*tp, tp_max));
        push_12_bits(&mut enc, scaled(*cpu, cpu_max));
    }
    (enc, tp_max, cpu_max)
}

/// A reason cut to [`REASON_MAX_CHARS`] characters (and `…` if it was cut).
fn short_reason(reason: Option<&str>) -> Option<String> {
    reason.map(|r| {
        let mut short: String = r.chars().take(REASON_MAX_CHARS).collect();
        if short.len() < r.len() {
            short.push('…');
        }
        short
    })
}

/// Seconds from the report's `start` to `t` (RFC 3339), to the hundredth; null if either
/// does not parse.
fn offset(start: &str, t: Option<&str>) -> Value {
    t.and_then(|t| seconds_between(start, t))
        .map_or(Value::Null, |s| round(s, 2))
}

/// Bytes in MiB to a tenth; null for none.
fn mib(b: Option<u64>) -> Value {
    b.map_or(Value::Null, |b| round(b as f64 / BYTES_PER_MB, 1))
}

/// A value to the hundredth; null for none.
fn opt2(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| round(v, 2))
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

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

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
}
