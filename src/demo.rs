//! The seed's demo: a server and three test clients started 2 s, 4 s and 6 s after it with
//! (run time s, chunk MB, file MB) = (20, 10, 100), (12, 15, 80), (15, 25, 50).
//!
//! As the seed ran it, each client can be its own process ([`DemoOptions::client_exe`]: the
//! `loadmon` binary, run as `loadmon client …`; this is what `loadmon demo` does). Without an
//! executable the clients run on threads of this process: their CPU figures are still their
//! own (each client measures its own threads, see [`crate::stats`]), but their memory is the
//! one process's, and the report says that three clients shared it (`process_clients`).
//!
//! A client that fails validation (the seed's three rules) does not stop the demo: it is
//! reported to the server, which lists it as FAILED with the reason, and the others run on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::blocking::{report_failure, ClientHandle, ServerHandle};
use crate::client::ClientConfig;
use crate::error::{Error, Result};
use crate::logging::{CLIENT_LOG_DIR, SERVER_LOG_DIR};
use crate::report::Report;
use crate::server::ServerConfig;
use crate::workload::file_writer::{FileWriter, FileWriterConfig};

/// One client of the demo schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoClient {
    /// Seconds after the server starts.
    pub delay_s: f64,
    /// Run time, seconds.
    pub run_time_s: f64,
    /// Chunk size, MiB.
    pub chunk_size_mb: u64,
    /// File size, MiB.
    pub file_size_mb: u64,
}

/// The seed's schedule.
pub const SEED_SCHEDULE: [DemoClient; 3] = [
    DemoClient {
        delay_s: 2.0,
        run_time_s: 20.0,
        chunk_size_mb: 10,
        file_size_mb: 100,
    },
    DemoClient {
        delay_s: 4.0,
        run_time_s: 12.0,
        chunk_size_mb: 15,
        file_size_mb: 80,
    },
    DemoClient {
        delay_s: 6.0,
        run_time_s: 15.0,
        chunk_size_mb: 25,
        file_size_mb: 50,
    },
];

/// A short schedule of the same shape for tests (about 3 s, small files, 1 MB minimum chunk).
pub const QUICK_SCHEDULE: [DemoClient; 3] = [
    DemoClient {
        delay_s: 0.2,
        run_time_s: 2.0,
        chunk_size_mb: 1,
        file_size_mb: 4,
    },
    DemoClient {
        delay_s: 0.4,
        run_time_s: 1.5,
        chunk_size_mb: 2,
        file_size_mb: 4,
    },
    DemoClient {
        delay_s: 0.6,
        run_time_s: 1.8,
        chunk_size_mb: 1,
        file_size_mb: 2,
    },
];

/// Demo settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Use [`QUICK_SCHEDULE`] and short heartbeat/stats periods.
    pub quick: bool,
    /// Port for the server (0: any free port).
    pub port: u16,
    /// Where the clients write their files (removed at the end).
    pub out_dir: PathBuf,
    /// Where to write the JSON report, if anywhere.
    pub report_json: Option<PathBuf>,
    /// Where to write the session logs, if anywhere.
    pub log_dir: Option<PathBuf>,
    /// Where to write the CSV report, if anywhere.
    pub report_csv: Option<PathBuf>,
    /// Where to write the HTML report (table and charts), if anywhere.
    pub report_html: Option<PathBuf>,
    /// `host:port` for the HTTP API and dashboard, if any.
    pub http: Option<String>,
    /// Show the live console table (a terminal) or status lines (otherwise).
    pub live: bool,
    /// The `loadmon` executable: each client runs as its own `loadmon client` process, as the
    /// seed's demo ran them. `None`: each client runs on threads of this process.
    pub client_exe: Option<PathBuf>,
    /// Another schedule than the seed's (or the quick one), e.g. one with a client that fails
    /// validation.
    pub schedule: Option<Vec<DemoClient>>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            quick: false,
            port: 0,
            out_dir: PathBuf::from("client_files"),
            report_json: None,
            log_dir: None,
            report_csv: None,
            report_html: None,
            http: None,
            live: false,
            client_exe: None,
            schedule: None,
        }
    }
}

/// A client that could not run: reported to the server once every client has been started
/// (reported earlier, while no other client is connected, it would end the server's run).
struct Failure {
    file_stats: (u64, u64),
    reason: String,
}

/// The demo's log directory unless told otherwise (the CLI's `loadmon demo --log-dir`): the
/// working directory, which gets `server_logs/` and `client_logs/`.
pub const LOG_DIR: &str = ".";
/// The demo's HTML report unless told otherwise (the CLI's `loadmon demo --report-html`).
pub const REPORT_HTML: &str = "loadmon_demo_report.html";
/// How often the demo's live view prints a status line when stdout is not a terminal.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the demo and returns the server's report, in which every client appears, PASS or not.
/// The data files written are removed at the end (the directory too, if the demo created it).
///
/// # Errors
/// The server's error, or a client process that cannot be started.
pub fn run(opts: &DemoOptions) -> Result<Report> {
    let schedule = opts.schedule.clone().unwrap_or_else(|| {
        if opts.quick {
            QUICK_SCHEDULE.to_vec()
        } else {
            SEED_SCHEDULE.to_vec()
        }
    });
    let created_dir = !opts.out_dir.exists();
    let server = ServerHandle::start(ServerConfig {
        port: opts.port,
        report_json: opts.report_json.clone(),
        report_csv: opts.report_csv.clone(),
        report_html: opts.report_html.clone(),
        http: opts.http.clone(),
        log_dir: opts.log_dir.as_ref().map(|d| d.join(SERVER_LOG_DIR)),
        ..Default::default()
    })?;
    let live = opts
        .live
        .then(|| crate::console::LiveView::server(server.control(), Some(STATUS_INTERVAL)));
    let config = client_config(opts, server.port());
    start_clients(opts, &config, &schedule)?.finish(&config, &schedule);
    let report = if server.snapshot().is_empty() {
        server.stop()
    } else {
        server.wait(None)
    };
    drop(live);
    for i in 0..schedule.len() {
        let _ = std::fs::remove_dir_all(client_dir(opts, i));
    }
    if created_dir {
        let _ = std::fs::remove_dir(&opts.out_dir);
    }
    report
}

/// Where the demo's client `i` (from 0) writes its files.
fn client_dir(opts: &DemoOptions, i: usize) -> PathBuf {
    opts.out_dir.join(format!("demo_client_{}", i + 1))
}

/// The demo's clients once all have been started.
struct Started {
    /// Clients on threads of this process.
    threads: Vec<ClientHandle>,
    /// Clients on threads that could not start.
    failures: Vec<Failure>,
    /// Client processes as they end: (index in the schedule, exit code, stderr).
    exits: mpsc::Receiver<(usize, Option<i32>, String)>,
}

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;

/// Starts every client of `schedule` at its time: a process of `opts.client_exe` (a waiter
/// thread sends its exit on [`Started::exits`]) or threads of this process.
fn start_clients(
    opts: &DemoOptions,
    config: &ClientConfig,
    schedule: &[DemoClient],
) -> Result<Started> {
    let min_chunk_size_mb = if opts.quick { 1 } else { 10 };
    let started = std::time::Instant::now();
    let (exits_tx, exits) = mpsc::channel();
    let mut threads = Vec::new();
    let mut failures = Vec::new();
    for (i, c) in schedule.iter().enumerate() {
        let wait = Duration::from_secs_f64(c.delay_s).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
        let out_dir = client_dir(opts, i);
        match &opts.client_exe {
            Some(exe) => {
                let child = spawn_client(exe, config, c, min_chunk_size_mb, &out_dir)?;
                let tx = exits_tx.clone();
                std::thread::spawn(move || {
                    let (code, stderr) = match child.wait_with_output() {
                        Ok(out) => (
                            out.status.code(),
                            String::from_utf8_lossy(&out.stderr).into_owned(),
                        ),
                        Err(e) => (None, e.to_string()),
                    };
                    let _ = tx.send((i, code, stderr));
                });
            }
            None => {
                let writer = FileWriter::new(FileWriterConfig {
                    run_time_s: c.run_time_s,
                    chunk_size_bytes: c.chunk_size_mb.saturating_mul(MIB),
                    file_size_bytes: c.file_size_mb.saturating_mul(MIB),
                    min_chunk_size_bytes: min_chunk_size_mb * MIB,
                    out_dir,
                    ..Default::default()
                });
                match writer.and_then(|w| ClientHandle::spawn(config.clone(), w)) {
                    Ok(h) => threads.push(h),
                    Err(e) => failures.push(Failure {
                        file_stats: (c.chunk_size_mb, c.file_size_mb),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    Ok(Started {
        threads,
        failures,
        exits,
    })
}

impl Started {
    /// Reports the clients that could not run (those on threads now, every client has
    /// started; processes as they end) and waits for the clients on threads.
    fn finish(self, config: &ClientConfig, schedule: &[DemoClient]) {
        report_failures(config, self.failures);
        for (i, code, stderr) in self.exits {
            // Exit code 2: a configuration error, before connecting (validation failed).
            if code == Some(2) {
                let file_stats = schedule
                    .get(i)
                    .map_or((0, 0), |c| (c.chunk_size_mb, c.file_size_mb));
                report_failures(
                    config,
                    vec![Failure {
                        file_stats,
                        reason: last_error_line(&stderr),
                    }],
                );
            }
        }
        for h in &self.threads {
            // Its failures are in the report already (the client sent error:<reason>).
            let _ = h.join(None);
        }
    }
}

/// Reports each of `failures` to the server as a client of its own, at once.
fn report_failures(config: &ClientConfig, failures: Vec<Failure>) {
    let threads: Vec<_> = failures
        .into_iter()
        .map(|f| {
            let config = config.clone();
            std::thread::spawn(move || {
                if let Err(e) = report_failure(config, Some(f.file_stats), &f.reason) {
                    tracing::warn!("could not report a failed demo client: {e}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// The demo clients' settings: the seed's periods, except stats every 2 s (the seed's 10 s
/// would give a 12-20 s run one or two chart points).
fn client_config(opts: &DemoOptions, port: u16) -> ClientConfig {
    ClientConfig {
        port,
        heartbeat_period: if opts.quick {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        },
        stats_period: if opts.quick {
            Duration::from_millis(400)
        } else {
            Duration::from_secs(2)
        },
        log_dir: opts.log_dir.as_ref().map(|d| d.join(CLIENT_LOG_DIR)),
        ..Default::default()
    }
}

/// Starts `exe client …` for one client of the schedule.
fn spawn_client(
    exe: &Path,
    config: &ClientConfig,
    c: &DemoClient,
    min_chunk_size_mb: u64,
    out_dir: &Path,
) -> Result<std::process::Child> {
    let mut cmd = Command::new(exe);
    cmd.arg("--quiet")
        .arg("client")
        .args(["--host", &config.host])
        .args(["--port", &config.port.to_string()])
        .args(["--runtime", &c.run_time_s.to_string()])
        .args(["--chunksize", &c.chunk_size_mb.to_string()])
        .args(["--filesize", &c.file_size_mb.to_string()])
        .args(["--min-chunksize", &min_chunk_size_mb.to_string()])
        .args([
            "--heartbeat-period",
            &config.heartbeat_period.as_secs_f64().to_string(),
        ])
        .args([
            "--stats-period",
            &config.stats_period.as_secs_f64().to_string(),
        ])
        .arg("--out-dir")
        .arg(out_dir);
    match &config.log_dir {
        Some(d) => cmd.arg("--log-dir").arg(d),
        None => cmd.arg("--no-log-files"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::file("start a demo client", exe, e))
}

/// The reason in a failed `loadmon client`'s stderr: its last line, without the `loadmon: `.
fn last_error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let line = line.trim();
    let line = line.strip_prefix("loadmon: ").unwrap_or(line);
    if line.is_empty() {
        "the client process failed before connecting".into()
    } else {
        line.to_string()
    }
}
