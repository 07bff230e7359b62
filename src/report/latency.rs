//! The report's latency figures: the interval log file, and the text report's latency line.

use super::types::{Report, Total};
use crate::latency::LatencyInterval;

impl Report {
    /// The fleet's merged latency `intervals` (a server's, at the end of its run) in the
    /// HdrHistogram interval-log format (v1.3), which HdrHistogram's tools read; timestamps
    /// count from this report's start, the server's (`#[BaseTime]`).
    pub fn latency_log(&self, intervals: &[LatencyInterval]) -> String {
        let start_unix_s = chrono::DateTime::parse_from_rfc3339(&self.start_time)
            .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0);
        crate::latency::interval_log(intervals, start_unix_s)
    }
}

impl Total {
    /// The text report's line of the fleet's chunk write latency (`None` when no client sent
    /// `lat` lines): `Chunk write latency, all clients (12000 writes): p50 1.20 ms, p90 …`.
    pub fn latency_line(&self) -> Option<String> {
        let l = self.latency?;
        Some(format!(
            "Chunk write latency, all clients ({} writes): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} \
             ms, p99.9 {:.2} ms, max {:.2} ms",
            l.writes, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        ))
    }
}
