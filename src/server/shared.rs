//! What every connection and every control of one server shares: the clients' records and
//! the ids handed out, the counters, the signals, the start barrier, and the report built
//! from them. Taking an id and a `max_clients` slot ([`Shared::register`]) and the token
//! guard ([`Shared::auth_gate`], [`Shared::auth_failed`]) are here too, so that the acceptor
//! and the connection driver both use them without using each other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Local};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::barrier::{self, Barrier, Release};
use super::config::ServerConfig;
use super::guard::{self, Failed, LOCKOUT};
use super::record::{seconds_since, ClientRecord};
use super::session::{late_reason, Rules, WarnBudget};
use super::signal;
use crate::events::{EventBus, EventKind};
use crate::latency::{FleetIntervals, FleetPace, LatencySummary};
use crate::logging::EventLog;
use crate::protocol::{Message, COMMANDS};
use crate::report::{ClientReport, Report, Total};
use crate::series::{ClientSeries, FleetBucket, FleetTput, TotalSample, TotalSeries};
use crate::verdict::Input;

/// One client's record, locked by its own connection on every read and by snapshots: no lock
/// is shared between connections on the message path.
pub(super) type ClientCell = Arc<Mutex<ClientRecord>>;

pub(super) fn lock_cell(c: &ClientCell) -> MutexGuard<'_, ClientRecord> {
    // A handler that panicked while holding the lock leaves consistent-enough counters.
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ids handed out and the clients that got them.
#[derive(Debug)]
pub(super) struct State {
    pub(super) clients: BTreeMap<u32, ClientCell>,
    /// The next id to give; `None` once the id space is used up.
    pub(super) next_id: Option<u32>,
    /// Ids given so far.
    pub(super) issued: u64,
    pub(super) end_time: Option<DateTime<Local>>,
    /// Whether the run was stopped (signal, [`ServerControl::stop`](super::ServerControl::stop)) rather than ending by
    /// itself.
    pub(super) stopped: bool,
}

/// Where lines that did not parse are counted, after the commands' own counters.
pub(super) const INVALID: usize = COMMANDS.len();

/// Lines received per command, on cache lines of their own: every read of every connection
/// adds to them, and the rest of [`Shared`] is read by every thread.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct MessageCounts(pub(super) [AtomicU64; COMMANDS.len() + 1]);

/// What every connection and every control shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) config: ServerConfig,
    pub(super) rules: Rules,
    pub(super) log: Arc<EventLog>,
    pub(super) stop: CancellationToken,
    pub(super) start_time: DateTime<Local>,
    pub(super) started: Instant,
    pub(super) local_addr: SocketAddr,
    /// The HTTP listener's address, once whoever started it says so.
    pub(super) http_addr: OnceLock<SocketAddr>,
    pub(super) events: EventBus,
    /// Lines received per command ([`COMMANDS`] order), then lines that did not parse.
    pub(super) messages: MessageCounts,
    pub(super) connections: AtomicU64,
    pub(super) refused: AtomicU64,
    /// `max_clients` slots, taken at `get_cid`.
    pub(super) slots: Arc<Semaphore>,
    /// `max_pending` places for connections without an id.
    pub(super) pending: Arc<Semaphore>,
    /// Warnings about refused connections (a flood of them must not flood the log).
    pub(super) refusal_warnings: Mutex<WarnBudget>,
    /// Failed token attempts per peer address.
    pub(super) auth_guard: Mutex<guard::AuthGuard>,
    /// The final report, once the server stopped.
    pub(super) final_report: Mutex<Option<Report>>,
    /// Fleet mode: the start barrier.
    pub(super) barrier: Option<Mutex<Barrier>>,
    /// Fleet mode: fired when the barrier releases; every waiting connection then sends
    /// `run_tests`.
    pub(super) fleet_go: signal::Signal,
    /// Fired once the server stops accepting: every connection wraps up ("server stopped").
    pub(super) wrap_up: signal::Signal,
    /// Fired once the final report is set.
    pub(super) finished: CancellationToken,
    /// Stops the HTTP listener: the linger's end, [`ServerControl::close_http`](super::ServerControl::close_http), a cancelled run.
    pub(super) http_stop: CancellationToken,
    /// Fired once the HTTP listener has closed (at once for a server without one).
    pub(super) http_done: CancellationToken,
    /// The fleet's chunk write latencies (`lat` lines), merged; locked after a client's
    /// record (never the other way round).
    pub(super) latency: Mutex<FleetIntervals>,
    /// The fleet's paced figures (`rlat`, `pace` lines), merged; locked after a client's
    /// record (never the other way round).
    pub(super) pace: Mutex<FleetPace>,
    /// The thresholds, checked once a second (`None`: no rule).
    pub(super) thresholds: Option<super::thresholds::Thresholds>,
    /// The run's parameters the report carries (`Report::params`).
    pub(super) params: BTreeMap<String, String>,
}

impl Shared {
    /// The shared state of a server with `config` bound to `local_addr`, starting `now`.
    pub(super) fn new(
        config: ServerConfig,
        log: EventLog,
        local_addr: SocketAddr,
        run_id: u64,
        now: Instant,
        thresholds: Option<super::thresholds::Thresholds>,
    ) -> Shared {
        let params = super::thresholds::run_params(&config);
        let barrier = config
            .fleet
            .as_ref()
            .map(|f| Mutex::new(Barrier::new(f.expect_clients, f.start_timeout, now)));
        Shared {
            state: Mutex::new(State {
                clients: BTreeMap::new(),
                next_id: Some(config.first_client_id),
                issued: 0,
                end_time: None,
                stopped: false,
            }),
            rules: Rules::new(&config, run_id),
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
            latency: Mutex::new(FleetIntervals::default()),
            pace: Mutex::new(FleetPace::default()),
            thresholds,
            params,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked while holding the lock leaves consistent-enough counters;
        // keep serving rather than poisoning every other client.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn cells(&self) -> Vec<ClientCell> {
        self.lock().clients.values().cloned().collect()
    }

    /// Counts `n` lines of kind `index` ([`COMMANDS`] order, then [`INVALID`]).
    pub(super) fn count(&self, index: usize, n: u64) {
        if let Some(c) = self.messages.0.get(index) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(super) fn barrier(&self) -> Option<MutexGuard<'_, Barrier>> {
        self.barrier
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts client `id`'s `ready` at the barrier (fleet mode; `None` otherwise), releasing
    /// it if this one completes the fleet.
    pub(super) fn join_barrier(&self, id: u32, now: Instant) -> Option<barrier::Joined> {
        let joined = self.barrier()?.join(id, now);
        if let barrier::Joined::Released(r) = joined {
            self.released(r);
        }
        Some(joined)
    }

    /// Client `id` went away: it no longer counts if the fleet has not started.
    pub(super) fn leave_barrier(&self, id: u32) {
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
    pub(super) fn released(&self, r: Release) {
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
    pub(super) fn fleet_status(&self) -> Option<FleetStatus> {
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
    pub(super) fn wall_time(&self, t: Instant) -> DateTime<Local> {
        let since = t.saturating_duration_since(self.started);
        chrono::Duration::from_std(since)
            .ok()
            .and_then(|d| self.start_time.checked_add_signed(d))
            .unwrap_or(self.start_time)
    }

    pub(super) fn final_report(&self) -> MutexGuard<'_, Option<Report>> {
        self.final_report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the run: the end time, the final report (kept, announced as the last event; its
    /// text is logged by the caller, see `Server::run_then`). `stopped`: stopped rather than
    /// ended by itself.
    pub(super) fn finish(&self, stopped: bool) -> Report {
        let report = {
            let mut st = self.lock();
            st.end_time = Some(Local::now());
            st.stopped = stopped;
            drop(st);
            let mut r = self.report();
            self.final_verdict(&mut r);
            r
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
    pub(super) fn cancel_run(&self) {
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
    pub(super) fn current_report(&self) -> Report {
        if let Some(r) = self.final_report().as_ref() {
            return r.clone();
        }
        let mut r = self.report();
        self.live_verdict(&mut r);
        r
    }

    /// Logs `line` within the refusals' budget (a flood of them must not flood the log).
    pub(super) fn warn_refusal(&self, line: String) {
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
    pub(super) fn note_refusal(&self, peer: SocketAddr, reason: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| EventKind::Refused {
            peer: peer.to_string(),
            reason: reason.to_string(),
        });
        self.warn_refusal(format!("Refusing {peer}: {reason}"));
    }

    pub(super) fn report(&self) -> Report {
        let now = Instant::now();
        let (end_time, stopped) = {
            let st = self.lock();
            (st.end_time, st.stopped)
        };
        let mut clients = Vec::new();
        let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
        let mut series = Vec::new();
        let mut io_series = Vec::new();
        let mut latency_series = Vec::new();
        // Each started client's first and last point (time since the server started, bytes),
        // for the all-clients series.
        let mut spans = Vec::new();
        // Each client's first `tput` report (id, time since the server started).
        let mut tput_origins = Vec::new();
        for cell in self.cells() {
            let c = lock_cell(&cell);
            clients.push(c.to_report(now));
            series.extend(c.series_report());
            tput_origins.extend(
                c.tput
                    .as_deref()
                    .and_then(|t| t.origin_s())
                    .map(|o| (c.id(), o)),
            );
            io_series.extend(c.io_series_report());
            latency_series.extend(c.latency_series_report());
            if let Some(s) = c.started {
                first_start = Some(first_start.map_or(s, |f| f.min(s)));
                let e = c.ended.unwrap_or(now);
                last_end = Some(last_end.map_or(e, |l| l.max(e)));
                spans.push((
                    c.id(),
                    c.series.origin(),
                    (seconds_since(self.started, e), c.bytes_written()),
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
            let from_s = seconds_since(self.started, from);
            let to_s = seconds_since(self.started, to);
            total.series = total_series(from_s, to_s, spans, &series);
            total.tput = fleet_tput(from_s, to_s, &tput_origins, &series);
        }
        total.common_start = common.map(|t| self.wall_time(t).to_rfc3339());
        if let Some(f) = fleet {
            total.expected_clients = Some(f.expected);
            total.started_clients = f.started;
        }
        self.latency_totals(&mut total, &clients);
        Report {
            start_time: self.start_time.to_rfc3339(),
            end_time: end_time.unwrap_or_else(Local::now).to_rfc3339(),
            total,
            warnings: Report::warnings_of(&clients),
            clients,
            series,
            stopped,
            io_series,
            latency_series,
            params: self.params.clone(),
            verdict: None,
        }
    }

    /// The fleet's merged latencies (`lat` lines).
    pub(super) fn fleet_latency(&self) -> MutexGuard<'_, FleetIntervals> {
        self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fleet's latency over the run and its series, and the paced `clients`' figures
    /// with the fleet's, into `total`.
    fn latency_totals(&self, total: &mut Total, clients: &[ClientReport]) {
        let fleet = self.fleet_latency();
        total.latency = LatencySummary::of(fleet.run());
        total.latency_series = fleet.points();
        total.pace = Total::pace_of(clients, &self.fleet_pace());
    }

    /// The fleet's paced figures (`rlat`, `pace` lines).
    pub(super) fn fleet_pace(&self) -> MutexGuard<'_, FleetPace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A paced client's `rlat` or `pace` line `msg` at `now`: into its record `c` and the
    /// fleet's; a `pace` line is announced (a `schedule_lag` event). Returns why it was not
    /// taken.
    pub(super) fn paced(
        &self,
        c: &mut ClientRecord,
        msg: &Message,
        now: Instant,
    ) -> Result<(), &'static str> {
        if c.status() != crate::report::Status::Running {
            return Err("the client is not running");
        }
        let now_s = seconds_since(self.started, now);
        let fleet_took = match msg {
            Message::RespLat(l) => {
                let h = l.hist.histogram();
                let mid_s = c.pace((l.t0_ms, l.t1_ms), now_s, |p| p.add_response(h))?;
                self.fleet_pace().response.add(mid_s, h)
            }
            Message::Pace(p) => {
                let h = p.hist.as_ref().map(|h| h.histogram());
                let mid_s = c.pace((p.t0_ms, p.t1_ms), now_s, |cp| {
                    cp.add_pace(p.rate_mb_s, p.lag_us, h)
                })?;
                let took = h.is_none_or(|h| self.fleet_pace().lag.add(mid_s, h));
                let (id, figures) = (c.id(), c.pace.as_ref().map(|p| p.figures()));
                if let Some(f) = figures {
                    self.events.emit(|| EventKind::schedule_lag(id, &f));
                }
                took
            }
            _ => true,
        };
        if !fleet_took {
            return Err("the fleet's counts would overflow");
        }
        Ok(())
    }

    /// Client `id`'s `lat` interval `[t0_ms, t1_ms)` with the writes `h`, at `now`: into its
    /// record `c` and the fleet's. Returns why it was not taken.
    pub(super) fn latency(
        &self,
        c: &mut ClientRecord,
        interval_ms: (u64, u64),
        h: &hdrhistogram::Histogram<u64>,
        now: Instant,
    ) -> Result<(), &'static str> {
        if c.status() != crate::report::Status::Running {
            return Err("the client is not running");
        }
        let mid_s = c.latency(interval_ms, h, seconds_since(self.started, now))?;
        if !self.fleet_latency().add(mid_s, h) {
            return Err("the fleet's counts would overflow");
        }
        Ok(())
    }
}

/// A started client's first and last point (time since the server started, bytes), by id.
type Span = (u32, (f64, u64), (f64, u64));

/// The all-clients series from `from_s` to `to_s`: each started client's first and last
/// point (`spans`) with its stats samples in between (`series`; both in id order).
fn total_series(
    from_s: f64,
    to_s: f64,
    spans: Vec<Span>,
    series: &[ClientSeries],
) -> Vec<TotalSample> {
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
    all.finish()
}

/// The fleet's 1-s throughput from `from_s` to `to_s`: each client's `tput` points (in
/// `series`) from its first report (`origins`: id, time since the server started; both in id
/// order).
fn fleet_tput(
    from_s: f64,
    to_s: f64,
    origins: &[(u32, f64)],
    series: &[ClientSeries],
) -> Vec<FleetBucket> {
    let mut fleet = FleetTput::new(from_s, to_s);
    let mut own = series.iter().peekable();
    for &(id, origin_s) in origins {
        while own.next_if(|s| s.id < id).is_some() {}
        if let Some(s) = own.next_if(|s| s.id == id) {
            fleet.add(origin_s, &s.tput);
        }
    }
    fleet.finish()
}

/// Where a fleet server's start barrier is ([`ServerControl::fleet`](super::ServerControl::fleet)).
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

/// A client's slot and id, taken at `get_cid`.
pub(super) struct Admitted {
    pub id: u32,
    pub cell: ClientCell,
    /// Given back when the connection ends.
    pub slot: OwnedSemaphorePermit,
}

impl Shared {
    /// Takes a `max_clients` slot and the next id for `peer`, or says why not.
    pub(super) fn register(
        &self,
        peer: SocketAddr,
        protocol_version: Option<String>,
        now: Instant,
    ) -> Result<Admitted, String> {
        if let Some(r) = self.barrier().and_then(|b| b.released()) {
            return Err(late_reason(r.started));
        }
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| format!("server full: {} clients max", self.config.max_clients))?;
        let mut st = self.lock();
        if st.issued >= self.config.max_ids {
            return Err(format!(
                "client id limit reached: this run hands out at most {} ids",
                self.config.max_ids
            ));
        }
        let Some(id) = st.next_id else {
            return Err(format!(
                "client ids exhausted: the last id ({}) was given",
                u32::MAX
            ));
        };
        st.next_id = id.checked_add(1);
        st.issued += 1;
        // The origin of the client-stamped times (`tput`, `io`, `lat`,
        // `clock`) on the server's
        // timeline.
        let record = ClientRecord::new(id, peer, protocol_version, now)
            .with_timeline(self.start_time.timestamp_micros());
        let cell = Arc::new(Mutex::new(record));
        st.clients.insert(id, cell.clone());
        Ok(Admitted { id, cell, slot })
    }

    /// Whether `peer` may try a token now ([`guard`]); the refusal if not.
    pub(super) fn auth_gate(&self, peer: SocketAddr, now: Instant) -> Result<(), String> {
        self.auth_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(peer.ip(), now)
    }

    /// Counts a wrong token or proof from `peer`; a lock-out it starts is logged (within the
    /// refusals' log budget).
    pub(super) fn auth_failed(&self, peer: SocketAddr, now: Instant) {
        let failed = self
            .auth_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed(peer.ip(), now);
        if let Failed::LockedOut(n) = failed {
            self.warn_refusal(format!(
                "Locking out {} for {:.0} s: {n} failed token attempts",
                peer.ip(),
                LOCKOUT.as_secs_f64()
            ));
        }
    }
}

/// The thresholds (see `thresholds`): checked here on the report, live and at the end.
impl Shared {
    /// One check of the thresholds on the report so far; with `abort_on_fail`, a rule that
    /// fails stops the run.
    pub(super) fn check_thresholds(&self, now: Instant) {
        let Some(t) = &self.thresholds else {
            return;
        };
        let report = self.report();
        let intervals = self.fleet_latency().intervals();
        let gaps = self.heartbeat_gaps(now);
        let failures = t.check(&Input {
            report: &report,
            now_s: seconds_since(self.started, now),
            fleet_intervals: &intervals,
            heartbeat_gaps: &gaps,
            is_final: false,
        });
        if let Some(f) = failures.first() {
            self.log.warn(f.reason.clone());
            if t.abort_on_fail() {
                self.abort_run(&f.reason, now);
            }
        }
    }

    /// Each started client's longest time without a sign of life at `now`, exact, from its
    /// record's heartbeat times.
    fn heartbeat_gaps(&self, now: Instant) -> BTreeMap<u32, f64> {
        self.cells()
            .iter()
            .filter_map(|cell| {
                let c = lock_cell(cell);
                Some((c.row.id, c.heartbeat_gap_s(now)?))
            })
            .collect()
    }

    /// `--abort-on-fail`: every client not finished becomes ABORTED with `reason`, and the
    /// run stops.
    fn abort_run(&self, reason: &str, now: Instant) {
        if let Some(t) = &self.thresholds {
            t.aborted(reason);
        }
        self.log.warn(format!("Aborting the run: {reason}"));
        for cell in self.cells() {
            let event = lock_cell(&cell).set_status(
                crate::report::Status::Aborted,
                Some(reason.into()),
                now,
            );
            if let Some(e) = event {
                self.events.emit(|| e);
            }
        }
        self.stop.cancel();
    }

    /// The final check on the final `report`, whose verdict it sets.
    pub(super) fn final_verdict(&self, report: &mut Report) {
        let Some(t) = &self.thresholds else {
            return;
        };
        let intervals = self.fleet_latency().intervals();
        let now = Instant::now();
        let gaps = self.heartbeat_gaps(now);
        let failures = t.check(&Input {
            report,
            now_s: seconds_since(self.started, now),
            fleet_intervals: &intervals,
            heartbeat_gaps: &gaps,
            is_final: true,
        });
        for f in failures {
            self.log.warn(f.reason);
        }
        let verdict = t.verdict(&report.start_time);
        self.log.info(format!(
            "Thresholds {}",
            if verdict.passed { "passed" } else { "FAILED" }
        ));
        report.verdict = Some(verdict);
    }

    /// The final verdict once the run is over, the verdict so far before.
    pub(super) fn verdict(&self) -> Option<crate::report::Verdict> {
        if let Some(r) = self.final_report().as_ref() {
            return r.verdict.clone();
        }
        let t = self.thresholds.as_ref()?;
        let start = self.start_time.to_rfc3339();
        Some(t.verdict(&start))
    }

    /// The verdict so far into a live `report`.
    pub(super) fn live_verdict(&self, report: &mut Report) {
        if let Some(t) = &self.thresholds {
            report.verdict = Some(t.verdict(&report.start_time));
        }
    }
}
