//! A paced run's figures, as the workload reports them through its [`Context`](super::Context)
//! and the client sends them each second: every chunk's response time and start lag, and each
//! stream's place on its schedule (for the schedule lag now). Nothing is kept, and nothing is
//! sent, for a run without a rate.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::latency::{new_histogram, record_lag_us, record_us, IntervalHistogram};
use crate::protocol::{LatLine, Message, PaceLine, MAX_LAG_US};
use crate::units::BYTES_PER_MB;

/// Where one stream is on its schedule.
#[derive(Debug, Clone, Copy)]
enum Due {
    /// Not begun yet.
    Idle,
    /// Its next chunk is due then.
    Next(Instant),
    /// It stopped, this far behind.
    Ended(Duration),
}

/// A paced run's figures since the last second's lines.
#[derive(Debug)]
pub(crate) struct PaceCounters {
    /// The client's target, MiB/s.
    rate_mb_s: f64,
    /// Each stream's place on its schedule.
    streams: Vec<Due>,
    /// The interval's start, Unix ms.
    t0_ms: u64,
    /// The interval's chunks' response times, µs.
    response_us: Histogram<u64>,
    /// The interval's chunks' start lags, µs.
    lag_us: Histogram<u64>,
}

impl PaceCounters {
    /// The figures of a run paced at `rate_bytes_per_s` over `streams` streams, from `t0_ms`.
    pub(super) fn new(rate_bytes_per_s: f64, streams: usize, t0_ms: u64) -> PaceCounters {
        PaceCounters {
            rate_mb_s: rate_bytes_per_s / BYTES_PER_MB,
            streams: vec![Due::Idle; streams.max(1)],
            t0_ms,
            response_us: new_histogram(),
            lag_us: new_histogram(),
        }
    }

    /// Stream `stream`'s next chunk is due at `due`.
    pub(super) fn due(&mut self, stream: usize, due: Instant) {
        if let Some(slot) = self.streams.get_mut(stream) {
            *slot = Due::Next(due);
        }
    }

    /// Stream `stream` stopped `lag` behind its schedule.
    pub(super) fn end(&mut self, stream: usize, lag: Duration) {
        if let Some(slot) = self.streams.get_mut(stream) {
            *slot = Due::Ended(lag);
        }
    }

    /// One chunk: its response time (from when it was due) and its start lag.
    pub(super) fn record(&mut self, response: Duration, start_lag: Duration) {
        record_us(&mut self.response_us, micros(response));
        record_lag_us(&mut self.lag_us, micros(start_lag));
    }

    /// How far behind its schedule the client is at `now`: its furthest stream (a running
    /// one: how long ago its next chunk came due, as `Pacer::lag` counts it).
    fn lag(&self, now: Instant) -> Duration {
        self.streams
            .iter()
            .map(|d| match d {
                Due::Idle => Duration::ZERO,
                Due::Next(t) => now.saturating_duration_since(*t),
                Due::Ended(lag) => *lag,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The lines of the interval that ends at `t1_ms` (Unix ms; `now` on the monotonic
    /// clock): `rlat` when chunks ended in it, and `pace` always (the lag now, the chunks'
    /// start lags); then the next interval begins. A histogram that does not fit its line
    /// even at 1 significant digit is left out, with a warning in the second list.
    pub(super) fn take_lines(&mut self, t1_ms: u64, now: Instant) -> (Vec<Message>, Vec<String>) {
        let t0_ms = std::mem::replace(&mut self.t0_ms, t1_ms).min(t1_ms);
        let response = std::mem::replace(&mut self.response_us, new_histogram());
        let lags = std::mem::replace(&mut self.lag_us, new_histogram());
        let (mut lines, mut dropped) = (Vec::new(), Vec::new());
        let mut encode = |h: &Histogram<u64>, what: &str| -> Option<IntervalHistogram> {
            if h.is_empty() {
                return None;
            }
            let hist = IntervalHistogram::encode(h);
            if hist.is_none() {
                dropped.push(format!(
                    "the {what} histogram of {} chunk(s) does not fit its line even at 1 \
                     significant digit: that interval's {what}s are not sent",
                    h.len()
                ));
            }
            hist
        };
        if let Some(hist) = encode(&response, "response time") {
            lines.push(Message::RespLat(Box::new(LatLine { t0_ms, t1_ms, hist })));
        }
        let hist = encode(&lags, "start lag");
        lines.push(Message::Pace(Box::new(PaceLine {
            t0_ms,
            t1_ms,
            rate_mb_s: self.rate_mb_s,
            lag_us: micros(self.lag(now)).min(MAX_LAG_US),
            hist,
        })));
        (lines, dropped)
    }
}

/// `d` in whole µs (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_lag_is_the_furthest_stream_and_a_stopped_stream_keeps_its_own() {
        let t0 = Instant::now();
        let mut p = PaceCounters::new(100.0 * BYTES_PER_MB, 3, 1_000);
        assert_eq!(p.lag(t0 + ms(500)), Duration::ZERO, "no stream begun");
        p.due(0, t0 + ms(100));
        p.due(1, t0 + ms(300));
        assert_eq!(p.lag(t0 + ms(50)), Duration::ZERO, "not due yet");
        assert_eq!(p.lag(t0 + ms(400)), ms(300));
        // Stream 0 stops 250 ms behind: that stays its lag, however late it is asked.
        p.end(0, ms(250));
        assert_eq!(p.lag(t0 + ms(360)), ms(250));
        assert_eq!(
            p.lag(t0 + ms(10_000)),
            ms(9_700),
            "stream 1 is still running"
        );
        p.end(1, ms(100));
        assert_eq!(p.lag(t0 + ms(10_000)), ms(250));
        // No such stream: ignored.
        p.due(7, t0);
        p.end(7, ms(1));
    }

    #[test]
    fn each_second_has_a_pace_line_and_an_rlat_line_when_chunks_ended() {
        let t0 = Instant::now();
        let mut p = PaceCounters::new(50.0 * BYTES_PER_MB, 1, 1_000);
        p.due(0, t0 + ms(200));
        p.record(ms(12), Duration::ZERO);
        p.record(ms(40), ms(25));
        let (lines, dropped) = p.take_lines(2_000, t0 + ms(260));
        assert!(dropped.is_empty());
        let [Message::RespLat(r), Message::Pace(pace)] = &lines[..] else {
            panic!("{lines:?}")
        };
        let h = r.hist.histogram();
        assert_eq!((r.t0_ms, r.t1_ms, h.len()), (1_000, 2_000, 2));
        assert!(h.equivalent(h.max(), 40_000) && h.equivalent(h.min(), 12_000));
        assert_eq!((pace.rate_mb_s, pace.lag_us), (50.0, 60_000));
        let lags = pace.hist.as_ref().unwrap().histogram();
        assert_eq!((lags.len(), lags.min()), (2, 0), "on time counts as 0");
        assert!(lags.equivalent(lags.max(), 25_000));
        // A second without chunks: the pace line alone, without a histogram.
        let (lines, _) = p.take_lines(3_000, t0 + ms(200));
        let [Message::Pace(pace)] = &lines[..] else {
            panic!("{lines:?}")
        };
        assert_eq!(
            (pace.t0_ms, pace.lag_us, pace.hist.is_none()),
            (2_000, 0, true)
        );
        // Every line parses back as sent.
        for m in &lines {
            assert_eq!(Message::parse(&m.encode()).as_ref(), Ok(m));
        }
    }
}
