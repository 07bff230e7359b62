//! The seed's text report (byte for byte for every line the seed had), and fleet mode's line
//! under it.

use std::fmt;

use super::types::{Report, Total, ABORTED_HEADLINE, STOPPED_REASON};
use crate::units::BYTES_PER_MB;

impl Report {
    /// The seed's text report, byte for byte for every line the seed printed (sizes are plain
    /// MB integers without a unit, as the seed printed them). New: a `Reason:` line after a
    /// client that has a reason (ABORTED, FAILED, TIMED OUT), and the statuses `TIMED OUT` and
    /// `FAILED`, which the seed did not have. Which clients shared a process is in the JSON,
    /// CSV and HTML reports, not here. After the seed's block: the fleet's chunk write latency
    /// when loadmon clients sent it ([`Total::latency_line`]), the paced clients' line when
    /// any was paced ([`Total::pace_line`]), the verify section when any client checked its
    /// data ([`Report::verify_text`]), in fleet mode one line
    /// ([`Total::fleet_line`]), then one line per warning ([`Report::warnings`]:
    /// `Warning: client 101's clock is 2.500 s behind the server's …`).
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
        // The fleet's latency (loadmon clients only), the paced and verifying clients', then
        // fleet mode's line, which stays the last.
        if let Some(latency) = self.total.latency_line() {
            s.push_str(&latency);
            s.push('\n');
        }
        if let Some(pace) = self.total.pace_line() {
            s.push_str(&pace);
            s.push('\n');
        }
        s.push_str(&self.verify_text());
        if let Some(fleet) = self.total.fleet_line() {
            s.push_str(&fleet);
            s.push('\n');
        }
        self.warning_lines(&mut s);
        if let Some(v) = &self.verdict {
            s.push_str(&v.to_text());
        }
        s
    }

    /// One line per warning, after the seed's block (none for a run without any).
    fn warning_lines(&self, s: &mut String) {
        for w in &self.warnings {
            // Built from numbers by the server; escaped anyway (a report read from a file).
            s.push_str(&format!("Warning: {}\n", crate::text::escape_control(w)));
        }
    }

    /// The text report's first line: the seed's "All test clients completed!" when the run
    /// ended by itself (or every client had finished when it was stopped), and what happened
    /// otherwise (a threshold that failed with `abort_on_fail` stopped it first).
    fn headline(&self) -> &'static str {
        if self
            .verdict
            .as_ref()
            .is_some_and(|v| v.aborted_by.is_some())
        {
            return ABORTED_HEADLINE;
        }
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
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Total {
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

/// The seed printed times as `%Y-%m-%d_%H:%M:%S`; the JSON keeps RFC 3339.
fn seed_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d_%H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}
