//! Latency over time: the fleet's merged intervals ([`FleetIntervals`], per second, coarsened
//! to stay within [`MAX_LATENCY_POINTS`]) and one client's series of percentiles
//! ([`ClientLatency`], thinned to stay within the same bound).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{new_histogram, LatencySummary};

/// Most points of a latency series, the fleet's and each client's (as
/// [`crate::series::MAX_SAMPLES`]).
pub const MAX_LATENCY_POINTS: usize = 96;

/// Latest time an interval may have, seconds since the server started (as the report's
/// bound on seconds): anything later is refused.
const MAX_T_S: f64 = crate::units::MAX_SECONDS;

/// One interval of a latency series: its percentiles, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// The interval's end, seconds since the server started.
    pub t_s: f64,
    /// The interval's length, seconds.
    pub width_s: f64,
    /// Chunk writes measured in it.
    pub writes: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
}

impl LatencyPoint {
    /// The point of `h` for the interval of `width_s` ending at `t_s` (`None` if empty).
    fn of(t_s: f64, width_s: f64, h: &Histogram<u64>) -> Option<LatencyPoint> {
        let s = LatencySummary::of(h)?;
        Some(LatencyPoint {
            t_s,
            width_s,
            writes: s.writes,
            p50_ms: s.p50_ms,
            p90_ms: s.p90_ms,
            p99_ms: s.p99_ms,
            p999_ms: s.p999_ms,
            max_ms: s.max_ms,
        })
    }
}

/// One client's latency series, as the report carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientLatencySeries {
    /// The client.
    pub id: u32,
    /// Its intervals, oldest first.
    pub points: Vec<LatencyPoint>,
}

/// One merged interval of the fleet, for the interval log.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyInterval {
    /// Its start, seconds since the server started.
    pub start_s: f64,
    /// Its length, seconds.
    pub width_s: f64,
    /// Every client's writes in it.
    pub hist: Histogram<u64>,
}

/// The fleet's latency: every interval merged into the run's histogram and into the bucket of
/// its time (1 s wide; when the buckets would span more than [`MAX_LATENCY_POINTS`], twice
/// as wide, merged pairwise — exact, as every merge here). Memory: at most
/// [`MAX_LATENCY_POINTS`] + 1 histograms, whatever the number of clients.
#[derive(Debug)]
pub struct FleetIntervals {
    width_s: u64,
    buckets: BTreeMap<u64, Histogram<u64>>,
    run: Histogram<u64>,
}

impl Default for FleetIntervals {
    fn default() -> Self {
        FleetIntervals {
            width_s: 1,
            buckets: BTreeMap::new(),
            run: new_histogram(),
        }
    }
}

impl FleetIntervals {
    /// Adds an interval whose middle is at `t_s` (seconds since the server started).
    /// Returns `false` for a time out of range (nothing is added) or a count that would
    /// overflow.
    pub fn add(&mut self, t_s: f64, h: &Histogram<u64>) -> bool {
        if !(0.0..=MAX_T_S).contains(&t_s) {
            return false;
        }
        // (A count cannot overflow in practice: a line holds at most 10^9 writes, and 2^64
        // takes 1.8 × 10^10 such lines.)
        if self.run.add(h).is_err() {
            return false;
        }
        let index = t_s as u64 / self.width_s;
        let bucket = self.buckets.entry(index).or_insert_with(new_histogram);
        if bucket.add(h).is_err() {
            return false;
        }
        while self.span() > MAX_LATENCY_POINTS as u64 {
            self.coarsen();
        }
        true
    }

    /// Buckets from the first to the last, gaps included.
    fn span(&self) -> u64 {
        match (self.buckets.keys().next(), self.buckets.keys().next_back()) {
            (Some(a), Some(b)) => b - a + 1,
            _ => 0,
        }
    }

    /// Twice as wide buckets, merged pairwise.
    fn coarsen(&mut self) {
        self.width_s = self.width_s.saturating_mul(2);
        let old = std::mem::take(&mut self.buckets);
        for (i, h) in old {
            match self.buckets.entry(i / 2) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(h);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    // Each count was added once already without overflow: the sum fits.
                    let _ = o.get_mut().add(&h);
                }
            }
        }
    }

    /// Every write of the fleet over the run.
    pub fn run(&self) -> &Histogram<u64> {
        &self.run
    }

    /// The series of the fleet's percentiles, one point per bucket that has writes.
    pub fn points(&self) -> Vec<LatencyPoint> {
        let w = self.width_s as f64;
        self.buckets
            .iter()
            .filter_map(|(i, h)| LatencyPoint::of((*i + 1) as f64 * w, w, h))
            .collect()
    }

    /// The merged intervals, oldest first (for the interval log).
    pub fn intervals(&self) -> Vec<LatencyInterval> {
        let w = self.width_s as f64;
        self.buckets
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(i, h)| LatencyInterval {
                start_s: *i as f64 * w,
                width_s: w,
                hist: h.clone(),
            })
            .collect()
    }
}

/// One client's latency: its histogram over the run and its series of interval percentiles
/// (at most [`MAX_LATENCY_POINTS`]: when full, every other point goes and from then on only
/// every second interval is kept, then every fourth…; the run's histogram keeps every write).
#[derive(Debug)]
pub struct ClientLatency {
    run: Histogram<u64>,
    points: Vec<LatencyPoint>,
    /// Only every `stride`-th interval becomes a point.
    stride: u64,
    /// Intervals seen.
    seen: u64,
}

impl Default for ClientLatency {
    fn default() -> Self {
        ClientLatency {
            run: new_histogram(),
            points: Vec::new(),
            stride: 1,
            seen: 0,
        }
    }
}

impl ClientLatency {
    /// Adds the interval of `width_s` ending at `t_s` (seconds since the server started).
    /// Returns `false` (and adds nothing) if a count would overflow.
    pub fn add(&mut self, t_s: f64, width_s: f64, h: &Histogram<u64>) -> bool {
        if self.run.add(h).is_err() {
            return false;
        }
        self.seen += 1;
        if !self.seen.is_multiple_of(self.stride) {
            return true;
        }
        if self.points.len() >= MAX_LATENCY_POINTS {
            let mut k = 0;
            self.points.retain(|_| {
                k += 1;
                k % 2 == 0
            });
            self.stride = self.stride.saturating_mul(2);
            if !self.seen.is_multiple_of(self.stride) {
                return true;
            }
        }
        self.points.extend(LatencyPoint::of(t_s, width_s, h));
        true
    }

    /// The run's summary (`None` before any write).
    pub fn summary(&self) -> Option<LatencySummary> {
        LatencySummary::of(&self.run)
    }

    /// The run's histogram.
    pub fn run(&self) -> &Histogram<u64> {
        &self.run
    }

    /// The series' points, oldest first.
    pub fn points(&self) -> &[LatencyPoint] {
        &self.points
    }
}
