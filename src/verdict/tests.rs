//! The rules' grammar and each kind of rule judged on an injected clock (the evaluator reads
//! the time it is given: no sleeps).

use std::collections::BTreeMap;

use super::*;
use crate::latency::{new_histogram, record_us, LatencyInterval, LatencySummary};
use crate::report::{ClientReport, Outcome, Report, Status, Total};
use crate::series::{ClientSeries, FleetBucket, Sample, TputPoint};

const START: &str = "2026-11-25T10:00:00+01:00";

static NO_GAPS: BTreeMap<u32, f64> = BTreeMap::new();

fn client(id: u32, mb_s: f64) -> ClientReport {
    ClientReport {
        id,
        status: Status::Running,
        time_ran_s: 30.0,
        throughput_mb_s: mb_s,
        stats_reports: 3,
        cpu_avg_pct: 40.0,
        files_written: 3,
        bytes_written: 3 << 20,
        ..ClientReport::default()
    }
}

fn report(clients: Vec<ClientReport>) -> Report {
    let mut total = Total::of(&clients, 30.0);
    total.common_start = Some("2026-11-25T10:00:02+01:00".into());
    Report {
        start_time: START.into(),
        end_time: "2026-11-25T10:00:40+01:00".into(),
        clients,
        total,
        series: vec![],
        stopped: false,
        io_series: vec![],
        warnings: vec![],
        latency_series: vec![],
        params: Default::default(),
        verdict: None,
    }
}

fn evaluator(rules: &[&str]) -> Evaluator {
    let rules = rules.iter().map(|r| Rule::parse(r).unwrap()).collect();
    Evaluator::new(rules, None)
}

fn check(e: &mut Evaluator, r: &Report, now_s: f64, is_final: bool) -> Vec<Failure> {
    check_gaps(e, r, now_s, is_final, &BTreeMap::new())
}

fn check_gaps(
    e: &mut Evaluator,
    r: &Report,
    now_s: f64,
    is_final: bool,
    heartbeat_gaps: &BTreeMap<u32, f64>,
) -> Vec<Failure> {
    e.check(&Input {
        report: r,
        now_s,
        fleet_intervals: &[],
        heartbeat_gaps,
        is_final,
    })
}

#[test]
fn every_example_of_the_issue_parses() {
    for (text, scope, name, window) in [
        ("fleet.p99_ms < 50", Scope::Fleet, "p99_ms", None),
        ("fleet.mb_s >= 400 over 60s", Scope::Fleet, "mb_s", Some(60)),
        ("client.mb_s >= 80", Scope::Client, "mb_s", None),
        ("verify_errors == 0", Scope::Fleet, "verify_errors", None),
        (
            "schedule_lag_p99_ms < 100",
            Scope::Fleet,
            "schedule_lag_p99_ms",
            None,
        ),
        ("client.cpu_pct < 90", Scope::Client, "cpu_pct", None),
        (
            "heartbeat_gap_s < 5",
            Scope::Client,
            "heartbeat_gap_s",
            None,
        ),
        (
            "fleet.p99_ms <= baseline * 1.1",
            Scope::Fleet,
            "p99_ms",
            None,
        ),
        (
            "  client.mb_s>=80 over 2m ",
            Scope::Client,
            "mb_s",
            Some(120),
        ),
    ] {
        let r = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (r.scope, r.metric.name, r.window_s),
            (scope, name, window),
            "{text}"
        );
    }
    let b = Rule::parse("fleet.p99_ms <= baseline * 1.1").unwrap();
    assert_eq!(b.bound, Bound::Baseline(1.1));
    assert_eq!(b.op, Op::Le);
}

/// The error's message, and the column of its caret.
fn error(text: &str) -> (String, usize) {
    let e = Rule::parse(text).unwrap_err();
    let shown = e.to_string();
    let caret_line = shown.lines().nth(2).unwrap();
    (shown.clone(), caret_line.find('^').unwrap() - 2)
}

#[test]
fn errors_point_into_the_rule_and_say_what_was_expected() {
    let (m, at) = error("fleet.p99 < 50");
    assert!(m.contains("unknown metric `p99`"), "{m}");
    assert!(
        m.contains("p99_ms (ms; fleet|client; over Ns: fleet)"),
        "{m}"
    );
    assert_eq!(at, 6);
    let (m, at) = error("fleet.p99_ms < 50ms");
    assert!(
        m.contains("a plain number in ms, the unit of `p99_ms`: remove `ms`"),
        "{m}"
    );
    assert_eq!(at, 17);
    let (m, at) = error("fleet.p99_ms = 50");
    assert!(m.contains("`=` alone is not one"), "{m}");
    assert_eq!(at, 13);
    let (m, _) = error("host.mb_s > 1");
    assert!(m.contains("unknown scope `host`"), "{m}");
    let (m, at) = error("client.p99_ms < 5 over 10s");
    assert!(m.contains("`client.p99_ms` takes no window"), "{m}");
    assert!(m.contains("fleet.mb_s, client.mb_s"), "{m}");
    assert_eq!(at, 18);
    let (m, _) = error("fleet.cpu_pct < 90");
    assert!(
        m.contains("`cpu_pct` has no fleet scope: it is client"),
        "{m}"
    );
    let (m, at) = error("fleet.mb_s > 1 over 0s");
    assert!(m.contains("a window is 1 s to 86400 s"), "{m}");
    assert_eq!(at, 20);
    let (m, _) = error("fleet.mb_s > 1 over 60");
    assert!(m.contains("`60s`, `5m`"), "{m}");
    let (m, _) = error("fleet.mb_s > fast");
    assert!(
        m.contains("expected the bound in MiB/s (or `baseline`), a number"),
        "{m}"
    );
    let (m, _) = error("fleet.mb_s > baseline * 0");
    assert!(m.contains("factor must be above 0"), "{m}");
    let (m, _) = error("fleet.mb_s > 1 and more");
    assert!(m.contains("unexpected text after the rule"), "{m}");
    let (m, _) = error("fleet.mb_s > 1e999");
    assert!(m.contains("a number"), "{m}");
    let (m, _) = error("");
    assert!(m.contains("empty rule"), "{m}");
    let (m, at) = error("fleet.mb_s ≥ 1");
    assert!(m.contains("printable ASCII"), "{m}");
    assert_eq!(at, 11);
    let long = format!("fleet.mb_s > {}", "1".repeat(300));
    assert!(error(&long).0.contains("at most 256 characters"));
    let many: Vec<String> = (0..=MAX_RULES)
        .map(|_| "fleet.mb_s > 1".to_string())
        .collect();
    assert!(parse_rules(&many).unwrap_err().contains("at most 64"));
}

#[test]
fn a_whole_run_percentile_is_pending_live_and_judged_at_the_end() {
    let mut e = evaluator(&["fleet.p99_ms < 50"]);
    let mut r = report(vec![client(100, 10.0)]);
    let mut h = new_histogram();
    record_us(&mut h, 80_000);
    r.total.latency = LatencySummary::of(&h);
    assert!(check(&mut e, &r, 5.0, false).is_empty(), "not judged live");
    let v = e.verdict(START);
    assert_eq!(v.rules[0].outcome, Outcome::Pending);
    assert!((v.rules[0].observed.unwrap() - 80.0).abs() < 0.1);
    let failed = check(&mut e, &r, 30.0, true);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].reason.contains("fleet.p99_ms < 50 (fleet: 80."),
        "{:?}",
        failed
    );
    let v = e.verdict(START);
    assert!(v.is_final && !v.passed);
    assert_eq!(v.rules[0].outcome, Outcome::Fail);
    assert_eq!(v.rules[0].first_failed_s, Some(30.0));
    assert_eq!(
        v.rules[0].first_failed_at.as_deref(),
        Some("2026-11-25T10:00:30+01:00")
    );
    // The same run under a bound it meets passes.
    let mut e = evaluator(&["fleet.p99_ms < 100"]);
    check(&mut e, &r, 30.0, true);
    assert!(e.verdict(START).passed);
}

fn buckets(rates: &[f64]) -> Vec<FleetBucket> {
    rates
        .iter()
        .enumerate()
        .map(|(i, r)| FleetBucket {
            t_s: (i + 1) as f64,
            throughput_mb_s: Some(*r),
            clients: 1,
        })
        .collect()
}

#[test]
fn a_fleet_window_is_judged_live_once_full_and_fails_when_a_window_dips() {
    let mut e = evaluator(&["fleet.mb_s >= 400 over 10s"]);
    // 20 s at 500 MiB/s, then 10 s at 100 (common start 2 s after the server's).
    let mut rates = vec![500.0; 20];
    let mut r = report(vec![client(100, 400.0)]);
    r.total.tput = buckets(&rates[..8]);
    check(&mut e, &r, 10.5, false);
    assert_eq!(
        e.verdict(START).rules[0].outcome,
        Outcome::Pending,
        "window not full yet"
    );
    r.total.tput = buckets(&rates);
    assert!(check(&mut e, &r, 23.0, false).is_empty());
    let v = e.verdict(START);
    assert_eq!(v.rules[0].observed, Some(500.0));
    rates.extend([100.0; 10]);
    // At 28 s the complete buckets end at 25 s: the window is 15–25 s, half slow.
    r.total.tput = buckets(&rates);
    let failed = check(&mut e, &r, 28.0, false);
    assert_eq!(failed.len(), 1, "{:?}", e.verdict(START));
    let v = e.verdict(START);
    assert_eq!(v.rules[0].outcome, Outcome::Fail);
    assert_eq!(v.rules[0].first_failed_s, Some(28.0));
    assert!((v.rules[0].observed.unwrap() - 300.0).abs() < 1e-9);
    // Later windows do not move the first failure.
    check(&mut e, &r, 40.0, true);
    let v = e.verdict(START);
    assert_eq!(v.rules[0].first_failed_s, Some(28.0));
    assert!(!v.passed);
}

#[test]
fn a_run_shorter_than_the_window_has_no_data() {
    let mut e = evaluator(&["fleet.mb_s >= 1 over 60s"]);
    let mut r = report(vec![client(100, 400.0)]);
    r.total.tput = buckets(&[500.0; 20]);
    check(&mut e, &r, 25.0, true);
    let v = e.verdict(START);
    assert_eq!(v.rules[0].outcome, Outcome::NoData);
    assert!(v.rules[0]
        .note
        .as_deref()
        .unwrap()
        .contains("no full 60 s window"));
    assert!(!v.passed, "no data is not a pass");
}

#[test]
fn a_client_rule_holds_for_every_client_and_names_the_one_that_failed() {
    let mut e = evaluator(&["client.mb_s >= 80"]);
    let r = report(vec![
        client(100, 120.0),
        client(101, 41.2),
        client(102, 90.0),
    ]);
    assert!(
        check(&mut e, &r, 10.0, false).is_empty(),
        "an average rate: at the end"
    );
    let failed = check(&mut e, &r, 30.0, true);
    assert_eq!(
        failed[0].reason,
        "threshold failed: client.mb_s >= 80 (client 101: 41.20 MiB/s)"
    );
    let v = e.verdict(START);
    let rule = &v.rules[0];
    assert_eq!(
        (rule.outcome, rule.client, rule.clients_judged),
        (Outcome::Fail, Some(101), 3)
    );
    assert_eq!(rule.clients.len(), 1);
    assert!(
        rule.line().contains("1 of 3 client(s) failed"),
        "{}",
        rule.line()
    );
    // All above: PASS, and the worst client is the one shown.
    let mut e = evaluator(&["client.mb_s >= 40"]);
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    assert!(v.passed);
    assert_eq!(
        (v.rules[0].client, v.rules[0].observed),
        (Some(101), Some(41.2))
    );
}

fn tput_series(id: u32, per_s_mib: &[u64]) -> ClientSeries {
    let mut bytes = 0u64;
    let tput = per_s_mib
        .iter()
        .enumerate()
        .map(|(i, m)| {
            bytes += m << 20;
            TputPoint {
                t_s: 3.0 + i as f64,
                bytes_written: bytes,
                throughput_mb_s: Some(*m as f64),
            }
        })
        .collect();
    ClientSeries {
        id,
        samples: vec![],
        tput,
    }
}

#[test]
fn a_client_window_reads_its_tput_points() {
    let mut e = evaluator(&["client.mb_s >= 80 over 5s"]);
    let mut r = report(vec![client(100, 100.0), client(101, 100.0)]);
    r.series = vec![tput_series(100, &[100; 12]), tput_series(101, &[100; 4])];
    assert!(check(&mut e, &r, 15.0, false).is_empty());
    let mut slow = vec![100; 8];
    slow.extend([20; 4]);
    r.series[1] = tput_series(101, &slow);
    let failed = check(&mut e, &r, 16.0, false);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].reason.contains("client 101: 36.00 MiB/s"),
        "{:?}",
        failed
    );
    let v = e.verdict(START);
    assert_eq!(v.rules[0].client, Some(101));
}

#[test]
fn cpu_rules_read_the_average_or_the_window() {
    let mut e = evaluator(&["client.cpu_pct < 90", "client.cpu_pct < 90 over 3s"]);
    let mut r = report(vec![client(100, 1.0)]);
    let samples = [20.0, 30.0, 95.0, 95.0, 95.0]
        .iter()
        .enumerate()
        .map(|(i, c)| Sample {
            t_s: 1.0 + i as f64,
            bytes_written: 0,
            throughput_mb_s: 0.0,
            cpu_pct: *c,
            mem_pct: 1.0,
            rss_bytes: None,
        })
        .collect();
    r.series = vec![ClientSeries {
        id: 100,
        samples,
        tput: vec![],
    }];
    let failed = check(&mut e, &r, 6.0, false);
    assert_eq!(failed.len(), 1);
    assert!(failed[0]
        .reason
        .starts_with("threshold failed: client.cpu_pct < 90 over 3s"));
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    assert_eq!(v.rules[0].outcome, Outcome::Pass, "the average is 40 %");
    assert_eq!(v.rules[1].outcome, Outcome::Fail);
}

#[test]
fn a_heartbeat_gap_fails_live_when_it_passes_the_bound() {
    let mut e = evaluator(&["heartbeat_gap_s < 5"]);
    let r = report(vec![client(100, 1.0), client(101, 1.0)]);
    let gaps = |a: f64, b: f64| BTreeMap::from([(100, a), (101, b)]);
    for (now, gap) in [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)] {
        assert!(check_gaps(&mut e, &r, now, false, &gaps(0.5, gap)).is_empty());
    }
    let failed = check_gaps(&mut e, &r, 5.0, false, &gaps(0.5, 5.2));
    assert_eq!(
        failed[0].reason,
        "threshold failed: heartbeat_gap_s < 5 (client 101: 5.20 s)"
    );
    // The largest figure given stays (the server's are the longest so far anyway).
    check_gaps(&mut e, &r, 30.0, true, &gaps(0.5, 0.1));
    let v = e.verdict(START);
    assert_eq!(v.rules[0].first_failed_s, Some(5.0));
    assert_eq!(v.rules[0].observed, Some(5.2));
}

#[test]
fn counts_fail_live_only_past_an_upper_bound() {
    let mut e = evaluator(&[
        "fleet.files <= 5",
        "fleet.files >= 100",
        "client.bytes == 0",
    ]);
    let mut r = report(vec![client(100, 1.0), client(101, 1.0)]);
    let failed = check(&mut e, &r, 3.0, false);
    // 6 files > 5: for good; bytes 3 MiB > 0: for good; files >= 100: only at the end.
    assert_eq!(failed.len(), 2, "{failed:?}");
    r.total.files_written = 100;
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    let outcomes: Vec<Outcome> = v.rules.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Fail, Outcome::Pass, Outcome::Fail]);
    assert_eq!(v.rules[0].first_failed_s, Some(3.0));
}

#[test]
fn metrics_nobody_measured_give_no_data_never_a_pass() {
    let mut e = evaluator(&["verify_errors == 0", "schedule_lag_p99_ms < 100"]);
    let r = report(vec![client(100, 1.0)]);
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    assert!(!v.passed);
    for rule in &v.rules {
        assert_eq!(rule.outcome, Outcome::NoData);
    }
    assert!(v.rules[0]
        .note
        .as_deref()
        .unwrap()
        .contains("no client verified its data (--verify)"));
    assert!(v.rules[1]
        .note
        .as_deref()
        .unwrap()
        .contains("no client was paced"));
}

#[test]
fn a_paced_clients_schedule_lag_is_judged_from_its_merged_start_lags() {
    let mut e = evaluator(&["client.schedule_lag_p99_ms < 100"]);
    let mut on_time = client(100, 1.0);
    on_time.schedule_lag_p99_ms = Some(3.5);
    let mut late = client(101, 1.0);
    late.schedule_lag_p99_ms = Some(150.0);
    let r = report(vec![on_time, late]);
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    assert!(!v.passed);
    assert_eq!(v.rules[0].outcome, Outcome::Fail);
    assert_eq!(v.rules[0].observed, Some(150.0), "{v:?}");
    assert_eq!(v.rules[0].client, Some(101), "{v:?}");
}

#[test]
fn baseline_bounds_are_the_baselines_figure_times_the_factor() {
    let mut old = report(vec![client(100, 100.0)]);
    let mut h = new_histogram();
    record_us(&mut h, 20_000);
    old.total.latency = LatencySummary::of(&h);
    let rules = vec![
        Rule::parse("fleet.p99_ms <= baseline * 1.1").unwrap(),
        Rule::parse("client.mb_s >= baseline * 0.9").unwrap(),
    ];
    let mut e = Evaluator::new(rules, Some(("old.json".into(), old)));
    let mut r = report(vec![client(100, 85.0)]);
    let mut h = new_histogram();
    record_us(&mut h, 23_000);
    r.total.latency = LatencySummary::of(&h);
    check(&mut e, &r, 30.0, true);
    let v = e.verdict(START);
    assert_eq!(v.baseline.as_deref(), Some("old.json"));
    assert!((v.rules[0].bound.unwrap() - 22.0).abs() < 0.1);
    assert_eq!(v.rules[0].outcome, Outcome::Fail, "23 ms > 1.1 × 20 ms");
    assert_eq!(v.rules[1].outcome, Outcome::Fail, "85 < 0.9 × 100");
    // Without a baseline: no data.
    let mut e = evaluator(&["fleet.p99_ms <= baseline"]);
    check(&mut e, &r, 30.0, true);
    assert_eq!(e.verdict(START).rules[0].outcome, Outcome::NoData);
}

#[test]
fn a_fleet_latency_window_merges_the_intervals_of_the_window() {
    let mut e = evaluator(&["fleet.p99_ms < 50 over 5s"]);
    let r = report(vec![client(100, 1.0)]);
    let interval = |i: u64, us: u64| {
        let mut h = new_histogram();
        for _ in 0..100 {
            record_us(&mut h, us);
        }
        LatencyInterval {
            start_s: i as f64,
            width_s: 1.0,
            hist: h,
        }
    };
    let mut iv: Vec<LatencyInterval> = (0..10).map(|i| interval(i, 10_000)).collect();
    fn input<'a>(report: &'a Report, iv: &'a [LatencyInterval], now_s: f64) -> Input<'a> {
        Input {
            report,
            now_s,
            fleet_intervals: iv,
            heartbeat_gaps: &NO_GAPS,
            is_final: false,
        }
    }
    assert!(e.check(&input(&r, &iv, 11.0)).is_empty());
    iv.extend((10..13).map(|i| interval(i, 90_000)));
    let failed = e.check(&input(&r, &iv, 14.0));
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .reason
            .contains("fleet.p99_ms < 50 over 5s (fleet: 90."),
        "{failed:?}"
    );
}

#[test]
fn the_text_section_lists_every_rule() {
    let mut e = evaluator(&["client.mb_s >= 80", "fleet.files >= 1"]);
    let r = report(vec![client(100, 50.0)]);
    check(&mut e, &r, 30.0, true);
    e.aborted("threshold failed: client.mb_s >= 80 (client 100: 50.00 MiB/s)");
    let text = e.verdict(START).to_text();
    assert!(text.starts_with("Thresholds: FAILED\n"), "{text}");
    assert!(
        text.contains("  run aborted by: threshold failed: client.mb_s"),
        "{text}"
    );
    assert!(
        text.contains("  FAIL    client.mb_s >= 80: 50.00 MiB/s, client 100"),
        "{text}"
    );
    assert!(
        text.contains("  PASS    fleet.files >= 1: 3 files"),
        "{text}"
    );
}

#[test]
fn the_junit_xml_has_a_case_per_rule_and_per_client() {
    let mut e = evaluator(&["client.mb_s >= 80", "verify_errors == 0"]);
    let mut r = report(vec![client(100, 50.0), client(101, 90.0)]);
    r.clients[1].status = Status::Pass;
    r.clients[0].status = Status::Pass;
    check(&mut e, &r, 30.0, true);
    r.verdict = Some(e.verdict(START));
    let xml = r.to_junit();
    assert!(
        xml.contains("name=\"thresholds\" timestamp=\"2026-11-25T10:00:00\""),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"client.mb_s &gt;= 80\""),
        "{xml}"
    );
    assert!(xml.contains("<error message=\"NO DATA"), "{xml}");
    assert!(
        xml.contains(
            "<testcase name=\"client 101\" classname=\"loadmon.clients\" time=\"30.000\"/>"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("client.mb_s &gt;= 80: 50.00 MiB/s</failure>"),
        "{xml}"
    );
}

/// Client `id`'s checks: `blocks` checked, `corrupt` and `stale` bad blocks.
fn verified(mut c: ClientReport, blocks: u64, corrupt: u64, stale: u64) -> ClientReport {
    let errors = crate::verify::ClassCounts {
        corrupt,
        stale,
        ..Default::default()
    };
    c.verify = Some(Box::new(crate::report::ClientVerify {
        files_checked: 2,
        blocks_checked: blocks,
        errors,
        errors_total: errors.total(),
        ..Default::default()
    }));
    c
}

#[test]
fn verify_errors_fail_live_at_the_first_bad_block_naming_the_client() {
    let mut e = evaluator(&[
        "verify_errors == 0",
        "client.verify_errors == 0",
        "fleet.verify_errors < 10",
    ]);
    // Clean checks, and a client that does not verify (judged on nothing for the client rule).
    let clean = || {
        report(vec![
            verified(client(100, 1.0), 512, 0, 0),
            verified(client(101, 1.0), 512, 0, 0),
            client(102, 1.0),
        ])
    };
    assert!(check(&mut e, &clean(), 2.0, false).is_empty());
    let v = e.verdict(START);
    assert_eq!(v.rules[0].outcome, Outcome::Pending);
    assert_eq!(v.rules[0].observed, Some(0.0));
    // Client 101 finds 1 bad block, client 100 none: both rules fail at once, naming it.
    let bad = report(vec![
        verified(client(100, 1.0), 512, 0, 0),
        verified(client(101, 1.0), 512, 0, 1),
        client(102, 1.0),
    ]);
    let failed = check(&mut e, &bad, 3.0, false);
    let reasons: Vec<&str> = failed.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "threshold failed: verify_errors == 0 (fleet: 1 errors, client 101)",
            "threshold failed: client.verify_errors == 0 (client 101: 1 errors)",
        ]
    );
    // More bad blocks elsewhere later: the first failure stays (its time, value, client).
    let worse = report(vec![
        verified(client(100, 1.0), 512, 30, 0),
        verified(client(101, 1.0), 512, 0, 1),
        client(102, 1.0),
    ]);
    let failed = check(&mut e, &worse, 4.0, false);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].reason,
        "threshold failed: fleet.verify_errors < 10 (fleet: 31 errors, client 100)"
    );
    check(&mut e, &worse, 5.0, true);
    let v = e.verdict(START);
    assert!(!v.passed);
    let r = &v.rules[0];
    assert_eq!(
        (r.outcome, r.observed, r.first_failed_s, r.client),
        (Outcome::Fail, Some(1.0), Some(3.0), Some(101))
    );
    assert!(
        r.line()
            .starts_with("FAIL    verify_errors == 0: 1 errors, client 101, first failed"),
        "{}",
        r.line()
    );
    let c = &v.rules[1];
    assert_eq!((c.outcome, c.client), (Outcome::Fail, Some(101)));
    // Client 102 did not verify: no data for it, client 100 failed later.
    let ids: Vec<(u32, Outcome)> = c.clients.iter().map(|x| (x.id, x.outcome)).collect();
    assert_eq!(
        ids,
        [
            (100, Outcome::Fail),
            (101, Outcome::Fail),
            (102, Outcome::NoData)
        ]
    );
}

#[test]
fn a_clean_verified_run_passes_verify_errors_and_huge_counts_stay_numbers() {
    let mut e = evaluator(&["verify_errors == 0", "client.verify_errors <= 0"]);
    let r = report(vec![verified(client(100, 1.0), 1 << 40, 0, 0)]);
    assert!(check(&mut e, &r, 30.0, true).is_empty());
    let v = e.verdict(START);
    assert!(v.passed, "{v:?}");
    // A count at u64::MAX (a hostile client) is a number that fails, not an overflow.
    let mut e = evaluator(&["verify_errors == 0"]);
    let r = report(vec![
        verified(client(100, 1.0), 1, u64::MAX, u64::MAX),
        verified(client(101, 1.0), 1, 1, 0),
    ]);
    assert_eq!(
        r.total.verify.as_ref().map(|t| t.errors_total),
        Some(u64::MAX)
    );
    let failed = check(&mut e, &r, 1.0, false);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].reason.ends_with(", client 100)"), "{failed:?}");
}
