//! The server: hands out client ids, tells clients to start, watches them, writes the report.
//!
//! [`Server::bind`] binds the listener (port 0 picks a free port), [`Server::run`] serves until
//! the server stops by itself (at least one client got an id and every connection has closed),
//! until [`ServerControl::stop`] is called, or until the future given to [`Server::run_until`]
//! completes (Ctrl-C in the CLI). In every case the report is built, logged and, if configured,
//! written as JSON.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Local};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::{Connection, FrameError, Parsed};
use crate::error::{Error, Result};
use crate::events::{EventBus, EventKind, EventStream};
use crate::logging::EventLog;
use crate::protocol::{Message, COMMANDS, DEFAULT_MAX_LINE_BYTES, PROTOCOL_VERSION};
use crate::report::{ClientReport, Report, Status, Total, BYTES_PER_MB};
use crate::series::{ClientSeries, Sample, Series};

/// How long a closing connection waits for the peer to read our last line.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Server settings. `Default` gives the seed's defaults (loopback, port 1234, 5 clients, first
/// id 100) with loadmon's timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1`: loopback only).
    pub host: String,
    /// Port to bind; 0 picks a free port (default 1234).
    pub port: u16,
    /// Most clients connected at once; an extra one is refused (default 5).
    pub max_clients: usize,
    /// The first client id; later ones count up (default 100).
    pub first_client_id: u32,
    /// A client that sends no `hb` for this long is TIMED OUT and closed (default 15 s,
    /// 3 × the 5 s heartbeat period).
    pub heartbeat_timeout: Duration,
    /// A connection that has not sent `get_cid` after this long is closed (default 10 s).
    pub handshake_timeout: Duration,
    /// Longest line accepted from a peer, bytes (default 4096).
    pub max_line_bytes: usize,
    /// Shared secret; when set, a client must send `token:<secret>` before `get_cid`.
    pub token: Option<String>,
    /// Where to write the JSON report when the server stops.
    pub report_json: Option<PathBuf>,
    /// Where to write the session log file (`server_log_<time>.txt`); `None` for no file.
    pub log_dir: Option<PathBuf>,
    /// Where to write the CSV report (one row per client) when the server stops.
    pub report_csv: Option<PathBuf>,
    /// Where to write the HTML report (table and charts) when the server stops.
    pub report_html: Option<PathBuf>,
    /// `host:port` for the HTTP listener (JSON API, `/metrics`, dashboard); `None` (the
    /// default) for none. Port 0 picks a free port. The same token as the protocol port
    /// applies (sent as `Authorization: Bearer <token>`).
    pub http: Option<String>,
    /// How long the HTTP listener keeps serving the final report after the run (default 0).
    pub http_linger: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 1234,
            max_clients: 5,
            first_client_id: 100,
            heartbeat_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            token: None,
            report_json: None,
            log_dir: None,
            report_csv: None,
            report_html: None,
            http: None,
            http_linger: Duration::ZERO,
        }
    }
}

impl ServerConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        if self.host.trim().is_empty() {
            return Err(Error::Config("host must not be empty".into()));
        }
        if self.max_clients == 0 {
            return Err(Error::Config("max_clients must be at least 1".into()));
        }
        if self.heartbeat_timeout.is_zero() {
            return Err(Error::Config("heartbeat_timeout must be positive".into()));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::Config("handshake_timeout must be positive".into()));
        }
        if self.http.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err(Error::Config(
                "http must be host:port (e.g. 127.0.0.1:8080), not empty".into(),
            ));
        }
        crate::config::check_wire(self.max_line_bytes, self.token.as_deref())
    }
}

/// What the server knows about one client.
#[derive(Debug)]
struct ClientState {
    id: u32,
    peer: SocketAddr,
    status: Status,
    reason: Option<String>,
    protocol_version: Option<String>,
    started: Option<(Instant, DateTime<Local>)>,
    ended: Option<(Instant, DateTime<Local>)>,
    last_heartbeat: Instant,
    heartbeats: u64,
    stats_reports: u64,
    cpu_total: f64,
    mem_total: f64,
    proc_reports: u64,
    cpu_core_total: f64,
    rss_total: f64,
    rss_peak_bytes: u64,
    files_written: u64,
    file_size_mb: u64,
    chunk_size_mb: u64,
    reported_bytes: Option<u64>,
    chunk_p50_us: Option<u64>,
    chunk_p99_us: Option<u64>,
    cpu_last_pct: Option<f64>,
    mem_last_pct: Option<f64>,
    rss_last_bytes: Option<u64>,
    /// Clients sharing the client's process, from the last `proc_stats` that said.
    process_clients: Option<u32>,
    series: Series,
    /// (time, bytes) of the previous stats sample, for the live throughput.
    previous_sample: (f64, u64),
}

impl ClientState {
    fn new(id: u32, peer: SocketAddr, protocol_version: Option<String>) -> Self {
        ClientState {
            id,
            peer,
            status: Status::NotStarted,
            reason: None,
            protocol_version,
            started: None,
            ended: None,
            last_heartbeat: Instant::now(),
            heartbeats: 0,
            stats_reports: 0,
            cpu_total: 0.0,
            mem_total: 0.0,
            proc_reports: 0,
            cpu_core_total: 0.0,
            rss_total: 0.0,
            rss_peak_bytes: 0,
            files_written: 0,
            file_size_mb: 0,
            chunk_size_mb: 0,
            reported_bytes: None,
            chunk_p50_us: None,
            chunk_p99_us: None,
            cpu_last_pct: None,
            mem_last_pct: None,
            rss_last_bytes: None,
            process_clients: None,
            series: Series::default(),
            previous_sample: (0.0, 0),
        }
    }

    /// Ends the run with `status` unless it already ended.
    fn finish(&mut self, status: Status, reason: Option<String>) -> bool {
        if self.status.is_final() {
            return false;
        }
        self.status = status;
        self.reason = reason;
        self.ended = Some((Instant::now(), Local::now()));
        true
    }

    /// The client's own count (`write_stats`), but never less than the whole files it reported:
    /// `file_roll` arrives at once, `write_stats` only every stats period, and a seed client
    /// sends no `write_stats` at all.
    fn bytes_written(&self) -> u64 {
        let whole_files = self
            .files_written
            .saturating_mul(self.file_size_mb)
            .saturating_mul(1 << 20);
        self.reported_bytes.unwrap_or(0).max(whole_files)
    }

    fn time_ran_s(&self, now: Instant) -> f64 {
        match (self.started, self.ended) {
            (Some((s, _)), Some((e, _))) => e.saturating_duration_since(s).as_secs_f64(),
            (Some((s, _)), None) => now.saturating_duration_since(s).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// The client's time series, if it has points.
    fn series_report(&self) -> Option<ClientSeries> {
        (!self.series.is_empty()).then(|| ClientSeries {
            id: self.id,
            samples: self.series.samples(),
        })
    }

    fn to_report(&self, now: Instant) -> ClientReport {
        let time_ran_s = self.time_ran_s(now);
        let bytes_written = self.bytes_written();
        let avg = |total: f64, n: u64| if n == 0 { 0.0 } else { total / n as f64 };
        ClientReport {
            id: self.id,
            status: self.status,
            time_ran_s,
            cpu_avg_pct: avg(self.cpu_total, self.stats_reports),
            mem_avg_pct: avg(self.mem_total, self.stats_reports),
            files_written: self.files_written,
            file_size_mb: self.file_size_mb,
            chunk_size_mb: self.chunk_size_mb,
            heartbeats: self.heartbeats,
            stats_reports: self.stats_reports,
            bytes_written,
            throughput_mb_s: if time_ran_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / time_ran_s
            } else {
                0.0
            },
            reason: self.reason.clone(),
            peer: Some(self.peer.to_string()),
            protocol_version: self.protocol_version.clone(),
            start_time: self.started.map(|(_, t)| t.to_rfc3339()),
            end_time: self.ended.map(|(_, t)| t.to_rfc3339()),
            cpu_core_avg_pct: (self.proc_reports > 0)
                .then(|| avg(self.cpu_core_total, self.proc_reports)),
            rss_avg_bytes: (self.proc_reports > 0)
                .then(|| avg(self.rss_total, self.proc_reports).round() as u64),
            rss_peak_bytes: (self.proc_reports > 0).then_some(self.rss_peak_bytes),
            chunk_p50_ms: self.chunk_p50_us.map(|us| us as f64 / 1000.0),
            chunk_p99_ms: self.chunk_p99_us.map(|us| us as f64 / 1000.0),
            last_heartbeat_age_s: (!self.status.is_final()).then(|| {
                now.saturating_duration_since(self.last_heartbeat)
                    .as_secs_f64()
            }),
            cpu_last_pct: self.cpu_last_pct,
            mem_last_pct: self.mem_last_pct,
            rss_last_bytes: self.rss_last_bytes,
            process_clients: self.process_clients,
        }
    }
}

/// One client's record, locked by its own handler on every message and by snapshots: no lock
/// is shared between connections on the message path.
type ClientCell = Arc<Mutex<ClientState>>;

fn lock_cell(c: &ClientCell) -> MutexGuard<'_, ClientState> {
    // A handler that panicked while holding the lock leaves consistent-enough counters.
    c.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct State {
    clients: BTreeMap<u32, ClientCell>,
    next_id: u32,
    end_time: Option<DateTime<Local>>,
}

/// Where lines that did not parse are counted, after the commands' own counters.
const INVALID: usize = COMMANDS.len();

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stop: CancellationToken,
    start_time: DateTime<Local>,
    started: Instant,
    local_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    events: EventBus,
    /// Lines received per command ([`COMMANDS`] order), then lines that did not parse.
    messages: [AtomicU64; COMMANDS.len() + 1],
    connections: AtomicU64,
    refused: AtomicU64,
    /// The final report, once the server stopped.
    final_report: Mutex<Option<Report>>,
    /// Stops the HTTP listener (after the run and its linger).
    http_stop: CancellationToken,
    /// Cancelled once the HTTP listener is gone (at once if there is none).
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

    fn count(&self, index: usize, n: u64) {
        if let Some(c) = self.messages.get(index) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn final_report(&self) -> MutexGuard<'_, Option<Report>> {
        self.final_report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The final report if the server stopped, the report so far otherwise.
    fn current_report(&self) -> Report {
        if let Some(r) = self.final_report().as_ref() {
            return r.clone();
        }
        self.report()
    }

    fn seconds_since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64()
    }

    fn report(&self) -> Report {
        let now = Instant::now();
        let end_time = self.lock().end_time;
        let mut clients = Vec::new();
        let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
        let mut dones: Vec<DateTime<Local>> = Vec::new();
        let mut series = Vec::new();
        for cell in self.cells() {
            let c = lock_cell(&cell);
            clients.push(c.to_report(now));
            series.extend(c.series_report());
            if let Some((s, _)) = c.started {
                first_start = Some(first_start.map_or(s, |f| f.min(s)));
                let e = c.ended.map_or(now, |e| e.0);
                last_end = Some(last_end.map_or(e, |l| l.max(e)));
            }
            if c.status == Status::Pass {
                dones.extend(c.ended.map(|e| e.1));
            }
        }
        let bytes_written: u64 = clients.iter().map(|c| c.bytes_written).sum();
        let span_s = match (first_start, last_end) {
            (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64(),
            _ => 0.0,
        };
        let total = Total {
            clients: clients.len(),
            passed: clients.iter().filter(|c| c.status == Status::Pass).count(),
            files_written: clients.iter().map(|c| c.files_written).sum(),
            bytes_written,
            throughput_mb_s: if span_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / span_s
            } else {
                0.0
            },
            first_done: dones.iter().min().map(|t| t.to_rfc3339()),
            last_done: dones.iter().max().map(|t| t.to_rfc3339()),
        };
        Report {
            start_time: self.start_time.to_rfc3339(),
            end_time: end_time.unwrap_or_else(Local::now).to_rfc3339(),
            clients,
            total,
            series,
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
            .zip(&self.shared.messages)
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

    /// The HTTP listener's address, if the server has one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.shared.http_addr
    }

    /// Ends the HTTP listener's linger after the run (it stops with the run anyway when
    /// [`ServerConfig::http_linger`] is zero).
    pub fn close_http(&self) {
        self.shared.http_stop.cancel();
    }

    /// Completes once the run is over and the HTTP listener (if any) has closed.
    pub async fn http_closed(&self) {
        self.shared.http_done.cancelled().await;
    }

    /// Asks the server to stop: running clients become ABORTED ("server stopped") and the
    /// report is written. Returns at once; [`Server::run`] returns the report.
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
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    http: Option<TcpListener>,
    config: Arc<ServerConfig>,
    shared: Arc<Shared>,
    log: Arc<EventLog>,
}

impl Server {
    /// Validates `config`, opens the log file and binds the listener.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting, [`Error::Net`] if the address cannot be bound,
    /// [`Error::File`] if the log file cannot be created.
    pub async fn bind(config: ServerConfig) -> Result<Server> {
        config.validate()?;
        let log = EventLog::open("server", config.log_dir.as_deref())?;
        if let Some(p) = log.path() {
            log.info(format!("Logging to {}", p.display()));
        }
        let addr = format!("{}:{}", config.host, config.port);
        log.info(format!("Initializing server on {addr}"));
        let tokenless = config.token.is_none();
        let (listener, local_addr) =
            bind(&addr, "", tokenless, "listening on", "join the test", &log).await?;
        let (http, http_addr) = match &config.http {
            None => (None, None),
            Some(addr) => {
                let (l, a) = bind(
                    addr,
                    "HTTP ",
                    tokenless,
                    "HTTP on",
                    "read the results",
                    &log,
                )
                .await?;
                log.info(format!("HTTP API, metrics and dashboard on http://{a}/"));
                (Some(l), Some(a))
            }
        };
        log.info("Initialization complete!");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                clients: BTreeMap::new(),
                next_id: config.first_client_id,
                end_time: None,
            }),
            stop: CancellationToken::new(),
            start_time: Local::now(),
            started: Instant::now(),
            local_addr,
            http_addr,
            events: EventBus::new(),
            messages: std::array::from_fn(|_| AtomicU64::new(0)),
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            final_report: Mutex::new(None),
            http_stop: CancellationToken::new(),
            http_done: CancellationToken::new(),
        });
        Ok(Server {
            listener,
            http,
            config: Arc::new(config),
            shared,
            log: Arc::new(log),
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

    /// Serves until the server stops by itself or is stopped; returns the final report.
    ///
    /// # Errors
    /// [`Error::File`] if the JSON report cannot be written (the report is still logged).
    pub async fn run(self) -> Result<Report> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// As [`run`](Server::run), and also stops when `shutdown` completes (e.g. Ctrl-C).
    ///
    /// # Errors
    /// [`Error::File`] if the JSON report cannot be written (the report is still logged).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<Report> {
        let Server {
            listener,
            http,
            config,
            shared,
            log,
        } = self;
        let http_stop = shared.http_stop.clone();
        let http_task = http.map(|l| {
            tokio::spawn(crate::http::serve(
                l,
                ServerControl {
                    shared: shared.clone(),
                },
                config.token.clone(),
                http_stop.clone(),
                log.clone(),
            ))
        });
        log.info(format!(
            "Server now accepting client connections on {}.",
            shared.local_addr
        ));
        let slots = Arc::new(Semaphore::new(config.max_clients));
        let mut tasks = JoinSet::new();
        let mut accept_backoff = Duration::from_millis(10);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    log.info("Shutdown requested: stopping server...");
                    break;
                }
                _ = shared.stop.cancelled() => {
                    log.info("Stop requested: stopping server...");
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        accept_backoff = Duration::from_millis(10);
                        shared.connections.fetch_add(1, Ordering::Relaxed);
                        shared.events.emit(|| EventKind::ClientConnected { peer: peer.to_string() });
                        let conn = Connection::new(stream, config.max_line_bytes);
                        match slots.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let h = Handler {
                                    shared: shared.clone(),
                                    config: config.clone(),
                                    log: log.clone(),
                                    peer,
                                    id: None,
                                    authenticated: config.token.is_none(),
                                    protocol_version: None,
                                    last_heartbeat: Instant::now(),
                                    missed_reported: false,
                                    counts: [0; COMMANDS.len() + 1],
                                    cell: None,
                                };
                                tasks.spawn(h.serve(conn, permit));
                            }
                            Err(_) => {
                                let reason = format!(
                                    "server full: {} clients max", config.max_clients
                                );
                                log.warn(format!("Refusing connection from {peer}: {reason}"));
                                shared.refused.fetch_add(1, Ordering::Relaxed);
                                shared.events.emit(|| EventKind::Refused {
                                    peer: peer.to_string(),
                                    reason: reason.clone(),
                                });
                                tasks.spawn(refuse(conn, reason));
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        log.warn(format!("accept failed: {e}; retrying in {accept_backoff:?}"));
                        tokio::time::sleep(accept_backoff).await;
                        accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                    }
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined {
                        log.warn(format!("a connection handler failed: {e}"));
                    }
                    if tasks.is_empty() && !shared.lock().clients.is_empty() {
                        log.info("All client connections closed.");
                        break;
                    }
                }
            }
        }
        drop(listener);
        // Tell every handler to wrap up ("server stopped"), then wait for them.
        shared.stop.cancel();
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                log.warn(format!("a connection handler failed: {e}"));
            }
        }
        for cell in shared.cells() {
            let mut c = lock_cell(&cell);
            let previous = c.status;
            let reason = "connection handler ended unexpectedly";
            if c.finish(Status::Aborted, Some(reason.into())) {
                shared.events.emit(|| EventKind::StatusChanged {
                    client_id: c.id,
                    previous,
                    status: Status::Aborted,
                    reason: Some(reason.into()),
                });
            }
        }
        shared.lock().end_time = Some(Local::now());
        let report = shared.report();
        for line in report.to_text().lines() {
            log.log(crate::logging::Level::Report, line);
        }
        // Every report file is attempted; the first failure is returned after the others.
        let mut written = Ok(());
        let files: [(&Option<PathBuf>, &str, WriteReport); 3] = [
            (&config.report_json, "JSON", Report::write_json),
            (&config.report_csv, "CSV", Report::write_csv),
            (&config.report_html, "HTML", Report::write_html),
        ];
        for (path, kind, write) in files {
            if let Some(path) = path {
                match write(&report, path) {
                    Ok(()) => log.info(format!("{kind} report written to {}", path.display())),
                    Err(e) => {
                        log.warn(format!("{kind} report not written: {e}"));
                        if written.is_ok() {
                            written = Err(e);
                        }
                    }
                }
            }
        }
        {
            let mut fin = shared.final_report();
            *fin = Some(report.clone());
            shared.events.emit(|| EventKind::Report {
                report: Box::new(report.clone()),
            });
        }
        match http_task {
            // The listener serves the final report for the linger time (or until
            // close_http), in the background: the report is returned now.
            Some(task) => {
                if !config.http_linger.is_zero() {
                    log.info(format!(
                        "HTTP keeps serving the final report for {:.1} s",
                        config.http_linger.as_secs_f64()
                    ));
                }
                let (linger, done) = (config.http_linger, shared.http_done.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(linger) => {}
                        _ = http_stop.cancelled() => {}
                    }
                    http_stop.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                    done.cancel();
                });
            }
            None => shared.http_done.cancel(),
        }
        written.map(|()| report)
    }
}

/// Binds `addr` (`what` names the listener in errors: "" or "HTTP "). Both listeners follow
/// one rule: a non-loopback address without a token is served, with a warning.
async fn bind(
    addr: &str,
    what: &str,
    tokenless: bool,
    listening: &str,
    anyone_can: &str,
    log: &EventLog,
) -> Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::net(format!("bind {what}{addr}"), e))?;
    let a = l
        .local_addr()
        .map_err(|e| Error::net(format!("local address of {what}{addr}"), e))?;
    if !a.ip().is_loopback() && tokenless {
        log.warn(format!(
            "{listening} non-loopback address {a} without a token: any host that can reach it \
             can {anyone_can} (set a token)"
        ));
    }
    Ok((l, a))
}

/// Writes a report file in one format.
type WriteReport = fn(&Report, &std::path::Path) -> Result<()>;

/// Sends `refused:<reason>` and closes.
async fn refuse(mut conn: Connection, reason: String) {
    let _ = conn.send(&Message::Refused(reason)).await;
    conn.close(CLOSE_LINGER).await;
}

/// What to do after a message.
enum Step {
    Continue,
    Close,
}

/// One connection's handler.
struct Handler {
    shared: Arc<Shared>,
    config: Arc<ServerConfig>,
    log: Arc<EventLog>,
    peer: SocketAddr,
    id: Option<u32>,
    authenticated: bool,
    protocol_version: Option<String>,
    /// When the last `hb` arrived (or the id was assigned): the liveness clock.
    last_heartbeat: Instant,
    /// Whether a `heartbeat_missed` event was sent for the current gap.
    missed_reported: bool,
    /// Lines received per command since the last flush to the server's counters.
    counts: [u64; COMMANDS.len() + 1],
    /// This client's record, once it has an id.
    cell: Option<ClientCell>,
}

impl Handler {
    fn name(&self) -> String {
        match self.id {
            Some(id) => id.to_string(),
            None => self.peer.to_string(),
        }
    }

    /// Ends the client's run (if it has an id and has not ended) and logs why.
    fn finish(&self, status: Status, reason: Option<String>) {
        let Some(id) = self.id else { return };
        let previous = self.cell.as_ref().and_then(|c| {
            let mut c = lock_cell(c);
            let previous = c.status;
            c.finish(status, reason.clone()).then_some(previous)
        });
        if let Some(previous) = previous {
            self.shared.events.emit(|| EventKind::StatusChanged {
                client_id: id,
                previous,
                status,
                reason: reason.clone(),
            });
            match (&reason, status) {
                (_, Status::Pass) => self
                    .log
                    .info(format!("{id}: Client finished running tests")),
                (Some(r), _) => self.log.warn(format!("Client {id} {status}: {r}")),
                (None, _) => self.log.warn(format!("Client {id} {status}")),
            }
        }
    }

    /// Serves one connection; the slot (`permit`) is given back before the socket closes, so a
    /// peer that sees the close can reconnect at once.
    async fn serve(mut self, mut conn: Connection, permit: tokio::sync::OwnedSemaphorePermit) {
        // The stop future and the liveness timer are created once: re-arming a timer for every
        // line would cost more than handling the line. The timer fires at the handshake
        // deadline, then at most once per heartbeat period, and is moved forward lazily.
        let stop = self.shared.stop.clone();
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        let timer = tokio::time::sleep(self.config.handshake_timeout);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                msg = conn.read_message() => match msg {
                    Ok(Some(first)) => {
                        // Handle this message and every other complete one already received,
                        // before going back to waiting.
                        let was_registered = self.id.is_some();
                        let now = Instant::now();
                        let mut next = Some(first);
                        let mut close = false;
                        let mut broken = None;
                        // The client's record is locked once for the whole batch, not per line
                        // (in a block: the guard must be gone before the next await).
                        {
                        let cell = self.cell.clone();
                        let mut locked = cell.as_ref().map(lock_cell);
                        while let Some(parsed) = next.take() {
                            if let Step::Close =
                                self.on_parsed(parsed, &mut conn, now, locked.as_deref_mut())
                            {
                                close = true;
                                break;
                            }
                            match conn.buffered_message() {
                                Ok(m) => next = m,
                                Err(e) => {
                                    broken = Some(e);
                                    close = true;
                                }
                            }
                        }
                        }
                        self.flush_counts();
                        if let Some(e) = broken {
                            self.on_frame_error(e);
                        }
                        if close {
                            break;
                        }
                        if let Err(e) = conn.flush().await {
                            self.on_frame_error(e);
                            break;
                        }
                        if !was_registered && self.id.is_some() {
                            // From now on the liveness clock is the heartbeat timeout.
                            timer.as_mut().reset(self.liveness_deadline().0);
                        }
                    }
                    Ok(None) => {
                        self.finish(Status::Aborted, Some("connection closed before done".into()));
                        break;
                    }
                    Err(e) => {
                        self.on_frame_error(e);
                        break;
                    }
                },
                _ = &mut stopped => {
                    self.finish(Status::Aborted, Some("server stopped".into()));
                    break;
                }
                _ = &mut timer => {
                    match self.id {
                        None => {
                            self.log.warn(format!(
                                "Closing connection from {}: no get_cid within {:.1} s",
                                self.peer,
                                self.config.handshake_timeout.as_secs_f64()
                            ));
                            break;
                        }
                        Some(id) => {
                            let (due, missed) = self.liveness_deadline();
                            let now = Instant::now();
                            if due > now {
                                timer.as_mut().reset(due);
                                continue;
                            }
                            if missed {
                                self.missed_reported = true;
                                let age_s = now.saturating_duration_since(self.last_heartbeat).as_secs_f64();
                                self.shared.events.emit(|| EventKind::HeartbeatMissed { client_id: id, age_s });
                                timer.as_mut().reset(self.liveness_deadline().0);
                                continue;
                            }
                            self.finish(
                                Status::TimedOut,
                                Some(format!(
                                    "no heartbeat for {:.1} s",
                                    self.config.heartbeat_timeout.as_secs_f64()
                                )),
                            );
                            break;
                        }
                    }
                }
            }
        }
        drop(permit);
        conn.close(CLOSE_LINGER).await;
    }

    /// When the liveness timer must next fire, and whether that is the "heartbeat missed"
    /// warning (only while someone listens to events) rather than the timeout.
    fn liveness_deadline(&self) -> (Instant, bool) {
        let timeout = self.config.heartbeat_timeout;
        if !self.missed_reported && self.shared.events.active() {
            (self.last_heartbeat + timeout * 2 / 3, true)
        } else {
            (self.last_heartbeat + timeout, false)
        }
    }

    /// A broken frame or a failed socket: the client is ABORTED with the reason.
    fn on_frame_error(&self, e: FrameError) {
        match e {
            FrameError::Protocol(p) => {
                self.log
                    .warn(format!("{}: protocol error: {p}", self.name()));
                self.finish(Status::Aborted, Some(format!("protocol error: {p}")));
            }
            FrameError::Io(e) => {
                self.finish(Status::Aborted, Some(format!("connection error: {e}")));
            }
        }
    }

    /// Adds this connection's message counts to the server's (once per batch: a shared
    /// atomic per line would bounce a cache line between threads).
    fn flush_counts(&mut self) {
        for (i, n) in self.counts.iter_mut().enumerate() {
            if *n > 0 {
                self.shared.count(i, *n);
                *n = 0;
            }
        }
    }

    /// Handles one received line; replies are queued on `conn` (flushed once per batch).
    /// `locked` is the client's record, already locked for the batch (`None` before it has
    /// an id).
    fn on_parsed(
        &mut self,
        parsed: Parsed,
        conn: &mut Connection,
        now: Instant,
        locked: Option<&mut ClientState>,
    ) -> Step {
        let msg = match parsed {
            Ok(m) => {
                self.counts[m.kind()] += 1;
                m
            }
            Err(e) => {
                self.counts[INVALID] += 1;
                // The seed logs an unknown command and carries on; so do we for every bad line.
                self.log.warn(format!("{}: ignored line: {e}", self.name()));
                return Step::Continue;
            }
        };
        match self.on_message(msg, now, locked) {
            Reply::None => Step::Continue,
            Reply::Send(m) => {
                conn.feed(&m);
                Step::Continue
            }
            Reply::Close => Step::Close,
            Reply::Refuse(reason) => {
                self.log.warn(format!("Refusing {}: {reason}", self.peer));
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                self.shared.events.emit(|| EventKind::Refused {
                    peer: self.peer.to_string(),
                    reason: reason.clone(),
                });
                conn.feed(&Message::Refused(reason));
                Step::Close
            }
        }
    }

    /// `now` is the arrival time of the batch the message came in (one clock read per read
    /// from the socket, not per message).
    fn on_message(
        &mut self,
        msg: Message,
        now: Instant,
        locked: Option<&mut ClientState>,
    ) -> Reply {
        let Some(id) = self.id else {
            return self.before_registration(msg);
        };
        if msg == Message::Heartbeat {
            self.last_heartbeat = now;
            self.missed_reported = false;
        }
        let arrived = now;
        let (log, now, shared) = (&self.log, self.last_heartbeat, &self.shared);
        let mut own;
        let c: &mut ClientState = match (locked, self.cell.as_ref()) {
            (Some(c), _) => c,
            // Registered during this batch: lock it for this message.
            (None, Some(cell)) => {
                own = lock_cell(cell);
                &mut own
            }
            (None, None) => {
                self.log.warn(format!("{id}: client record missing"));
                return Reply::Close;
            }
        };
        match msg {
            Message::GetCid => Reply::Send(Message::SetCid(id)),
            Message::Ready => {
                log.info(format!("{id}: Client ready, sending test request"));
                Reply::Send(Message::RunTests)
            }
            Message::FileStats {
                chunk_size_mb,
                file_size_mb,
            } => {
                log.info(format!(
                    "{id}: File stats received. Chunk size: {chunk_size_mb} MB, file size: {file_size_mb} MB"
                ));
                c.chunk_size_mb = chunk_size_mb;
                c.file_size_mb = file_size_mb;
                Reply::None
            }
            Message::Start => {
                if c.status == Status::NotStarted {
                    log.info(format!("{id}: Client started running tests"));
                    c.status = Status::Running;
                    let t = Instant::now();
                    c.started = Some((t, Local::now()));
                    let t_s = shared.seconds_since_start(t);
                    c.series.start(t_s, c.bytes_written());
                    c.previous_sample = (t_s, c.bytes_written());
                    shared.events.emit(|| EventKind::StatusChanged {
                        client_id: id,
                        previous: Status::NotStarted,
                        status: Status::Running,
                        reason: None,
                    });
                } else {
                    log.warn(format!(
                        "{id}: ignored start: status is already {}",
                        c.status
                    ));
                }
                Reply::None
            }
            Message::Heartbeat => {
                log.debug(|| format!("{id}: Heartbeat received"));
                c.heartbeats += 1;
                c.last_heartbeat = now;
                Reply::None
            }
            Message::SendStats { cpu_pct, mem_pct } => {
                log.debug(|| {
                    format!("{id}: Performance stats received. CPU: {cpu_pct} Mem: {mem_pct}")
                });
                c.stats_reports += 1;
                c.cpu_total += cpu_pct;
                c.mem_total += mem_pct;
                c.cpu_last_pct = Some(cpu_pct);
                c.mem_last_pct = Some(mem_pct);
                // A loadmon client sends write_stats and proc_stats just before, so the point
                // has this period's bytes and memory.
                let sample = Sample {
                    t_s: shared.seconds_since_start(arrived),
                    bytes_written: c.bytes_written(),
                    throughput_mb_s: 0.0,
                    cpu_pct,
                    mem_pct,
                    rss_bytes: c.rss_last_bytes,
                };
                let mut previous = c.previous_sample;
                let throughput_mb_s = c.series.record(sample, &mut previous);
                c.previous_sample = previous;
                shared.events.emit(|| EventKind::StatsSample {
                    client_id: id,
                    cpu_pct,
                    mem_pct,
                    rss_bytes: sample.rss_bytes,
                    bytes_written: sample.bytes_written,
                    throughput_mb_s,
                });
                Reply::None
            }
            Message::ProcStats {
                cpu_core_pct,
                rss_bytes,
                process_clients,
            } => {
                if process_clients.is_some() {
                    c.process_clients = process_clients;
                }
                c.proc_reports += 1;
                c.cpu_core_total += cpu_core_pct;
                c.rss_total += rss_bytes as f64;
                c.rss_peak_bytes = c.rss_peak_bytes.max(rss_bytes);
                c.rss_last_bytes = Some(rss_bytes);
                Reply::None
            }
            Message::WriteStats {
                bytes_written,
                chunk_p50_us,
                chunk_p99_us,
            } => {
                c.reported_bytes = Some(bytes_written);
                c.chunk_p50_us = Some(chunk_p50_us);
                c.chunk_p99_us = Some(chunk_p99_us);
                Reply::None
            }
            Message::FileRoll => {
                log.debug(|| format!("{id}: File rolled over"));
                c.files_written = c.files_written.saturating_add(1);
                shared.events.emit(|| EventKind::FileRollover {
                    client_id: id,
                    files_written: c.files_written,
                });
                Reply::None
            }
            Message::Done => {
                let previous = c.status;
                if c.finish(Status::Pass, None) {
                    log.info(format!("{id}: Client finished running tests"));
                    shared.events.emit(|| EventKind::StatusChanged {
                        client_id: id,
                        previous,
                        status: Status::Pass,
                        reason: None,
                    });
                }
                Reply::Close
            }
            Message::Error(reason) => {
                let reason = if reason.is_empty() {
                    "client reported an error".to_string()
                } else {
                    reason
                };
                let previous = c.status;
                if c.finish(Status::Failed, Some(reason.clone())) {
                    log.warn(format!("Client {id} FAILED: {reason}"));
                    shared.events.emit(|| EventKind::StatusChanged {
                        client_id: id,
                        previous,
                        status: Status::Failed,
                        reason: Some(reason.clone()),
                    });
                }
                Reply::Close
            }
            Message::Hello { .. } | Message::Token(_) => {
                log.warn(format!("{id}: ignored {} after get_cid", msg.command()));
                Reply::None
            }
            Message::SetCid(_) | Message::RunTests | Message::Refused(_) => {
                log.warn(format!(
                    "{id}: ignored server-only command {}",
                    msg.command()
                ));
                Reply::None
            }
        }
    }

    fn before_registration(&mut self, msg: Message) -> Reply {
        match msg {
            Message::Hello { major, minor } => {
                let theirs = format!("{major}.{minor}");
                if major != PROTOCOL_VERSION.0 {
                    return Reply::Refuse(format!(
                        "protocol version mismatch: server speaks {}.{}, client speaks {theirs}",
                        PROTOCOL_VERSION.0, PROTOCOL_VERSION.1
                    ));
                }
                self.protocol_version = Some(theirs);
                Reply::Send(Message::Hello {
                    major: PROTOCOL_VERSION.0,
                    minor: PROTOCOL_VERSION.1,
                })
            }
            Message::Token(t) => {
                let ok = match &self.config.token {
                    Some(expected) => bool::from(expected.as_bytes().ct_eq(t.as_bytes())),
                    None => true,
                };
                if !ok {
                    return Reply::Refuse("wrong token".into());
                }
                self.authenticated = true;
                Reply::None
            }
            Message::GetCid => {
                if !self.authenticated {
                    return Reply::Refuse("a token is required (send token:<secret> first)".into());
                }
                let mut st = self.shared.lock();
                let id = st.next_id;
                st.next_id = st.next_id.saturating_add(1);
                let cell = Arc::new(Mutex::new(ClientState::new(
                    id,
                    self.peer,
                    self.protocol_version.clone(),
                )));
                st.clients.insert(id, cell.clone());
                drop(st);
                self.id = Some(id);
                self.cell = Some(cell);
                self.last_heartbeat = Instant::now();
                self.log.info(format!(
                    "Client connection from {}, assigning client id {id}",
                    self.peer
                ));
                self.shared.events.emit(|| EventKind::IdAssigned {
                    client_id: id,
                    peer: self.peer.to_string(),
                });
                Reply::Send(Message::SetCid(id))
            }
            other => {
                self.log.warn(format!(
                    "{}: ignored {} before get_cid",
                    self.peer,
                    other.command()
                ));
                Reply::None
            }
        }
    }
}

/// The answer to one message.
enum Reply {
    None,
    Send(Message),
    Close,
    Refuse(String),
}
