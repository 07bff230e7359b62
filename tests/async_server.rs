//! The async [`Server`] honours its whole configuration, as the blocking handle does: the
//! report files are written after the run, and the HTTP listener serves during the run and
//! for `http_linger` after it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use loadmon::server::{Server, ServerConfig};
use loadmon::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{Raw, WAIT};

/// `GET path` on a connection of its own: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut answer))
        .await
        .expect("no answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_server_writes_its_reports_and_serves_http() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let csv = dir.path().join("report.csv");
    let server = Server::bind(ServerConfig {
        port: 0,
        report_json: Some(json.clone()),
        report_csv: Some(csv.clone()),
        http: Some("127.0.0.1:0".into()),
        http_linger: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let control = server.control();
    let http = control
        .http_addr()
        .expect("the HTTP listener is bound with the server");
    let run = tokio::spawn(server.run());

    // Served during the run.
    assert_eq!(get(http, "/api/server").await.0, 200);
    let mut raw = Raw::connect(control.local_addr()).await;
    raw.seed_handshake().await;
    raw.send("start").await;
    raw.send("done").await;
    raw.close().await;
    let report = tokio::time::timeout(WAIT, run)
        .await
        .expect("the server did not stop in time")
        .unwrap()
        .unwrap();
    assert_eq!(report.clients[0].status, Status::Pass);

    // The report files are written when the run returns.
    let written = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written.clients, report.clients);
    assert!(std::fs::read_to_string(&csv)
        .unwrap()
        .starts_with("id,status,"));

    // The listener lingers with the final report, until it is closed.
    let (status, body) = get(http, "/api/report").await;
    assert_eq!(status, 200);
    assert!(body.contains("PASS"), "{body}");
    assert!(!control.is_http_closed());
    control.close_http();
    tokio::time::timeout(WAIT, control.http_closed())
        .await
        .expect("the HTTP listener did not close in time");
    assert!(control.is_http_closed());
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
}

/// Without an HTTP listener, the run's end is the listener's end.
#[tokio::test]
async fn without_http_the_listener_is_closed_with_the_run() {
    let server = Server::bind(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let control = server.control();
    assert_eq!(control.http_addr(), None);
    control.stop();
    let report = tokio::time::timeout(WAIT, server.run())
        .await
        .unwrap()
        .unwrap();
    assert!(report.stopped);
    assert!(control.is_http_closed());
}
