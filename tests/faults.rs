//! Broken, slow and hostile peers: each test asserts the final report.

mod common;

use std::time::Duration;

use common::{Raw, TestServer};
use loadmon::client::{Client, ClientConfig};
use loadmon::server::ServerConfig;
use loadmon::workload::{Context, Workload};
use loadmon::{Error, Status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

async fn pass(c: &mut Raw) {
    c.send("start").await;
    c.send("done").await;
    assert!(c.closed().await);
}

#[tokio::test]
async fn an_extra_client_is_refused_and_the_others_pass() {
    let server = TestServer::start(ServerConfig {
        max_clients: 2,
        ..Default::default()
    })
    .await;
    let mut a = Raw::connect(server.addr).await;
    a.seed_handshake().await;
    let mut b = Raw::connect(server.addr).await;
    b.seed_handshake().await;
    let mut extra = Raw::connect(server.addr).await;
    extra.send("get_cid").await;
    assert_eq!(
        extra.recv().await.as_deref(),
        Some("refused:server full: 2 clients max")
    );
    assert!(extra.closed().await);
    pass(&mut a).await;
    pass(&mut b).await;
    let report = server.report().await;
    assert_eq!(report.clients.len(), 2);
    assert!(report.clients.iter().all(|c| c.status == Status::Pass));
}

#[tokio::test]
async fn a_client_that_closes_early_is_aborted() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("file_stats:10:20").await;
    c.send("start").await;
    c.send("file_roll").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.close().await;
    let report = server.report().await;
    let r = &report.clients[0];
    assert_eq!(r.status, Status::Aborted);
    assert_eq!(r.reason.as_deref(), Some("connection closed before done"));
    assert_eq!(
        r.files_written, 1,
        "what it wrote so far stays in the report"
    );
    assert!(
        r.time_ran_s >= 0.05 && r.time_ran_s < 10.0,
        "{}",
        r.time_ran_s
    );
}

#[tokio::test]
async fn a_client_that_never_started_ran_for_zero_seconds() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.close().await;
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Aborted);
    assert_eq!(report.clients[0].time_ran_s, 0.0);
    assert!(report.to_text().contains("    Time ran:      0.00 sec\n"));
}

#[tokio::test]
async fn a_silent_client_times_out_and_is_closed() {
    let server = TestServer::start(ServerConfig {
        heartbeat_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut silent = Raw::connect(server.addr).await;
    silent.seed_handshake().await;
    silent.send("start").await;
    let t = std::time::Instant::now();
    assert!(silent.closed().await, "the server closes a silent client");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let report = server.report().await;
    let r = &report.clients[0];
    assert_eq!(r.status, Status::TimedOut);
    assert_eq!(r.reason.as_deref(), Some("no heartbeat for 0.3 s"));
    assert!(report.to_text().contains("TIMED OUT"));
}

#[tokio::test]
async fn heartbeats_keep_a_client_alive_past_the_timeout() {
    let server = TestServer::start(ServerConfig {
        heartbeat_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.send("hb").await;
    }
    pass(&mut c).await;
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);
    assert_eq!(report.clients[0].heartbeats, 8);
}

#[tokio::test]
async fn unknown_commands_and_garbage_are_ignored() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    c.send("frobnicate:1:2").await;
    c.send("").await;
    c.send(":::").await;
    c.send("set_cid:5").await; // a server-only command from a client
    c.send("hb").await;
    pass(&mut c).await;
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);
    assert_eq!(report.clients[0].heartbeats, 1);
}

#[tokio::test]
async fn bad_stats_are_rejected_and_averages_unaffected() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    c.send("send_stats:10:1").await;
    for bad in [
        "send_stats:abc:1",
        "send_stats:1",
        "send_stats:1:2:3",
        "send_stats:nan:1",
        "send_stats:inf:1",
        "send_stats:-5:1",
        "send_stats:5:250",
        "file_stats:10",
        "file_stats:x:y",
        "proc_stats:200:5",
        "write_stats:1:2",
    ] {
        c.send(bad).await;
    }
    c.send("send_stats:20:3").await;
    pass(&mut c).await;
    let report = server.report().await;
    let r = &report.clients[0];
    assert_eq!(r.stats_reports, 2);
    assert_eq!((r.cpu_avg_pct, r.mem_avg_pct), (15.0, 2.0));
    assert_eq!((r.chunk_size_mb, r.file_size_mb), (0, 0));
    assert_eq!(r.rss_peak_bytes, None);
}

#[tokio::test]
async fn an_over_long_line_aborts_only_that_client() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut good = Raw::connect(server.addr).await;
    good.seed_handshake().await;
    good.send("start").await;

    let mut bad = Raw::connect(server.addr).await;
    bad.seed_handshake().await;
    bad.send("start").await;
    // A line without a newline: the server must cut it off at its 4 KiB bound.
    let blob = vec![b'x'; 8192];
    bad.send_bytes(&blob[..8192]).await;
    assert!(bad.closed().await);

    good.send("hb").await;
    pass(&mut good).await;
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);
    let r = &report.clients[1];
    assert_eq!(r.status, Status::Aborted);
    assert_eq!(
        r.reason.as_deref(),
        Some("protocol error: line longer than 4096 bytes")
    );
}

#[tokio::test]
async fn invalid_utf8_aborts_that_client() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    c.send_bytes(b"hb\xff\xfe\n").await;
    assert!(c.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Aborted);
    assert_eq!(
        report.clients[0].reason.as_deref(),
        Some("protocol error: line is not valid UTF-8")
    );
}

#[tokio::test]
async fn a_reported_error_fails_the_client_with_its_reason() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    c.send("error:write /data/x: No space left on device (os error 28)")
        .await;
    assert!(c.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Failed);
    assert_eq!(
        report.clients[0].reason.as_deref(),
        Some("write /data/x: No space left on device (os error 28)")
    );
}

#[tokio::test]
async fn stopping_the_server_aborts_running_clients_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let server = TestServer::start(ServerConfig {
        report_json: Some(json.clone()),
        ..Default::default()
    })
    .await;
    let mut done = Raw::connect(server.addr).await;
    done.seed_handshake().await;
    let mut running = Raw::connect(server.addr).await;
    running.seed_handshake().await;
    running.send("start").await;
    done.send("start").await;
    done.send("done").await;
    assert!(done.closed().await);
    let report = server.stop().await;
    assert!(running.closed().await);
    assert_eq!(report.clients[0].status, Status::Pass);
    assert_eq!(report.clients[1].status, Status::Aborted);
    assert_eq!(report.clients[1].reason.as_deref(), Some("server stopped"));
    let on_disk = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(on_disk, report);
}

#[tokio::test]
async fn a_connection_that_never_asks_for_an_id_is_closed() {
    let server = TestServer::start(ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        max_clients: 1,
        ..Default::default()
    })
    .await;
    let mut slow = Raw::connect(server.addr).await;
    assert!(slow.closed().await, "closed after the handshake timeout");
    // The slot is free again: a real client gets in.
    let mut c = Raw::connect(server.addr).await;
    assert_eq!(c.seed_handshake().await, 100);
    pass(&mut c).await;
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Pass);
}

#[tokio::test]
async fn a_major_version_mismatch_is_refused_with_both_versions() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.send("hello:2.3").await;
    c.send("get_cid").await;
    assert_eq!(
        c.recv().await.as_deref(),
        Some("refused:protocol version mismatch: server speaks 1.0, client speaks 2.3")
    );
    assert!(c.closed().await);
    let mut ok = Raw::connect(server.addr).await;
    ok.send("hello:1.9").await;
    assert_eq!(ok.recv().await.as_deref(), Some("hello:1.0"));
    ok.seed_handshake().await;
    pass(&mut ok).await;
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].protocol_version.as_deref(), Some("1.9"));
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let server = TestServer::start(ServerConfig {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let mut none = Raw::connect(server.addr).await;
    none.send("get_cid").await;
    assert!(none
        .recv()
        .await
        .unwrap()
        .starts_with("refused:a token is required"));
    // The token in clear (an older loadmon) is not taken, right or wrong: never compared.
    let mut clear = Raw::connect(server.addr).await;
    clear.send("token:s3cre").await;
    clear.send("get_cid").await;
    let refused = clear.recv().await.unwrap_or_default();
    assert!(
        refused.starts_with("refused:the token in clear")
            && refused.contains("--allow-clear-token"),
        "{refused}"
    );
    let client = Client::new(ClientConfig {
        port: server.addr.port(),
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .unwrap();
    let r = client.run(Noop).await.unwrap();
    assert_eq!(r.client_id, 100);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Pass);
}

struct Noop;
impl Workload for Noop {
    fn run(&mut self, _: &Context) -> loadmon::Result<()> {
        Ok(())
    }
}

struct Fails;
impl Workload for Fails {
    fn run(&mut self, _: &Context) -> loadmon::Result<()> {
        Err(Error::Workload("disk on fire".into()))
    }
}

struct Panics;
impl Workload for Panics {
    fn run(&mut self, _: &Context) -> loadmon::Result<()> {
        panic!("bug in the workload")
    }
}

#[tokio::test]
async fn a_failing_or_panicking_workload_is_failed_with_its_reason() {
    let server = TestServer::start(ServerConfig::default()).await;
    let cfg = |port| ClientConfig {
        port,
        ..Default::default()
    };
    let e = Client::new(cfg(server.addr.port()))
        .unwrap()
        .run(Fails)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "workload failed: disk on fire");
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Failed);
    assert_eq!(
        report.clients[0].reason.as_deref(),
        Some("workload failed: disk on fire")
    );

    let server = TestServer::start(ServerConfig::default()).await;
    let e = Client::new(cfg(server.addr.port()))
        .unwrap()
        .run(Panics)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("bug in the workload"), "{e}");
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Failed);
    assert!(report.clients[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("bug in the workload"));
}

/// A fake server that answers the handshake with `reply` lines.
async fn fake_server(reply: &'static [&'static str]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let _ = lines.next_line().await;
        for l in reply {
            let _ = w.write_all(format!("{l}\n").as_bytes()).await;
        }
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    port
}

#[tokio::test]
async fn the_client_refuses_a_non_numeric_id() {
    let port = fake_server(&["set_cid:../../etc", "run_tests"]).await;
    let client = Client::new(ClientConfig {
        port,
        ..Default::default()
    })
    .unwrap();
    let e = client.run(Noop).await.unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("set_cid"), "{e}");
}

#[tokio::test]
async fn the_client_fails_loudly_on_a_major_version_mismatch() {
    let port = fake_server(&["hello:2.0", "set_cid:100", "run_tests"]).await;
    let e = Client::new(ClientConfig {
        port,
        ..Default::default()
    })
    .unwrap()
    .run(Noop)
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "protocol version mismatch: we speak 1.0, the peer speaks 2.0"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_after_retrying() {
    // Bind then drop, so the port is (almost certainly) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = std::time::Instant::now();
    let e = Client::new(ClientConfig {
        port,
        connect_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .unwrap()
    .run(Noop)
    .await
    .unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("connect 127.0.0.1:{port} (retried for 0.4 s)")),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_times_two_hundred_messages_lose_nothing() {
    const CLIENTS: usize = 50;
    const K: u64 = 200;
    let server = TestServer::start(ServerConfig {
        max_clients: CLIENTS,
        ..Default::default()
    })
    .await;
    let addr = server.addr;
    // Connect everyone first, so the server does not stop between two clients.
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = Raw::connect(addr).await;
        c.seed_handshake().await;
        conns.push(c);
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                c.send("start").await;
                for k in 0..K {
                    c.send("hb").await;
                    c.send(&format!("send_stats:{}:{}", i % 7, k % 3)).await;
                    if k % 20 == 0 {
                        c.send("file_roll").await;
                    }
                }
                c.send("done").await;
                assert!(c.closed().await);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let report = server.report().await;
    assert_eq!(report.clients.len(), CLIENTS);
    for (i, c) in report.clients.iter().enumerate() {
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert_eq!(c.heartbeats, K, "client {}", c.id);
        assert_eq!(c.stats_reports, K, "client {}", c.id);
        assert_eq!(c.files_written, K / 20, "client {}", c.id);
        // The ids are given in connection order, so client i sent cpu = i % 7.
        assert_eq!(c.cpu_avg_pct, (i % 7) as f64, "client {}", c.id);
        let mem_avg = (0..K).map(|k| (k % 3) as f64).sum::<f64>() / K as f64;
        assert!((c.mem_avg_pct - mem_avg).abs() < 1e-9, "client {}", c.id);
    }
}
