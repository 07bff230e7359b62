//! A run's [`Context`] (the workload's side) and its [`RunControl`] (the client's side).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::protocol::{round2, Message};

mod pace;

use pace::PaceCounters;

/// Counters a workload fills in through its [`Context`].
#[derive(Debug)]
pub(crate) struct Counters {
    files_written: AtomicU64,
    bytes_written: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
    /// The writes since the last `lat` line ([`Counters::take_interval`]).
    interval: Mutex<Interval>,
    /// A paced run's figures since the last `pace` line (`None` without a rate).
    pace: Mutex<Option<PaceCounters>>,
    /// Each stream's own figures, for a workload that writes from several
    /// ([`Context::stream`]); empty otherwise.
    streams: Mutex<BTreeMap<u32, StreamCounters>>,
    /// The workload's engines as it described them ([`Context::report_engine`]), each once.
    engines: Mutex<Vec<String>>,
    /// The checks of the written data so far ([`Context::record_verify`]; `None` before the
    /// first), and how many findings went out on `vfind` lines.
    verify: Mutex<Option<(crate::protocol::VerifyStats, usize)>>,
    /// What the workload has to say in the client's log ([`Context::note`]): (a warning, the
    /// text), taken by the client ([`Counters::take_notes`]).
    notes: Mutex<Vec<(bool, String)>>,
}

/// One stream's figures: its share of the client's.
#[derive(Debug)]
struct StreamCounters {
    bytes_written: u64,
    files_written: u64,
    latency_us: Histogram<u64>,
}

/// The chunk write latencies of the interval in progress, and when it began.
#[derive(Debug)]
struct Interval {
    /// Its start, Unix ms.
    t0_ms: u64,
    latency_us: Histogram<u64>,
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
            interval: Mutex::new(Interval {
                t0_ms: crate::units::unix_ms(),
                latency_us: crate::latency::new_histogram(),
            }),
            pace: Mutex::new(None),
            streams: Mutex::new(BTreeMap::new()),
            engines: Mutex::new(Vec::new()),
            verify: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// What the workload noted for the client's log since the last call: (a warning, the
    /// text), in order.
    pub(crate) fn take_notes(&self) -> Vec<(bool, String)> {
        self.notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// The checks of the written data so far: a `verify` line's figures (`None` if the
    /// workload checked nothing yet).
    pub(crate) fn verify_stats(&self) -> Option<crate::protocol::VerifyStats> {
        self.verify.lock().ok()?.as_ref().map(|(s, _)| *s)
    }

    /// One `stream_stats` line per stream so far, in stream order (none for a workload that
    /// writes from one stream).
    pub(crate) fn stream_stats(&self) -> Vec<Message> {
        let Ok(streams) = self.streams.lock() else {
            return Vec::new();
        };
        streams
            .iter()
            .map(|(&stream, c)| {
                let h = &c.latency_us;
                let q = |x: f64| {
                    if h.is_empty() {
                        0
                    } else {
                        h.value_at_quantile(x)
                    }
                };
                Message::StreamStats(crate::protocol::StreamStats {
                    stream,
                    bytes_written: c.bytes_written,
                    files_written: c.files_written,
                    chunk_p50_us: q(0.5),
                    chunk_p99_us: q(0.99),
                    chunk_max_us: if h.is_empty() { 0 } else { h.max() },
                })
            })
            .collect()
    }

    /// Runs `f` on stream `stream`'s figures (created at its first use).
    fn on_stream(&self, stream: u32, f: impl FnOnce(&mut StreamCounters)) {
        if let Ok(mut streams) = self.streams.lock() {
            let c = streams.entry(stream).or_insert_with(|| StreamCounters {
                bytes_written: 0,
                files_written: 0,
                latency_us: crate::latency::new_histogram(),
            });
            f(c);
        }
    }

    /// A paced run's lines of the interval that ends at `t1_ms` (Unix ms), `rlat` and `pace`
    /// (none for a run without a rate), and the warnings about a histogram left out.
    pub(crate) fn take_pace_lines(&self, t1_ms: u64) -> (Vec<Message>, Vec<String>) {
        match self.pace.lock().as_deref_mut() {
            Ok(Some(p)) => p.take_lines(t1_ms, Instant::now()),
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// Ends the interval in progress at `t1_ms` (Unix ms) and starts the next: its start and
    /// its writes, or `None` if it had none (nothing is sent for it).
    pub(crate) fn take_interval(&self, t1_ms: u64) -> Option<(u64, Histogram<u64>)> {
        let mut i = self.interval.lock().ok()?;
        let t0_ms = std::mem::replace(&mut i.t0_ms, t1_ms);
        if i.latency_us.is_empty() {
            return None;
        }
        let h = std::mem::replace(&mut i.latency_us, crate::latency::new_histogram());
        Some((t0_ms.min(t1_ms), h))
    }

    /// Files reported so far.
    pub(crate) fn files_written(&self) -> u64 {
        self.files_written.load(Ordering::Relaxed)
    }

    /// Bytes reported so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// The median and 99th percentile write latency, µs (`None` before any write).
    pub(crate) fn percentiles_us(&self) -> Option<(u64, u64)> {
        let h = self.latency_us.lock().ok()?;
        (!h.is_empty()).then(|| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }

    /// The `write_stats` line of the counters so far.
    pub(crate) fn write_stats(&self) -> Message {
        let (p50, p99) = self.percentiles_us().unwrap_or((0, 0));
        Message::WriteStats {
            bytes_written: self.bytes_written(),
            chunk_p50_us: p50,
            chunk_p99_us: p99,
        }
    }
}

/// The client's side of a run's [`Context`]: it stops the run, ends it, and reads its
/// counters.
#[derive(Debug, Clone)]
pub(crate) struct RunControl {
    stopped: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl RunControl {
    /// Tells the workload to stop ([`Context::is_stopped`]).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether the run was told to stop.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Ends the run: the context is dead from here (stopped, its reports refused).
    pub(crate) fn finish(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.finished.store(true, Ordering::Release);
    }

    /// What the workload reported.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
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
    /// The stream this context's reports also count for ([`Context::stream`]).
    stream: Option<u32>,
    /// The client's CPU account, where its writer threads register ([`Context::writer_thread`]).
    cpu: Option<Arc<crate::stats::ClientCpu>>,
}

impl Context {
    /// The context of a run of client `client_id` that started at `started`, with the
    /// workload's `run_time`; its control, and the lines the workload queues for the server.
    pub(crate) fn new(
        client_id: u32,
        started: Instant,
        run_time: Option<Duration>,
    ) -> (Context, RunControl, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let control = RunControl {
            stopped: Arc::new(AtomicBool::new(false)),
            finished: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Counters::new()),
        };
        let ctx = Context {
            client_id,
            started,
            // A run time too long to add to now has no deadline (validated settings are
            // at most 10^9 s).
            deadline: run_time.and_then(|t| started.checked_add(t)),
            tx,
            stopped: control.stopped.clone(),
            finished: control.finished.clone(),
            counters: control.counters.clone(),
            stream: None,
            cpu: None,
        };
        (ctx, control, rx)
    }

    /// The context with the client's CPU account: the threads a workload writes from
    /// register there ([`Context::writer_thread`]).
    pub(crate) fn with_cpu(mut self, cpu: Arc<crate::stats::ClientCpu>) -> Context {
        self.cpu = Some(cpu);
        self
    }

    /// A context for stream `index` (0-based) of a workload that writes from several streams
    /// (the file writer's `jobs`): what it reports counts for the client, as ever, and for
    /// that stream too, whose own figures (bytes, files, chunk latency) a loadmon server gets
    /// on a `stream_stats` line and shows in its report (`clients[].streams`).
    ///
    /// # Errors
    /// [`Error::Config`] for an index of 256 or more (the most streams a client has,
    /// [`JOBS`](crate::config::JOBS)).
    pub fn stream(&self, index: u32) -> Result<Context> {
        let max = crate::config::JOBS.max;
        if u64::from(index) >= max {
            return Err(Error::Config(format!(
                "stream index {index} is out of range: a client has at most {max} streams"
            )));
        }
        Ok(Context {
            stream: Some(index),
            ..self.clone()
        })
    }

    /// The stream this context reports for, if it is a stream's ([`Context::stream`]).
    pub fn stream_index(&self) -> Option<u32> {
        self.stream
    }

    /// Counts the calling thread as one of the client's writer threads while the returned
    /// guard lives (drop it on the same thread): a workload that writes from threads of its
    /// own calls it on each, so that their CPU is the client's. `None` where the client does
    /// not measure its threads. The thread that runs [`Workload::run`](super::Workload::run)
    /// is counted already.
    pub fn writer_thread(&self) -> Option<crate::stats::WriterGuard> {
        self.cpu.as_ref().map(crate::stats::ClientCpu::enter_writer)
    }

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

    /// Time left of the workload's [`Workload::run_time`](super::Workload::run_time) (`None`
    /// if it has none; zero once the run is over).
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

    /// Says how the workload writes (its I/O engine as the engine describes itself): an
    /// `engine` line for the client's log and a loadmon server's report, once for each
    /// different description (the line carries all of them so far, `; `-separated: streams
    /// that got different engines).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub(crate) fn report_engine(&self, text: String) -> Result<()> {
        self.alive()?;
        let Ok(mut seen) = self.counters.engines.lock() else {
            return Ok(());
        };
        if !seen.contains(&text) {
            seen.push(text);
            let _ = self.tx.send(Message::Engine(seen.join("; ")));
        }
        Ok(())
    }

    /// Records the check of one file the workload wrote ([`crate::verify::check_file`]): its
    /// blocks and bad blocks count for the client's `verify` line (sent with each stats
    /// sample and before `done`, to a loadmon server only), and its findings go out at once
    /// on `vfind` lines, the run's first [`MAX_FINDINGS_SENT`](crate::protocol::MAX_FINDINGS_SENT)
    /// of them (the rest are counted only).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub(crate) fn record_verify(&self, report: &crate::verify::FileReport) -> Result<()> {
        self.alive()?;
        let Ok(mut v) = self.counters.verify.lock() else {
            return Ok(());
        };
        let (stats, sent) = v.get_or_insert_with(Default::default);
        stats.files_checked = stats.files_checked.saturating_add(1);
        stats.blocks_checked = stats.blocks_checked.saturating_add(report.blocks_checked);
        stats.errors.add_all(&report.errors);
        for f in &report.findings {
            if *sent >= crate::protocol::MAX_FINDINGS_SENT {
                break;
            }
            *sent += 1;
            let line = crate::protocol::VerifyFinding::of(f);
            let _ = self.tx.send(Message::VerifyFinding(Box::new(line)));
        }
        Ok(())
    }

    /// Says the workload checks its data: the client's `verify` figures start at zero (a
    /// `verify` line goes out with each stats sample, and the client's result has them),
    /// before any file is checked.
    pub(crate) fn start_verify(&self) {
        if let Ok(mut v) = self.counters.verify.lock() {
            v.get_or_insert_with(Default::default);
        }
    }

    /// A line for the client's log (a warning if `warning`), taken at its next heartbeat,
    /// stats sample or the run's end. Bounded: past 1,000 lines not yet taken, more are
    /// dropped.
    pub(crate) fn note(&self, warning: bool, text: String) {
        if let Ok(mut n) = self.counters.notes.lock() {
            if n.len() < 1000 {
                n.push((warning, text));
            }
        }
    }

    /// Reports one completed file (`file_roll`).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub fn file_rollover(&self) -> Result<()> {
        self.alive()?;
        self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        if let Some(stream) = self.stream {
            self.counters.on_stream(stream, |c| {
                c.files_written = c.files_written.saturating_add(1)
            });
        }
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
        if let Ok(mut i) = self.counters.interval.lock() {
            crate::latency::record_us(&mut i.latency_us, us);
        }
        if let Some(stream) = self.stream {
            self.counters.on_stream(stream, |c| {
                c.bytes_written = c.bytes_written.saturating_add(bytes);
                crate::latency::record_us(&mut c.latency_us, us);
            });
        }
        Ok(())
    }

    /// The run is paced at `rate_bytes_per_s` over `streams` streams: from now on the client
    /// sends its schedule figures (`rlat`, `pace`) each second.
    pub(crate) fn start_pace(&self, rate_bytes_per_s: f64, streams: usize) {
        if let Ok(mut p) = self.counters.pace.lock() {
            *p = Some(PaceCounters::new(
                rate_bytes_per_s,
                streams,
                crate::units::unix_ms(),
            ));
        }
    }

    /// Paced stream `stream`'s next chunk is due at `due`: from then on, until the stream
    /// hands it out, the stream is behind (its schedule lag, as the stream's `Pacer::lag`).
    pub(crate) fn pace_due(&self, stream: usize, due: Instant) {
        if let Ok(Some(p)) = self.counters.pace.lock().as_deref_mut() {
            p.due(stream, due);
        }
    }

    /// Paced stream `stream` stopped `lag` behind its schedule: that stays its lag.
    pub(crate) fn pace_end(&self, stream: usize, lag: Duration) {
        if let Ok(Some(p)) = self.counters.pace.lock().as_deref_mut() {
            p.end(stream, lag);
        }
    }

    /// Records one paced chunk: its response time (from when it was due to the end of its
    /// write) and its start lag (how late it began).
    ///
    /// # Errors
    /// [`Error::State`] once the run is over.
    pub(crate) fn record_schedule(&self, response: Duration, start_lag: Duration) -> Result<()> {
        self.alive()?;
        if let Ok(Some(p)) = self.counters.pace.lock().as_deref_mut() {
            p.record(response, start_lag);
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
        self.counters.files_written()
    }

    /// Bytes reported so far.
    pub fn bytes_written(&self) -> u64 {
        self.counters.bytes_written()
    }
}
