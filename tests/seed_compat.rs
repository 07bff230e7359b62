//! Byte-for-byte compatibility with the seed protocol, both ways.

mod common;

use common::{Raw, TestServer, WAIT};
use loadmon::client::{Client, ClientConfig};
use loadmon::server::ServerConfig;
use loadmon::workload::{Context, Workload};
use loadmon::Status;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_seed_client_sending_exactly_the_seed_lines_passes() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    // Exactly what the original FileWriterClient sends.
    assert_eq!(c.seed_handshake().await, 100);
    c.send("file_stats:10:50").await;
    c.send("start").await;
    c.send("hb").await;
    c.send("send_stats:12.3:0.1").await;
    c.send("send_stats:13.7:0.3").await;
    c.send("file_roll").await;
    c.send("hb").await;
    c.send("file_roll").await;
    c.send("done").await;
    assert!(c.closed().await, "the server closes after done");

    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    let r = &report.clients[0];
    assert_eq!((r.id, r.status), (100, Status::Pass));
    assert_eq!(r.files_written, 2);
    assert_eq!((r.chunk_size_mb, r.file_size_mb), (10, 50));
    assert_eq!((r.heartbeats, r.stats_reports), (2, 2));
    assert!((r.cpu_avg_pct - 13.0).abs() < 1e-9, "{}", r.cpu_avg_pct);
    assert!((r.mem_avg_pct - 0.2).abs() < 1e-9, "{}", r.mem_avg_pct);
    // A seed client sends no write_stats: bytes are files × file size.
    assert_eq!(r.bytes_written, 2 * 50 * 1024 * 1024);
    assert!(r.protocol_version.is_none());
    assert!(r.reason.is_none());
    assert!(report.to_text().contains("    Test status:   PASS\n"));
}

#[tokio::test]
async fn ids_are_sequential_from_first_client_id() {
    let server = TestServer::start(ServerConfig {
        first_client_id: 7,
        ..Default::default()
    })
    .await;
    let mut a = Raw::connect(server.addr).await;
    assert_eq!(a.seed_handshake().await, 7);
    let mut b = Raw::connect(server.addr).await;
    assert_eq!(b.seed_handshake().await, 8);
    for c in [&mut a, &mut b] {
        c.send("start").await;
        c.send("done").await;
    }
    let report = server.report().await;
    assert_eq!(
        report
            .clients
            .iter()
            .map(|c| (c.id, c.status))
            .collect::<Vec<_>>(),
        vec![(7, Status::Pass), (8, Status::Pass)]
    );
}

struct OneFile;
impl Workload for OneFile {
    fn file_stats(&self) -> Option<(u64, u64)> {
        Some((10, 50))
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        ctx.record_write(50 << 20, std::time::Duration::from_millis(3))?;
        ctx.file_rollover()?;
        Ok(())
    }
}

/// A loadmon client against a server that behaves like the original: it answers get_cid and
/// ready and ignores every command it does not know (hello, proc_stats, write_stats).
#[tokio::test]
async fn a_loadmon_client_works_against_a_seed_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seed_server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let cmd = line.split(':').next().unwrap_or("").to_string();
            match cmd.as_str() {
                "get_cid" => w.write_all(b"set_cid:100\n").await.unwrap(),
                "ready" => w.write_all(b"run_tests\n").await.unwrap(),
                "done" => {
                    seen.push(line);
                    break;
                }
                _ => {}
            }
            seen.push(line);
        }
        seen
    });
    let client = Client::new(ClientConfig {
        port,
        ..Default::default()
    })
    .unwrap();
    let result = tokio::time::timeout(WAIT, client.run(OneFile))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.client_id, 100);
    assert_eq!(result.files_written, 1);
    let seen = seed_server.await.unwrap();
    let seed_lines: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("hello:") && !l.starts_with("write_stats:"))
        .filter(|l| !l.starts_with("proc_stats:") && *l != "hb")
        .collect();
    // The last stats sample, sent before done, is a seed send_stats line: exactly 3 fields.
    let stats = seed_lines[seed_lines.len() - 2];
    let fields: Vec<&str> = stats.split(':').collect();
    assert!(
        fields.len() == 3 && fields[0] == "send_stats",
        "{seed_lines:?}"
    );
    assert!(
        fields[1..].iter().all(|f| f.parse::<f64>().is_ok()),
        "{stats}"
    );
    assert_eq!(
        seed_lines,
        [
            "get_cid",
            "ready",
            "file_stats:10:50",
            "start",
            "file_roll",
            stats,
            "done"
        ]
    );
    assert_eq!(seen[0], "hello:1.0", "the version goes first: {seen:?}");
}

/// Every settings type serializes (the faces show the core's defaults from it): durations as
/// seconds, the token never in clear.
#[test]
fn settings_serialize_with_seconds_and_no_secret() {
    let mut server = loadmon::server::ServerConfig {
        token: Some("sesame".into()),
        ..Default::default()
    };
    server.fleet = Some(loadmon::server::FleetConfig::new(3, Default::default()));
    let v = serde_json::to_value(&server).unwrap();
    assert_eq!(v["port"], 1234);
    assert_eq!(v["token"], "<set>");
    assert!(v["heartbeat_timeout"].as_f64().unwrap() > 0.0);
    assert_eq!(v["fleet"]["expect_clients"], 3);
    let w = serde_json::to_value(loadmon::worker::WorkerConfig::default()).unwrap();
    assert_eq!(w["client"]["port"], 1234);
    assert_eq!(w["client"]["token"], serde_json::Value::Null);
    let f =
        serde_json::to_value(loadmon::workload::file_writer::FileWriterConfig::default()).unwrap();
    assert_eq!(f["keep_files"], "2");
    assert_eq!(f["sync"], "none");
    assert!(!v.to_string().contains("sesame"));
}
