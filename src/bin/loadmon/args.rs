//! The command line: clap's types, the parsers of option values, and what the options mean as
//! the core's settings.
//!
//! Every default shown by `--help` is the core's (`ServerConfig::default()`,
//! `ClientConfig::default()`, `WorkerConfig::default()`, `FileWriterConfig::default()`, or a
//! named constant of the library for what only the command line has), never a number restated
//! here; the tests below fail when a default drifts or a setting has no flag.

mod verdict;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub(crate) use verdict::{CmpArgs, VerdictArgs};

use clap::{Args, Parser, Subcommand};
use loadmon::client::ClientConfig;
use loadmon::config::{CHUNK_SIZE_MB, CLIENTS};
use loadmon::plan::Plan;
use loadmon::server::{HttpLimits, ServerConfig};
use loadmon::worker::WorkerConfig;
use loadmon::workload::file_writer::{FileWriterConfig, KeepFiles, SyncMode, VerifyMode};
use loadmon::Error;

#[cfg(test)]
mod tests;

#[derive(Parser, Debug)]
#[command(name = "loadmon", version, about = "Coordinated file-write load tests")]
pub(crate) struct Cli {
    /// More log output (debug level); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    /// Only warnings and errors on the console.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the server: hand out ids, watch clients, write the report when all are gone
    /// (fleet mode with --expect-clients: see the end of `loadmon server --help`).
    Server(Box<ServerArgs>),
    /// Run one file-writing test client.
    Client(ClientArgs),
    /// Run a fleet worker: take the plan from a fleet server (`loadmon server
    /// --expect-clients N`), wait for the fleet's start, write files as planned; exit 0 on PASS.
    /// With --stay, come back for the next run until SIGINT/SIGTERM/SIGHUP.
    Worker(WorkerArgs),
    /// Run the seed's demo: a server, and three clients each in its own `loadmon client` process.
    Demo(DemoArgs),
    /// Check files written with verified data, offline: exit 0 if every block is as written,
    /// 4 if not (each bad block's class, offset, what was expected and what was found).
    Verify(crate::verify::VerifyArgs),
    /// Compare two runs' JSON reports: the change of each fleet and per-client figure,
    /// judged against run-to-run noise, and the parameters that differ.
    Cmp(CmpArgs),
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

/// A whole number of clients, within the core's rule ([`CLIENTS`]).
fn clients() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(CLIENTS.min..=CLIENTS.max)
}

/// The help of `--max-clients`, with the core's bounds.
fn max_clients_help() -> String {
    format!(
        "Most clients at once ({} to {}; when not given, raised to --expect-clients if that is \
         more); extra ones are refused",
        CLIENTS.min, CLIENTS.max
    )
}

/// The help of `--expect-clients`, with the core's bounds.
fn expect_clients_help() -> String {
    format!(
        "Fleet mode: send each worker the plan below and start no client until N are ready, \
         then all at once (at most --max-clients; {} to {})",
        CLIENTS.min, CLIENTS.max
    )
}

/// The help of `--max-chunk-mb`, with the core's bound.
fn max_chunk_help() -> String {
    format!(
        "Refuse a plan whose chunks are larger than this, MB (a chunk is held in memory; at \
         most {}). The server lists the worker FAILED with the reason",
        CHUNK_SIZE_MB.max
    )
}

#[derive(Args, Debug)]
#[command(after_help = FLEET_HELP)]
pub(crate) struct ServerArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value_t = ServerConfig::default().host)]
    pub(crate) host: String,
    /// Port to bind (0 = any free port; the port is logged).
    #[arg(long, default_value_t = ServerConfig::default().port)]
    pub(crate) port: u16,
    #[arg(long, help = max_clients_help(), value_parser = clients(),
          default_value_t = ServerConfig::default().max_clients)]
    pub(crate) max_clients: usize,
    /// The first client id.
    #[arg(long, default_value_t = ServerConfig::default().first_client_id)]
    pub(crate) first_client_id: u32,
    /// Seconds without a heartbeat before a client is TIMED OUT.
    #[arg(long, default_value_t = ServerConfig::default().heartbeat_timeout.as_secs_f64(), value_parser = seconds)]
    pub(crate) heartbeat_timeout: f64,
    /// Seconds a new connection has to send get_cid.
    #[arg(long, default_value_t = ServerConfig::default().handshake_timeout.as_secs_f64(), value_parser = seconds)]
    pub(crate) handshake_timeout: f64,
    /// Most connections still in the handshake (no id yet) at once; more are refused.
    #[arg(long, default_value_t = ServerConfig::default().max_pending)]
    pub(crate) max_pending: usize,
    /// Most client ids one run hands out; then get_cid is refused.
    #[arg(long, default_value_t = ServerConfig::default().max_ids)]
    pub(crate) max_ids: u64,
    /// Seconds a peer may leave our replies unread before it is closed (ABORTED, "peer not
    /// reading").
    #[arg(long, default_value_t = ServerConfig::default().write_timeout.as_secs_f64(), value_parser = seconds)]
    pub(crate) write_timeout: f64,
    /// Longest line accepted from a peer, bytes.
    #[arg(long, default_value_t = ServerConfig::default().max_line_bytes, value_name = "BYTES")]
    pub(crate) max_line_bytes: usize,
    #[command(flatten)]
    pub(crate) token: ServerTokenArgs,
    /// Write the JSON report here.
    #[arg(long)]
    pub(crate) report_json: Option<PathBuf>,
    /// Directory for the session log file.
    #[arg(long, default_value = loadmon::logging::SERVER_LOG_DIR)]
    pub(crate) log_dir: PathBuf,
    /// Do not write a log file.
    #[arg(long)]
    pub(crate) no_log_files: bool,
    /// Threads serving connections. 1 (the default) is plenty for heartbeats and stats from
    /// thousands of clients and costs the least CPU; more help only a flood of messages.
    #[arg(long, default_value_t = DEFAULT_THREADS, value_parser = threads)]
    pub(crate) threads: usize,
    #[command(flatten)]
    pub(crate) watch: WatchArgs,
    #[command(flatten)]
    pub(crate) verdict: VerdictArgs,
    #[command(flatten)]
    pub(crate) http_limits: HttpLimitArgs,
    #[command(flatten)]
    pub(crate) fleet: FleetArgs,
    /// The plan of a fleet (with --expect-clients): what every worker runs.
    #[command(
        flatten,
        next_help_heading = "Fleet plan (with --expect-clients; as `loadmon client` takes them)"
    )]
    pub(crate) plan: WriterArgs,
}

/// A server's threads unless told otherwise: the fewest its rule allows, the single-threaded
/// runtime of `ServerHandle::start`.
const DEFAULT_THREADS: usize = loadmon::config::SERVER_THREADS.min as usize;

/// What HTTP peers may hold ([`HttpLimits`]).
#[derive(Args, Debug)]
#[command(next_help_heading = "HTTP limits (with --http)")]
pub(crate) struct HttpLimitArgs {
    /// Seconds a request's headers may take to arrive (then the connection is closed).
    #[arg(long, default_value_t = HttpLimits::default().header_read_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) http_header_read_timeout: f64,
    /// Seconds a keep-alive connection may stay idle between requests.
    #[arg(long, default_value_t = HttpLimits::default().idle_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) http_idle_timeout: f64,
    /// Most HTTP connections open at once; one more gets 503.
    #[arg(long, default_value_t = HttpLimits::default().max_connections, value_name = "N")]
    pub(crate) http_max_connections: usize,
    /// Seconds a response may wait on a peer that takes none of it.
    #[arg(long, default_value_t = HttpLimits::default().write_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) http_write_timeout: f64,
}

impl HttpLimitArgs {
    /// The core's limits.
    pub(crate) fn limits(&self) -> HttpLimits {
        HttpLimits {
            header_read_timeout: secs(self.http_header_read_timeout),
            idle_timeout: secs(self.http_idle_timeout),
            max_connections: self.http_max_connections,
            write_timeout: secs(self.http_write_timeout),
        }
    }
}

/// Fleet mode: the start barrier.
#[derive(Args, Debug)]
#[command(next_help_heading = "Fleet mode")]
pub(crate) struct FleetArgs {
    #[arg(long, value_name = "N", help = expect_clients_help(), value_parser = clients())]
    pub(crate) expect_clients: Option<usize>,
    /// Start whoever is ready this many seconds after the server started (if nobody is,
    /// give up: exit 3). The report says how many were expected and how many started.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, requires = "expect_clients")]
    pub(crate) start_timeout: Option<f64>,
}

/// The file writer's test: `loadmon client`'s own, and a fleet server's plan.
#[derive(Args, Debug)]
pub(crate) struct WriterArgs {
    /// Run time, seconds.
    #[arg(short = 'r', long = "runtime", visible_alias = "run-time", default_value_t = FileWriterConfig::default().run_time_s, value_parser = seconds)]
    pub(crate) run_time_s: f64,
    /// Chunk size: MB (MiB) as a bare number, or with a unit: 4k, 256k, 1m, 1g (binary).
    #[arg(short = 'c', long = "chunksize", default_value_t = Size(FileWriterConfig::default().chunk_size_bytes), value_parser = chunk_size, value_name = "SIZE")]
    pub(crate) chunk_size_bytes: Size,
    /// File size: MB (MiB) as a bare number, or with a unit (k, m, g, t; binary).
    #[arg(short = 'f', long = "filesize", default_value_t = Size(FileWriterConfig::default().file_size_bytes), value_parser = file_size, value_name = "SIZE")]
    pub(crate) file_size_bytes: Size,
    /// Smallest chunk size allowed: MB as a bare number, or with a unit (lower it, to 4k say,
    /// for small-block tests).
    #[arg(long = "min-chunksize", default_value_t = Size(FileWriterConfig::default().min_chunk_size_bytes), value_parser = min_chunk_size, value_name = "SIZE")]
    pub(crate) min_chunk_size_bytes: Size,
    /// none | file (fsync each file) | direct (O_DIRECT; chunk and file size multiples of 4k).
    #[arg(long, default_value_t = FileWriterConfig::default().sync)]
    pub(crate) sync: SyncMode,
    /// Finished files to keep per stream: a number, or "all".
    #[arg(long, default_value_t = FileWriterConfig::default().keep_files)]
    pub(crate) keep_files: KeepFiles,
    /// Writer streams (fio's numjobs), each with its own files and keep-files set; the
    /// client's figures are their sums (1 to 256).
    #[arg(long = "jobs", default_value_t = FileWriterConfig::default().jobs, value_parser = jobs, value_name = "N")]
    pub(crate) jobs: u32,
    /// Writes in flight per stream (fio's iodepth), through io_uring where the kernel allows
    /// it (else one at a time, and the log and the report say why), 1 to 256.
    #[arg(long = "iodepth", default_value_t = FileWriterConfig::default().iodepth, value_parser = iodepth, value_name = "N")]
    pub(crate) iodepth: u32,
    /// Pace, MB/s (MiB/s), shared by the streams; a fleet server's is the whole fleet's, split
    /// across its workers. Without it: as fast as possible.
    #[arg(long = "rate", id = "rate_mb_s", value_parser = rate, value_name = "MB/S")]
    pub(crate) rate_mb_s: Option<f64>,
    /// Check the written data (docs/VERIFY.md): none | rollover (each file is read back just
    /// before keep-files deletes it, or --overwrite rewrites it) | end (the kept files, when
    /// the run ends). With a check, every block carries a header saying where and when it was
    /// written, and a CRC-32C; a bad block ends the client FAILED with the finding.
    #[arg(long = "verify", default_value_t = FileWriterConfig::default().verify, value_parser = verify_mode, value_name = "MODE")]
    pub(crate) verify: VerifyMode,
    #[arg(long = "verify-block", id = "verify_block_bytes", help = verify_block_help(),
          default_value_t = FileWriterConfig::default().verify_block_bytes,
          value_parser = verify_block, value_name = "SIZE")]
    pub(crate) verify_block_bytes: u64,
    /// With --verify: a bad block does not stop the writing; every one is counted and
    /// reported, and the client still ends FAILED with the first as its reason.
    #[arg(long)]
    pub(crate) verify_continue: bool,
    /// With --verify end: check another client's kept files in the same (shared) --out-dir
    /// instead of this client's own, so that a host's page cache cannot hide a lost write.
    #[arg(long)]
    pub(crate) verify_peer: bool,
    /// Once a stream holds --keep-files files, rewrite the oldest in place (same name, next
    /// write generation) instead of deleting it and starting a new one. Needs --keep-files N.
    #[arg(long)]
    pub(crate) overwrite: bool,
}

impl WriterArgs {
    /// Argument ids, as clap knows them (to tell given flags from defaults).
    pub(crate) const IDS: [&'static str; 14] = [
        "run_time_s",
        "chunk_size_bytes",
        "file_size_bytes",
        "min_chunk_size_bytes",
        "sync",
        "keep_files",
        "jobs",
        "iodepth",
        "rate_mb_s",
        "verify",
        "verify_block_bytes",
        "verify_continue",
        "verify_peer",
        "overwrite",
    ];

    pub(crate) fn plan(&self) -> Plan {
        Plan {
            run_time_s: self.run_time_s,
            chunk_size_bytes: self.chunk_size_bytes.0,
            file_size_bytes: self.file_size_bytes.0,
            min_chunk_size_bytes: self.min_chunk_size_bytes.0,
            sync: self.sync,
            keep_files: self.keep_files,
            jobs: self.jobs,
            iodepth: self.iodepth,
            rate_mb_s: self.rate_mb_s,
            verify: self.verify,
            verify_block_bytes: self.verify_block_bytes,
            verify_continue: self.verify_continue,
            verify_peer: self.verify_peer,
            overwrite: self.overwrite,
        }
    }
}

/// A size option's value, bytes; shown as the user would write it (`10` = 10 MB, `256k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&loadmon::units::format_size(self.0))
    }
}

/// `--chunksize`: a size by the core's rule ([`loadmon::config::CHUNK_SIZE_BYTES`]).
fn chunk_size(s: &str) -> Result<Size, String> {
    loadmon::config::size_bytes("chunk_size", s, loadmon::config::CHUNK_SIZE_BYTES)
        .map(Size)
        .map_err(message)
}

/// `--filesize`: a size by the core's rule ([`loadmon::config::FILE_SIZE_BYTES`]).
fn file_size(s: &str) -> Result<Size, String> {
    loadmon::config::size_bytes("file_size", s, loadmon::config::FILE_SIZE_BYTES)
        .map(Size)
        .map_err(message)
}

/// `--min-chunksize`: a size by the core's rule ([`loadmon::config::MIN_CHUNK_SIZE_BYTES`]).
fn min_chunk_size(s: &str) -> Result<Size, String> {
    loadmon::config::size_bytes("min_chunk_size", s, loadmon::config::MIN_CHUNK_SIZE_BYTES)
        .map(Size)
        .map_err(message)
}

/// A whole number of the setting `name` by its rule.
fn whole(name: &str, s: &str, rule: loadmon::config::Count) -> Result<u32, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{name} must be a whole number, not {s:?}"))?;
    rule.get::<u32>(name, n).map_err(message)
}

/// `--jobs`, by the core's rule ([`loadmon::config::JOBS`]).
fn jobs(s: &str) -> Result<u32, String> {
    whole("jobs", s, loadmon::config::JOBS)
}

/// `--iodepth`, by the core's rule ([`loadmon::config::IODEPTH`]).
fn iodepth(s: &str) -> Result<u32, String> {
    whole("iodepth", s, loadmon::config::IODEPTH)
}

/// `--rate`, MB/s, by the core's rule ([`loadmon::config::rate_mb_s`]).
fn rate(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("rate must be a number of MB/s, not {s:?}"))?;
    loadmon::config::rate_mb_s("rate", x).map_err(message)
}

/// `--verify`, by the core's parser.
fn verify_mode(s: &str) -> Result<VerifyMode, String> {
    s.parse().map_err(message)
}

/// `--verify-block`: bytes, or with k or m, by the core's parser and bounds
/// ([`loadmon::verify::parse_block_bytes`]).
fn verify_block(s: &str) -> Result<u64, String> {
    loadmon::verify::parse_block_bytes(s).map_err(message)
}

/// The help of `--verify-block`, with the core's bounds.
fn verify_block_help() -> String {
    format!(
        "Verify block size: bytes, or with k or m (4k, 64k, 1m); a power of two from {} to {}. \
         The chunk and file sizes must be multiples of it",
        loadmon::units::size_text(u64::from(loadmon::verify::MIN_BLOCK_BYTES)),
        loadmon::units::size_text(u64::from(loadmon::verify::MAX_BLOCK_BYTES))
    )
}

/// How to reach the server, and the session log: shared by `client` and `worker`.
#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    /// Server host.
    #[arg(long, default_value_t = ClientConfig::default().host)]
    pub(crate) host: String,
    /// Server port.
    #[arg(long, default_value_t = ClientConfig::default().port)]
    pub(crate) port: u16,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = ClientConfig::default().heartbeat_period.as_secs_f64(), value_parser = seconds)]
    pub(crate) heartbeat_period: f64,
    /// Seconds between stats reports.
    #[arg(long, default_value_t = ClientConfig::default().stats_period.as_secs_f64(), value_parser = seconds)]
    pub(crate) stats_period: f64,
    /// Seconds to keep retrying an unreachable server.
    #[arg(long, default_value_t = ClientConfig::default().connect_timeout.as_secs_f64(), value_parser = seconds)]
    pub(crate) connect_timeout: f64,
    /// Seconds to wait for the server's id (and, with a token, for each step of the
    /// challenge-response before it).
    #[arg(long, default_value_t = ClientConfig::default().handshake_timeout.as_secs_f64(), value_parser = seconds)]
    pub(crate) handshake_timeout: f64,
    /// Longest line accepted from the server, bytes.
    #[arg(long, default_value_t = ClientConfig::default().max_line_bytes, value_name = "BYTES")]
    pub(crate) max_line_bytes: usize,
    #[command(flatten)]
    pub(crate) token: ClientTokenArgs,
    /// Directory for the session log file.
    #[arg(long, default_value = loadmon::logging::CLIENT_LOG_DIR)]
    pub(crate) log_dir: PathBuf,
    /// Do not write a log file.
    #[arg(long)]
    pub(crate) no_log_files: bool,
}

impl ConnectArgs {
    pub(crate) fn client_config(self) -> Result<ClientConfig, Error> {
        Ok(ClientConfig {
            host: self.host,
            port: self.port,
            heartbeat_period: secs(self.heartbeat_period),
            stats_period: secs(self.stats_period),
            connect_timeout: secs(self.connect_timeout),
            handshake_timeout: secs(self.handshake_timeout),
            max_line_bytes: self.max_line_bytes,
            token: token(self.token.token, self.token.token_file.as_deref())?,
            allow_clear_token: self.token.allow_clear_token,
            log_dir: (!self.no_log_files).then_some(self.log_dir),
        })
    }
}

/// The server's token: never shown by `--help` (its value may come from the environment).
#[derive(Args, Debug)]
pub(crate) struct ServerTokenArgs {
    /// Shared secret clients must prove they know (it never crosses the wire; the server
    /// proves it knows it too). On the command line it is visible to every user in the process
    /// list: prefer --token-file or LOADMON_TOKEN.
    #[arg(long, env = "LOADMON_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Read the token from this file (one line; a trailing newline is dropped). It must not be
    /// readable by group or others (chmod 600), as ssh requires of a private key.
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// Also take the token in clear from a loadmon that predates the challenge-response
    /// (anyone who can read the traffic then learns it). Off by default: such a client is
    /// refused and told why.
    #[arg(long)]
    pub(crate) allow_clear_token: bool,
}

/// A client's or worker's token: never shown by `--help` (its value may come from the
/// environment).
#[derive(Args, Debug)]
pub(crate) struct ClientTokenArgs {
    /// Shared secret for the server: the client proves it knows it, and goes on only with a
    /// server that proves it knows it too (it never crosses the wire). On the command line it
    /// is visible to every user in the process list: prefer --token-file or LOADMON_TOKEN.
    #[arg(long, env = "LOADMON_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Read the token from this file (one line; a trailing newline is dropped). It must not be
    /// readable by group or others (chmod 600), as ssh requires of a private key.
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// Send the token in clear to a server that offers no challenge-response (a loadmon from
    /// before it); that server proves nothing, and anyone who can read the traffic learns
    /// the token. Off by default: such a server is an error.
    #[arg(long)]
    pub(crate) allow_clear_token: bool,
}

/// The token of `--token` (or LOADMON_TOKEN) or of `--token-file`; both is an error (which
/// one was meant?).
pub(crate) fn token(given: Option<String>, file: Option<&Path>) -> Result<Option<String>, Error> {
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
pub(crate) struct FilesArgs {
    /// Directory for the data files.
    #[arg(long, default_value_os_t = FileWriterConfig::default().out_dir)]
    pub(crate) out_dir: PathBuf,
    /// Write the result as JSON here (a worker: its last run that passed).
    #[arg(long)]
    pub(crate) result_json: Option<PathBuf>,
}

/// Live output and extra reports of `server`.
#[derive(Args, Debug)]
pub(crate) struct WatchArgs {
    /// Serve the HTTP JSON API, Prometheus /metrics and the dashboard on HOST:PORT
    /// (e.g. 127.0.0.1:8080; port 0 picks one). Off by default.
    #[arg(long, value_name = "HOST:PORT", value_parser = http_addr)]
    pub(crate) http: Option<String>,
    /// Keep the HTTP listener up this many seconds after the run, serving the final report.
    #[arg(long, default_value_t = ServerConfig::default().http_linger.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) http_linger: f64,
    /// A host name the HTTP listener answers to (repeatable; "*" for any). IP addresses and
    /// localhost always work; a request for any other name gets 421 (DNS rebinding).
    #[arg(long = "http-allow-host", value_name = "NAME")]
    pub(crate) http_allow_hosts: Vec<String>,
    /// Write every event as one JSON line to PATH as it happens ("-" for stdout).
    #[arg(long, value_name = "PATH")]
    pub(crate) json_stream: Option<PathBuf>,
    /// Write the report as CSV (one row per client).
    #[arg(long, value_name = "PATH")]
    pub(crate) report_csv: Option<PathBuf>,
    /// Write the report as a self-contained HTML page with charts.
    #[arg(long, value_name = "PATH")]
    pub(crate) report_html: Option<PathBuf>,
    /// Write the fleet's merged chunk write latency intervals in the HdrHistogram interval-log
    /// format (v1.3), which HdrHistogram's tools read.
    #[arg(long, value_name = "PATH")]
    pub(crate) latency_log: Option<PathBuf>,
    /// Seconds between status lines when stdout is not a terminal (0: none).
    #[arg(long, default_value_t = loadmon::console::STATUS_INTERVAL.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) status_interval: f64,
    /// No live table or status lines.
    #[arg(long)]
    pub(crate) no_live: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) writer: WriterArgs,
    #[command(flatten)]
    pub(crate) files: FilesArgs,
}

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) files: FilesArgs,
    /// After each run, connect again for the next one until SIGINT/SIGTERM/SIGHUP (fio --server
    /// style), retrying with capped exponential backoff while the server is away.
    #[arg(long)]
    pub(crate) stay: bool,
    /// With --stay, the longest pause between two attempts to reach the server, seconds.
    #[arg(long, default_value_t = WorkerConfig::default().retry_max.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) retry_max: f64,
    #[arg(long, help = max_chunk_help(), default_value_t = WorkerConfig::default().max_chunk_mb, value_name = "MB")]
    pub(crate) max_chunk_mb: u64,
    /// Refuse a plan that runs longer than this, seconds.
    #[arg(long, default_value_t = WorkerConfig::default().max_run_time.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    pub(crate) max_run_time: f64,
    /// Refuse a plan that can occupy more disk space than this in --out-dir at once: its
    /// kept files and the one being written (with keep_files=all, what the run time fills at
    /// the measured rate). MB, or with a unit M, G, T, P (MiB, GiB, …), e.g. 500 or 20G. A
    /// plan must also fit in the space free there.
    #[arg(id = "max_disk_mb", long = "max-disk", default_value_t = WorkerConfig::default().max_disk_mb, value_parser = disk_size, value_name = "SIZE")]
    pub(crate) max_disk: u64,
}

impl WorkerArgs {
    pub(crate) fn worker_config(self) -> Result<WorkerConfig, Error> {
        Ok(WorkerConfig {
            client: self.connect.client_config()?,
            out_dir: self.files.out_dir,
            stay: self.stay,
            retry_max: secs(self.retry_max),
            max_chunk_mb: self.max_chunk_mb,
            max_run_time: secs(self.max_run_time),
            max_disk_mb: self.max_disk,
        })
    }
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// A 3-second version of the schedule (small files).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Directory for the data files (removed at the end).
    #[arg(long, default_value_os_t = loadmon::demo::DemoOptions::default().out_dir)]
    pub(crate) out_dir: PathBuf,
    /// Write the JSON report here.
    #[arg(long)]
    pub(crate) report_json: Option<PathBuf>,
    /// Directory for server_logs/ and client_logs/.
    #[arg(long, default_value = loadmon::demo::LOG_DIR)]
    pub(crate) log_dir: PathBuf,
    /// Do not write log files.
    #[arg(long)]
    pub(crate) no_log_files: bool,
    /// Write the HTML report here (its path is printed at the end).
    #[arg(long, default_value = loadmon::demo::REPORT_HTML)]
    pub(crate) report_html: PathBuf,
    /// Write the CSV report here.
    #[arg(long)]
    pub(crate) report_csv: Option<PathBuf>,
    /// Serve the HTTP API and dashboard on HOST:PORT while the demo runs.
    #[arg(long, value_name = "HOST:PORT", value_parser = http_addr)]
    pub(crate) http: Option<String>,
    /// No live table or status lines.
    #[arg(long)]
    pub(crate) no_live: bool,
}

/// A core error's message alone (clap adds its own "error: invalid value …").
pub(crate) fn message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// `--max-disk`: a size in MB or with a unit (the core's [`loadmon::config::size_mb`]).
fn disk_size(s: &str) -> Result<u64, String> {
    loadmon::config::size_mb("max_disk", s).map_err(message)
}

/// `--threads`, by the core's rule ([`loadmon::config::check_server_threads`]).
fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    loadmon::config::check_server_threads(n)
        .map(|()| n)
        .map_err(message)
}

/// A duration option: a number of seconds within the core's bounds (0 to 10^9; NaN,
/// infinities and negative values are refused, clap exits 2). Whether 0 is allowed is the
/// core's call, made when the settings are validated.
fn seconds(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    loadmon::config::seconds("the value", x, loadmon::config::Zero::Allowed)
        .map(|d| d.as_secs_f64())
        .map_err(message)
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

/// Seconds, as parsed by [`seconds`], as a duration.
pub(crate) fn secs(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}
