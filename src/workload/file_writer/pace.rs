//! Paced writes: the schedule a stream keeps at a set rate ([`Pacer`]), and what a written
//! chunk's times say ([`Done::service`], [`Done::response`], [`Done::start_lag`]).
//!
//! The schedule is fixed from the rate and the start, as wrk2 and fio's `rate` keep it: chunk
//! `k` is due at `start + (bytes of chunks 0..k) / rate`. A stream that falls behind (a slow
//! device, a stall) does not move its schedule: the chunks that came due meanwhile are written
//! at once, one after another (never earlier than due, so never faster than the device takes
//! them), until the stream is back on time, and from then on each waits for its due time again.
//! So the run's average rate is the target whenever the device can catch up, and a chunk's
//! latency can be measured from when it was due (the *response* time, which counts the time it
//! waited behind a stall: coordinated omission corrected) as well as from when it began (the
//! *service* time).
//!
//! Nothing here reads a clock: every time is an [`Instant`] handed in, so the schedule is tested
//! on made-up times.

use std::time::{Duration, Instant};

use super::engine::Done;

/// Farthest a due time is placed after the start, seconds (every duration's bound; a rate so
/// low that a chunk comes due later than this is due "never" within any run time).
const FAR_S: f64 = crate::units::MAX_SECONDS;

/// One stream's schedule at a fixed rate: at 4 MiB/s, 1 MiB chunks come due at the start, then
/// every 0.25 s; at 0.6 s, with the third chunk (due at 0.5 s) not yet begun, the stream is
/// 0.1 s behind.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    start: Instant,
    rate_bytes_per_s: f64,
    /// Bytes handed out so far: where the schedule stands.
    bytes: u64,
    /// When the next chunk is due (the due time of `bytes`).
    next_due: Instant,
}

impl Pacer {
    /// The schedule of a stream writing `rate_bytes_per_s` (finite, above 0: a validated
    /// setting) from `start`.
    pub(crate) fn new(rate_bytes_per_s: f64, start: Instant) -> Pacer {
        Pacer {
            start,
            rate_bytes_per_s,
            bytes: 0,
            next_due: start,
        }
    }

    /// Stream `index` of `streams` that share a client's `rate_bytes_per_s` evenly: each
    /// writes at `rate / streams`, stream `index` starting `index` chunks of `chunk_bytes`
    /// (at the client's rate) after `start`, so that the client's chunks come due evenly
    /// spaced, as one stream at the client's rate would write them.
    pub(crate) fn for_stream(
        rate_bytes_per_s: f64,
        streams: u32,
        index: u32,
        chunk_bytes: u64,
        start: Instant,
    ) -> Pacer {
        let streams = streams.max(1);
        let phase_s = f64::from(index % streams) * chunk_bytes as f64 / rate_bytes_per_s;
        Pacer::new(rate_bytes_per_s / f64::from(streams), later(start, phase_s))
    }

    /// The due time of the next chunk, of `len` bytes, and the schedule moves on by `len`.
    pub(crate) fn next(&mut self, len: u64) -> Instant {
        let due = self.next_due;
        self.bytes = self.bytes.saturating_add(len);
        self.next_due = later(self.start, self.bytes as f64 / self.rate_bytes_per_s);
        due
    }

    /// When the next chunk (the one [`Pacer::next`] hands out next) is due.
    pub(crate) fn next_due(&self) -> Instant {
        self.next_due
    }

    /// How far behind its schedule the stream is at `now`: how long ago the next chunk came
    /// due (zero while it is not due yet).
    pub(crate) fn lag(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.next_due)
    }
}

/// `start` plus `s` seconds; [`FAR_S`] at most (a non-finite or huge `s` is "never").
fn later(start: Instant, s: f64) -> Instant {
    let d = Duration::try_from_secs_f64(s.min(FAR_S)).unwrap_or(Duration::ZERO);
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs_f64(FAR_S)))
        .unwrap_or(start)
}

/// A written chunk's latencies, from its times (when it was due, when its write began and
/// ended; see [`Done`]).
impl Done {
    /// Service time: from the write's start to its end.
    pub(crate) fn service(&self) -> Duration {
        self.finished.saturating_duration_since(self.started)
    }

    /// Response time: from when the chunk was due to the end of its write (coordinated
    /// omission corrected: a chunk that waited behind a stall counts the wait). Without a
    /// schedule, or for a chunk begun before it was due, the service time.
    pub(crate) fn response(&self) -> Duration {
        let from = self.scheduled.map_or(self.started, |s| s.min(self.started));
        self.finished.saturating_duration_since(from)
    }

    /// How late the write began: from when it was due to when it began (zero when on time or
    /// without a schedule).
    pub(crate) fn start_lag(&self) -> Duration {
        self.scheduled.map_or(Duration::ZERO, |s| {
            self.started.saturating_duration_since(s)
        })
    }
}

#[cfg(test)]
mod tests;
