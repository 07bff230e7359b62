//! The server: hands out client ids, tells clients to start, watches them, builds the report.
//!
//! [`Server::bind`] binds the listener (port 0 picks a free port), [`Server::run`] serves until
//! the server stops by itself (at least one client got an id and every connection has closed),
//! until [`ServerControl::stop`] is called, or until the future given to [`Server::run_until`]
//! completes (Ctrl-C in the CLI). In every case the final report is built, logged, written to
//! the report files of the configuration and returned. A server with
//! [`ServerConfig::http`] serves its HTTP listener during the run and for
//! [`ServerConfig::http_linger`] after it, as a task on the same runtime; its report files and
//! HTTP listener are the same whether it runs under [`crate::blocking::ServerHandle`] or on the
//! caller's own runtime. (The CLI's event stream writer is the CLI's.)
//!
//! # Cancellation
//! Dropping the future of [`Server::run`] (through `tokio::time::timeout`, `select!`, or the end
//! of a runtime) ends the run at once: every connection is closed, clients still running
//! become ABORTED ("server stopped"), the HTTP listener closes, and the final report is the
//! one [`ServerControl::report`] returns ([`ServerControl::is_finished`] is then true, the
//! event stream ends with it). Only the report files are not written: a run that should end
//! with its files is stopped with [`ServerControl::stop`] (or the future given to
//! [`Server::run_until`]) and awaited to the end.
//!
//! # Examples
//! ```
//! use loadmon::client::{Client, ClientConfig};
//! use loadmon::file_writer::{FileWriter, FileWriterConfig};
//! use loadmon::server::{Server, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> loadmon::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let server = Server::bind(ServerConfig {
//!     port: 0,
//!     report_json: Some(dir.path().join("report.json")),
//!     ..Default::default()
//! })
//! .await?;
//! let port = server.local_addr().port();
//! let serving = tokio::spawn(server.run());
//!
//! let writer = FileWriter::new(FileWriterConfig {
//!     run_time_s: 0.5,
//!     chunk_size_mb: 1,
//!     file_size_mb: 1,
//!     min_chunk_size_mb: 1,
//!     out_dir: dir.path().join("data"),
//!     ..Default::default()
//! })?;
//! let client = Client::new(ClientConfig { port, ..Default::default() })?;
//! let result = client.run(writer).await?;
//!
//! // The server stops by itself once its only client is done, and writes its report.
//! let report = serving.await.expect("the server task")?;
//! assert_eq!(report.clients[0].status, loadmon::Status::Pass);
//! assert_eq!(report.clients[0].files_written, result.files_written);
//! assert!(dir.path().join("report.json").exists());
//! # Ok(())
//! # }
//! ```
//!
//! # Parts
//! - [`session`](self) (private): one peer's protocol state, no I/O — `(state, message, now)
//!   -> step`; every status change happens there.
//! - `conn` (private): the connection driver — reads and writes never block each other;
//!   replies go through a bounded outbound queue with a write deadline.
//! - `accept` (private): admission — a small, short-lived budget for connections still in
//!   the handshake; a `max_clients` slot and an id only at `get_cid`, after the token.
//! - `guard` (private): failed token attempts per peer address, no I/O — a slow-down, then a
//!   lock-out.
//! - `barrier` (private): fleet mode's start barrier, no I/O — who is ready, when everyone
//!   starts, who is late.
//!
//! # Fleet mode
//! With [`ServerConfig::fleet`], the server hands every worker the same [`Plan`] and starts
//! the fleet together: `run_tests` is withheld until [`FleetConfig::expect_clients`] clients
//! are ready (or the [`FleetConfig::start_timeout`] ends), then sent to all of them at once.
//! A client that comes after the start is refused (`refused:run already started: …`), so that
//! every client in the report started together; a ready client that goes away before the
//! start does not count. Seed clients and plain loadmon clients join the barrier with their own
//! parameters (they never get a plan). See `docs/PROTOCOL.md`.

mod accept;
mod barrier;
mod conn;
mod guard;
mod session;
mod signal;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{self, check_duration, Zero, CLIENTS};
use crate::error::{Error, Result};
use crate::events::{EventBus, EventKind, EventStream};
use crate::logging::EventLog;
use crate::plan::Plan;
use crate::protocol::{COMMANDS, DEFAULT_MAX_LINE_BYTES};
use crate::report::{ClientReport, Report, ReportFiles, Total};
use crate::series::{ClientSeries, TotalSeries};

use barrier::{Barrier, Release};
use session::{ClientState, Rules, WarnBudget};

/// Upper bound of [`ServerConfig::max_clients`] and [`ServerConfig::max_pending`] (the rule
/// is [`config::CLIENTS`]).
pub const MAX_CONNECTIONS_LIMIT: usize = crate::config::CLIENTS.max as usize;
/// Upper bound of [`ServerConfig::max_ids`] (the rule is [`config::IDS`]).
pub const MAX_IDS_LIMIT: u64 = crate::config::IDS.max;
/// Upper bound of every duration setting (about 31.7 years); see [`crate::config`].
pub use crate::units::MAX_DURATION;
/// Upper bound of [`ServerConfig::max_line_bytes`].
pub const MAX_LINE_BYTES_LIMIT: usize = 1 << 20;
/// Most names [`ServerConfig::http_allow_hosts`] may hold.
pub const MAX_HTTP_ALLOW_HOSTS: usize = 256;

/// Server settings. `Default` gives the seed's defaults (loopback, port 1234, 5 clients, first
/// id 100) with loadmon's timeouts and limits.
///
/// Serializes (durations as seconds, the token as `"<set>"` or `null`) so that every face can
/// show the core's defaults and a test can find a setting a face lacks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1`: loopback only).
    pub host: String,
    /// Port to bind; 0 picks a free port (default 1234).
    pub port: u16,
    /// Most clients with an id connected at once (1 to 1,000,000, default 5). A slot is taken
    /// at `get_cid` (after the token); one more gets `refused:server full…`.
    pub max_clients: usize,
    /// Most connections still in the handshake (no id yet) at once (1 to 1,000,000, default
    /// 256). While all are taken the server accepts no new connection: they wait in the
    /// kernel's listen queue (backlog 4096) and are served in order as places free up, so a
    /// storm of connections is slowed down, never refused.
    pub max_pending: usize,
    /// Most ids one run hands out (1 to 100,000,000, default 100,000); then `get_cid` is
    /// refused (`refused:client id limit reached…`). Bounds the report and the server's memory
    /// whatever peers do (connect, `get_cid`, close, again).
    pub max_ids: u64,
    /// The first client id; later ones count up (default 100). When the id space ends
    /// (4294967295 was given), `get_cid` is refused: an id is never given twice.
    pub first_client_id: u32,
    /// A client that sends no `hb` for this long is TIMED OUT and closed (default 15 s,
    /// 3 × the 5 s heartbeat period).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub heartbeat_timeout: Duration,
    /// A connection that has not sent `get_cid` after this long is closed (default 10 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub handshake_timeout: Duration,
    /// A peer that leaves our replies unread this long is closed; a client with an id ends
    /// ABORTED, `peer not reading` (default 10 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub write_timeout: Duration,
    /// Longest line accepted from a peer, bytes (64 to 1 MiB, default 4096).
    pub max_line_bytes: usize,
    /// Shared secret; when set, a client must prove it knows it before `get_cid`, by a
    /// challenge–response that never sends it ([`crate::auth`]); the server proves it knows it
    /// too. Wrong attempts are slowed down, then locked out, per peer address.
    #[serde(serialize_with = "crate::config::ser::redacted")]
    pub token: Option<String>,
    /// Also take the token in clear (`token:<secret>`), as a loadmon from before the
    /// challenge–response sends it (default false: such a peer is refused and told why).
    /// Anyone who can read the traffic then learns the token. Needs a `token`.
    pub allow_clear_token: bool,
    /// Where to write the JSON report when the server stops (resolved when the server binds,
    /// a relative path against the working directory of then; written when its run ends; see
    /// [`ServerConfig::report_files`] and [`crate::out_file`]).
    pub report_json: Option<PathBuf>,
    /// Where to write the session log file (`server_log_<time>.txt`); `None` for no file.
    pub log_dir: Option<PathBuf>,
    /// Where to write the CSV report (one row per client) when the server stops.
    pub report_csv: Option<PathBuf>,
    /// Where to write the HTML report (table and charts) when the server stops.
    pub report_html: Option<PathBuf>,
    /// `host:port` for the HTTP listener (JSON API, `/metrics`, dashboard); `None` (the
    /// default) for none. Port 0 picks a free port. The same token as the protocol port
    /// applies (sent as `Authorization: Bearer <token>`). Bound with the server
    /// ([`Server::bind`]), served while it runs and for [`ServerConfig::http_linger`] after.
    pub http: Option<String>,
    /// How long the HTTP listener keeps serving the final report after the run (default 0);
    /// [`ServerControl::close_http`] ends it sooner.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub http_linger: Duration,
    /// Host names the HTTP listener answers to besides IP addresses and `localhost` (default
    /// none); `"*"` for any. A request whose `Host` header names anything else gets `421`: a
    /// web page whose name an attacker points at this listener's address (DNS rebinding)
    /// cannot read it. Names are compared without case, port and trailing dot; at most
    /// [`MAX_HTTP_ALLOW_HOSTS`], each ASCII letters, digits, `-`, `.` and `_` (a punycode name
    /// for an international one).
    pub http_allow_hosts: Vec<String>,
    /// What HTTP peers may hold: header-read, idle and write timeouts, most connections.
    pub http_limits: HttpLimits,
    /// Fleet mode: a plan for every worker and a start barrier; `None` (the default) for the
    /// seed's behaviour (each client starts at its `ready`).
    pub fleet: Option<FleetConfig>,
}

/// Fleet mode: how many clients to wait for, for how long, and the plan workers run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetConfig {
    /// Clients that must be ready before any starts (1 to 1,000,000, at most
    /// [`ServerConfig::max_clients`]).
    pub expect_clients: usize,
    /// Start with whoever is ready this long after the server started (`None`: wait for
    /// `expect_clients` however long). If nobody is ready then, the run gives up: the server
    /// stops and its report says so.
    #[serde(serialize_with = "crate::config::ser::opt_secs")]
    pub start_timeout: Option<Duration>,
    /// What every worker runs (workers are clients that announced `plan` in `hello`).
    #[serde(skip)]
    pub plan: Plan,
}

impl FleetConfig {
    /// `expect_clients` workers running `plan`, with no start timeout.
    pub fn new(expect_clients: usize, plan: Plan) -> FleetConfig {
        FleetConfig {
            expect_clients,
            start_timeout: None,
            plan,
        }
    }

    /// The fleet a face's flat options describe, the one rule every face applies: no
    /// `expect_clients`, no fleet, and then any fleet option given (`given`: their names as the
    /// face spells them) is an error, since it would do nothing. `expect_name` is how the face
    /// spells `expect_clients` (`--expect-clients` on the command line).
    ///
    /// ```
    /// use loadmon::server::FleetConfig;
    /// let none = FleetConfig::from_options(None, None, None, &[], "expect_clients").unwrap();
    /// assert!(none.is_none());
    /// let err = FleetConfig::from_options(None, None, None, &["plan"], "expect_clients");
    /// assert!(err.unwrap_err().to_string().contains("they need expect_clients"));
    /// let fleet = FleetConfig::from_options(Some(3), None, None, &["plan"], "x").unwrap();
    /// assert_eq!(fleet.unwrap().expect_clients, 3);
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when fleet options are given without `expect_clients`.
    pub fn from_options(
        expect_clients: Option<usize>,
        start_timeout: Option<Duration>,
        plan: Option<Plan>,
        given: &[&str],
        expect_name: &str,
    ) -> Result<Option<FleetConfig>> {
        let Some(expect_clients) = expect_clients else {
            if given.is_empty() {
                return Ok(None);
            }
            return Err(Error::Config(format!(
                "the plan options ({}) set a fleet's plan: they need {expect_name}",
                given.join(", ")
            )));
        };
        Ok(Some(FleetConfig {
            expect_clients,
            start_timeout,
            plan: plan.unwrap_or_default(),
        }))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 1234,
            max_clients: 5,
            max_pending: 256,
            max_ids: 100_000,
            first_client_id: 100,
            heartbeat_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            token: None,
            allow_clear_token: false,
            report_json: None,
            log_dir: None,
            report_csv: None,
            report_html: None,
            http: None,
            http_linger: Duration::ZERO,
            http_allow_hosts: Vec::new(),
            http_limits: HttpLimits::default(),
            fleet: None,
        }
    }
}

/// Bounds on what HTTP peers may hold. Every connection costs a file descriptor the protocol
/// port needs too, so idle, slow and non-reading peers are closed and the count is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HttpLimits {
    /// A request's headers must be complete within this time from when the server starts
    /// waiting for them: the connection's opening, or its first byte after an idle
    /// keep-alive pause. Otherwise the connection is closed (slowloris). Default 10 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection that moves no byte between requests for this long is closed.
    /// Default 30 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub idle_timeout: Duration,
    /// Most HTTP connections open at once (at least 1); one more gets a minimal `503` and is
    /// closed at once, so it never holds a descriptor. Default 128.
    pub max_connections: usize,
    /// Longest a write may wait on a peer that accepts no byte of the response; the
    /// connection is then closed. It counts from the last byte the peer took, so a slow but
    /// reading peer is served. Default 30 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 128,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerConfig {
    /// The `max_clients` a server takes when none is given: the default (5), raised to
    /// `fleet`'s `expect_clients` so that the fleet can start. The CLI (no `--max-clients`)
    /// and the Python face (`max_clients=None`) use it.
    pub fn default_max_clients(fleet: Option<&FleetConfig>) -> usize {
        let d = ServerConfig::default().max_clients;
        fleet.map_or(d, |f| f.expect_clients.max(d))
    }

    /// Checks every setting against its bounds (the report paths too: see
    /// [`ReportFiles::check`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        crate::config::check_host("host", &self.host)?;
        CLIENTS.check("max_clients", self.max_clients as u64)?;
        CLIENTS.check("max_pending", self.max_pending as u64)?;
        config::IDS.check("max_ids", self.max_ids)?;
        check_duration(
            "heartbeat_timeout",
            self.heartbeat_timeout,
            config::HEARTBEAT_TIMEOUT,
        )?;
        check_duration(
            "handshake_timeout",
            self.handshake_timeout,
            config::HANDSHAKE_TIMEOUT,
        )?;
        check_duration("write_timeout", self.write_timeout, Zero::Rejected)?;
        check_duration("http_linger", self.http_linger, config::HTTP_LINGER)?;
        let l = &self.http_limits;
        check_duration(
            "http_limits.header_read_timeout",
            l.header_read_timeout,
            Zero::Rejected,
        )?;
        check_duration("http_limits.idle_timeout", l.idle_timeout, Zero::Rejected)?;
        check_duration("http_limits.write_timeout", l.write_timeout, Zero::Rejected)?;
        CLIENTS.check("http_limits.max_connections", l.max_connections as u64)?;
        if self.max_line_bytes > MAX_LINE_BYTES_LIMIT {
            return Err(Error::Config(format!(
                "max_line_bytes must be at most {MAX_LINE_BYTES_LIMIT}"
            )));
        }
        check_allow_hosts(&self.http_allow_hosts)?;
        if let Some(h) = &self.http {
            if !cfg!(feature = "http") {
                return Err(Error::Config(
                    "http: loadmon was built without the `http` feature".into(),
                ));
            }
            check_http_addr(h)?;
        }
        if let Some(f) = &self.fleet {
            CLIENTS.check("expect_clients", f.expect_clients as u64)?;
            if f.expect_clients > self.max_clients {
                return Err(Error::Config(format!(
                    "expect_clients ({}) is more than max_clients ({}): the fleet could never \
                     start (raise max_clients)",
                    f.expect_clients, self.max_clients
                )));
            }
            // Each client takes an id: fewer ids than the fleet and it could never start.
            let id_space = u64::from(u32::MAX) - u64::from(self.first_client_id) + 1;
            if f.expect_clients as u64 > self.max_ids.min(id_space) {
                let (limit, why) = if self.max_ids <= id_space {
                    (self.max_ids, format!("max_ids is {}", self.max_ids))
                } else {
                    (
                        id_space,
                        format!(
                            "ids from first_client_id {} to {} are {id_space}",
                            self.first_client_id,
                            u32::MAX
                        ),
                    )
                };
                return Err(Error::Config(format!(
                    "expect_clients ({}) is more than the {limit} client id(s) this server can \
                     hand out ({why}): the fleet could never start",
                    f.expect_clients
                )));
            }
            if let Some(t) = f.start_timeout {
                check_duration("start_timeout", t, config::START_TIMEOUT)?;
            }
            f.plan
                .validate()
                .map_err(|e| Error::Config(format!("plan: {}", config_message(&e))))?;
        }
        crate::config::check_wire(self.max_line_bytes, self.token.as_deref())?;
        crate::config::check_clear_token(self.allow_clear_token, self.token.as_deref())?;
        self.report_files().check()
    }

    /// The report files this configuration asks for.
    pub fn report_files(&self) -> ReportFiles {
        ReportFiles {
            json: self.report_json.clone(),
            csv: self.report_csv.clone(),
            html: self.report_html.clone(),
        }
    }

    fn rules(&self, run_id: u64) -> Rules {
        Rules {
            run_id,
            token: self.token.clone(),
            allow_clear_token: self.allow_clear_token,
            handshake_timeout: self.handshake_timeout,
            heartbeat_timeout: self.heartbeat_timeout,
            plan: self.fleet.as_ref().map(|f| f.plan),
        }
    }
}

/// An id for this run, sent with the plan: the wall clock in ns and the process id, so that
/// two runs (one after the other on a port, or side by side) have different ones.
fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    static RUNS: AtomicU64 = AtomicU64::new(0);
    nanos ^ (u64::from(std::process::id()) << 40) ^ RUNS.fetch_add(1, Ordering::Relaxed)
}

/// The text of a configuration error, without the "invalid configuration: " prefix.
fn config_message(e: &Error) -> String {
    match e {
        Error::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `host:port` with a port in range, for the HTTP listener.
fn check_http_addr(h: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::Config(format!(
            "http must be host:port (e.g. 127.0.0.1:8080), not {h:?}: {why}"
        ))
    };
    let (host, port) = h.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.trim().is_empty() {
        return Err(bad("no host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    Ok(())
}

/// Checks [`ServerConfig::http_allow_hosts`].
fn check_allow_hosts(hosts: &[String]) -> Result<()> {
    if hosts.len() > MAX_HTTP_ALLOW_HOSTS {
        return Err(Error::Config(format!(
            "http_allow_hosts (--http-allow-host) holds at most {MAX_HTTP_ALLOW_HOSTS} names, \
             not {}",
            hosts.len()
        )));
    }
    for h in hosts {
        let name = h.strip_suffix('.').unwrap_or(h);
        let ok = h == "*"
            || (!name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
        if !ok {
            return Err(Error::Config(format!(
                "http_allow_hosts (--http-allow-host): {:?} is not a host name (ASCII letters, digits, '-', '.' and \
                 '_', no port; punycode for an international name) nor \"*\"",
                crate::text::escape_control(h)
            )));
        }
    }
    Ok(())
}

/// One client's record, locked by its own connection on every read and by snapshots: no lock
/// is shared between connections on the message path.
type ClientCell = Arc<Mutex<ClientState>>;

fn lock_cell(c: &ClientCell) -> MutexGuard<'_, ClientState> {
    // A handler that panicked while holding the lock leaves consistent-enough counters.
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ids handed out and the clients that got them.
#[derive(Debug)]
struct State {
    clients: BTreeMap<u32, ClientCell>,
    /// The next id to give; `None` once the id space is used up.
    next_id: Option<u32>,
    /// Ids given so far.
    issued: u64,
    end_time: Option<DateTime<Local>>,
    /// Whether the run was stopped (signal, [`ServerControl::stop`]) rather than ending by
    /// itself.
    stopped: bool,
}

/// Where lines that did not parse are counted, after the commands' own counters.
const INVALID: usize = COMMANDS.len();

/// Lines received per command, on cache lines of their own: every read of every connection
/// adds to them, and the rest of [`Shared`] is read by every thread.
#[derive(Debug)]
#[repr(align(128))]
struct MessageCounts([AtomicU64; COMMANDS.len() + 1]);

/// What every connection and every control shares.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    config: ServerConfig,
    rules: Rules,
    log: Arc<EventLog>,
    stop: CancellationToken,
    start_time: DateTime<Local>,
    started: Instant,
    local_addr: SocketAddr,
    /// The HTTP listener's address, once whoever started it says so.
    http_addr: OnceLock<SocketAddr>,
    events: EventBus,
    /// Lines received per command ([`COMMANDS`] order), then lines that did not parse.
    messages: MessageCounts,
    connections: AtomicU64,
    refused: AtomicU64,
    /// `max_clients` slots, taken at `get_cid`.
    slots: Arc<Semaphore>,
    /// `max_pending` places for connections without an id.
    pending: Arc<Semaphore>,
    /// Warnings about refused connections (a flood of them must not flood the log).
    refusal_warnings: Mutex<WarnBudget>,
    /// Failed token attempts per peer address.
    auth_guard: Mutex<guard::AuthGuard>,
    /// The final report, once the server stopped.
    final_report: Mutex<Option<Report>>,
    /// Fleet mode: the start barrier.
    barrier: Option<Mutex<Barrier>>,
    /// Fleet mode: fired when the barrier releases; every waiting connection then sends
    /// `run_tests`.
    fleet_go: signal::Signal,
    /// Fired once the server stops accepting: every connection wraps up ("server stopped").
    wrap_up: signal::Signal,
    /// Fired once the final report is set.
    finished: CancellationToken,
    /// Stops the HTTP listener: the linger's end, [`ServerControl::close_http`], a cancelled run.
    http_stop: CancellationToken,
    /// Fired once the HTTP listener has closed (at once for a server without one).
    http_done: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked while holding the lock leaves consistent-enough counters;
        // keep serving rather than poisoning every other client.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cells(&self) -> Vec<ClientCell> {
        self.lock().clients.values().cloned().collect()
    }

    /// Counts `n` lines of kind `index` ([`COMMANDS`] order, then [`INVALID`]).
    fn count(&self, index: usize, n: u64) {
        if let Some(c) = self.messages.0.get(index) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn barrier(&self) -> Option<MutexGuard<'_, Barrier>> {
        self.barrier
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts client `id`'s `ready` at the barrier (fleet mode; `None` otherwise), releasing
    /// it if this one completes the fleet.
    fn join_barrier(&self, id: u32, now: Instant) -> Option<barrier::Joined> {
        let joined = self.barrier()?.join(id, now);
        if let barrier::Joined::Released(r) = joined {
            self.released(r);
        }
        Some(joined)
    }

    /// Client `id` went away: it no longer counts if the fleet has not started.
    fn leave_barrier(&self, id: u32) {
        let left = self
            .barrier()
            .map(|mut b| (b.leave(id), b.ready(), b.expected()));
        if let Some((true, ready, expected)) = left {
            self.log.info(format!(
                "{id}: Client left before the fleet started: {ready} of {expected} ready"
            ));
        }
    }

    /// The barrier was released: every waiting connection starts.
    fn released(&self, r: Release) {
        let expected = self.barrier().map_or(0, |b| b.expected());
        let how = if r.timed_out {
            "start timeout"
        } else {
            "all ready"
        };
        if r.started == 0 {
            self.log.warn(format!(
                "Start timeout: none of the {expected} expected client(s) is ready; giving up"
            ));
        } else {
            self.log.info(format!(
                "Starting the fleet: {} of {expected} expected client(s) ({how})",
                r.started
            ));
        }
        self.events.emit(|| EventKind::FleetStarted {
            expected,
            started: r.started,
            timed_out: r.timed_out,
        });
        self.fleet_go.fire();
    }

    /// Fleet mode: the barrier's state now.
    fn fleet_status(&self) -> Option<FleetStatus> {
        let b = self.barrier()?;
        let released = b.released();
        Some(FleetStatus {
            expected: b.expected(),
            ready: b.ready(),
            started: released.map(|r| r.started),
            start_time: released.map(|r| self.wall_time(r.at).to_rfc3339()),
        })
    }

    /// The wall-clock time of `t` (from the server's start, so that times in one report agree).
    fn wall_time(&self, t: Instant) -> DateTime<Local> {
        let since = t.saturating_duration_since(self.started);
        chrono::Duration::from_std(since)
            .ok()
            .and_then(|d| self.start_time.checked_add_signed(d))
            .unwrap_or(self.start_time)
    }

    fn final_report(&self) -> MutexGuard<'_, Option<Report>> {
        self.final_report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the run: the end time, the final report (kept, announced as the last event; its
    /// text is logged by the caller, see [`Server::run_then`]). `stopped`: stopped rather than
    /// ended by itself.
    fn finish(&self, stopped: bool) -> Report {
        let report = {
            let mut st = self.lock();
            st.end_time = Some(Local::now());
            st.stopped = stopped;
            drop(st);
            self.report()
        };
        *self.final_report() = Some(report.clone());
        self.finished.cancel();
        self.events.emit(|| EventKind::Report {
            report: Box::new(report.clone()),
        });
        report
    }

    /// The run's future was dropped before its end: no more awaiting, so everything ends here
    /// and now. The connections (tasks of the dropped acceptor) are aborted by the runtime;
    /// every client still running is ABORTED ("server stopped"), and the final report is set.
    /// Nothing here may panic: it runs in a `Drop`, perhaps while a panic unwinds.
    fn cancel_run(&self) {
        self.log.warn(
            "The server's run was cancelled (its future was dropped): closing every connection",
        );
        self.stop.cancel();
        self.wrap_up.fire();
        self.http_stop.cancel();
        let now = Instant::now();
        for cell in self.cells() {
            let event = lock_cell(&cell).set_status(
                crate::report::Status::Aborted,
                Some(crate::report::STOPPED_REASON.into()),
                now,
            );
            if let Some(e) = event {
                self.events.emit(|| e);
            }
        }
        let report = self.finish(true);
        self.log.report(&report.to_text());
    }

    /// The final report if the server stopped, the report so far otherwise.
    fn current_report(&self) -> Report {
        if let Some(r) = self.final_report().as_ref() {
            return r.clone();
        }
        self.report()
    }

    /// Logs `line` within the refusals' budget (a flood of them must not flood the log).
    fn warn_refusal(&self, line: String) {
        let allowed = self
            .refusal_warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(Instant::now());
        match allowed {
            Some(0) => self.log.warn(line),
            Some(n) => self
                .log
                .warn(format!("{line} ({n} more refusals not logged)")),
            None => {}
        }
    }

    /// Records a refusal: counted, announced, logged (rate-limited).
    fn note_refusal(&self, peer: SocketAddr, reason: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| EventKind::Refused {
            peer: peer.to_string(),
            reason: reason.to_string(),
        });
        self.warn_refusal(format!("Refusing {peer}: {reason}"));
    }

    fn report(&self) -> Report {
        let now = Instant::now();
        let (end_time, stopped) = {
            let st = self.lock();
            (st.end_time, st.stopped)
        };
        let mut clients = Vec::new();
        let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
        let mut series = Vec::new();
        // Each started client's first and last point (time since the server started, bytes),
        // for the all-clients series.
        let mut spans = Vec::new();
        for cell in self.cells() {
            let c = lock_cell(&cell);
            clients.push(c.to_report(now));
            series.extend(c.series_report());
            if let Some((s, _)) = c.started {
                first_start = Some(first_start.map_or(s, |f| f.min(s)));
                let e = c.ended.map_or(now, |e| e.0);
                last_end = Some(last_end.map_or(e, |l| l.max(e)));
                spans.push((
                    c.id,
                    c.series.origin(),
                    (session::seconds_since(self.started, e), c.bytes_written()),
                ));
            }
        }
        let span_s = match (first_start, last_end) {
            (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64(),
            _ => 0.0,
        };
        let mut total = Total::of(&clients, span_s);
        let fleet = self.fleet_status();
        // The common start: the fleet's start, or (outside fleet mode) the first start.
        let release = self.barrier().and_then(|b| b.released());
        let common = match (&fleet, release) {
            (Some(_), Some(r)) if r.started > 0 => Some(r.at),
            (Some(_), _) => None,
            (None, _) => first_start,
        };
        if let (Some(from), Some(to)) = (common, last_end) {
            let from_s = session::seconds_since(self.started, from);
            let to_s = session::seconds_since(self.started, to);
            let mut all = TotalSeries::new(from_s, to_s);
            let mut samples = series.iter().peekable();
            for (id, origin, end) in spans {
                // Both lists are in id order.
                while samples.next_if(|s| s.id < id).is_some() {}
                let own = samples.next_if(|s| s.id == id);
                let points = own.iter().flat_map(|s| s.samples.iter());
                all.add(
                    std::iter::once(origin)
                        .chain(points.map(|p| (p.t_s, p.bytes_written)))
                        .chain(std::iter::once(end)),
                );
            }
            total.series = all.finish();
        }
        total.common_start = common.map(|t| self.wall_time(t).to_rfc3339());
        if let Some(f) = fleet {
            total.expected_clients = Some(f.expected);
            total.started_clients = f.started;
        }
        Report {
            start_time: self.start_time.to_rfc3339(),
            end_time: end_time.unwrap_or_else(Local::now).to_rfc3339(),
            total,
            clients,
            series,
            stopped,
        }
    }
}

/// A cheap, cloneable handle to a server: live snapshot, report so far, stop.
#[derive(Debug, Clone)]
pub struct ServerControl {
    shared: Arc<Shared>,
}

impl ServerControl {
    /// Every client so far, with live figures for the running ones.
    pub fn snapshot(&self) -> Vec<ClientReport> {
        let now = Instant::now();
        self.shared
            .cells()
            .iter()
            .map(|c| lock_cell(c).to_report(now))
            .collect()
    }

    /// The report as it would be if the server stopped now; the final report once it stopped.
    pub fn report(&self) -> Report {
        self.shared.current_report()
    }

    /// Each client's time series so far (see [`crate::series`]).
    pub fn series(&self) -> Vec<ClientSeries> {
        self.shared
            .cells()
            .iter()
            .filter_map(|cell| lock_cell(cell).series_report())
            .collect()
    }

    /// Lines received so far per command, in [`COMMANDS`] order, then `("invalid", n)` for
    /// lines that did not parse.
    pub fn message_counts(&self) -> Vec<(&'static str, u64)> {
        COMMANDS
            .iter()
            .copied()
            .chain(["invalid"])
            .zip(&self.shared.messages.0)
            .map(|(name, n)| (name, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Connections accepted so far, and connections refused (server full, wrong token, …).
    pub fn connection_counts(&self) -> (u64, u64) {
        (
            self.shared.connections.load(Ordering::Relaxed),
            self.shared.refused.load(Ordering::Relaxed),
        )
    }

    /// Seconds since the server started.
    pub fn uptime_s(&self) -> f64 {
        self.shared.started.elapsed().as_secs_f64()
    }

    /// Subscribes to the live event stream. Subscribe before clients connect to see every
    /// event; a subscription made after the server stopped yields the final report only.
    pub fn subscribe(&self) -> EventStream {
        let fin = self.shared.final_report();
        match fin.as_ref() {
            Some(r) => EventStream::finished(self.shared.events.event(EventKind::Report {
                report: Box::new(r.clone()),
            })),
            None => EventStream::live(self.shared.events.subscribe()),
        }
    }

    /// Whether the run is over and the final report is ready.
    pub fn is_finished(&self) -> bool {
        self.shared.final_report().is_some()
    }

    /// The HTTP listener's address, if the server has one ([`ServerConfig::http`]).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.shared.http_addr.get().copied()
    }

    /// Closes the HTTP listener now: ends its linger after the run
    /// ([`ServerConfig::http_linger`]), or, during the run, stops serving HTTP for the rest of it.
    pub fn close_http(&self) {
        self.shared.http_stop.cancel();
    }

    /// Completes once the run is over and the HTTP listener, if any, has closed (after its
    /// linger, or [`ServerControl::close_http`]). Needs no runtime of its own.
    pub async fn http_closed(&self) {
        self.shared.finished.cancelled().await;
        self.shared.http_done.cancelled().await;
    }

    /// Whether the run is over and the HTTP listener, if any, has closed.
    pub fn is_http_closed(&self) -> bool {
        self.shared.finished.is_cancelled() && self.shared.http_done.is_cancelled()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Asks the server to stop: running clients become ABORTED ("server stopped"). Returns at
    /// once; [`Server::run`] returns the report.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.is_cancelled()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Fleet mode: the start barrier's state now; `None` outside fleet mode.
    pub fn fleet(&self) -> Option<FleetStatus> {
        self.shared.fleet_status()
    }
}

/// Where a fleet server's start barrier is ([`ServerControl::fleet`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FleetStatus {
    /// Clients the fleet waits for.
    pub expected: usize,
    /// Clients ready and waiting for the start now (0 once started).
    pub ready: usize,
    /// Clients started together, once the fleet started (0: the start timeout found nobody
    /// ready).
    pub started: Option<usize>,
    /// When the fleet started (RFC 3339, local time).
    pub start_time: Option<String>,
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// The HTTP listener, if the configuration asks for one.
    http: Option<TcpListener>,
    /// The report files, resolved when the server was bound.
    report_files: Arc<crate::report::OpenReportFiles>,
    shared: Arc<Shared>,
}

impl Server {
    /// Validates `config` (report paths included), opens the log file and binds the listener
    /// and the HTTP listener, if any ([`ServerConfig::http`]; served once the server runs).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting, [`Error::Bind`] if the address cannot be bound,
    /// [`Error::File`] if the log file cannot be created.
    pub async fn bind(config: ServerConfig) -> Result<Server> {
        config.validate()?;
        // Resolved now, written at the end: where the paths point now (the working directory
        // of now for a relative one), never through a link planted during the run.
        let report_files = Arc::new(config.report_files().open()?);
        let log = EventLog::open("server", config.log_dir.as_deref())?;
        if let Some(p) = log.path() {
            log.info(format!("Logging to {}", p.display()));
        }
        let addr = format!("{}:{}", config.host, config.port);
        log.info(format!("Initializing server on {addr}"));
        let (listener, local_addr) = bind(
            &addr,
            "",
            config.token.is_none(),
            "listening on",
            "join the test",
            &log,
        )
        .await?;
        log.info("Initialization complete!");
        let now = Instant::now();
        let barrier = config
            .fleet
            .as_ref()
            .map(|f| Mutex::new(Barrier::new(f.expect_clients, f.start_timeout, now)));
        if let Some(f) = &config.fleet {
            log.info(format!(
                "Fleet mode: waiting for {} client(s){}; plan: {}",
                f.expect_clients,
                f.start_timeout.map_or(String::new(), |t| format!(
                    " (or {:.1} s, then starting whoever is ready)",
                    t.as_secs_f64()
                )),
                f.plan
            ));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                clients: BTreeMap::new(),
                next_id: Some(config.first_client_id),
                issued: 0,
                end_time: None,
                stopped: false,
            }),
            rules: config.rules(run_id()),
            slots: Arc::new(Semaphore::new(config.max_clients)),
            pending: Arc::new(Semaphore::new(config.max_pending)),
            refusal_warnings: Mutex::new(WarnBudget::new(now)),
            auth_guard: Mutex::new(guard::AuthGuard::default()),
            config,
            log: Arc::new(log),
            stop: CancellationToken::new(),
            start_time: Local::now(),
            started: now,
            local_addr,
            http_addr: OnceLock::new(),
            events: EventBus::new(),
            messages: MessageCounts(std::array::from_fn(|_| AtomicU64::new(0))),
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            final_report: Mutex::new(None),
            barrier,
            fleet_go: signal::Signal::default(),
            wrap_up: signal::Signal::default(),
            finished: CancellationToken::new(),
            http_stop: CancellationToken::new(),
            http_done: CancellationToken::new(),
        });
        #[cfg(feature = "http")]
        let http = match &shared.config.http {
            None => None,
            Some(addr) => {
                let (l, a) = bind(
                    addr,
                    "HTTP ",
                    shared.config.token.is_none(),
                    "HTTP on",
                    "read the results",
                    &shared.log,
                )
                .await?;
                shared
                    .log
                    .info(format!("HTTP API, metrics and dashboard on http://{a}/"));
                let _ = shared.http_addr.set(a);
                Some(l)
            }
        };
        #[cfg(not(feature = "http"))]
        let http: Option<TcpListener> = None;
        if http.is_none() {
            shared.http_done.cancel();
        }
        Ok(Server {
            listener,
            http,
            report_files,
            shared,
        })
    }

    /// The address the listener is bound to (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle for snapshots and stopping, usable while [`run`](Server::run) runs.
    pub fn control(&self) -> ServerControl {
        ServerControl {
            shared: self.shared.clone(),
        }
    }

    /// Serves until the server stops by itself or is stopped; writes the report files
    /// ([`ServerConfig::report_files`]) and returns the final report. The HTTP listener, if
    /// any, is served from the start and, after the run, for [`ServerConfig::http_linger`]
    /// as a task on this runtime ([`ServerControl::http_closed`] tells when it has closed).
    ///
    /// Cancel-safe in the sense of the [module docs](self#cancellation): dropping the future
    /// ends the run at once with a final report (no report files).
    ///
    /// # Examples
    /// Stopping a run from elsewhere, here with a timeout the tokio way:
    /// ```
    /// use loadmon::server::{Server, ServerConfig};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> loadmon::Result<()> {
    /// let server = Server::bind(ServerConfig { port: 0, ..Default::default() }).await?;
    /// let control = server.control();
    /// // Nobody comes: the run is given up on after 50 ms.
    /// assert!(tokio::time::timeout(Duration::from_millis(50), server.run()).await.is_err());
    /// assert!(control.is_finished());
    /// assert!(control.report().stopped);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::File`] if a report file could not be written (every file is attempted; the
    /// report is still [`ServerControl::report`]'s).
    pub async fn run(self) -> Result<Report> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// As [`run`](Server::run), and also stops when `shutdown` completes (e.g. Ctrl-C), as
    /// [`ServerControl::stop`] does: the report files are written.
    ///
    /// # Errors
    /// As [`run`](Server::run).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<Report> {
        self.run_then(shutdown, |_| {}).await
    }

    /// As [`run_until`](Server::run_until); `done` gets the result before the text report is
    /// logged, so that whoever reads that log record (a face's log handler) finds the result
    /// where `done` put it (a blocking handle's `wait`).
    pub(crate) async fn run_then(
        self,
        shutdown: impl Future<Output = ()>,
        done: impl FnOnce(&Result<Report>),
    ) -> Result<Report> {
        let Server {
            listener,
            http,
            report_files,
            shared,
        } = self;
        // Until the final report is set, a dropped future cancels the run; until the linger
        // started, it closes the HTTP listener.
        let mut cancelled = Cancelled {
            shared: &shared,
            phase: Phase::Running,
            files: (shared.config.report_files() != ReportFiles::default())
                .then(|| report_files.clone()),
        };
        let has_http = http.is_some();
        if let Some(l) = http {
            serve_http(&shared, l);
        }
        let log = shared.log.clone();
        log.info(format!(
            "Server now accepting client connections on {}.",
            shared.local_addr
        ));
        let stopped = accept::serve(listener, &shared, shutdown).await;
        let report = shared.finish(stopped);
        cancelled.phase = Phase::Reporting;

        // File I/O on a blocking thread, if there is a file to write.
        let report = Arc::new(report);
        let written = if shared.config.report_files() == ReportFiles::default() {
            Ok(())
        } else {
            let (log, r) = (shared.log.clone(), report.clone());
            tokio::task::spawn_blocking(move || write_report_files(&report_files, &r, &log))
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("report files task: {e}"))))
        };

        if has_http {
            // The listener serves the final report for the linger time (or until
            // close_http), then stops.
            let linger = shared.config.http_linger;
            let stop = shared.http_stop.clone();
            if !linger.is_zero() && !stop.is_cancelled() {
                log.info(format!(
                    "HTTP keeps serving the final report for {:.1} s",
                    linger.as_secs_f64()
                ));
            }
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(linger) => {}
                    () = stop.cancelled() => {}
                }
                stop.cancel();
            });
        }
        cancelled.phase = Phase::Done;
        let report = Arc::try_unwrap(report).unwrap_or_else(|r| Report::clone(&r));
        let text = report.to_text();
        let result = written.map(|()| report);
        done(&result);
        log.report(&text);
        result
    }
}

/// How far a run got, for [`Cancelled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Serving: a drop cancels the run.
    Running,
    /// The final report is set (its text not logged yet); the files are being written, the
    /// linger has not started.
    Reporting,
    /// Over: nothing left to do on a drop.
    Done,
}

/// Ends a run whose future is dropped (see [`Shared::cancel_run`]).
struct Cancelled<'a> {
    shared: &'a Shared,
    phase: Phase,
    /// The report files to write if the run is dropped while running (`None`: none).
    files: Option<Arc<crate::report::OpenReportFiles>>,
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        match self.phase {
            Phase::Running => {
                self.shared.cancel_run();
                // The configured files get the final report, as a stop writes them (here,
                // in the drop: no task outlives the dropped future to write them later).
                let report = self.shared.final_report().as_ref().cloned();
                if let (Some(files), Some(report)) = (&self.files, report) {
                    let _ = write_report_files(files, &report, &self.shared.log);
                }
            }
            Phase::Reporting => {
                self.shared.http_stop.cancel();
                // Not logged under the lock: a log sink may read the report.
                let text = self.shared.final_report().as_ref().map(Report::to_text);
                if let Some(text) = text {
                    self.shared.log.report(&text);
                }
            }
            Phase::Done => {}
        }
    }
}

/// How long a stopped HTTP listener may take to close its busy connections.
#[cfg(feature = "http")]
const HTTP_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves the HTTP listener `l` as a task of its own on this runtime until
/// [`Shared::http_stop`]; then [`Shared::http_done`] fires.
fn serve_http(shared: &Arc<Shared>, l: TcpListener) {
    #[cfg(feature = "http")]
    {
        let stop = shared.http_stop.clone();
        let done = shared.http_done.clone();
        let c = &shared.config;
        let serve = crate::http::serve(
            l,
            ServerControl {
                shared: shared.clone(),
            },
            c.token.clone(),
            c.http_allow_hosts.clone(),
            stop.clone(),
            shared.log.clone(),
            c.http_limits,
        );
        tokio::spawn(async move {
            tokio::select! {
                () = serve => {}
                () = async {
                    stop.cancelled().await;
                    tokio::time::sleep(HTTP_CLOSE_GRACE).await;
                } => {}
            }
            done.cancel();
        });
    }
    #[cfg(not(feature = "http"))]
    {
        // Never bound without the feature (the setting is a configuration error).
        drop(l);
        shared.http_done.cancel();
    }
}

/// Writes the report files (resolved when the server was bound); every file is attempted, each is logged, and the
/// first failure is returned after the others.
fn write_report_files(
    files: &crate::report::OpenReportFiles,
    report: &Report,
    log: &crate::logging::EventLog,
) -> Result<()> {
    let mut written = Ok(());
    for (kind, path, r) in files.write(report) {
        match r {
            Ok(()) => log.info(format!("{kind} report written to {}", path.display())),
            Err(e) => {
                log.warn(format!("{kind} report not written: {e}"));
                if written.is_ok() {
                    written = Err(e);
                }
            }
        }
    }
    written
}

/// Binds `addr` (`what` names the listener in errors: "" or "HTTP "). Every listener follows
/// one rule: a non-loopback address without a token is served, with a warning.
/// The listen queue asked for (the kernel caps it at `net.core.somaxconn`): room for a storm of
/// connections while every handshake place is taken (see `accept`). tokio's default is 1,024.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (the first of its addresses that binds) with [`LISTEN_BACKLOG`], address
/// reuse as `TcpListener::bind` does.
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let bound = socket.and_then(|s| {
            #[cfg(unix)]
            s.set_reuseaddr(true)?;
            s.bind(a)?;
            s.listen(LISTEN_BACKLOG)
        });
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// Whether `ip` is a loopback address: 127.0.0.0/8, `::1`, and `::ffff:127.x.y.z` (an IPv4
/// loopback address as an IPv6 socket sees it).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Binds `addr` (`what` names the listener in errors: "" or "HTTP "). Every listener follows
/// one rule: a non-loopback address without a token is served, with a warning.
pub(crate) async fn bind(
    addr: &str,
    what: &str,
    tokenless: bool,
    listening: &str,
    anyone_can: &str,
    log: &EventLog,
) -> Result<(TcpListener, SocketAddr)> {
    let l = listen(addr)
        .await
        .map_err(|e| Error::bind(format!("bind {what}{addr}"), e))?;
    let a = l
        .local_addr()
        .map_err(|e| Error::bind(format!("local address of {what}{addr}"), e))?;
    if !is_loopback(a.ip()) && tokenless {
        log.warn(format!(
            "{listening} non-loopback address {a} without a token: any host that can reach it \
             can {anyone_can} (set a token)"
        ));
    }
    Ok((l, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// The acceptor's start timeout on a paused clock (tokio moves time on only when every
    /// task waits): a seed client waits at the barrier of a fleet of 2; 30 s after the
    /// server's start it is started alone, and nothing happens before.
    #[tokio::test(start_paused = true)]
    async fn the_start_timeout_starts_the_ready_client_after_exactly_its_time() {
        let server = Server::bind(ServerConfig {
            port: 0,
            fleet: Some(FleetConfig {
                expect_clients: 2,
                start_timeout: Some(Duration::from_secs(30)),
                plan: Plan::default(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
        let t0 = Instant::now();
        let addr = server.local_addr();
        let run = tokio::spawn(server.run());
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"get_cid\nready\n").await.unwrap();
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("set_cid:100")
        );
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("run_tests")
        );
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
            "{waited:?}"
        );
        w.write_all(b"start\ndone\n").await.unwrap();
        let report = run.await.unwrap().unwrap();
        assert_eq!(report.clients[0].status, crate::Status::Pass);
        assert_eq!(
            (report.total.expected_clients, report.total.started_clients),
            (Some(2), Some(1))
        );
    }

    #[test]
    fn mapped_ipv4_loopback_is_loopback() {
        for (ip, loopback) in [
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:127.9.9.9", true),
            ("::ffff:10.0.0.1", false),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
            ("::", false),
            ("::127.0.0.1", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), loopback, "{ip}");
        }
    }

    #[test]
    fn every_limit_has_bounds() {
        let ok = ServerConfig::default();
        assert!(ok.validate().is_ok());
        let hosts = ServerConfig {
            http_allow_hosts: [
                "*",
                "loadmon.example.",
                "a-b_c.d",
                "10.0.0.1",
                "[::1]",
                "::1",
            ]
            .map(String::from)
            .to_vec(),
            ..ok.clone()
        };
        assert!(hosts.validate().is_ok());
        let bad = [
            ServerConfig {
                max_clients: 2305843009213693952,
                ..ok.clone()
            },
            ServerConfig {
                max_clients: 0,
                ..ok.clone()
            },
            ServerConfig {
                max_pending: 0,
                ..ok.clone()
            },
            ServerConfig {
                max_ids: MAX_IDS_LIMIT + 1,
                ..ok.clone()
            },
            ServerConfig {
                heartbeat_timeout: Duration::from_secs(u64::MAX),
                ..ok.clone()
            },
            ServerConfig {
                write_timeout: Duration::ZERO,
                ..ok.clone()
            },
            ServerConfig {
                http_linger: MAX_DURATION + Duration::from_secs(1),
                ..ok.clone()
            },
            ServerConfig {
                max_line_bytes: MAX_LINE_BYTES_LIMIT + 1,
                ..ok.clone()
            },
            ServerConfig {
                http: Some("127.0.0.1:99999".into()),
                ..ok.clone()
            },
            ServerConfig {
                http: Some("not-an-address".into()),
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["a b".into()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["example.com:8080".into()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec![String::new()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["x".repeat(254)],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["a".into(); MAX_HTTP_ALLOW_HOSTS + 1],
                ..ok.clone()
            },
        ];
        for c in bad {
            let e = c.validate().expect_err("out of bounds");
            assert!(e.is_config(), "{e}");
        }
    }
}
