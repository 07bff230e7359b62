//! Bounded per-client time series of throughput, CPU and memory, kept by the server for the
//! dashboard's charts and the HTML report.
//!
//! A series holds at most [`MAX_SAMPLES`] points however long the run: when it is full, every
//! other point is dropped and from then on only every second sample is kept (then every fourth,
//! and so on), so the series always covers the whole run at an even resolution. Throughput is
//! recomputed between the points kept, so it stays the true average over each interval.
//!
//! A loadmon client also reports its bytes every second (`tput`): the server keeps those
//! reports as the client's 1-s throughput ([`TputPoint`], the report's `series[].tput`),
//! measured between reports, never interpolated; a final interval too short to measure is
//! folded into the one before, and missing reports are a gap. The fleet series adds the clients'
//! measured rates per 1-s bucket ([`FleetBucket`], the report's `total.tput`), each bucket
//! saying how many clients reported in it.
//!
//! The all-clients series ([`TotalSample`], the report's `total.series`) sums every client's
//! bytes per time bucket from the common start: each client's bytes over time are its points
//! (its start, its stats samples, its end) joined by straight lines, read at each bucket's
//! edges and added up; a bucket's throughput is the growth of that sum over the bucket.

use serde::{Deserialize, Serialize};

mod io;
mod tput;

pub use io::*;
pub use tput::*;

/// Most points kept per client. Points are stored in 32 bytes, so a series costs at most
/// 3 KiB: 30 MiB for 10,000 clients, however long the run.
pub const MAX_SAMPLES: usize = 96;

/// One point of a client's series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the server started.
    pub t_s: f64,
    /// Bytes written by then.
    pub bytes_written: u64,
    /// MiB/s over the interval since the previous point (since `start` for the first).
    pub throughput_mb_s: f64,
    /// %CPU the client reported (100 = one core).
    pub cpu_pct: f64,
    /// %MEM the client reported.
    pub mem_pct: f64,
    /// Resident memory the client reported, bytes (loadmon clients only).
    pub rss_bytes: Option<u64>,
}

/// One client's series, as the report and `/api/series` carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSeries {
    /// The client.
    pub id: u32,
    /// Its points, oldest first.
    pub samples: Vec<Sample>,
    /// Its 1-s throughput from its `tput` reports, oldest first (a loadmon client's; empty for
    /// a seed client or an older loadmon, whose throughput is in `samples`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tput: Vec<TputPoint>,
}

impl ClientSeries {
    /// Whether its throughput is best charted from its measured seconds (`tput`) rather than
    /// its stats samples: it sent `tput`, and that series is at least as fine (a stats period
    /// under a second gives more points from the samples, each one measured as well).
    pub fn throughput_from_tput(&self) -> bool {
        let measured = self
            .tput
            .iter()
            .filter(|p| p.throughput_mb_s.is_some())
            .count();
        measured > 0 && measured >= self.samples.len()
    }
}

/// One bucket of the all-clients series: every client's bytes added up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TotalSample {
    /// Seconds from the common start to the end of the bucket.
    pub t_s: f64,
    /// Bytes written by all clients by then.
    pub bytes_written: u64,
    /// MiB/s of all clients together over the bucket.
    pub throughput_mb_s: f64,
}

/// Most buckets in the all-clients series.
pub const MAX_TOTAL_SAMPLES: usize = 96;

/// Bucket widths the all-clients series picks from (seconds): the smallest that keeps it
/// within [`MAX_TOTAL_SAMPLES`]; beyond a day, whole days.
const BUCKET_WIDTHS_S: [f64; 17] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    21600.0, 86400.0,
];

/// The all-clients series being summed: [`TotalSeries::add`] each client's points, then
/// [`TotalSeries::finish`]. Memory: one number per bucket edge, whatever the number of clients.
#[derive(Debug)]
pub(crate) struct TotalSeries {
    from: f64,
    /// Bucket edges (seconds since the server started), `from` first.
    edges: Vec<f64>,
    /// Bytes of all clients at each edge (summed without overflow).
    bytes: Vec<u128>,
}

impl TotalSeries {
    /// Buckets from `from` (the common start) to `to` (seconds since the server started).
    pub(crate) fn new(from: f64, to: f64) -> Self {
        let span = to - from;
        let mut edges = Vec::new();
        if from.is_finite() && span.is_finite() && span > 0.0 {
            let want = span / MAX_TOTAL_SAMPLES as f64;
            let width = BUCKET_WIDTHS_S
                .iter()
                .copied()
                .find(|w| *w >= want)
                .unwrap_or_else(|| (want / 86400.0).ceil() * 86400.0);
            edges.push(from);
            let mut k = 1.0;
            // At most MAX_TOTAL_SAMPLES + 1 edges: the last bucket may be partial.
            while from + k * width < to && edges.len() <= MAX_TOTAL_SAMPLES {
                edges.push(from + k * width);
                k += 1.0;
            }
            edges.push(to);
        }
        TotalSeries {
            from,
            bytes: vec![0; edges.len()],
            edges,
        }
    }

    /// Adds one client's points (time since the server started, bytes so far), oldest first.
    /// Before its first point the client counts with its first point's bytes, after its last
    /// point with its last point's.
    /// At the last edge (the end of the span) every client counts with its last point's bytes:
    /// stored sample times are `f32`, so a last sample may sit a hair after the end.
    pub(crate) fn add(&mut self, points: impl IntoIterator<Item = (f64, u64)>) {
        let mut points = points.into_iter();
        let Some(mut a) = points.next() else { return };
        let mut b = points.next();
        let Some((_, inner)) = self.edges.split_last() else {
            return;
        };
        let Some((last_sum, inner_sums)) = self.bytes.split_last_mut() else {
            return;
        };
        for (edge, sum) in inner.iter().zip(inner_sums.iter_mut()) {
            // Move to the segment [a, b] that holds the edge.
            while let Some(p) = b {
                if p.0 > *edge {
                    break;
                }
                a = (p.0, p.1.max(a.1));
                b = points.next();
            }
            let at = match b {
                Some(p) if *edge > a.0 && p.0 > a.0 => {
                    let f = (*edge - a.0) / (p.0 - a.0);
                    a.1 as f64 + f * p.1.saturating_sub(a.1) as f64
                }
                _ => a.1 as f64,
            };
            *sum += at as u128;
        }
        let mut last = a.1;
        while let Some(p) = b {
            last = last.max(p.1);
            b = points.next();
        }
        *last_sum += u128::from(last);
    }

    /// The buckets.
    pub(crate) fn finish(self) -> Vec<TotalSample> {
        let clamp = |b: u128| u64::try_from(b).unwrap_or(u64::MAX);
        self.edges
            .windows(2)
            .zip(self.bytes.windows(2))
            .map(|(e, b)| TotalSample {
                t_s: e[1] - self.from,
                bytes_written: clamp(b[1]),
                throughput_mb_s: rate((e[0], clamp(b[0])), (e[1], clamp(b[1]))),
            })
            .collect()
    }
}

/// A point as stored: 32 bytes instead of [`Sample`]'s 56 (times and percentages in `f32`
/// keep 7 significant digits; a time of day to the millisecond for runs of days).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stored {
    t_s: f32,
    throughput_mb_s: f32,
    cpu_pct: f32,
    mem_pct: f32,
    bytes_written: u64,
    /// `u64::MAX` for none.
    rss_bytes: u64,
}

impl Stored {
    fn new(s: &Sample, throughput_mb_s: f64) -> Self {
        Stored {
            t_s: s.t_s as f32,
            throughput_mb_s: throughput_mb_s as f32,
            cpu_pct: s.cpu_pct as f32,
            mem_pct: s.mem_pct as f32,
            bytes_written: s.bytes_written,
            rss_bytes: s.rss_bytes.unwrap_or(u64::MAX),
        }
    }

    fn sample(&self) -> Sample {
        Sample {
            t_s: widen(self.t_s),
            bytes_written: self.bytes_written,
            throughput_mb_s: widen(self.throughput_mb_s),
            cpu_pct: widen(self.cpu_pct),
            mem_pct: widen(self.mem_pct),
            rss_bytes: (self.rss_bytes != u64::MAX).then_some(self.rss_bytes),
        }
    }
}

/// A stored `f32` as the `f64` of the same decimal: `102.42_f32` is `102.42`, not the
/// `102.41999816894531` a plain widening gives (the JSON report, `/api/series` and the faces
/// show the value that was stored, without float noise).
pub(super) fn widen(x: f32) -> f64 {
    // The shortest decimal that reads back as `x`, read as an f64.
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// A bounded series being recorded.
#[derive(Debug, Default)]
pub(crate) struct Series {
    samples: Vec<Stored>,
    /// (time, bytes) at `start`: the base of the first interval.
    origin: (f64, u64),
    /// (time, bytes) of the newest point kept (`origin` if none): the base of the next one.
    /// Kept here so that recording reads nothing from the points (a cache miss each time at
    /// thousands of clients).
    last: (f64, u64),
    /// Keep one sample in `stride`.
    stride: u32,
    /// Samples seen since the last one kept.
    seen: u32,
}

impl Series {
    /// Marks the start of the run at `t_s`.
    pub(crate) fn start(&mut self, t_s: f64, bytes_written: u64) {
        self.origin = (t_s, bytes_written);
        if self.samples.is_empty() {
            self.last = self.origin;
        }
    }

    /// Records a sample (throughput is filled in here); returns the throughput over the
    /// interval since the previous sample recorded (kept or not), for the live event.
    pub(crate) fn record(&mut self, s: Sample, previous: &mut (f64, u64)) -> f64 {
        let since_last = rate(*previous, (s.t_s, s.bytes_written));
        *previous = (s.t_s, s.bytes_written);
        self.stride = self.stride.max(1);
        self.seen += 1;
        if self.seen < self.stride {
            return since_last;
        }
        self.seen = 0;
        if self.samples.len() >= MAX_SAMPLES {
            thin(&mut self.samples, &mut self.stride);
            self.recompute();
            self.last = self
                .samples
                .last()
                .map_or(self.origin, |p| (f64::from(p.t_s), p.bytes_written));
        }
        let base = self.last;
        reserve_one(&mut self.samples);
        let point = Stored::new(&s, rate(base, (s.t_s, s.bytes_written)));
        self.last = (f64::from(point.t_s), point.bytes_written);
        self.samples.push(point);
        since_last
    }

    fn recompute(&mut self) {
        let mut base = self.origin;
        for p in &mut self.samples {
            let t = f64::from(p.t_s);
            p.throughput_mb_s = rate(base, (t, p.bytes_written)) as f32;
            base = (t, p.bytes_written);
        }
    }

    /// (time, bytes) at `start`: where the series begins.
    pub(crate) fn origin(&self) -> (f64, u64) {
        self.origin
    }

    /// Gives back the room reserved for points that will not come (a finished client).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.samples.shrink_to_fit();
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The points kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples.iter().map(Stored::sample).collect()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.samples.capacity()
    }
}

/// Thins a full series: keeps every other point, the newest included, and doubles `stride`
/// (the series then keeps one sample in twice as many), so that a bounded series still covers
/// the whole run at an even resolution.
pub(super) fn thin<T>(points: &mut Vec<T>, stride: &mut u32) {
    let mut i = 0;
    points.retain(|_| {
        i += 1;
        i % 2 == 0
    });
    *stride = stride.saturating_mul(2);
}

/// Room for one more point: the capacity grows by doubling, never past [`MAX_SAMPLES`].
pub(super) fn reserve_one<T>(points: &mut Vec<T>) {
    if points.len() == points.capacity() {
        let want = (points.capacity() * 2).clamp(4, MAX_SAMPLES);
        points.reserve_exact(want.saturating_sub(points.len()));
    }
}

/// MiB/s between two (time, bytes) points; 0 for an empty interval.
pub(super) fn rate(from: (f64, u64), to: (f64, u64)) -> f64 {
    let dt = to.0 - from.0;
    if dt <= 0.0 {
        return 0.0;
    }
    to.1.saturating_sub(from.1) as f64 / crate::units::BYTES_PER_MB / dt
}

#[cfg(test)]
mod tests;
