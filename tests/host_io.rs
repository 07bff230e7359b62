//! The host's I/O view (`io` lines, `loadmon::hostio`): a figure a client could not measure
//! is absent everywhere (JSON null, an empty CSV cell, "n/a" on the page, no `/metrics`
//! sample), never a zero; a real client on this machine reports the device under its
//! directory, or, where there is none, the device's figures absent.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{promtool_accepts, WAIT};
use loadmon::blocking::{ClientHandle, ServerHandle};
use loadmon::client::ClientConfig;
use loadmon::hostio::device_of;
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::{ClientReport, Report, Status};

/// The families of the host I/O view on `/metrics`.
const IO_FAMILIES: [&str; 8] = [
    "loadmon_device_util_ratio",
    "loadmon_device_write_await_seconds",
    "loadmon_device_queue_depth",
    "loadmon_device_write_bytes_per_second",
    "loadmon_io_pressure_some_ratio",
    "loadmon_io_pressure_full_ratio",
    "loadmon_dirty_bytes",
    "loadmon_writeback_bytes",
];

/// The CSV columns of the host I/O view, as the JSON keys.
const IO_COLUMNS: [&str; 8] = [
    "device_util_pct",
    "device_write_await_ms",
    "device_queue_depth",
    "device_write_mb_s",
    "io_pressure_some_pct",
    "io_pressure_full_pct",
    "dirty_bytes",
    "writeback_bytes",
];

fn http_server() -> (ServerHandle, String) {
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        http: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .expect("server start");
    let base = format!("http://{}", server.http_addr().expect("http address"));
    (server, base)
}

fn get(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(url).call().expect("HTTP request");
    resp.body_mut().read_to_string().expect("body")
}

/// Polls `f` every 50 ms until it is true; panics after [`WAIT`].
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `metrics` has a sample of `family` for `id`.
fn has_sample(metrics: &str, family: &str, id: u32) -> bool {
    metrics.contains(&format!("{family}{{client_id=\"{id}\"}} "))
}

/// A scripted loadmon peer: hello, id, start, then `lines`; returns the socket and its id.
fn scripted_peer(port: u16, lines: &[&str]) -> (TcpStream, u32) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"hello:1.0\nget_cid\nready\n").unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let id = loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(id) = line.trim().strip_prefix("set_cid:") {
            break id.parse().unwrap();
        }
        assert!(!line.is_empty(), "closed before set_cid");
    };
    let mut text = String::from("start\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    s.write_all(text.as_bytes()).unwrap();
    (s, id)
}

fn row(report: &Report, id: u32) -> &ClientReport {
    report.clients.iter().find(|c| c.id == id).expect("row")
}

#[test]
fn figures_a_peer_could_not_measure_are_absent_everywhere_never_zero() {
    let (server, base) = http_server();
    let port = server.port();
    // One peer measured nothing but its dirty memory; one measured everything.
    let (mut blind, blind_id) = scripted_peer(
        port,
        &[
            "io:1764064800123:-:-:-:-:-:-:1048576:-",
            "io:x:1:2:3:4:5:6:7:8",
        ],
    );
    let (mut full, full_id) = scripted_peer(
        port,
        &["io:1764064800123:87.5:12.25:3.5:410:23.75:20.5:303104:52428800"],
    );
    wait_until("both io lines and the bad one handled", || {
        let snap = server.snapshot();
        let invalid = server
            .control()
            .message_counts()
            .into_iter()
            .find(|(cmd, _)| *cmd == "invalid")
            .map_or(0, |(_, n)| n);
        invalid == 1
            && snap
                .iter()
                .any(|c| c.id == blind_id && c.dirty_bytes.is_some())
            && snap
                .iter()
                .any(|c| c.id == full_id && c.device_util_pct.is_some())
    });
    let metrics = get(&format!("{base}/metrics"));
    for family in IO_FAMILIES {
        assert!(has_sample(&metrics, family, full_id), "{family}\n{metrics}");
        let want = family == "loadmon_dirty_bytes";
        assert_eq!(
            has_sample(&metrics, family, blind_id),
            want,
            "{family}\n{metrics}"
        );
    }
    assert!(metrics.contains(&format!(
        "loadmon_device_util_ratio{{client_id=\"{full_id}\"}} 0.875\n"
    )));
    assert!(metrics.contains(&format!(
        "loadmon_device_write_bytes_per_second{{client_id=\"{full_id}\"}} 429916160\n"
    )));
    promtool_accepts(&metrics);
    // /api/io: each client's points, null where it could not measure (never a made-up zero).
    let io: serde_json::Value = serde_json::from_str(&get(&format!("{base}/api/io"))).unwrap();
    let point = |id: u32| {
        io.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no io series of {id}: {io}"))["samples"][0]
            .clone()
    };
    assert_eq!(point(full_id)["util_pct"], 87.5, "{io}");
    assert_eq!(point(full_id)["write_await_ms"], 12.25, "{io}");
    assert!(point(blind_id)["util_pct"].is_null(), "{io}");
    assert_eq!(point(blind_id)["dirty_bytes"], 1_048_576, "{io}");
    blind.write_all(b"done\n").unwrap();
    full.write_all(b"done\n").unwrap();
    let report = server.wait(Some(WAIT)).expect("report");
    let b = row(&report, blind_id);
    assert_eq!(b.status, Status::Pass);
    assert_eq!(
        (
            b.device_util_pct,
            b.device_write_await_ms,
            b.device_queue_depth
        ),
        (None, None, None)
    );
    assert_eq!(
        (
            b.device_write_mb_s,
            b.io_pressure_some_pct,
            b.io_pressure_full_pct
        ),
        (None, None, None)
    );
    assert_eq!((b.dirty_bytes, b.writeback_bytes), (Some(1_048_576), None));
    let f = row(&report, full_id);
    assert_eq!(
        (
            f.device_util_pct,
            f.device_write_await_ms,
            f.writeback_bytes
        ),
        (Some(87.5), Some(12.25), Some(52_428_800))
    );
    // JSON: null, not 0; the series keeps the absent figures absent, on the server's timeline.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let jb = json["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == blind_id)
        .unwrap();
    for key in IO_COLUMNS {
        let want = if key == "dirty_bytes" {
            serde_json::json!(1_048_576)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(jb[key], want, "{key}");
    }
    let series = report.io_series.iter().find(|s| s.id == blind_id).unwrap();
    assert_eq!(series.samples.len(), 1);
    assert_eq!(series.samples[0].util_pct, None);
    // CSV: the I/O columns, then the clock exchange's two and the latency's four (found by
    // name: columns appended after them move nothing here), empty cells.
    let csv = report.to_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let io_cols = at(IO_COLUMNS[0])..at(IO_COLUMNS[0]) + 8;
    assert_eq!(&header[io_cols.clone()], IO_COLUMNS);
    let clock_cols = io_cols.end..io_cols.end + 2;
    assert_eq!(
        &header[clock_cols.clone()],
        ["clock_offset_ms", "clock_rtt_ms"]
    );
    assert_eq!(
        &header[clock_cols.end..clock_cols.end + 4],
        [
            "chunk_p90_ms",
            "chunk_p999_ms",
            "chunk_max_ms",
            "chunk_writes"
        ]
    );
    let blind_row = lines
        .find(|l| l.starts_with(&format!("{blind_id},")))
        .unwrap();
    let cells: Vec<&str> = blind_row.split(',').collect();
    assert_eq!(&cells[io_cols], ["", "", "", "", "", "", "1048576", ""]);
    // A peer without the clock exchange: no offset either.
    assert_eq!(&cells[clock_cols], ["", ""]);
    // HTML: n/a.
    let html = report.to_html();
    let table = &html[html.find("id=\"host-io\"").expect("host I/O table")..];
    let blind_tr = &table[table
        .find(&format!("<tr class=\"io\"><td>{blind_id}</td>"))
        .unwrap()..];
    let blind_tr = &blind_tr[..blind_tr.find("</tr>").unwrap()];
    // Seven figures unknown; the dirty memory (1 MiB) known.
    assert_eq!(blind_tr.matches("n/a").count(), 7, "{blind_tr}");
    assert!(blind_tr.contains("<td>1.0 / n/a</td>"), "{blind_tr}");
    assert!(!blind_tr.contains("<td>0"), "{blind_tr}");
}

#[test]
fn a_real_client_reports_the_device_under_its_directory_or_its_absence() {
    let dir = tempfile::tempdir().unwrap();
    let device = device_of(dir.path());
    let (server, base) = http_server();
    let writer = FileWriter::new(FileWriterConfig {
        run_time_s: 2.6,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 4 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .expect("writer");
    let client = ClientHandle::spawn(
        ClientConfig {
            port: server.port(),
            ..Default::default()
        },
        writer,
    )
    .expect("client");
    // With a device, its figures come with the first interval (a second after the start).
    wait_until("a host I/O sample", || {
        server
            .snapshot()
            .iter()
            .any(|c| c.dirty_bytes.is_some() && (device.is_none() || c.device_util_pct.is_some()))
    });
    let metrics = get(&format!("{base}/metrics"));
    promtool_accepts(&metrics);
    assert_eq!(
        metrics.contains("loadmon_device_util_ratio{client_id=\"100\"} "),
        device.is_some(),
        "{device:?}\n{metrics}"
    );
    let result = client.join(Some(WAIT)).expect("client");
    let report = server.wait(Some(WAIT)).expect("report");
    let c = row(&report, result.client_id);
    let series = report
        .io_series
        .iter()
        .find(|s| s.id == c.id)
        .expect("io series");
    assert!(series.samples.len() >= 2, "{series:?}");
    // Each point sits within the run on the server's timeline (same clock: offset 0).
    let end_s = loadmon_run_end_s(&report);
    for p in &series.samples {
        assert!(p.t_s > 0.0 && p.t_s <= end_s + 1.0, "{p:?} (end {end_s})");
    }
    // Linux has /proc/meminfo everywhere.
    assert!(
        c.dirty_bytes.is_some() && c.writeback_bytes.is_some(),
        "{c:?}"
    );
    match device {
        Some(name) => {
            assert!(
                series.samples.iter().any(|p| p.util_pct.is_some()),
                "{name}: {series:?}"
            );
            assert!(c.device_write_mb_s.is_some(), "{name}: {c:?}");
        }
        None => {
            eprintln!(
                "no block device under {}: its figures must be absent",
                dir.path().display()
            );
            assert!(series.samples.iter().all(|p| p.util_pct.is_none()
                && p.write_await_ms.is_none()
                && p.queue_depth.is_none()
                && p.device_write_mb_s.is_none()));
            assert_eq!(
                (c.device_util_pct, c.device_write_mb_s),
                (None, None),
                "{c:?}"
            );
        }
    }
}

/// Seconds from the server's start to its end, from the report's times.
fn loadmon_run_end_s(report: &Report) -> f64 {
    let a = chrono::DateTime::parse_from_rfc3339(&report.start_time).unwrap();
    let b = chrono::DateTime::parse_from_rfc3339(&report.end_time).unwrap();
    (b - a).num_milliseconds() as f64 / 1000.0
}
