//! The schedule on made-up times (an injected clock: every instant is `t0` plus a duration).

use super::*;

const MIB: u64 = 1024 * 1024;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A paced stream on made-up times, as the stream loop runs it with one write at a time: each
/// chunk of `len` begins at the later of its due time and the end of the one before (never
/// before it is due), and its write takes `service(k)`. Returns each chunk's times and, for
/// each chunk, the stream's lag just before it began.
fn simulate(
    p: &mut Pacer,
    t0: Instant,
    chunks: usize,
    len: u64,
    service: impl Fn(usize) -> Duration,
) -> Vec<Done> {
    let mut now = t0;
    (0..chunks)
        .map(|k| {
            let due = p.next(len);
            let started = now.max(due);
            let finished = started + service(k);
            now = finished;
            Done {
                len,
                scheduled: Some(due),
                started,
                finished,
            }
        })
        .collect()
}

#[test]
fn the_schedule_is_exact() {
    let t0 = Instant::now();
    // 4 MiB/s in 1 MiB chunks: one every 250 ms, from the start.
    let mut p = Pacer::new(4.0 * MIB as f64, t0);
    assert_eq!(p.next_due(), t0);
    for k in 0..1_000u32 {
        assert_eq!(p.next(MIB), t0 + ms(250) * k, "chunk {k}");
    }
    // 10 MiB/s: 100 ms per MiB; the due time counts bytes, so a short chunk (a file's last)
    // moves the schedule by its own length only.
    let mut p = Pacer::new(10.0 * MIB as f64, t0);
    assert_eq!(p.next(MIB), t0);
    assert_eq!(p.next(MIB / 2), t0 + ms(100));
    assert_eq!(p.next(MIB), t0 + ms(150));
    assert_eq!(p.next(3 * MIB), t0 + ms(250));
    assert_eq!(p.next_due(), t0 + ms(550));
    // Computed from the bytes, not added up step by step: no drift after 10^6 chunks of a
    // rate whose period (1/3 s) is not exact in binary.
    let mut p = Pacer::new(3.0 * MIB as f64, t0);
    for _ in 0..1_000_000 {
        p.next(MIB);
    }
    let want = t0 + Duration::from_secs(1_000_000 / 3) + Duration::from_nanos(333_333_333);
    let got = p.next_due();
    assert!(
        got.max(want) - got.min(want) <= Duration::from_micros(1),
        "{got:?} {want:?}"
    );
}

#[test]
fn the_lag_is_how_long_ago_the_next_chunk_came_due() {
    let t0 = Instant::now();
    let mut p = Pacer::new(4.0 * MIB as f64, t0);
    assert_eq!(p.lag(t0), Duration::ZERO);
    p.next(MIB); // chunk 0, due at t0; chunk 1 is due at 250 ms
    assert_eq!(p.lag(t0 + ms(100)), Duration::ZERO, "not due yet");
    assert_eq!(p.lag(t0 + ms(250)), Duration::ZERO);
    assert_eq!(p.lag(t0 + ms(600)), ms(350));
    p.next(MIB); // chunk 1 handed out at 600 ms: chunk 2 was due at 500 ms
    assert_eq!(p.lag(t0 + ms(600)), ms(100));
    p.next(MIB); // chunk 2: now chunk 3 is due at 750 ms
    assert_eq!(p.lag(t0 + ms(600)), Duration::ZERO, "caught up");
}

#[test]
fn a_stall_makes_lag_and_the_stream_catches_up_at_once_but_never_early() {
    let t0 = Instant::now();
    // 100 MiB/s in 1 MiB chunks: one due every 10 ms; each write takes 2 ms, but chunk 5's
    // takes 500 ms (a stalled device).
    let mut p = Pacer::new(100.0 * MIB as f64, t0);
    let service = |k: usize| if k == 5 { ms(500) } else { ms(2) };
    let times = simulate(&mut p, t0, 200, MIB, service);
    // Before the stall: each chunk begins exactly when due.
    for (k, c) in times.iter().enumerate().take(6) {
        assert_eq!(c.started, t0 + ms(10) * k as u32, "chunk {k}");
        assert_eq!(c.start_lag(), Duration::ZERO);
    }
    // During the stall (chunk 5 runs from 50 to 550 ms), the lag grows from when chunk 6 came
    // due (60 ms): at 300 ms the stream is 240 ms behind.
    let mut q = Pacer::new(100.0 * MIB as f64, t0);
    for _ in 0..6 {
        q.next(MIB);
    }
    assert_eq!(q.lag(t0 + ms(300)), ms(240));
    assert_eq!(q.lag(t0 + ms(550)), ms(490));
    // After it: the overdue chunks go back to back (each starts when the one before ended),
    // the lag shrinking by 8 ms a chunk (10 ms of schedule per 2 ms of write) ...
    assert_eq!(times[6].started, t0 + ms(550));
    assert_eq!(times[6].start_lag(), ms(490));
    let back_to_back = times
        .windows(2)
        .skip(6)
        .take_while(|w| w[1].start_lag() > Duration::ZERO)
        .count();
    for w in times[6..].windows(2).take(back_to_back) {
        assert_eq!(w[1].started, w[0].finished, "written at once");
        assert_eq!(w[0].start_lag() - w[1].start_lag(), ms(8));
    }
    // ... until it is back on its schedule (490 / 8 = 61.25: the 62nd after chunk 6), and
    // from then on each chunk waits for its due time again.
    assert_eq!(back_to_back, 61);
    for (k, c) in times.iter().enumerate().skip(6 + 62) {
        assert_eq!(c.started, t0 + ms(10) * k as u32, "chunk {k} on time");
    }
    // Never a chunk before it was due, and never more than the schedule: by any time, at
    // most the bytes due by then have begun.
    for c in &times {
        assert!(c.started >= c.scheduled.unwrap());
    }
}

#[test]
fn response_time_counts_the_wait_behind_a_stall() {
    let t0 = Instant::now();
    let mut p = Pacer::new(100.0 * MIB as f64, t0);
    let times = simulate(
        &mut p,
        t0,
        100,
        MIB,
        |k| if k == 5 { ms(500) } else { ms(2) },
    );
    // Service times: one slow write, the rest 2 ms, as a closed loop sees them.
    let slow_service = times.iter().filter(|c| c.service() > ms(100)).count();
    assert_eq!(slow_service, 1);
    assert_eq!(times[5].service(), ms(500));
    // Response times (from when each was due): the stalled write's own, plus every chunk that
    // came due during the stall and waited behind it, each by how long it waited.
    assert_eq!(times[5].response(), ms(500));
    assert_eq!(times[6].response(), ms(490 + 2));
    assert_eq!(times[7].response(), ms(482 + 2));
    let slow_response = times.iter().filter(|c| c.response() > ms(100)).count();
    // Chunk 5, and chunks 6 to 54 (start lag above 98 ms), took over 100 ms from their due
    // time: 50 slow responses where the closed loop saw one slow write.
    assert_eq!(slow_response, 1 + 49);
    for c in &times {
        assert_eq!(c.response(), c.start_lag() + c.service());
    }
    // Without a schedule, both are the service time.
    let plain = Done {
        len: MIB,
        scheduled: None,
        started: t0,
        finished: t0 + ms(7),
    };
    assert_eq!(
        (plain.response(), plain.start_lag()),
        (ms(7), Duration::ZERO)
    );
    // A chunk begun before it was due (not the stream's way, but a caller's): from its start.
    let early = Done {
        scheduled: Some(t0 + ms(5)),
        ..plain
    };
    assert_eq!(
        (early.response(), early.start_lag()),
        (ms(7), Duration::ZERO)
    );
}

#[test]
fn the_average_rate_is_the_target_when_the_device_keeps_up() {
    let t0 = Instant::now();
    // 50 MiB/s in 10 MiB chunks over 30 s, writes of 40 ms (250 MiB/s) with a 1-s stall at
    // 10 s: the bytes begun by any time t are the schedule's, within one chunk, once caught up.
    let rate = 50.0 * MIB as f64;
    let mut p = Pacer::new(rate, t0);
    let times = simulate(&mut p, t0, 150, 10 * MIB, |k| {
        if k == 50 {
            Duration::from_secs(1)
        } else {
            ms(40)
        }
    });
    let end = t0 + Duration::from_secs(30);
    let begun = times.iter().filter(|c| c.started < end).count() as f64 * 10.0;
    assert_eq!(begun, 1500.0, "30 s at 50 MiB/s");
    let written = times.iter().filter(|c| c.finished <= end).count() as f64 * 10.0;
    assert!(
        (written / 30.0 - 50.0).abs() / 50.0 <= 0.02,
        "{written} MiB in 30 s"
    );
}

#[test]
fn streams_share_a_rate_evenly_spaced() {
    let t0 = Instant::now();
    // 30 MiB/s over 3 streams in 1 MiB chunks: each stream 10 MiB/s (one chunk every 100 ms),
    // stream i starting i/30 s later, so the client's chunks come due every 1/30 s.
    let mut due: Vec<Instant> = Vec::new();
    for i in 0..3 {
        let mut p = Pacer::for_stream(30.0 * MIB as f64, 3, i, MIB, t0);
        let mine: Vec<Instant> = (0..100).map(|_| p.next(MIB)).collect();
        // Each stream at 10 MiB/s: a chunk every 100 ms of its own.
        assert!(
            mine.windows(2).all(|w| w[1] - w[0] == ms(100)),
            "stream {i}"
        );
        due.extend(mine);
    }
    due.sort();
    for (k, w) in due.windows(2).enumerate() {
        let gap = (w[1] - w[0]).as_nanos() as i128;
        assert!((gap - 33_333_333).abs() <= 2, "gap {k}: {gap} ns");
    }
    // One stream: the client's own schedule.
    let mut one = Pacer::for_stream(30.0 * MIB as f64, 1, 0, MIB, t0);
    assert_eq!(
        (one.next(MIB), one.next(MIB)),
        (t0, t0 + Duration::from_nanos(33_333_333))
    );
}

#[test]
fn extreme_rates_do_not_overflow() {
    let t0 = Instant::now();
    // A rate so low that the second chunk is due after every run time: due "never" (the
    // schedule's far end), not a panic or a wrap to the past.
    let mut p = Pacer::new(1e-300, t0);
    assert_eq!(p.next(MIB), t0);
    assert!(p.next_due() >= t0 + Duration::from_secs(999_999_999));
    assert_eq!(p.lag(t0 + Duration::from_secs(3600)), Duration::ZERO);
    // The highest rate a setting allows (10^6 MiB/s) and a byte count at its end.
    let mut p = Pacer::new(1e6 * MIB as f64, t0);
    p.next(u64::MAX);
    p.next(u64::MAX);
    assert!(p.next_due() > t0);
}

/// The stream loop with its schedule, on an injected clock: an engine that writes nothing and
/// runs on made-up times (each chunk begins at the later of its due time and the end of the
/// one before; `service(k)` long), so that no test waits for a real schedule.
mod stream_loop {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::error::Result;
    use crate::protocol::Message;
    use crate::workload::file_writer::engine::{Chunk, Engine};
    use crate::workload::file_writer::stream::Stream;
    use crate::workload::file_writer::verified::RunVerify;
    use crate::workload::file_writer::{FileWriterConfig, KeepFiles};
    use crate::workload::Context;

    /// The made-up engine: its clock, the chunks it saw, and how many it has written.
    struct Simulated<'a> {
        now: Instant,
        service: fn(usize) -> Duration,
        seen: &'a Mutex<Vec<Done>>,
        count: &'a AtomicUsize,
    }

    impl Engine for Simulated<'_> {
        fn describe(&self) -> String {
            "simulated".into()
        }

        fn write_file(
            &mut self,
            _file: &std::fs::File,
            _path: &Path,
            next: &mut dyn FnMut() -> Option<Chunk>,
            done: &mut dyn FnMut(Done) -> Result<()>,
            _stop: &dyn Fn() -> bool,
            _fill: Option<&crate::workload::file_writer::engine::Fill<'_>>,
        ) -> Result<bool> {
            while let Some(c) = next() {
                let k = self.count.load(Ordering::Relaxed);
                // Never before it is due: the engine's rule, on the made-up clock.
                let started = c.scheduled.map_or(self.now, |s| s.max(self.now));
                let finished = started + (self.service)(k);
                self.now = finished;
                let d = Done {
                    len: c.len,
                    scheduled: c.scheduled,
                    started,
                    finished,
                };
                self.seen.lock().unwrap().push(d);
                self.count.fetch_add(1, Ordering::Relaxed);
                done(d)?;
            }
            Ok(true)
        }
    }

    /// Runs stream `index` of a paced run (`rate_mb_s` over `jobs` streams, 1 MiB chunks, 2 MiB
    /// files) for `chunks` chunks on the made-up clock from `t0`; its chunks' times.
    fn run(
        ctx: &Context,
        rate_mb_s: f64,
        jobs: u32,
        index: Option<u32>,
        chunks: usize,
        service: fn(usize) -> Duration,
        t0: Instant,
    ) -> Vec<Done> {
        let dir = tempfile::tempdir().unwrap();
        let config = FileWriterConfig {
            chunk_size_bytes: MIB,
            file_size_bytes: 2 * MIB,
            min_chunk_size_bytes: MIB,
            out_dir: dir.path().to_path_buf(),
            keep_files: KeepFiles::Last(1),
            jobs,
            rate_mb_s: Some(rate_mb_s),
            run_time_s: 3600.0,
            ..Default::default()
        };
        let (seen, count) = (Mutex::new(Vec::new()), AtomicUsize::new(0));
        let halt = || count.load(Ordering::Relaxed) >= chunks;
        let verify = RunVerify::new(&config, ctx).unwrap();
        let stream = Stream {
            config: &config,
            ctx: index.map_or_else(|| ctx.clone(), |i| ctx.stream(i).unwrap()),
            halt: &halt,
            pace_start: Some(t0),
            verify: &verify,
        };
        let mut engine = Simulated {
            now: t0,
            service,
            seen: &seen,
            count: &count,
        };
        stream.run(&mut engine).unwrap();
        seen.into_inner().unwrap()
    }

    /// The histograms of the `rlat` and `pace` lines the context has for the client now.
    fn sent(ctx_control: &crate::workload::RunControl) -> (Histogram<u64>, Histogram<u64>) {
        let (lines, dropped) = ctx_control.counters().take_pace_lines(u64::MAX);
        assert!(dropped.is_empty());
        let mut response = crate::latency::new_histogram();
        let mut lags = crate::latency::new_histogram();
        for m in lines {
            match m {
                Message::RespLat(l) => response.add(l.hist.histogram()).unwrap(),
                Message::Pace(p) => {
                    if let Some(h) = &p.hist {
                        lags.add(h.histogram()).unwrap();
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        (response, lags)
    }

    #[test]
    fn the_loop_keeps_the_schedule_across_files_and_records_both_latencies() {
        let t0 = Instant::now();
        let (ctx, control, _rx) = Context::new(7, t0, None);
        ctx.start_pace(100.0 * MIB as f64, 1);
        // 100 MiB/s in 1 MiB chunks (one due every 10 ms), 2 ms writes, but chunk 5's takes
        // 500 ms: a stall.
        let times = run(
            &ctx,
            100.0,
            1,
            None,
            200,
            |k| if k == 5 { ms(500) } else { ms(2) },
            t0,
        );
        assert_eq!(times.len(), 200);
        // The schedule: exact, and one across the stream's files (2 chunks each).
        for (k, d) in times.iter().enumerate() {
            assert_eq!(d.scheduled, Some(t0 + ms(10) * k as u32), "chunk {k}");
            assert!(d.started >= d.scheduled.unwrap(), "never early");
        }
        // The stall: the chunks that came due during it waited, then went back to back.
        assert_eq!(times[6].start_lag(), ms(490));
        assert_eq!(times[7].started, times[6].finished);
        assert_eq!(times[68].start_lag(), Duration::ZERO, "caught up");
        // What the client sends: every chunk's response time (the wait behind the stall
        // included: 50 over 100 ms) and start lag; its service times stay one slow write.
        let (response, lags) = sent(&control);
        assert_eq!((response.len(), lags.len()), (200, 200));
        let over_100ms = |h: &Histogram<u64>| h.len() - h.count_between(0, 100_000);
        assert_eq!(over_100ms(&response), 50);
        let (_, service) = control.counters().take_interval(u64::MAX).unwrap();
        assert_eq!(over_100ms(&service), 1);
        assert!(lags.equivalent(lags.max(), 490_000));
        assert_eq!(lags.count_between(0, 0), 200 - 62, "the rest began on time");
        assert_eq!(ctx.bytes_written(), 200 * MIB);
    }

    #[test]
    fn a_clients_rate_is_split_across_its_streams_evenly_spaced() {
        let t0 = Instant::now();
        let (ctx, control, _rx) = Context::new(7, t0, None);
        ctx.start_pace(30.0 * MIB as f64, 3);
        let mut due: Vec<Instant> = Vec::new();
        for i in 0..3 {
            let times = run(&ctx, 30.0, 3, Some(i), 20, |_| ms(1), t0);
            // Each stream at 10 MiB/s: one chunk every 100 ms, from its own phase.
            for w in times.windows(2) {
                assert_eq!(w[1].scheduled.unwrap() - w[0].scheduled.unwrap(), ms(100));
            }
            due.extend(times.iter().map(|d| d.scheduled.unwrap()));
        }
        due.sort();
        for w in due.windows(2) {
            let gap = (w[1] - w[0]).as_nanos() as i128;
            assert!((gap - 33_333_333).abs() <= 2, "{gap} ns");
        }
        let (response, _) = sent(&control);
        assert_eq!(response.len(), 60);
        // The client's pace line carries the client's rate, not a stream's.
        let (lines, _) = control.counters().take_pace_lines(u64::MAX);
        let [Message::Pace(p)] = &lines[..] else {
            panic!("{lines:?}")
        };
        assert_eq!(p.rate_mb_s, 30.0);
    }
}
