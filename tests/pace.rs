//! Paced writes (issue 22). The server's side: the `rlat` and `pace` lines of clients of known
//! schedules are merged exactly into the report (JSON, CSV, text, HTML), the live figures
//! (`/api`, `/metrics`, events, the dashboard), and a client whose lag went past the bound is
//! said to have not kept pace; bad lines count as invalid and grow nothing. End to end: a paced
//! client with streams reaches its rate and reports its schedule; a fleet's rate is split
//! across its 3 workers in their plans.

mod common;

use std::time::Duration;

use common::{small_plan, Raw, TestServer, WAIT};
use hdrhistogram::Histogram;
use loadmon::client::{Client, ClientConfig};
use loadmon::events::EventKind;
use loadmon::latency::{record_lag_us, IntervalHistogram, PACE_LAG_BOUND_MS};
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::Status;

/// A loadmon peer's handshake (`hello`, `get_cid`, `ready`) and `start`.
async fn started_peer(server: &TestServer) -> Raw {
    let mut raw = Raw::connect(server.addr).await;
    raw.send("hello:1.0").await;
    assert_eq!(raw.recv().await.as_deref(), Some("hello:1.0"));
    raw.seed_handshake().await;
    raw.send("start").await;
    raw
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The base64 histogram of `values` (µs; 0 allowed, as a start lag).
fn blob(values: &[u64]) -> String {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for v in values {
        record_lag_us(&mut h, *v);
    }
    IntervalHistogram::encode(&h).unwrap().as_str().to_string()
}

/// Whether two µs values are the same to 3 significant digits (one histogram bucket).
fn same_bucket(a: u64, b: u64) -> bool {
    Histogram::<u64>::new(3).unwrap().equivalent(a, b)
}

/// The exact nearest-rank quantile of `samples`.
fn exact_quantile(mut samples: Vec<u64>, q: f64) -> u64 {
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Client A keeps its pace (50 MB/s; start lags 0 to 2 ms; the lag now 1 ms); client B, at
/// 100 MB/s, fell 1.5 s behind in one second (a stall: its later chunks waited behind it).
struct Schedules {
    a_lags: Vec<u64>,
    a_response: Vec<u64>,
    b_lags: Vec<u64>,
    b_response: Vec<u64>,
}

fn schedules() -> Schedules {
    Schedules {
        a_lags: (0..500)
            .map(|i| if i % 5 == 0 { i * 4 } else { 0 })
            .collect(),
        a_response: (0..500).map(|i| 20_000 + i * 10).collect(),
        b_lags: (0..300).map(|i| i * 5_000).collect(),
        b_response: (0..300).map(|i| 30_000 + i * 5_000).collect(),
    }
}

/// Sends one paced second of `lags` and `response` at `rate` with the lag now `lag_us`.
async fn paced_second(raw: &mut Raw, rate: f64, lag_us: u64, lags: &[u64], response: &[u64]) {
    let t = now_ms();
    let t0 = t - 1000;
    raw.send(&format!("rlat:{t0}:{t}:{}", blob(response))).await;
    raw.send(&format!("pace:{t0}:{t}:{rate}:{lag_us}:{}", blob(lags)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_figures_merge_exactly_and_a_client_that_fell_behind_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, html) = (dir.path().join("r.csv"), dir.path().join("r.html"));
    let server = TestServer::start(ServerConfig {
        report_csv: Some(csv.clone()),
        report_html: Some(html.clone()),
        ..Default::default()
    })
    .await;
    let mut events = server.control.subscribe();
    let s = schedules();
    let mut a = started_peer(&server).await;
    let mut b = started_peer(&server).await;
    paced_second(&mut a, 50.0, 1_000, &s.a_lags, &s.a_response).await;
    paced_second(&mut b, 100.0, 1_500_000, &s.b_lags, &s.b_response).await;
    // A second without chunks for A: its pace line alone, without a histogram.
    let t = now_ms();
    a.send(&format!("pace:{}:{t}:50:0:-", t - 1000)).await;
    for raw in [&mut a, &mut b] {
        raw.send("done").await;
        assert!(raw.closed().await);
    }
    let report = server.report().await;

    let [ra, rb] = &report.clients[..] else {
        panic!("{:?}", report.clients)
    };
    assert_eq!(
        (ra.pace_target_mb_s, rb.pace_target_mb_s),
        (Some(50.0), Some(100.0))
    );
    assert_eq!((ra.kept_pace, rb.kept_pace), (Some(true), Some(false)));
    assert_eq!(
        (ra.schedule_lag_ms, rb.schedule_lag_ms),
        (Some(0.0), Some(1500.0))
    );
    let us = |ms: Option<f64>| (ms.unwrap() * 1000.0).round() as u64;
    assert!(same_bucket(
        us(ra.schedule_lag_p99_ms),
        exact_quantile(s.a_lags.clone(), 0.99)
    ));
    assert!(same_bucket(us(rb.response_max_ms), 30_000 + 299 * 5_000));
    assert!(rb.schedule_lag_max_ms.unwrap() >= 1500.0);
    assert!(ra.schedule_lag_max_ms.unwrap() <= PACE_LAG_BOUND_MS);

    // The fleet: every chunk of both merged, not an average of the clients' percentiles.
    let pace = report.total.pace.as_ref().expect("total.pace");
    assert_eq!(
        (pace.clients, pace.rate_mb_s, &pace.behind[..]),
        (2, 150.0, &[rb.id][..])
    );
    let lag = pace.schedule_lag.unwrap();
    assert_eq!(lag.writes, 800);
    let all_lags: Vec<u64> = s.a_lags.iter().chain(&s.b_lags).copied().collect();
    assert!(same_bucket(
        (lag.p99_ms * 1000.0).round() as u64,
        exact_quantile(all_lags, 0.99)
    ));
    let response = pace.response.unwrap();
    let all_response: Vec<u64> = s.a_response.iter().chain(&s.b_response).copied().collect();
    assert_eq!(response.writes, 800);
    assert!(same_bucket(
        (response.p50_ms * 1000.0).round() as u64,
        exact_quantile(all_response, 0.5)
    ));
    assert!(!pace.schedule_lag_series.is_empty() && !pace.response_series.is_empty());

    // Where a reader sees it: the warning, the text report's line, CSV, HTML, JSON.
    let warning = format!(
        "client {} could not keep pace: its schedule lag reached 1.500 s",
        rb.id
    );
    assert!(
        report.warnings.iter().any(|w| w.starts_with(&warning)),
        "{:?}",
        report.warnings
    );
    let text = report.to_text();
    assert!(text.contains("Paced writes, 2 client(s) at 150.00 MB/s together: schedule lag p50"));
    assert!(
        text.contains("; 1 could not keep pace (schedule lag over 1 s)"),
        "{text}"
    );
    assert!(text.contains(&format!("Warning: {warning}")), "{text}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row_b: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(row_b[col("kept_pace")], "false");
    assert_eq!(row_b[col("pace_target_mb_s")], "100.0");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<p id=\"pace\">Paced writes, 2 client(s)"));
    assert!(page.contains("no: could not keep pace") && page.contains("class=\"pace\""));
    let back = loadmon::Report::from_json(&report.to_json()).unwrap();
    assert_eq!(back.total.pace, report.total.pace);

    // Live: one schedule_lag event per pace line, with the figures so far.
    let mut lag_events = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(WAIT, events.next()).await {
        match e.kind {
            EventKind::ScheduleLag {
                client_id,
                target_mb_s,
                lag_ms,
                kept_pace,
                ..
            } => lag_events.push((client_id, target_mb_s, lag_ms, kept_pace)),
            EventKind::Report { .. } => break,
            _ => {}
        }
    }
    // Lines of two connections arrive in either order; each client's in its own.
    lag_events.sort_by_key(|e| e.0);
    assert_eq!(
        lag_events,
        [
            (ra.id, 50.0, 1.0, true),
            (ra.id, 50.0, 0.0, true),
            (rb.id, 100.0, 1500.0, false)
        ]
    );
}

#[tokio::test]
async fn an_unpaced_run_has_no_paced_figures_anywhere() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut raw = started_peer(&server).await;
    let t = now_ms();
    raw.send(&format!("lat:{}:{t}:{}", t - 1000, blob(&[1_000])))
        .await;
    raw.send("done").await;
    assert!(raw.closed().await);
    let report = server.report().await;
    assert!(report.total.pace.is_none() && report.warnings.is_empty());
    let c = &report.clients[0];
    assert!(c.pace_target_mb_s.is_none() && c.kept_pace.is_none() && c.response_p99_ms.is_none());
    assert!(!report.to_json().contains("\"pace\""));
    assert!(!report.to_text().contains("Paced"));
    assert!(!report.to_html().contains("id=\"pace\""));
}

#[tokio::test]
async fn bad_pace_and_rlat_lines_count_as_invalid_and_grow_nothing() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut raw = started_peer(&server).await;
    let g = blob(&[0, 1_500]);
    let t = now_ms();
    let bad = [
        format!("pace:1:2:0:0:{g}"),
        format!("pace:1:2:-5:0:{g}"),
        format!("pace:1:2:NaN:0:{g}"),
        format!("pace:1:2:inf:0:{g}"),
        format!("pace:1:2:1000001:0:{g}"),
        format!("pace:1:2:50:1000000000000001:{g}"),
        format!("pace:1:2:50:-1:{g}"),
        format!("pace:5:2:50:0:{g}"),
        "pace:1:2:50:0".to_string(),
        format!("pace:1:2:50:0:{}", &g[..g.len() / 2]),
        format!("pace:1:2:50:0:{}", "A".repeat(3_001)),
        format!("rlat:1:2:{}", "A".repeat(3_001)),
        "rlat:1:2:not base64".to_string(),
        format!("rlat:5:2:{g}"),
        format!("rlat:1:2:{g}:x"),
    ];
    for _ in 0..20 {
        for line in &bad {
            raw.send(line).await;
        }
    }
    // One good line of each, then lines outside the run (ignored, with a warning).
    raw.send(&format!("pace:{}:{t}:50:0:{g}", t - 1000)).await;
    raw.send(&format!("rlat:{}:{t}:{g}", t - 1000)).await;
    raw.send(&format!("pace:0:1000:50:0:{g}")).await;
    raw.send(&format!("rlat:0:1000:{g}")).await;
    raw.send("done").await;
    assert!(raw.closed().await);
    let counts = server.control.message_counts();
    let count = |k: &str| counts.iter().find(|c| c.0 == k).unwrap().1;
    assert_eq!(count("invalid"), 20 * bad.len() as u64);
    assert_eq!((count("pace"), count("rlat")), (2, 2));
    let report = tokio::time::timeout(WAIT, server.report()).await.unwrap();
    let pace = report.total.pace.unwrap();
    assert_eq!(pace.schedule_lag.unwrap().writes, 2);
    assert_eq!(pace.response.unwrap().writes, 2);
    assert_eq!(report.clients[0].kept_pace, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_api_carry_the_schedule_lag_and_pass_promtool() {
    let server = TestServer::start(ServerConfig {
        http: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .await;
    let mut raw = started_peer(&server).await;
    paced_second(
        &mut raw,
        50.0,
        250_000,
        &[0, 0, 300, 70_000],
        &[9_000, 20_000],
    )
    .await;
    let http = server.control.http_addr().expect("HTTP address");
    let get = move |path: &'static str| {
        ureq::get(&format!("http://{http}{path}"))
            .call()
            .expect("HTTP")
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let metrics = tokio::task::spawn_blocking(move || loop {
        let body = get("/metrics");
        // The pace line comes after the rlat line: once it is in, both are.
        if body.contains("loadmon_schedule_lag_seconds_count 4\n") {
            return (body, get("/api/total"), get("/api/clients"));
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    let (metrics, total, clients) = tokio::time::timeout(WAIT, metrics).await.unwrap().unwrap();
    for line in [
        "# TYPE loadmon_schedule_lag_seconds histogram\n",
        "loadmon_schedule_lag_seconds_bucket{le=\"0.0001\"} 2\n",
        "loadmon_schedule_lag_seconds_bucket{le=\"0.0005\"} 3\n",
        "loadmon_schedule_lag_seconds_bucket{le=\"0.1\"} 4\n",
        "loadmon_schedule_lag_seconds_count 4\n",
        "# TYPE loadmon_chunk_response_seconds histogram\n",
        "loadmon_chunk_response_seconds_bucket{le=\"0.01\"} 1\n",
        "loadmon_chunk_response_seconds_bucket{le=\"0.025\"} 2\n",
        "loadmon_client_schedule_lag_seconds{client_id=\"100\"} 0.25\n",
        "loadmon_client_pace_target_bytes_per_second{client_id=\"100\"} 52428800\n",
        "loadmon_client_kept_pace{client_id=\"100\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line}{metrics}");
    }
    let total: serde_json::Value = serde_json::from_str(&total).unwrap();
    assert_eq!(total["pace"]["rate_mb_s"], 50.0);
    assert_eq!(total["pace"]["schedule_lag"]["writes"], 4);
    let clients: serde_json::Value = serde_json::from_str(&clients).unwrap();
    assert_eq!(clients[0]["schedule_lag_ms"], 250.0);
    common::promtool_accepts(&metrics);
    raw.send("done").await;
    assert!(raw.closed().await);
    server.report().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_schedule_lag_in_chromium() {
    let server = TestServer::start(ServerConfig {
        http: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .await;
    let mut paced = started_peer(&server).await;
    let mut plain = started_peer(&server).await;
    paced_second(
        &mut paced,
        50.0,
        1_250_000,
        &[0, 300, 1_200_000],
        &[9_000, 1_300_000],
    )
    .await;
    let http = server.control.http_addr().expect("HTTP address");
    let dom = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        common::chromium_dom(&format!("http://{http}/"), dir.path(), "dashboard")
    });
    let dom = tokio::time::timeout(Duration::from_secs(90), dom)
        .await
        .unwrap()
        .unwrap();
    // The paced client's row: its lag now and p99; the other's "–".
    let row = |id: u32| {
        let at = dom
            .find(&format!("<tr data-client=\"{id}\">"))
            .expect("row");
        dom[at..at + dom[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row(100).contains("<td class=\"behind\">1250.0 / "),
        "{}",
        row(100)
    );
    assert!(
        row(101).contains("<td>–</td><td class=\"l\">"),
        "{}",
        row(101)
    );
    // The paced charts are shown and drawn: p50, p99 and max of the start lags.
    let charts = &dom[dom.find("id=\"pace-charts\"").expect("pace charts")..];
    assert!(
        !charts[..charts.find('>').unwrap()].contains("hidden"),
        "{charts}"
    );
    let lag = &charts[charts.find("id=\"chart-lag\"").unwrap()..];
    let lag = &lag[..lag.find("</svg>").unwrap()];
    for label in ["p50", "p99", "max"] {
        assert!(
            lag.contains(&format!("data-client=\"{label}\" data-points=\"1\"")),
            "{lag}"
        );
    }
    for raw in [&mut paced, &mut plain] {
        raw.send("done").await;
        assert!(raw.closed().await);
    }
    server.report().await;
}

/// A paced file writer of `jobs` streams at `rate_mb_s` for `run_time_s` (256 KiB chunks,
/// 1 MiB files) in `dir`.
fn paced_writer(dir: &std::path::Path, rate_mb_s: f64, jobs: u32, run_time_s: f64) -> FileWriter {
    FileWriter::new(FileWriterConfig {
        run_time_s,
        chunk_size_bytes: 256 << 10,
        file_size_bytes: 1 << 20,
        min_chunk_size_bytes: 4096,
        out_dir: dir.to_path_buf(),
        jobs,
        rate_mb_s: Some(rate_mb_s),
        ..Default::default()
    })
    .expect("a valid paced writer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_client_with_two_streams_reaches_its_rate_and_reports_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let client = Client::new(ClientConfig {
        port: server.addr.port(),
        stats_period: Duration::from_millis(500),
        ..Default::default()
    })
    .unwrap();
    client
        .run(paced_writer(dir.path(), 8.0, 2, 3.0))
        .await
        .expect("the paced run");
    let report = server.report().await;
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Pass);
    assert_eq!(c.pace_target_mb_s, Some(8.0));
    // 3 s at 8 MiB/s: 24 MiB, within a chunk per stream (and the run's own start and end).
    let mib = c.bytes_written as f64 / (1 << 20) as f64;
    assert!((23.0..=25.5).contains(&mib), "{mib} MiB");
    assert!(
        (c.throughput_mb_s - 8.0).abs() / 8.0 <= 0.1,
        "{} MB/s",
        c.throughput_mb_s
    );
    // Both streams wrote their half (each at 4 MiB/s, one 256 KiB chunk every 62.5 ms).
    assert_eq!(c.streams.len(), 2);
    for s in &c.streams {
        let share = s.bytes_written as f64 / c.bytes_written as f64;
        assert!((0.45..=0.55).contains(&share), "{share}");
    }
    // Both latencies: every chunk's response (from its due time) is at least its service
    // time, so every percentile is; a local disk at 8 MiB/s keeps pace.
    let (resp, serv) = (c.response_p99_ms.unwrap(), c.chunk_p99_ms.unwrap());
    assert!(
        resp >= serv * 0.99,
        "response p99 {resp} < service p99 {serv}"
    );
    assert_eq!(c.kept_pace, Some(true), "{c:?}");
    assert!(c.schedule_lag_max_ms.unwrap() < PACE_LAG_BOUND_MS);
    let pace = report.total.pace.as_ref().unwrap();
    assert_eq!((pace.clients, pace.rate_mb_s), (1, 8.0));
    // Every chunk begun has its start lag, every chunk written its response time.
    let chunks = c.chunk_writes.unwrap();
    assert_eq!(pace.response.unwrap().writes, chunks);
    assert!(pace.schedule_lag.unwrap().writes >= chunks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_wide_rate_is_split_across_3_workers_in_their_plans() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan {
        rate_mb_s: Some(30.0),
        ..small_plan(3.0)
    };
    let server = TestServer::start(ServerConfig {
        fleet: Some(FleetConfig::new(3, plan)),
        ..Default::default()
    })
    .await;
    // The plan on the wire: each worker's share, 10 MiB/s.
    let mut peek = Raw::connect(server.addr).await;
    peek.send("hello:1.0:plan,ping").await;
    assert_eq!(peek.recv().await.as_deref(), Some("hello:1.0:plan,ping"));
    let line = peek.recv().await.expect("the plan");
    assert!(
        line.starts_with("plan:run=") && line.ends_with(":rate=10"),
        "{line}"
    );
    peek.close().await;
    // Three workers run it: each paced at 10, the fleet at 30.
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let worker = Worker::new(WorkerConfig {
                client: ClientConfig {
                    port: server.addr.port(),
                    ..Default::default()
                },
                out_dir: dir.path().join(format!("w{i}")),
                ..Default::default()
            })
            .unwrap();
            tokio::spawn(async move { worker.run_once().await })
        })
        .collect();
    for run in runs {
        let run = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the workers ran")
            .unwrap()
            .expect("the worker passed");
        assert_eq!(run.plan.rate_mb_s, Some(10.0));
    }
    let report = server.report().await;
    assert_eq!(report.clients.len(), 3);
    for c in &report.clients {
        assert_eq!(
            (c.status, c.pace_target_mb_s),
            (Status::Pass, Some(10.0)),
            "{c:?}"
        );
        assert!((c.throughput_mb_s - 10.0).abs() / 10.0 <= 0.15, "{c:?}");
    }
    let pace = report.total.pace.unwrap();
    assert_eq!((pace.clients, pace.rate_mb_s), (3, 30.0));
    // The share is each worker's to check too: 2 files must fit at it.
    let e = ServerConfig {
        fleet: Some(FleetConfig::new(
            3,
            Plan {
                rate_mb_s: Some(3.0),
                ..small_plan(3.0)
            },
        )),
        ..Default::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("at a rate of 1 MB/s, only 1.50 whole file(s)"),
        "{e}"
    );
}
