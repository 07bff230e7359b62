//! Paced clients' figures (the `pace` and `rlat` lines): one client's schedule lag and
//! response times over the run ([`ClientPace`]) and the fleet's ([`FleetPace`]), merged
//! exactly as the `lat` histograms are (a percentile of the merge is the percentile of every
//! chunk together).
//!
//! Two latencies per chunk: the *service* time (from the write's start, the `lat` line) and
//! the *response* time (from when the schedule had the chunk start, the `rlat` line), which
//! counts the time a chunk waited behind a slow one — coordinated omission corrected, as wrk2
//! and HdrHistogram's `recordValueWithExpectedInterval` mean it. The *start lag* of a chunk is
//! how late it began (0 when on time); the *schedule lag* of a client is how far behind its
//! schedule it is at a moment (its furthest stream).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{new_histogram, FleetIntervals, LatencySummary, HIGHEST_LATENCY_US};

/// The schedule lag past which a paced client *could not keep pace*, ms (1 s): a client whose
/// lag (a chunk's start lag, or the lag it reported at any second) went past it is flagged in
/// the report (`kept_pace: false`, a warning). Below it a client is taken to hold its rate:
/// a short stall it caught up from, within a second, is jitter.
pub const PACE_LAG_BOUND_MS: f64 = 1000.0;

/// Records one chunk's start lag of `us` µs (0: on time; at most an hour, as the latencies).
pub fn record_lag_us(h: &mut Histogram<u64>, us: u64) {
    // `record` grows an auto-resizing histogram; a value within an hour always fits.
    let _ = h.record(us.min(HIGHEST_LATENCY_US));
}

/// One paced client's figures over the run.
#[derive(Debug)]
pub struct ClientPace {
    /// The target of its latest `pace` line, MiB/s.
    rate_mb_s: Option<f64>,
    /// Its latest schedule lag, µs.
    lag_now_us: Option<u64>,
    /// The largest schedule lag it reported, µs.
    lag_peak_us: u64,
    /// Every chunk's start lag (µs).
    lag: Histogram<u64>,
    /// Every chunk's response time (µs).
    response: Histogram<u64>,
}

impl Default for ClientPace {
    fn default() -> Self {
        ClientPace {
            rate_mb_s: None,
            lag_now_us: None,
            lag_peak_us: 0,
            lag: new_histogram(),
            response: new_histogram(),
        }
    }
}

/// What the report shows of a paced client ([`ClientPace::figures`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceFigures {
    /// Its target, MiB/s (`None` before its first `pace` line).
    pub rate_mb_s: Option<f64>,
    /// Its latest schedule lag, ms.
    pub lag_now_ms: Option<f64>,
    /// Its chunks' start lags over the run (`None` before any).
    pub lag: Option<LatencySummary>,
    /// The largest schedule lag seen, ms: the largest start lag or reported lag.
    pub lag_max_ms: f64,
    /// Its chunks' response times over the run (`None` before any).
    pub response: Option<LatencySummary>,
    /// Whether its schedule lag stayed within [`PACE_LAG_BOUND_MS`].
    pub kept_pace: bool,
}

impl ClientPace {
    /// A `pace` interval: the target, the lag at its end and its chunks' start lags `h`.
    /// Returns `false` (and adds no counts) if a count would overflow.
    pub fn add_pace(&mut self, rate_mb_s: f64, lag_us: u64, h: Option<&Histogram<u64>>) -> bool {
        if let Some(h) = h {
            if self.lag.add(h).is_err() {
                return false;
            }
        }
        self.rate_mb_s = Some(rate_mb_s);
        self.lag_now_us = Some(lag_us);
        self.lag_peak_us = self.lag_peak_us.max(lag_us);
        true
    }

    /// An `rlat` interval's response times. Returns `false` (nothing added) on overflow.
    pub fn add_response(&mut self, h: &Histogram<u64>) -> bool {
        self.response.add(h).is_ok()
    }

    /// The client's figures so far.
    pub fn figures(&self) -> PaceFigures {
        let lag = LatencySummary::of(&self.lag);
        let lag_max_ms = lag
            .map_or(0.0, |l| l.max_ms)
            .max(self.lag_peak_us as f64 / 1000.0);
        PaceFigures {
            rate_mb_s: self.rate_mb_s,
            lag_now_ms: self.lag_now_us.map(|us| us as f64 / 1000.0),
            lag,
            lag_max_ms,
            response: LatencySummary::of(&self.response),
            kept_pace: lag_max_ms <= PACE_LAG_BOUND_MS,
        }
    }
}

/// The fleet's paced figures: every client's chunk start lags and response times, merged
/// over the run and per second of the server's clock (as [`FleetIntervals`]).
#[derive(Debug, Default)]
pub struct FleetPace {
    /// Chunk start lags (`pace` lines).
    pub lag: FleetIntervals,
    /// Chunk response times (`rlat` lines).
    pub response: FleetIntervals,
}

/// The fleet's paced figures as the report carries them (`total.pace`, built by
/// [`Total::pace_of`](crate::report::Total::pace_of)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaceTotal {
    /// Clients that sent `pace` lines.
    pub clients: usize,
    /// Their targets added up, MiB/s.
    pub rate_mb_s: f64,
    /// The bound of schedule lag past which a client could not keep pace, ms
    /// ([`PACE_LAG_BOUND_MS`]).
    pub lag_bound_ms: f64,
    /// The clients that could not keep pace (their lag went past the bound), by id.
    pub behind: Vec<u32>,
    /// The largest schedule lag of any client, ms.
    pub lag_max_ms: f64,
    /// Every client's chunk start lags merged (`writes`: chunks begun).
    pub schedule_lag: Option<LatencySummary>,
    /// Every client's chunk response times merged (from when each chunk was due).
    pub response: Option<LatencySummary>,
    /// Chunk start lags over time, every client's merged per second of the server's clock
    /// (coarser for long runs; at most 96 points).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule_lag_series: Vec<super::LatencyPoint>,
    /// Chunk response times over time, as `schedule_lag_series`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_series: Vec<super::LatencyPoint>,
}
