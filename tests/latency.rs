//! Chunk write latencies merged exactly (issue 21): two clients of known latency
//! distributions give the fleet the p99 of all their writes together (not the mean of their
//! p99s); the latency log parses back with the hdrhistogram crate's reader; a bad `lat` line is
//! counted as invalid and nothing grows.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Raw, TestServer, WAIT};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use loadmon::client::{Client, ClientConfig};
use loadmon::latency::IntervalHistogram;
use loadmon::server::ServerConfig;
use loadmon::workload::{Context, Workload};

/// Records one write per latency given (µs), then returns.
struct Latencies(Vec<u64>);

impl Workload for Latencies {
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        for us in &self.0 {
            ctx.record_write(4096, Duration::from_micros(*us))?;
        }
        Ok(())
    }
}

/// Client A: 1 ms, with a 2 % tail at 50 ms. Client B: about 10 ms, no tail.
fn distributions() -> (Vec<u64>, Vec<u64>) {
    let a = (0..10_000)
        .map(|i| if i % 50 == 0 { 50_000 } else { 1_000 })
        .collect();
    let b = (0..10_000).map(|i| 10_000 + i % 100).collect();
    (a, b)
}

/// The exact nearest-rank quantile of `samples`.
fn exact_quantile(mut samples: Vec<u64>, q: f64) -> u64 {
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Whether two µs values are the same to 3 significant digits (one histogram bucket).
fn same_bucket(a: u64, b: u64) -> bool {
    let h = Histogram::<u64>::new(3).unwrap();
    h.equivalent(a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_p99_is_the_p99_of_the_merged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("latency.hlog");
    let server = TestServer::start(ServerConfig {
        latency_log: Some(log_path.clone()),
        ..Default::default()
    })
    .await;
    let (a, b) = distributions();
    let config = ClientConfig {
        port: server.addr.port(),
        ..Default::default()
    };
    let (ca, cb) = (
        Client::new(config.clone()).unwrap(),
        Client::new(config).unwrap(),
    );
    let (ra, rb) = tokio::join!(ca.run(Latencies(a.clone())), cb.run(Latencies(b.clone())));
    ra.unwrap();
    rb.unwrap();
    let report = server.report().await;

    let fleet = report.total.latency.expect("the fleet's latency");
    assert_eq!(fleet.writes, 20_000);
    let exact_us = exact_quantile(a.iter().chain(&b).copied().collect(), 0.99);
    let fleet_p99_us = (fleet.p99_ms * 1000.0).round() as u64;
    assert!(
        same_bucket(fleet_p99_us, exact_us),
        "{fleet_p99_us} vs {exact_us}"
    );
    let p99s: Vec<f64> = report
        .clients
        .iter()
        .map(|c| c.chunk_p99_ms.unwrap())
        .collect();
    let mean_us = (p99s.iter().sum::<f64>() / 2.0 * 1000.0).round() as u64;
    assert!(
        !same_bucket(fleet_p99_us, mean_us),
        "{fleet_p99_us} vs mean {mean_us}"
    );
    for c in &report.clients {
        assert_eq!(c.chunk_writes, Some(10_000));
        assert!(c.chunk_p90_ms.is_some() && c.chunk_p999_ms.is_some() && c.chunk_max_ms.is_some());
    }
    assert!(same_bucket((fleet.max_ms * 1000.0).round() as u64, 50_000));
    assert!(!report.total.latency_series.is_empty());
    assert_eq!(report.latency_series.len(), 2);
    assert!(report
        .to_text()
        .contains("Chunk write latency, all clients (20000 writes)"));
    let json = loadmon::Report::from_json(&report.to_json()).unwrap();
    assert_eq!(json.total.latency, report.total.latency);

    // The latency log: every merged interval, read back by the crate's own reader.
    let text = std::fs::read_to_string(&log_path).unwrap();
    let mut writes = 0;
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        if let LogEntry::Interval(i) = entry.expect("the log parses") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(i.encoded_histogram())
                .unwrap();
            let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
            writes += h.len();
        }
    }
    assert_eq!(writes, 20_000);
}

/// A loadmon peer's handshake (`hello`, `get_cid`, `ready`) and `start`.
async fn started_peer(server: &TestServer) -> Raw {
    let mut raw = Raw::connect(server.addr).await;
    raw.send("hello:1.0").await;
    assert_eq!(raw.recv().await.as_deref(), Some("hello:1.0"));
    raw.seed_handshake().await;
    raw.send("start").await;
    raw
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn bad_lat_lines_count_as_invalid_and_grow_nothing() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut raw = started_peer(&server).await;
    let mut h = Histogram::<u64>::new(3).unwrap();
    h.record(1_500).unwrap();
    let good = IntervalHistogram::encode(&h).unwrap();
    let g = good.as_str();
    let bad = [
        format!("lat:1:2:{}", "A".repeat(3_001)),
        format!("lat:1:2:{}", &g[..g.len() / 2]),
        "lat:1:2:not base64 at all".to_string(),
        "lat:1:2:SGVsbG8gd29ybGQ".to_string(),
        format!("lat:5:2:{g}"),
        "lat:1:2".to_string(),
    ];
    for _ in 0..50 {
        for line in &bad {
            raw.send(line).await;
        }
    }
    let t = now_ms();
    raw.send(&format!("lat:{}:{t}:{g}", t - 1000)).await;
    raw.send("done").await;
    assert!(raw.closed().await);
    let counts = server.control.message_counts();
    let count = |k: &str| counts.iter().find(|c| c.0 == k).unwrap().1;
    assert_eq!(count("invalid"), 300);
    assert_eq!(count("lat"), 1);
    let report = tokio::time::timeout(WAIT, server.report()).await.unwrap();
    assert_eq!(report.clients[0].chunk_writes, Some(1));
    assert_eq!(report.total.latency.unwrap().writes, 1);
    let points: usize = report.latency_series.iter().map(|s| s.points.len()).sum();
    assert_eq!(points, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_merged_histogram_and_pass_promtool() {
    let server = TestServer::start(ServerConfig {
        http: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .await;
    let mut peers = Vec::new();
    for values in [[200u64, 3_000, 40_000], [700, 800, 2_000_000]] {
        let mut raw = started_peer(&server).await;
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        let t = now_ms();
        let blob = IntervalHistogram::encode(&h).unwrap();
        raw.send(&format!("lat:{}:{t}:{}", t - 1000, blob.as_str()))
            .await;
        peers.push(raw);
    }
    let http = server.control.http_addr().expect("HTTP address");
    let metrics = tokio::task::spawn_blocking(move || loop {
        let body = ureq::get(&format!("http://{http}/metrics"))
            .call()
            .expect("HTTP")
            .body_mut()
            .read_to_string()
            .unwrap();
        if body.contains("loadmon_chunk_write_seconds_count 6\n") {
            return body;
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    let metrics = tokio::time::timeout(WAIT, metrics).await.unwrap().unwrap();
    for line in [
        "# TYPE loadmon_chunk_write_seconds histogram\n",
        "loadmon_chunk_write_seconds_bucket{le=\"0.00025\"} 1\n",
        "loadmon_chunk_write_seconds_bucket{le=\"0.001\"} 3\n",
        "loadmon_chunk_write_seconds_bucket{le=\"0.005\"} 4\n",
        "loadmon_chunk_write_seconds_bucket{le=\"0.05\"} 5\n",
        "loadmon_chunk_write_seconds_bucket{le=\"2.5\"} 6\n",
        "loadmon_chunk_write_seconds_bucket{le=\"+Inf\"} 6\n",
    ] {
        assert!(metrics.contains(line), "{line}{metrics}");
    }
    common::promtool_accepts(&metrics);
    for mut raw in peers {
        raw.send("done").await;
        assert!(raw.closed().await);
    }
    server.report().await;
}

/// A scripted server for one client: answers `hello` when `loadmon`, gives id 100 and
/// `run_tests`; returns every line the client sent, `done` included.
async fn scripted_server(listener: tokio::net::TcpListener, loadmon: bool) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (stream, _) = listener.accept().await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let reply = match line.as_str() {
            "hello:1.0" if loadmon => Some("hello:1.0"),
            "get_cid" => Some("set_cid:100"),
            "ready" => Some("run_tests"),
            _ => None,
        };
        if let Some(r) = reply {
            w.write_all(format!("{r}\n").as_bytes()).await.unwrap();
        }
        let done = line == "done";
        got.push(line);
        if done {
            break;
        }
    }
    got
}

/// The client's lines to a scripted server, with the workload's `latencies`, on a paused
/// clock (the per-second ticker fires as the virtual clock runs; what is sent does not depend
/// on how many ticks fire).
async fn client_lines(loadmon: bool, latencies: Vec<u64>) -> Vec<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(scripted_server(listener, loadmon));
    let client = Client::new(ClientConfig {
        port,
        ..Default::default()
    })
    .unwrap();
    client.run(Latencies(latencies)).await.unwrap();
    server.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_client_sends_its_intervals_to_a_loadmon_server_only() {
    let lines = client_lines(true, vec![100, 2_000, 30_000]).await;
    let lat: Vec<&String> = lines.iter().filter(|l| l.starts_with("lat:")).collect();
    assert!(!lat.is_empty(), "{lines:?}");
    let done = lines.iter().position(|l| l == "done").unwrap();
    let mut writes = 0;
    for line in &lat {
        assert!(lines.iter().position(|l| l == *line).unwrap() < done);
        let Ok(loadmon::protocol::Message::Lat(l)) = loadmon::protocol::Message::parse(line) else {
            panic!("{line}")
        };
        assert!(l.t0_ms <= l.t1_ms);
        assert!(
            !l.hist.histogram().is_empty(),
            "an interval without writes is not sent"
        );
        writes += l.hist.histogram().len();
    }
    assert_eq!(writes, 3);
    // A seed server (no answer to hello) never sees a lat line.
    let seed = client_lines(false, vec![100, 2_000, 30_000]).await;
    assert!(seed.iter().any(|l| l == "done"));
    assert!(!seed.iter().any(|l| l.starts_with("lat:")), "{seed:?}");
}
