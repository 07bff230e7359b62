//! The report's types: a client's [`Status`], its row ([`ClientReport`]), the totals
//! ([`Total`]) and the whole [`Report`], as serde types (the JSON report's field names).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::latency::{ClientLatencySeries, LatencyPoint, LatencySummary, PaceTotal};
use crate::protocol::VerifyFinding;
use crate::series::{ClientIoSeries, ClientSeries, FleetBucket, TotalSample};
use crate::units::BYTES_PER_MB;
use crate::verify::ClassCounts;

/// A client's test status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Connected, has not sent `start` (the default).
    #[serde(rename = "NOT STARTED")]
    #[default]
    NotStarted,
    /// Sent `start`, not yet `done`.
    #[serde(rename = "RUNNING")]
    Running,
    /// Sent `done`.
    #[serde(rename = "PASS")]
    Pass,
    /// The connection closed (or the server stopped) before `done`.
    #[serde(rename = "ABORTED")]
    Aborted,
    /// No heartbeat within the heartbeat timeout; the server closed it.
    #[serde(rename = "TIMED OUT")]
    TimedOut,
    /// The client reported an error.
    #[serde(rename = "FAILED")]
    Failed,
}

impl Status {
    /// The status as the report prints it (`NOT STARTED`, `PASS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "NOT STARTED",
            Status::Running => "RUNNING",
            Status::Pass => "PASS",
            Status::Aborted => "ABORTED",
            Status::TimedOut => "TIMED OUT",
            Status::Failed => "FAILED",
        }
    }

    /// Whether the client's run is over (PASS, ABORTED, TIMED OUT, FAILED).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Pass | Status::Aborted | Status::TimedOut | Status::Failed
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One client, as the report (or a live snapshot) shows it. (`Default`: an empty row, NOT
/// STARTED; the server's client record starts from it.)
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// The id the server assigned.
    pub id: u32,
    /// Test status.
    pub status: Status,
    /// Seconds from `start` to the end (or to now while running); 0 if it never started.
    pub time_ran_s: f64,
    /// Average of the `send_stats` %CPU values (100 = one core). A loadmon client measures the
    /// CPU of its own threads, so clients sharing a process each report their own share.
    pub cpu_avg_pct: f64,
    /// Average of the `send_stats` %MEM values: the RSS of the client's whole process (shared
    /// by up to [`ClientReport::process_clients`] clients) over total RAM.
    pub mem_avg_pct: f64,
    /// `file_roll` messages received.
    pub files_written: u64,
    /// File size from `file_stats`, MiB.
    pub file_size_mb: u64,
    /// Chunk size from `file_stats`, MiB.
    pub chunk_size_mb: u64,
    /// `hb` messages received.
    pub heartbeats: u64,
    /// Valid `send_stats` messages received.
    pub stats_reports: u64,
    /// Bytes written: the client's own count (`write_stats`), at least files written × file
    /// size (all a seed client tells).
    pub bytes_written: u64,
    /// `bytes_written` in MiB divided by `time_ran_s` (0 when it did not run).
    pub throughput_mb_s: f64,
    /// Why it was ABORTED, FAILED or TIMED OUT; `None` otherwise.
    pub reason: Option<String>,
    /// The peer's address.
    pub peer: Option<String>,
    /// The protocol version the client announced; `None` for a seed client.
    pub protocol_version: Option<String>,
    /// When it sent `start` (RFC 3339, local time).
    pub start_time: Option<String>,
    /// When its run ended (RFC 3339, local time).
    pub end_time: Option<String>,
    /// Average CPU normalised by cores (100 = every core busy), from `proc_stats`.
    pub cpu_core_avg_pct: Option<f64>,
    /// Average resident memory, bytes, from `proc_stats`.
    pub rss_avg_bytes: Option<u64>,
    /// Peak resident memory, bytes, from `proc_stats`.
    pub rss_peak_bytes: Option<u64>,
    /// Median chunk write latency the client measured, milliseconds.
    pub chunk_p50_ms: Option<f64>,
    /// 99th percentile chunk write latency the client measured, milliseconds.
    pub chunk_p99_ms: Option<f64>,
    /// Seconds since the last heartbeat (live snapshots of running clients only).
    pub last_heartbeat_age_s: Option<f64>,
    /// The latest `send_stats` %CPU (100 = one core).
    #[serde(default)]
    pub cpu_last_pct: Option<f64>,
    /// The latest `send_stats` %MEM.
    #[serde(default)]
    pub mem_last_pct: Option<f64>,
    /// The latest resident memory from `proc_stats`, bytes.
    #[serde(default)]
    pub rss_last_bytes: Option<u64>,
    /// The most loadmon clients that shared the client's process at once during its run
    /// (itself included; the highest `proc_stats` said, and a loadmon client counts every
    /// client that ran beside it, between its samples too): its memory figures
    /// (`mem_avg_pct`, `rss_*`) are that whole process's. 1 for a client alone in its process
    /// the whole run; `None` for a client that did not say (a seed client).
    #[serde(default)]
    pub process_clients: Option<u32>,
    // The host's I/O view (`io` lines, see `crate::hostio`): the latest sample of the block
    // device under the client's data directory and of its host; each `None` (JSON null, an
    // empty CSV cell, "n/a" on the pages) where the client could not measure it or sent none.
    /// Latest utilisation of the device under the client's data directory, % (0–100).
    #[serde(default)]
    pub device_util_pct: Option<f64>,
    /// Latest average wait of a write at that device, ms (none when no write completed in
    /// the interval).
    #[serde(default)]
    pub device_write_await_ms: Option<f64>,
    /// Latest average queue depth of that device.
    #[serde(default)]
    pub device_queue_depth: Option<f64>,
    /// Latest MiB/s written at that device (every writer on it, not only this client).
    #[serde(default)]
    pub device_write_mb_s: Option<f64>,
    /// Latest `some avg10` of the client host's I/O pressure (`/proc/pressure/io`), %.
    #[serde(default)]
    pub io_pressure_some_pct: Option<f64>,
    /// Latest `full avg10` of the client host's I/O pressure, %.
    #[serde(default)]
    pub io_pressure_full_pct: Option<f64>,
    /// Latest dirty memory of the client's host (`Dirty` of `/proc/meminfo`), bytes.
    #[serde(default)]
    pub dirty_bytes: Option<u64>,
    /// Latest memory under writeback on the client's host (`Writeback`), bytes.
    #[serde(default)]
    pub writeback_bytes: Option<u64>,
    /// How far the client's clock is behind the server's, milliseconds (negative: ahead),
    /// estimated by the `clock` exchange from the round trip with the smallest delay of the
    /// last few (as NTP does); the server places the client's time stamps on its own timeline
    /// with it. `None` for a client that did not take part (a seed client).
    #[serde(default)]
    pub clock_offset_ms: Option<f64>,
    /// The round trip of the sample behind `clock_offset_ms`, milliseconds: the offset is
    /// right to within half of it.
    #[serde(default)]
    pub clock_rtt_ms: Option<f64>,
    /// 90th percentile chunk write latency over the run, ms, from the client's merged
    /// interval histograms (`lat` lines; loadmon clients only). With them, `chunk_p50_ms`
    /// and `chunk_p99_ms` come from the same histogram.
    #[serde(default)]
    pub chunk_p90_ms: Option<f64>,
    /// 99.9th percentile chunk write latency over the run, ms (as `chunk_p90_ms`).
    #[serde(default)]
    pub chunk_p999_ms: Option<f64>,
    /// Longest chunk write over the run, ms (as `chunk_p90_ms`).
    #[serde(default)]
    pub chunk_max_ms: Option<f64>,
    /// Chunk writes in the client's merged histograms (as `chunk_p90_ms`).
    #[serde(default)]
    pub chunk_writes: Option<u64>,
    // A paced client's figures (`pace` and `rlat` lines, see `crate::latency`): `None` for a
    // client without a rate (and a seed client).
    /// The rate the client was paced at, MiB/s (its target; `throughput_mb_s` is what it
    /// reached).
    #[serde(default)]
    pub pace_target_mb_s: Option<f64>,
    /// How far behind its schedule the client is, ms: the latest it reported (each second;
    /// at the end of the run, how far behind it finished).
    #[serde(default)]
    pub schedule_lag_ms: Option<f64>,
    /// Median start lag of the client's chunks (how late each began, 0 when on time), ms.
    #[serde(default)]
    pub schedule_lag_p50_ms: Option<f64>,
    /// 99th percentile start lag of the client's chunks, ms.
    #[serde(default)]
    pub schedule_lag_p99_ms: Option<f64>,
    /// The largest schedule lag of the client over the run, ms (a chunk's start lag or the
    /// lag it reported in a second).
    #[serde(default)]
    pub schedule_lag_max_ms: Option<f64>,
    /// Median chunk response time, ms: from when the schedule had the chunk start to the end
    /// of its write (coordinated omission corrected: a chunk that waited behind a slow one
    /// counts the wait; `chunk_p50_ms` counts from the write's start).
    #[serde(default)]
    pub response_p50_ms: Option<f64>,
    /// 90th percentile chunk response time, ms (as `response_p50_ms`).
    #[serde(default)]
    pub response_p90_ms: Option<f64>,
    /// 99th percentile chunk response time, ms (as `response_p50_ms`).
    #[serde(default)]
    pub response_p99_ms: Option<f64>,
    /// 99.9th percentile chunk response time, ms (as `response_p50_ms`).
    #[serde(default)]
    pub response_p999_ms: Option<f64>,
    /// Longest chunk response time, ms (as `response_p50_ms`).
    #[serde(default)]
    pub response_max_ms: Option<f64>,
    /// Whether the client kept its pace: `false` when its schedule lag went past
    /// [`PACE_LAG_BOUND_MS`](crate::latency::PACE_LAG_BOUND_MS) (1 s) — it could not keep
    /// pace (the report warns about it).
    #[serde(default)]
    pub kept_pace: Option<bool>,
    /// How the client's writer wrote, for a client asked for more than one write in flight
    /// (`--iodepth`; its `engine` line): `io_uring, iodepth 4, registered buffers`, or `sync,
    /// one write at a time (…)` saying why io_uring could not be used there (a seccomp
    /// profile, an old kernel). `None` for a client with one write at a time (the seed's).
    #[serde(default)]
    pub engine: Option<String>,
    /// Each writer stream's own figures, for a client that writes from several (`--jobs`;
    /// its `stream_stats` lines), in stream order: the client's figures above are their sums
    /// and merges. Empty (and left out of the JSON, and never a CSV column) for a client
    /// with one stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamReport>,
    /// What the client's checks of its written data found (`--verify rollover|end`; its
    /// `verify` and `vfind` lines): files and blocks checked, bad blocks by class, its first
    /// findings. `None` (and left out of the JSON, as `streams`) for a client that did not
    /// verify (and a seed client); boxed, so that it costs such a client one pointer. Never a
    /// CSV column itself: the CSV has two cells of it, `verify_blocks` and `verify_errors`,
    /// after the row's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Box<ClientVerify>>,
}

/// One writer stream of a client (see [`ClientReport::streams`]).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// The stream, from 0 (its files are `client_<id>_<stream>_<n>_<stamp>`).
    pub stream: u32,
    /// Bytes it wrote.
    pub bytes_written: u64,
    /// Whole files it wrote.
    pub files_written: u64,
    /// `bytes_written` in MiB over the client's `time_ran_s` (0 when it did not run).
    pub throughput_mb_s: f64,
    /// Its median chunk write latency, ms (`None` before its first write).
    pub chunk_p50_ms: Option<f64>,
    /// Its 99th percentile chunk write latency, ms.
    pub chunk_p99_ms: Option<f64>,
    /// Its longest chunk write, ms.
    pub chunk_max_ms: Option<f64>,
}

/// What a client's checks of its written data found (`ClientReport::verify`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientVerify {
    /// Files checked.
    pub files_checked: u64,
    /// Blocks checked.
    pub blocks_checked: u64,
    /// Bad blocks by class (short: blocks missing). The client's counts (its latest `verify`
    /// line), or, when its findings (`vfind`) add up to more in a class, theirs: a finding
    /// counts at once, before the next `verify` line.
    pub errors: ClassCounts,
    /// All bad blocks (`errors` added up, saturating).
    pub errors_total: u64,
    /// The client's first findings (the first [`MAX_FINDINGS_SENT`] `vfind` lines, while the
    /// server's budget of finding text for all clients lasts), in the order they came.
    ///
    /// [`MAX_FINDINGS_SENT`]: crate::protocol::MAX_FINDINGS_SENT
    pub findings: Vec<VerifyFinding>,
    /// `vfind` lines not kept (their blocks are counted): those past the first
    /// [`MAX_FINDINGS_SENT`](crate::protocol::MAX_FINDINGS_SENT), and those that came once
    /// the server's budget of finding text, all clients together
    /// ([`MAX_KEPT_FINDING_TEXT_BYTES`](crate::server::MAX_KEPT_FINDING_TEXT_BYTES)), was
    /// spent. A loadmon client sends none past its first 20: it counts the rest of its
    /// findings on its `verify` line only.
    #[serde(default)]
    pub findings_left_off: u64,
}

/// All verifying clients together (`Total::verify`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotalVerify {
    /// Clients that checked their data (sent `verify` or `vfind`).
    pub clients: usize,
    /// Clients that found bad blocks.
    pub clients_with_errors: usize,
    /// Files checked, all clients.
    pub files_checked: u64,
    /// Blocks checked, all clients.
    pub blocks_checked: u64,
    /// Bad blocks by class, all clients.
    pub errors: ClassCounts,
    /// All bad blocks, all clients.
    pub errors_total: u64,
}

/// Above this clock offset, either way, milliseconds, a client's clock is warned about (in
/// the report's `warnings` and the server's log): its series were placed on the server's
/// timeline by the estimate, which is as good as the round trip is short.
pub const CLOCK_WARN_MS: f64 = 1000.0;

/// Most clients named in the report's clock warnings; one more line counts the rest.
pub const MAX_CLOCK_WARNINGS: usize = 10;

impl ClientReport {
    /// The warning about this client's clock, if its offset is above [`CLOCK_WARN_MS`] either
    /// way.
    ///
    /// # Examples
    /// ```
    /// use loadmon::report::ClientReport;
    /// let c = ClientReport { id: 101, clock_offset_ms: Some(2500.0), clock_rtt_ms: Some(0.4), ..Default::default() };
    /// assert_eq!(
    ///     c.clock_warning().unwrap(),
    ///     "client 101's clock is 2.500 s behind the server's (offset +2500.0 ms, measured over \
    ///      a 0.4 ms round trip): its times are placed on the server's clock"
    /// );
    /// ```
    pub fn clock_warning(&self) -> Option<String> {
        let offset_ms = self.clock_offset_ms.filter(|o| o.abs() > CLOCK_WARN_MS)?;
        let way = if offset_ms > 0.0 {
            "behind"
        } else {
            "ahead of"
        };
        Some(format!(
            "client {}'s clock is {:.3} s {way} the server's (offset {offset_ms:+.1} ms, measured \
             over a {:.1} ms round trip): its times are placed on the server's clock",
            self.id,
            offset_ms.abs() / 1000.0,
            self.clock_rtt_ms.unwrap_or(0.0)
        ))
    }
}

impl Report {
    /// The report's warnings about `clients`' clocks: one per client whose offset is above
    /// [`CLOCK_WARN_MS`], at most [`MAX_CLOCK_WARNINGS`], then one line counting the others.
    pub fn clock_warnings(clients: &[ClientReport]) -> Vec<String> {
        let mut warnings: Vec<String> = Vec::new();
        let mut more = 0usize;
        for w in clients.iter().filter_map(ClientReport::clock_warning) {
            if warnings.len() < MAX_CLOCK_WARNINGS {
                warnings.push(w);
            } else {
                more += 1;
            }
        }
        if more > 0 {
            warnings.push(format!(
                "{more} more client(s) with a clock offset above {:.0} s (see each client's \
                 clock_offset_ms)",
                CLOCK_WARN_MS / 1000.0
            ));
        }
        warnings
    }
}

/// All clients together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    /// Clients that got an id.
    pub clients: usize,
    /// Clients with status PASS.
    pub passed: usize,
    /// Files written by all clients.
    pub files_written: u64,
    /// Bytes written by all clients.
    pub bytes_written: u64,
    /// All bytes in MiB over the span from the first `start` to the last end.
    pub throughput_mb_s: f64,
    /// Time of the first `done` (RFC 3339), if any.
    pub first_done: Option<String>,
    /// Time of the last `done` (RFC 3339), if any.
    pub last_done: Option<String>,
    /// Fleet mode: the clients the server waited for (`--expect-clients`); `None` otherwise.
    #[serde(default)]
    pub expected_clients: Option<usize>,
    /// Fleet mode: the clients started together (fewer than expected when the start timeout
    /// started whoever was ready); `None` outside fleet mode and before the start.
    #[serde(default)]
    pub started_clients: Option<usize>,
    /// The common start (RFC 3339): when the fleet started, or outside fleet mode the first
    /// client's `start`. `total.series` counts from here.
    #[serde(default)]
    pub common_start: Option<String>,
    /// All clients together over time: bytes and MiB/s summed over clients per time bucket
    /// from the common start (at most 96 buckets; see [`crate::series`]).
    #[serde(default)]
    pub series: Vec<TotalSample>,
    /// All clients' 1-s throughput, measured: the clients' `tput` rates added up per bucket of
    /// 1 s from the common start (wider past 96 s), each bucket with how many clients
    /// reported in it, `null` where none did (see [`crate::series`]). Empty when no client
    /// sent `tput` (seed clients, older loadmons: `series` has their throughput).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tput: Vec<FleetBucket>,
    /// Chunk write latency of all clients over the run, from their interval histograms merged
    /// (loadmon clients' `lat` lines): the fleet's true percentiles, not an average of the
    /// clients'. `None` when no client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    /// The fleet's chunk write latency over time: every client's intervals merged per second
    /// of the server's clock (coarser for long runs, at most 96 points; see
    /// [`crate::latency`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_series: Vec<LatencyPoint>,
    /// The paced clients' figures together (their targets, schedule lag and response times
    /// merged, who could not keep pace); `None` when no client was paced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceTotal>,
    /// The verifying clients' figures together (files and blocks checked, bad blocks by
    /// class); `None` (left out of the JSON) when no client verified its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<TotalVerify>,
}

impl Total {
    /// The totals of `clients` whose runs span `span_s` seconds (first `start` to last end).
    /// Sums saturate: a peer reporting `u64::MAX` bytes cannot make the total wrap.
    pub fn of(clients: &[ClientReport], span_s: f64) -> Total {
        let bytes_written = clients
            .iter()
            .fold(0u64, |t, c| t.saturating_add(c.bytes_written));
        let dones = clients
            .iter()
            .filter(|c| c.status == Status::Pass)
            .filter_map(|c| {
                let t = c.end_time.as_deref()?;
                Some((chrono::DateTime::parse_from_rfc3339(t).ok()?, t))
            });
        let (mut first, mut last) = (None, None::<(chrono::DateTime<chrono::FixedOffset>, &str)>);
        for d in dones {
            if first
                .as_ref()
                .is_none_or(|f: &(chrono::DateTime<chrono::FixedOffset>, &str)| d.0 < f.0)
            {
                first = Some(d);
            }
            if last.as_ref().is_none_or(|l| d.0 > l.0) {
                last = Some(d);
            }
        }
        Total {
            clients: clients.len(),
            passed: clients.iter().filter(|c| c.status == Status::Pass).count(),
            files_written: clients
                .iter()
                .fold(0u64, |t, c| t.saturating_add(c.files_written)),
            bytes_written,
            throughput_mb_s: if span_s > 0.0 {
                bytes_written as f64 / BYTES_PER_MB / span_s
            } else {
                0.0
            },
            first_done: first.map(|f| f.1.to_string()),
            last_done: last.map(|l| l.1.to_string()),
            expected_clients: None,
            started_clients: None,
            common_start: None,
            series: Vec::new(),
            tput: Vec::new(),
            latency: None,
            latency_series: Vec::new(),
            pace: None,
            verify: Total::verify_of(clients),
        }
    }
}

/// The server's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the server started (RFC 3339, local time).
    pub start_time: String,
    /// When the server stopped (RFC 3339, local time); for a snapshot, now.
    pub end_time: String,
    /// Every client that got an id, in id order.
    pub clients: Vec<ClientReport>,
    /// All clients together.
    pub total: Total,
    /// Each client's throughput, CPU and memory over time (bounded; see
    /// [`series`](crate::series)), for the clients that sent stats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<ClientSeries>,
    /// Whether the run was stopped (Ctrl-C, SIGTERM, a stop call) rather than ending by itself
    /// when its clients were gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Each client's host I/O view over time (at most [`MAX_SAMPLES`](crate::series::MAX_SAMPLES) points each), for
    /// the clients that sent `io` lines, on the server's timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_series: Vec<ClientIoSeries>,
    /// What the reader should know before trusting the figures: a client whose clock is more
    /// than [`CLOCK_WARN_MS`] off the server's ([`Report::clock_warnings`]), a paced client
    /// that could not keep pace ([`Report::pace_warnings`]). Each is a line of the text report
    /// after the seed's, and is shown at the top of the HTML report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Each client's chunk write latency over time (bounded; see [`crate::latency`]), for the
    /// clients that sent `lat` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_series: Vec<ClientLatencySeries>,
    /// The run's parameters, for `loadmon cmp` to flag the ones that differ: the fleet's plan
    /// (`plan.<key>` for each of its wire settings), the server's thresholds, … (empty for a
    /// run outside fleet mode without thresholds).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
    /// The thresholds' verdict (`--threshold`; see [`crate::verdict`]); `None` for a run
    /// without thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<super::verdict::Verdict>,
}

/// The reason of a client that was running when the server was stopped.
pub const STOPPED_REASON: &str = "server stopped";

/// The text report's first line when a threshold that failed stopped the run
/// (`abort_on_fail`), in place of the seed's "All test clients completed!".
pub const ABORTED_HEADLINE: &str = "Thresholds failed: the run was aborted!";
