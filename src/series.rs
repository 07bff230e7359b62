//! Bounded per-client time series of throughput, CPU and memory, kept by the server for the
//! dashboard's charts and the HTML report.
//!
//! A series holds at most [`MAX_SAMPLES`] points however long the run: when it is full, every
//! other point is dropped and from then on only every second sample is kept (then every fourth,
//! and so on), so the series always covers the whole run at an even resolution. Throughput is
//! recomputed between the points kept, so it stays the true average over each interval.

use serde::{Deserialize, Serialize};

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
    /// Keep one sample in `stride`.
    stride: u32,
    /// Samples seen since the last one kept.
    seen: u32,
}

impl Series {
    /// Marks the start of the run at `t_s`.
    pub(crate) fn start(&mut self, t_s: f64, bytes_written: u64) {
        self.origin = (t_s, bytes_written);
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
        }
        let base = self
            .samples
            .last()
            .map_or(self.origin, |p| (f64::from(p.t_s), p.bytes_written));
        if self.samples.len() == self.samples.capacity() {
            // Grow by doubling, but never past the bound.
            let want = (self.samples.capacity() * 2).clamp(4, MAX_SAMPLES);
            self.samples.reserve_exact(want - self.samples.len());
        }
        self.samples
            .push(Stored::new(&s, rate(base, (s.t_s, s.bytes_written))));
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
    to.1.saturating_sub(from.1) as f64 / crate::report::BYTES_PER_MB / dt
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
}
