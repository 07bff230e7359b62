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
fn the_total_sums_clients_per_bucket_from_the_common_start() {
    let mb = 1u64 << 20;
    // From t = 10 to t = 14: 0.5 s buckets (the smallest width).
    let mut t = TotalSeries::new(10.0, 14.0);
    // A client at 2 MiB/s from 10 to 14, sampled at 11 and 13.
    t.add([(10.0, 0), (11.0, 2 * mb), (13.0, 6 * mb), (14.0, 8 * mb)]);
    // A seed client (start and end only): 4 MiB over 12..14, 2 MiB/s.
    t.add([(12.0, 0), (14.0, 4 * mb)]);
    let s = t.finish();
    assert_eq!(s.len(), 8);
    assert!(s.windows(2).all(|w| w[0].t_s < w[1].t_s));
    assert_eq!(s[0].t_s, 0.5);
    assert_eq!(s[7].t_s, 4.0);
    assert_eq!(s[7].bytes_written, 12 * mb);
    for p in &s[..4] {
        assert!((p.throughput_mb_s - 2.0).abs() < 1e-9, "{p:?}");
    }
    for p in &s[4..] {
        assert!((p.throughput_mb_s - 4.0).abs() < 1e-9, "{p:?}");
    }
}

#[test]
fn the_total_stays_bounded_and_survives_odd_input() {
    let mut long = TotalSeries::new(0.0, 1e9);
    long.add([(0.0, 0), (1e9, u64::MAX)]);
    long.add([(0.0, u64::MAX), (5.0, 3), (1e9, u64::MAX)]);
    let s = long.finish();
    assert!(
        s.len() <= MAX_TOTAL_SAMPLES + 1 && !s.is_empty(),
        "{}",
        s.len()
    );
    assert_eq!(s.last().unwrap().bytes_written, u64::MAX);
    assert!(s.iter().all(|p| p.throughput_mb_s.is_finite()));
    // Empty or backwards spans have no bucket; a client without points adds nothing.
    assert!(TotalSeries::new(5.0, 5.0).finish().is_empty());
    assert!(TotalSeries::new(5.0, 1.0).finish().is_empty());
    assert!(TotalSeries::new(f64::NAN, 1.0).finish().is_empty());
    let mut t = TotalSeries::new(0.0, 2.0);
    t.add(std::iter::empty());
    // Points out of order are taken as they come, never panicking.
    t.add([(1.5, 10), (0.5, 20), (1.0, 5)]);
    assert_eq!(t.finish().len(), 4);
    // A client that ran before the common start counts only what it wrote after it.
    let mb = 1u64 << 20;
    let mut t = TotalSeries::new(10.0, 11.0);
    t.add([(0.0, 0), (10.0, 100 * mb), (11.0, 101 * mb)]);
    let s = t.finish();
    let sum: f64 = s.iter().map(|p| p.throughput_mb_s * 0.5).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{s:?}");
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

/// The newest point kept beside the points (`last`) is always what the points say: the
/// last point's (time, bytes), or the origin when there is none — through a start before
/// and after the first sample, uneven rates, and several halvings. Each new point's
/// throughput is the rate from that base, as it was when the base was read from the points.
#[test]
fn the_kept_newest_point_is_the_points_newest_through_halvings_and_restarts() {
    let base_of = |s: &Series| {
        s.samples
            .last()
            .map_or(s.origin, |p| (f64::from(p.t_s), p.bytes_written))
    };
    let mut s = Series::default();
    s.start(2.5, 1_000);
    assert_eq!(s.last, base_of(&s));
    let mut prev = (2.5, 1_000);
    let mut bytes = 1_000u64;
    // Odd times (not exact in f32) and uneven, sometimes falling, byte counts.
    for i in 1..=2_000u64 {
        if i == 700 {
            // A second start with points kept: the base stays the newest point.
            s.start(700.25, bytes);
            assert_eq!(s.last, base_of(&s));
        }
        bytes = if i % 97 == 0 {
            bytes / 2
        } else {
            bytes + (i * 7_919) % 3_000_017
        };
        let t = 2.5 + i as f64 * 1.1 + (i % 3) as f64 * 0.013;
        let before = base_of(&s);
        let kept = s.samples.len();
        let stride = s.stride.max(1);
        s.record(sample(t, bytes), &mut prev);
        assert_eq!(s.last, base_of(&s), "after sample {i}");
        if s.stride == stride && s.samples.len() == kept + 1 {
            let p = s.samples[s.samples.len() - 1];
            let want = rate(before, (t, bytes)) as f32;
            assert_eq!(p.throughput_mb_s, want, "sample {i}");
        }
    }
    assert!(s.stride >= 16, "several halvings: stride {}", s.stride);
    // A series recorded before its start, then started.
    let mut early = Series::default();
    let mut prev = (0.0, 0);
    early.record(sample(1.0, 10), &mut prev);
    early.start(0.5, 0);
    assert_eq!(early.last, base_of(&early));
    early.record(sample(2.0, 20), &mut prev);
    assert_eq!(early.last, (2.0, 20));
}

// ---- 1-second throughput ----

/// `reports` of a client as (seconds, MiB written so far) into a fresh series.
fn tput_of(reports: &[(f64, u64)]) -> TputSeries {
    let mut s = TputSeries::default();
    for &(t, mib) in reports {
        s.record(t, mib << 20);
    }
    s
}

fn rates(points: &[TputPoint]) -> Vec<Option<f64>> {
    points
        .iter()
        .map(|p| p.throughput_mb_s.map(|r| (r * 1e6).round() / 1e6))
        .collect()
}

#[test]
fn tput_points_are_the_measured_seconds() {
    // The first report (the run's start) is the origin; then one point per second.
    let reports: Vec<(f64, u64)> = (0..=12u32)
        .map(|i| (10.0 + f64::from(i), 2 * u64::from(i)))
        .collect();
    let s = tput_of(&reports);
    let pts = s.points();
    assert_eq!(s.origin_s(), Some(10.0));
    assert_eq!(pts.len(), 12);
    assert_eq!(pts[0].t_s, 11.0);
    assert_eq!(pts[11].bytes_written, 24 << 20);
    assert!(rates(&pts).iter().all(|r| *r == Some(2.0)), "{pts:?}");
    // One report only: nothing measured yet.
    assert!(tput_of(&[(3.0, 1)]).points().is_empty());
    assert!(tput_of(&[(3.0, 1)]).is_empty());
}

#[test]
fn a_final_interval_too_short_to_measure_is_folded_into_the_one_before() {
    // Ticks at 0, 1, 2; the workload ends and the last report comes 20 ms after the last
    // tick, with no more bytes: alone it would be a 0 MB/s point.
    let s = tput_of(&[(0.0, 0), (1.0, 4), (2.0, 8), (2.02, 8)]);
    let pts = s.points();
    assert_eq!(pts.len(), 2, "{pts:?}");
    assert_eq!((pts[1].t_s, pts[1].bytes_written), (2.02, 8 << 20));
    let last = pts[1].throughput_mb_s.unwrap();
    assert!((last - 4.0 / 1.02).abs() < 1e-9, "{last}");
    // A last interval of 0.6 s is measured: its own point.
    let pts = tput_of(&[(0.0, 0), (1.0, 4), (1.6, 7)]).points();
    assert_eq!(rates(&pts), [Some(4.0), Some(5.0)]);
    // A run shorter than the minimum still has its one point.
    let pts = tput_of(&[(0.0, 0), (0.3, 3)]).points();
    assert_eq!(rates(&pts), [Some(10.0)]);
    // Reports faster than the minimum interval are held back, not points.
    let fast: Vec<(f64, u64)> = (0..=40u32)
        .map(|i| (f64::from(i) * 0.1, u64::from(i)))
        .collect();
    let pts = tput_of(&fast).points();
    assert!(pts.len() <= 8, "{pts:?}");
    assert!(pts
        .windows(2)
        .all(|w| w[1].t_s - w[0].t_s >= MIN_INTERVAL_S - 1e-9));
    assert!(rates(&pts)
        .iter()
        .all(|r| r.is_some_and(|r| (r - 10.0).abs() < 1e-6)));
}

#[test]
fn missing_reports_are_a_gap_not_a_line() {
    // Reports stop between 2 and 6.
    let pts = tput_of(&[(0.0, 0), (1.0, 1), (2.0, 2), (6.0, 10), (7.0, 11)]).points();
    assert_eq!(rates(&pts), [Some(1.0), Some(1.0), None, Some(1.0)]);
    // Late by less than the gap limit: measured over the longer interval.
    let pts = tput_of(&[(0.0, 0), (1.0, 1), (3.0, 5)]).points();
    assert_eq!(rates(&pts), [Some(1.0), Some(2.0)]);
    // Out of order, repeated, not finite, or fewer bytes: ignored or held at the most.
    let pts = tput_of(&[(0.0, 0), (1.0, 5), (0.5, 9), (1.0, 9), (2.0, 3)]);
    let mut pts_nan = pts;
    pts_nan.record(f64::NAN, 1);
    pts_nan.record(f64::INFINITY, 1);
    let pts = pts_nan.points();
    assert_eq!(rates(&pts), [Some(5.0), Some(0.0)]);
    assert_eq!(pts[1].bytes_written, 5 << 20);
}

#[test]
fn a_long_run_stays_bounded_without_false_gaps() {
    let mut s = TputSeries::default();
    let mb = 1u64 << 20;
    for i in 0..=10_000u64 {
        s.record(i as f64, 3 * mb * i);
        assert!(s.kept.capacity() <= MAX_SAMPLES);
    }
    let pts = s.points();
    assert!(pts.len() >= MAX_SAMPLES / 2 && pts.len() <= MAX_SAMPLES + 1);
    assert_eq!(pts.last().unwrap().t_s, 10_000.0);
    assert!(pts.windows(2).all(|w| w[0].t_s < w[1].t_s));
    for p in &pts {
        let r = p.throughput_mb_s.expect("no gap");
        assert!((r - 3.0).abs() < 1e-9, "{p:?}");
    }
}

#[test]
fn the_fleet_counts_who_reported_in_each_second_and_keeps_gaps() {
    let mut f = FleetTput::new(10.0, 16.03);
    // a: 1 MiB/s the whole run, its last report 30 ms after its last tick (folded).
    let a = tput_of(&[
        (10.0, 0),
        (11.0, 1),
        (12.0, 2),
        (13.0, 3),
        (14.0, 4),
        (15.0, 5),
        (16.0, 6),
        (16.03, 6),
    ]);
    // b: 2 MiB/s, silent from 12 to 15 (a gap), reports at a half-second phase.
    let b = tput_of(&[(10.5, 0), (11.5, 2), (12.5, 4), (15.5, 10), (16.01, 11)]);
    for c in [&a, &b] {
        f.add(c.origin_s().unwrap(), &c.points());
    }
    let buckets = f.finish();
    assert_eq!(buckets.len(), 7);
    let got: Vec<(f64, Option<f64>, u32)> = buckets
        .iter()
        .map(|p| {
            (
                p.t_s,
                p.throughput_mb_s.map(|r| (r * 1e3).round() / 1e3),
                p.clients,
            )
        })
        .collect();
    assert_eq!(got[0], (1.0, Some(3.0), 2));
    assert_eq!(got[1], (2.0, Some(3.0), 2));
    // b's gap (12.5 to 15.5) is not drawn as b's rate: only a counts there.
    assert_eq!(got[2].2, 2, "b measured 12 to 12.5");
    assert_eq!(got[3], (4.0, Some(1.0), 1));
    assert_eq!(got[4], (5.0, Some(1.0), 1));
    // The last, partial bucket keeps the clients' rates: no fall at the end.
    let last = buckets.last().unwrap();
    assert!((last.t_s - 6.03).abs() < 1e-9, "{last:?}");
    assert_eq!(last.clients, 2);
    assert!(last.throughput_mb_s.unwrap() > 2.5, "{last:?}");
    // Nobody measured a second: a gap, not a zero.
    let mut f = FleetTput::new(0.0, 4.0);
    let c = tput_of(&[(0.0, 0), (1.0, 1), (4.0, 4)]);
    f.add(0.0, &c.points());
    let got: Vec<Option<f64>> = f.finish().iter().map(|p| p.throughput_mb_s).collect();
    assert_eq!(got, [Some(1.0), None, None, None]);
    // No client measured anything (seed clients only): no series at all.
    let mut f = FleetTput::new(0.0, 4.0);
    f.add(0.0, &tput_of(&[(0.0, 0)]).points());
    assert!(f.finish().is_empty());
    // Empty or backwards spans have no bucket; odd input never panics.
    assert!(FleetTput::new(5.0, 5.0).finish().is_empty());
    assert!(FleetTput::new(f64::NAN, 1.0).finish().is_empty());
    let mut f = FleetTput::new(0.0, 1e9);
    assert!(f.clients.len() <= MAX_TOTAL_SAMPLES + 1);
    f.add(-5.0, &tput_of(&[(-5.0, 0), (2e9, u64::MAX >> 20)]).points());
    assert!(f
        .finish()
        .iter()
        .all(|p| p.throughput_mb_s.is_none_or(f64::is_finite)));
}
