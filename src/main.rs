//! The `loadmon` command: `loadmon server`, `loadmon client`, `loadmon demo`.
//!
//! Exit codes: 0 success (for `server` and `demo`: every client PASS); 1 runtime error;
//! 2 configuration or usage error; 3 the report was written but not every client PASSed
//! (including clients ABORTED because the server was stopped by SIGINT/SIGTERM).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::io::Write;

use clap::{Args, Parser, Subcommand};
use loadmon::blocking::Events;
use loadmon::client::{Client, ClientConfig};
use loadmon::console::{LiveView, SuspendingStderr};
use loadmon::events::EventStream;
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::server::{Server, ServerConfig};
use loadmon::{Error, Report, Status};

#[derive(Parser, Debug)]
#[command(name = "loadmon", version, about = "Coordinated file-write load tests")]
struct Cli {
    /// More log output (debug level); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Only warnings and errors on the console.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: hand out ids, watch clients, write the report when all are gone.
    Server(ServerArgs),
    /// Run one file-writing test client.
    Client(ClientArgs),
    /// Run the seed's demo: a server, and three clients each in its own `loadmon client` process.
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0 = any free port; the port is logged).
    #[arg(long, default_value_t = 1234)]
    port: u16,
    /// Most clients at once; extra ones are refused.
    #[arg(long, default_value_t = 5)]
    max_clients: usize,
    /// The first client id.
    #[arg(long, default_value_t = 100)]
    first_client_id: u32,
    /// Seconds without a heartbeat before a client is TIMED OUT.
    #[arg(long, default_value_t = 15.0, value_parser = seconds)]
    heartbeat_timeout: f64,
    /// Seconds a new connection has to send get_cid.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    handshake_timeout: f64,
    /// Shared secret clients must send.
    #[arg(long, env = "LOADMON_TOKEN")]
    token: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Directory for the session log file.
    #[arg(long, default_value = "server_logs")]
    log_dir: PathBuf,
    /// Do not write a log file.
    #[arg(long)]
    no_log_files: bool,
    /// Threads serving connections. 1 (the default) is plenty for heartbeats and stats from
    /// thousands of clients and costs the least CPU; more help only a flood of messages.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    #[command(flatten)]
    watch: WatchArgs,
}

/// Live output and extra reports, shared by `server` and `demo`.
#[derive(Args, Debug)]
struct WatchArgs {
    /// Serve the HTTP JSON API, Prometheus /metrics and the dashboard on HOST:PORT
    /// (e.g. 127.0.0.1:8080; port 0 picks one). Off by default.
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<String>,
    /// Keep the HTTP listener up this many seconds after the run, serving the final report.
    #[arg(long, default_value_t = 0.0, value_parser = seconds, value_name = "SECONDS")]
    http_linger: f64,
    /// Write every event as one JSON line to PATH as it happens ("-" for stdout).
    #[arg(long, value_name = "PATH")]
    json_stream: Option<PathBuf>,
    /// Write the report as CSV (one row per client).
    #[arg(long, value_name = "PATH")]
    report_csv: Option<PathBuf>,
    /// Write the report as a self-contained HTML page with charts.
    #[arg(long, value_name = "PATH")]
    report_html: Option<PathBuf>,
    /// Seconds between status lines when stdout is not a terminal (0: none).
    #[arg(long, default_value_t = 10.0, value_parser = seconds, value_name = "SECONDS")]
    status_interval: f64,
    /// No live table or status lines.
    #[arg(long)]
    no_live: bool,
}

impl WatchArgs {
    fn stream_to_stdout(&self) -> bool {
        self.json_stream.as_deref() == Some(std::path::Path::new("-"))
    }

    /// The live view, unless turned off (or stdout carries the JSON stream).
    fn live(&self, control: loadmon::server::ServerControl) -> Option<LiveView> {
        if self.no_live || self.stream_to_stdout() {
            return None;
        }
        let lines_every = (self.status_interval > 0.0).then(|| secs(self.status_interval));
        Some(LiveView::server(control, lines_every))
    }
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 1234)]
    port: u16,
    /// Run time, seconds.
    #[arg(short = 'r', long = "runtime", default_value_t = 15.0, value_parser = seconds)]
    run_time_s: f64,
    /// Chunk size, MB (MiB).
    #[arg(short = 'c', long = "chunksize", default_value_t = 10)]
    chunk_size_mb: u64,
    /// File size, MB (MiB).
    #[arg(short = 'f', long = "filesize", default_value_t = 50)]
    file_size_mb: u64,
    /// Smallest chunk size allowed, MB.
    #[arg(long = "min-chunksize", default_value_t = 10)]
    min_chunk_size_mb: u64,
    /// Directory for the data files.
    #[arg(long, default_value = "client_files")]
    out_dir: PathBuf,
    /// none | file (fsync each file) | direct (O_DIRECT).
    #[arg(long, default_value = "none")]
    sync: SyncMode,
    /// Finished files to keep: a number, or "all".
    #[arg(long, default_value = "2")]
    keep_files: KeepFiles,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    heartbeat_period: f64,
    /// Seconds between stats reports.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    stats_period: f64,
    /// Seconds to keep retrying an unreachable server.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    connect_timeout: f64,
    /// Shared secret for the server.
    #[arg(long, env = "LOADMON_TOKEN")]
    token: Option<String>,
    /// Write the client's result as JSON here.
    #[arg(long)]
    result_json: Option<PathBuf>,
    /// Directory for the session log file.
    #[arg(long, default_value = "client_logs")]
    log_dir: PathBuf,
    /// Do not write a log file.
    #[arg(long)]
    no_log_files: bool,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// A 3-second version of the schedule (small files).
    #[arg(long)]
    quick: bool,
    /// Directory for the data files (removed at the end).
    #[arg(long, default_value = "client_files")]
    out_dir: PathBuf,
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Directory for server_logs/ and client_logs/.
    #[arg(long, default_value = ".")]
    log_dir: PathBuf,
    /// Do not write log files.
    #[arg(long)]
    no_log_files: bool,
    /// Write the HTML report here (its path is printed at the end).
    #[arg(long, default_value = "loadmon_demo_report.html")]
    report_html: PathBuf,
    /// Write the CSV report here.
    #[arg(long)]
    report_csv: Option<PathBuf>,
    /// Serve the HTTP API and dashboard on HOST:PORT while the demo runs.
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<String>,
    /// No live table or status lines.
    #[arg(long)]
    no_live: bool,
}

fn seconds(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if (0.0..1e9).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{s} is not a valid number of seconds"))
    }
}

fn secs(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

fn init_tracing(cli: &Cli) {
    let level = if cli.verbose {
        "debug"
    } else if cli.quiet {
        "warn"
    } else {
        "info"
    };
    // The report is printed on stdout; its log copy (target loadmon::report) goes to the file.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},loadmon::report=off"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SuspendingStderr)
        .with_target(false)
        .init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))
}

fn report_exit(report: &Report) -> ExitCode {
    if report.clients.iter().all(|c| c.status == Status::Pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

fn run_server(a: ServerArgs) -> Result<ExitCode, Error> {
    let threads = a.threads;
    let config = ServerConfig {
        host: a.host,
        port: a.port,
        max_clients: a.max_clients,
        first_client_id: a.first_client_id,
        heartbeat_timeout: secs(a.heartbeat_timeout),
        handshake_timeout: secs(a.handshake_timeout),
        token: a.token,
        report_json: a.report_json,
        report_csv: a.watch.report_csv.clone(),
        report_html: a.watch.report_html.clone(),
        http: a.watch.http.clone(),
        http_linger: secs(a.watch.http_linger),
        log_dir: (!a.no_log_files).then_some(a.log_dir),
        ..Default::default()
    };
    config.validate()?;
    // By default one thread serves every connection: the work per message is tiny, and a
    // single thread spares the cross-thread wake-ups of a multi-threaded scheduler.
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(threads));
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))?;
    let watch = a.watch;
    let report = rt.block_on(async {
        let server = Server::bind(config).await?;
        // Always said, whatever the log level: with --port 0 this is how callers learn the port.
        eprintln!("loadmon server listening on {}", server.local_addr());
        if let Some(h) = server.control().http_addr() {
            eprintln!("loadmon dashboard on http://{h}/");
        }
        let stream = match &watch.json_stream {
            Some(path) => Some(json_stream(path, server.control().subscribe())?),
            None => None,
        };
        let control = server.control();
        let live = watch.live(control.clone());
        let report = server.run_until(shutdown_signal()).await;
        drop(live);
        if let Some(thread) = stream {
            // The stream ends with the final report; give the writer time to write it.
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while !thread.is_finished() && std::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let report = report?;
        if watch.stream_to_stdout() {
            // stdout carries the JSON lines: keep it machine-readable, and never wait for its
            // lock (a stalled reader leaves the stream's writer holding it).
            eprint!("{}", report.to_text());
        } else {
            print!("{}", report.to_text());
            let _ = std::io::stdout().flush();
        }
        // With --http-linger, the final report stays on HTTP for a while (Ctrl-C ends it).
        tokio::select! {
            _ = control.http_closed() => {}
            _ = shutdown_signal() => control.close_http(),
        }
        Ok::<_, Error>(report)
    })?;
    Ok(report_exit(&report))
}

/// Writes every event of `events` as a JSON line to `path` ("-": stdout), flushed at once, on
/// a thread of its own: a slow reader makes the stream lag (it then says how many events it
/// missed), never the server. A write error (full disk) is logged once and ends the stream.
fn json_stream(
    path: &std::path::Path,
    events: EventStream,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let mut out: Box<dyn Write + Send> = if path == std::path::Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(path)
                .map_err(|e| Error::file("create the JSON stream", path, e))?,
        )
    };
    let name = path.display().to_string();
    let events = Events::new(events)?;
    std::thread::Builder::new()
        .name("loadmon-json-stream".into())
        .spawn(move || {
            for e in events {
                let r = out
                    .write_all(e.to_json_line().as_bytes())
                    .and_then(|()| out.flush());
                if let Err(err) = r {
                    tracing::warn!("JSON stream {name}: {err}; no more events are written");
                    return;
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the JSON stream thread: {e}")))
}

fn run_client(a: ClientArgs) -> Result<ExitCode, Error> {
    let config = ClientConfig {
        host: a.host,
        port: a.port,
        heartbeat_period: secs(a.heartbeat_period),
        stats_period: secs(a.stats_period),
        connect_timeout: secs(a.connect_timeout),
        token: a.token,
        log_dir: (!a.no_log_files).then_some(a.log_dir),
        ..Default::default()
    };
    let client = Client::new(config)?;
    let rt = runtime()?;
    // A file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, which kills the process by default.
    // With a handler installed, write() fails with EFBIG instead, the client reports the
    // error to the server (FAILED) and exits 1 with a message.
    #[cfg(unix)]
    let _sigxfsz = {
        let _enter = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).ok()
    };
    let writer = FileWriter::new(FileWriterConfig {
        run_time_s: a.run_time_s,
        chunk_size_mb: a.chunk_size_mb,
        file_size_mb: a.file_size_mb,
        min_chunk_size_mb: a.min_chunk_size_mb,
        out_dir: a.out_dir,
        sync: a.sync,
        keep_files: a.keep_files,
    })?;
    let cancel = client.cancel_token();
    rt.spawn(async move {
        shutdown_signal().await;
        cancel.cancel();
    });
    let bar = LiveView::client(client.progress());
    let result = rt.block_on(client.run(writer));
    drop(bar);
    let result = result?;
    println!(
        "client {}: {} file(s), {} bytes in {:.2} s, {:.2} MB/s, chunk latency p50 {} ms, p99 {} ms",
        result.client_id,
        result.files_written,
        result.bytes_written,
        result.run_time_s,
        result.throughput_mb_s,
        fmt_ms(result.chunk_p50_ms),
        fmt_ms(result.chunk_p99_ms),
    );
    if let Some(path) = &a.result_json {
        loadmon::report::write_atomic(path, result.to_json().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_ms(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn run_demo(a: DemoArgs) -> Result<ExitCode, Error> {
    let report = loadmon::demo::run(&loadmon::demo::DemoOptions {
        quick: a.quick,
        port: 0,
        out_dir: a.out_dir,
        report_json: a.report_json,
        log_dir: (!a.no_log_files).then_some(a.log_dir),
        report_csv: a.report_csv,
        report_html: Some(a.report_html.clone()),
        http: a.http,
        live: !a.no_live,
        // Each client its own process, as the seed's demo ran them.
        client_exe: std::env::current_exe().ok(),
        schedule: None,
    })?;
    print!("{}", report.to_text());
    println!("HTML report: {}", a.report_html.display());
    Ok(report_exit(&report))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let result = match cli.command {
        Command::Server(a) => run_server(a),
        Command::Client(a) => run_client(a),
        Command::Demo(a) => run_demo(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadmon: {e}");
            if e.is_config() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
