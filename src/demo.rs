//! The seed's demo: a server and three test clients started 2 s, 4 s and 6 s after it with
//! (run time s, chunk MB, file MB) = (20, 10, 100), (12, 15, 80), (15, 25, 50).

use std::path::PathBuf;
use std::time::Duration;

use crate::blocking::{ClientHandle, ServerHandle};
use crate::client::ClientConfig;
use crate::error::Result;
use crate::file_writer::{FileWriter, FileWriterConfig};
use crate::report::Report;
use crate::server::ServerConfig;

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
        }
    }
}

/// Runs the demo in this process and returns the server's report. The data files written are
/// removed at the end (the directory too, if the demo created it).
///
/// # Errors
/// Any client's or the server's error.
pub fn run(opts: &DemoOptions) -> Result<Report> {
    let schedule = if opts.quick {
        QUICK_SCHEDULE
    } else {
        SEED_SCHEDULE
    };
    let created_dir = !opts.out_dir.exists();
    let server = ServerHandle::start(ServerConfig {
        port: opts.port,
        report_json: opts.report_json.clone(),
        report_csv: opts.report_csv.clone(),
        report_html: opts.report_html.clone(),
        http: opts.http.clone(),
        log_dir: opts.log_dir.as_ref().map(|d| d.join("server_logs")),
        ..Default::default()
    })?;
    let live = opts
        .live
        .then(|| crate::console::LiveView::server(server.control(), Some(Duration::from_secs(5))));
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    let mut first_error = None;
    for (i, c) in schedule.iter().enumerate() {
        let wait = Duration::from_secs_f64(c.delay_s).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
        let writer = FileWriter::new(FileWriterConfig {
            run_time_s: c.run_time_s,
            chunk_size_mb: c.chunk_size_mb,
            file_size_mb: c.file_size_mb,
            min_chunk_size_mb: if opts.quick { 1 } else { 10 },
            out_dir: opts.out_dir.join(format!("demo_client_{}", i + 1)),
            ..Default::default()
        });
        let config = ClientConfig {
            port: server.port(),
            heartbeat_period: if opts.quick {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            },
            // Shorter than the seed's 10 s so that the charts of a 12–20 s run have points.
            stats_period: if opts.quick {
                Duration::from_millis(400)
            } else {
                Duration::from_secs(2)
            },
            log_dir: opts.log_dir.as_ref().map(|d| d.join("client_logs")),
            ..Default::default()
        };
        match writer.and_then(|w| ClientHandle::spawn(config, w)) {
            Ok(h) => clients.push(h),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for h in &clients {
        if let Err(e) = h.join(None) {
            first_error.get_or_insert(e);
        }
    }
    let report = if clients.is_empty() {
        server.stop()
    } else {
        server.wait(None)
    };
    drop(live);
    for i in 0..schedule.len() {
        let _ = std::fs::remove_dir_all(opts.out_dir.join(format!("demo_client_{}", i + 1)));
    }
    if created_dir {
        let _ = std::fs::remove_dir(&opts.out_dir);
    }
    match first_error {
        Some(e) => Err(e),
        None => report,
    }
}
