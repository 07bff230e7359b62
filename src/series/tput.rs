//! The 1-second throughput series (`tput` lines): per client and per fleet bucket.

use serde::{Deserialize, Serialize};

use super::{rate, reserve_one, thin, BUCKET_WIDTHS_S, MAX_SAMPLES, MAX_TOTAL_SAMPLES};

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
    pub(super) kept: Vec<(f64, u64)>,
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
            thin(&mut self.kept, &mut self.stride);
        }
        reserve_one(&mut self.kept);
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
    pub(super) clients: Vec<u32>,
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
