//! Per-client figures: CPU from the client's own threads, memory labelled with the clients that
//! share the process, a stats sample in every run, the seed's text report, the demo's failures.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, ServerHandle};
use loadmon::client::ClientConfig;
use loadmon::demo::{DemoClient, DemoOptions};
use loadmon::report::Report;
use loadmon::server::ServerConfig;
use loadmon::stats::process_cpu_ns;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig, KeepFiles};
use loadmon::workload::{Context, Workload};
use loadmon::Status;

/// Tests that compare with the whole process's CPU must not overlap with the others.
static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|p| p.into_inner())
}

fn server() -> ServerHandle {
    ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap()
}

/// Spins one core for its run time, recording a "write" now and then.
struct Spin(Duration);

impl Workload for Spin {
    fn run_time(&self) -> Option<Duration> {
        Some(self.0)
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let mut x = 0u64;
        while !ctx.time_is_up() {
            let t = Instant::now();
            for i in 0..200_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            ctx.record_write(1 << 20, t.elapsed())?;
        }
        std::hint::black_box(x);
        ctx.file_rollover()?;
        Ok(())
    }
}

/// CPU seconds a client reported: with the default 10 s stats period a short run has one
/// sample, the last one, which covers the whole run.
fn cpu_s(c: &loadmon::report::ClientReport) -> f64 {
    c.cpu_avg_pct / 100.0 * c.time_ran_s
}

#[cfg(target_os = "linux")]
#[test]
fn a_client_alone_in_its_process_reports_what_the_process_used() {
    let _g = alone();
    let server = server();
    let before = process_cpu_ns().unwrap();
    let client = ClientHandle::spawn(
        ClientConfig {
            port: server.port(),
            ..Default::default()
        },
        Spin(Duration::from_millis(1500)),
    )
    .unwrap();
    client.join(Some(Duration::from_secs(20))).unwrap();
    let report = server.wait(Some(Duration::from_secs(20))).unwrap();
    let process_s = (process_cpu_ns().unwrap() - before) as f64 / 1e9;
    let c = &report.clients[0];
    assert_eq!(c.stats_reports, 1, "{c:?}");
    assert_eq!(c.process_clients, Some(1), "{c:?}");
    let client_s = cpu_s(c);
    eprintln!("client {client_s:.3} s, process {process_s:.3} s");
    // The process also ran the server and the client's runtime: a few milliseconds.
    assert!(
        (client_s - process_s).abs() <= 0.15 * process_s,
        "client {client_s:.3} s, process {process_s:.3} s"
    );
}

/// Runs `Spin(run)` with a 1 s stats period on a server of its own; the server's report.
fn spin_with_a_one_second_stats_period(run: Duration) -> Report {
    let server = server();
    let client = ClientHandle::spawn(
        ClientConfig {
            port: server.port(),
            stats_period: Duration::from_secs(1),
            ..Default::default()
        },
        Spin(run),
    )
    .unwrap();
    client.join(Some(Duration::from_secs(20))).unwrap();
    server.wait(Some(Duration::from_secs(20))).unwrap()
}

/// Issue 21's honest samples: one busy writer thread never shows more than one core, on any
/// sample, the last included, in runs whose last stats interval is tiny (1.05 s and 2.01 s
/// with a 1 s period) or that are shorter than a period (0.3 s): in the server's report and
/// series, and in the client's own figures (its log), with no figure clamped.
#[cfg(target_os = "linux")]
#[test]
fn one_writer_thread_shows_at_most_one_core_on_every_sample() {
    use loadmon::logging::{set_log_sink, LogLevel};
    use loadmon::stats::CPU_TOLERANCE_PCT;
    let _g = alone();
    let lines = std::sync::Arc::new(Mutex::new(Vec::<(LogLevel, String)>::new()));
    let l = lines.clone();
    set_log_sink(Some((
        LogLevel::Debug,
        std::sync::Arc::new(move |r| {
            if r.message.starts_with("CPU sample") {
                l.lock().unwrap().push((r.level, r.message.to_string()));
            }
        }),
    )));
    let max = 100.0 + CPU_TOLERANCE_PCT;
    for run_ms in [300, 1050, 2010] {
        let report = spin_with_a_one_second_stats_period(Duration::from_millis(run_ms));
        let c = &report.clients[0];
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.stats_reports >= 1, "{c:?}");
        assert!(
            c.cpu_avg_pct > 0.0 && c.cpu_avg_pct <= max,
            "{run_ms} ms: {c:?}"
        );
        assert!(c.cpu_last_pct.is_some_and(|p| p > 0.0 && p <= max), "{c:?}");
        assert!(c.cpu_core_avg_pct.is_some_and(|p| p <= 100.0), "{c:?}");
        let series = &report.series[0].samples;
        assert!(!series.is_empty(), "{report:?}");
        for s in series {
            assert!(s.cpu_pct <= max, "{run_ms} ms: {series:?}");
        }
    }
    set_log_sink(None);
    let lines = lines.lock().unwrap();
    let samples: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|(_, m)| {
            let rest = m.strip_prefix("CPU sample: ")?;
            let (pct, over) = rest.split_once(" % over ")?;
            Some((pct.parse().ok()?, over.strip_suffix(" s")?.parse().ok()?))
        })
        .collect();
    eprintln!("client samples (CPU %, s covered): {samples:?}");
    assert!(samples.len() >= 3, "{lines:?}");
    for &(pct, over_s) in &samples {
        assert!(pct <= max, "{lines:?}");
        // The 0.3 s run's one sample covers the run; every other at least 0.5 s.
        assert!(over_s >= 0.29, "{lines:?}");
    }
    assert!(
        !lines.iter().any(|(level, _)| *level == LogLevel::Warn),
        "no figure clamped: {lines:?}"
    );
    // The tiny last intervals were folded into the ones before.
    assert!(
        lines
            .iter()
            .any(|(_, m)| m.starts_with("CPU sample folded")),
        "{lines:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn clients_sharing_a_process_add_up_to_no_more_than_it() {
    let _g = alone();
    let server = server();
    let before = process_cpu_ns().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<ClientHandle> = [(1u64, 2u64), (2, 4), (4, 8)]
        .iter()
        .enumerate()
        .map(|(i, &(chunk, file))| {
            let w = FileWriter::new(FileWriterConfig {
                run_time_s: 1.0,
                chunk_size_bytes: chunk << 20,
                file_size_bytes: file << 20,
                min_chunk_size_bytes: 1 << 20,
                out_dir: dir.path().join(format!("c{i}")),
                ..Default::default()
            })
            .unwrap();
            ClientHandle::spawn(
                ClientConfig {
                    port: server.port(),
                    ..Default::default()
                },
                w,
            )
            .unwrap()
        })
        .collect();
    for h in &handles {
        h.join(Some(Duration::from_secs(20))).unwrap();
    }
    let report = server.wait(Some(Duration::from_secs(20))).unwrap();
    let process_s = (process_cpu_ns().unwrap() - before) as f64 / 1e9;
    let total: f64 = report.clients.iter().map(cpu_s).sum();
    for c in &report.clients {
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.cpu_avg_pct > 0.0, "{c:?}");
        assert!(c.process_clients.is_some_and(|k| k >= 1), "{c:?}");
    }
    assert!(
        total <= process_s * 1.15,
        "clients {total:.3} s, process {process_s:.3} s"
    );
}

/// The issue's case: a client shared its process the whole run but finished last, when the
/// others were gone. Its report says it shared the process, not that it was alone.
#[test]
fn a_client_that_shared_its_process_and_finished_last_is_not_reported_alone() {
    let _g = alone();
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let client = |name: &str, run_time_s: f64| {
        let w = FileWriter::new(FileWriterConfig {
            run_time_s,
            chunk_size_bytes: 1 << 20,
            file_size_bytes: 1 << 20,
            min_chunk_size_bytes: 1 << 20,
            out_dir: dir.path().join(name),
            ..Default::default()
        })
        .unwrap();
        // The default 10 s stats period: each sends one sample, when it ends.
        ClientHandle::spawn(
            ClientConfig {
                port: server.port(),
                ..Default::default()
            },
            w,
        )
        .unwrap()
    };
    let long = client("long", 2.0);
    let short = client("short", 0.3);
    let short = short.join(Some(Duration::from_secs(20))).unwrap();
    let long = long.join(Some(Duration::from_secs(20))).unwrap();
    let report = server.wait(Some(Duration::from_secs(20))).unwrap();
    let of = |id| report.clients.iter().find(|c| c.id == id).unwrap();
    assert_eq!(of(short.client_id).process_clients, Some(2), "{report:?}");
    assert_eq!(of(long.client_id).process_clients, Some(2), "{report:?}");
}

#[test]
fn a_two_second_cli_client_with_the_default_stats_period_has_stats() {
    let _g = alone();
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loadmon"))
        .args(["-q", "client", "--port", &server.port().to_string()])
        .args(["-r", "2", "-c", "1", "-f", "2", "--min-chunksize", "1"])
        .arg("--no-log-files")
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = server.wait(Some(Duration::from_secs(20))).unwrap();
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Pass);
    assert!(c.stats_reports >= 1, "{c:?}");
    assert!(c.cpu_avg_pct > 0.0 && c.mem_avg_pct > 0.0, "{c:?}");
    assert!(c.cpu_core_avg_pct.is_some() && c.rss_peak_bytes.unwrap_or(0) > 0);
    assert_eq!(c.process_clients, Some(1), "alone in its process");
    assert!(c.throughput_mb_s > 0.0);
    // The HTML report charts it.
    let html = report.to_html();
    assert!(html.contains(r#"data-client="client 100""#), "{html}");
}

#[test]
fn files_are_numbered_from_zero_as_the_seed_numbered_them() {
    let _g = alone();
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let w = FileWriter::new(FileWriterConfig {
        run_time_s: 0.3,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 16 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().to_path_buf(),
        keep_files: KeepFiles::All,
        ..Default::default()
    })
    .unwrap();
    let r = loadmon::blocking::run_client(
        ClientConfig {
            port: server.port(),
            ..Default::default()
        },
        w,
    )
    .unwrap();
    assert!(r.files_written >= 1);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("client_100_0_")),
        "{names:?}"
    );
    let last = format!("client_100_{}_", r.files_written - 1);
    assert!(names.iter().any(|n| n.starts_with(&last)), "{names:?}");
    assert_eq!(names.len() as u64, r.files_written, "{names:?}");
}

#[test]
fn many_writers_of_one_process_validate_in_one_out_dir() {
    let _g = alone();
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let out_dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                FileWriter::new(FileWriterConfig {
                    run_time_s: 30.0,
                    chunk_size_bytes: 4 << 20,
                    file_size_bytes: 8 << 20,
                    min_chunk_size_bytes: 1 << 20,
                    out_dir,
                    ..Default::default()
                })
                .map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "every probe file is removed: {left:?}");
}

/// The seed's report from /work/shared/PROTOCOL.md ("The text report (byte format)").
const SEED_REPORT: &str = "
=========================================================
All test clients completed!
    Start time: 2026-11-25_10:00:00
    End time:   2026-11-25_10:00:20

Total of 1 client(s) ran. Data for each client:
---------------------------------------------------------
  Client 100
    Test status:   PASS
    Time ran:      12.00 sec
    Avg CPU usage: 98.90%
    Avg MEM usage: 0.00%
    Files written: 217
    File size:     20
    Chunk size:    10
=========================================================
";

#[test]
fn the_text_report_is_the_seeds_line_by_line() {
    let _g = alone();
    let report = Report::from_json(
        r#"{"start_time":"2026-11-25T10:00:00+00:00","end_time":"2026-11-25T10:00:20+00:00",
        "clients":[{"id":100,"status":"PASS","time_ran_s":12.0,"cpu_avg_pct":98.9,
        "mem_avg_pct":0.0,"files_written":217,"file_size_mb":20,"chunk_size_mb":10,
        "heartbeats":2,"stats_reports":1,"bytes_written":4550819840,"throughput_mb_s":361.7,
        "reason":null,"peer":null,"protocol_version":null,"start_time":null,"end_time":null,
        "cpu_core_avg_pct":null,"rss_avg_bytes":null,"rss_peak_bytes":null,"chunk_p50_ms":null,
        "chunk_p99_ms":null,"last_heartbeat_age_s":null}],
        "total":{"clients":1,"passed":1,"files_written":217,"bytes_written":4550819840,
        "throughput_mb_s":361.7,"first_done":null,"last_done":null}}"#,
    )
    .unwrap();
    let text = report.to_text();
    let ours: Vec<&str> = text.lines().collect();
    let seed: Vec<&str> = SEED_REPORT.lines().collect();
    assert_eq!(ours.len(), seed.len(), "{text}");
    for (i, (a, b)) in ours.iter().zip(&seed).enumerate() {
        assert_eq!(a, b, "line {i}");
    }
    assert_eq!(text, SEED_REPORT, "byte for byte");
}

/// Each line of a real run's client block has the seed's label and value format.
#[test]
fn a_real_client_block_has_the_seeds_format() {
    let _g = alone();
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let w = FileWriter::new(FileWriterConfig {
        run_time_s: 0.5,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 2 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    loadmon::blocking::run_client(
        ClientConfig {
            port: server.port(),
            ..Default::default()
        },
        w,
    )
    .unwrap();
    let text = server
        .wait(Some(Duration::from_secs(20)))
        .unwrap()
        .to_text();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "  Client 100")
        .take(8)
        .collect();
    let two_decimals = |v: &str| {
        v.split_once('.').is_some_and(|(a, b)| {
            a.parse::<u64>().is_ok() && b.len() == 2 && b.parse::<u8>().is_ok()
        })
    };
    type Check<'a> = &'a dyn Fn(&str) -> bool;
    let expect: [(&str, Check); 8] = [
        ("  Client ", &|v| v == "100"),
        ("    Test status:   ", &|v| v == "PASS"),
        ("    Time ran:      ", &|v| {
            v.strip_suffix(" sec").is_some_and(two_decimals)
        }),
        ("    Avg CPU usage: ", &|v| {
            v.strip_suffix('%').is_some_and(two_decimals)
        }),
        ("    Avg MEM usage: ", &|v| {
            v.strip_suffix('%').is_some_and(two_decimals)
        }),
        ("    Files written: ", &|v| v.parse::<u64>().is_ok()),
        ("    File size:     ", &|v| v == "2"),
        ("    Chunk size:    ", &|v| v == "1"),
    ];
    assert_eq!(block.len(), expect.len(), "{text}");
    for (line, (label, ok)) in block.iter().zip(expect) {
        let value = line
            .strip_prefix(label)
            .unwrap_or_else(|| panic!("{line:?}"));
        assert!(ok(value), "{line:?}");
    }
}

fn failing_schedule() -> Vec<DemoClient> {
    vec![
        DemoClient {
            delay_s: 0.1,
            run_time_s: 1.5,
            chunk_size_mb: 1,
            file_size_mb: 2,
        },
        // Chunk larger than the file: the seed's second rule refuses it.
        DemoClient {
            delay_s: 0.2,
            run_time_s: 1.0,
            chunk_size_mb: 4,
            file_size_mb: 2,
        },
        DemoClient {
            delay_s: 0.3,
            run_time_s: 1.2,
            chunk_size_mb: 1,
            file_size_mb: 1,
        },
    ]
}

fn check_failing_demo(report: &Report) {
    let statuses: Vec<Status> = report.clients.iter().map(|c| c.status).collect();
    assert_eq!(report.clients.len(), 3, "{report:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == Status::Pass).count(),
        2,
        "{statuses:?}"
    );
    let failed = report
        .clients
        .iter()
        .find(|c| c.status == Status::Failed)
        .expect("the invalid client is in the report");
    let reason = failed.reason.as_deref().unwrap_or("");
    assert!(reason.contains("larger than file size"), "{reason}");
    assert_eq!((failed.chunk_size_mb, failed.file_size_mb), (4, 2));
    assert!(report.to_text().contains("    Reason:        "));
}

#[test]
fn a_demo_client_that_fails_validation_is_reported_and_the_others_run_threads() {
    let _g = alone();
    let dir = tempfile::tempdir().unwrap();
    let report = loadmon::demo::run(&DemoOptions {
        quick: true,
        out_dir: dir.path().join("data"),
        schedule: Some(failing_schedule()),
        ..Default::default()
    })
    .unwrap();
    check_failing_demo(&report);
    // Two clients ran on threads of this process at the same time.
    assert!(
        report
            .clients
            .iter()
            .any(|c| c.process_clients.is_some_and(|k| k >= 2)),
        "{report:?}"
    );
}

#[test]
fn a_demo_client_that_fails_validation_is_reported_and_the_others_run_processes() {
    let _g = alone();
    let dir = tempfile::tempdir().unwrap();
    let report = loadmon::demo::run(&DemoOptions {
        quick: true,
        out_dir: dir.path().join("data"),
        schedule: Some(failing_schedule()),
        client_exe: Some(env!("CARGO_BIN_EXE_loadmon").into()),
        ..Default::default()
    })
    .unwrap();
    check_failing_demo(&report);
    for c in report.clients.iter().filter(|c| c.status == Status::Pass) {
        assert_eq!(c.process_clients, Some(1), "each its own process: {c:?}");
    }
}
