//! `stream_stats`: one writer stream's own figures, from a client that writes from several
//! (the file writer's `jobs`); loadmon's own line, which a seed peer never sees.

use super::{invalid, parse_u64, Fields, ProtocolError};

/// `stream_stats:<stream>:<bytes>:<files>:<p50_us>:<p99_us>:<max_us>`: one stream's bytes and
/// whole files written so far and its chunk write latencies (µs; 0 before its first write).
/// The client's own figures (`write_stats`, `file_roll`, `lat`) are the streams' sums and
/// merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    /// The stream, 0-based, below [`JOBS`](crate::config::JOBS)' maximum (256).
    pub stream: u32,
    /// Bytes the stream wrote so far.
    pub bytes_written: u64,
    /// Whole files the stream wrote so far.
    pub files_written: u64,
    /// Median chunk write latency, µs.
    pub chunk_p50_us: u64,
    /// 99th percentile chunk write latency, µs.
    pub chunk_p99_us: u64,
    /// Longest chunk write, µs.
    pub chunk_max_us: u64,
}

const C: &str = "stream_stats";

impl StreamStats {
    /// The line's fields after the command.
    pub(super) fn encode(&self, cmd: &str) -> String {
        format!(
            "{cmd}:{}:{}:{}:{}:{}:{}",
            self.stream,
            self.bytes_written,
            self.files_written,
            self.chunk_p50_us,
            self.chunk_p99_us,
            self.chunk_max_us
        )
    }

    /// Parses the line's fields: 7, each an unsigned integer, the stream below 256.
    pub(super) fn parse(f: &Fields<'_>) -> Result<StreamStats, ProtocolError> {
        f.expect(C, 7)?;
        let mut args = f.rest().split(':');
        let mut next = || args.next().unwrap_or("");
        let raw = next();
        let stream = parse_u64(C, "stream", raw)?;
        if stream >= crate::config::JOBS.max {
            return Err(invalid(C, "stream", raw, "not below 256"));
        }
        Ok(StreamStats {
            // Below 256: exact.
            stream: stream as u32,
            bytes_written: parse_u64(C, "bytes", next())?,
            files_written: parse_u64(C, "files", next())?,
            chunk_p50_us: parse_u64(C, "p50_us", next())?,
            chunk_p99_us: parse_u64(C, "p99_us", next())?,
            chunk_max_us: parse_u64(C, "max_us", next())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Message;
    use super::*;

    #[test]
    fn a_stream_line_round_trips_and_is_bounded() {
        let s = StreamStats {
            stream: 3,
            bytes_written: 1 << 40,
            files_written: 7,
            chunk_p50_us: 812,
            chunk_p99_us: 2400,
            chunk_max_us: 9000,
        };
        let line = Message::StreamStats(s).encode();
        assert_eq!(line, "stream_stats:3:1099511627776:7:812:2400:9000");
        assert_eq!(Message::parse(&line), Ok(Message::StreamStats(s)));
        for bad in [
            "stream_stats:256:1:1:1:1:1",
            "stream_stats:-1:1:1:1:1:1",
            "stream_stats:1:1:1:1:1",
            "stream_stats:1:1:1:1:1:1:1",
            "stream_stats:1:x:1:1:1:1",
        ] {
            assert!(Message::parse(bad).is_err(), "{bad}");
        }
    }
}
