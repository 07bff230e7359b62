//! One client's record: its row of the report ([`ClientReport`]), kept up to date as its lines
//! arrive, and the little only a live record needs (the totals behind the averages, the
//! liveness clock, the time series). No I/O, no protocol: the session
//! ([`super::session`]) decides what a line means, the record keeps the figures.
//!
//! A new figure of a client is a field of [`ClientReport`] (the report, CSV, HTML and snapshots
//! show it from there) and the line of the record's update that sets it: the row is the one
//! source, nothing here restates it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Local;
use tokio::time::Instant;

use super::clock::{ClockFilter, NOT_ANSWERED};
use crate::events::EventKind;
use crate::hostio::HostIoSample;
use crate::latency::{ClientLatency, ClientLatencySeries, ClientPace};
use crate::protocol::{StreamStats, VerifyFinding, VerifyStats, MAX_FINDINGS_SENT, MAX_UNIX_US};
use crate::report::{ClientReport, ClientVerify, Status, StreamReport};
use crate::series::{ClientIoSeries, ClientSeries, IoSeries, Sample, Series, TputSeries};
use crate::units::BYTES_PER_MB;
use crate::verify::{ClassCounts, FindingClass};
use hdrhistogram::Histogram;

/// What the server knows about one client.
///
/// `row` holds every figure the report shows as it is (status, reason, counters, last
/// values, times); [`ClientRecord::to_report`] fills in the figures derived at the time of
/// asking (`time_ran_s`, the averages, `bytes_written`, `throughput_mb_s`,
/// `last_heartbeat_age_s`), which the stored row leaves at their defaults.
///
/// `repr(C)` keeps the live fields that every `hb` and `send_stats` line touches first (at
/// 19,000 clients each record is cold when its client's next line arrives, and every line of
/// it touched is a cache miss), then the row, then what only the start, the end and
/// `proc_stats` touch.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct ClientRecord {
    // Touched by every heartbeat and stats line.
    /// When the last `hb` (or `ping`) arrived, or the id was assigned.
    pub last_heartbeat: Instant,
    /// The longest time between two signs of life (`hb`, `ping`) while the client ran, its
    /// start counting as one (see [`ClientRecord::heartbeat_gap_s`]).
    pub heartbeat_gap_max: Duration,
    /// Sums of the `send_stats` values (over `row.stats_reports`), for the averages.
    pub cpu_total: f64,
    pub mem_total: f64,
    /// (time, bytes) of the previous stats sample, for the live throughput.
    pub previous_sample: (f64, u64),
    pub series: Series,
    /// The largest byte count the client reported (`write_stats`).
    pub reported_bytes: Option<u64>,
    /// The client's report row (see above).
    pub row: ClientReport,
    // Touched by the start, the end and `proc_stats`.
    pub started: Option<Instant>,
    pub ended: Option<Instant>,
    /// `proc_stats` lines received, and the sums of their values, for the averages.
    pub proc_reports: u64,
    pub cpu_core_total: f64,
    // Touched by `tput` (every second, loadmon clients only).
    /// The 1-s throughput from `tput` reports (boxed, once the first arrives: a seed client
    /// sends none, and costs one pointer).
    pub tput: Option<Box<TputSeries>>,
    pub rss_total: f64,
    // Touched by the clock exchange (every 10 s) and by the conversion of client times.
    /// The server's timeline: its wall clock when it started, Unix µs
    /// ([`ClientRecord::with_timeline`]).
    pub timeline_origin_us: i64,
    /// The clock exchange, from the client's first `clock` line (boxed: a seed client has
    /// none, and costs one pointer).
    pub clock: Option<Box<ClockFilter>>,
    // The host's I/O view (`io` lines).
    /// The client's `io` samples over time, on the server's timeline (boxed, once the first
    /// arrives).
    pub io_series: Option<Box<IoSeries>>,
    // Touched by `lat` lines (loadmon clients only).
    /// The client's chunk write latencies (`lat`), once it sent one.
    pub latency: Option<Box<ClientLatency>>,
    /// A paced client's response times and schedule lag (`rlat`, `pace`), once it sent one.
    pub pace: Option<Box<ClientPace>>,
    // Touched by `verify` and `vfind` lines (clients that check their data only).
    /// The checks of the client's written data, once it sent a `verify` or `vfind` line
    /// (boxed: a client that does not verify costs one pointer).
    pub verify: Option<Box<VerifyRecord>>,
}

/// What a client's checks of its written data said (`verify`, `vfind`): the row's figures
/// ([`ClientVerify`]) and what they are made of.
#[derive(Debug, Default)]
pub(crate) struct VerifyRecord {
    /// The figures the report shows.
    pub row: ClientVerify,
    /// Bad blocks by class as the client counted them (its `verify` lines: each class the
    /// most it said, a count only grows).
    pub reported: ClassCounts,
    /// Bad blocks by class of its findings (`vfind` lines, kept or not), added up.
    pub found: ClassCounts,
}

impl VerifyRecord {
    /// The row's bad blocks: in each class the client's count, or its findings' if more
    /// (they come at once; its count with its next `verify` line).
    fn settle(&mut self) {
        let mut e = ClassCounts::default();
        for class in FindingClass::ALL {
            e.add(class, self.reported.get(class).max(self.found.get(class)));
        }
        self.row.errors = e;
        self.row.errors_total = e.total();
    }
}

/// Longest interval a `lat` line may cover, seconds.
const MAX_LAT_INTERVAL_S: f64 = 3600.0;

/// How far past the server's now a `lat` interval may end, seconds (clocks differ a little).
const LAT_FUTURE_SLACK_S: f64 = 60.0;

impl ClientRecord {
    /// The record of client `id`, connected from `peer`, which got its id at `now`.
    pub(crate) fn new(
        id: u32,
        peer: std::net::SocketAddr,
        protocol_version: Option<String>,
        now: Instant,
    ) -> Self {
        ClientRecord {
            last_heartbeat: now,
            heartbeat_gap_max: Duration::ZERO,
            cpu_total: 0.0,
            mem_total: 0.0,
            previous_sample: (0.0, 0),
            series: Series::default(),
            reported_bytes: None,
            row: ClientReport {
                id,
                peer: Some(peer.to_string()),
                protocol_version,
                ..ClientReport::default()
            },
            started: None,
            ended: None,
            proc_reports: 0,
            cpu_core_total: 0.0,
            rss_total: 0.0,
            timeline_origin_us: 0,
            clock: None,
            io_series: None,
            tput: None,
            latency: None,
            pace: None,
            verify: None,
        }
    }

    /// The record on the server's timeline: `origin_unix_us` is the server's wall clock when
    /// it started (its `started`), Unix µs. The clock exchange's answers and
    /// [`ClientRecord::server_time_s`] count from it.
    #[must_use]
    pub(crate) fn with_timeline(mut self, origin_unix_us: i64) -> Self {
        self.timeline_origin_us = origin_unix_us;
        self
    }

    /// `tput`: the client's bytes so far at `t_ms` on its wall clock (Unix ms), a point of its
    /// 1-s throughput series; the byte count as `write_stats`'s (it only grows).
    #[inline]
    pub(crate) fn tput(&mut self, t_ms: u64, bytes_written: u64) {
        self.reported_bytes = Some(
            self.reported_bytes
                .map_or(bytes_written, |b| b.max(bytes_written)),
        );
        let t_s = self.server_time_s(t_ms as f64);
        self.tput
            .get_or_insert_with(Box::default)
            .record(t_s, bytes_written);
    }

    /// The client's id.
    pub(crate) fn id(&self) -> u32 {
        self.row.id
    }

    /// The client's status.
    pub(crate) fn status(&self) -> Status {
        self.row.status
    }

    /// The one place a status changes. NOT STARTED → RUNNING, then any → a final status once;
    /// nothing leaves a final status. Returns the `status_changed` event, or `None` if the
    /// change is not allowed (already final, or RUNNING again).
    pub(crate) fn set_status(
        &mut self,
        status: Status,
        reason: Option<String>,
        now: Instant,
    ) -> Option<EventKind> {
        let previous = self.row.status;
        let allowed = match status {
            Status::NotStarted => false,
            Status::Running => previous == Status::NotStarted,
            _ => !previous.is_final(),
        };
        if !allowed {
            return None;
        }
        self.row.status = status;
        if status == Status::Running {
            self.started = Some(now);
            self.row.start_time = Some(Local::now().to_rfc3339());
        } else {
            self.row.reason = reason.clone();
            self.ended = Some(now);
            self.row.end_time = Some(Local::now().to_rfc3339());
            // A finished client's record stops growing: its series keeps what it has, in
            // no more memory than it needs.
            self.series.shrink_to_fit();
            if let Some(t) = &mut self.tput {
                t.shrink_to_fit();
            }
            if let Some(io) = &mut self.io_series {
                io.shrink_to_fit();
            }
        }
        Some(EventKind::StatusChanged {
            client_id: self.row.id,
            previous,
            status,
            reason,
        })
    }

    /// A sign of life at `now` (`hb`, `ping`).
    #[inline]
    pub(crate) fn alive(&mut self, now: Instant) {
        if self.started.is_some() && self.ended.is_none() {
            let gap = now.saturating_duration_since(self.gap_from());
            self.heartbeat_gap_max = self.heartbeat_gap_max.max(gap);
        }
        self.last_heartbeat = now;
    }

    /// An `hb` at `now`.
    #[inline]
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        self.row.heartbeats = self.row.heartbeats.saturating_add(1);
        self.alive(now);
    }

    /// Where the current gap without a sign of life began: the last one, or the client's
    /// start if it came later (a client waiting at the fleet's barrier sends none).
    fn gap_from(&self) -> Instant {
        self.started
            .map_or(self.last_heartbeat, |s| s.max(self.last_heartbeat))
    }

    /// The longest time the client went without a sign of life (`hb`, `ping`) while it ran,
    /// seconds, exact: the longest gap between two of them (its start counting as one), or
    /// the current one at `now` (to its end, once it ended) if longer. `None` before it
    /// started.
    pub(crate) fn heartbeat_gap_s(&self, now: Instant) -> Option<f64> {
        self.started?;
        let end = self.ended.unwrap_or(now);
        let current = end.saturating_duration_since(self.gap_from());
        Some(self.heartbeat_gap_max.max(current).as_secs_f64())
    }

    /// `file_stats`: the client's chunk and file sizes, MiB.
    pub(crate) fn file_stats(&mut self, chunk_size_mb: u64, file_size_mb: u64) {
        self.row.chunk_size_mb = chunk_size_mb;
        self.row.file_size_mb = file_size_mb;
    }

    /// The client started at `t_s` (seconds from the server's start): its series starts.
    pub(crate) fn start_series(&mut self, t_s: f64) {
        self.series.start(t_s, self.bytes_written());
        self.previous_sample = (t_s, self.bytes_written());
    }

    /// `send_stats` at `t_s` (seconds from the server's start): counted, and a point of the
    /// series. Returns the point and the throughput since the previous one, MiB/s.
    #[inline]
    pub(crate) fn send_stats(&mut self, cpu_pct: f64, mem_pct: f64, t_s: f64) -> (Sample, f64) {
        let row = &mut self.row;
        row.stats_reports = row.stats_reports.saturating_add(1);
        self.cpu_total += cpu_pct;
        self.mem_total += mem_pct;
        row.cpu_last_pct = Some(cpu_pct);
        row.mem_last_pct = Some(mem_pct);
        // A loadmon client sends write_stats and proc_stats just before, so the point has
        // this period's bytes and memory.
        let sample = Sample {
            t_s,
            bytes_written: self.bytes_written(),
            throughput_mb_s: 0.0,
            cpu_pct,
            mem_pct,
            rss_bytes: self.row.rss_last_bytes,
        };
        let mut previous = self.previous_sample;
        let throughput_mb_s = self.series.record(sample, &mut previous);
        self.previous_sample = previous;
        (sample, throughput_mb_s)
    }

    /// `proc_stats`: the CPU and memory of the client's process.
    #[inline]
    pub(crate) fn proc_stats(
        &mut self,
        cpu_core_pct: f64,
        rss_bytes: u64,
        process_clients: Option<u32>,
    ) {
        let row = &mut self.row;
        // The most it said: a client that shared its process is not reported alone because
        // the others finished before its last sample.
        row.process_clients = row.process_clients.max(process_clients);
        self.proc_reports = self.proc_reports.saturating_add(1);
        self.cpu_core_total += cpu_core_pct;
        self.rss_total += rss_bytes as f64;
        row.rss_peak_bytes = Some(row.rss_peak_bytes.map_or(rss_bytes, |p| p.max(rss_bytes)));
        row.rss_last_bytes = Some(rss_bytes);
    }

    /// `write_stats`: the client's byte count and chunk latencies, µs.
    #[inline]
    pub(crate) fn write_stats(&mut self, bytes_written: u64, chunk_p50_us: u64, chunk_p99_us: u64) {
        // A byte count only grows (it is a counter on /metrics): a smaller value than one
        // already reported is ignored.
        self.reported_bytes = Some(
            self.reported_bytes
                .map_or(bytes_written, |b| b.max(bytes_written)),
        );
        self.row.chunk_p50_ms = Some(chunk_p50_us as f64 / 1000.0);
        self.row.chunk_p99_ms = Some(chunk_p99_us as f64 / 1000.0);
    }

    /// `engine`: how the client's writer writes (the latest line; empty: unknown).
    pub(crate) fn engine(&mut self, text: String) {
        self.row.engine = (!text.is_empty()).then_some(text);
    }

    /// `stream_stats`: one writer stream's figures so far (the latest line of each stream is
    /// the one shown; at most 256 streams, the protocol's bound).
    pub(crate) fn stream_stats(&mut self, s: &StreamStats) {
        let ms = |us: u64| (s.bytes_written > 0 || us > 0).then(|| us as f64 / 1000.0);
        let row = StreamReport {
            stream: s.stream,
            bytes_written: s.bytes_written,
            files_written: s.files_written,
            throughput_mb_s: 0.0,
            chunk_p50_ms: ms(s.chunk_p50_us),
            chunk_p99_ms: ms(s.chunk_p99_us),
            chunk_max_ms: ms(s.chunk_max_us),
        };
        let streams = &mut self.row.streams;
        match streams.binary_search_by_key(&s.stream, |r| r.stream) {
            Ok(i) => streams[i] = row,
            Err(i) => streams.insert(i, row),
        }
    }

    /// `verify`: the client's checks so far (cumulative; a figure smaller than one it sent
    /// before is ignored, as counters only grow).
    pub(crate) fn verify_stats(&mut self, s: &VerifyStats) {
        let v = self.verify.get_or_insert_with(Box::default);
        v.row.files_checked = v.row.files_checked.max(s.files_checked);
        v.row.blocks_checked = v.row.blocks_checked.max(s.blocks_checked);
        for class in FindingClass::ALL {
            let n = s.errors.get(class);
            v.reported
                .add(class, n.saturating_sub(v.reported.get(class)));
        }
        v.settle();
    }

    /// `vfind`: one finding of the client's checks (its texts kept to
    /// [`KEPT_FINDING_TEXT_BYTES`] each). Its blocks count at once; it is kept if the client
    /// has fewer than [`MAX_FINDINGS_SENT`] and the fleet's `budget` still holds its texts,
    /// counted as left off otherwise (returns which).
    pub(crate) fn verify_finding(
        &mut self,
        f: &VerifyFinding,
        budget: &FindingTextBudget,
    ) -> FindingKept {
        let v = self.verify.get_or_insert_with(Box::default);
        v.found.add(f.class, f.blocks);
        v.settle();
        let kept = if v.row.findings.len() < MAX_FINDINGS_SENT {
            // Kept with each text cut to KEPT_FINDING_TEXT_BYTES: a client's kept findings
            // cost at most about 16 KiB, however long the texts a peer sends, and all
            // clients' at most the budget.
            let (path, expected, found) =
                (cut_text(&f.path), cut_text(&f.expected), cut_text(&f.found));
            // The record's own size counted too: a finding of empty texts is not free.
            let cost =
                std::mem::size_of::<VerifyFinding>() + path.len() + expected.len() + found.len();
            if budget.take(cost) {
                v.row.findings.push(VerifyFinding {
                    path,
                    expected,
                    found,
                    ..f.clone()
                });
                return FindingKept::Kept;
            }
            FindingKept::PastFleet
        } else {
            FindingKept::PastClient
        };
        v.row.findings_left_off = v.row.findings_left_off.saturating_add(1);
        kept
    }

    /// `clock:<c0>`, `since_start` after the server started: returns the server's time for
    /// the answer (`s1`, Unix µs on the server's timeline), remembered for the sample.
    pub(crate) fn clock_ask(&mut self, c0_us: u64, since_start: Duration) -> u64 {
        let s1 = i128::from(self.timeline_origin_us) + since_start.as_micros() as i128;
        let s1_us = u64::try_from(s1.clamp(0, i128::from(MAX_UNIX_US))).unwrap_or(0);
        self.clock
            .get_or_insert_with(Box::default)
            .answered(c0_us, s1_us);
        s1_us
    }

    /// `clock:<c0>:<s1>:<c2>`: a sample of the client's clock, taken if the server sent that
    /// answer ([`ClockFilter::take`]); the row's `clock_offset_ms` and `clock_rtt_ms` are the
    /// best sample's then. Returns the warning to log, the first time the offset is above
    /// [`CLOCK_WARN_MS`](crate::report::CLOCK_WARN_MS).
    ///
    /// # Errors
    /// Why the sample was ignored.
    pub(crate) fn clock_sample(
        &mut self,
        c0_us: u64,
        s1_us: u64,
        c2_us: u64,
    ) -> Result<Option<String>, &'static str> {
        let filter = self.clock.as_mut().ok_or(NOT_ANSWERED)?;
        let best = filter.take(c0_us, s1_us, c2_us)?;
        self.row.clock_offset_ms = Some(best.offset_ms());
        self.row.clock_rtt_ms = Some(best.rtt_ms());
        let warning = self.row.clock_warning();
        if warning.is_none() || filter.warned {
            return Ok(None);
        }
        filter.warned = true;
        Ok(warning)
    }

    /// A time the client stamped (its wall clock, Unix milliseconds) on the server's
    /// timeline: seconds since the server started, like every `t_s` of the series, corrected
    /// by the client's estimated clock offset (0 until a clock sample).
    pub(crate) fn server_time_s(&self, client_unix_ms: f64) -> f64 {
        let offset_ms = self.row.clock_offset_ms.unwrap_or(0.0);
        (client_unix_ms - self.timeline_origin_us as f64 / 1000.0 + offset_ms) / 1000.0
    }

    /// `file_roll`: one more file written; returns the count.
    pub(crate) fn file_roll(&mut self) -> u64 {
        self.row.files_written = self.row.files_written.saturating_add(1);
        self.row.files_written
    }

    /// The client's own count (`write_stats`, `tput`: every second from a loadmon client), but
    /// never less than the whole files it reported: `file_roll` arrives at once, the count
    /// only every second (a client killed between two reports has written its files), and a
    /// seed client sends no count at all. `file_stats` carries whole MiB rounded down, so the
    /// whole files' bytes never exceed what was written.
    pub(crate) fn bytes_written(&self) -> u64 {
        let whole_files = self
            .row
            .files_written
            .saturating_mul(self.row.file_size_mb)
            .saturating_mul(1 << 20);
        self.reported_bytes.unwrap_or(0).max(whole_files)
    }

    fn time_ran_s(&self, now: Instant) -> f64 {
        match (self.started, self.ended) {
            (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64(),
            (Some(s), None) => now.saturating_duration_since(s).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// `lat` at `now_s` (seconds since the server started): the writes `h` of the interval
    /// `[t0_ms, t1_ms)` (the client's Unix ms) added to
    /// the client's histogram and series. Returns the interval's middle (seconds since the
    /// server started; at least 0), for the fleet's series; an error for an interval longer
    /// than an hour, ending before the server's start or in the future, or a count that would
    /// overflow.
    pub(crate) fn latency(
        &mut self,
        (t0_ms, t1_ms): (u64, u64),
        h: &Histogram<u64>,
        now_s: f64,
    ) -> Result<f64, &'static str> {
        let (t0_s, t1_s) = self.interval_s((t0_ms, t1_ms), now_s)?;
        let latency = self.latency.get_or_insert_with(Box::default);
        if !latency.add(t1_s, t1_s - t0_s, h) {
            return Err("its counts would overflow");
        }
        // An interval that began before the server's start counts from the start.
        Ok(((t0_s + t1_s) / 2.0).max(0.0))
    }

    /// `rlat` or `pace` at `now_s`: the interval `[t0_ms, t1_ms)` checked as `lat`'s
    /// ([`ClientRecord::latency`]) and its figures added to the client's paced ones by `add`
    /// (`false`: a count would overflow). Returns the interval's middle, as `latency`.
    pub(crate) fn pace(
        &mut self,
        interval_ms: (u64, u64),
        now_s: f64,
        add: impl FnOnce(&mut ClientPace) -> bool,
    ) -> Result<f64, &'static str> {
        let (t0_s, t1_s) = self.interval_s(interval_ms, now_s)?;
        if !add(self.pace.get_or_insert_with(Box::default)) {
            return Err("its counts would overflow");
        }
        Ok(((t0_s + t1_s) / 2.0).max(0.0))
    }

    /// A client-stamped interval on the server's timeline (seconds since the server
    /// started), if it is within the run: at most an hour long, ending after the server's
    /// start and not more than a minute past `now_s`.
    fn interval_s(
        &self,
        (t0_ms, t1_ms): (u64, u64),
        now_s: f64,
    ) -> Result<(f64, f64), &'static str> {
        let t0_s = self.server_time_s(t0_ms as f64);
        let t1_s = self.server_time_s(t1_ms as f64);
        if !(t1_s - t0_s <= MAX_LAT_INTERVAL_S && t1_s >= 0.0 && t1_s <= now_s + LAT_FUTURE_SLACK_S)
        {
            return Err("its interval is not within the run");
        }
        Ok((t0_s, t1_s))
    }

    /// The client's latency series, if it sent `lat` lines.
    pub(crate) fn latency_series_report(&self) -> Option<ClientLatencySeries> {
        let l = self.latency.as_ref()?;
        Some(ClientLatencySeries {
            id: self.row.id,
            points: l.points().to_vec(),
        })
    }

    /// The client's time series, if it has points.
    pub(crate) fn series_report(&self) -> Option<ClientSeries> {
        let tput = self.tput.as_deref().filter(|t| !t.is_empty());
        (!self.series.is_empty() || tput.is_some()).then(|| ClientSeries {
            id: self.row.id,
            samples: self.series.samples(),
            tput: tput.map(|t| t.points()).unwrap_or_default(),
        })
    }

    /// The client's report row at `now`: the stored row with the derived figures filled in.
    pub(crate) fn to_report(&self, now: Instant) -> ClientReport {
        let time_ran_s = self.time_ran_s(now);
        let bytes_written = self.bytes_written();
        let avg = |total: f64, n: u64| if n == 0 { 0.0 } else { total / n as f64 };
        let stats = self.row.stats_reports;
        let procs = self.proc_reports;
        ClientReport {
            time_ran_s,
            cpu_avg_pct: avg(self.cpu_total, stats),
            mem_avg_pct: avg(self.mem_total, stats),
            bytes_written,
            throughput_mb_s: if time_ran_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / time_ran_s
            } else {
                0.0
            },
            cpu_core_avg_pct: (procs > 0).then(|| avg(self.cpu_core_total, procs)),
            rss_avg_bytes: (procs > 0).then(|| avg(self.rss_total, procs).round() as u64),
            last_heartbeat_age_s: (!self.row.status.is_final()).then(|| {
                now.saturating_duration_since(self.last_heartbeat)
                    .as_secs_f64()
            }),
            ..self.latency_row(time_ran_s)
        }
    }

    /// The stored row with the latency figures of the merged histogram, for a client that
    /// sent `lat` lines (its `write_stats` percentiles otherwise), and a paced client's.
    fn latency_row(&self, time_ran_s: f64) -> ClientReport {
        let mut row = self.row.clone();
        for s in &mut row.streams {
            s.throughput_mb_s = if time_ran_s > 0.0 {
                s.bytes_written as f64 / BYTES_PER_MB / time_ran_s
            } else {
                0.0
            };
        }
        if let Some(s) = self.latency.as_ref().and_then(|l| l.summary()) {
            row.chunk_p50_ms = Some(s.p50_ms);
            row.chunk_p99_ms = Some(s.p99_ms);
            row.chunk_p90_ms = Some(s.p90_ms);
            row.chunk_p999_ms = Some(s.p999_ms);
            row.chunk_max_ms = Some(s.max_ms);
            row.chunk_writes = Some(s.writes);
        }
        if let Some(p) = &self.pace {
            row.set_pace(&p.figures());
        }
        row.verify = self.verify.as_ref().map(|v| Box::new(v.row.clone()));
        row
    }
}

// The host's I/O view (`io` lines).
impl ClientRecord {
    /// `io`: the client's host I/O view at its Unix ms `t_ms`: the latest figures in its row
    /// (a figure the line does not have becomes unknown: the latest sample is the one shown),
    /// and a point of its I/O series.
    pub(crate) fn host_io(&mut self, t_ms: u64, io: &HostIoSample) {
        let row = &mut self.row;
        row.device_util_pct = io.util_pct;
        row.device_write_await_ms = io.write_await_ms;
        row.device_queue_depth = io.queue_depth;
        row.device_write_mb_s = io.device_write_mb_s;
        row.io_pressure_some_pct = io.psi_some_avg10_pct;
        row.io_pressure_full_pct = io.psi_full_avg10_pct;
        row.dirty_bytes = io.dirty_bytes;
        row.writeback_bytes = io.writeback_bytes;
        let t_s = self.server_time_s(t_ms as f64);
        self.io_series
            .get_or_insert_with(Box::default)
            .record(t_s, io);
    }

    /// The client's host I/O series, if it sent any `io` line.
    pub(crate) fn io_series_report(&self) -> Option<ClientIoSeries> {
        let io = self.io_series.as_deref().filter(|s| !s.is_empty())?;
        Some(ClientIoSeries {
            id: self.row.id,
            samples: io.points(),
        })
    }
}

/// Seconds from `started` (the server's start) to `t`.
pub(crate) fn seconds_since(started: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(started).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{new_histogram, record_us, HIGHEST_LATENCY_US, MAX_LATENCY_POINTS};

    #[test]
    fn a_flood_of_lat_intervals_keeps_the_record_bounded() {
        let mut c = ClientRecord::new(1, "127.0.0.1:9".parse().unwrap(), None, Instant::now());
        c.timeline_origin_us = 1_000_000_000_000_000;
        let start_ms = 1_000_000_000_000u64;
        let mut h = new_histogram();
        for us in [1, 50, 999, 12_345, 1_000_000, HIGHEST_LATENCY_US, u64::MAX] {
            record_us(&mut h, us);
        }
        let mut sizes = Vec::new();
        for i in 0..20_000u64 {
            let t0 = start_ms + i * 1000;
            assert!(c.latency((t0, t0 + 1000), &h, 30_000.0).is_ok());
            let l = c.latency.as_ref().unwrap();
            assert!(l.points().len() <= MAX_LATENCY_POINTS);
            sizes.push(l.run().distinct_values());
        }
        // The run's histogram spans 1 µs to an hour at 3 digits: its counters stop growing at
        // that range's size, however many intervals come.
        assert!(
            sizes.iter().all(|n| *n == sizes[0] && *n < 30_000),
            "{:?}",
            sizes.last()
        );
        assert_eq!(c.to_report(Instant::now()).chunk_writes, Some(7 * 20_000));
    }

    /// A report of `rows` for the evaluator.
    fn report_of(rows: Vec<ClientReport>) -> crate::report::Report {
        crate::report::Report {
            start_time: "2026-11-25T10:00:00+01:00".into(),
            end_time: "2026-11-25T10:01:00+01:00".into(),
            total: crate::report::Total::of(&rows, 60.0),
            clients: rows,
            series: vec![],
            stopped: false,
            io_series: vec![],
            warnings: vec![],
            latency_series: vec![],
            params: Default::default(),
            verdict: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_gap_is_exact_from_the_heartbeat_times() {
        use crate::report::Outcome;
        use crate::verdict::{Evaluator, Input, Rule};
        use std::collections::BTreeMap;

        let t0 = Instant::now();
        let since = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
        let mut c = ClientRecord::new(1, "127.0.0.1:9".parse().unwrap(), None, t0);
        let rules = ["heartbeat_gap_s < 6", "fleet.heartbeat_gap_s < 7"];
        let mut e = Evaluator::new(
            rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
            None,
        );
        let mut check = |c: &ClientRecord, is_final: bool| {
            let now = Instant::now();
            let gaps: BTreeMap<u32, f64> =
                c.heartbeat_gap_s(now).map(|g| (1, g)).into_iter().collect();
            let report = report_of(vec![c.to_report(now)]);
            e.check(&Input {
                report: &report,
                now_s: since(now),
                fleet_intervals: &[],
                heartbeat_gaps: &gaps,
                is_final,
            });
            e.verdict("2026-11-25T10:00:00+01:00")
        };
        // 40 s at the fleet's barrier (no heartbeat before the start): not a gap.
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(c.heartbeat_gap_s(Instant::now()), None);
        c.set_status(Status::Running, None, Instant::now());
        let gap = |c: &ClientRecord| c.heartbeat_gap_s(Instant::now()).unwrap();
        assert_eq!(gap(&c), 0.0);
        // A healthy client: a heartbeat every 5 s, the first 5 s after its start (the seed's),
        // each 3 ms late; checked every 1.25 s in between. The gap is the heartbeat times',
        // never a check's rounding: 5.003 s, under 6 at every check.
        for _ in 0..12 {
            for _ in 0..4 {
                tokio::time::advance(Duration::from_millis(1250)).await;
                let v = check(&c, false);
                assert_ne!(v.rules[0].outcome, Outcome::Fail, "{v:?}");
            }
            tokio::time::advance(Duration::from_millis(3)).await;
            assert!((gap(&c) - 5.003).abs() < 1e-9, "{}", gap(&c));
            c.heartbeat(Instant::now());
        }
        assert_eq!(c.row.heartbeats, 12);
        tokio::time::advance(Duration::from_millis(2500)).await;
        // The current gap (2.5 s) is shorter than the longest.
        assert!((gap(&c) - 5.003).abs() < 1e-9, "{}", gap(&c));
        // A heartbeat 7.25 s late: the current gap counts as it grows (fails live, at the
        // exact figure of the check), and stays the longest after the next heartbeat.
        tokio::time::advance(Duration::from_millis(4750)).await;
        assert_eq!(gap(&c), 7.25);
        let v = check(&c, false);
        assert_eq!(v.rules[0].outcome, Outcome::Fail);
        assert_eq!(v.rules[0].observed, Some(7.25));
        assert_eq!(v.rules[0].first_failed_s, Some(since(Instant::now())));
        c.heartbeat(Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(gap(&c), 7.25);
        // The end is the last gap's end: no gap grows after it.
        c.set_status(Status::Pass, None, Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(gap(&c), 7.25);
        c.heartbeat(Instant::now());
        assert_eq!(gap(&c), 7.25);
        let v = check(&c, true);
        assert_eq!(v.rules[0].outcome, Outcome::Fail);
        assert_eq!(v.rules[1].outcome, Outcome::Fail);
        assert_eq!(v.rules[1].observed, Some(7.25));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_run_passes_heartbeat_gap_under_six_seconds() {
        use crate::report::Outcome;
        use crate::verdict::{Evaluator, Input, Rule};
        use std::collections::BTreeMap;

        let t0 = Instant::now();
        let mut c = ClientRecord::new(7, "127.0.0.1:9".parse().unwrap(), None, t0);
        c.set_status(Status::Running, None, t0);
        let mut e = Evaluator::new(vec![Rule::parse("heartbeat_gap_s < 6").unwrap()], None);
        // 60 s at a 5 s heartbeat period, checked every second; it ends 4 s after its last.
        for s in 1..=64u64 {
            tokio::time::advance(Duration::from_secs(1)).await;
            if s % 5 == 0 {
                c.heartbeat(Instant::now());
            }
            let now = Instant::now();
            let is_final = s == 64;
            if is_final {
                c.set_status(Status::Pass, None, now);
            }
            let gaps = BTreeMap::from([(7, c.heartbeat_gap_s(now).unwrap())]);
            let report = report_of(vec![c.to_report(now)]);
            let failed = e.check(&Input {
                report: &report,
                now_s: s as f64,
                fleet_intervals: &[],
                heartbeat_gaps: &gaps,
                is_final,
            });
            assert!(failed.is_empty(), "at {s} s: {failed:?}");
        }
        let v = e.verdict("2026-11-25T10:00:00+01:00");
        assert!(v.passed, "{v:?}");
        assert_eq!(v.rules[0].outcome, Outcome::Pass);
        assert_eq!(v.rules[0].observed, Some(5.0));
    }

    #[test]
    fn a_lat_interval_outside_the_run_is_refused() {
        let mut c = ClientRecord::new(1, "127.0.0.1:9".parse().unwrap(), None, Instant::now());
        c.timeline_origin_us = 1_000_000_000;
        let mut h = new_histogram();
        record_us(&mut h, 100);
        // Ending before the server's start; longer than an hour; ending far in the future.
        for interval in [
            (0, 1000),
            (1_000_000, 1_000_000 + 3_601_000),
            (1_000_000, 9_000_000),
        ] {
            assert!(c.latency(interval, &h, 10.0).is_err(), "{interval:?}");
        }
        assert!(c.latency.is_none());
        assert_eq!(c.latency((1_000_000, 1_001_000), &h, 10.0), Ok(0.5));
        assert_eq!(c.server_time_s(1_002_500.0), 2.5);
    }
}

/// What became of a `vfind` line ([`ClientRecord::verify_finding`]); its blocks count in
/// every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FindingKept {
    /// Kept (one of the client's first [`MAX_FINDINGS_SENT`], within the fleet's budget).
    Kept,
    /// Left off: the client already has [`MAX_FINDINGS_SENT`] kept.
    PastClient,
    /// Left off: the fleet's [`FindingTextBudget`] is spent.
    PastFleet,
}

/// The bytes of finding text every client's record may still keep, together (one per server,
/// [`MAX_KEPT_FINDING_TEXT_BYTES`](super::config::MAX_KEPT_FINDING_TEXT_BYTES)): taken as
/// findings are kept, never given back during the run (a kept finding stays in the report).
#[derive(Debug)]
pub(crate) struct FindingTextBudget {
    /// Bytes left.
    left: AtomicUsize,
    /// Bytes it started with.
    total: usize,
}

impl FindingTextBudget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Self {
        FindingTextBudget {
            left: AtomicUsize::new(bytes),
            total: bytes,
        }
    }

    /// Takes `bytes` if that many are left: whether it did. The first refusal spends what is
    /// left, so that no later, shorter finding is kept after a longer one was not (each
    /// client's kept findings stay its first ones, in order).
    pub(crate) fn take(&self, bytes: usize) -> bool {
        let took = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                l.checked_sub(bytes)
            })
            .is_ok();
        if !took {
            self.left.store(0, Ordering::Relaxed);
        }
        took
    }

    /// Bytes taken so far.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.total - self.left.load(Ordering::Relaxed)
    }

    /// Bytes it started with.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

/// The most of each text of a finding (path, expected, found) a server keeps, bytes: a
/// longer one is cut on a character boundary and ends with `…`. (A line may carry up to
/// [`MAX_FINDING_TEXT_BYTES`](crate::protocol::MAX_FINDING_TEXT_BYTES); the writer's own
/// texts are far shorter.)
pub(crate) const KEPT_FINDING_TEXT_BYTES: usize = 256;

/// `s` cut to [`KEPT_FINDING_TEXT_BYTES`] (on a character boundary, `…` added where cut).
fn cut_text(s: &str) -> String {
    if s.len() <= KEPT_FINDING_TEXT_BYTES {
        return s.to_string();
    }
    let mut end = KEPT_FINDING_TEXT_BYTES - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod kept_text_tests {
    use super::*;

    #[test]
    fn a_kept_finding_text_is_bounded_on_a_char_boundary() {
        assert_eq!(cut_text("short"), "short");
        let exact = "x".repeat(KEPT_FINDING_TEXT_BYTES);
        assert_eq!(cut_text(&exact), exact);
        for long in [
            "y".repeat(1024),
            "é".repeat(512),
            format!("a{}", "€".repeat(300)),
        ] {
            let c = cut_text(&long);
            assert!(c.len() <= KEPT_FINDING_TEXT_BYTES, "{}", c.len());
            assert!(c.ends_with('…') && long.starts_with(c.trim_end_matches('…')));
        }
    }
}
