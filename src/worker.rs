//! A fleet worker: connects to a fleet server, takes its plan, checks it, waits for the start
//! with the rest of the fleet and runs the file writer ([`crate::workload::file_writer`]) with the plan's
//! parameters. With [`WorkerConfig::stay`] it comes back for the next run until stopped.
//!
//! One run, on the wire (see `docs/PROTOCOL.md`):
//!
//! ```text
//! worker                                   fleet server
//!   hello:1.0:plan,ping   (hello:1.0:plan,ping,auth with a token)
//!                          ◀── hello:1.0:plan,ping  (a server without a plan answers hello:1.0:
//!                                                  the worker leaves without taking an id)
//!                          ◀── challenge:<nonce>  (with a token: the challenge–response, see
//!   auth:<nonce>:<proof>                           crate::auth; the worker takes no plan from
//!                          ◀── auth_ok:<proof>     a server whose proof does not check out)
//!                          ◀── plan:run=<id>:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2
//!   get_cid               (unless this run's plan already failed here: see `stay`)
//!                          ◀── set_cid:100
//!   (validation and timed probe on this host; hb meanwhile)
//!   ready                 (or file_stats + error:<why the plan cannot run here> → FAILED)
//!   ping                  (every heartbeat period, if the server agreed to ping)
//!                          ◀── pong               (silence for a heartbeat period + the
//!                                                  handshake timeout: the worker gives up)
//!                          ◀── run_tests          (when the whole fleet is ready)
//!   file_stats, start, hb, stats, file_roll, …, done   (as `loadmon client`)
//! ```
//!
//! A plan line that does not parse is answered with `error:the plan from the server is not
//! valid: …` (the server records the worker FAILED). With `stay`, every failure that the next
//! run may not have (the server is away, the run already started, the plan did not fit this
//! host) is logged and retried with capped exponential backoff; a wrong token, a server that
//! does not prove it knows the token, or another protocol major ends the worker. A run whose plan failed here is not joined again (the plan
//! carries the run's id, before any id is taken): its report shows this worker FAILED once, and
//! the worker joins the next run.
//!
//! A plan beyond the worker's own limits ([`WorkerConfig::max_chunk_mb`],
//! [`WorkerConfig::max_run_time`], [`WorkerConfig::max_disk_mb`] and the space free in
//! `out_dir`) cannot run here either: it is refused before anything is allocated or written.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::client::{refusal, Client, ClientConfig, ClientResult, Handshake, Progress};
use crate::connection::{Connection, Parsed};
use crate::error::{Error, Result};
use crate::logging::{EventLog, WarnBudget};
use crate::plan::Plan;
use crate::protocol::{Capabilities, Message, ProtocolError};
use crate::workload::file_writer::{FileWriter, FileWriterConfig, KeepFiles};

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;

/// The refusal that means "this run already started; come back for the next one".
const LATE_PREFIX: &str = "run already started";

/// The first pause between two attempts with `stay`; it doubles up to
/// [`WorkerConfig::retry_max`].
const RETRY_FIRST: Duration = Duration::from_millis(100);

/// Default [`WorkerConfig::max_chunk_mb`]: 256 MiB (the chunk is held in memory).
pub const DEFAULT_MAX_CHUNK_MB: u64 = 256;
/// Default [`WorkerConfig::max_run_time`]: 24 h.
pub const DEFAULT_MAX_RUN_TIME: Duration = Duration::from_secs(24 * 3600);
/// Default [`WorkerConfig::max_disk_mb`]: 10 GiB.
pub const DEFAULT_MAX_DISK_MB: u64 = 10 * 1024;

/// Worker settings. `Default` gives the client's defaults, `client_files` for the data, one
/// run, a 5 s cap on the pause between attempts, and limits a shared host can live with:
/// chunks up to 256 MB, runs up to 24 h, at most 10 GiB on disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerConfig {
    /// How to reach the server (host, port, periods, token, log directory).
    pub client: ClientConfig,
    /// Where the plan's files are written (default `client_files`).
    pub out_dir: PathBuf,
    /// Come back for the next run after each one until stopped (default false: one run).
    pub stay: bool,
    /// With `stay`, the longest pause between two attempts to reach the server (the pause
    /// starts at 0.1 s and doubles; default 5 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub retry_max: Duration,
    /// The largest chunk a plan may ask for, MiB (default 256; 1 to 4096). The writer holds
    /// one chunk in memory, so this bounds the worker's memory. A plan beyond it is refused
    /// (the server lists the worker FAILED with the reason) before anything is allocated.
    pub max_chunk_mb: u64,
    /// The longest run time a plan may ask for (default 24 h; at most 10^9 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub max_run_time: Duration,
    /// The most disk space a plan may occupy in `out_dir` at once, MiB (default 10240 =
    /// 10 GiB): `keep_files` finished files plus the one being written; with `keep_files=all`,
    /// the files that fit in the run time at the rate the probe measured. The plan must also
    /// fit in the space free on `out_dir`'s file system.
    pub max_disk_mb: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            client: ClientConfig::default(),
            out_dir: PathBuf::from("client_files"),
            stay: false,
            retry_max: Duration::from_secs(5),
            max_chunk_mb: DEFAULT_MAX_CHUNK_MB,
            max_run_time: DEFAULT_MAX_RUN_TIME,
            max_disk_mb: DEFAULT_MAX_DISK_MB,
        }
    }
}

impl WorkerConfig {
    /// Checks every setting (the plan comes from the server and is checked when it arrives).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.out_dir.as_os_str().is_empty() {
            return Err(Error::Config("out_dir must not be empty".into()));
        }
        crate::config::check_duration("retry_max", self.retry_max, crate::config::RETRY_MAX)?;
        crate::config::CHUNK_SIZE_MB.check("max_chunk_mb", self.max_chunk_mb)?;
        crate::config::check_duration(
            "max_run_time",
            self.max_run_time,
            crate::config::MAX_RUN_TIME,
        )?;
        crate::config::MAX_DISK_MB.check("max_disk_mb", self.max_disk_mb)?;
        Ok(())
    }
}

/// One run that passed: the plan and what the writer did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRun {
    /// The run's id (from the plan command).
    pub run: u64,
    /// The plan the server sent (`run_time_s`, `chunk_size_bytes`, …, `jobs`, `iodepth`, `rate_mb_s`).
    #[serde(with = "plan_fields")]
    pub plan: Plan,
    /// The run's result, as `loadmon client` reports it.
    pub result: ClientResult,
}

/// What a worker did until it stopped (see [`Worker::run`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Runs that passed.
    pub passed: u64,
    /// Runs that took an id and did not pass (the plan could not run here, the run failed).
    pub failed: u64,
    /// The last run that passed.
    pub last: Option<WorkerRun>,
}

/// A fleet worker.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    client: Client,
    log: Arc<EventLog>,
    /// The last run whose plan failed here (server address and run id), so that a `stay`
    /// worker does not take an id in that run again.
    failed: Mutex<Option<String>>,
    /// Warnings about lines from the server that were ignored (a server flooding a waiting
    /// worker must not fill its log).
    ignored: Mutex<WarnBudget>,
}

impl Worker {
    /// A worker with `config` (validated here; the log file, if any, is opened here).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting, [`Error::File`] if the log file cannot be made.
    pub fn new(config: WorkerConfig) -> Result<Worker> {
        config.validate()?;
        let client = Client::new(config.client.clone())?;
        let log = Arc::new(EventLog::open("worker", config.client.log_dir.as_deref())?);
        if let Some(p) = log.path() {
            log.debug(|| format!("Logging to {}", p.display()));
        }
        Ok(Worker {
            config,
            client,
            log,
            failed: Mutex::new(None),
            ignored: Mutex::new(WarnBudget::new(tokio::time::Instant::now())),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// A token that, when cancelled, stops the worker: a running test ends (the server gets
    /// `error:…interrupted`), a wait or a pause between attempts ends at once.
    pub fn cancel_token(&self) -> CancellationToken {
        self.client.cancel_token()
    }

    /// A live view of the current run (for a progress bar).
    pub fn progress(&self) -> Progress {
        self.client.progress()
    }

    /// Runs once, or with [`WorkerConfig::stay`] until cancelled.
    ///
    /// # Cancellation
    /// [`Worker::cancel_token`] stops the worker in order (see its docs). Dropping the future
    /// (a `tokio::time::timeout`, a `select!` branch not taken) stops it at once: its
    /// connection is closed, and a running plan's file writer is told to stop and returns
    /// within one write on its blocking thread, as for [`Client::run`]; a plan check in
    /// progress (the timed probe write) ends on its own thread.
    ///
    /// # Examples
    /// ```
    /// use loadmon::client::ClientConfig;
    /// use loadmon::plan::Plan;
    /// use loadmon::server::{FleetConfig, Server, ServerConfig};
    /// use loadmon::worker::{Worker, WorkerConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> loadmon::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let plan = Plan { run_time_s: 0.5, chunk_size_bytes: 1 << 20, file_size_bytes: 1 << 20, min_chunk_size_bytes: 1 << 20, ..Plan::default() };
    /// let server = Server::bind(ServerConfig {
    ///     port: 0,
    ///     fleet: Some(FleetConfig::new(1, plan)),
    ///     ..Default::default()
    /// })
    /// .await?;
    /// let port = server.local_addr().port();
    /// let serving = tokio::spawn(server.run());
    ///
    /// let worker = Worker::new(WorkerConfig {
    ///     client: ClientConfig { port, ..Default::default() },
    ///     out_dir: dir.path().to_path_buf(),
    ///     ..Default::default()
    /// })?;
    /// let summary = worker.run().await?;
    /// assert_eq!(summary.passed, 1);
    /// assert_eq!(summary.last.unwrap().plan, plan);
    /// let report = serving.await.expect("the server task")?;
    /// assert_eq!(report.total.started_clients, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Without `stay`, the run's error (as [`Worker::run_once`]); with `stay`, only what no
    /// later run can cure (a refused token, another protocol major, an unusable log file) and
    /// [`Error::Interrupted`] if it is cancelled in the middle of a run. A stay worker that is
    /// cancelled between runs (or while waiting for a fleet to start) returns its summary.
    pub async fn run(&self) -> Result<WorkerSummary> {
        let mut summary = WorkerSummary::default();
        if !self.config.stay {
            let run = self.run_once().await?;
            summary.passed = 1;
            summary.last = Some(run);
            return Ok(summary);
        }
        let cancel = self.cancel_token();
        let mut pause = RETRY_FIRST;
        // The last unusual refusal warned about (said once, not at every retry).
        let mut warned = String::new();
        loop {
            if cancel.is_cancelled() {
                return Ok(summary);
            }
            match self.attempt().await {
                Attempt::Passed(run) => {
                    summary.passed += 1;
                    summary.last = Some(*run);
                    pause = RETRY_FIRST;
                }
                // Stopped in the middle of a run: that run is lost, say so.
                Attempt::Failed(e @ Error::Interrupted(_)) => return Err(e),
                Attempt::Failed(e) => {
                    summary.failed += 1;
                    self.log
                        .warn(format!("Run failed: {e}; waiting for the next run"));
                    // Not reset: runs that keep failing at once (a server that closes after
                    // the start, a full disk) back off like failed connections; a pass resets.
                }
                Attempt::Skipped => {
                    self.log
                        .debug(|| "this run's plan failed here; waiting for the next run".into());
                    pause = self.config.retry_max;
                }
                Attempt::NoRun(e) if cancel.is_cancelled() => {
                    self.log.debug(|| format!("stopped: {e}"));
                    return Ok(summary);
                }
                Attempt::NoRun(e) if fatal(&e) => return Err(e),
                Attempt::NoRun(e) => {
                    self.log
                        .debug(|| format!("no run: {e}; retrying in {pause:?}"));
                    if let Error::Refused(r) = &e {
                        // Worth a line (once): not the usual "come back later".
                        if !r.starts_with(LATE_PREFIX) && *r != warned {
                            self.log.warn(format!("{e}; retrying"));
                            warned.clone_from(r);
                        }
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(summary),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(self.config.retry_max);
        }
    }

    /// One connection, one run: takes the plan, checks it on this host, waits for the fleet's
    /// start and runs the file writer.
    ///
    /// # Errors
    /// As [`Client::run`], and: [`Error::Refused`] if the server hands out no plan (it is not
    /// in fleet mode, or a seed or older server) or the run already started, [`Error::Timeout`]
    /// if the server does not answer `hello`, [`Error::Protocol`] for a plan that does not
    /// parse, the plan's own error (validation, probe) if it cannot run here.
    ///
    /// Dropping the future stops the attempt as for [`Worker::run`].
    pub async fn run_once(&self) -> Result<WorkerRun> {
        match self.attempt().await {
            Attempt::Passed(run) => Ok(*run),
            Attempt::Failed(e) | Attempt::NoRun(e) => Err(e),
            Attempt::Skipped => Err(Error::Refused(
                "this run's plan already failed on this worker".into(),
            )),
        }
    }

    async fn attempt(&self) -> Attempt {
        let outcome = self.attempt_once().await;
        let mut budget = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        self.log.ignored_summary(&mut budget);
        outcome
    }

    async fn attempt_once(&self) -> Attempt {
        let log = &self.log;
        let mut conn = match self.client.connect(log).await {
            Ok(c) => c,
            Err(e) => return Attempt::NoRun(e),
        };
        let mut ignore = |p: &Parsed| self.ignored(p);
        let mut handshake = Handshake::new(&self.client, log, "worker", &mut ignore);
        let offer = match self.offer(&mut conn, &mut handshake).await {
            Ok(o) => o,
            Err(e) => {
                conn.close(Duration::from_millis(200)).await;
                return Attempt::NoRun(e);
            }
        };
        if self.failed_before(&offer.key) {
            // This run's plan failed here: its report has our FAILED once; wait for the next.
            conn.close(Duration::from_millis(200)).await;
            return Attempt::Skipped;
        }
        let id = match handshake.take_id(&mut conn).await {
            Ok(id) => id,
            Err(e) => {
                conn.close(Duration::from_millis(200)).await;
                return Attempt::NoRun(e);
            }
        };
        let (run, plan) = match offer.plan {
            Ok(p) => p,
            Err(error) => {
                // The server records why this worker does not run (FAILED).
                let reason = format!("the plan from the server is not valid: {error}");
                log.warn(format!("Client id {id}: {reason}"));
                conn.feed(&Message::Error(reason));
                conn.close(Duration::from_millis(500)).await;
                self.remember_failure(offer.key);
                return Attempt::Failed(error);
            }
        };
        log.info(format!("Client id {id}: plan received: {plan}"));
        let writer = match self.prepare(&mut conn, plan).await {
            Ok(w) => w,
            Err(e) => {
                conn.close(Duration::from_millis(500)).await;
                return match e {
                    // Stopped while checking: nothing ran.
                    Error::Interrupted(_) => Attempt::NoRun(e),
                    // The plan cannot run here; the server was told (FAILED).
                    e => {
                        self.remember_failure(offer.key);
                        Attempt::Failed(e)
                    }
                };
            }
        };
        if let Err(e) = self.wait_for_start(&mut conn, id, offer.ping).await {
            // Gone before the start (stopped, the server went away, the run started without
            // this worker): nothing ran.
            conn.close(Duration::from_millis(200)).await;
            return Attempt::NoRun(e);
        }
        let outcome = self.run_plan(&mut conn, id, writer).await;
        conn.close(Duration::from_millis(500)).await;
        match outcome {
            Ok(result) => {
                log.info(format!(
                    "Client id {id} done: {} file(s), {} bytes, {:.2} MB/s",
                    result.files_written, result.bytes_written, result.throughput_mb_s
                ));
                Attempt::Passed(Box::new(WorkerRun { run, plan, result }))
            }
            Err(e) => {
                log.warn(format!("Client id {id} shutting down: {e}"));
                Attempt::Failed(e)
            }
        }
    }

    /// Logs a line from the server that was ignored (rate-limited).
    fn ignored(&self, parsed: &Parsed) {
        let mut budget = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        match parsed {
            Ok(other) => self.log.warn_ignored(
                &mut budget,
                format!("ignored {} from the server", other.command()),
            ),
            Err(e) => self
                .log
                .warn_ignored(&mut budget, format!("ignored line from the server: {e}")),
        }
    }

    /// Whether the run behind `key` already failed on this worker.
    fn failed_before(&self, key: &str) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(key)
    }

    fn remember_failure(&self, key: String) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// `hello` with `plan` and, with a token, the challenge–response (the server must prove
    /// it knows the token before its plan is taken); returns the plan the server offers
    /// (before any id is taken).
    async fn offer(&self, conn: &mut Connection, handshake: &mut Handshake<'_>) -> Result<Offer> {
        let timeout = self.config.client.handshake_timeout;
        // First the server's hello: only a server that offers a plan gets a get_cid (a seed
        // server, an older loadmon or one outside fleet mode is left without taking an id).
        let offered = handshake
            .hello(conn, Capabilities::PLAN.union(Capabilities::PING))
            .await
            .map(|caps| {
                (
                    caps.contains(Capabilities::PLAN),
                    caps.contains(Capabilities::PING),
                )
            });
        let addr = format!("{}:{}", self.config.client.host, self.config.client.port);
        let ping = match offered {
            Ok((true, ping)) => ping,
            Ok((false, _)) => {
                return Err(Error::Refused(format!(
                    "the server at {addr} hands out no plan: it is not in fleet mode (start it \
                     with --expect-clients); use `loadmon client` for a server without a plan"
                )))
            }
            Err(Error::Timeout(m)) if m.starts_with("no answer to hello") => {
                return Err(Error::Timeout(format!(
                    "no answer to hello from {addr} within {:.1} s: not a loadmon fleet server \
                     (a seed server, or a loadmon without fleet mode)",
                    timeout.as_secs_f64()
                )))
            }
            Err(e) => return Err(e),
        };
        let plan = handshake
            .next_line(conn, "plan", |m| match m {
                Ok(Message::Plan(wire)) => Some(Ok(Plan::from_wire(wire).map_err(Error::Protocol))),
                Err(e) if e.command() == Some("plan") => Some(Ok(Err(Error::Protocol(e.clone())))),
                _ => None,
            })
            .await;
        let plan = match plan {
            Ok(p) => p,
            // The server offered a plan and sent none: it hears why, as for a bad one.
            Err(e @ Error::Timeout(_)) => Err(e),
            Err(e) => return Err(e),
        };
        let key = match &plan {
            Ok((run, _)) => format!("{addr} run {run}"),
            Err(e) => format!("{addr} {e}"),
        };
        Ok(Offer { key, plan, ping })
    }

    /// Runs the plan's `writer` on `conn` as client `id`. A fleet server answered `hello`, so
    /// the loadmon-only lines of the run (`tput`, `io`, `clock`…) go to it.
    async fn run_plan(
        &self,
        conn: &mut Connection,
        id: u32,
        writer: FileWriter,
    ) -> Result<ClientResult> {
        self.client
            .run_workload(conn, &self.log, id, true, writer)
            .await
    }

    /// Checks the plan on this host (rules and timed probe, on a blocking thread, with
    /// heartbeats meanwhile) and builds the writer; if it cannot run here, tells the server
    /// (`file_stats` and `error:<why>`: FAILED with the reason).
    async fn prepare(&self, conn: &mut Connection, plan: Plan) -> Result<FileWriter> {
        let config = plan.writer_config(self.config.out_dir.clone());
        let limits = Limits::of(&self.config);
        let cancel = self.cancel_token();
        // The probe stops too when the worker is stopped: no thread of it goes on writing.
        let stop = cancel.clone();
        let mut probe = tokio::task::spawn_blocking(move || limits.check(config, &stop));
        let period = self.config.client.heartbeat_period;
        let mut hb = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        hb.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let checked = loop {
            tokio::select! {
                r = &mut probe => {
                    break r.unwrap_or_else(|e| Err(Error::Internal(format!("plan check task: {e}"))));
                }
                _ = cancel.cancelled() => {
                    return Err(Error::Interrupted("while checking the plan".into()));
                }
                // The probe may take a while (large chunks, fsync): stay alive meanwhile.
                _ = hb.tick() => { let _ = conn.send(&Message::Heartbeat).await; }
            }
        };
        match checked {
            Ok(w) => Ok(w),
            Err(e) => {
                self.log
                    .warn(format!("The plan cannot run on this host: {e}"));
                let (chunk_mb, file_mb) = plan.writer_config(PathBuf::new()).file_stats_mb();
                conn.feed(&Message::FileStats {
                    chunk_size_mb: chunk_mb,
                    file_size_mb: file_mb,
                });
                conn.feed(&Message::Error(e.to_string()));
                let _ = conn.flush().await;
                Err(e)
            }
        }
    }

    /// `ready`, then waits (as long as the fleet needs) for `run_tests`. With `ping` (the
    /// server agreed to it in `hello`), it pings every heartbeat period and gives up when the
    /// server has said nothing for a heartbeat period plus the handshake timeout (15 s with
    /// the defaults): its host died without a FIN reaching the worker, or its process hangs.
    /// Without it (an older server), TCP keepalive notices a host that went away.
    async fn wait_for_start(&self, conn: &mut Connection, id: u32, ping: bool) -> Result<()> {
        conn.send(&Message::Ready)
            .await
            .map_err(|e| Error::from_frame(e, "send to the server"))?;
        self.log.info(format!(
            "Client id {id}: ready, waiting for the fleet to start"
        ));
        let cancel = self.cancel_token();
        let period = self.config.client.heartbeat_period;
        let silence = period + self.config.client.handshake_timeout;
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        loop {
            let parsed = tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(Error::Interrupted("while waiting for the fleet to start".into()));
                }
                _ = pings.tick(), if ping => {
                    // Without waiting: a server that does not read must not hold the worker.
                    conn.feed(&Message::Ping);
                    conn.try_flush().map_err(|e| Error::net("send to the server", e))?;
                    continue;
                }
                _ = tokio::time::sleep_until(heard + silence), if ping => {
                    return Err(Error::Timeout(format!(
                        "the server said nothing for {:.1} s while this worker waited for the \
                         fleet's start (it pings every {:.1} s): the server or its host is gone",
                        silence.as_secs_f64(),
                        period.as_secs_f64()
                    )));
                }
                m = conn.read_message() => m.map_err(|e| Error::from_frame(e, "read from the server"))?,
            };
            heard = tokio::time::Instant::now();
            match parsed {
                Some(Ok(Message::RunTests)) => break,
                Some(Ok(Message::Pong)) => {}
                Some(Ok(Message::Refused(r))) => return Err(refusal(&r)),
                Some(other) => self.ignored(&other),
                None => {
                    return Err(Error::Disconnected(
                        "the server closed the connection before the fleet started".into(),
                    ))
                }
            }
        }
        self.log.info("Test run request received from server");
        Ok(())
    }
}

/// A worker's own limits on the plans it runs ([`WorkerConfig::max_chunk_mb`], …).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_chunk_mb: u64,
    max_run_time: Duration,
    max_disk_mb: u64,
}

impl Limits {
    fn of(c: &WorkerConfig) -> Limits {
        Limits {
            max_chunk_mb: c.max_chunk_mb,
            max_run_time: c.max_run_time,
            max_disk_mb: c.max_disk_mb,
        }
    }

    /// The plan's writer, if the plan is within the file writer's rules and these limits on
    /// this host: the chunk, the run time and the least disk space the plan needs are checked
    /// before anything is allocated or written, then the timed probe runs and gives the disk
    /// space the whole run can occupy (blocking: file system calls).
    fn check(self, config: FileWriterConfig, stop: &CancellationToken) -> Result<FileWriter> {
        config.validate()?;
        if u128::from(config.chunk_size_bytes) > u128::from(self.max_chunk_mb) * u128::from(MIB) {
            return Err(Error::Config(format!(
                "the plan's chunk size {} is above this worker's limit of {} MB \
                 (max_chunk_mb; a chunk is held in memory)",
                crate::units::size_text(config.chunk_size_bytes),
                self.max_chunk_mb
            )));
        }
        if config.run_time_s > self.max_run_time.as_secs_f64() {
            return Err(Error::Config(format!(
                "the plan's run time {} s is above this worker's limit of {} s (max_run_time)",
                config.run_time_s,
                self.max_run_time.as_secs_f64()
            )));
        }
        // Before the probe: two whole files at least (the probe refuses a plan where fewer fit).
        self.check_disk(&config, None)?;
        let writer = FileWriter::new_cancellable(config, stop)?;
        self.check_disk(writer.config(), Some(writer.probe().files_that_fit))?;
        Ok(writer)
    }

    /// Checks the disk space `config` can occupy in its `out_dir` at once against
    /// `max_disk_mb` and the space free there. Without the probe's `files_that_fit`, the least
    /// any run of the plan needs (two whole files); with it, `keep_files` (or with `all`, the
    /// whole files that fit in the run time) plus the one being written.
    fn check_disk(self, config: &FileWriterConfig, files_that_fit: Option<f64>) -> Result<()> {
        // Each stream keeps files of its own: `jobs` times a stream's.
        let jobs = u128::from(config.jobs.max(1));
        let file_bytes = u128::from(config.file_size_bytes);
        let file_mb = file_bytes.div_ceil(u128::from(MIB));
        let (files, why) = match files_that_fit {
            None => (2, "at least two whole files".to_string()),
            Some(fit) => {
                // Whole files the run time holds (finite, not negative: from the probe).
                let fit = if fit.is_finite() && fit > 0.0 {
                    fit.floor().min(u64::MAX as f64) as u128
                } else {
                    u128::from(u64::MAX)
                };
                match config.keep_files {
                    KeepFiles::Last(k) if (k as u128) < fit => (
                        k as u128 + 1,
                        format!("keep_files={k} and the one being written"),
                    ),
                    keep => (
                        fit.saturating_add(1),
                        format!(
                            "keep_files={keep}: the {fit} whole file(s) the probe's rate fills \
                             in {} s, and the one being written",
                            config.run_time_s
                        ),
                    ),
                }
            }
        };
        let need_mb = files
            .saturating_mul(jobs)
            .saturating_mul(file_bytes)
            .div_ceil(u128::from(MIB));
        let why = if jobs > 1 {
            format!("{why}, for each of {jobs} streams")
        } else {
            why
        };
        let dir = config.out_dir.display();
        if need_mb > u128::from(self.max_disk_mb) {
            return Err(Error::Config(format!(
                "the plan can occupy {need_mb} MB in {dir} ({why}, of {file_mb} MB each), above \
                 this worker's limit of {} MB (max_disk_mb)",
                self.max_disk_mb
            )));
        }
        if let Some(free_mb) = free_mb(&config.out_dir) {
            if need_mb > u128::from(free_mb) {
                return Err(Error::Config(format!(
                    "the plan can occupy {need_mb} MB in {dir} ({why}, of {file_mb} MB each), \
                     but only {free_mb} MB are free there"
                )));
            }
        }
        Ok(())
    }
}

/// The space free for an unprivileged user on the file system of `dir` (or of its nearest
/// existing ancestor: the writer creates `dir`), MiB; `None` where it cannot be told.
fn free_mb(dir: &Path) -> Option<u64> {
    let existing = dir
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists())?;
    free_mb_at(existing)
}

#[cfg(unix)]
fn free_mb_at(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    let bytes = u128::from(s.f_bavail).saturating_mul(u128::from(s.f_frsize));
    u64::try_from(bytes >> 20).ok()
}

#[cfg(not(unix))]
fn free_mb_at(_dir: &Path) -> Option<u64> {
    None
}

/// What a fleet server offers before any id is taken.
struct Offer {
    /// Which run of which server (the failure of a run is remembered by this).
    key: String,
    /// The run's id and plan, or why the plan line is no plan.
    plan: Result<(u64, Plan)>,
    /// Whether the server agreed to `ping` (it answers `pong` while the worker waits).
    ping: bool,
}

/// How one attempt ended.
enum Attempt {
    /// The run passed.
    Passed(Box<WorkerRun>),
    /// The worker took an id and did not pass (the server records why).
    Failed(Error),
    /// No run: the server was away, refused, already started, …
    NoRun(Error),
    /// This run's plan already failed on this worker: no second try in the same run.
    Skipped,
}

/// Errors no later attempt can cure.
fn fatal(e: &Error) -> bool {
    match e {
        Error::VersionMismatch { .. } | Error::Config(_) | Error::File { .. } => true,
        // The server does not know the token: the next run's will not either.
        Error::Protocol(ProtocolError::Auth(_)) => true,
        Error::Refused(r) => {
            r.starts_with("wrong token")
                || r.starts_with("a token is required")
                || r.starts_with("protocol version mismatch")
        }
        _ => false,
    }
}

/// The plan in a [`WorkerRun`]'s JSON, with the plan command's field names.
mod plan_fields {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::plan::Plan;

    #[derive(Serialize, Deserialize)]
    struct Fields {
        run_time_s: f64,
        chunk_size_bytes: u64,
        file_size_bytes: u64,
        min_chunk_size_bytes: u64,
        sync: String,
        keep_files: String,
        #[serde(default = "one")]
        jobs: u32,
        #[serde(default = "one")]
        iodepth: u32,
        #[serde(default)]
        rate_mb_s: Option<f64>,
        #[serde(default = "verify_none")]
        verify: String,
        #[serde(default = "verify_block")]
        verify_block_bytes: u64,
        #[serde(default)]
        verify_continue: bool,
        #[serde(default)]
        verify_peer: bool,
        #[serde(default)]
        overwrite: bool,
    }

    fn one() -> u32 {
        1
    }

    fn verify_none() -> String {
        "none".into()
    }

    fn verify_block() -> u64 {
        u64::from(crate::verify::DEFAULT_BLOCK_BYTES)
    }

    pub(super) fn serialize<S: Serializer>(p: &Plan, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            run_time_s: p.run_time_s,
            chunk_size_bytes: p.chunk_size_bytes,
            file_size_bytes: p.file_size_bytes,
            min_chunk_size_bytes: p.min_chunk_size_bytes,
            sync: p.sync.to_string(),
            keep_files: p.keep_files.to_string(),
            jobs: p.jobs,
            iodepth: p.iodepth,
            rate_mb_s: p.rate_mb_s,
            verify: p.verify.to_string(),
            verify_block_bytes: p.verify_block_bytes,
            verify_continue: p.verify_continue,
            verify_peer: p.verify_peer,
            overwrite: p.overwrite,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Plan, D::Error> {
        let f = Fields::deserialize(d)?;
        Ok(Plan {
            run_time_s: f.run_time_s,
            chunk_size_bytes: f.chunk_size_bytes,
            file_size_bytes: f.file_size_bytes,
            min_chunk_size_bytes: f.min_chunk_size_bytes,
            jobs: f.jobs,
            iodepth: f.iodepth,
            rate_mb_s: f.rate_mb_s,
            sync: f.sync.parse().map_err(serde::de::Error::custom)?,
            keep_files: f.keep_files.parse().map_err(serde::de::Error::custom)?,
            verify: f.verify.parse().map_err(serde::de::Error::custom)?,
            verify_block_bytes: f.verify_block_bytes,
            verify_continue: f.verify_continue,
            verify_peer: f.verify_peer,
            overwrite: f.overwrite,
        })
    }
}
