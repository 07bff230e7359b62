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
//! use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
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
//!     chunk_size_bytes: 1 << 20,
//!     file_size_bytes: 1 << 20,
//!     min_chunk_size_bytes: 1 << 20,
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
//! From the bottom up; each uses only those above it.
//! - `config`: the settings ([`ServerConfig`], [`FleetConfig`], [`HttpLimits`]) and their
//!   rules; no I/O, no state.
//! - `barrier`, `guard`, `signal` (private): fleet mode's start barrier, failed token
//!   attempts per address, the one-shot signals to every connection; no I/O.
//! - `record` (private): one client's record — its report row
//!   ([`ClientReport`](crate::report::ClientReport)), kept up to date, and the live-only
//!   figures behind it.
//! - `session` (private): one peer's protocol state, no I/O — `(state, message, now)
//!   -> step`; every status change happens there.
//! - `shared` (private): what every connection and control shares — the records, the ids and
//!   slots ([`FleetStatus`] too), the counters, the signals; the report is built there.
//! - `conn` (private): the connection driver — reads and writes never block each other;
//!   replies go through a bounded outbound queue with a write deadline.
//! - `accept` (private): admission — a small, short-lived budget for connections still in
//!   the handshake; a `max_clients` slot and an id only at `get_cid`, after the token.
//! - [`ServerControl`] (`control`): the handle on a running server.
//! - this module: [`Server`] — binding, the run, the report files and the HTTP listener's
//!   task.
//!
//! # Fleet mode
//! With [`ServerConfig::fleet`], the server hands every worker the same [`Plan`](crate::plan::Plan) and starts
//! the fleet together: `run_tests` is withheld until [`FleetConfig::expect_clients`] clients
//! are ready (or the [`FleetConfig::start_timeout`] ends), then sent to all of them at once.
//! A client that comes after the start is refused (`refused:run already started: …`), so that
//! every client in the report started together; a ready client that goes away before the
//! start does not count. Seed clients and plain loadmon clients join the barrier with their own
//! parameters (they never get a plan). See `docs/PROTOCOL.md`.

mod accept;
mod barrier;
mod clock;
mod config;
mod conn;
mod control;
mod guard;
#[cfg(feature = "http")]
mod http;
mod record;
mod session;
mod shared;
mod signal;
mod thresholds;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[cfg(feature = "http")]
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::logging::EventLog;
use crate::report::{Report, ReportFiles};

pub use config::{
    FleetConfig, FleetOptionsGiven, HttpLimits, ServerConfig, MAX_CONNECTIONS_LIMIT, MAX_DURATION,
    MAX_HTTP_ALLOW_HOSTS, MAX_IDS_LIMIT, MAX_KEPT_FINDING_TEXT_BYTES, MAX_LINE_BYTES_LIMIT,
};
pub use control::ServerControl;
pub use shared::FleetStatus;
use shared::Shared;

/// An id for this run, sent with the plan: the wall clock in ns and the process id, so that
/// two runs (one after the other on a port, or side by side) have different ones.
fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    static RUNS: AtomicU64 = AtomicU64::new(0);
    nanos ^ (u64::from(std::process::id()) << 40) ^ RUNS.fetch_add(1, Ordering::Relaxed)
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
        if let Some(f) = &config.fleet {
            log.info(format!(
                "Fleet mode: waiting for {} client(s){}; each worker's plan: {}{}",
                f.expect_clients,
                f.start_timeout.map_or(String::new(), |t| format!(
                    " (or {:.1} s, then starting whoever is ready)",
                    t.as_secs_f64()
                )),
                f.worker_plan(),
                f.plan.rate_mb_s.map_or(String::new(), |r| format!(
                    " (its share of the fleet's {r} MB/s)"
                ))
            ));
        }
        let thresholds = thresholds::Thresholds::load(&config)?;
        let shared = Arc::new(Shared::new(
            config,
            log,
            local_addr,
            run_id(),
            Instant::now(),
            thresholds,
        ));
        let http = bind_http(&shared).await?;
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
        ServerControl::new(self.shared.clone())
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
        watch_thresholds(&shared);
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
            let intervals = shared.fleet_latency().intervals();
            tokio::task::spawn_blocking(move || {
                write_report_files(&report_files, &r, &intervals, &log)
            })
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

/// Checks the thresholds of `shared` every [`thresholds::CHECK_PERIOD`] until its run is over (a task
/// on the server's runtime; nothing without thresholds).
fn watch_thresholds(shared: &Arc<Shared>) {
    if shared.thresholds.is_none() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(thresholds::CHECK_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.finished.cancelled() => return,
                () = shared.stop.cancelled() => return,
            }
            shared.check_thresholds(Instant::now());
        }
    });
}

/// Binds the HTTP listener if the configuration asks for one (served once the server runs).
async fn bind_http(shared: &Shared) -> Result<Option<TcpListener>> {
    #[cfg(feature = "http")]
    if let Some(addr) = &shared.config.http {
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
        return Ok(Some(l));
    }
    // Without the feature the setting is a configuration error: never here.
    #[cfg(not(feature = "http"))]
    let _ = shared;
    Ok(None)
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
                    let intervals = self.shared.fleet_latency().intervals();
                    let _ = write_report_files(files, &report, &intervals, &self.shared.log);
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
        let serve = http::serve(
            l,
            ServerControl::new(shared.clone()),
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
    intervals: &[crate::latency::LatencyInterval],
    log: &crate::logging::EventLog,
) -> Result<()> {
    let mut written = Ok(());
    for (kind, path, r) in files.write_with_latency(report, intervals) {
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
    use crate::plan::Plan;
    use std::time::Duration;
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
}
