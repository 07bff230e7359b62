//! The interval lines of latencies: `lat` (every client's chunk write latencies), and the
//! paced client's (new; only to a loadmon server, only from a client with a rate): `rlat`,
//! the chunks' response times (from when each was due), and `pace`, the target, the schedule
//! lag now and the chunks' start lags. Their histograms are `lat`'s ([`IntervalHistogram`]:
//! the same encoding, the same bounds).

use super::{invalid, parse_f64, parse_u64, Fields, Message, ProtocolError};
use crate::latency::IntervalHistogram;

/// Highest rate a `pace` line may carry, MiB/s (the rate setting's bound, 10^6).
pub const MAX_PACE_RATE_MB_S: f64 = crate::config::MAX_RATE_MB_S;

/// Largest schedule lag a `pace` line may carry, µs (10^15: every duration's bound).
pub const MAX_LAG_US: u64 = 1_000_000_000_000_000;

/// A `lat` line: the chunk write latencies (µs) of the interval `[t0_ms, t1_ms)` on the
/// client's clock (Unix ms), as a histogram ([`crate::latency`]); an `rlat` line, the same for
/// the response times.
#[derive(Debug, Clone, PartialEq)]
pub struct LatLine {
    /// The interval's start, the client's Unix time in ms.
    pub t0_ms: u64,
    /// The interval's end, the client's Unix time in ms (not before `t0_ms`).
    pub t1_ms: u64,
    /// The interval's writes.
    pub hist: IntervalHistogram,
}

/// A `pace` line: one interval `[t0_ms, t1_ms)` of the client's clock (Unix ms) of a client
/// that writes at a set rate.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceLine {
    /// The interval's start, the client's Unix time in ms.
    pub t0_ms: u64,
    /// The interval's end, the client's Unix time in ms (not before `t0_ms`).
    pub t1_ms: u64,
    /// The client's target rate, MiB/s (above 0, at most [`MAX_PACE_RATE_MB_S`]).
    pub rate_mb_s: f64,
    /// How far behind its schedule the client is at `t1_ms`, µs (its furthest stream).
    pub lag_us: u64,
    /// How late each chunk begun in the interval began (µs, 0 when on time); `None` (`-` on
    /// the wire) when none began.
    pub hist: Option<IntervalHistogram>,
}

/// `rlat:<t0_ms>:<t1_ms>:<hist>` (as `lat`).
pub(super) fn parse_rlat(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    interval_line("rlat", f).map(|l| Message::RespLat(Box::new(l)))
}

/// `lat` or `rlat`: an interval and its histogram, within [`crate::latency`]'s bounds (its
/// length is checked before it is decoded).
pub(super) fn interval_line(c: &'static str, f: &Fields<'_>) -> Result<LatLine, ProtocolError> {
    f.expect(c, 4)?;
    let (t0_ms, t1_ms) = interval(c, f.f[1], f.f[2])?;
    let hist = IntervalHistogram::decode(f.f[3]).map_err(|why| invalid(c, "hist", f.f[3], why))?;
    Ok(LatLine { t0_ms, t1_ms, hist })
}

/// `t0_ms` and `t1_ms`, unsigned integers, `t1_ms` not before `t0_ms`.
fn interval(c: &'static str, t0: &str, t1: &str) -> Result<(u64, u64), ProtocolError> {
    let t0_ms = parse_u64(c, "t0_ms", t0)?;
    let t1_ms = parse_u64(c, "t1_ms", t1)?;
    if t1_ms < t0_ms {
        return Err(invalid(c, "t1_ms", t1, "before t0_ms"));
    }
    Ok((t0_ms, t1_ms))
}

/// `pace:<t0_ms>:<t1_ms>:<rate_mb_s>:<lag_us>:<hist|->`.
pub(super) fn parse_pace(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    const C: &str = "pace";
    f.expect(C, 6)?;
    let mut args = f.rest().split(':');
    let mut next = || args.next().unwrap_or("");
    let (t0, t1) = (next(), next());
    let (t0_ms, t1_ms) = interval(C, t0, t1)?;
    let rate = next();
    let rate_mb_s = parse_f64(rate).ok_or_else(|| invalid(C, "rate_mb_s", rate, "not a number"))?;
    // `contains` is false for NaN.
    if !(rate_mb_s > 0.0 && (0.0..=MAX_PACE_RATE_MB_S).contains(&rate_mb_s)) {
        return Err(invalid(
            C,
            "rate_mb_s",
            rate,
            "not above 0 and at most 10^6",
        ));
    }
    let lag = next();
    let lag_us = parse_u64(C, "lag_us", lag)?;
    if lag_us > MAX_LAG_US {
        return Err(invalid(C, "lag_us", lag, "larger than 10^15"));
    }
    let blob = next();
    let hist = match blob {
        "-" => None,
        b => Some(IntervalHistogram::decode(b).map_err(|why| invalid(C, "hist", b, why))?),
    };
    Ok(Message::Pace(Box::new(PaceLine {
        t0_ms,
        t1_ms,
        rate_mb_s,
        lag_us,
        hist,
    })))
}

/// A `pace` line's text.
pub(super) fn encode_pace(cmd: &str, p: &PaceLine) -> String {
    let hist = p.hist.as_ref().map_or("-", IntervalHistogram::as_str);
    format!(
        "{cmd}:{}:{}:{}:{}:{hist}",
        p.t0_ms, p.t1_ms, p.rate_mb_s, p.lag_us
    )
}
