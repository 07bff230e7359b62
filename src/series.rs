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

use crate::hostio::HostIoSample;

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
fn widen(x: f32) -> f64 {
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
            // Keep every other point, newest included, and halve the rate of keeping.
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride = self.stride.saturating_mul(2);
            self.recompute();
            self.last = self
                .samples
                .last()
                .map_or(self.origin, |p| (f64::from(p.t_s), p.bytes_written));
        }
        let base = self.last;
        if self.samples.len() == self.samples.capacity() {
            // Grow by doubling, but never past the bound.
            let want = (self.samples.capacity() * 2).clamp(4, MAX_SAMPLES);
            self.samples.reserve_exact(want - self.samples.len());
        }
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

/// MiB/s between two (time, bytes) points; 0 for an empty interval.
fn rate(from: (f64, u64), to: (f64, u64)) -> f64 {
    let dt = to.0 - from.0;
    if dt <= 0.0 {
        return 0.0;
    }
    to.1.saturating_sub(from.1) as f64 / crate::units::BYTES_PER_MB / dt
}

// The host's I/O view over time (`io` lines; see `crate::hostio`).

/// One point of a client's host I/O series: a [`HostIoSample`] at a time on the server's
/// timeline; each figure `None` (JSON null) where the client could not measure it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IoPoint {
    /// Seconds since the server started (the client's stamp placed on the server's clock).
    pub t_s: f64,
    /// Utilisation of the device, %.
    pub util_pct: Option<f64>,
    /// Average write wait at the device, ms.
    pub write_await_ms: Option<f64>,
    /// Average queue depth of the device.
    pub queue_depth: Option<f64>,
    /// MiB/s written at the device.
    pub device_write_mb_s: Option<f64>,
    /// I/O pressure `some avg10`, %.
    pub psi_some_avg10_pct: Option<f64>,
    /// I/O pressure `full avg10`, %.
    pub psi_full_avg10_pct: Option<f64>,
    /// Dirty memory, bytes.
    pub dirty_bytes: Option<u64>,
    /// Memory under writeback, bytes.
    pub writeback_bytes: Option<u64>,
}

/// One client's host I/O series, as the report carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientIoSeries {
    /// The client.
    pub id: u32,
    /// Its points, in the order they came.
    pub samples: Vec<IoPoint>,
}

/// A point as stored: 48 bytes (`f32` figures, NaN for none; `u64::MAX` for no byte count).
#[derive(Debug, Clone, Copy, PartialEq)]
struct IoStored {
    t_s: f32,
    figures: [f32; 6],
    dirty_bytes: u64,
    writeback_bytes: u64,
}

impl IoStored {
    fn new(t_s: f64, s: &HostIoSample) -> Self {
        let f = |v: Option<f64>| v.map_or(f32::NAN, |x| x as f32);
        IoStored {
            t_s: t_s as f32,
            figures: [
                f(s.util_pct),
                f(s.write_await_ms),
                f(s.queue_depth),
                f(s.device_write_mb_s),
                f(s.psi_some_avg10_pct),
                f(s.psi_full_avg10_pct),
            ],
            dirty_bytes: s.dirty_bytes.unwrap_or(u64::MAX),
            writeback_bytes: s.writeback_bytes.unwrap_or(u64::MAX),
        }
    }

    fn point(&self) -> IoPoint {
        let f = |i: usize| (!self.figures[i].is_nan()).then(|| widen(self.figures[i]));
        let b = |v: u64| (v != u64::MAX).then_some(v);
        IoPoint {
            t_s: widen(self.t_s),
            util_pct: f(0),
            write_await_ms: f(1),
            queue_depth: f(2),
            device_write_mb_s: f(3),
            psi_some_avg10_pct: f(4),
            psi_full_avg10_pct: f(5),
            dirty_bytes: b(self.dirty_bytes),
            writeback_bytes: b(self.writeback_bytes),
        }
    }
}

/// A client's host I/O series being recorded: at most [`MAX_SAMPLES`] points however long
/// the run and whatever the peer sends (as [`Series`]: when full, every other point goes and
/// from then on one sample in two is kept, then one in four, …).
#[derive(Debug, Default)]
pub(crate) struct IoSeries {
    samples: Vec<IoStored>,
    /// Keep one sample in `stride`.
    stride: u32,
    /// Samples seen since the last one kept.
    seen: u32,
}

impl IoSeries {
    /// Records `s` taken at `t_s` (seconds since the server started).
    pub(crate) fn record(&mut self, t_s: f64, s: &HostIoSample) {
        self.stride = self.stride.max(1);
        self.seen += 1;
        if self.seen < self.stride {
            return;
        }
        self.seen = 0;
        if self.samples.len() >= MAX_SAMPLES {
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride = self.stride.saturating_mul(2);
        }
        if self.samples.len() == self.samples.capacity() {
            let want = (self.samples.capacity() * 2).clamp(4, MAX_SAMPLES);
            self.samples.reserve_exact(want - self.samples.len());
        }
        self.samples.push(IoStored::new(t_s, s));
    }

    /// Gives back the room reserved for points that will not come (a finished client).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.samples.shrink_to_fit();
    }

    /// The points kept, oldest first.
    pub(crate) fn points(&self) -> Vec<IoPoint> {
        self.samples.iter().map(IoStored::point).collect()
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod io_tests {
    use super::*;

    #[test]
    fn an_io_series_keeps_absent_figures_absent_and_stays_bounded() {
        let mut s = IoSeries::default();
        let some = HostIoSample {
            util_pct: Some(42.5),
            dirty_bytes: Some(7),
            ..HostIoSample::default()
        };
        s.record(1.25, &some);
        let p = s.points()[0];
        assert_eq!(
            (p.t_s, p.util_pct, p.dirty_bytes),
            (1.25, Some(42.5), Some(7))
        );
        assert_eq!((p.write_await_ms, p.writeback_bytes), (None, None));
        assert_eq!(std::mem::size_of::<IoStored>(), 48);
        for i in 0..10_000 {
            s.record(f64::from(i), &HostIoSample::default());
            assert!(s.samples.capacity() <= MAX_SAMPLES);
        }
        let pts = s.points();
        assert!(pts.len() >= MAX_SAMPLES / 2, "{}", pts.len());
        assert!(pts.last().unwrap().t_s > 9_800.0);
        assert!(pts.iter().skip(1).all(|p| p.util_pct.is_none()));
    }
}

// ---- The 1-second throughput series (`tput` lines) ----

/// A loadmon client reports its bytes (`tput`) every this many seconds.
pub const TPUT_PERIOD_S: f64 = 1.0;

/// An interval shorter than this (seconds) is too short to measure: a report that comes
/// sooner after the last point kept is held back, and if it stays the newest (a run's last
/// report, just after its last 1-s tick) it is folded into that point, so that no run ends on a
/// point measured over a few milliseconds.
pub const MIN_INTERVAL_S: f64 = 0.5;

/// A point whose interval is longer than this many report periods (times the series'
/// stride) had reports missing: it is a gap, without a throughput.
pub const GAP_PERIODS: f64 = 2.5;

/// One point of a client's 1-s throughput series (the report's `series[].tput`): the bytes of
/// one measured interval, from the previous point (or the client's first report) to this one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TputPoint {
    /// Seconds since the server started: the end of the interval (the client's report, placed
    /// on the server's clock).
    pub t_s: f64,
    /// Bytes written by then.
    pub bytes_written: u64,
    /// MiB/s over the interval; `None` (JSON `null`) for a gap: the interval is longer than
    /// [`GAP_PERIODS`] report periods at the series' resolution (reports were missing), so it
    /// is drawn as a gap, not a line.
    pub throughput_mb_s: Option<f64>,
}

/// One bucket of the fleet's 1-s throughput series (the report's `total.tput`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FleetBucket {
    /// Seconds from the common start to the end of the bucket.
    pub t_s: f64,
    /// MiB/s of the clients that reported in the bucket: each one's measured rate over the
    /// part of the bucket its reports cover, added up; `None` (JSON `null`) when no client
    /// did (a gap).
    pub throughput_mb_s: Option<f64>,
    /// How many clients reported in the bucket (their measured intervals cover part of it).
    pub clients: u32,
}

/// One client's 1-s throughput series being recorded from its `tput` reports: at most
/// [`MAX_SAMPLES`] points kept, coarsened as [`Series`] is (every other point dropped and the
/// stride doubled when full), so its memory is bounded whatever a peer sends.
#[derive(Debug, Default)]
pub(crate) struct TputSeries {
    /// The first report (seconds since the server started, bytes): where the first interval
    /// begins.
    origin: Option<(f64, u64)>,
    /// The reports kept, oldest first.
    kept: Vec<(f64, u64)>,
    /// The newest report, when it was not kept (the stride, or too soon after the last kept).
    newest: Option<(f64, u64)>,
    /// Keep one report in `stride`.
    stride: u32,
    /// Reports seen since the last one kept.
    seen: u32,
}

impl TputSeries {
    /// Records a report: `bytes_written` at `t_s` (seconds since the server started). A report
    /// not after the newest one, or at a time that is not finite, is ignored; a byte count is
    /// never less than the one before.
    pub(crate) fn record(&mut self, t_s: f64, bytes_written: u64) {
        if !t_s.is_finite() {
            return;
        }
        let Some(origin) = self.origin else {
            self.origin = Some((t_s, bytes_written));
            return;
        };
        let base = self.kept.last().copied().unwrap_or(origin);
        let newest = self.newest.unwrap_or(base);
        if t_s <= newest.0 {
            return;
        }
        let report = (t_s, bytes_written.max(newest.1));
        self.stride = self.stride.max(1);
        self.seen = self.seen.saturating_add(1);
        if self.seen < self.stride || t_s - base.0 < MIN_INTERVAL_S {
            self.newest = Some(report);
            return;
        }
        self.seen = 0;
        self.newest = None;
        if self.kept.len() >= MAX_SAMPLES {
            // Keep every other report, the newest included, and halve the rate of keeping.
            let mut i = 0;
            self.kept.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride = self.stride.saturating_mul(2);
        }
        if self.kept.len() == self.kept.capacity() {
            // Grow by doubling, but never past the bound.
            let want = (self.kept.capacity() * 2).clamp(4, MAX_SAMPLES);
            self.kept.reserve_exact(want - self.kept.len());
        }
        self.kept.push(report);
    }

    /// Where the first interval begins (seconds since the server started), once a report came.
    pub(crate) fn origin_s(&self) -> Option<f64> {
        self.origin.map(|o| o.0)
    }

    /// Whether no interval was measured yet (at most one report).
    pub(crate) fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.newest.is_none()
    }

    /// Gives back the room reserved for points that will not come (a finished client).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.kept.shrink_to_fit();
    }

    /// The points, oldest first: one per report kept, then the newest report — folded into
    /// the last point when it came less than [`MIN_INTERVAL_S`] after it. A point whose
    /// interval is longer than [`GAP_PERIODS`] periods at the series' stride is a gap.
    pub(crate) fn points(&self) -> Vec<TputPoint> {
        let Some(origin) = self.origin else {
            return Vec::new();
        };
        let mut ends = self.kept.clone();
        if let Some(n) = self.newest {
            match ends.last_mut() {
                Some(last) if n.0 - last.0 < MIN_INTERVAL_S => *last = n,
                _ => ends.push(n),
            }
        }
        let gap_after_s = GAP_PERIODS * TPUT_PERIOD_S * f64::from(self.stride.max(1));
        let mut base = origin;
        ends.into_iter()
            .map(|end| {
                let measured = end.0 - base.0 <= gap_after_s;
                let p = TputPoint {
                    t_s: end.0,
                    bytes_written: end.1,
                    throughput_mb_s: measured.then(|| rate(base, end)),
                };
                base = end;
                p
            })
            .collect()
    }
}

/// The fleet's 1-s throughput series being summed: [`FleetTput::add`] each client's points,
/// then [`FleetTput::finish`]. Buckets of 1 s from the common start (wider, from
/// `BUCKET_WIDTHS_S`, past [`MAX_TOTAL_SAMPLES`] seconds); each client adds its measured rate
/// over the part of a bucket its measured intervals cover, and counts as one client there. A
/// gap of a client adds nothing; a bucket no client measured is a gap. Memory: two numbers per
/// bucket, whatever the number of clients.
#[derive(Debug)]
pub(crate) struct FleetTput {
    /// The common start and the end (seconds since the server started).
    from: f64,
    to: f64,
    /// Bucket width, seconds.
    width: f64,
    /// Per bucket: the clients' rates added up, and how many clients.
    rate_sum: Vec<f64>,
    clients: Vec<u32>,
}

/// One client's measured time and bytes (MiB) in one bucket, while its points are read.
#[derive(Debug, Clone, Copy)]
struct InBucket {
    k: usize,
    covered_s: f64,
    mb: f64,
}

impl FleetTput {
    /// Buckets from `from` (the common start) to `to` (seconds since the server started).
    pub(crate) fn new(from: f64, to: f64) -> Self {
        let span = to - from;
        let (width, n) = if from.is_finite() && span.is_finite() && span > 0.0 {
            let want = span / MAX_TOTAL_SAMPLES as f64;
            let width = BUCKET_WIDTHS_S
                .iter()
                .copied()
                .filter(|w| *w >= TPUT_PERIOD_S)
                .find(|w| *w >= want)
                .unwrap_or_else(|| (want / 86400.0).ceil() * 86400.0);
            let n = ((span / width).ceil() as usize).clamp(1, MAX_TOTAL_SAMPLES + 1);
            (width, n)
        } else {
            (1.0, 0)
        };
        FleetTput {
            from,
            to,
            width,
            rate_sum: vec![0.0; n],
            clients: vec![0; n],
        }
    }

    /// Adds one client's points (its first report at `origin_s`, then its points, oldest
    /// first, as [`TputSeries::points`] gives them).
    pub(crate) fn add(&mut self, origin_s: f64, points: &[TputPoint]) {
        let mut acc: Option<InBucket> = None;
        let mut a = origin_s;
        for p in points {
            if let Some(r) = p.throughput_mb_s {
                self.spread(&mut acc, a.max(self.from), p.t_s.min(self.to), r);
            }
            a = p.t_s;
        }
        self.flush(acc);
    }

    /// One measured interval [lo, hi] at `rate` MiB/s, over the buckets it covers.
    fn spread(&mut self, acc: &mut Option<InBucket>, lo: f64, hi: f64, rate: f64) {
        let n = self.clients.len();
        let length_s = hi - lo;
        if length_s.is_nan() || length_s <= 0.0 || n == 0 || !rate.is_finite() {
            return;
        }
        let first = (((lo - self.from) / self.width).floor().max(0.0) as usize).min(n - 1);
        for k in first..n {
            let start = self.from + k as f64 * self.width;
            if start >= hi {
                break;
            }
            let end = if k + 1 == n {
                self.to
            } else {
                start + self.width
            };
            let covered_s = hi.min(end) - lo.max(start);
            if covered_s <= 0.0 {
                continue;
            }
            let cur = match *acc {
                Some(c) if c.k == k => c,
                other => {
                    self.flush(other);
                    InBucket {
                        k,
                        covered_s: 0.0,
                        mb: 0.0,
                    }
                }
            };
            *acc = Some(InBucket {
                k,
                covered_s: cur.covered_s + covered_s,
                mb: cur.mb + rate * covered_s,
            });
        }
    }

    /// A client's bucket is done: its rate there is added, and it counts as one client.
    fn flush(&mut self, acc: Option<InBucket>) {
        if let Some(c) = acc.filter(|c| c.covered_s > 0.0) {
            if let (Some(sum), Some(n)) = (self.rate_sum.get_mut(c.k), self.clients.get_mut(c.k)) {
                *sum += c.mb / c.covered_s;
                *n += 1;
            }
        }
    }

    /// The buckets; none when no client measured anything in the span (no `tput` at all:
    /// seed clients, older loadmons).
    pub(crate) fn finish(self) -> Vec<FleetBucket> {
        if self.clients.iter().all(|n| *n == 0) {
            return Vec::new();
        }
        let span = self.to - self.from;
        self.rate_sum
            .iter()
            .zip(&self.clients)
            .enumerate()
            .map(|(k, (sum, n))| FleetBucket {
                t_s: ((k + 1) as f64 * self.width).min(span),
                throughput_mb_s: (*n > 0).then_some(*sum),
                clients: *n,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_come_back_without_float_noise() {
        assert_eq!(widen(102.42), 102.42);
        assert_eq!(widen(0.1), 0.1);
        assert_eq!(widen(1e-3), 1e-3);
        let s = Stored::new(
            &Sample {
                t_s: 1.3,
                bytes_written: 7,
                throughput_mb_s: 0.0,
                cpu_pct: 102.42,
                mem_pct: 0.57,
                rss_bytes: None,
            },
            321.01,
        )
        .sample();
        assert_eq!(
            (s.t_s, s.cpu_pct, s.mem_pct, s.throughput_mb_s),
            (1.3, 102.42, 0.57, 321.01)
        );
    }

    fn sample(t_s: f64, bytes_written: u64) -> Sample {
        Sample {
            t_s,
            bytes_written,
            throughput_mb_s: 0.0,
            cpu_pct: 1.0,
            mem_pct: 2.0,
            rss_bytes: None,
        }
    }

    #[test]
    fn throughput_is_the_rate_over_each_interval() {
        let mut s = Series::default();
        let mut prev = (10.0, 0);
        s.start(10.0, 0);
        let mb = 1 << 20;
        assert_eq!(s.record(sample(11.0, 4 * mb), &mut prev), 4.0);
        assert_eq!(s.record(sample(13.0, 8 * mb), &mut prev), 2.0);
        let got: Vec<f64> = s.samples().iter().map(|p| p.throughput_mb_s).collect();
        assert_eq!(got, vec![4.0, 2.0]);
        assert_eq!(s.samples()[0].rss_bytes, None);
        assert_eq!(s.samples()[1].cpu_pct, 1.0);
    }

    #[test]
    fn the_total_sums_clients_per_bucket_from_the_common_start() {
        let mb = 1u64 << 20;
        // From t = 10 to t = 14: 0.5 s buckets (the smallest width).
        let mut t = TotalSeries::new(10.0, 14.0);
        // A client at 2 MiB/s from 10 to 14, sampled at 11 and 13.
        t.add([(10.0, 0), (11.0, 2 * mb), (13.0, 6 * mb), (14.0, 8 * mb)]);
        // A seed client (start and end only): 4 MiB over 12..14, 2 MiB/s.
        t.add([(12.0, 0), (14.0, 4 * mb)]);
        let s = t.finish();
        assert_eq!(s.len(), 8);
        assert!(s.windows(2).all(|w| w[0].t_s < w[1].t_s));
        assert_eq!(s[0].t_s, 0.5);
        assert_eq!(s[7].t_s, 4.0);
        assert_eq!(s[7].bytes_written, 12 * mb);
        for p in &s[..4] {
            assert!((p.throughput_mb_s - 2.0).abs() < 1e-9, "{p:?}");
        }
        for p in &s[4..] {
            assert!((p.throughput_mb_s - 4.0).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn the_total_stays_bounded_and_survives_odd_input() {
        let mut long = TotalSeries::new(0.0, 1e9);
        long.add([(0.0, 0), (1e9, u64::MAX)]);
        long.add([(0.0, u64::MAX), (5.0, 3), (1e9, u64::MAX)]);
        let s = long.finish();
        assert!(
            s.len() <= MAX_TOTAL_SAMPLES + 1 && !s.is_empty(),
            "{}",
            s.len()
        );
        assert_eq!(s.last().unwrap().bytes_written, u64::MAX);
        assert!(s.iter().all(|p| p.throughput_mb_s.is_finite()));
        // Empty or backwards spans have no bucket; a client without points adds nothing.
        assert!(TotalSeries::new(5.0, 5.0).finish().is_empty());
        assert!(TotalSeries::new(5.0, 1.0).finish().is_empty());
        assert!(TotalSeries::new(f64::NAN, 1.0).finish().is_empty());
        let mut t = TotalSeries::new(0.0, 2.0);
        t.add(std::iter::empty());
        // Points out of order are taken as they come, never panicking.
        t.add([(1.5, 10), (0.5, 20), (1.0, 5)]);
        assert_eq!(t.finish().len(), 4);
        // A client that ran before the common start counts only what it wrote after it.
        let mb = 1u64 << 20;
        let mut t = TotalSeries::new(10.0, 11.0);
        t.add([(0.0, 0), (10.0, 100 * mb), (11.0, 101 * mb)]);
        let s = t.finish();
        let sum: f64 = s.iter().map(|p| p.throughput_mb_s * 0.5).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn stays_bounded_covers_the_whole_run_and_keeps_true_averages() {
        let mut s = Series::default();
        let mut prev = (0.0, 0);
        let mb = 1 << 20;
        // 10,000 one-second samples at a steady 3 MiB/s.
        for i in 1..=10_000u64 {
            s.record(sample(i as f64, 3 * mb * i), &mut prev);
            assert!(s.capacity() <= MAX_SAMPLES);
        }
        assert_eq!(std::mem::size_of::<Stored>(), 32);
        let pts = s.samples();
        assert!(pts.len() >= MAX_SAMPLES / 2, "{} points", pts.len());
        assert!(pts[0].t_s < 10_000.0 / MAX_SAMPLES as f64 * 2.0);
        assert!(pts[pts.len() - 1].t_s > 9_800.0);
        for p in &pts {
            assert!((p.throughput_mb_s - 3.0).abs() < 1e-5, "{p:?}");
        }
        assert!(pts.windows(2).all(|w| w[0].t_s < w[1].t_s));
    }

    /// The newest point kept beside the points (`last`) is always what the points say: the
    /// last point's (time, bytes), or the origin when there is none — through a start before
    /// and after the first sample, uneven rates, and several halvings. Each new point's
    /// throughput is the rate from that base, as it was when the base was read from the points.
    #[test]
    fn the_kept_newest_point_is_the_points_newest_through_halvings_and_restarts() {
        let base_of = |s: &Series| {
            s.samples
                .last()
                .map_or(s.origin, |p| (f64::from(p.t_s), p.bytes_written))
        };
        let mut s = Series::default();
        s.start(2.5, 1_000);
        assert_eq!(s.last, base_of(&s));
        let mut prev = (2.5, 1_000);
        let mut bytes = 1_000u64;
        // Odd times (not exact in f32) and uneven, sometimes falling, byte counts.
        for i in 1..=2_000u64 {
            if i == 700 {
                // A second start with points kept: the base stays the newest point.
                s.start(700.25, bytes);
                assert_eq!(s.last, base_of(&s));
            }
            bytes = if i % 97 == 0 {
                bytes / 2
            } else {
                bytes + (i * 7_919) % 3_000_017
            };
            let t = 2.5 + i as f64 * 1.1 + (i % 3) as f64 * 0.013;
            let before = base_of(&s);
            let kept = s.samples.len();
            let stride = s.stride.max(1);
            s.record(sample(t, bytes), &mut prev);
            assert_eq!(s.last, base_of(&s), "after sample {i}");
            if s.stride == stride && s.samples.len() == kept + 1 {
                let p = s.samples[s.samples.len() - 1];
                let want = rate(before, (t, bytes)) as f32;
                assert_eq!(p.throughput_mb_s, want, "sample {i}");
            }
        }
        assert!(s.stride >= 16, "several halvings: stride {}", s.stride);
        // A series recorded before its start, then started.
        let mut early = Series::default();
        let mut prev = (0.0, 0);
        early.record(sample(1.0, 10), &mut prev);
        early.start(0.5, 0);
        assert_eq!(early.last, base_of(&early));
        early.record(sample(2.0, 20), &mut prev);
        assert_eq!(early.last, (2.0, 20));
    }

    // ---- 1-second throughput ----

    /// `reports` of a client as (seconds, MiB written so far) into a fresh series.
    fn tput_of(reports: &[(f64, u64)]) -> TputSeries {
        let mut s = TputSeries::default();
        for &(t, mib) in reports {
            s.record(t, mib << 20);
        }
        s
    }

    fn rates(points: &[TputPoint]) -> Vec<Option<f64>> {
        points
            .iter()
            .map(|p| p.throughput_mb_s.map(|r| (r * 1e6).round() / 1e6))
            .collect()
    }

    #[test]
    fn tput_points_are_the_measured_seconds() {
        // The first report (the run's start) is the origin; then one point per second.
        let reports: Vec<(f64, u64)> = (0..=12u32)
            .map(|i| (10.0 + f64::from(i), 2 * u64::from(i)))
            .collect();
        let s = tput_of(&reports);
        let pts = s.points();
        assert_eq!(s.origin_s(), Some(10.0));
        assert_eq!(pts.len(), 12);
        assert_eq!(pts[0].t_s, 11.0);
        assert_eq!(pts[11].bytes_written, 24 << 20);
        assert!(rates(&pts).iter().all(|r| *r == Some(2.0)), "{pts:?}");
        // One report only: nothing measured yet.
        assert!(tput_of(&[(3.0, 1)]).points().is_empty());
        assert!(tput_of(&[(3.0, 1)]).is_empty());
    }

    #[test]
    fn a_final_interval_too_short_to_measure_is_folded_into_the_one_before() {
        // Ticks at 0, 1, 2; the workload ends and the last report comes 20 ms after the last
        // tick, with no more bytes: alone it would be a 0 MB/s point.
        let s = tput_of(&[(0.0, 0), (1.0, 4), (2.0, 8), (2.02, 8)]);
        let pts = s.points();
        assert_eq!(pts.len(), 2, "{pts:?}");
        assert_eq!((pts[1].t_s, pts[1].bytes_written), (2.02, 8 << 20));
        let last = pts[1].throughput_mb_s.unwrap();
        assert!((last - 4.0 / 1.02).abs() < 1e-9, "{last}");
        // A last interval of 0.6 s is measured: its own point.
        let pts = tput_of(&[(0.0, 0), (1.0, 4), (1.6, 7)]).points();
        assert_eq!(rates(&pts), [Some(4.0), Some(5.0)]);
        // A run shorter than the minimum still has its one point.
        let pts = tput_of(&[(0.0, 0), (0.3, 3)]).points();
        assert_eq!(rates(&pts), [Some(10.0)]);
        // Reports faster than the minimum interval are held back, not points.
        let fast: Vec<(f64, u64)> = (0..=40u32)
            .map(|i| (f64::from(i) * 0.1, u64::from(i)))
            .collect();
        let pts = tput_of(&fast).points();
        assert!(pts.len() <= 8, "{pts:?}");
        assert!(pts
            .windows(2)
            .all(|w| w[1].t_s - w[0].t_s >= MIN_INTERVAL_S - 1e-9));
        assert!(rates(&pts)
            .iter()
            .all(|r| r.is_some_and(|r| (r - 10.0).abs() < 1e-6)));
    }

    #[test]
    fn missing_reports_are_a_gap_not_a_line() {
        // Reports stop between 2 and 6.
        let pts = tput_of(&[(0.0, 0), (1.0, 1), (2.0, 2), (6.0, 10), (7.0, 11)]).points();
        assert_eq!(rates(&pts), [Some(1.0), Some(1.0), None, Some(1.0)]);
        // Late by less than the gap limit: measured over the longer interval.
        let pts = tput_of(&[(0.0, 0), (1.0, 1), (3.0, 5)]).points();
        assert_eq!(rates(&pts), [Some(1.0), Some(2.0)]);
        // Out of order, repeated, not finite, or fewer bytes: ignored or held at the most.
        let pts = tput_of(&[(0.0, 0), (1.0, 5), (0.5, 9), (1.0, 9), (2.0, 3)]);
        let mut pts_nan = pts;
        pts_nan.record(f64::NAN, 1);
        pts_nan.record(f64::INFINITY, 1);
        let pts = pts_nan.points();
        assert_eq!(rates(&pts), [Some(5.0), Some(0.0)]);
        assert_eq!(pts[1].bytes_written, 5 << 20);
    }

    #[test]
    fn a_long_run_stays_bounded_without_false_gaps() {
        let mut s = TputSeries::default();
        let mb = 1u64 << 20;
        for i in 0..=10_000u64 {
            s.record(i as f64, 3 * mb * i);
            assert!(s.kept.capacity() <= MAX_SAMPLES);
        }
        let pts = s.points();
        assert!(pts.len() >= MAX_SAMPLES / 2 && pts.len() <= MAX_SAMPLES + 1);
        assert_eq!(pts.last().unwrap().t_s, 10_000.0);
        assert!(pts.windows(2).all(|w| w[0].t_s < w[1].t_s));
        for p in &pts {
            let r = p.throughput_mb_s.expect("no gap");
            assert!((r - 3.0).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn the_fleet_counts_who_reported_in_each_second_and_keeps_gaps() {
        let mut f = FleetTput::new(10.0, 16.03);
        // a: 1 MiB/s the whole run, its last report 30 ms after its last tick (folded).
        let a = tput_of(&[
            (10.0, 0),
            (11.0, 1),
            (12.0, 2),
            (13.0, 3),
            (14.0, 4),
            (15.0, 5),
            (16.0, 6),
            (16.03, 6),
        ]);
        // b: 2 MiB/s, silent from 12 to 15 (a gap), reports at a half-second phase.
        let b = tput_of(&[(10.5, 0), (11.5, 2), (12.5, 4), (15.5, 10), (16.01, 11)]);
        for c in [&a, &b] {
            f.add(c.origin_s().unwrap(), &c.points());
        }
        let buckets = f.finish();
        assert_eq!(buckets.len(), 7);
        let got: Vec<(f64, Option<f64>, u32)> = buckets
            .iter()
            .map(|p| {
                (
                    p.t_s,
                    p.throughput_mb_s.map(|r| (r * 1e3).round() / 1e3),
                    p.clients,
                )
            })
            .collect();
        assert_eq!(got[0], (1.0, Some(3.0), 2));
        assert_eq!(got[1], (2.0, Some(3.0), 2));
        // b's gap (12.5 to 15.5) is not drawn as b's rate: only a counts there.
        assert_eq!(got[2].2, 2, "b measured 12 to 12.5");
        assert_eq!(got[3], (4.0, Some(1.0), 1));
        assert_eq!(got[4], (5.0, Some(1.0), 1));
        // The last, partial bucket keeps the clients' rates: no fall at the end.
        let last = buckets.last().unwrap();
        assert!((last.t_s - 6.03).abs() < 1e-9, "{last:?}");
        assert_eq!(last.clients, 2);
        assert!(last.throughput_mb_s.unwrap() > 2.5, "{last:?}");
        // Nobody measured a second: a gap, not a zero.
        let mut f = FleetTput::new(0.0, 4.0);
        let c = tput_of(&[(0.0, 0), (1.0, 1), (4.0, 4)]);
        f.add(0.0, &c.points());
        let got: Vec<Option<f64>> = f.finish().iter().map(|p| p.throughput_mb_s).collect();
        assert_eq!(got, [Some(1.0), None, None, None]);
        // No client measured anything (seed clients only): no series at all.
        let mut f = FleetTput::new(0.0, 4.0);
        f.add(0.0, &tput_of(&[(0.0, 0)]).points());
        assert!(f.finish().is_empty());
        // Empty or backwards spans have no bucket; odd input never panics.
        assert!(FleetTput::new(5.0, 5.0).finish().is_empty());
        assert!(FleetTput::new(f64::NAN, 1.0).finish().is_empty());
        let mut f = FleetTput::new(0.0, 1e9);
        assert!(f.clients.len() <= MAX_TOTAL_SAMPLES + 1);
        f.add(-5.0, &tput_of(&[(-5.0, 0), (2e9, u64::MAX >> 20)]).points());
        assert!(f
            .finish()
            .iter()
            .all(|p| p.throughput_mb_s.is_none_or(f64::is_finite)));
    }
}
