//! The generic client: connect → `get_cid` → `ready` → wait for `run_tests` → run a
//! [`Workload`] → `done`, sending `hb` and stats for the whole run.
//!
//! The client runs any [`Workload`] (its trait and [`Context`](crate::workload::Context) live in [`crate::workload`],
//! below this module) and knows none: the file writer is one of them.
//!
//! - `connect`: reaching the server, with retries.
//! - `handshake`: the one handshake every client speaks (`hello` and the token's
//!   challenge–response, `get_cid`), for the generic client and the fleet worker alike.
//! - `run`: a workload's run (`start`, heartbeats, stats, `done`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::{self, check_duration, Zero};
use crate::connection::Parsed;
use crate::error::{Error, Result};
use crate::logging::{EventLog, WarnBudget};
use crate::protocol::{Message, DEFAULT_MAX_LINE_BYTES};
use crate::units::BYTES_PER_MB;
use crate::workload::Counters;

mod connect;
mod handshake;
mod run;

use crate::workload::Workload;
pub(crate) use handshake::{refusal, Handshake};

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
    /// The checks of the written data (`verify`), `None` when the workload checks none
    /// (`verify = none`, or a workload without verified data).
    #[serde(default)]
    pub verify: Option<VerifyResult>,
}

/// What a client's checks of its written data found (`verify = rollover|end`): its
/// [`ClientResult::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    /// Files checked.
    pub files_checked: u64,
    /// Blocks checked.
    pub blocks_checked: u64,
    /// Bad blocks by class (short: blocks missing).
    pub errors: crate::verify::ClassCounts,
    /// All bad blocks.
    pub errors_total: u64,
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
            bytes_written: run.counters.bytes_written(),
            files_written: run.counters.files_written(),
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
    /// [`Context::is_stopped`](crate::workload::Context::is_stopped); the server gets `error:interrupted`).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Connects, runs `workload` after `run_tests`, and returns the result after `done`.
    ///
    /// # Cancellation
    /// [`Client::cancel_token`] ends a run in order: the workload sees [`Context::is_stopped`](crate::workload::Context::is_stopped),
    /// the server gets `error:…interrupted` (FAILED), and the run returns
    /// [`Error::Interrupted`]. Dropping the future instead (a `tokio::time::timeout`, a
    /// `select!` branch not taken) ends it at once: the connection is closed (the server
    /// records the client ABORTED), and the workload is told to stop ([`Context::is_stopped`](crate::workload::Context::is_stopped)
    /// and [`Context::is_finished`](crate::workload::Context::is_finished) become true) and left to return on its blocking thread. A
    /// runtime shutting down waits for that thread, so a workload that checks its context
    /// between writes, as the file writer does, lets the program end within one write.
    ///
    /// # Examples
    /// ```
    /// use loadmon::client::{Client, ClientConfig};
    /// use loadmon::server::{Server, ServerConfig};
    /// use loadmon::workload::{Context, Workload};
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
        let (client_id, loadmon_server) = match self.handshake(&mut conn, &log).await {
            Ok(answer) => answer,
            Err(e) => {
                log.warn(format!("Client shutting down: {e}"));
                conn.close(Duration::from_millis(200)).await;
                return Err(e);
            }
        };
        let result = self
            .run_workload(&mut conn, &log, client_id, loadmon_server, workload)
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
            let (id, _) = self.handshake(&mut conn, &log).await?;
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
}
