//! Honest CPU samples: each sample covers a wall interval long enough for its counters
//! ([`Window`]: a too-short interval, such as the last one of a run, is folded into the ones
//! before it), and no figure goes above what the hardware allows ([`figures`]: one thread at
//! most one core, a process at most every core; clamped, with a [`Note`], only where the
//! measurement failed beyond [`CPU_TOLERANCE_PCT`]).
//!
//! Nothing here reads a clock or a counter: the sampler (in the parent module) takes each
//! [`Reading`], so that the rules are tested with injected counters.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// The shortest wall interval a CPU sample covers. A counter read from outside a running
/// thread (`/proc/…/schedstat`) lags by up to one scheduler tick (1–10 ms): over 0.5 s that
/// is at most 2 % of a core, within [`CPU_TOLERANCE_PCT`]. Counters of a coarser resolution
/// need more ([`min_interval`]).
pub const MIN_CPU_SAMPLE: Duration = Duration::from_millis(500);

/// How far above the hardware's limit (100 % for one thread, 100 % of every core for a
/// process) a measured figure may go from clock skew alone: two readings of a running
/// thread's counter that lag by up to one scheduler tick (10 ms at 100 Hz) over the shortest
/// sample ([`MIN_CPU_SAMPLE`]: 2 %), the time a reading takes, and the client's own pieces of
/// work, which run beside its writer thread. A figure beyond it is a failed measurement:
/// clamped to the limit and logged ([`Note::Clamped`]).
pub const CPU_TOLERANCE_PCT: f64 = 5.0;

/// Most readings a [`Window`] keeps (a stats period of 1 ms would otherwise keep 500):
/// memory stays bounded whatever the period, and a sample then covers the last
/// `MAX_READINGS` periods.
const MAX_READINGS: usize = 1024;

/// The shortest interval a sample may cover for counters of `resolution`: 100 × the
/// resolution, and never under [`MIN_CPU_SAMPLE`] (1 s for the kernel's 10 ms clock ticks).
pub fn min_interval(resolution: Duration) -> Duration {
    MIN_CPU_SAMPLE.max(resolution.saturating_mul(100))
}

/// One reading of the CPU counters a sampler follows, and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// When the counters were read (the middle of the read).
    pub at: Instant,
    /// CPU time of the client's writer thread(s), ns (0 for a process's sampler).
    pub thread_ns: u64,
    /// CPU time of the rest that is measured, ns: the client's pieces of work on the
    /// runtime's threads, or the whole process for a process's sampler.
    pub rest_ns: u64,
    /// The most writer threads that ran at once so far (a workload's streams): their CPU
    /// reaches at most that many cores (0 for a process's sampler).
    pub writer_threads: u32,
}

/// What one sample's CPU covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The writer thread(s)' CPU over the interval, % of one core.
    pub thread_pct: f64,
    /// The most writer threads that ran at once (at least 1 counted for the bound).
    pub writer_threads: u32,
    /// The rest's CPU over the interval, % of one core.
    pub rest_pct: f64,
    /// The wall time covered.
    pub wall: Duration,
    /// Whether the interval since the previous sample was too short, so that this sample
    /// covers it and the one(s) before it.
    pub folded: bool,
}

/// The readings a sample may start from: each sample covers the interval from the latest
/// reading at least `min` old (or the first reading, if none is) to now. With a stats period
/// of at least `min` that is the interval since the previous sample, except for a short last
/// one, which covers the interval before it too: a final interval of 3 ms is not measured
/// alone (where the counters' lag of a few ms would read as 200 %).
#[derive(Debug)]
pub struct Window {
    /// Oldest first; never empty.
    readings: VecDeque<Reading>,
}

impl Window {
    /// A window whose first sample starts at `first`.
    pub fn new(first: Reading) -> Self {
        Window {
            readings: VecDeque::from([first]),
        }
    }

    /// The interval from the right reading (see [`Window`]) to `now`, which is kept for the
    /// samples to come. A counter never goes back: a reading below the previous one (a
    /// counter read two ways) counts as no CPU, and does not make the next interval larger.
    pub fn interval(&mut self, now: Reading, min: Duration) -> Interval {
        let last = *self.readings.back().unwrap_or(&now);
        let now = Reading {
            at: now.at.max(last.at),
            thread_ns: now.thread_ns.max(last.thread_ns),
            rest_ns: now.rest_ns.max(last.rest_ns),
            writer_threads: now.writer_threads.max(last.writer_threads),
        };
        let i = self
            .readings
            .iter()
            .rposition(|r| now.at.duration_since(r.at) >= min)
            .unwrap_or(0);
        let base = self.readings[i];
        let wall = now.at.duration_since(base.at);
        let pct = |a: u64, b: u64| {
            if wall.is_zero() {
                0.0
            } else {
                a.saturating_sub(b) as f64 * 100.0 / wall.as_nanos() as f64
            }
        };
        let interval = Interval {
            thread_pct: pct(now.thread_ns, base.thread_ns),
            writer_threads: now.writer_threads,
            rest_pct: pct(now.rest_ns, base.rest_ns),
            wall,
            folded: i + 1 < self.readings.len(),
        };
        self.readings.push_back(now);
        // The front is needed while no later reading is itself at least `min` old.
        while self.readings.len() > MAX_READINGS
            || (self.readings.len() > 1 && now.at.duration_since(self.readings[1].at) >= min)
        {
            self.readings.pop_front();
        }
        interval
    }

    /// Readings kept (for tests of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.readings.len()
    }
}

/// Something a sampler wants its owner to log: `stats` is a leaf module with no log of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// The writer thread's CPU is read from the kernel's clock ticks (`/proc/…/stat`), its
    /// nanosecond counter (`/proc/…/schedstat`) being missing: samples then cover at least
    /// `min_interval`. Noted once per sampler.
    Ticks {
        /// The ticks' resolution.
        resolution: Duration,
        /// The shortest interval a sample now covers.
        min_interval: Duration,
    },
    /// A figure above what the hardware allows, beyond [`CPU_TOLERANCE_PCT`], was clamped.
    Clamped {
        /// Which figure: `"writer thread"` or `"process"`.
        figure: &'static str,
        /// What was measured, % of one core.
        measured_pct: f64,
        /// What it was clamped to, % of one core.
        limit_pct: f64,
        /// The wall time the sample covered.
        wall: Duration,
    },
    /// The interval since the previous sample was too short to measure alone: the sample
    /// covers `wall`, that interval and the one(s) before it.
    Folded {
        /// The wall time the sample covered.
        wall: Duration,
    },
}

impl Note {
    /// Whether the note says a measurement went wrong (else it only explains one).
    pub fn is_warning(&self) -> bool {
        !matches!(self, Note::Folded { .. })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Ticks {
                resolution,
                min_interval,
            } => write!(
                f,
                "per-thread CPU from clock ticks ({} ms), the nanosecond counter \
                 (/proc/…/schedstat) being missing: each CPU sample covers at least {:.2} s",
                resolution.as_millis(),
                min_interval.as_secs_f64()
            ),
            Note::Clamped {
                figure,
                measured_pct,
                limit_pct,
                wall,
            } => write!(
                f,
                "CPU sample clamped: the {figure} measured {measured_pct:.2} % over {:.3} s, \
                 above the {limit_pct:.0} % the hardware allows (a counter misread?)",
                wall.as_secs_f64()
            ),
            Note::Folded { wall } => write!(
                f,
                "CPU sample folded: the interval since the previous sample was too short \
                 to measure alone; this sample covers the last {:.3} s",
                wall.as_secs_f64()
            ),
        }
    }
}

/// The sample's CPU figures from `interval` on a machine of `cores` logical cores: `(cpu_pct,
/// cpu_core_pct)` — % of one core, and % of every core. The writer threads count at most
/// one core each (and no more than every core) and the whole at most every core: a figure above its limit by more than
/// [`CPU_TOLERANCE_PCT`] is clamped to it and noted in `notes` (within the tolerance it is
/// clock skew, and reported as measured).
pub fn figures(interval: &Interval, cores: usize, notes: &mut Vec<Note>) -> (f64, f64) {
    let cores_pct = cores.max(1) as f64 * 100.0;
    let mut clamp = |figure: &'static str, measured_pct: f64, limit_pct: f64| {
        if measured_pct > limit_pct + CPU_TOLERANCE_PCT {
            notes.push(Note::Clamped {
                figure,
                measured_pct,
                limit_pct,
                wall: interval.wall,
            });
            limit_pct
        } else {
            measured_pct
        }
    };
    let writers_pct = f64::from(interval.writer_threads.max(1)) * 100.0;
    let thread_pct = clamp(
        "writer thread",
        interval.thread_pct,
        writers_pct.min(cores_pct),
    );
    let cpu_pct = clamp("process", thread_pct + interval.rest_pct, cores_pct);
    (cpu_pct, (cpu_pct * 100.0 / cores_pct).min(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(t0: Instant, ms: u64, thread_ms: u64) -> Reading {
        Reading {
            at: t0 + Duration::from_millis(ms),
            thread_ns: thread_ms * MS,
            rest_ns: 0,
            writer_threads: 1,
        }
    }

    /// The case: a writer busy all along, read with a lag of 4 ms (one tick at 250 Hz)
    /// at the 2 s sample, and exactly when it ends 3 ms later. Alone, that last interval reads
    /// 7 ms of CPU in 3 ms (233 %); folded into the one before, it is one core.
    #[test]
    fn a_tiny_last_interval_is_folded_into_the_one_before() {
        let t0 = Instant::now();
        let mut w = Window::new(at(t0, 0, 0));
        let first = w.interval(at(t0, 1000, 996), MIN_CPU_SAMPLE);
        let second = w.interval(at(t0, 2000, 1996), MIN_CPU_SAMPLE);
        assert!(!first.folded && !second.folded);
        assert_eq!(first.wall, Duration::from_secs(1));
        let last = w.interval(at(t0, 2003, 2003), MIN_CPU_SAMPLE);
        assert!(last.folded, "{last:?}");
        assert_eq!(last.wall, Duration::from_millis(1003));
        let alone = (2003.0 - 1996.0) * 100.0 / 3.0;
        assert!(alone > 200.0);
        assert!(
            last.thread_pct <= 100.0 + CPU_TOLERANCE_PCT,
            "{last:?} (alone it would read {alone:.0} %)"
        );
        let mut notes = Vec::new();
        let (cpu, core) = figures(&last, 2, &mut notes);
        assert!((cpu - 100.4).abs() < 0.01, "{cpu}");
        assert!((core - cpu / 2.0).abs() < 1e-9);
        assert!(
            notes.is_empty(),
            "skew within tolerance is not clamped: {notes:?}"
        );
    }

    #[test]
    fn a_run_shorter_than_the_minimum_is_measured_from_its_start() {
        let t0 = Instant::now();
        let mut w = Window::new(at(t0, 0, 0));
        let only = w.interval(at(t0, 300, 297), MIN_CPU_SAMPLE);
        assert!(!only.folded);
        assert_eq!(only.wall, Duration::from_millis(300));
        assert!((only.thread_pct - 99.0).abs() < 1e-9, "{only:?}");
    }

    #[test]
    fn a_long_last_interval_stands_alone() {
        let t0 = Instant::now();
        let mut w = Window::new(at(t0, 0, 0));
        w.interval(at(t0, 1000, 500), MIN_CPU_SAMPLE);
        let last = w.interval(at(t0, 1600, 1100), MIN_CPU_SAMPLE);
        assert!(!last.folded);
        assert_eq!(last.wall, Duration::from_millis(600));
        assert!((last.thread_pct - 100.0).abs() < 1e-9);
    }

    #[test]
    fn short_periods_make_samples_over_the_minimum_and_keep_few_readings() {
        let t0 = Instant::now();
        let mut w = Window::new(at(t0, 0, 0));
        // A 100 ms period, a writer at 50 %.
        for k in 1..=100u64 {
            let i = w.interval(at(t0, 100 * k, 50 * k), MIN_CPU_SAMPLE);
            let covered = Duration::from_millis(100 * k).min(MIN_CPU_SAMPLE);
            assert_eq!(i.wall, covered, "sample {k}");
            assert!((i.thread_pct - 50.0).abs() < 1e-9, "sample {k}: {i:?}");
            assert!(w.len() <= 7, "{}", w.len());
        }
        // A 1 ms period: bounded all the same.
        for k in 1..=5_000u64 {
            w.interval(at(t0, 10_000 + k, 5_000 + k), MIN_CPU_SAMPLE);
        }
        assert!(w.len() <= MAX_READINGS);
    }

    #[test]
    fn a_counter_that_goes_back_is_no_cpu_and_no_later_spike() {
        let t0 = Instant::now();
        let mut w = Window::new(at(t0, 0, 0));
        w.interval(at(t0, 1000, 900), MIN_CPU_SAMPLE);
        let back = w.interval(at(t0, 2000, 800), MIN_CPU_SAMPLE);
        assert_eq!(back.thread_pct, 0.0);
        let next = w.interval(at(t0, 3000, 1500), MIN_CPU_SAMPLE);
        assert!((next.thread_pct - 60.0).abs() < 1e-9, "{next:?}");
        // A clock that goes back reads as the latest reading again.
        let same = w.interval(at(t0, 2500, 1500), MIN_CPU_SAMPLE);
        assert_eq!(same.wall, Duration::from_secs(1));
        assert!((same.thread_pct - 60.0).abs() < 1e-9, "{same:?}");
    }

    #[test]
    fn figures_above_the_hardware_are_clamped_and_noted() {
        let i = |thread_pct, rest_pct| Interval {
            thread_pct,
            writer_threads: 1,
            rest_pct,
            wall: Duration::from_secs(1),
            folded: false,
        };
        let mut notes = Vec::new();
        // Four stream threads on 8 cores may use four of them.
        let streams = Interval {
            writer_threads: 4,
            ..i(390.0, 2.0)
        };
        assert_eq!(figures(&streams, 8, &mut notes), (392.0, 49.0));
        assert!(notes.is_empty());
        let busy = Interval {
            writer_threads: 4,
            ..i(390.0, 20.0)
        };
        assert_eq!(
            figures(&busy, 2, &mut notes).0,
            200.0,
            "no more than every core"
        );
        notes.clear();
        assert_eq!(figures(&i(99.0, 0.5), 2, &mut notes), (99.5, 49.75));
        assert_eq!(figures(&i(103.0, 0.0), 2, &mut notes), (103.0, 51.5));
        assert!(notes.is_empty());
        // A thread at 227 %: a failed measurement, clamped to one core.
        assert_eq!(figures(&i(227.0, 1.0), 2, &mut notes), (101.0, 50.5));
        assert!(matches!(
            notes.as_slice(),
            [Note::Clamped { figure: "writer thread", limit_pct, .. }] if *limit_pct == 100.0
        ));
        assert!(notes[0].is_warning() && notes[0].to_string().contains("227.00 %"));
        // A process at 350 % on 2 cores: clamped to both cores.
        notes.clear();
        assert_eq!(figures(&i(0.0, 350.0), 2, &mut notes), (200.0, 100.0));
        assert_eq!(notes.len(), 1);
        // Zero cores (unknown) counts as one.
        notes.clear();
        assert_eq!(figures(&i(0.0, 50.0), 0, &mut notes), (50.0, 50.0));
    }

    #[test]
    fn coarse_counters_need_longer_samples() {
        assert_eq!(min_interval(Duration::from_nanos(1)), MIN_CPU_SAMPLE);
        assert_eq!(
            min_interval(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
        assert!(!Note::Folded {
            wall: Duration::from_secs(1)
        }
        .is_warning());
    }
}
