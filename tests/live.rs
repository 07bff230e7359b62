//! Watching a run live: the HTTP JSON API, Prometheus /metrics (checked by promtool), the
//! dashboard (rendered by headless Chromium), the event stream, CSV and HTML reports.
//!
//! promtool (Debian package `prometheus`) and chromium (Debian package `chromium`) are
//! installed by `make system-deps`, which the README's test command runs; without them these
//! tests fail rather than pass vacuously.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{chromium_dom, small_plan, WAIT};
use loadmon::blocking::{ClientHandle, EventPoll, ServerHandle, WorkerHandle};
use loadmon::client::ClientConfig;
use loadmon::events::EventKind;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::WorkerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::{Report, Status};
use serde_json::Value;

fn http_server(extra: ServerConfig) -> (ServerHandle, String) {
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        http: Some("127.0.0.1:0".into()),
        ..extra
    })
    .expect("server start");
    let base = format!("http://{}", server.http_addr().expect("http address"));
    (server, base)
}

/// GET `url` with an optional bearer token: (status, content type, body).
fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("HTTP request");
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.body_mut().read_to_string().expect("body");
    (resp.status().as_u16(), ctype, body)
}

fn get_json(url: &str) -> Value {
    let (code, ctype, body) = get(url, None);
    assert_eq!(code, 200, "{url}: {body}");
    assert!(ctype.starts_with("application/json"), "{url}: {ctype}");
    serde_json::from_str(&body).expect("JSON")
}

fn test_client(port: u16, dir: &std::path::Path, run_time_s: f64) -> ClientHandle {
    let writer = FileWriter::new(FileWriterConfig {
        run_time_s,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 2 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.to_path_buf(),
        ..Default::default()
    })
    .expect("writer");
    ClientHandle::spawn(
        ClientConfig {
            port,
            heartbeat_period: Duration::from_millis(100),
            stats_period: Duration::from_millis(200),
            ..Default::default()
        },
        writer,
    )
    .expect("client")
}

/// Polls `f` every 50 ms until it is true; panics after [`WAIT`].
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A seed client over a plain socket: handshake, start, some stats, then `done` if `finish`.
fn seed_client(port: u16, finish: bool) -> (TcpStream, u32) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"get_cid\n").unwrap();
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id: u32 = line
        .trim()
        .strip_prefix("set_cid:")
        .expect("set_cid")
        .parse()
        .unwrap();
    s.write_all(b"file_stats:10:50\nstart\nhb\nsend_stats:12.5:0.3\nfile_roll\nnot a command\n")
        .unwrap();
    if finish {
        s.write_all(b"done\n").unwrap();
    }
    (s, id)
}

#[test]
fn http_api_serves_live_clients_series_metrics_and_then_the_final_report() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = http_server(ServerConfig {
        http_linger: Duration::from_secs(5),
        ..Default::default()
    });
    let a = test_client(server.port(), &dir.path().join("a"), 4.0);
    let b = test_client(server.port(), &dir.path().join("b"), 4.0);

    // Both running with stats: the live fields are there.
    let mut clients = Value::Null;
    wait_until("two running clients with stats", || {
        clients = get_json(&format!("{base}/api/clients"));
        clients.as_array().is_some_and(|v| {
            v.len() == 2
                && v.iter().all(|c| {
                    c["status"] == "RUNNING"
                        && c["cpu_last_pct"].is_number()
                        && c["stats_reports"].as_u64() >= Some(2)
                })
        })
    });
    let report_keys: Vec<String> = serde_json::to_value(server.report().clients[0].clone())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for c in clients.as_array().unwrap() {
        for k in &report_keys {
            assert!(
                c.get(k).is_some(),
                "/api/clients lacks the report field {k}"
            );
        }
        let age = c["last_heartbeat_age_s"]
            .as_f64()
            .expect("live heartbeat age");
        assert!((0.0..5.0).contains(&age), "{age}");
        assert!(c["rss_last_bytes"].as_u64().unwrap_or(0) > 0);
    }
    let series = get_json(&format!("{base}/api/series"));
    let series = series.as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        let samples = s["samples"].as_array().unwrap();
        assert!(samples.len() >= 2, "{s}");
        assert!(samples.iter().all(|p| p["throughput_mb_s"].is_number()));
    }

    let (code, ctype, metrics) = get(&format!("{base}/metrics"), None);
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    for family in [
        "loadmon_clients",
        "loadmon_client_bytes_written_total",
        "loadmon_client_files_written_total",
        "loadmon_client_cpu_percent",
        "loadmon_client_memory_bytes",
        "loadmon_client_heartbeat_age_seconds",
        "loadmon_messages_total",
    ] {
        assert!(metrics.contains(&format!("# HELP {family} ")), "{family}");
        assert!(metrics.contains(&format!("# TYPE {family} ")), "{family}");
    }
    assert!(
        metrics.contains("loadmon_clients{status=\"RUNNING\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("loadmon_client_bytes_written_total{client_id=\"100\"} "));
    assert!(metrics.contains("loadmon_client_memory_bytes{client_id=\"101\"} "));
    let hb: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("loadmon_messages_total{command=\"hb\"} "))
        .expect("hb counter")
        .parse()
        .unwrap();
    assert!(hb >= 2, "{hb}");

    let (code, _, _) = get(&format!("{base}/api/nope"), None);
    assert_eq!(code, 404);
    let (code, ctype, page) = get(&format!("{base}/"), None);
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/html"));
    assert!(page.contains("<table id=\"clients\">") && !page.contains("src=\"http"));

    a.join(Some(WAIT)).expect("client a");
    b.join(Some(WAIT)).expect("client b");
    let report = server.wait(Some(WAIT)).expect("report");
    // The listener lingers and serves the final report.
    let served = Report::from_json(&get(&format!("{base}/api/report"), None).2).unwrap();
    assert_eq!(served, report);
    assert!(served.clients.iter().all(|c| c.status == Status::Pass));
    assert_eq!(get_json(&format!("{base}/api/server"))["finished"], true);
    let (_, _, metrics) = get(&format!("{base}/metrics"), None);
    assert!(metrics.contains("loadmon_clients{status=\"PASS\"} 2\n"));
    assert!(metrics.contains("loadmon_finished 1\n"));
}

#[test]
fn http_needs_the_token_in_a_header_when_one_is_set() {
    let (server, base) = http_server(ServerConfig {
        token: Some("s3cret".into()),
        ..Default::default()
    });
    for path in [
        "/api/clients",
        "/api/report",
        "/api/series",
        "/api/server",
        "/metrics",
    ] {
        let (code, _, body) = get(&format!("{base}{path}"), None);
        assert_eq!(code, 401, "{path}");
        assert!(body.contains("token"), "{body}");
        assert_eq!(
            get(&format!("{base}{path}"), Some("wrong")).0,
            401,
            "{path}"
        );
        assert_eq!(
            get(&format!("{base}{path}"), Some("s3cret")).0,
            200,
            "{path}"
        );
    }
    // The other header form.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{base}/metrics"))
        .header("X-Loadmon-Token", "s3cret")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A token in the query string is not a header: refused.
    assert_eq!(get(&format!("{base}/metrics?token=s3cret"), None).0, 401);
    // The page itself holds no data; it reads the token from its #fragment.
    assert_eq!(get(&format!("{base}/"), None).0, 200);
    server.stop().unwrap();
}

#[test]
fn http_refuses_a_bad_address_at_start() {
    for bad in ["", "   ", "not an address", "127.0.0.1:99999"] {
        let r = ServerHandle::start(ServerConfig {
            port: 0,
            http: Some(bad.into()),
            ..Default::default()
        });
        let e = r.expect_err(bad);
        assert!(
            e.to_string().contains("http") || e.to_string().contains("HTTP"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn promtool_accepts_the_metrics_of_a_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = http_server(ServerConfig::default());
    let port = server.port();
    // One seed client that passes (with a line that does not parse), one that stays running,
    // one loadmon client running.
    let (_done, _) = seed_client(port, true);
    let (_open, open_id) = seed_client(port, false);
    let c = test_client(port, dir.path(), 1.5);
    let invalid = |server: &ServerHandle| {
        server
            .control()
            .message_counts()
            .into_iter()
            .find(|(cmd, _)| *cmd == "invalid")
            .map_or(0, |(_, n)| n)
    };
    wait_until("three clients, every seed line handled", || {
        let snap = server.snapshot();
        snap.len() == 3
            && invalid(&server) == 2
            && snap.iter().any(|c| c.status == Status::Pass)
            && snap
                .iter()
                .any(|c| c.cpu_last_pct.is_some() && c.rss_last_bytes.is_some())
    });
    let (_, _, metrics) = get(&format!("{base}/metrics"), None);
    assert!(
        metrics.contains("loadmon_messages_total{command=\"invalid\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "loadmon_client_cpu_percent{{client_id=\"{open_id}\"}} 12.5\n"
    )));
    common::promtool_accepts(&metrics);
    c.join(Some(WAIT)).expect("client");
    server.stop().unwrap();
}

#[test]
fn the_dashboard_in_headless_chromium_lists_the_clients_and_charts_their_samples() {
    let dir = tempfile::tempdir().unwrap();
    // The page is opened while both clients run (8 s); the listener lingers in case Chromium
    // is slow to start, so that a slow start fails on the RUNNING check, not on a dead port.
    let (server, base) = http_server(ServerConfig {
        http_linger: Duration::from_secs(30),
        ..Default::default()
    });
    let a = test_client(server.port(), &dir.path().join("a"), 8.0);
    let b = test_client(server.port(), &dir.path().join("b"), 8.0);
    wait_until("three samples per client", || {
        let s = server.control().series();
        s.len() == 2 && s.iter().all(|c| c.samples.len() >= 3)
    });
    let dom = chromium_dom(&format!("{base}/"), dir.path(), "dashboard");
    for id in [100, 101] {
        assert!(
            dom.contains(&format!("<tr data-client=\"{id}\">")),
            "row {id} missing:\n{dom}"
        );
    }
    assert!(dom.contains("RUNNING"), "{dom}");
    // The all-clients chart, then two charts (throughput, CPU) with one line per client,
    // each with its points.
    let points = |client: &str| -> Vec<u32> {
        dom.match_indices(&format!("class=\"series\" data-client=\"{client}\""))
            .map(|(i, _)| {
                let rest = &dom[i..];
                let n = rest.split("data-points=\"").nth(1).unwrap();
                n[..n.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    };
    let all = points("all");
    assert!(all.len() == 1 && all[0] >= 1, "{all:?} {dom}");
    // Throughput and CPU: the charts before the host I/O ones.
    let io_at = dom
        .find("id=\"chart-io-util\"")
        .expect("the host I/O charts");
    // Each client's first two lines: the throughput and CPU charts come first.
    let lines: Vec<u32> = ["100", "101"]
        .iter()
        .flat_map(|c| points(c).into_iter().take(2))
        .collect();
    let before_io = |client: &str| {
        dom[..io_at]
            .matches(&format!("class=\"series\" data-client=\"{client}\""))
            .count()
    };
    assert_eq!(before_io("100") + before_io("101"), 4, "{dom}");
    // The host I/O charts (issue 21): a line per client where the temp dir has a block
    // device (utilisation and write wait), else "n/a".
    let io_lines = dom[io_at..]
        .matches("class=\"series\" data-client=")
        .count();
    if loadmon::hostio::device_of(dir.path()).is_some() {
        assert!(io_lines >= 2, "{}", &dom[io_at..]);
    } else {
        assert!(dom[io_at..].contains("n/a: no client measured it"), "{dom}");
    }
    assert!(lines.iter().all(|n| *n >= 3), "{lines:?}");
    assert!(dom.matches("<circle").count() >= 12);
    // The fleet's merged latency percentiles over time (issue 21): p50, p99, p99.9 lines.
    for line in ["p50", "p99", "p99.9"] {
        let p = points(line);
        assert!(p.len() == 1 && p[0] >= 1, "{line}: {p:?} {dom}");
    }
    a.join(Some(WAIT)).expect("client a");
    b.join(Some(WAIT)).expect("client b");
    server.wait(Some(WAIT)).expect("report");
}

#[test]
fn events_follow_each_client_from_connection_to_the_final_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        heartbeat_timeout: Duration::from_millis(900),
        ..Default::default()
    })
    .unwrap();
    let mut events = server.events().unwrap();
    let c = test_client(server.port(), dir.path(), 1.0);
    let (_silent, silent_id) = seed_client(server.port(), false);
    let mut got = Vec::new();
    loop {
        match events.next_timeout(Some(WAIT)) {
            EventPoll::Event(e) => got.push(*e),
            EventPoll::Ended => break,
            EventPoll::Timeout => panic!("no event for {WAIT:?}; so far {got:#?}"),
        }
    }
    let result = c.join(Some(WAIT)).unwrap();
    let report = server.wait(Some(WAIT)).unwrap();

    let kinds: Vec<&EventKind> = got.iter().map(|e| &e.kind).collect();
    let of = |id: u32| -> Vec<&EventKind> {
        kinds
            .iter()
            .copied()
            .filter(|k| match k {
                EventKind::IdAssigned { client_id, .. }
                | EventKind::StatusChanged { client_id, .. }
                | EventKind::StatsSample { client_id, .. }
                | EventKind::FileRollover { client_id, .. }
                | EventKind::HeartbeatMissed { client_id, .. } => *client_id == id,
                _ => false,
            })
            .collect()
    };
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, EventKind::ClientConnected { .. }))
            .count(),
        2
    );
    // The loadmon client: id, RUNNING, stats and rollovers, PASS.
    let mine = of(result.client_id);
    assert!(matches!(mine[0], EventKind::IdAssigned { .. }), "{mine:?}");
    assert!(
        matches!(
            mine[1],
            EventKind::StatusChanged {
                status: Status::Running,
                previous: Status::NotStarted,
                ..
            }
        ),
        "{mine:?}"
    );
    assert!(matches!(
        mine.last().unwrap(),
        EventKind::StatusChanged {
            status: Status::Pass,
            previous: Status::Running,
            ..
        }
    ));
    let rollovers: Vec<u64> = mine
        .iter()
        .filter_map(|k| match k {
            EventKind::FileRollover { files_written, .. } => Some(*files_written),
            _ => None,
        })
        .collect();
    assert_eq!(rollovers, (1..=result.files_written).collect::<Vec<_>>());
    assert!(
        mine.iter()
            .filter(|k| matches!(k, EventKind::StatsSample { .. }))
            .count()
            >= 3
    );
    // The silent seed client: a missed heartbeat, then TIMED OUT.
    let silent = of(silent_id);
    let missed = silent
        .iter()
        .position(|k| matches!(k, EventKind::HeartbeatMissed { .. }))
        .expect("heartbeat_missed");
    let timed_out = silent
        .iter()
        .position(|k| {
            matches!(
                k,
                EventKind::StatusChanged {
                    status: Status::TimedOut,
                    ..
                }
            )
        })
        .expect("TIMED OUT");
    assert!(missed < timed_out);
    // The last event is the final report, the same as the server returned.
    match &got.last().unwrap().kind {
        EventKind::Report { report: r } => assert_eq!(**r, report),
        other => panic!("last event is {other:?}"),
    }
    // Every event is one JSON line that parses back.
    for e in &got {
        let line = e.to_json_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(
            &serde_json::from_str::<loadmon::events::Event>(&line).unwrap(),
            e
        );
    }
    // A subscription made after the end yields the final report, then ends.
    let mut late = server.events().unwrap();
    assert!(matches!(
        late.next().map(|e| e.kind),
        Some(EventKind::Report { .. })
    ));
    assert!(late.next().is_none());
}

#[test]
fn report_files_in_every_format_are_written_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, html, json) = (
        dir.path().join("out/r.csv"),
        dir.path().join("out/r.html"),
        dir.path().join("out/r.json"),
    );
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        report_csv: Some(csv.clone()),
        report_html: Some(html.clone()),
        report_json: Some(json.clone()),
        ..Default::default()
    })
    .unwrap();
    let c = test_client(server.port(), &dir.path().join("data"), 1.0);
    c.join(Some(WAIT)).unwrap();
    let report = server.wait(Some(WAIT)).unwrap();
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), report.to_csv());
    assert_eq!(std::fs::read_to_string(&html).unwrap(), report.to_html());
    assert_eq!(
        Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap(),
        report
    );
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("<td>100</td>") && text.contains("data-points="));
    assert!(!report.series.is_empty() && report.series[0].samples.len() >= 3);

    // An unusable CSV path is a configuration error before anything listens.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let e = ServerHandle::start(ServerConfig {
        port: 0,
        report_csv: Some(blocker.join("r.csv")),
        ..Default::default()
    })
    .expect_err("CSV under a file");
    assert!(e.is_config() && e.to_string().contains("r.csv"), "{e}");

    // A path that breaks during the run: the error is returned, the other files are still
    // written, and the report is still there.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let html2 = dir.path().join("r2.html");
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        report_csv: Some(sub.join("r.csv")),
        report_html: Some(html2.clone()),
        ..Default::default()
    })
    .unwrap();
    std::fs::remove_dir(&sub).unwrap();
    std::fs::write(&sub, "now a file").unwrap();
    let e = server.stop().expect_err("CSV under what became a file");
    assert!(e.to_string().contains("r.csv"), "{e}");
    assert!(html2.exists());
    assert!(server.is_finished() && server.report().stopped);
}

/// The measured points (`data-points`) of the first chart line of `client` in `html`.
fn first_line_points(html: &str, client: &str) -> u32 {
    let at = html
        .find(&format!(
            "class=\"series\" data-client=\"{client}\" data-points=\""
        ))
        .unwrap_or_else(|| panic!("no line of {client}:\n{html}"));
    let n = html[at..].split("data-points=\"").nth(1).unwrap();
    n[..n.find('"').unwrap()].parse().unwrap()
}

/// Issue 21: a 12 s fleet of 3 workers, measured every second — at least 10 measured points
/// per client and for the fleet in `/api`, on the dashboard and in the HTML report (both
/// rendered by Chromium), and no last point of 0 MB/s.
#[test]
fn a_12_s_fleet_of_3_workers_is_measured_every_second_in_the_api_dashboard_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let (server, base) = http_server(ServerConfig {
        http_linger: Duration::from_secs(120),
        report_html: Some(html.clone()),
        fleet: Some(FleetConfig::new(3, small_plan(12.0))),
        ..Default::default()
    });
    // The default stats period (10 s): the 1-s throughput comes from `tput` alone.
    let workers: Vec<WorkerHandle> = (0..3)
        .map(|i| {
            WorkerHandle::spawn(WorkerConfig {
                client: ClientConfig {
                    port: server.port(),
                    ..Default::default()
                },
                out_dir: dir.path().join(format!("w{i}")),
                ..Default::default()
            })
            .expect("worker")
        })
        .collect();
    for w in &workers {
        w.join(Some(Duration::from_secs(60))).expect("worker run");
    }
    let report = server.wait(Some(WAIT)).expect("report");
    assert!(report.clients.iter().all(|c| c.status == Status::Pass));
    // /api: each client's measured seconds, and the fleet's.
    let series = get_json(&format!("{base}/api/series"));
    let series = series.as_array().expect("series");
    assert_eq!(series.len(), 3);
    for s in series {
        let tput = s["tput"].as_array().expect("tput points");
        let measured: Vec<f64> = tput
            .iter()
            .filter_map(|p| p["throughput_mb_s"].as_f64())
            .collect();
        assert!(measured.len() >= 10, "{s}");
        assert!(
            measured.last().is_some_and(|r| *r > 0.0),
            "a 0 MB/s last point: {s}"
        );
    }
    let total = get_json(&format!("{base}/api/total"));
    let buckets = total["tput"].as_array().expect("fleet tput");
    let measured: Vec<&Value> = buckets
        .iter()
        .filter(|p| p["throughput_mb_s"].as_f64().is_some())
        .collect();
    assert!(measured.len() >= 10, "{total}");
    assert!(
        measured.iter().filter(|p| p["clients"] == 3).count() >= 10,
        "{total}"
    );
    let last = buckets.last().unwrap();
    assert!(
        last["throughput_mb_s"].as_f64().is_some_and(|r| r > 0.0),
        "{total}"
    );
    // The HTML report, as written and as Chromium renders it; the dashboard in Chromium.
    let written = std::fs::read_to_string(&html).unwrap();
    let file_dom = chromium_dom(&format!("file://{}", html.display()), dir.path(), "report");
    let dashboard = chromium_dom(&format!("{base}/"), dir.path(), "dashboard");
    for (page, all, prefix) in [
        (&written, "all clients", "client "),
        (&file_dom, "all clients", "client "),
        (&dashboard, "all", ""),
    ] {
        assert!(first_line_points(page, all) >= 10, "{page}");
        for id in [100, 101, 102] {
            let n = first_line_points(page, &format!("{prefix}{id}"));
            assert!(n >= 10, "client {id}: {n} points\n{page}");
        }
    }
    assert!(dashboard.contains("measured each second"), "{dashboard}");
    // The host I/O charts: a line per client where the temp dir has a block device, else
    // "n/a" (never an empty frame or a made-up zero).
    let util = &dashboard[dashboard.find("id=\"chart-io-util\"").expect("io chart")..];
    let util = &util[..util.find("</svg>").unwrap()];
    if loadmon::hostio::device_of(dir.path()).is_some() {
        for id in [100, 101, 102] {
            assert!(first_line_points(util, &id.to_string()) >= 10, "{util}");
        }
    } else {
        assert!(util.contains("n/a: no client measured it"), "{util}");
    }
    server.control().close_http();
}
