//! The HdrHistogram interval-log file (format version 1.3) of the fleet's merged intervals,
//! which HdrHistogram's own tools read (`HistogramLogProcessor`, the crate's
//! `IntervalLogIterator`).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;

use super::series::LatencyInterval;

/// The interval log of `intervals` (their starts in seconds since the server started) of a
/// server that started at `start_unix_s` (Unix time, seconds): a comment, the format version,
/// `#[StartTime: …]` and `#[BaseTime: …]` (both the server's start: each interval's timestamp
/// counts from it), the legend, then one line per interval — start, length, max (µs) and the
/// base64 of its V2 compressed histogram (values in µs).
pub fn interval_log(intervals: &[LatencyInterval], start_unix_s: f64) -> String {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "#[Chunk write latencies of every loadmon client, merged; values in microseconds; \
         loadmon {}]",
        crate::VERSION
    );
    head.push_str("#[Histogram log format version 1.3]\n");
    let _ = writeln!(
        head,
        "#[StartTime: {start_unix_s:.3} (seconds since epoch)]"
    );
    let _ = writeln!(head, "#[BaseTime: {start_unix_s:.3} (seconds since epoch)]");
    head.push_str(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut out = head.into_bytes();
    let mut serializer = V2DeflateSerializer::new();
    if let Ok(mut w) = IntervalLogWriterBuilder::new().begin_log_with(&mut out, &mut serializer) {
        for i in intervals {
            let at = Duration::from_secs_f64(i.start_s.max(0.0));
            let width = Duration::from_secs_f64(i.width_s.max(0.0));
            // Writing to memory fails only if a histogram cannot be encoded: that interval
            // is left out.
            let _ = w.write_histogram(&i.hist, at, width, None);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
