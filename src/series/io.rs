//! The host's I/O view over time (`io` lines; see `crate::hostio`).

use serde::{Deserialize, Serialize};

use super::{reserve_one, thin, widen, MAX_SAMPLES};
use crate::hostio::HostIoSample;

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
            thin(&mut self.samples, &mut self.stride);
        }
        reserve_one(&mut self.samples);
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
