//! Reports at scale: a synthetic report of 10,000 clients, each with a full series (96
//! points), built in memory. The HTML page stays under 5 MB (a size bound, not a timing one)
//! and usable: a summary table, fleet charts, and per-client detail paged and drawn on demand.
//!
//! The sizes in BENCHMARKS.md come from here:
//! `cargo test --release --test report_scale -- --nocapture --ignored report_sizes`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::ChildGuard;
use loadmon::protocol::VerifyFinding;
use loadmon::report::{ClientReport, ClientVerify, Report, Total};
use loadmon::series::{ClientSeries, Sample, TotalSample, MAX_SAMPLES, MAX_TOTAL_SAMPLES};
use loadmon::verify::{ClassCounts, FindingClass};
use loadmon::Status;

const MB: u64 = 1 << 20;

/// A fleet of `n` clients that ran 300 s from a common start, 100 of them FAILED with a long
/// reason, every one with a full series.
fn fleet(n: usize) -> Report {
    let run_s = 300.0;
    let mut clients = Vec::with_capacity(n);
    let mut series = Vec::with_capacity(n);
    for i in 0..n {
        let id = 100 + i as u32;
        // Throughput and CPU vary per client and over time.
        let speed = 20.0 + (i % 37) as f64 * 1.37;
        let failed = i % 100 == 99;
        let samples: Vec<Sample> = (1..=MAX_SAMPLES)
            .map(|k| {
                let t_s = 2.0 + run_s * k as f64 / MAX_SAMPLES as f64;
                let wave = 1.0 + 0.3 * ((k as f64 / 7.0) + i as f64).sin();
                Sample {
                    t_s,
                    bytes_written: (speed * MB as f64 * (t_s - 2.0)) as u64,
                    throughput_mb_s: speed * wave,
                    cpu_pct: 12.5 + 40.0 * wave.fract(),
                    mem_pct: 0.37,
                    rss_bytes: Some(48 * MB + (i as u64 % 13) * MB),
                }
            })
            .collect();
        let bytes = samples.last().map_or(0, |s| s.bytes_written);
        clients.push(ClientReport {
            id,
            status: if failed { Status::Failed } else { Status::Pass },
            time_ran_s: run_s,
            cpu_avg_pct: 31.25,
            mem_avg_pct: 0.37,
            files_written: bytes / (50 * MB),
            file_size_mb: 50,
            chunk_size_mb: 10,
            heartbeats: 60,
            stats_reports: 30,
            bytes_written: bytes,
            throughput_mb_s: bytes as f64 / MB as f64 / run_s,
            reason: failed
                .then(|| format!("write failed: {}", "No space left on device ".repeat(8))),
            peer: Some(format!(
                "10.0.{}.{}:{}",
                i / 250,
                i % 250,
                40000 + i % 20000
            )),
            protocol_version: Some("1.1".into()),
            start_time: Some("2026-11-25T10:00:02.125+01:00".into()),
            end_time: Some("2026-11-25T10:05:02.250+01:00".into()),
            cpu_core_avg_pct: Some(3.91),
            rss_avg_bytes: Some(50 * MB),
            rss_peak_bytes: Some(52 * MB + i as u64 % 4096),
            chunk_p50_ms: Some(4.125),
            chunk_p99_ms: Some(18.5),
            last_heartbeat_age_s: None,
            cpu_last_pct: Some(30.5),
            mem_last_pct: Some(0.37),
            rss_last_bytes: Some(51 * MB),
            process_clients: Some(1),
            device_util_pct: Some(87.5),
            device_write_await_ms: Some(12.25),
            device_queue_depth: Some(3.5),
            device_write_mb_s: Some(410.5),
            io_pressure_some_pct: Some(23.75),
            io_pressure_full_pct: Some(20.5),
            dirty_bytes: Some(300 * MB),
            writeback_bytes: Some(50 * MB),
            clock_offset_ms: Some(0.25),
            clock_rtt_ms: Some(0.5),
            chunk_p90_ms: Some(2.25),
            chunk_p999_ms: Some(12.5),
            chunk_max_ms: Some(41.75),
            chunk_writes: Some(1_234_567),
            pace_target_mb_s: Some(50.0),
            schedule_lag_ms: Some(0.125),
            schedule_lag_p50_ms: Some(0.0625),
            schedule_lag_p99_ms: Some(1.5),
            schedule_lag_max_ms: Some(12.25),
            response_p50_ms: Some(4.25),
            response_p90_ms: Some(6.5),
            response_p99_ms: Some(19.75),
            response_p999_ms: Some(30.5),
            response_max_ms: Some(52.25),
            kept_pace: Some(true),
            engine: Some("io_uring, iodepth 4, registered buffers".into()),
            streams: Vec::new(),
            // Every client checked its data; the failed ones found bad blocks, each its 20
            // findings (the most a client sends), as long as real ones are.
            verify: Some(Box::new(ClientVerify {
                files_checked: 6,
                blocks_checked: 6 * 12_800,
                errors: ClassCounts {
                    corrupt: if failed { 3 } else { 0 },
                    stale: if failed { 17 } else { 0 },
                    ..ClassCounts::default()
                },
                errors_total: if failed { 20 } else { 0 },
                findings: if failed {
                    (0..20u64)
                        .map(|k| VerifyFinding {
                            class: if k < 3 {
                                FindingClass::Corrupt
                            } else {
                                FindingClass::Stale
                            },
                            offset_bytes: k * 4096,
                            blocks: 1,
                            path: format!("/data/loadmon/client_{id}_0_3_2026-11-25_10.00.31"),
                            expected: format!(
                                "client {id} stream 0 file 3 run 0x5f3a9c1e77d2 generation 2 \
                                 offset {}",
                                k * 4096
                            ),
                            found: "generation 1 (an older write: a lost write)".into(),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                findings_left_off: 0,
            })),
        });
        series.push(ClientSeries {
            id,
            samples,
            tput: Vec::new(),
        });
    }
    let mut total = Total::of(&clients, run_s);
    total.common_start = Some("2026-11-25T10:00:02+01:00".into());
    total.series = (1..=MAX_TOTAL_SAMPLES)
        .map(|k| TotalSample {
            t_s: run_s * k as f64 / MAX_TOTAL_SAMPLES as f64,
            bytes_written: total.bytes_written / MAX_TOTAL_SAMPLES as u64 * k as u64,
            throughput_mb_s: total.throughput_mb_s,
        })
        .collect();
    Report {
        start_time: "2026-11-25T10:00:00+01:00".into(),
        end_time: "2026-11-25T10:05:03+01:00".into(),
        clients,
        total,
        series,
        stopped: false,
        params: Default::default(),
        verdict: None,
        io_series: Vec::new(),
        warnings: Vec::new(),
        latency_series: Vec::new(),
    }
}

/// The page's size bound at 10,000 clients.
const HTML_LIMIT_BYTES: usize = 5_000_000;

#[test]
fn the_html_report_of_10000_clients_stays_under_5_mb_and_self_contained() {
    let report = fleet(10_000);
    let html = report.to_html();
    assert!(
        html.len() < HTML_LIMIT_BYTES,
        "HTML report of 10,000 clients: {} bytes",
        html.len()
    );
    // Fleet charts and a summary, drawn without a script; no chart per client.
    assert!(html.contains("id=\"summary\""), "summary table");
    assert!(html.contains("All clients together"));
    let svgs = html.matches("<svg").count();
    assert!((1..=4).contains(&svgs), "{svgs} inline charts");
    // Nothing from elsewhere.
    for external in ["<link", " src=", "@import", "url(", "fetch("] {
        assert!(!html.contains(external), "{external}");
    }
    // Every client is in the page's data.
    let data = page_data(&html);
    let clients = data["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 10_000);
    assert_eq!(clients[0][0], 100);
    assert_eq!(clients[9_999][0], 10_099);
}

/// The JSON data the page embeds for its script.
fn page_data(html: &str) -> serde_json::Value {
    let start = html
        .find("<script type=\"application/json\" id=\"loadmon-data\">")
        .expect("embedded data");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// The sizes for BENCHMARKS.md (`benches/bench.py` reads the `report sizes:` lines). Not in
/// the ordinary suite: it renders some 700 MB of JSON.
#[test]
#[ignore = "a measurement for BENCHMARKS.md: benches/bench.py runs it (release)"]
fn report_sizes() {
    for n in [100, 1_000, 10_000] {
        let r = fleet(n);
        let (html, json, csv) = (r.to_html().len(), r.to_json().len(), r.to_csv().len());
        let compact = serde_json::to_string(&r).unwrap().len();
        println!(
            "report sizes: clients={n} html_bytes={html} json_bytes={json} \
             json_unindented_bytes={compact} csv_bytes={csv}"
        );
    }
}

/// The page in a real browser: the table shows one page of clients, and the client named in
/// the address (`#client-<id>`) is opened with its two charts, one point per kept sample.
/// chromium: Debian package `chromium` (`make system-deps`).
#[test]
fn the_paged_report_in_headless_chromium_pages_the_table_and_draws_an_opened_client() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let mut report = fleet(1_000);
    report.clients[3].reason = Some("</script><script>document.title='pwned'</script>".into());
    std::fs::write(&page, report.to_html()).unwrap();
    let dom_path = dir.path().join("dom.html");
    let profile = dir.path().join("chromium-profile");
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}#client-600", page.display()))
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (Debian package chromium) must be installed: run `make system-deps`");
    let status = ChildGuard(child).wait_for(Duration::from_secs(90));
    assert!(status.success(), "chromium: {status}");
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    let short = || dom.chars().take(3000).collect::<String>();
    assert!(dom.contains("<title>loadmon report</title>"), "{}", short());
    // One page of the table: clients 100 to 199, in id order.
    assert_eq!(dom.matches("<tr data-client=").count(), 100, "{}", short());
    assert!(dom.contains("<tr data-client=\"100\">") && dom.contains("<tr data-client=\"199\">"));
    assert!(
        dom.contains("clients 1–100 of 1000 (page 1 of 10)"),
        "{}",
        short()
    );
    // The peer's text is text, not markup.
    assert!(dom.contains("&lt;/script&gt;&lt;script&gt;"), "{}", short());
    // Client 600 opened: throughput and CPU, every kept point drawn.
    let opened = dom
        .match_indices("class=\"series\" data-client=\"client 600\" data-points=\"")
        .count();
    assert_eq!(opened, 2, "{}", short());
    assert!(dom.contains("data-client=\"client 600\" data-points=\"96\""));
    assert!(dom.matches("<circle").count() >= 2 * 96);
}
