use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use proptest::prelude::*;

use super::*;

fn hist(values: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for v in values {
        record_us(&mut h, *v);
    }
    h
}

/// The exact `q` quantile of `samples` (nearest rank, as HdrHistogram counts).
fn exact_quantile(samples: &mut [u64], q: f64) -> u64 {
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn an_interval_round_trips(values in proptest::collection::vec(1u64..HIGHEST_LATENCY_US, 1..300)) {
        let h = hist(&values);
        let enc = IntervalHistogram::encode(&h).expect("fits");
        prop_assert!(enc.as_str().len() <= MAX_LAT_BLOB_BYTES);
        let back = IntervalHistogram::decode(enc.as_str()).expect("decodes");
        prop_assert_eq!(back.histogram(), &h);
        prop_assert_eq!(back.as_str(), enc.as_str());
        prop_assert_eq!(back, enc);
    }

    #[test]
    fn garbage_never_panics_and_never_decodes_big(blob in "[A-Za-z0-9+/=]{0,200}") {
        if let Ok(h) = IntervalHistogram::decode(&blob) {
            prop_assert!(h.histogram().distinct_values() < 30_000);
        }
    }
}

#[test]
fn a_wide_interval_is_encoded_at_a_lower_precision_to_fit() {
    // Tens of thousands of values scattered over the whole range, with uneven counts: too big
    // at 3 digits.
    // Log-uniform from 1 µs to an hour (a deterministic scramble of 0..1).
    let values: Vec<u64> = (0..100_000u64)
        .map(|i| {
            let u = (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 1_000_003.0;
            (HIGHEST_LATENCY_US as f64).powf(u) as u64
        })
        .collect();
    let h = hist(&values);
    let full = encode_blob(&h).unwrap().len();
    assert!(full > MAX_LAT_BLOB_BYTES, "{full}");
    let enc = IntervalHistogram::encode(&h).expect("fits at a lower precision");
    assert!(enc.as_str().len() <= MAX_LAT_BLOB_BYTES);
    assert!(enc.histogram().sigfig() < 3);
    assert_eq!(enc.histogram().len(), h.len());
    let back = IntervalHistogram::decode(enc.as_str()).unwrap();
    assert_eq!(back.histogram().len(), 100_000);
}

/// The V2 compressed encoding of a V2 payload `v2` (cookie included), base64.
fn pack(v2: &[u8]) -> String {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(v2).unwrap();
    let deflated = z.finish().unwrap();
    let mut out = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
    out.extend((deflated.len() as u32).to_be_bytes());
    out.extend(deflated);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// A V2 header with these fields and `payload` after it.
fn v2(payload_len: u32, digits: u32, low: u64, high: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = V2_COOKIE.to_be_bytes().to_vec();
    b.extend(payload_len.to_be_bytes());
    b.extend(0u32.to_be_bytes());
    b.extend(digits.to_be_bytes());
    b.extend(low.to_be_bytes());
    b.extend(high.to_be_bytes());
    b.extend(1.0f64.to_be_bytes());
    b.extend(payload);
    b
}

#[test]
fn oversized_truncated_and_garbage_histograms_are_refused() {
    let good = IntervalHistogram::encode(&hist(&[100, 200, 300])).unwrap();
    let s = good.as_str();
    assert_eq!(
        IntervalHistogram::decode(&"A".repeat(MAX_LAT_BLOB_BYTES + 1)),
        Err("longer than 3000 bytes")
    );
    for bad in [
        "",
        "!!!!",
        "AAAA",
        &s[..s.len() / 2],
        &s[..12],
        "SGVsbG8gd29ybGQ",
    ] {
        assert!(IntervalHistogram::decode(bad).is_err(), "{bad}");
    }
    // Headers that would allocate too much, or lie about the payload.
    for (header, why) in [
        (v2(0, 5, 1, 1 << 40, &[]), "significant digits not 1 to 3"),
        (
            v2(0, 3, 1, u64::MAX / 2, &[]),
            "range not within 1 us to 2^33 us",
        ),
        (
            v2(0, 3, 1000, 1 << 20, &[]),
            "range not within 1 us to 2^33 us",
        ),
        (
            v2(u32::MAX, 3, 1, 1 << 20, &[2]),
            "payload longer than the encoding",
        ),
    ] {
        assert_eq!(IntervalHistogram::decode(&pack(&header)), Err(why));
    }
    // More writes than an interval may hold: one count of 2^40 (zig-zag varint).
    let mut h = Histogram::<u64>::new_with_bounds(1, 1 << 20, 3).unwrap();
    h.record_n(5, 1 << 40).unwrap();
    let mut raw = Vec::new();
    V2Serializer::new().serialize(&h, &mut raw).unwrap();
    assert_eq!(
        IntervalHistogram::decode(&pack(&raw)),
        Err("more than 10^9 writes in one interval")
    );
    // A deflate bomb stops at 256 KiB.
    let bomb = v2(0, 3, 1, 1 << 20, &vec![0u8; 1 << 20]);
    assert_eq!(
        IntervalHistogram::decode(&pack(&bomb)),
        Err("inflates to more than 256 KiB")
    );
}

#[test]
fn the_fleet_p99_is_the_p99_of_all_samples_not_the_mean_of_the_clients() {
    // Client A: fast (1 ms) with a 2 % tail at 50 ms; client B: 10 ms with no tail.
    let a: Vec<u64> = (0..10_000)
        .map(|i| if i % 50 == 0 { 50_000 } else { 1_000 })
        .collect();
    let b: Vec<u64> = (0..10_000).map(|i| 10_000 + i % 100).collect();
    let (ha, hb) = (hist(&a), hist(&b));
    let mut fleet = FleetIntervals::default();
    for (t, h) in [(0.5, &ha), (0.7, &hb)] {
        let wire = IntervalHistogram::encode(h).unwrap();
        let got = IntervalHistogram::decode(wire.as_str()).unwrap();
        assert!(fleet.add(t, got.histogram()));
    }
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    let exact = exact_quantile(&mut all, 0.99);
    let merged = fleet.run().value_at_quantile(0.99);
    assert!(fleet.run().equivalent(merged, exact), "{merged} vs {exact}");
    let mean = (ha.value_at_quantile(0.99) + hb.value_at_quantile(0.99)) / 2;
    assert!(
        !fleet.run().equivalent(merged, mean),
        "{merged} vs mean {mean}"
    );
    assert_eq!(fleet.run().len(), 20_000);
    let points = fleet.points();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].writes, 20_000);
    assert_eq!(points[0].p99_ms, merged as f64 / 1000.0);
}

#[test]
fn the_fleet_series_stays_bounded_and_merges_exactly_when_coarsened() {
    let mut fleet = FleetIntervals::default();
    let h = hist(&[1000, 2000]);
    for s in 0..1000u64 {
        assert!(fleet.add(s as f64 + 0.5, &h));
    }
    let points = fleet.points();
    assert!(points.len() <= MAX_LATENCY_POINTS, "{}", points.len());
    assert_eq!(points.iter().map(|p| p.writes).sum::<u64>(), 2000);
    assert_eq!(fleet.run().len(), 2000);
    assert!(!fleet.add(-1.0, &h));
    assert!(!fleet.add(f64::NAN, &h));
    assert!(!fleet.add(1e12, &h));
}

#[test]
fn a_client_series_stays_bounded() {
    let mut c = ClientLatency::default();
    let h = hist(&[500]);
    for s in 0..10_000u32 {
        assert!(c.add(f64::from(s), 1.0, &h));
    }
    assert!(c.points().len() <= MAX_LATENCY_POINTS);
    assert!(c.points().len() >= MAX_LATENCY_POINTS / 2);
    assert_eq!(c.summary().unwrap().writes, 10_000);
    assert!(c.points().windows(2).all(|w| w[0].t_s < w[1].t_s));
}

#[test]
fn the_interval_log_parses_back_with_the_crate_reader() {
    let mut fleet = FleetIntervals::default();
    fleet.add(0.5, &hist(&[100, 200, 300]));
    fleet.add(2.5, &hist(&[5_000, 70_000]));
    let log = interval_log(&fleet.intervals(), 1_764_064_800.0);
    assert!(log.contains("#[StartTime: 1764064800.000 (seconds since epoch)]"));
    assert!(log.contains("#[BaseTime: 1764064800.000 (seconds since epoch)]"));
    assert!(log.contains(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    ));
    let mut hists = Vec::new();
    let mut times = Vec::new();
    for entry in IntervalLogIterator::new(log.as_bytes()) {
        match entry.expect("parses") {
            LogEntry::Interval(i) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .unwrap();
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                times.push((
                    i.start_timestamp().as_secs_f64(),
                    i.duration().as_secs_f64(),
                ));
                hists.push(h);
            }
            LogEntry::StartTime(t) | LogEntry::BaseTime(t) => {
                assert_eq!(t.as_secs(), 1_764_064_800);
            }
        }
    }
    assert_eq!(times, [(0.0, 1.0), (2.0, 1.0)]);
    assert_eq!(hists[0], hist(&[100, 200, 300]));
    assert_eq!(hists[1].len(), 2);
}

#[test]
fn prometheus_buckets_are_cumulative() {
    let h = hist(&[50, 900, 3_000, 40_000, 20_000_000]);
    let PrometheusHistogram {
        buckets,
        sum_s,
        count,
    } = prometheus_buckets(&h);
    assert_eq!(count, 5);
    let at = |le: f64| buckets.iter().find(|b| b.0 == le).unwrap().1;
    assert_eq!(at(0.0001), 1);
    assert_eq!(at(0.001), 2);
    assert_eq!(at(0.005), 3);
    assert_eq!(at(0.05), 4);
    assert_eq!(at(10.0), 4);
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!((sum_s - 20.04395).abs() < 0.03, "{sum_s}");
}
