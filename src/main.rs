//! The `loadmon` command: `loadmon server`, `loadmon client`, `loadmon worker`, `loadmon demo`.
//!
//! Exit codes: 0 success (for `server` and `demo`: every client PASS, and at least one client
//! ran); 1 runtime error; 2 configuration or usage error; 3 the report was written but not every
//! client PASSed (including clients ABORTED because the server was stopped by SIGINT, SIGTERM
//! or SIGHUP, and a run stopped before any client got an id).
//!
//! Nothing here uses `print!`/`eprint!`: those panic when stdout or stderr is a closed pipe
//! (`loadmon server | head -1`). Console text goes through [`say`], which stops writing to a
//! closed stream quietly while the run goes on. (SIGPIPE stays ignored, as Rust sets it up.)

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use loadmon::blocking::{EventPoll, Events, ServerHandle};
use loadmon::client::{Client, ClientConfig};
use loadmon::console::{LiveView, SuspendingStderr};
use loadmon::events::{Event, EventKind, EventStream};
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::out_file::OutFile;
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::text::escape_control;
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::{Error, Report, Status};

/// Most clients a server may take at once (`--max-clients`).
const MAX_CLIENTS: u64 = 1_000_000;

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
    /// Run the server: hand out ids, watch clients, write the report when all are gone
    /// (fleet mode with --expect-clients: see the end of `loadmon server --help`).
    Server(ServerArgs),
    /// Run one file-writing test client.
    Client(ClientArgs),
    /// Run a fleet worker: take the plan from a fleet server (`loadmon server
    /// --expect-clients N`), wait for the fleet's start, write files as planned; exit 0 on PASS.
    /// With --stay, come back for the next run until SIGINT/SIGTERM/SIGHUP.
    Worker(WorkerArgs),
    /// Run the seed's demo: a server, and three clients each in its own `loadmon client` process.
    Demo(DemoArgs),
}

/// The end of `loadmon server --help`: fleet mode in one example.
const FLEET_HELP: &str = "\
Fleet mode: with --expect-clients N the server hands every `loadmon worker` the same plan
(-r/--runtime, -c/--chunksize, -f/--filesize, --min-chunksize, --sync, --keep-files, as
`loadmon client` takes them) and starts no client until N are ready, then all of them at
once. A client that arrives after the start is refused (\"run already started\"; a worker
with --stay comes back for the next run); a ready client that leaves before the start does
not count. --start-timeout S starts whoever is ready S seconds after the server started.
Seed clients and `loadmon client` join the start with their own parameters. The report's
total says how many clients were expected and started, and adds all clients' throughput
over time (JSON total.series, HTML and dashboard chart, one more text line).

Example, a server and three workers on one host (for other hosts: --host 0.0.0.0 and a
--token-file on the server, --host and the same token (--token-file) on the workers):

  loadmon server --port 7000 --expect-clients 3 -r 5 -c 10 -f 50 --report-json fleet.json &
  for i in 1 2 3; do loadmon worker --port 7000 --out-dir /tmp/loadmon-w$i & done; wait";

#[derive(Args, Debug)]
#[command(after_help = FLEET_HELP)]
struct ServerArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value_t = ServerConfig::default().host)]
    host: String,
    /// Port to bind (0 = any free port; the port is logged).
    #[arg(long, default_value_t = ServerConfig::default().port)]
    port: u16,
    /// Most clients at once (1 to 1000000; default 5, or --expect-clients if more); extra
    /// ones are refused.
    #[arg(long,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CLIENTS))]
    max_clients: Option<usize>,
    /// The first client id.
    #[arg(long, default_value_t = ServerConfig::default().first_client_id)]
    first_client_id: u32,
    /// Seconds without a heartbeat before a client is TIMED OUT.
    #[arg(long, default_value_t = ServerConfig::default().heartbeat_timeout.as_secs_f64(), value_parser = seconds)]
    heartbeat_timeout: f64,
    /// Seconds a new connection has to send get_cid.
    #[arg(long, default_value_t = ServerConfig::default().handshake_timeout.as_secs_f64(), value_parser = seconds)]
    handshake_timeout: f64,
    /// Most connections still in the handshake (no id yet) at once; more are refused.
    #[arg(long, default_value_t = ServerConfig::default().max_pending)]
    max_pending: usize,
    /// Most client ids one run hands out; then get_cid is refused.
    #[arg(long, default_value_t = ServerConfig::default().max_ids)]
    max_ids: u64,
    /// Seconds a peer may leave our replies unread before it is closed (ABORTED, "peer not
    /// reading").
    #[arg(long, default_value_t = ServerConfig::default().write_timeout.as_secs_f64(), value_parser = seconds)]
    write_timeout: f64,
    #[command(flatten)]
    token: ServerTokenArgs,
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
    #[arg(long, default_value_t = 1, value_parser = threads)]
    threads: usize,
    #[command(flatten)]
    watch: WatchArgs,
    #[command(flatten)]
    fleet: FleetArgs,
    /// The plan of a fleet (with --expect-clients): what every worker runs.
    #[command(
        flatten,
        next_help_heading = "Fleet plan (with --expect-clients; as `loadmon client` takes them)"
    )]
    plan: WriterArgs,
}

/// Fleet mode: the start barrier.
#[derive(Args, Debug)]
#[command(next_help_heading = "Fleet mode")]
struct FleetArgs {
    /// Fleet mode: send each worker the plan below and start no client until N are ready,
    /// then all at once (at most --max-clients; 1 to 1000000).
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CLIENTS))]
    expect_clients: Option<usize>,
    /// Start whoever is ready this many seconds after the server started (if nobody is,
    /// give up: exit 3). The report says how many were expected and how many started.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, requires = "expect_clients")]
    start_timeout: Option<f64>,
}

/// The file writer's test: `loadmon client`'s own, and a fleet server's plan.
#[derive(Args, Debug)]
struct WriterArgs {
    /// Run time, seconds.
    #[arg(short = 'r', long = "runtime", visible_alias = "run-time", default_value_t = FileWriterConfig::default().run_time_s, value_parser = seconds)]
    run_time_s: f64,
    /// Chunk size, MB (MiB).
    #[arg(short = 'c', long = "chunksize", default_value_t = FileWriterConfig::default().chunk_size_mb)]
    chunk_size_mb: u64,
    /// File size, MB (MiB).
    #[arg(short = 'f', long = "filesize", default_value_t = FileWriterConfig::default().file_size_mb)]
    file_size_mb: u64,
    /// Smallest chunk size allowed, MB.
    #[arg(long = "min-chunksize", default_value_t = FileWriterConfig::default().min_chunk_size_mb)]
    min_chunk_size_mb: u64,
    /// none | file (fsync each file) | direct (O_DIRECT).
    #[arg(long, default_value_t = FileWriterConfig::default().sync)]
    sync: SyncMode,
    /// Finished files to keep: a number, or "all".
    #[arg(long, default_value_t = FileWriterConfig::default().keep_files)]
    keep_files: KeepFiles,
}

impl WriterArgs {
    /// Argument ids, as clap knows them (to tell given flags from defaults).
    const IDS: [&'static str; 6] = [
        "run_time_s",
        "chunk_size_mb",
        "file_size_mb",
        "min_chunk_size_mb",
        "sync",
        "keep_files",
    ];

    fn plan(&self) -> Plan {
        Plan {
            run_time_s: self.run_time_s,
            chunk_size_mb: self.chunk_size_mb,
            file_size_mb: self.file_size_mb,
            min_chunk_size_mb: self.min_chunk_size_mb,
            sync: self.sync,
            keep_files: self.keep_files,
        }
    }
}

/// How to reach the server, and the session log: shared by `client` and `worker`.
#[derive(Args, Debug)]
struct ConnectArgs {
    /// Server host.
    #[arg(long, default_value_t = ClientConfig::default().host)]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = ClientConfig::default().port)]
    port: u16,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = ClientConfig::default().heartbeat_period.as_secs_f64(), value_parser = seconds)]
    heartbeat_period: f64,
    /// Seconds between stats reports.
    #[arg(long, default_value_t = ClientConfig::default().stats_period.as_secs_f64(), value_parser = seconds)]
    stats_period: f64,
    /// Seconds to keep retrying an unreachable server.
    #[arg(long, default_value_t = ClientConfig::default().connect_timeout.as_secs_f64(), value_parser = seconds)]
    connect_timeout: f64,
    #[command(flatten)]
    token: ClientTokenArgs,
    /// Directory for the session log file.
    #[arg(long, default_value = "client_logs")]
    log_dir: PathBuf,
    /// Do not write a log file.
    #[arg(long)]
    no_log_files: bool,
}

impl ConnectArgs {
    fn client_config(self) -> Result<ClientConfig, Error> {
        Ok(ClientConfig {
            host: self.host,
            port: self.port,
            heartbeat_period: secs(self.heartbeat_period),
            stats_period: secs(self.stats_period),
            connect_timeout: secs(self.connect_timeout),
            token: token(self.token.token, self.token.token_file.as_deref())?,
            allow_clear_token: self.token.allow_clear_token,
            log_dir: (!self.no_log_files).then_some(self.log_dir),
            ..Default::default()
        })
    }
}

/// The server's token: never shown by `--help` (its value may come from the environment).
#[derive(Args, Debug)]
struct ServerTokenArgs {
    /// Shared secret clients must prove they know (it never crosses the wire; the server
    /// proves it knows it too). On the command line it is visible to every user in the process
    /// list: prefer --token-file or LOADMON_TOKEN.
    #[arg(long, env = "LOADMON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (one line; a trailing newline is dropped). It must not be
    /// readable by group or others (chmod 600), as ssh requires of a private key.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Also take the token in clear from a loadmon that predates the challenge-response
    /// (anyone who can read the traffic then learns it). Off by default: such a client is
    /// refused and told why.
    #[arg(long)]
    allow_clear_token: bool,
}

/// A client's or worker's token: never shown by `--help` (its value may come from the
/// environment).
#[derive(Args, Debug)]
struct ClientTokenArgs {
    /// Shared secret for the server: the client proves it knows it, and goes on only with a
    /// server that proves it knows it too (it never crosses the wire). On the command line it
    /// is visible to every user in the process list: prefer --token-file or LOADMON_TOKEN.
    #[arg(long, env = "LOADMON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (one line; a trailing newline is dropped). It must not be
    /// readable by group or others (chmod 600), as ssh requires of a private key.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Send the token in clear to a server that offers no challenge-response (a loadmon from
    /// before it); that server proves nothing, and anyone who can read the traffic learns
    /// the token. Off by default: such a server is an error.
    #[arg(long)]
    allow_clear_token: bool,
}

/// The token of `--token` (or LOADMON_TOKEN) or of `--token-file`; both is an error (which
/// one was meant?).
fn token(given: Option<String>, file: Option<&Path>) -> Result<Option<String>, Error> {
    match (given, file) {
        (Some(_), Some(_)) => {
            let other = if std::env::var_os("LOADMON_TOKEN").is_some() {
                "LOADMON_TOKEN (set in the environment)"
            } else {
                "--token"
            };
            Err(Error::Config(format!(
                "--token-file and {other} both give a token: use one"
            )))
        }
        (None, Some(path)) => loadmon::config::read_token_file(path).map(Some),
        (given, None) => Ok(given),
    }
}

/// Where the data files and the result go: shared by `client` and `worker`.
#[derive(Args, Debug)]
struct FilesArgs {
    /// Directory for the data files.
    #[arg(long, default_value_os_t = FileWriterConfig::default().out_dir)]
    out_dir: PathBuf,
    /// Write the result as JSON here (a worker: its last run that passed).
    #[arg(long)]
    result_json: Option<PathBuf>,
}

/// Live output and extra reports, shared by `server` and `demo`.
#[derive(Args, Debug)]
struct WatchArgs {
    /// Serve the HTTP JSON API, Prometheus /metrics and the dashboard on HOST:PORT
    /// (e.g. 127.0.0.1:8080; port 0 picks one). Off by default.
    #[arg(long, value_name = "HOST:PORT", value_parser = http_addr)]
    http: Option<String>,
    /// Keep the HTTP listener up this many seconds after the run, serving the final report.
    #[arg(long, default_value_t = ServerConfig::default().http_linger.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    http_linger: f64,
    /// A host name the HTTP listener answers to (repeatable; "*" for any). IP addresses and
    /// localhost always work; a request for any other name gets 421 (DNS rebinding).
    #[arg(long = "http-allow-host", value_name = "NAME")]
    http_allow_hosts: Vec<String>,
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
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    writer: WriterArgs,
    #[command(flatten)]
    files: FilesArgs,
}

#[derive(Args, Debug)]
struct WorkerArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    files: FilesArgs,
    /// After each run, connect again for the next one until SIGINT/SIGTERM/SIGHUP (fio --server
    /// style), retrying with capped exponential backoff while the server is away.
    #[arg(long)]
    stay: bool,
    /// With --stay, the longest pause between two attempts to reach the server, seconds.
    #[arg(long, default_value_t = WorkerConfig::default().retry_max.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    retry_max: f64,
    /// Refuse a plan whose chunks are larger than this, MB (a chunk is held in memory;
    /// at most 4096). The server lists the worker FAILED with the reason.
    #[arg(long, default_value_t = WorkerConfig::default().max_chunk_mb, value_name = "MB")]
    max_chunk_mb: u64,
    /// Refuse a plan that runs longer than this, seconds.
    #[arg(long, default_value_t = WorkerConfig::default().max_run_time.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    max_run_time: f64,
    /// Refuse a plan that can occupy more disk space than this in --out-dir at once: its
    /// kept files and the one being written (with keep_files=all, what the run time fills at
    /// the measured rate). MB, or with a unit M, G, T, P (MiB, GiB, …), e.g. 500 or 20G. A
    /// plan must also fit in the space free there.
    #[arg(long, default_value_t = WorkerConfig::default().max_disk_mb, value_parser = disk_size, value_name = "SIZE")]
    max_disk: u64,
}

/// `--max-disk`: a size in MB or with a unit (the core's [`loadmon::config::size_mb`]).
fn disk_size(s: &str) -> Result<u64, String> {
    loadmon::config::size_mb("max_disk", s).map_err(|e| match e {
        Error::Config(m) => m,
        other => other.to_string(),
    })
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
    #[arg(long, value_name = "HOST:PORT", value_parser = http_addr)]
    http: Option<String>,
    /// No live table or status lines.
    #[arg(long)]
    no_live: bool,
}

/// A duration option: a number of seconds within the core's bounds (0 to 10^9; NaN,
/// infinities and negative values are refused, clap exits 2). Whether 0 is allowed is the
/// core's call, made when the settings are validated.
/// `--threads`, by the core's rule ([`loadmon::config::check_server_threads`]).
fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    loadmon::config::check_server_threads(n)
        .map(|()| n)
        .map_err(|e| match e {
            Error::Config(m) => m,
            other => other.to_string(),
        })
}

fn seconds(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    loadmon::config::seconds("the value", x, loadmon::config::Zero::Allowed)
        .map(|d| d.as_secs_f64())
        .map_err(|e| match e {
            Error::Config(m) => m,
            other => other.to_string(),
        })
}

/// `--http`: a HOST:PORT the listener can bind (checked, and resolved, before anything runs;
/// the text is kept as given for the server).
fn http_addr(s: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let expected = "expected HOST:PORT, e.g. 127.0.0.1:8080 (port 0 picks one)";
    match s.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(_)) => Ok(s.to_string()),
        Ok(None) => Err(format!("{s:?} names no address; {expected}")),
        Err(e) => Err(format!("{s:?} is not a usable address ({e}); {expected}")),
    }
}

/// Streams the console stops writing to once they are closed.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Which console stream [`say`] writes to.
#[derive(Debug, Clone, Copy)]
enum Console {
    Out,
    Err,
}

/// Writes `text` to stdout or stderr and flushes, never panicking: a closed pipe (EPIPE) or
/// any other write error ends output to that stream, quietly (a failed stdout is mentioned
/// once on stderr unless it was a closed pipe); the run itself goes on.
fn say(to: Console, text: &str) {
    let gone = match to {
        Console::Out => &STDOUT_GONE,
        Console::Err => &STDERR_GONE,
    };
    if gone.load(Ordering::Relaxed) {
        return;
    }
    let result = match to {
        Console::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Console::Err => {
            let mut err = std::io::stderr().lock();
            err.write_all(text.as_bytes()).and_then(|()| err.flush())
        }
    };
    if let Err(e) = result {
        let first = !gone.swap(true, Ordering::Relaxed);
        if first && matches!(to, Console::Out) && e.kind() != std::io::ErrorKind::BrokenPipe {
            say(
                Console::Err,
                &format!("loadmon: stdout: {e}; nothing more is written there\n"),
            );
        }
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
        // Colours for a terminal only: a log piped to a file or a program gets plain text.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        // Its own report of a failed write would be an eprintln! (a panic on a closed stderr).
        .log_internal_errors(false)
        .init();
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP, caught from the moment this is made: a signal that
/// comes before the first [`recv`](ShutdownSignals::recv) (right after "listening on", say) is
/// kept for it instead of killing the process without a report.
///
/// SIGHUP (the terminal or the ssh session closed) stops a run as SIGTERM does: the server
/// writes its report, a client or worker ends as stopped. A process started with SIGHUP
/// ignored (`nohup`, or `trap '' HUP` in a script: it was detached on purpose) keeps ignoring
/// it and runs on.
struct ShutdownSignals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Installs the handlers; call inside the runtime.
    fn new() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // Looked at before any handler replaces the disposition the process started with.
            let hup_ignored = *HUP_IGNORED_AT_START.get_or_init(hup_ignored);
            ShutdownSignals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
                hup: if hup_ignored {
                    None
                } else {
                    signal(SignalKind::hangup()).ok()
                },
            }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    /// Completes on the next Ctrl-C, SIGTERM or SIGHUP, with the signal's name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                let got = match s {
                    Some(s) => s.recv().await,
                    None => None,
                };
                if got.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => "SIGINT",
                _ = next(&mut self.term) => "SIGTERM",
                _ = next(&mut self.hup) => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Whether SIGHUP was ignored when the process started (see [`ShutdownSignals`]).
#[cfg(unix)]
static HUP_IGNORED_AT_START: OnceLock<bool> = OnceLock::new();

/// Whether this process ignores SIGHUP, from the kernel's view of it (`SigIgn` in
/// /proc/self/status: bit 0 is SIGHUP). Where there is no /proc, `false`: SIGHUP stops the run.
#[cfg(unix)]
fn hup_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGHUP - 1)) != 0)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))
}

/// 0 if every client PASSed (and there was at least one, and in fleet mode every expected
/// client started), else 3.
fn report_exit(report: &Report) -> ExitCode {
    let t = &report.total;
    let fleet_short = t
        .expected_clients
        .is_some_and(|n| t.started_clients != Some(n));
    // No client at all (a run stopped by a signal before any got an id) is no success.
    if !fleet_short
        && !report.clients.is_empty()
        && report.clients.iter().all(|c| c.status == Status::Pass)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// The fleet mode of `a`; the plan flags are refused without --expect-clients (they would
/// do nothing).
fn fleet_config(a: &ServerArgs, given: &ArgMatches) -> Result<Option<FleetConfig>, Error> {
    let set: Vec<&str> = WriterArgs::IDS
        .into_iter()
        .filter(|id| given.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    FleetConfig::from_options(
        a.fleet.expect_clients,
        a.fleet.start_timeout.map(secs),
        Some(a.plan.plan()),
        &set,
        "--expect-clients",
    )
}

fn run_server(a: ServerArgs, given: &ArgMatches) -> Result<ExitCode, Error> {
    let fleet = fleet_config(&a, given)?;
    let config = ServerConfig {
        host: a.host,
        port: a.port,
        max_clients: a
            .max_clients
            .unwrap_or_else(|| ServerConfig::default_max_clients(fleet.as_ref())),
        fleet,
        first_client_id: a.first_client_id,
        heartbeat_timeout: secs(a.heartbeat_timeout),
        handshake_timeout: secs(a.handshake_timeout),
        max_pending: a.max_pending,
        max_ids: a.max_ids,
        write_timeout: secs(a.write_timeout),
        token: token(a.token.token, a.token.token_file.as_deref())?,
        allow_clear_token: a.token.allow_clear_token,
        report_json: a.report_json,
        report_csv: a.watch.report_csv.clone(),
        report_html: a.watch.report_html.clone(),
        http: a.watch.http.clone(),
        http_linger: secs(a.watch.http_linger),
        http_allow_hosts: a.watch.http_allow_hosts.clone(),
        log_dir: (!a.no_log_files).then_some(a.log_dir),
        ..Default::default()
    };
    config.validate()?;
    // Opened before the server binds: a path that cannot be written fails before anything
    // runs, and a FIFO without a reader blocks nothing.
    let stream_target = match &a.watch.json_stream {
        Some(path) => Some((path.clone(), StreamTarget::open(path)?)),
        None => None,
    };
    let watch = a.watch;
    // Caught from here on: a signal right after "listening on" still ends with a report.
    let signals = Signals::install()?;
    // One thread serves every connection by default (see ServerHandle::start_on). The report
    // paths are checked here, before anything listens.
    let server = Arc::new(ServerHandle::start_on(config, a.threads)?);
    // Always said, whatever the log level: with --port 0 this is how callers learn the port.
    say(
        Console::Err,
        &format!("loadmon server listening on {}\n", server.local_addr()),
    );
    if let Some(h) = server.http_addr() {
        say(Console::Err, &format!("loadmon dashboard on http://{h}/\n"));
    }
    let stream = match stream_target {
        Some((path, target)) => Some(json_stream(path, target, server.control().subscribe())?),
        None => None,
    };
    let live = watch.live(server.control());
    let stopped_by = signals.watch(server.clone())?;
    let outcome = server.wait(None);
    drop(live);
    if let Some(thread) = stream {
        // The stream ends with the final report; give the writer time to write it.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The final report, whatever happened to the report files.
    let report = server.report();
    let text = report_text(&report);
    if watch.stream_to_stdout() {
        // stdout carries the JSON lines: keep it machine-readable, and never wait for its
        // lock (a stalled reader leaves the stream's writer holding it).
        say(Console::Err, &text);
    } else {
        say(Console::Out, &text);
    }
    if let Some(signal) = stopped_by.get() {
        say(
            Console::Err,
            &format!("{}\n", stopped_line(signal, &report)),
        );
    }
    // With --http-linger, the final report stays on HTTP for a while (Ctrl-C ends it).
    server.wait_http_closed(None);
    outcome?;
    Ok(report_exit(&report))
}

/// Ctrl-C, SIGTERM and SIGHUP for the server, on a thread of their own: installed before the
/// server starts, then [`Signals::watch`] stops the run on the first one (or, once the run is
/// over, ends the HTTP linger).
struct Signals {
    rt: tokio::runtime::Runtime,
    signals: ShutdownSignals,
}

impl Signals {
    fn install() -> Result<Signals, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))?;
        let signals = {
            let _in_runtime = rt.enter();
            ShutdownSignals::new()
        };
        Ok(Signals { rt, signals })
    }

    /// Watches for the life of the process; the returned cell names the signal that stopped
    /// the run, if one did.
    fn watch(self, server: Arc<ServerHandle>) -> Result<Arc<OnceLock<&'static str>>, Error> {
        let stopped_by = Arc::new(OnceLock::new());
        let cell = stopped_by.clone();
        let Signals { rt, mut signals } = self;
        std::thread::Builder::new()
            .name("loadmon-signals".into())
            .spawn(move || {
                rt.block_on(async {
                    loop {
                        let signal = signals.recv().await;
                        if server.control().is_finished() {
                            server.close_http();
                        } else {
                            let _ = cell.set(signal);
                            server.control().stop();
                        }
                    }
                })
            })
            .map_err(|e| Error::Internal(format!("cannot start the signal thread: {e}")))?;
        Ok(stopped_by)
    }
}

/// The text report for the console, each line with its control characters escaped (a
/// client's reason comes from the peer: `error:<reason>`).
fn report_text(report: &Report) -> String {
    let mut s = String::new();
    for line in report.to_text().lines() {
        s.push_str(&escape_control(line));
        s.push('\n');
    }
    s
}

/// What to say after a run stopped by `signal`: the text report says "All test clients
/// completed!" whatever happened.
fn stopped_line(signal: &str, report: &Report) -> String {
    let total = report.clients.len();
    let not_passed = report
        .clients
        .iter()
        .filter(|c| c.status != Status::Pass)
        .count();
    if total == 0 {
        format!(
            "loadmon: stopped by {signal} before any client got an id: no client ran \
             (exit code 3)"
        )
    } else if not_passed > 0 {
        format!(
            "loadmon: stopped by {signal}: {not_passed} of {total} client(s) had not finished \
             or did not PASS (exit code 3)"
        )
    } else {
        format!("loadmon: stopped by {signal} after all {total} client(s) had PASSed")
    }
}

/// Where `--json-stream` writes, as first opened (without blocking).
enum StreamTarget {
    /// `-`.
    Stdout,
    /// A regular file, created (truncated).
    File(std::fs::File),
    /// Anything else (a FIFO with a reader, a terminal), opened without blocking; the
    /// writer's thread makes its writes ordinary (blocking) ones.
    Special(std::fs::File),
    /// A FIFO that no reader has opened yet.
    NoReader(PendingFifo),
}

impl StreamTarget {
    /// Opens `path` without ever blocking (a FIFO without a reader is [`StreamTarget::NoReader`]).
    ///
    /// # Errors
    /// [`Error::File`] if `path` cannot be opened for writing.
    fn open(path: &Path) -> Result<StreamTarget, Error> {
        if path == Path::new("-") {
            return Ok(StreamTarget::Stdout);
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Opening a FIFO for writing blocks until a reader opens it; with O_NONBLOCK it
            // fails with ENXIO instead.
            options.custom_flags(libc::O_NONBLOCK);
        }
        let file = match options.open(path) {
            Ok(f) => f,
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                return PendingFifo::find(path)
                    .map(StreamTarget::NoReader)
                    .map_err(|e| Error::file("open the JSON stream", path, e))
            }
            Err(e) => return Err(Error::file("create the JSON stream", path, e)),
        };
        match file.metadata() {
            // O_NONBLOCK means nothing for a regular file's writes.
            Ok(m) if m.is_file() => Ok(StreamTarget::File(file)),
            _ => Ok(StreamTarget::Special(file)),
        }
    }

    /// A writer for the stream, `None` while a FIFO has no reader. Called on the writer's
    /// thread only.
    fn writer(self) -> std::io::Result<Option<Box<dyn Write + Send>>> {
        Ok(match self {
            StreamTarget::Stdout => Some(Box::new(std::io::stdout())),
            StreamTarget::File(f) => Some(Box::new(f)),
            StreamTarget::Special(f) => {
                blocking_writes(&f)?;
                Some(Box::new(f))
            }
            StreamTarget::NoReader(_) => None,
        })
    }
}

/// Makes the writes of a file opened with O_NONBLOCK ordinary ones (a FIFO whose reader is
/// slow then makes the writer wait, as a file does).
fn blocking_writes(f: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(f)?;
    rustix::fs::fcntl_setfl(f, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// A `--json-stream` FIFO that no reader had opened at the start: its directory (opened then)
/// and name, and which file it was. It is tried again there, never through a link put at the
/// name since, and only while it is the same FIFO.
struct PendingFifo {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
    found: rustix::fs::Stat,
}

impl PendingFifo {
    fn find(path: &Path) -> std::io::Result<PendingFifo> {
        use rustix::fs::{AtFlags, Mode, OFlags};
        let real = std::fs::canonicalize(path)?;
        let name = real
            .file_name()
            .ok_or_else(|| std::io::Error::other("not a file path"))?
            .to_os_string();
        let dir = rustix::fs::open(
            real.parent().unwrap_or(Path::new("/")),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let found = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(PendingFifo { dir, name, found })
    }

    /// The FIFO, for ordinary writes, once a reader has opened it; `None` until then.
    fn open(&self) -> std::io::Result<Option<std::fs::File>> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.dir, &self.name, flags, Mode::empty()) {
            Err(rustix::io::Errno::NXIO) => Ok(None),
            Err(e) => Err(e.into()),
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd)?;
                if (st.st_dev, st.st_ino) != (self.found.st_dev, self.found.st_ino) {
                    return Err(std::io::Error::other(
                        "the FIFO was replaced during the run (the new file is not written)",
                    ));
                }
                blocking_writes(&fd)?;
                Ok(Some(std::fs::File::from(fd)))
            }
        }
    }
}

/// Writes every event of `events` as a JSON line to `target` (`path` "-": stdout), flushed at
/// once, on a thread of its own: a slow reader makes the stream lag (it then says how many
/// events it missed), never the server. A FIFO that no reader has opened yet is tried again
/// every 200 ms; until then events are dropped (a warning says so, and the first line the
/// reader gets is a `lagged` event with their number). A write error (full disk, reader gone)
/// is logged once and ends the stream.
fn json_stream(
    path: PathBuf,
    target: StreamTarget,
    events: EventStream,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let name = escape_control(&path.display().to_string()).into_owned();
    let mut events = Events::new(events)?;
    if matches!(target, StreamTarget::NoReader(_)) {
        tracing::warn!(
            "JSON stream {name}: no reader has opened this FIFO yet; events are dropped until one does"
        );
    }
    std::thread::Builder::new()
        .name("loadmon-json-stream".into())
        .spawn(move || {
            let (mut out, fifo) = match target {
                StreamTarget::NoReader(fifo) => (None, Some(fifo)),
                target => match target.writer() {
                    Ok(w) => (w, None),
                    Err(err) => {
                        tracing::warn!("JSON stream {name}: {err}; no events are written");
                        return;
                    }
                },
            };
            let mut dropped: u64 = 0;
            loop {
                // While waiting for a reader, wake up now and then to try again.
                let wait = out.is_none().then(|| Duration::from_millis(200));
                let event = match events.next_timeout(wait) {
                    EventPoll::Event(e) => Some(e),
                    EventPoll::Timeout => None,
                    EventPoll::Ended => break,
                };
                if let (None, Some(fifo)) = (&out, &fifo) {
                    match fifo.open() {
                        Ok(Some(f)) => {
                            let mut w: Box<dyn Write + Send> = Box::new(f);
                            tracing::info!("JSON stream {name}: a reader opened it");
                            if dropped > 0 {
                                let lagged = Event {
                                    time: chrono::Local::now().to_rfc3339(),
                                    elapsed_s: event.as_ref().map_or(0.0, |e| e.elapsed_s),
                                    kind: EventKind::Lagged { missed: dropped },
                                };
                                if let Err(err) = write_line(&mut w, &lagged) {
                                    tracing::warn!(
                                        "JSON stream {name}: {err}; no more events are written"
                                    );
                                    return;
                                }
                                dropped = 0;
                            }
                            out = Some(w);
                        }
                        Ok(None) => {}
                        Err(err) => {
                            let err = Error::file("open the JSON stream", &path, err);
                            tracing::warn!("JSON stream {name}: {err}; no more events are written");
                            return;
                        }
                    }
                }
                let Some(event) = event else { continue };
                match out.as_mut() {
                    Some(w) => {
                        if let Err(err) = write_line(w, &event) {
                            tracing::warn!("JSON stream {name}: {err}; no more events are written");
                            return;
                        }
                    }
                    None => dropped += 1,
                }
            }
            if out.is_none() {
                tracing::warn!(
                    "JSON stream {name}: no reader ever opened this FIFO; {dropped} event(s), \
                     the final report included, were not written"
                );
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the JSON stream thread: {e}")))
}

fn write_line(out: &mut Box<dyn Write + Send>, event: &Event) -> std::io::Result<()> {
    out.write_all(event.to_json_line().as_bytes())
        .and_then(|()| out.flush())
}

fn run_client(a: ClientArgs) -> Result<ExitCode, Error> {
    let client = Client::new(a.connect.client_config()?)?;
    let rt = runtime()?;
    // A file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, which kills the process by default.
    // With a handler installed, write() fails with EFBIG instead, the client reports the
    // error to the server (FAILED) and exits 1 with a message.
    #[cfg(unix)]
    let _sigxfsz = {
        let _enter = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).ok()
    };
    let writer_config = a.writer.plan().writer_config(a.files.out_dir);
    writer_config.validate()?;
    check_out_dir(&writer_config.out_dir)?;
    let result_file = result_file(a.files.result_json.as_deref())?;
    let out_dir = writer_config.out_dir.clone();
    let writer = FileWriter::new(writer_config)?;
    let cancel = client.cancel_token();
    let mut signals = {
        let _enter = rt.enter();
        ShutdownSignals::new()
    };
    rt.spawn(async move {
        signals.recv().await;
        cancel.cancel();
    });
    let bar = LiveView::client(client.progress());
    let result = rt.block_on(client.run(writer));
    drop(bar);
    #[cfg(unix)]
    drop(_sigxfsz);
    shut_down_runtime(rt, &out_dir);
    let result = result?;
    say(Console::Out, &format!(
        "client {}: {} file(s), {} bytes in {:.2} s, {:.2} MB/s, chunk latency p50 {} ms, p99 {} ms\n",
        result.client_id,
        result.files_written,
        result.bytes_written,
        result.run_time_s,
        result.throughput_mb_s,
        fmt_ms(result.chunk_p50_ms),
        fmt_ms(result.chunk_p99_ms),
    ));
    if let Some(file) = &result_file {
        file.write(result.to_json().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a stopped client or worker waits for its file I/O (a write already in the kernel)
/// to finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Shuts a client's or worker's runtime down. File I/O left running (a probe or a chunk write
/// stuck in a hung file system) gets a bounded time to finish: dropping the runtime would wait
/// for it for ever, and a stopped process must exit.
fn shut_down_runtime(rt: tokio::runtime::Runtime, out_dir: &Path) {
    let t = std::time::Instant::now();
    rt.shutdown_timeout(STOP_GRACE);
    if t.elapsed() >= STOP_GRACE {
        say(
            Console::Err,
            &format!(
                "loadmon: file I/O did not finish within {} s of the stop; a file in {} \
                 (.loadmon_probe_* or client_*) may be left behind\n",
                STOP_GRACE.as_secs(),
                escape_control(&out_dir.display().to_string())
            ),
        );
    }
}

fn run_worker(a: WorkerArgs) -> Result<ExitCode, Error> {
    check_out_dir(&a.files.out_dir)?;
    let result_file = result_file(a.files.result_json.as_deref())?;
    let out_dir = a.files.out_dir.clone();
    let worker = Worker::new(WorkerConfig {
        client: a.connect.client_config()?,
        out_dir: a.files.out_dir,
        stay: a.stay,
        retry_max: secs(a.retry_max),
        max_chunk_mb: a.max_chunk_mb,
        max_run_time: secs(a.max_run_time),
        max_disk_mb: a.max_disk,
    })?;
    let rt = runtime()?;
    // As for the client: a file-size limit is an error reported to the server, not a kill.
    #[cfg(unix)]
    let _sigxfsz = {
        let _enter = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).ok()
    };
    let cancel = worker.cancel_token();
    let mut signals = {
        let _enter = rt.enter();
        ShutdownSignals::new()
    };
    rt.spawn(async move {
        let signal = signals.recv().await;
        tracing::info!("{signal}: stopping the worker");
        cancel.cancel();
    });
    let outcome = rt.block_on(worker.run());
    shut_down_runtime(rt, &out_dir);
    let summary = match outcome {
        Ok(s) => s,
        // The worker's own settings were checked above (exit 2 for those); a run that fails,
        // a plan that cannot run here included, is a runtime error (exit 1); an interrupted
        // run is 130. The message may quote the server: escaped.
        Err(e) => {
            say(
                Console::Err,
                &format!("loadmon: {}\n", escape_control(&e.to_string())),
            );
            return Ok(match e.kind().exit_code() {
                130 => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            });
        }
    };
    let last = summary.last.as_ref().map_or_else(String::new, |run| {
        let r = &run.result;
        format!(
            "; last: client {}, plan {}: {} file(s), {} bytes in {:.2} s, {:.2} MB/s",
            r.client_id,
            run.plan,
            r.files_written,
            r.bytes_written,
            r.run_time_s,
            r.throughput_mb_s
        )
    });
    say(
        Console::Out,
        &format!(
            "worker: {} run(s) passed, {} failed{last}\n",
            summary.passed, summary.failed
        ),
    );
    if let (Some(file), Some(run)) = (&result_file, &summary.last) {
        let json = serde_json::to_string_pretty(run)
            .map_err(|e| Error::Internal(format!("result JSON: {e}")))?;
        file.write(json.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--result-json`, resolved before the run (see [`OutFile::open`]): a path that cannot be
/// written is a configuration error (exit 2) before anything runs, and the file lands where
/// the path pointed then.
fn result_file(path: Option<&Path>) -> Result<Option<OutFile>, Error> {
    path.map(|p| {
        OutFile::open(p).map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("--result-json {why}")),
            e => e,
        })
    })
    .transpose()
}

/// `--out-dir` is usable: it exists or can be created, and a file can be created and removed
/// in it. Checked before connecting, so that a bad directory is a configuration error
/// (exit 2), not a failure in the middle of a run.
///
/// # Errors
/// [`Error::Config`] naming the directory and the reason.
fn check_out_dir(dir: &Path) -> Result<(), Error> {
    let bad = |what: &str, e: std::io::Error| {
        Error::Config(format!("--out-dir {}: cannot {what}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| bad("create the directory", e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(
        ".loadmon_write_check_{}_{nanos}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| bad("create a file in it", e))?;
    std::fs::remove_file(&probe).map_err(|e| bad("remove a file from it", e))
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
    say(Console::Out, &report_text(&report));
    say(
        Console::Out,
        &format!("HTML report: {}\n", a.report_html.display()),
    );
    Ok(report_exit(&report))
}

fn main() -> ExitCode {
    // Parsed by hand (as Cli::parse does) to keep the matches: the server tells given plan
    // options from defaults.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(&cli);
    let result = match cli.command {
        Command::Server(a) => match matches.subcommand_matches("server") {
            Some(given) => run_server(a, given),
            None => Err(Error::Internal("no server arguments".into())),
        },
        Command::Client(a) => run_client(a),
        Command::Worker(a) => run_worker(a),
        Command::Demo(a) => run_demo(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // The message may quote a peer (a server's refusal reason): escaped.
            say(
                Console::Err,
                &format!("loadmon: {}\n", escape_control(&e.to_string())),
            );
            ExitCode::from(e.kind().exit_code())
        }
    }
}
