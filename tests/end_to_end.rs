//! Full runs over loopback with the real file writer, through the async and blocking APIs.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TestServer, WAIT};
use loadmon::blocking::{ClientHandle, ServerHandle};
use loadmon::client::{Client, ClientConfig};
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::{Error, Report, Status};

fn writer(dir: &Path, run_time_s: f64, chunk: u64, file: u64) -> FileWriter {
    FileWriter::new(FileWriterConfig {
        run_time_s,
        chunk_size_bytes: chunk << 20,
        file_size_bytes: file << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.to_path_buf(),
        ..Default::default()
    })
    .expect("valid writer")
}

fn fast(port: u16) -> ClientConfig {
    ClientConfig {
        port,
        heartbeat_period: Duration::from_millis(100),
        stats_period: Duration::from_millis(200),
        ..Default::default()
    }
}

fn data_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_file_writers_pass_and_the_report_matches_what_they_did() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("out").join("report.json");
    let logs = tmp.path().join("server_logs");
    let server = TestServer::start(ServerConfig {
        report_json: Some(json.clone()),
        log_dir: Some(logs.clone()),
        ..Default::default()
    })
    .await;
    let port = server.addr.port();
    let params = [(1.0, 1, 4), (1.2, 2, 4), (0.8, 1, 2)];
    let mut runs = Vec::new();
    for (i, (t, c, f)) in params.into_iter().enumerate() {
        let dir = tmp.path().join(format!("c{i}"));
        let w = writer(&dir, t, c, f);
        let client = Client::new(fast(port)).unwrap();
        runs.push((dir, tokio::spawn(async move { client.run(w).await })));
    }
    let mut results = Vec::new();
    for (dir, run) in runs {
        let r = tokio::time::timeout(WAIT, run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // keep_files = 2 by default: never more than two finished files left.
        let files = data_files(&dir);
        assert!(files.len() <= 2, "{files:?}");
        let prefix = format!("client_{}_", r.client_id);
        assert!(files.iter().all(|f| f.starts_with(&prefix)), "{files:?}");
        results.push(r);
    }
    let report = server.report().await;
    assert_eq!(report.clients.len(), 3);
    for (r, (_, chunk, file)) in results.iter().zip(params) {
        let c = report.clients.iter().find(|c| c.id == r.client_id).unwrap();
        assert_eq!(c.status, Status::Pass);
        assert_eq!(c.files_written, r.files_written);
        assert!(r.files_written >= 2, "{r:?}");
        assert_eq!(c.bytes_written, r.bytes_written);
        assert!(r.bytes_written >= r.files_written * file * 1024 * 1024);
        assert_eq!((c.chunk_size_mb, c.file_size_mb), (chunk, file));
        assert!(c.heartbeats >= 2 && c.stats_reports >= 1, "{c:?}");
        assert_eq!(c.heartbeats, r.heartbeats_sent);
        assert_eq!(c.stats_reports, r.stats_sent);
        assert!(c.rss_peak_bytes.unwrap() > 0);
        assert!(c.mem_avg_pct > 0.0, "two decimals, so not 0.0: {c:?}");
        assert!(c.chunk_p99_ms.unwrap() >= c.chunk_p50_ms.unwrap());
        assert!(r.throughput_mb_s > 0.0 && c.throughput_mb_s > 0.0);
        assert!(c.reason.is_none());
    }
    assert_eq!(report.total.clients, 3);
    assert_eq!(report.total.passed, 3);
    assert_eq!(
        report.total.bytes_written,
        results.iter().map(|r| r.bytes_written).sum::<u64>()
    );
    assert!(report.total.first_done.is_some() && report.total.last_done.is_some());
    let on_disk = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(on_disk, report);
    let log_files = data_files(&logs);
    assert_eq!(log_files.len(), 1, "{log_files:?}");
    let log = std::fs::read_to_string(logs.join(&log_files[0])).unwrap();
    assert!(log.contains("All test clients completed!"), "{log}");
}

/// Issue 21: a loadmon client on loopback runs the clock exchange; the server finds its clock
/// where it is (the same host's) and warns about nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_the_same_host_is_on_the_servers_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let client = Client::new(fast(server.addr.port())).unwrap();
    let run = client.run(writer(tmp.path(), 0.5, 1, 2));
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let report = server.report().await;
    let c = &report.clients[0];
    let offset_ms = c.clock_offset_ms.expect("a clock sample");
    let rtt_ms = c.clock_rtt_ms.expect("its round trip");
    assert!(
        offset_ms.abs() < 50.0 && (0.0..50.0).contains(&rtt_ms),
        "{c:?}"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn blocking_handles_start_wait_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        server.wait(Some(Duration::from_millis(20))),
        Err(Error::Timeout(_))
    ));
    let client = ClientHandle::spawn(fast(server.port()), writer(tmp.path(), 5.0, 1, 2)).unwrap();
    // Watch it run through the live snapshot.
    let t = std::time::Instant::now();
    loop {
        let snap = server.snapshot();
        if snap
            .first()
            .is_some_and(|c| c.status == Status::Running && c.heartbeats > 0)
        {
            assert!(snap[0].last_heartbeat_age_s.is_some());
            assert!(snap[0].time_ran_s > 0.0);
            break;
        }
        assert!(t.elapsed() < WAIT, "never saw the client running: {snap:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = server.stop().unwrap();
    assert_eq!(report.clients[0].status, Status::Aborted);
    assert_eq!(report.clients[0].reason.as_deref(), Some("server stopped"));
    assert_eq!(server.stop().unwrap(), report, "stop again: same report");
    assert_eq!(server.wait(None).unwrap(), report);
    let e = client.join(Some(WAIT)).unwrap_err();
    assert!(matches!(e, Error::Disconnected(_)), "{e:?}");
    assert!(client.is_finished());
}

#[test]
fn a_cancelled_client_stops_and_the_server_marks_it_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let client = ClientHandle::spawn(fast(server.port()), writer(tmp.path(), 30.0, 1, 2)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    client.cancel();
    let e = client.join(Some(WAIT)).unwrap_err();
    assert!(matches!(e, Error::Interrupted(_)), "{e:?}");
    let report = server.wait(Some(WAIT)).unwrap();
    assert_eq!(report.clients[0].status, Status::Failed);
    assert!(report.clients[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("interrupted"));
}

#[test]
fn sync_modes_write_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    for (mode, keep) in [
        (SyncMode::File, KeepFiles::All),
        (SyncMode::Direct, KeepFiles::Last(1)),
    ] {
        let dir = tmp.path().join(mode.to_string());
        let w = FileWriter::new(FileWriterConfig {
            run_time_s: 1.0,
            chunk_size_bytes: 1 << 20,
            file_size_bytes: 2 << 20,
            min_chunk_size_bytes: 1 << 20,
            out_dir: dir.clone(),
            sync: mode,
            keep_files: keep,
            ..Default::default()
        });
        let w = match (mode, w) {
            (_, Ok(w)) => w,
            // O_DIRECT is refused by some filesystems (tmpfs): that must be a clear error.
            (SyncMode::Direct, Err(e)) => {
                assert!(e.is_config() && e.to_string().contains("O_DIRECT"), "{e}");
                continue;
            }
            (_, Err(e)) => panic!("{e}"),
        };
        let server = ServerHandle::start(ServerConfig {
            port: 0,
            ..Default::default()
        })
        .unwrap();
        let r = loadmon::blocking::run_client(fast(server.port()), w).unwrap();
        let report = server.wait(Some(WAIT)).unwrap();
        assert_eq!(report.clients[0].status, Status::Pass);
        let files = data_files(&dir);
        match keep {
            KeepFiles::All => assert_eq!(files.len() as u64, r.files_written),
            KeepFiles::Last(n) => assert!(files.len() <= n),
        }
        for f in &files {
            assert_eq!(std::fs::metadata(dir.join(f)).unwrap().len(), 2 << 20);
        }
    }
}

/// `--jobs 3`: the server's report has each stream's figures, and they add up to the client's.
#[test]
fn a_client_with_streams_reports_each_and_their_sums_are_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let w = FileWriter::new(FileWriterConfig {
        run_time_s: 0.6,
        chunk_size_bytes: 64 << 10,
        file_size_bytes: 256 << 10,
        min_chunk_size_bytes: 4 << 10,
        out_dir: tmp.path().to_path_buf(),
        keep_files: KeepFiles::All,
        jobs: 3,
        ..Default::default()
    })
    .unwrap();
    let result = ClientHandle::spawn(fast(server.port()), w)
        .unwrap()
        .join(Some(WAIT))
        .unwrap();
    let report = server.wait(Some(WAIT)).unwrap();
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Pass);
    // file_stats carries the whole MiB of the sub-MB sizes (a seed peer reads whole MB only):
    // 0, so that files × file size never exceeds the bytes written.
    assert_eq!((c.chunk_size_mb, c.file_size_mb), (0, 0));
    let streams: Vec<u32> = c.streams.iter().map(|s| s.stream).collect();
    assert_eq!(streams, [0, 1, 2]);
    let bytes: u64 = c.streams.iter().map(|s| s.bytes_written).sum();
    let files: u64 = c.streams.iter().map(|s| s.files_written).sum();
    assert_eq!((bytes, files), (result.bytes_written, result.files_written));
    assert_eq!((c.bytes_written, c.files_written), (bytes, files));
    for s in &c.streams {
        assert!(s.files_written > 0 && s.throughput_mb_s > 0.0, "{s:?}");
        assert!(
            s.chunk_p50_ms.is_some() && s.chunk_max_ms >= s.chunk_p99_ms,
            "{s:?}"
        );
    }
    let on_disk = data_files(tmp.path());
    assert_eq!(on_disk.len() as u64, files);
    for name in &on_disk {
        let stream = name.split('_').nth(2).unwrap();
        assert!(["0", "1", "2"].contains(&stream), "{name}");
    }
    // The JSON has them; the CSV has no column for a list.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["clients"][0]["streams"][2]["stream"], 2);
    assert!(!report.to_csv().contains("streams"));
}
