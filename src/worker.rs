//! A fleet worker: connects to a fleet server, takes its plan, checks it, waits for the start
//! with the rest of the fleet and runs the file writer ([`crate::file_writer`]) with the plan's
//! parameters. With [`WorkerConfig::stay`] it comes back for the next run until stopped.
//!
//! One run, on the wire (see `docs/PROTOCOL.md`):
//!
//! ```text
//! worker                                   fleet server
//!   hello:1.0:plan   (token:<s>)
//!                          ◀── hello:1.0:plan     (a server without a plan answers hello:1.0:
//!                                                  the worker leaves without taking an id)
//!                          ◀── plan:run=<id>:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2
//!   get_cid               (unless this run's plan already failed here: see `stay`)
//!                          ◀── set_cid:100
//!   (validation and timed probe on this host; hb meanwhile)
//!   ready                 (or file_stats + error:<why the plan cannot run here> → FAILED)
//!                          ◀── run_tests          (when the whole fleet is ready)
//!   file_stats, start, hb, stats, file_roll, …, done   (as `loadmon client`)
//! ```
//!
//! A plan line that does not parse is answered with `error:the plan from the server is not
//! valid: …` (the server records the worker FAILED). With `stay`, every failure that the next
//! run may not have (the server is away, the run already started, the plan did not fit this
//! host) is logged and retried with capped exponential backoff; a wrong token or another
//! protocol major ends the worker. A run whose plan failed here is not joined again (the plan
//! carries the run's id, before any id is taken): its report shows this worker FAILED once, and
//! the worker joins the next run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientConfig, ClientResult, Progress};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::file_writer::FileWriter;
use crate::logging::{EventLog, WarnBudget};
use crate::plan::Plan;
use crate::protocol::{Capabilities, Message, ProtocolError, PROTOCOL_VERSION};

/// The refusal that means "this run already started; come back for the next one".
const LATE_PREFIX: &str = "run already started";

/// The first pause between two attempts with `stay`; it doubles up to
/// [`WorkerConfig::retry_max`].
const RETRY_FIRST: Duration = Duration::from_millis(100);

/// Worker settings. `Default` gives the client's defaults, `client_files` for the data, one
/// run, and a 5 s cap on the pause between attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// How to reach the server (host, port, periods, token, log directory).
    pub client: ClientConfig,
    /// Where the plan's files are written (default `client_files`).
    pub out_dir: PathBuf,
    /// Come back for the next run after each one until stopped (default false: one run).
    pub stay: bool,
    /// With `stay`, the longest pause between two attempts to reach the server (the pause
    /// starts at 0.1 s and doubles; default 5 s).
    pub retry_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            client: ClientConfig::default(),
            out_dir: PathBuf::from("client_files"),
            stay: false,
            retry_max: Duration::from_secs(5),
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
        if self.retry_max < Duration::from_millis(1) || self.retry_max > crate::server::MAX_DURATION
        {
            return Err(Error::Config(format!(
                "retry_max must be between 1 ms and {} s",
                crate::server::MAX_DURATION.as_secs()
            )));
        }
        Ok(())
    }
}

/// One run that passed: the plan and what the writer did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRun {
    /// The run's id (from the plan command).
    pub run: u64,
    /// The plan the server sent (`run_time_s`, `chunk_size_mb`, … as in the plan command).
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
        let offer = match self.offer(&mut conn).await {
            Ok(o) => o,
            Err(e) => {
                conn.close(Duration::from_millis(200)).await;
                return Attempt::NoRun(e);
            }
        };
        if self.failed_before(&offer.key) {
            // This run's plan already failed here: the run's report has this worker's
            // FAILED once; wait for the next run instead of adding one more.
            conn.close(Duration::from_millis(200)).await;
            return Attempt::Skipped;
        }
        let id = match self.take_id(&mut conn).await {
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
        if let Err(e) = self.wait_for_start(&mut conn, id).await {
            // Gone before the start (stopped, the server went away, the run started without
            // this worker): nothing ran.
            conn.close(Duration::from_millis(200)).await;
            return Attempt::NoRun(e);
        }
        let outcome = self.client.run_workload(&mut conn, log, id, writer).await;
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
    fn ignored(&self, parsed: &std::result::Result<Message, ProtocolError>) {
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

    /// `hello` with `plan` and the token; returns the plan the server offers (before any id
    /// is taken).
    async fn offer(&self, conn: &mut Connection) -> Result<Offer> {
        let ctx = "handshake with the server";
        let (major, minor) = PROTOCOL_VERSION;
        conn.feed(&Message::Hello {
            major,
            minor,
            caps: Capabilities::PLAN,
        });
        if let Some(t) = &self.config.client.token {
            conn.feed(&Message::Token(t.clone()));
        }
        conn.flush().await.map_err(|e| Error::from_frame(e, ctx))?;
        let timeout = self.config.client.handshake_timeout;
        // First the server's hello: only a server that offers a plan gets a get_cid (a seed
        // server, an older loadmon or one outside fleet mode is left without taking an id).
        let offered = self
            .next_line(conn, timeout, "answer to hello", |m| match m {
                Ok(Message::Hello {
                    major: m,
                    minor: n,
                    caps,
                }) => {
                    if *m != major {
                        return Some(Err(Error::VersionMismatch {
                            ours: format!("{major}.{minor}"),
                            theirs: format!("{m}.{n}"),
                        }));
                    }
                    Some(Ok(caps.contains(Capabilities::PLAN)))
                }
                _ => None,
            })
            .await;
        let addr = format!("{}:{}", self.config.client.host, self.config.client.port);
        match offered {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::Refused(format!(
                    "the server at {addr} hands out no plan: it is not in fleet mode (start it \
                     with --expect-clients); use `loadmon client` for a server without a plan"
                )))
            }
            Err(Error::Timeout(_)) => {
                return Err(Error::Timeout(format!(
                    "no answer to hello from {addr} within {:.1} s: not a loadmon fleet server \
                     (a seed server, or a loadmon without fleet mode)",
                    timeout.as_secs_f64()
                )))
            }
            Err(e) => return Err(e),
        }
        let plan = self
            .next_line(conn, timeout, "plan", |m| match m {
                Ok(Message::Plan { run, plan }) => Some(Ok(Ok((*run, *plan)))),
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
        Ok(Offer { key, plan })
    }

    /// `get_cid`; returns the id.
    async fn take_id(&self, conn: &mut Connection) -> Result<u32> {
        conn.send(&Message::GetCid)
            .await
            .map_err(|e| Error::from_frame(e, "handshake with the server"))?;
        let timeout = self.config.client.handshake_timeout;
        let id = self
            .next_line(conn, timeout, "set_cid", |m| match m {
                Ok(Message::SetCid(id)) => Some(Ok(*id)),
                // The id goes into file names: anything but a number is refused.
                Err(e) if e.command() == Some("set_cid") => Some(Err(Error::Protocol(e.clone()))),
                Ok(Message::RunTests) => Some(Err(Error::Disconnected(
                    "the server sent run_tests before set_cid".into(),
                ))),
                _ => None,
            })
            .await?;
        self.log
            .info(format!("Client id received from server: {id}"));
        Ok(id)
    }

    /// Reads lines until `want` takes one (`Some`), within `timeout`; refusals and the end of
    /// the connection are errors, other lines are logged and skipped.
    async fn next_line<T>(
        &self,
        conn: &mut Connection,
        timeout: Duration,
        what: &str,
        want: impl Fn(&std::result::Result<Message, ProtocolError>) -> Option<Result<T>>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let cancel = self.cancel_token();
        loop {
            let parsed = tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(Error::Interrupted("during the handshake".into()));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout(format!(
                        "no {what} from the server within {:.1} s",
                        timeout.as_secs_f64()
                    )));
                }
                m = conn.read_message() => m.map_err(|e| Error::from_frame(e, "handshake with the server"))?,
            };
            let Some(parsed) = parsed else {
                return Err(Error::Disconnected(format!(
                    "the server closed the connection while the worker waited for {what}"
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
            self.ignored(&parsed);
        }
    }

    /// Checks the plan on this host (rules and timed probe, on a blocking thread, with
    /// heartbeats meanwhile) and builds the writer; if it cannot run here, tells the server
    /// (`file_stats` and `error:<why>`: FAILED with the reason).
    async fn prepare(&self, conn: &mut Connection, plan: Plan) -> Result<FileWriter> {
        let config = plan.writer_config(self.config.out_dir.clone());
        let cancel = self.cancel_token();
        // The probe stops too when the worker is stopped: no thread of it goes on writing.
        let stop = cancel.clone();
        let mut probe =
            tokio::task::spawn_blocking(move || FileWriter::new_cancellable(config, &stop));
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
                conn.feed(&Message::FileStats {
                    chunk_size_mb: plan.chunk_size_mb,
                    file_size_mb: plan.file_size_mb,
                });
                conn.feed(&Message::Error(e.to_string()));
                let _ = conn.flush().await;
                Err(e)
            }
        }
    }

    /// `ready`, then waits (as long as the fleet needs) for `run_tests`.
    async fn wait_for_start(&self, conn: &mut Connection, id: u32) -> Result<()> {
        conn.send(&Message::Ready)
            .await
            .map_err(|e| Error::from_frame(e, "send to the server"))?;
        self.log.info(format!(
            "Client id {id}: ready, waiting for the fleet to start"
        ));
        let cancel = self.cancel_token();
        loop {
            let parsed = tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(Error::Interrupted("while waiting for the fleet to start".into()));
                }
                m = conn.read_message() => m.map_err(|e| Error::from_frame(e, "read from the server"))?,
            };
            match parsed {
                Some(Ok(Message::RunTests)) => break,
                Some(Ok(Message::Refused(r))) => {
                    return Err(Error::Refused(crate::text::escape_control(&r).into_owned()))
                }
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

/// What a fleet server offers before any id is taken.
struct Offer {
    /// Which run of which server (the failure of a run is remembered by this).
    key: String,
    /// The run's id and plan, or why the plan line is no plan.
    plan: Result<(u64, Plan)>,
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
        chunk_size_mb: u64,
        file_size_mb: u64,
        min_chunk_size_mb: u64,
        sync: String,
        keep_files: String,
    }

    pub(super) fn serialize<S: Serializer>(p: &Plan, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            run_time_s: p.run_time_s,
            chunk_size_mb: p.chunk_size_mb,
            file_size_mb: p.file_size_mb,
            min_chunk_size_mb: p.min_chunk_size_mb,
            sync: p.sync.to_string(),
            keep_files: p.keep_files.to_string(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Plan, D::Error> {
        let f = Fields::deserialize(d)?;
        Ok(Plan {
            run_time_s: f.run_time_s,
            chunk_size_mb: f.chunk_size_mb,
            file_size_mb: f.file_size_mb,
            min_chunk_size_mb: f.min_chunk_size_mb,
            sync: f.sync.parse().map_err(serde::de::Error::custom)?,
            keep_files: f.keep_files.parse().map_err(serde::de::Error::custom)?,
        })
    }
}
