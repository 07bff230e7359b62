//! Chunk write latencies as HDR histograms that merge exactly: a client records each write's
//! latency (µs) in a histogram per interval and sends it on the `lat` line
//! ([`Message::Lat`](crate::protocol::Message::Lat)) in the HdrHistogram V2 compressed
//! encoding, base64; the server decodes it within bounds ([`IntervalHistogram::decode`]) and
//! adds it to the client's histogram over the run and to the fleet's per interval
//! ([`FleetIntervals`]). A percentile of the merged histogram is the percentile of all the
//! samples together, to the histogram's precision (3 significant digits), which averaging the
//! clients' percentiles is not.
//!
//! The rooms: this file (the histogram, its encoding and its bounds, the summaries the report
//! shows), `series` (the fleet's intervals and a client's bounded series of percentiles),
//! `log` (the HdrHistogram interval-log file), `pace` (paced clients' response times and
//! schedule lag: the `rlat` and `pace` lines).

use std::io::Read;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

mod log;
mod pace;
mod series;

pub use log::interval_log;
pub use pace::{record_lag_us, ClientPace, FleetPace, PaceFigures, PaceTotal, PACE_LAG_BOUND_MS};
pub use series::{
    ClientLatency, ClientLatencySeries, FleetIntervals, LatencyInterval, LatencyPoint,
    MAX_LATENCY_POINTS,
};

/// Most base64 bytes of a `lat` line's histogram; a longer one is refused before decoding.
pub const MAX_LAT_BLOB_BYTES: usize = 3_000;

/// The highest latency a histogram tracks, µs (one hour); a longer write counts as one hour.
pub const HIGHEST_LATENCY_US: u64 = 3_600_000_000;

/// The precision of the histograms, significant decimal digits (a client lowers it to 2, then
/// 1, when an interval's encoding would pass [`MAX_LAT_BLOB_BYTES`]).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Most writes one interval histogram may hold (10^9): more in one `lat` line is refused, so
/// that no sum of counts can overflow in a run.
pub const MAX_INTERVAL_WRITES: u64 = 1_000_000_000;

/// Largest highest-trackable value a decoded histogram may declare, µs (2^33, above
/// [`HIGHEST_LATENCY_US`] with the room an auto-resized histogram takes).
const MAX_DECLARED_HIGH_US: u64 = 1 << 33;

/// Most bytes a `lat` histogram may inflate to (a 3-digit histogram of one hour's range holds
/// about 24,000 counters, at most 9 bytes each; 256 KiB is well above what it needs).
const MAX_INFLATED_BYTES: u64 = 256 * 1024;

/// The V2 uncompressed cookie and the V2 compressed one (HdrHistogram's encoding: a base, and
/// the word size 0x10).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Bytes of the V2 header after its cookie: payload length, normalising offset, digits, lowest
/// and highest value, conversion ratio.
const V2_HEADER_BYTES: usize = 36;

/// The base64 engine of the wire: the standard alphabet, padding optional when reading,
/// written without.
const WIRE_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// An empty latency histogram: µs from 1, 3 significant digits, growing to the largest value
/// recorded (a fixed 1 µs – 1 hour one would hold 180 KiB of counters; this one holds what the
/// values need).
pub fn new_histogram() -> Histogram<u64> {
    // Valid constants: 3 digits, auto-resizing from 1.
    Histogram::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable!("3 digits are valid"))
}

/// Records one write of `us` µs (at least 1, at most [`HIGHEST_LATENCY_US`]).
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    // `record` grows an auto-resizing histogram (`saturating_record` would clamp to its
    // current range); a value within an hour always fits.
    let _ = h.record(us.clamp(1, HIGHEST_LATENCY_US));
}

/// One interval's histogram as a `lat` line carries it: the histogram and its text (base64 of
/// the V2 compressed encoding), which encodes back byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalHistogram {
    hist: Histogram<u64>,
    blob: String,
}

impl IntervalHistogram {
    /// `h` encoded within [`MAX_LAT_BLOB_BYTES`]: at its precision, or at 2 then 1
    /// significant digits if it does not fit; `None` if it does not fit at 1 either (the
    /// caller drops the interval and says so).
    pub fn encode(h: &Histogram<u64>) -> Option<IntervalHistogram> {
        for digits in (1..=h.sigfig().min(SIGNIFICANT_DIGITS)).rev() {
            let hist = if digits == h.sigfig() {
                h.clone()
            } else {
                with_digits(h, digits)?
            };
            let blob = encode_blob(&hist)?;
            if blob.len() <= MAX_LAT_BLOB_BYTES {
                return Some(IntervalHistogram { hist, blob });
            }
        }
        None
    }

    /// Decodes a `lat` line's histogram, within bounds: at most [`MAX_LAT_BLOB_BYTES`] of
    /// base64 (checked before anything is decoded), at most 256 KiB inflated, a header of 1 to 3
    /// significant digits, a lowest value of 1 µs and a highest of at most 2^33 µs (so that
    /// its counters are at most about 25,000), a payload within what was inflated, at most
    /// [`MAX_INTERVAL_WRITES`] writes.
    ///
    /// # Errors
    /// Why it was refused.
    pub fn decode(blob: &str) -> Result<IntervalHistogram, &'static str> {
        if blob.len() > MAX_LAT_BLOB_BYTES {
            return Err("longer than 3000 bytes");
        }
        let packed = WIRE_B64.decode(blob).map_err(|_| "not base64")?;
        let v2 = inflate(&packed)?;
        check_header(&v2)?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut v2.as_slice())
            .map_err(|_| "not an HdrHistogram V2 encoding")?;
        if hist.len() > MAX_INTERVAL_WRITES {
            return Err("more than 10^9 writes in one interval");
        }
        Ok(IntervalHistogram {
            hist,
            blob: blob.to_string(),
        })
    }

    /// The histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Its text on the wire.
    pub fn as_str(&self) -> &str {
        &self.blob
    }
}

/// `h` at `digits` significant digits (each value at its bucket's highest equivalent).
fn with_digits(h: &Histogram<u64>, digits: u8) -> Option<Histogram<u64>> {
    let mut out = Histogram::<u64>::new(digits).ok()?;
    for v in h.iter_recorded() {
        out.record_n(v.value_iterated_to(), v.count_at_value())
            .ok()?;
    }
    Some(out)
}

/// The base64 (no padding) of `h`'s V2 compressed encoding.
pub(crate) fn encode_blob(h: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
    Some(WIRE_B64.encode(bytes))
}

/// The V2 (uncompressed) encoding inside a V2 compressed one, at most [`MAX_INFLATED_BYTES`].
fn inflate(packed: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (cookie, rest) = split_u32(packed).ok_or("too short")?;
    if cookie != V2_COMPRESSED_COOKIE {
        return Err("not an HdrHistogram V2 compressed encoding");
    }
    let (len, deflated) = split_u32(rest).ok_or("too short")?;
    let deflated = deflated
        .get(..usize::try_from(len).unwrap_or(usize::MAX))
        .ok_or("truncated")?;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(deflated)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|_| "not deflated")?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err("inflates to more than 256 KiB");
    }
    Ok(out)
}

/// Checks a V2 header before the histogram it declares is allocated.
fn check_header(v2: &[u8]) -> Result<(), &'static str> {
    let (cookie, rest) = split_u32(v2).ok_or("truncated")?;
    if cookie != V2_COOKIE || rest.len() < V2_HEADER_BYTES {
        return Err("not an HdrHistogram V2 encoding");
    }
    let (payload_len, rest) = split_u32(rest).ok_or("truncated")?;
    let (_offset, rest) = split_u32(rest).ok_or("truncated")?;
    let (digits, rest) = split_u32(rest).ok_or("truncated")?;
    let (low, rest) = split_u64(rest).ok_or("truncated")?;
    let (high, rest) = split_u64(rest).ok_or("truncated")?;
    let (_ratio, payload) = split_u64(rest).ok_or("truncated")?;
    if usize::try_from(payload_len).unwrap_or(usize::MAX) > payload.len() {
        return Err("payload longer than the encoding");
    }
    if !(1..=u32::from(SIGNIFICANT_DIGITS)).contains(&digits) {
        return Err("significant digits not 1 to 3");
    }
    if low != 1 || !(2..=MAX_DECLARED_HIGH_US).contains(&high) {
        return Err("range not within 1 us to 2^33 us");
    }
    Ok(())
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

fn split_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = b.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

/// Chunk write latency over a run (a client's or the fleet's), from its merged histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Chunk writes measured.
    pub writes: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
}

impl LatencySummary {
    /// The summary of `h` (`None` if it is empty).
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        (!h.is_empty()).then(|| LatencySummary {
            writes: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        })
    }
}

/// The upper bounds (`le`, seconds) of `/metrics`' `loadmon_chunk_write_seconds` buckets
/// (`+Inf` follows).
pub const BUCKET_BOUNDS_S: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram as Prometheus shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusHistogram {
    /// The cumulative count at or below each of [`BUCKET_BOUNDS_S`] (`le`, seconds).
    pub buckets: Vec<(f64, u64)>,
    /// The sum of all values, seconds (each at its bucket's middle).
    pub sum_s: f64,
    /// How many values.
    pub count: u64,
}

/// `h` as a Prometheus histogram (a value counts in the bucket of its histogram bucket's
/// lowest equivalent, to 3 digits).
pub fn prometheus_buckets(h: &Histogram<u64>) -> PrometheusHistogram {
    let mut cumulative = vec![0u64; BUCKET_BOUNDS_S.len()];
    let mut sum_us = 0.0;
    for v in h.iter_recorded() {
        let value = h.lowest_equivalent(v.value_iterated_to());
        let n = v.count_at_value();
        sum_us += h.median_equivalent(value) as f64 * n as f64;
        for (bound, c) in BUCKET_BOUNDS_S.iter().zip(cumulative.iter_mut()) {
            if value as f64 <= bound * 1e6 {
                *c = c.saturating_add(n);
            }
        }
    }
    PrometheusHistogram {
        buckets: BUCKET_BOUNDS_S.iter().copied().zip(cumulative).collect(),
        sum_s: sum_us / 1e6,
        count: h.len(),
    }
}

#[cfg(test)]
mod tests;
