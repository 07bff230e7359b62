//! A workload's run: `file_stats` and `start`, the workload on a blocking thread, the
//! heartbeat and stats tasks, the 1-s task (to a loadmon server only: `tput`, the bytes so far,
//! `io`, the host's I/O view, `lat`, the second's chunk write latencies, and for a paced run
//! `rlat` and `pace`; every second and once before the end) and the lines the workload
//! queues, then `done` or `error:<reason>`.
//! With a loadmon server, the clock exchange too (at the start of the run and every 10 s:
//! `ClockProbe`), so that the server places this client's times on its own timeline.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{refusal, Client, ClientConfig, ClientResult, Ignored, RunProgress, VerifyResult};
use crate::connection::{Connection, FrameError, Parsed};
use crate::error::{Error, Result};
use crate::hostio::{HostIo, HostIoSample};
use crate::latency::IntervalHistogram;
use crate::logging::EventLog;
use crate::protocol::{round2, LatLine, Message, MAX_IO_FIGURE, MAX_UNIX_US};
use crate::stats::{ClientCpu, ProcessClient, Sampler};
use crate::units::{unix_ms, BYTES_PER_MB};
use crate::workload::{Context, Counters, RunControl, Workload, STOP_GRACE};

/// The error for a line the server could not be sent.
fn send_error(e: FrameError) -> Error {
    Error::from_frame(e, "send to the server")
}

impl Client {
    /// Runs `workload` once `run_tests` has arrived on `conn` (client id `client_id`):
    /// `file_stats`, `start`, heartbeats and stats (and, to a loadmon server — one that
    /// answered `hello`, `loadmon_server` — loadmon's per-second lines and the clock exchange),
    /// then `done` or `error:<reason>`.
    pub(crate) async fn run_workload<W: Workload>(
        &self,
        conn: &mut Connection,
        log: &Arc<EventLog>,
        client_id: u32,
        loadmon_server: bool,
        workload: W,
    ) -> Result<ClientResult> {
        if let Some((chunk, file)) = workload.file_stats() {
            conn.feed(&Message::FileStats {
                chunk_size_mb: chunk,
                file_size_mb: file,
            });
        }
        conn.send(&Message::Start).await.map_err(send_error)?;
        log.info("Running tests...");

        let started = Instant::now();
        let run_time = workload.run_time();
        let (ctx, control, rx) = Context::new(client_id, started, run_time);
        let ignored = Ignored::new(log);
        self.progress.set(RunProgress {
            client_id,
            started,
            run_time,
            counters: control.counters().clone(),
        });
        // This client's CPU: its writer thread, and each piece of the work below (see
        // `crate::stats`). Its memory is the process's, shared with the other clients
        // registered in it (the sampler holds this one's registration for the whole run).
        let cpu = ClientCpu::new();
        let ctx = ctx.with_cpu(cpu.clone());
        let sampler = Sampler::for_client(cpu.clone(), ProcessClient::register());
        let host_io = loadmon_server.then(|| HostIoTask::start(workload.data_dir()));
        // However this future ends (dropped by a timeout or a select! included), the workload
        // is told to stop before its thread is let go.
        let mut running = Running::spawn(workload, ctx, &cpu, control.clone(), log.clone());
        let mut tasks = Tasks {
            conn,
            log,
            control,
            cpu,
            sampler,
            rx,
            ignored,
            heartbeats_sent: 0,
            stats_sent: 0,
            trouble: None,
            server_open: true,
            loadmon_server,
            host_io,
            clock: loadmon_server.then(ClockProbe::new),
        };
        let outcome = tasks.drive(&mut running, &self.cancel, &self.config).await;
        let run_time_s = started.elapsed().as_secs_f64();
        tasks.finish(outcome, client_id, run_time_s).await
    }
}

/// An interval of `period` whose first tick is one period from now (the seed's rhythm: each
/// of its loops slept first).
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// The client's side of a run while its workload runs: the connection, what was sent, and
/// what went wrong first.
struct Tasks<'a> {
    conn: &'a mut Connection,
    log: &'a EventLog,
    control: RunControl,
    cpu: Arc<ClientCpu>,
    sampler: Sampler,
    /// Lines the workload queued for the server.
    rx: mpsc::UnboundedReceiver<Message>,
    ignored: Ignored<'a>,
    heartbeats_sent: u64,
    stats_sent: u64,
    /// The first thing that went wrong on the client's side (the verdict unless the workload
    /// failed first).
    trouble: Option<Error>,
    /// Whether the server can still be written to.
    server_open: bool,
    /// The clock exchange (a loadmon server only).
    clock: Option<ClockProbe>,
    /// Whether the server answered `hello` (a loadmon server): only such a server gets the
    /// 1-s lines.
    loadmon_server: bool,
    /// The host's I/O view sent every second (a loadmon server only).
    host_io: Option<HostIoTask>,
}

impl Tasks<'_> {
    /// Until the workload returns (or, once stopped, [`STOP_GRACE`] has passed without it):
    /// forwards its lines, sends heartbeats and stats, reads the server. Returns the
    /// workload's outcome.
    async fn drive(
        &mut self,
        running: &mut Running,
        cancel: &CancellationToken,
        config: &ClientConfig,
    ) -> Result<()> {
        let mut heartbeat = ticker(config.heartbeat_period);
        let mut stats = ticker(config.stats_period);
        let mut clock = clock_ticker();
        let mut second = second_ticker();
        // Once stopped, the workload gets STOP_GRACE to return.
        let mut stop_deadline: Option<tokio::time::Instant> = None;
        loop {
            if stop_deadline.is_none() && self.control.is_stopped() {
                stop_deadline = Some(tokio::time::Instant::now() + STOP_GRACE);
            }
            tokio::select! {
                joined = &mut running.work => {
                    running.joined = true;
                    return joined.unwrap_or_else(|e| Err(Error::Internal(format!("workload task: {e}"))));
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(tokio::time::Instant::now)), if stop_deadline.is_some() => {
                    self.log.warn(format!(
                        "the workload did not return within {} s of the stop (stuck in a file \
                         system call?): the run ends without it, its thread is left behind",
                        STOP_GRACE.as_secs_f64()
                    ));
                    return Err(self.trouble.take().unwrap_or_else(|| {
                        Error::Interrupted("client run stopped".into())
                    }));
                }
                _ = cancel.cancelled(), if self.trouble.is_none() => {
                    self.control.stop();
                    self.trouble = Some(Error::Interrupted("client run cancelled".into()));
                }
                Some(msg) = self.rx.recv() => self.forward(&msg).await,
                _ = heartbeat.tick(), if self.server_open => self.heartbeat().await,
                _ = stats.tick(), if self.server_open => self.stats().await,
                _ = clock.tick(), if self.server_open && self.clock.is_some() => {
                    self.clock_ask().await;
                }
                _ = second.tick(), if self.server_open && self.loadmon_server => self.second().await,
                msg = self.conn.read_message(), if self.server_open => {
                    let work = self.cpu.start_work();
                    self.on_line(msg).await;
                    self.cpu.end_work(work);
                }
            }
        }
    }

    /// The server is out of reach: the workload stops, and `e` is the verdict unless
    /// something came first.
    fn lost(&mut self, e: Error) {
        self.server_open = false;
        self.control.stop();
        self.trouble.get_or_insert(e);
    }

    /// Sends a line the workload queued. Its `engine` line goes to the client's log (a
    /// warning when the writer could not have the depth asked for), a `vfind` line (a bad
    /// block its check found) too, as a warning; both to a loadmon server only (a seed
    /// server never sees them).
    async fn forward(&mut self, msg: &Message) {
        let loadmon_only = match msg {
            Message::Engine(text) => {
                if text.starts_with("sync") {
                    self.log.warn(format!("engine: {text}"));
                } else {
                    self.log.info(format!("engine: {text}"));
                }
                true
            }
            Message::VerifyFinding(f) => {
                self.log.warn(format!("verify: {}", f.sentence()));
                true
            }
            _ => false,
        };
        if loadmon_only && !self.loadmon_server {
            return;
        }
        let work = self.cpu.start_work();
        if self.server_open {
            if let Err(e) = self.conn.send(msg).await {
                self.lost(send_error(e));
            }
        }
        self.cpu.end_work(work);
    }

    /// What the workload noted for the log ([`Context::note`]) goes there.
    fn log_notes(&self) {
        for (warning, text) in self.control.counters().take_notes() {
            if warning {
                self.log.warn(text);
            } else {
                self.log.info(text);
            }
        }
    }

    async fn heartbeat(&mut self) {
        self.log_notes();
        let work = self.cpu.start_work();
        match self.conn.send(&Message::Heartbeat).await {
            Ok(()) => {
                self.heartbeats_sent += 1;
                self.log.debug(|| "Heartbeat sent to server".into());
            }
            Err(e) => self.lost(send_error(e)),
        }
        self.cpu.end_work(work);
    }

    async fn stats(&mut self) {
        let work = self.cpu.start_work();
        let s = self.sample();
        for m in &self.stream_lines() {
            self.conn.feed(m);
        }
        for m in &stats_batch(self.control.counters(), &s) {
            self.conn.feed(m);
        }
        match self.conn.flush().await {
            Ok(()) => {
                self.stats_sent += 1;
                self.log.debug(|| {
                    format!(
                        "Performance stats sent to server (CPU={:.2} MEM={:.2})",
                        s.cpu_pct, s.mem_pct
                    )
                });
            }
            Err(e) => self.lost(send_error(e)),
        }
        self.cpu.end_work(work);
    }

    /// A stats sample. What the sampler noted goes to the log: a failed measurement (a figure
    /// clamped, the tick counters' fallback) as a warning, a folded sample at debug level.
    fn sample(&mut self) -> crate::stats::Sample {
        let s = self.sampler.sample();
        for note in self.sampler.take_notes() {
            if note.is_warning() {
                self.log.warn(note.to_string());
            } else {
                self.log.debug(|| note.to_string());
            }
        }
        let covered_s = self.sampler.covered().as_secs_f64();
        self.log
            .debug(|| format!("CPU sample: {:.2} % over {covered_s:.3} s", s.cpu_pct));
        s
    }

    /// Each stream's `stream_stats` line (a workload that writes from several streams) and
    /// the checks of the written data so far (`verify`, once the workload checked a file), to
    /// a loadmon server only: sent with each stats sample.
    fn stream_lines(&self) -> Vec<Message> {
        if self.loadmon_server {
            let counters = self.control.counters();
            let mut lines = counters.stream_stats();
            lines.extend(counters.verify_stats().map(Message::Verify));
            lines
        } else {
            Vec::new()
        }
    }

    /// Every second of the run, to a loadmon server: the 1-s lines, fed together and flushed
    /// once.
    async fn second(&mut self) {
        let work = self.cpu.start_work();
        for m in &self.second_lines() {
            self.conn.feed(m);
        }
        if let Err(e) = self.conn.flush().await {
            self.lost(send_error(e));
        }
        self.cpu.end_work(work);
    }

    /// The lines of one second (and of the run's end, before the verdict): the workload's
    /// bytes so far at this wall-clock time (`tput`), the host's I/O view (`io`), the
    /// chunk write latencies of the interval that ended (`lat`, when it had writes), and a
    /// paced run's response times and schedule lag (`rlat`, `pace`).
    fn second_lines(&mut self) -> Vec<Message> {
        let mut lines = vec![tput_line(self.control.counters())];
        lines.extend(self.host_io.as_mut().map(HostIoTask::line));
        lines.extend(self.lat_line());
        let (pace, dropped) = self.control.counters().take_pace_lines(unix_ms());
        for warning in dropped {
            self.log.warn(warning);
        }
        lines.extend(pace);
        lines
    }

    /// The `lat` line of the interval that ends now, if it had writes and its histogram
    /// fits the line (else it is dropped, with a log line).
    fn lat_line(&mut self) -> Option<Message> {
        let t1_ms = unix_ms();
        let (t0_ms, h) = self.control.counters().take_interval(t1_ms)?;
        match IntervalHistogram::encode(&h) {
            Some(hist) => Some(Message::Lat(Box::new(LatLine { t0_ms, t1_ms, hist }))),
            None => {
                self.log.warn(format!(
                    "the latency histogram of {} write(s) does not fit a lat line even at 1 \
                     significant digit: that interval's latencies are not sent",
                    h.len()
                ));
                None
            }
        }
    }

    /// A line from the server during the run: a refusal stops the run, the end of the
    /// connection too; a clock answer is sampled; anything else is ignored.
    async fn on_line(&mut self, msg: std::result::Result<Option<Parsed>, FrameError>) {
        match msg {
            Ok(Some(Ok(Message::Refused(r)))) => {
                self.control.stop();
                self.trouble.get_or_insert(refusal(&r));
            }
            Ok(Some(Ok(Message::ClockAnswer { c0_us, s1_us }))) if self.clock.is_some() => {
                self.clock_answered(c0_us, s1_us).await;
            }
            Ok(Some(other)) => {
                self.ignored.warn(format!(
                    "ignored line from the server during the run: {other:?}"
                ));
            }
            Ok(None) => self.lost(Error::Disconnected(
                "the server closed the connection during the run".into(),
            )),
            Err(e) => self.lost(Error::from_frame(e, "read from the server")),
        }
    }

    /// Asks the server's time (the clock exchange; a loadmon server only).
    async fn clock_ask(&mut self) {
        if let Some(ask) = self.clock.as_mut().and_then(ClockProbe::ask) {
            self.forward(&ask).await;
        }
    }

    /// The server's answer to a clock ask: the sample goes back at once, with the next ask of
    /// the start's burst if one is due; an answer to no ask of ours is ignored.
    async fn clock_answered(&mut self, c0_us: u64, s1_us: u64) {
        let Some(probe) = self.clock.as_mut() else {
            return;
        };
        let Some(sample) = probe.answered(c0_us, s1_us) else {
            self.ignored.warn(format!(
                "ignored clock:{c0_us}:{s1_us}: it answers no ask of this client"
            ));
            return;
        };
        self.conn.feed(&sample);
        if let Some(next) = probe.next_of_burst() {
            self.conn.feed(&next);
        }
        if let Err(e) = self.conn.flush().await {
            self.lost(send_error(e));
        }
    }

    /// Ends the run after the workload's `outcome`: the context dies, the workload's last
    /// lines, one last stats sample and the verdict (`done` or `error:<reason>`) go out.
    async fn finish(
        mut self,
        outcome: Result<()>,
        client_id: u32,
        run_time_s: f64,
    ) -> Result<ClientResult> {
        // The context is dead from here: a thread the workload left behind sees it stopped,
        // and its reports are refused rather than silently lost.
        self.control.finish();

        // Whatever the workload queued (its last file_roll) goes out before the verdict.
        self.log_notes();
        self.rx.close();
        let mut tail = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            tail.push(m);
        }
        let verdict = match (outcome, self.trouble.take()) {
            (Err(e), _) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        };
        if self.server_open {
            // One last stats sample, so that every run has CPU, memory and bytes, however
            // short: a run shorter than the stats period has this one only.
            let s = self.sample();
            if self.loadmon_server {
                // The last second's lines: the run's last bytes, however short the second.
                tail.extend(self.second_lines());
            }
            tail.extend(self.stream_lines());
            tail.extend(stats_batch(self.control.counters(), &s));
            self.stats_sent += 1;
            tail.push(match &verdict {
                Ok(()) => Message::Done,
                Err(e) => Message::Error(e.to_string()),
            });
            for m in &tail {
                self.conn.feed(m);
            }
            if let (Err(e), Ok(())) = (self.conn.flush().await, &verdict) {
                return Err(send_error(e));
            }
        }
        verdict?;
        Ok(self.result(client_id, run_time_s))
    }

    /// What the run produced.
    fn result(&self, client_id: u32, run_time_s: f64) -> ClientResult {
        let counters = self.control.counters();
        let bytes_written = counters.bytes_written();
        let pct = counters.percentiles_us();
        ClientResult {
            client_id,
            files_written: counters.files_written(),
            bytes_written,
            run_time_s,
            throughput_mb_s: if run_time_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / run_time_s
            } else {
                0.0
            },
            chunk_p50_ms: pct.map(|p| p.0 as f64 / 1000.0),
            chunk_p99_ms: pct.map(|p| p.1 as f64 / 1000.0),
            heartbeats_sent: self.heartbeats_sent,
            stats_sent: self.stats_sent,
            verify: counters.verify_stats().map(|v| VerifyResult {
                files_checked: v.files_checked,
                blocks_checked: v.blocks_checked,
                errors: v.errors,
                errors_total: v.errors.total(),
            }),
        }
    }
}

/// A run's workload on its blocking thread. Dropped with the run (its end, or its future
/// dropped), it stops the workload first: [`Context::is_stopped`] and
/// [`Context::is_finished`] become true, so the workload returns at its next check and the
/// runtime can shut down; only then is the thread let go (detached: a blocking thread cannot be
/// cancelled, and a `Drop` cannot wait).
struct Running {
    work: tokio::task::JoinHandle<Result<()>>,
    control: RunControl,
    /// Whether the workload has returned.
    joined: bool,
    log: Arc<EventLog>,
}

impl Running {
    /// Runs `workload` with `ctx` on a blocking thread, whose CPU counts as `cpu`'s writer.
    fn spawn<W: Workload>(
        mut workload: W,
        ctx: Context,
        cpu: &Arc<ClientCpu>,
        control: RunControl,
        log: Arc<EventLog>,
    ) -> Running {
        let writer_cpu = cpu.clone();
        let work = tokio::task::spawn_blocking(move || {
            let _writer = writer_cpu.enter_writer();
            // A panic in user code must not unwind through the runtime: it becomes an error.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| workload.run(&ctx)))
                .unwrap_or_else(|p| Err(Error::Workload(panic_message(&p))))
        });
        Running {
            work,
            control,
            joined: false,
            log,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.control.finish();
        if !self.joined {
            self.log.warn(
                "Client run cancelled (its future was dropped): the workload was told to stop",
            );
        }
        // `work` is dropped after this: the thread is detached once the stop is set.
    }
}

/// The 1-s lines' rhythm: a tick at once (the run's start: the first interval's base), then
/// one every second; a late tick does not bring a burst of them.
fn second_ticker() -> tokio::time::Interval {
    let mut t = tokio::time::interval(Duration::from_secs(1));
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// `tput`: the workload's bytes so far at this moment on the wall clock (Unix ms).
fn tput_line(counters: &Counters) -> Message {
    Message::Tput {
        t_ms: unix_ms(),
        bytes: counters.bytes_written(),
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

/// How often the clock exchange runs after the start's burst.
const CLOCK_PERIOD: Duration = Duration::from_secs(10);

/// Clock exchanges at the start of the run, each sent when the previous one's answer came:
/// the server keeps the one with the quickest round trip, so a few at once give it a good one
/// from the start.
const CLOCK_BURST: u32 = 4;

/// The clock exchange's ticker: its first tick at once (the start of the run), then every
/// [`CLOCK_PERIOD`].
fn clock_ticker() -> tokio::time::Interval {
    let mut t = tokio::time::interval(CLOCK_PERIOD);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// This host's wall clock, Unix microseconds (`None` before 1970 or after the protocol's
/// bound).
fn unix_us_now() -> Option<u64> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_micros())
        .ok()
        .filter(|us| *us <= MAX_UNIX_US)
}

/// The client's side of the clock exchange with a loadmon server (see
/// [`Message::ClockSample`]): it asks with its wall clock (`c0`), and when the answer comes
/// sends the sample back, `c2` being `c0` plus the monotonic time since the ask (so that a step
/// of the wall clock meanwhile does not make a round trip up).
#[derive(Debug)]
struct ClockProbe {
    /// The ask waiting for its answer: its `c0` (Unix µs) and when it was sent.
    asked: Option<(u64, Instant)>,
    /// Asks of the start's burst still due.
    burst_left: u32,
}

impl ClockProbe {
    fn new() -> Self {
        ClockProbe {
            asked: None,
            burst_left: CLOCK_BURST.saturating_sub(1),
        }
    }

    /// A new ask (an earlier one still unanswered is given up); `None` if this host's clock
    /// cannot be read as a Unix time.
    fn ask(&mut self) -> Option<Message> {
        let c0_us = unix_us_now()?;
        self.asked = Some((c0_us, Instant::now()));
        Some(Message::ClockAsk { c0_us })
    }

    /// The server's answer: the sample to send, or `None` if it answers no pending ask.
    fn answered(&mut self, c0_us: u64, s1_us: u64) -> Option<Message> {
        let (asked_us, at) = self.asked.filter(|(c0, _)| *c0 == c0_us)?;
        self.asked = None;
        let rtt_us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
        Some(Message::ClockSample {
            c0_us: asked_us,
            s1_us,
            c2_us: asked_us.saturating_add(rtt_us).min(MAX_UNIX_US),
        })
    }

    /// The next ask of the start's burst, if one is due.
    fn next_of_burst(&mut self) -> Option<Message> {
        self.burst_left = self.burst_left.checked_sub(1)?;
        self.ask()
    }
}

/// A client's host I/O view ([`HostIo`]): the device under the workload's data directory is
/// found on a blocking thread (a `stat` on a hung file system must not stall the run); until
/// it is, the host-wide figures are sent alone.
struct HostIoTask {
    resolving: Option<tokio::task::JoinHandle<HostIo>>,
    view: HostIo,
}

impl HostIoTask {
    /// Starts finding the device under `dir`.
    fn start(dir: Option<&std::path::Path>) -> HostIoTask {
        let dir = dir.map(std::path::Path::to_path_buf);
        HostIoTask {
            resolving: Some(tokio::task::spawn_blocking(move || {
                HostIo::for_dir(dir.as_deref())
            })),
            view: HostIo::for_dir(None),
        }
    }

    /// The `io` line of the latest sample (shared with the process's other clients).
    fn line(&mut self) -> Message {
        use futures_util::FutureExt as _;
        if self.resolving.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(Ok(view)) = self.resolving.take().and_then(|h| h.now_or_never()) {
                self.view = view;
            }
        }
        let (t_ms, s) = self.view.sample();
        io_message(t_ms, &s)
    }
}

/// The `io` line of sample `s` taken at Unix ms `t_ms`: figures to two decimals, within the
/// wire's bounds.
fn io_message(t_ms: u64, s: &HostIoSample) -> Message {
    let within = |v: Option<f64>, max: f64| {
        v.filter(|x| x.is_finite())
            .map(|x| round2(x.clamp(0.0, max)))
    };
    Message::Io {
        t_ms,
        io: HostIoSample {
            util_pct: within(s.util_pct, 100.0),
            write_await_ms: within(s.write_await_ms, MAX_IO_FIGURE),
            queue_depth: within(s.queue_depth, MAX_IO_FIGURE),
            device_write_mb_s: within(s.device_write_mb_s, MAX_IO_FIGURE),
            psi_some_avg10_pct: within(s.psi_some_avg10_pct, 100.0),
            psi_full_avg10_pct: within(s.psi_full_avg10_pct, 100.0),
            dirty_bytes: s.dirty_bytes,
            writeback_bytes: s.writeback_bytes,
        },
    }
}

/// The text of a panic payload.
fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_takes_only_the_answer_to_its_ask_and_bursts_at_the_start() {
        let mut p = ClockProbe::new();
        let Some(Message::ClockAsk { c0_us }) = p.ask() else {
            panic!("this host's clock is a Unix time")
        };
        assert_eq!(p.answered(c0_us + 1, 5), None, "not our ask");
        std::thread::sleep(Duration::from_millis(2));
        let Some(Message::ClockSample {
            c0_us: c0,
            s1_us: 5,
            c2_us,
        }) = p.answered(c0_us, 5)
        else {
            panic!("a sample")
        };
        assert_eq!(c0, c0_us);
        assert!(
            c2_us - c0_us >= 2_000,
            "the monotonic round trip: {c2_us} - {c0_us}"
        );
        assert_eq!(p.answered(c0_us, 5), None, "once");
        for _ in 1..CLOCK_BURST {
            assert!(matches!(p.next_of_burst(), Some(Message::ClockAsk { .. })));
        }
        assert_eq!(p.next_of_burst(), None, "then every CLOCK_PERIOD");
    }
}
