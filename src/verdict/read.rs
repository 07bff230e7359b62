//! How each metric of the registry is read from the merged data of a report (and, for the
//! fleet's latency over a window, from the fleet's 1-s interval histograms).

use std::collections::BTreeMap;

use super::metrics::{Latency, Metric, Source};
use crate::latency::{new_histogram, LatencyInterval, LatencySummary};
use crate::report::{ClientReport, Report};
use crate::series::{ClientSeries, TPUT_PERIOD_S};
use crate::units::BYTES_PER_MB;

/// What the evaluator reads at one check.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The report (a live snapshot, or the final report).
    pub report: &'a Report,
    /// Now, seconds since the server started (the report's series' clock).
    pub now_s: f64,
    /// The fleet's merged 1-s latency intervals (for the fleet's latency over a window; empty
    /// when there are none).
    pub fleet_intervals: &'a [LatencyInterval],
    /// Each started client's longest time without a heartbeat so far, seconds, exact (the
    /// server measures it from its records' heartbeat times: the longest gap between two, or
    /// the current one if longer).
    pub heartbeat_gaps: &'a BTreeMap<u32, f64>,
    /// Whether the run is over (the final check: every bucket is complete).
    pub is_final: bool,
}

/// A reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The value, in the metric's unit.
    Value(f64),
    /// Nothing to judge on, and why.
    NoData(String),
    /// A window not yet covered by the data (live): judged later.
    NotYet,
}

fn of(v: Option<f64>, why: &str) -> Read {
    v.filter(|v| v.is_finite())
        .map_or_else(|| Read::NoData(why.into()), Read::Value)
}

fn pick(s: &LatencySummary, l: Latency) -> f64 {
    match l {
        Latency::P50 => s.p50_ms,
        Latency::P90 => s.p90_ms,
        Latency::P99 => s.p99_ms,
        Latency::P999 => s.p999_ms,
        Latency::Max => s.max_ms,
    }
}

const NO_LATENCY: &str = "no client sent latency histograms";
const NO_RUN: &str = "no client ran";
const NO_PACE: &str = "no client was paced (--rate)";
const NO_VERIFY: &str = "no client verified its data (--verify)";

/// The fleet's figure over the run so far. `gaps`: each client's longest heartbeat gap seen.
pub fn fleet_run(m: &Metric, r: &Report, gaps: &BTreeMap<u32, f64>) -> Read {
    let t = &r.total;
    let ran = r.clients.iter().any(|c| c.time_ran_s > 0.0);
    match m.source {
        Source::Latency(l) => of(t.latency.as_ref().map(|s| pick(s, l)), NO_LATENCY),
        Source::MbS => of(ran.then_some(t.throughput_mb_s), NO_RUN),
        Source::HeartbeatGapS => of(
            gaps.values().copied().reduce(f64::max),
            "no heartbeat was checked",
        ),
        Source::Files => Read::Value(t.files_written as f64),
        Source::Bytes => Read::Value(t.bytes_written as f64),
        Source::CpuPct => Read::NoData("a client figure".into()),
        Source::ScheduleLagP99Ms => of(
            t.pace
                .as_ref()
                .and_then(|p| p.schedule_lag.as_ref())
                .map(|s| s.p99_ms),
            NO_PACE,
        ),
        Source::VerifyErrors => of(t.verify.as_ref().map(|v| v.errors_total as f64), NO_VERIFY),
        Source::NotYet(why) => Read::NoData(why.into()),
    }
}

/// The client a fleet figure of `m` comes from, where one client's can be named: for bad
/// blocks, the client with the most (the lowest id of those with as many). `None` for other
/// metrics and when no client has any.
pub fn fleet_client(m: &Metric, r: &Report) -> Option<u32> {
    match m.source {
        Source::VerifyErrors => r
            .clients
            .iter()
            .filter_map(|c| Some((c.id, c.verify.as_ref()?.errors_total)))
            .filter(|(_, n)| *n > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(id, _)| id),
        _ => None,
    }
}

/// Client `c`'s figure over its run so far.
pub fn client_run(m: &Metric, c: &ClientReport, gaps: &BTreeMap<u32, f64>) -> Read {
    let lat = |l: Latency| match l {
        Latency::P50 => c.chunk_p50_ms,
        Latency::P90 => c.chunk_p90_ms,
        Latency::P99 => c.chunk_p99_ms,
        Latency::P999 => c.chunk_p999_ms,
        Latency::Max => c.chunk_max_ms,
    };
    match m.source {
        Source::Latency(l) => of(lat(l), "the client sent no latency"),
        Source::MbS => of(
            (c.time_ran_s > 0.0).then_some(c.throughput_mb_s),
            "did not run",
        ),
        Source::CpuPct => of(
            (c.stats_reports > 0).then_some(c.cpu_avg_pct),
            "sent no stats",
        ),
        Source::HeartbeatGapS => of(gaps.get(&c.id).copied(), "no heartbeat was checked"),
        Source::Files => Read::Value(c.files_written as f64),
        Source::Bytes => Read::Value(c.bytes_written as f64),
        Source::ScheduleLagP99Ms => of(c.schedule_lag_p99_ms, NO_PACE),
        Source::VerifyErrors => of(
            c.verify.as_ref().map(|v| v.errors_total as f64),
            "did not verify its data (--verify)",
        ),
        Source::NotYet(why) => Read::NoData(why.into()),
    }
}

/// Seconds from the server's start to the report's common start (`total.tput`'s origin).
pub fn common_start_s(r: &Report) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(&r.start_time).ok()?;
    let common = chrono::DateTime::parse_from_rfc3339(r.total.common_start.as_deref()?).ok()?;
    let us = common.signed_duration_since(start).num_microseconds()?;
    Some(us as f64 / 1e6)
}

fn no_window(input: &Input, window_s: u32) -> Read {
    if input.is_final {
        Read::NoData(format!("the run had no full {window_s} s window"))
    } else {
        Read::NotYet
    }
}

/// The fleet's MiB/s over the last `window_s` of complete 1-s buckets: the buckets' rates
/// weighted by their widths (gaps, where no client reported, left out).
pub fn fleet_mb_s_window(input: &Input, window_s: u32) -> Read {
    let r = input.report;
    let Some(common_s) = common_start_s(r) else {
        return no_window(input, window_s);
    };
    // Live, the newest bucket may still lack a client's report for it.
    let last_complete = if input.is_final {
        f64::INFINITY
    } else {
        input.now_s - common_s - TPUT_PERIOD_S
    };
    let mut ends = Vec::new();
    let mut prev = 0.0;
    for b in &r.total.tput {
        if b.t_s > last_complete + 1e-9 {
            break;
        }
        ends.push((prev, b.t_s, b.throughput_mb_s));
        prev = b.t_s;
    }
    let w = f64::from(window_s);
    let Some(&(_, end, _)) = ends.last() else {
        return no_window(input, window_s);
    };
    if end + 1e-9 < w {
        return no_window(input, window_s);
    }
    let (mut mib, mut secs) = (0.0, 0.0);
    for &(lo, hi, rate) in ends.iter().filter(|(lo, _, _)| *lo + 1e-9 >= end - w) {
        if let Some(rate) = rate {
            mib += rate * (hi - lo);
            secs += hi - lo;
        }
    }
    if secs > 0.0 {
        Read::Value(mib / secs)
    } else {
        Read::Value(0.0)
    }
}

/// A client's MiB/s over the last `window_s` of its points: from the latest point at least
/// `window_s` before its newest to the newest (its `tput` points, or its stats samples for a
/// client that sends no `tput`).
pub fn client_mb_s_window(input: &Input, s: Option<&ClientSeries>, window_s: u32) -> Read {
    let points: Vec<(f64, u64)> = match s {
        Some(s) if !s.tput.is_empty() => s.tput.iter().map(|p| (p.t_s, p.bytes_written)).collect(),
        Some(s) => s.samples.iter().map(|p| (p.t_s, p.bytes_written)).collect(),
        None => Vec::new(),
    };
    let Some(&(t1, b1)) = points.last() else {
        return no_window(input, window_s);
    };
    let w = f64::from(window_s);
    let Some(&(t0, b0)) = points.iter().rev().find(|(t, _)| *t <= t1 - w + 1e-9) else {
        return no_window(input, window_s);
    };
    if t1 <= t0 {
        return no_window(input, window_s);
    }
    Read::Value(b1.saturating_sub(b0) as f64 / BYTES_PER_MB / (t1 - t0))
}

/// A client's mean %CPU over its stats samples of the last `window_s` (judged once its samples
/// span the window).
pub fn client_cpu_window(input: &Input, s: Option<&ClientSeries>, window_s: u32) -> Read {
    let samples = s.map_or(&[][..], |s| &s.samples[..]);
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return no_window(input, window_s);
    };
    let w = f64::from(window_s);
    if first.t_s > last.t_s - w + 1e-9 {
        return no_window(input, window_s);
    }
    let inside: Vec<f64> = samples
        .iter()
        .filter(|p| p.t_s > last.t_s - w + 1e-9)
        .map(|p| p.cpu_pct)
        .collect();
    if inside.is_empty() {
        return no_window(input, window_s);
    }
    Read::Value(inside.iter().sum::<f64>() / inside.len() as f64)
}

/// The fleet's latency figure `l` over the last `window_s` of complete intervals, their
/// histograms merged (exact).
pub fn fleet_latency_window(input: &Input, l: Latency, window_s: u32) -> Read {
    let iv = input.fleet_intervals;
    let last_complete = if input.is_final {
        f64::INFINITY
    } else {
        input.now_s - TPUT_PERIOD_S
    };
    let done: Vec<&LatencyInterval> = iv
        .iter()
        .filter(|i| i.start_s + i.width_s <= last_complete + 1e-9)
        .collect();
    let (Some(first), Some(last)) = (done.first(), done.last()) else {
        return no_window(input, window_s);
    };
    let end = last.start_s + last.width_s;
    let w = f64::from(window_s);
    if first.start_s > end - w + 1e-9 {
        return no_window(input, window_s);
    }
    let mut h = new_histogram();
    for i in done.iter().filter(|i| i.start_s + 1e-9 >= end - w) {
        if h.add(&i.hist).is_err() {
            return Read::NoData("the window's counts overflow".into());
        }
    }
    match LatencySummary::of(&h) {
        Some(s) => Read::Value(pick(&s, l)),
        None => Read::Value(0.0),
    }
}
