//! The generic client: connect → `get_cid` → `ready` → wait for `run_tests` → run a
//! [`Workload`] → `done`, sending `hb` and stats for the whole run.
//!
//! A workload is the seed's "extend the generic client": implement [`Workload::run`], which the
//! client calls on a blocking thread (never on the async runtime's workers) with a [`Context`]
//! to report file rollovers, written bytes and stats, and to see whether it should stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Nonce, Role};
use crate::config::{self, check_duration, Zero};
use crate::connection::{Connection, FrameError, Parsed};
use crate::error::{Error, Result};
use crate::logging::{EventLog, WarnBudget};

use crate::protocol::{
    round2, Capabilities, Message, ProtocolError, DEFAULT_MAX_LINE_BYTES, PROTOCOL_VERSION,
};
use crate::stats::{ClientCpu, ProcessClient, Sampler};
use crate::units::BYTES_PER_MB;

/// How long a stopped client (cancelled, its server gone) waits for its workload to return: a
/// [`FileWriter`](crate::file_writer::FileWriter) stops within one write of at most
/// [`PIECE_MB`](crate::file_writer::PIECE_MB). Past it the run ends without the workload, whose
/// thread is left behind (stuck in a file system call that does not return: a hung NFS mount);
/// no stop waits on a file system without a bound.
pub const WORKLOAD_STOP_GRACE: Duration = Duration::from_secs(3);

/// Client settings. `Default` gives the seed's (localhost:1234, heartbeat every 5 s, stats every
/// 10 s) plus loadmon's connect retry window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClientConfig {
    /// Server host (default `127.0.0.1`).
    pub host: String,
    /// Server port (default 1234).
    pub port: u16,
    /// Period of `hb` (default 5 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub heartbeat_period: Duration,
    /// Period of `send_stats` (default 10 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub stats_period: Duration,
    /// How long to keep retrying an unreachable server, with backoff; an attempt that gets no
    /// answer (a host dropping SYNs) is given up then too (default 5 s; 0: one attempt, no
    /// retry, as long as the system's connect takes).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub connect_timeout: Duration,
    /// How long to wait for the server's `set_cid`, and with a token for each answer of the
    /// challenge–response before it (default 10 s). After it, `run_tests` is
    /// awaited for as long as the server keeps the connection, as the seed client did: a
    /// fleet server withholds it until its whole fleet is ready.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub handshake_timeout: Duration,
    /// Longest line accepted from the server, bytes (default 4096).
    pub max_line_bytes: usize,
    /// Shared secret, if the server wants one. It is never sent: before `get_cid` the client
    /// proves it knows it, and goes on only if the server proves it knows it too
    /// (challenge–response, [`crate::auth`]); a server that cannot (a server without this
    /// token, an impostor) is an error.
    #[serde(serialize_with = "crate::config::ser::redacted")]
    pub token: Option<String>,
    /// Send the token in clear (`token:<secret>`) to a server that offers no
    /// challenge–response (a loadmon from before it), as such a server wants it; that server
    /// proves nothing, and anyone who can read the traffic learns the token. Default false:
    /// such a server is an error. Needs a `token`.
    pub allow_clear_token: bool,
    /// Where to write the session log file (`client_log_<time>.txt`); `None` for no file.
    pub log_dir: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            host: "127.0.0.1".into(),
            port: 1234,
            heartbeat_period: Duration::from_secs(5),
            stats_period: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            token: None,
            allow_clear_token: false,
            log_dir: None,
        }
    }
}

impl ClientConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        crate::config::check_host("host", &self.host)?;
        config::PEER_PORT.check("port", u64::from(self.port))?;
        for (name, d, zero) in [
            (
                "heartbeat_period",
                self.heartbeat_period,
                config::HEARTBEAT_PERIOD,
            ),
            ("stats_period", self.stats_period, config::STATS_PERIOD),
            (
                "handshake_timeout",
                self.handshake_timeout,
                config::HANDSHAKE_TIMEOUT,
            ),
        ] {
            if d < Duration::from_millis(1) && zero == Zero::Rejected {
                return Err(Error::Config(format!("{name} must be at least 1 ms")));
            }
            check_duration(name, d, zero)?;
        }
        // Zero: one attempt, no retry.
        check_duration(
            "connect_timeout",
            self.connect_timeout,
            config::CONNECT_TIMEOUT,
        )?;
        crate::config::check_wire(self.max_line_bytes, self.token.as_deref())?;
        crate::config::check_clear_token(self.allow_clear_token, self.token.as_deref())
    }
}

/// What a client's workload does once the server says `run_tests`.
///
/// # Examples
/// ```
/// use loadmon::blocking::{run_client, ServerHandle};
/// use loadmon::client::{ClientConfig, Context, Workload};
/// use loadmon::server::ServerConfig;
///
/// struct Sleeper;
/// impl Workload for Sleeper {
///     fn run_time(&self) -> Option<std::time::Duration> {
///         Some(std::time::Duration::from_millis(50))
///     }
///     fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
///         while !ctx.time_is_up() {
///             std::thread::sleep(std::time::Duration::from_millis(5));
///         }
///         ctx.file_rollover()?;
///         Ok(())
///     }
/// }
///
/// let server = ServerHandle::start(ServerConfig { port: 0, ..Default::default() }).unwrap();
/// let result = run_client(ClientConfig { port: server.port(), ..Default::default() }, Sleeper).unwrap();
/// assert_eq!(result.files_written, 1);
/// ```
pub trait Workload: Send + 'static {
    /// Chunk and file size (MiB) announced in `file_stats` before `start`, if any.
    fn file_stats(&self) -> Option<(u64, u64)> {
        None
    }

    /// How long the test is meant to run, if it has a set run time: [`Context::remaining`] and
    /// [`Context::time_is_up`] count down from it.
    fn run_time(&self) -> Option<Duration> {
        None
    }

    /// Runs the test on a blocking thread. Return `Ok` to send `done`; an error is sent to the
    /// server as `error:<message>` (status FAILED) and returned by [`Client::run`].
    ///
    /// # Errors
    /// Whatever went wrong in the workload.
    fn run(&mut self, ctx: &Context) -> Result<()>;
}

/// Counters a workload fills in through its [`Context`].
#[derive(Debug)]
struct Counters {
    files_written: AtomicU64,
    bytes_written: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Counters {
    fn new() -> Self {
        Counters {
            files_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            // 1 µs .. 1 hour at 3 significant digits; these bounds are valid constants.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            ),
        }
    }

    fn percentiles_us(&self) -> Option<(u64, u64)> {
        let h = self.latency_us.lock().ok()?;
        (!h.is_empty()).then(|| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }

    fn write_stats(&self) -> Message {
        let (p50, p99) = self.percentiles_us().unwrap_or((0, 0));
        Message::WriteStats {
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            chunk_p50_us: p50,
            chunk_p99_us: p99,
        }
    }
}

/// What a running workload can see and report. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct Context {
    client_id: u32,
    started: Instant,
    deadline: Option<Instant>,
    tx: mpsc::UnboundedSender<Message>,
    stopped: Arc<AtomicBool>,
    /// Set once the run is over: the context is dead (its reports are refused).
    finished: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Context {
    /// [`Error::State`] once the run is over: a report after it would not reach the server.
    fn alive(&self) -> Result<()> {
        if self.finished.load(Ordering::Acquire) {
            return Err(Error::State(
                "this run is over: its context no longer takes reports".into(),
            ));
        }
        Ok(())
    }

    /// Whether the run is over (the workload returned, or the client gave up): every report
    /// is then refused, and [`Context::is_stopped`] is true.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The id the server assigned.
    pub fn client_id(&self) -> u32 {
        self.client_id
    }

    /// Time since the workload started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the run must end now: the server went away, the client was cancelled, or the
    /// run is over.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Time left of the workload's [`Workload::run_time`] (`None` if it has none; zero once the
    /// run is over).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            if self.is_finished() {
                Duration::ZERO
            } else {
                d.saturating_duration_since(Instant::now())
            }
        })
    }

    /// Whether the run should end: stopped, or the run time is over.
    pub fn time_is_up(&self) -> bool {
        self.is_stopped() || self.remaining().is_some_and(|r| r.is_zero())
    }

    /// Reports one completed file (`file_roll`).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub fn file_rollover(&self) -> Result<()> {
        self.alive()?;
        self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Message::FileRoll);
        Ok(())
    }

    /// Records one write of `bytes` that took `latency` (feeds bytes written, throughput and
    /// the chunk latency percentiles).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub fn record_write(&self, bytes: u64, latency: Duration) -> Result<()> {
        self.alive()?;
        // Saturating: a byte count that cannot be represented stays at the maximum rather
        // than wrapping to a small number.
        let _ =
            self.counters
                .bytes_written
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_add(bytes))
                });
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Ok(mut h) = self.counters.latency_us.lock() {
            h.saturating_record(us);
        }
        Ok(())
    }

    /// Sends a `send_stats` line of the workload's own (in addition to the periodic ones).
    ///
    /// # Errors
    /// [`Error::Config`] if a value is negative or not finite; [`Error::State`] once the run
    /// is over.
    pub fn send_stats(&self, cpu_pct: f64, mem_pct: f64) -> Result<()> {
        self.alive()?;
        if !(cpu_pct.is_finite()
            && cpu_pct >= 0.0
            && mem_pct.is_finite()
            && (0.0..=100.0).contains(&mem_pct))
        {
            return Err(Error::Config(format!(
                "send_stats needs finite values with cpu_pct >= 0 and 0 <= mem_pct <= 100, got {cpu_pct}, {mem_pct}"
            )));
        }
        let _ = self.tx.send(Message::SendStats {
            cpu_pct: round2(cpu_pct),
            mem_pct: round2(mem_pct),
        });
        Ok(())
    }

    /// Files reported so far.
    pub fn files_written(&self) -> u64 {
        self.counters.files_written.load(Ordering::Relaxed)
    }

    /// Bytes reported so far.
    pub fn bytes_written(&self) -> u64 {
        self.counters.bytes_written.load(Ordering::Relaxed)
    }
}

/// What a finished client run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientResult {
    /// The id the server assigned.
    pub client_id: u32,
    /// Whole files written.
    pub files_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Seconds the workload ran.
    pub run_time_s: f64,
    /// Bytes written in MiB per second of run time.
    pub throughput_mb_s: f64,
    /// Median chunk write latency, milliseconds (`None` if nothing was recorded).
    pub chunk_p50_ms: Option<f64>,
    /// 99th percentile chunk write latency, milliseconds.
    pub chunk_p99_ms: Option<f64>,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// `send_stats` lines sent.
    pub stats_sent: u64,
}

impl ClientResult {
    /// The result as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A live view of a client's run, for progress bars: see [`Client::progress`].
#[derive(Debug, Clone, Default)]
pub struct Progress {
    run: Arc<Mutex<Option<RunProgress>>>,
}

#[derive(Debug, Clone)]
struct RunProgress {
    client_id: u32,
    started: Instant,
    run_time: Option<Duration>,
    counters: Arc<Counters>,
}

/// What [`Progress::get`] returns while a workload runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressSnapshot {
    /// The id the server assigned.
    pub client_id: u32,
    /// Time since the workload started.
    pub elapsed: Duration,
    /// The workload's run time, if it has one.
    pub run_time: Option<Duration>,
    /// Bytes written so far.
    pub bytes_written: u64,
    /// Files finished so far.
    pub files_written: u64,
}

impl ProgressSnapshot {
    /// Average MiB/s since the workload started.
    pub fn throughput_mb_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes_written as f64 / BYTES_PER_MB / s
        } else {
            0.0
        }
    }
}

impl Progress {
    /// The run's figures so far; `None` before the workload starts.
    pub fn get(&self) -> Option<ProgressSnapshot> {
        let run = self.run.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        Some(ProgressSnapshot {
            client_id: run.client_id,
            elapsed: run.started.elapsed(),
            run_time: run.run_time,
            bytes_written: run.counters.bytes_written.load(Ordering::Relaxed),
            files_written: run.counters.files_written.load(Ordering::Relaxed),
        })
    }

    fn set(&self, run: RunProgress) {
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
    }
}

/// The generic client.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    cancel: CancellationToken,
    progress: Progress,
}

/// Lines from the server a client ignores, logged within a budget; what the budget kept out
/// of the log is counted in one line when the phase ends.
struct Ignored<'a> {
    log: &'a EventLog,
    budget: WarnBudget,
}

impl<'a> Ignored<'a> {
    fn new(log: &'a EventLog) -> Self {
        Ignored {
            log,
            budget: WarnBudget::new(tokio::time::Instant::now()),
        }
    }

    fn warn(&mut self, msg: String) {
        self.log.warn_ignored(&mut self.budget, msg);
    }

    /// A line that was not what the client waited for.
    fn parsed(&mut self, parsed: &Parsed) {
        match parsed {
            Ok(other) => self.warn(format!("ignored {} from the server", other.command())),
            Err(e) => self.warn(format!("ignored line from the server: {e}")),
        }
    }
}

impl Drop for Ignored<'_> {
    fn drop(&mut self) {
        self.log.ignored_summary(&mut self.budget);
    }
}

/// One connection attempt to `addr`, given up at `give_up`: a host that drops SYNs (down,
/// firewalled, a full accept queue) would otherwise hold one attempt for the kernel's SYN
/// retries (about 2 minutes on Linux), whatever `connect_timeout` says. With no time left
/// (`connect_timeout` 0: one attempt), the attempt takes as long as the system's connect.
async fn connect_by(addr: &str, give_up: Instant) -> std::io::Result<TcpStream> {
    let left = give_up.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return TcpStream::connect(addr).await;
    }
    tokio::time::timeout(left, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer to the connection attempt",
            ))
        })
}

impl Client {
    /// A client with `config` (validated here).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting.
    pub fn new(config: ClientConfig) -> Result<Client> {
        config.validate()?;
        Ok(Client {
            config,
            cancel: CancellationToken::new(),
            progress: Progress::default(),
        })
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A live view of the run (for a progress bar), usable from any thread.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// A token that, when cancelled, stops the run (the workload sees
    /// [`Context::is_stopped`]; the server gets `error:interrupted`).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Connects, runs `workload` after `run_tests`, and returns the result after `done`.
    ///
    /// # Cancellation
    /// [`Client::cancel_token`] ends a run in order: the workload sees [`Context::is_stopped`],
    /// the server gets `error:…interrupted` (FAILED), and the run returns
    /// [`Error::Interrupted`]. Dropping the future instead (a `tokio::time::timeout`, a
    /// `select!` branch not taken) ends it at once: the connection is closed (the server
    /// records the client ABORTED), and the workload is told to stop ([`Context::is_stopped`]
    /// and [`Context::is_finished`] become true) and left to return on its blocking thread. A
    /// runtime shutting down waits for that thread, so a workload that checks its context
    /// between writes, as [`FileWriter`](crate::file_writer::FileWriter) does, lets the program
    /// end within one write.
    ///
    /// # Examples
    /// ```
    /// use loadmon::client::{Client, ClientConfig, Context, Workload};
    /// use loadmon::server::{Server, ServerConfig};
    /// use std::time::Duration;
    ///
    /// /// Runs until it is stopped.
    /// struct UntilStopped;
    /// impl Workload for UntilStopped {
    ///     fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
    ///         while !ctx.is_stopped() {
    ///             std::thread::sleep(Duration::from_millis(1));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> loadmon::Result<()> {
    /// let server = Server::bind(ServerConfig { port: 0, ..Default::default() }).await?;
    /// let port = server.local_addr().port();
    /// tokio::spawn(server.run());
    ///
    /// let client = Client::new(ClientConfig { port, ..Default::default() })?;
    /// // A workload without an end of its own: the caller gives up on it after 200 ms, and
    /// // the workload stops (else this program would never end).
    /// let run = tokio::time::timeout(Duration::from_millis(200), client.run(UntilStopped));
    /// assert!(run.await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Net`] if the server cannot be reached within `connect_timeout`,
    /// [`Error::Refused`], [`Error::VersionMismatch`], [`Error::Protocol`] for a bad server
    /// line (a non-numeric client id, say), [`Error::Disconnected`] if the server goes away,
    /// [`Error::Interrupted`] if cancelled, or the workload's own error.
    pub async fn run<W: Workload>(&self, workload: W) -> Result<ClientResult> {
        let log = Arc::new(EventLog::open("client", self.config.log_dir.as_deref())?);
        if let Some(p) = log.path() {
            log.debug(|| format!("Logging to {}", p.display()));
        }
        let mut conn = self.connect(&log).await?;
        let client_id = match self.handshake(&mut conn, &log).await {
            Ok(id) => id,
            Err(e) => {
                log.warn(format!("Client shutting down: {e}"));
                conn.close(Duration::from_millis(200)).await;
                return Err(e);
            }
        };
        let result = self
            .run_workload(&mut conn, &log, client_id, workload)
            .await;
        conn.close(Duration::from_millis(500)).await;
        match &result {
            Ok(r) => log.info(format!(
                "Client id {client_id} done: {} file(s), {} bytes, {:.2} MB/s",
                r.files_written, r.bytes_written, r.throughput_mb_s
            )),
            Err(e) => log.warn(format!("Client id {client_id} shutting down: {e}")),
        }
        result
    }

    /// Tells the server that this client cannot run: connects, gets an id, announces
    /// `file_stats` (if any) and sends `error:<reason>` instead of `start`. The server records
    /// the client as FAILED with that reason and a time ran of 0. (The seed's client refused to
    /// start without telling its server, so its failure was missing from the report.)
    ///
    /// Returns the id the server gave the client.
    ///
    /// # Errors
    /// As [`Client::run`] for the connection and the handshake.
    pub async fn report_failure(
        &self,
        file_stats: Option<(u64, u64)>,
        reason: &str,
    ) -> Result<u32> {
        let log = EventLog::open("client", self.config.log_dir.as_deref())?;
        let mut conn = self.connect(&log).await?;
        let result = async {
            let id = self.handshake(&mut conn, &log).await?;
            if let Some((chunk, file)) = file_stats {
                conn.feed(&Message::FileStats {
                    chunk_size_mb: chunk,
                    file_size_mb: file,
                });
            }
            conn.send(&Message::Error(reason.to_string()))
                .await
                .map_err(|e| Error::from_frame(e, "send to the server"))?;
            log.warn(format!("Client id {id} could not run: {reason}"));
            Ok(id)
        }
        .await;
        conn.close(Duration::from_millis(500)).await;
        result
    }

    /// Connects to the server, retrying with backoff for `connect_timeout`.
    pub(crate) async fn connect(&self, log: &EventLog) -> Result<Connection> {
        let addr = format!("{}:{}", self.config.host, self.config.port);
        let give_up = Instant::now() + self.config.connect_timeout;
        let mut backoff = Duration::from_millis(50);
        loop {
            let attempt = tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(Error::Interrupted(format!("while connecting to {addr}")));
                }
                r = connect_by(&addr, give_up) => r,
            };
            match attempt {
                Ok(stream) => {
                    log.info(format!("Connected to server {addr}"));
                    return Ok(Connection::new(stream, self.config.max_line_bytes));
                }
                Err(e) if Instant::now() + backoff < give_up => {
                    log.debug(|| format!("connect {addr}: {e}; retrying in {backoff:?}"));
                    tokio::select! {
                        _ = self.cancel.cancelled() => {
                            return Err(Error::Interrupted(format!("while connecting to {addr}")));
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(Error::net(
                        format!(
                            "connect {addr} (retried for {:.1} s)",
                            self.config.connect_timeout.as_secs_f64()
                        ),
                        e,
                    ))
                }
            }
        }
    }

    /// Sends `hello`, `get_cid`, `ready`; returns the id once `run_tests` arrived. With a
    /// token, the `hello` exchange and the challenge–response come first ([`Client::hello`]).
    async fn handshake(&self, conn: &mut Connection, log: &EventLog) -> Result<u32> {
        let ctx = "handshake with the server";
        let (major, minor) = PROTOCOL_VERSION;
        // Lines from the server that are ignored are logged within a budget.
        let mut ignored = Ignored::new(log);
        if self.config.token.is_some() {
            let said = self
                .hello(conn, Capabilities::NONE, &mut |p| ignored.parsed(p))
                .await;
            match said {
                Ok(_) => {}
                // A seed server answers nothing to hello (and knows no token).
                Err(Error::Timeout(m)) if m.starts_with("no answer to hello") => {
                    return Err(Error::Timeout(format!(
                        "{m}: a client with a token needs a loadmon server (a seed server \
                         takes no token)"
                    )))
                }
                Err(e) => return Err(e),
            }
        } else {
            // Without a token nothing waits for the answer: a seed server sends none.
            conn.feed(&Message::Hello {
                major,
                minor,
                caps: Capabilities::NONE,
            });
        }
        conn.feed(&Message::GetCid);
        conn.feed(&Message::Ready);
        conn.flush().await.map_err(|e| Error::from_frame(e, ctx))?;

        let deadline = tokio::time::Instant::now() + self.config.handshake_timeout;
        let mut client_id = None;
        loop {
            let parsed = tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(Error::Interrupted("during the handshake".into()));
                }
                // Until the id; then run_tests may take as long as the fleet needs.
                _ = tokio::time::sleep_until(deadline), if client_id.is_none() => {
                    return Err(Error::Timeout(format!(
                        "no set_cid from the server within {:.1} s",
                        self.config.handshake_timeout.as_secs_f64()
                    )));
                }
                m = conn.read_message() => m.map_err(|e| Error::from_frame(e, ctx))?,
            };
            let Some(parsed) = parsed else {
                return Err(Error::Disconnected(
                    "the server closed the connection during the handshake".into(),
                ));
            };
            match parsed {
                Ok(Message::Hello {
                    major: m, minor: n, ..
                }) => {
                    if m != major {
                        return Err(Error::VersionMismatch {
                            ours: format!("{major}.{minor}"),
                            theirs: format!("{m}.{n}"),
                        });
                    }
                    log.debug(|| format!("server speaks protocol {m}.{n}"));
                }
                // The reason is the peer's text: escaped before it reaches a terminal or a log.
                Ok(Message::Refused(reason)) => {
                    return Err(Error::Refused(
                        crate::text::escape_control(&reason).into_owned(),
                    ))
                }
                Ok(Message::SetCid(id)) => {
                    log.info(format!("Client id received from server: {id}"));
                    client_id = Some(id);
                }
                Ok(Message::RunTests) => match client_id {
                    Some(id) => {
                        log.info("Test run request received from server");
                        return Ok(id);
                    }
                    None => {
                        return Err(Error::Disconnected(
                            "the server sent run_tests before set_cid".into(),
                        ))
                    }
                },
                // The id goes into file names: anything but a number is refused.
                Err(e) if e.command() == Some("set_cid") => {
                    return Err(Error::Protocol(e));
                }
                Ok(other) => ignored.warn(format!("ignored {} from the server", other.command())),
                Err(e) => ignored.warn(format!("ignored line from the server: {e}")),
            }
        }
    }

    /// Sends `hello` with `caps` (and `auth` with a token) and waits for the server's answer;
    /// returns the capabilities the server answered with. With a token, then authenticates
    /// both ways before anything else: answers the server's challenge and checks the server's
    /// proof (or, to a server that offers no challenge–response and only when
    /// [`ClientConfig::allow_clear_token`] says so, sends the token in clear). Lines that are
    /// not awaited go to `ignored`.
    ///
    /// # Errors
    /// [`Error::Protocol`] ([`ProtocolError::Auth`]) if the server does not prove it knows
    /// the token; [`Error::Refused`] for a refusal (a wrong token);
    /// [`Error::VersionMismatch`]; [`Error::Timeout`] if an answer does not come within the
    /// handshake timeout; as [`Client::run`] for the connection.
    pub(crate) async fn hello(
        &self,
        conn: &mut Connection,
        caps: Capabilities,
        ignored: &mut (dyn FnMut(&Parsed) + Send),
    ) -> Result<Capabilities> {
        let (major, minor) = PROTOCOL_VERSION;
        let token = self.config.token.as_deref();
        let caps = match token {
            Some(_) => caps.union(Capabilities::AUTH),
            None => caps,
        };
        conn.send(&Message::Hello { major, minor, caps })
            .await
            .map_err(|e| Error::from_frame(e, "handshake with the server"))?;
        let theirs = self
            .next_line(conn, "answer to hello", ignored, |m| match m {
                Ok(Message::Hello {
                    major: m,
                    minor: n,
                    caps,
                }) => Some(if *m == major {
                    Ok(*caps)
                } else {
                    Err(Error::VersionMismatch {
                        ours: format!("{major}.{minor}"),
                        theirs: format!("{m}.{n}"),
                    })
                }),
                _ => None,
            })
            .await?;
        let Some(token) = token else {
            return Ok(theirs);
        };
        let addr = format!("{}:{}", self.config.host, self.config.port);
        if !theirs.contains(Capabilities::AUTH) {
            if self.config.allow_clear_token {
                // An older loadmon server: it wants the token itself.
                conn.send(&Message::Token(token.to_string()))
                    .await
                    .map_err(|e| Error::from_frame(e, "handshake with the server"))?;
                return Ok(theirs);
            }
            return Err(unproven(format!(
                "the server at {addr} offers no challenge-response (a loadmon from before it, \
                 or a server without a token), so it cannot prove it knows the token; \
                 --allow-clear-token (allow_clear_token) sends the token in clear to such a \
                 server"
            )));
        }
        // Nothing the server says before its proof is taken: not a plan, not an id.
        let early = |m: &Message| -> Option<Error> {
            matches!(
                m,
                Message::Plan { .. } | Message::SetCid(_) | Message::RunTests
            )
            .then(|| {
                unproven(format!(
                    "the server at {addr} sent {} before proving it knows the token",
                    m.command()
                ))
            })
        };
        let server_nonce = self
            .next_line(conn, "challenge", ignored, |m| match m {
                Ok(Message::Challenge(n)) => Some(Ok(*n)),
                Ok(other) => early(other).map(Err),
                Err(e) if e.command() == Some("challenge") => Some(Err(Error::Protocol(e.clone()))),
                Err(_) => None,
            })
            .await?;
        let client_nonce = Nonce::random()?;
        conn.send(&Message::Auth {
            nonce: client_nonce,
            proof: auth::prove(token, Role::Client, &server_nonce, &client_nonce),
        })
        .await
        .map_err(|e| Error::from_frame(e, "handshake with the server"))?;
        let proof = self
            .next_line(conn, "auth_ok", ignored, |m| match m {
                Ok(Message::AuthOk(p)) => Some(Ok(Some(*p))),
                Ok(other) => early(other).map(Err),
                Err(e) if e.command() == Some("auth_ok") => Some(Ok(None)),
                Err(_) => None,
            })
            .await?;
        match proof {
            Some(p) if auth::verify(token, Role::Server, &server_nonce, &client_nonce, &p) => {
                Ok(theirs)
            }
            _ => Err(unproven(format!(
                "the server at {addr} did not prove it knows the token (its auth_ok does not \
                 match): it is not the server with this token"
            ))),
        }
    }

    /// Reads lines until `want` takes one (`Some`), within the handshake timeout; a refusal
    /// and the end of the connection are errors, other lines go to `ignored`.
    async fn next_line<T>(
        &self,
        conn: &mut Connection,
        what: &str,
        ignored: &mut (dyn FnMut(&Parsed) + Send),
        want: impl Fn(&Parsed) -> Option<Result<T>>,
    ) -> Result<T> {
        let timeout = self.config.handshake_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let parsed = tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(Error::Interrupted("during the handshake".into()));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout(format!(
                        "no {what} from the server within {:.1} s",
                        timeout.as_secs_f64()
                    )));
                }
                m = conn.read_message() => {
                    m.map_err(|e| Error::from_frame(e, "handshake with the server"))?
                }
            };
            let Some(parsed) = parsed else {
                return Err(Error::Disconnected(format!(
                    "the server closed the connection while the client waited for {what}"
                )));
            };
            if let Ok(Message::Refused(reason)) = &parsed {
                // The reason is the peer's text: escaped before it reaches a terminal or a log.
                return Err(Error::Refused(
                    crate::text::escape_control(reason).into_owned(),
                ));
            }
            if let Some(r) = want(&parsed) {
                return r;
            }
            ignored(&parsed);
        }
    }

    /// Runs `workload` once `run_tests` has arrived on `conn` (client id `client_id`):
    /// `file_stats`, `start`, heartbeats and stats, then `done` or `error:<reason>`.
    pub(crate) async fn run_workload<W: Workload>(
        &self,
        conn: &mut Connection,
        log: &Arc<EventLog>,
        client_id: u32,
        mut workload: W,
    ) -> Result<ClientResult> {
        let ctx_str = "send to the server";
        let io = |e: FrameError| Error::from_frame(e, ctx_str);
        if let Some((chunk, file)) = workload.file_stats() {
            conn.feed(&Message::FileStats {
                chunk_size_mb: chunk,
                file_size_mb: file,
            });
        }
        conn.send(&Message::Start).await.map_err(io)?;
        log.info("Running tests...");

        let (tx, mut rx) = mpsc::unbounded_channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::new());
        let started = Instant::now();
        let mut ignored = Ignored::new(log);
        self.progress.set(RunProgress {
            client_id,
            started,
            run_time: workload.run_time(),
            counters: counters.clone(),
        });
        let ctx = Context {
            client_id,
            started,
            // A run time too long to add to now has no deadline (validated settings are
            // at most 10^9 s).
            deadline: workload.run_time().and_then(|t| started.checked_add(t)),
            tx,
            stopped: stopped.clone(),
            finished: finished.clone(),
            counters: counters.clone(),
        };
        // This client's CPU: its writer thread, and each piece of the work below (see
        // `crate::stats`). Its memory is the process's, shared with the other clients
        // registered in it (the sampler holds this one's registration for the whole run).
        let cpu = ClientCpu::new();
        let mut sampler = Sampler::for_client(cpu.clone(), ProcessClient::register());
        let writer_cpu = cpu.clone();
        let work = tokio::task::spawn_blocking(move || {
            let _writer = writer_cpu.enter_writer();
            // A panic in user code must not unwind through the runtime: it becomes an error.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workload.run(&ctx)))
                .unwrap_or_else(|p| Err(Error::Workload(panic_message(&p))))
        });
        // However this future ends (dropped by a timeout or a select! included), the workload
        // is told to stop before its thread is let go.
        let mut running = Running {
            work,
            stopped: stopped.clone(),
            finished: finished.clone(),
            joined: false,
            log: log.clone(),
        };

        // The seed's rhythm: the first heartbeat one period after the start, the first stats
        // one stats period after it (each of its loops slept first).
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.heartbeat_period,
            self.config.heartbeat_period,
        );
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stats = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.stats_period,
            self.config.stats_period,
        );
        stats.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut heartbeats_sent, mut stats_sent) = (0u64, 0u64);
        let mut trouble: Option<Error> = None;
        let mut server_open = true;
        // Once stopped, the workload gets WORKLOAD_STOP_GRACE to return.
        let mut stop_deadline: Option<tokio::time::Instant> = None;

        let outcome = loop {
            if stop_deadline.is_none() && stopped.load(Ordering::Relaxed) {
                stop_deadline = Some(tokio::time::Instant::now() + WORKLOAD_STOP_GRACE);
            }
            tokio::select! {
                joined = &mut running.work => {
                    running.joined = true;
                    break joined.unwrap_or_else(|e| Err(Error::Internal(format!("workload task: {e}"))));
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(tokio::time::Instant::now)), if stop_deadline.is_some() => {
                    log.warn(format!(
                        "the workload did not return within {} s of the stop (stuck in a file \
                         system call?): the run ends without it, its thread is left behind",
                        WORKLOAD_STOP_GRACE.as_secs_f64()
                    ));
                    break Err(trouble.take().unwrap_or_else(|| {
                        Error::Interrupted("client run stopped".into())
                    }));
                }
                _ = self.cancel.cancelled(), if trouble.is_none() => {
                    stopped.store(true, Ordering::Relaxed);
                    trouble = Some(Error::Interrupted("client run cancelled".into()));
                }
                Some(msg) = rx.recv() => {
                    let work = cpu.start_work();
                    if server_open {
                        if let Err(e) = conn.send(&msg).await {
                            server_open = false;
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(io(e));
                        }
                    }
                    cpu.end_work(work);
                }
                _ = heartbeat.tick(), if server_open => {
                    let work = cpu.start_work();
                    match conn.send(&Message::Heartbeat).await {
                        Ok(()) => { heartbeats_sent += 1; log.debug(|| "Heartbeat sent to server".into()); }
                        Err(e) => {
                            server_open = false;
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(io(e));
                        }
                    }
                    cpu.end_work(work);
                }
                _ = stats.tick(), if server_open => {
                    let work = cpu.start_work();
                    let s = sampler.sample();
                    for m in &stats_batch(&counters, &s) {
                        conn.feed(m);
                    }
                    match conn.flush().await {
                        Ok(()) => {
                            stats_sent += 1;
                            log.debug(|| format!("Performance stats sent to server (CPU={:.2} MEM={:.2})", s.cpu_pct, s.mem_pct));
                        }
                        Err(e) => {
                            server_open = false;
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(io(e));
                        }
                    }
                    cpu.end_work(work);
                }
                msg = conn.read_message(), if server_open => {
                    let work = cpu.start_work();
                    match msg {
                        Ok(Some(Ok(Message::Refused(r)))) => {
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(Error::Refused(crate::text::escape_control(&r).into_owned()));
                        }
                        Ok(Some(other)) => {
                            ignored.warn(format!("ignored line from the server during the run: {other:?}"));
                        }
                        Ok(None) => {
                            server_open = false;
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(Error::Disconnected(
                                "the server closed the connection during the run".into(),
                            ));
                        }
                        Err(e) => {
                            server_open = false;
                            stopped.store(true, Ordering::Relaxed);
                            trouble.get_or_insert(Error::from_frame(e, "read from the server"));
                        }
                    }
                    cpu.end_work(work);
                }
            }
        };
        let run_time_s = started.elapsed().as_secs_f64();
        // The context is dead from here: a thread the workload left behind sees it stopped,
        // and its reports are refused rather than silently lost.
        stopped.store(true, Ordering::Relaxed);
        finished.store(true, Ordering::Release);

        // Whatever the workload queued (its last file_roll) goes out before the verdict.
        rx.close();
        let mut tail = Vec::new();
        while let Ok(m) = rx.try_recv() {
            tail.push(m);
        }
        let verdict = match (outcome, trouble) {
            (Err(e), _) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        };
        if server_open {
            // One last stats sample, so that every run has CPU, memory and bytes, however
            // short: a run shorter than the stats period has this one only.
            let s = sampler.sample();
            tail.extend(stats_batch(&counters, &s));
            stats_sent += 1;
            tail.push(match &verdict {
                Ok(()) => Message::Done,
                Err(e) => Message::Error(e.to_string()),
            });
            for m in &tail {
                conn.feed(m);
            }
            if let (Err(e), Ok(())) = (conn.flush().await, &verdict) {
                return Err(io(e));
            }
        }
        verdict?;
        let bytes_written = counters.bytes_written.load(Ordering::Relaxed);
        let pct = counters.percentiles_us();
        Ok(ClientResult {
            client_id,
            files_written: counters.files_written.load(Ordering::Relaxed),
            bytes_written,
            run_time_s,
            throughput_mb_s: if run_time_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / run_time_s
            } else {
                0.0
            },
            chunk_p50_ms: pct.map(|p| p.0 as f64 / 1000.0),
            chunk_p99_ms: pct.map(|p| p.1 as f64 / 1000.0),
            heartbeats_sent,
            stats_sent,
        })
    }
}

/// A run's workload on its blocking thread. Dropped with the run (its end, or its future
/// dropped), it stops the workload first: [`Context::is_stopped`] and
/// [`Context::is_finished`] become true, so the workload returns at its next check and the
/// runtime can shut down; only then is the thread let go (detached: a blocking thread cannot be
/// cancelled, and a `Drop` cannot wait).
struct Running {
    work: tokio::task::JoinHandle<Result<()>>,
    stopped: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    /// Whether the workload has returned.
    joined: bool,
    log: Arc<EventLog>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.finished.store(true, Ordering::Release);
        if !self.joined {
            self.log.warn(
                "Client run cancelled (its future was dropped): the workload was told to stop",
            );
        }
        // `work` is dropped after this: the thread is detached once the stop is set.
    }
}

/// One stats sample as the three lines a loadmon client sends: `send_stats` last, because the
/// server takes its time-series point on it, with the bytes and memory of the two lines before.
fn stats_batch(counters: &Counters, s: &crate::stats::Sample) -> [Message; 3] {
    [
        counters.write_stats(),
        Message::ProcStats {
            cpu_core_pct: round2(s.cpu_core_pct),
            rss_bytes: s.rss_bytes,
            process_clients: Some(s.process_clients.max(1)),
        },
        Message::SendStats {
            cpu_pct: round2(s.cpu_pct),
            mem_pct: round2(s.mem_pct),
        },
    ]
}

/// The error for a server that did not authenticate.
fn unproven(why: String) -> Error {
    Error::Protocol(ProtocolError::Auth(why))
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}
