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
) -> Vec<ChunkTimes> {
    let mut now = t0;
    (0..chunks)
        .map(|k| {
            let due = p.next(len);
            let started = now.max(due);
            let finished = started + service(k);
            now = finished;
            ChunkTimes {
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
    assert_eq!(p.rate_bytes_per_s(), 3.0 * MIB as f64);
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
    let plain = ChunkTimes {
        scheduled: None,
        started: t0,
        finished: t0 + ms(7),
    };
    assert_eq!(
        (plain.response(), plain.start_lag()),
        (ms(7), Duration::ZERO)
    );
    // A chunk begun before it was due (not the stream's way, but a caller's): from its start.
    let early = ChunkTimes {
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
        assert_eq!(p.rate_bytes_per_s(), 10.0 * MIB as f64);
        due.extend((0..100).map(|_| p.next(MIB)));
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
