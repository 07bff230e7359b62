//! Fleet mode against hostile or broken peers: a worker facing a server that sends odd plans,
//! floods it or never answers, and a fleet server facing odd clients. On 127.0.0.1 with
//! ephemeral ports and temporary directories; every wait is bounded.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use loadmon::client::ClientConfig;
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};

/// Bound on every wait (a machine under load is slow, a broken build must still fail).
const LIMIT: Duration = Duration::from_secs(60);

fn worker_config(port: u16, out_dir: &Path) -> WorkerConfig {
    WorkerConfig {
        client: ClientConfig {
            port,
            heartbeat_period: Duration::from_millis(200),
            stats_period: Duration::from_millis(200),
            connect_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(2),
            ..Default::default()
        },
        out_dir: out_dir.to_path_buf(),
        ..Default::default()
    }
}

/// A listener whose accept queue is full (backlog 0, one connection queued and never
/// accepted): the kernel drops further SYNs, as a host that is down or firewalled does.
async fn black_hole() -> (TcpListener, tokio::net::TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let filler = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    (listener, filler)
}

#[tokio::test]
async fn a_server_whose_syns_are_dropped_is_given_up_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, _filler) = black_hole().await;
    let port = listener.local_addr().unwrap().port();
    let worker = Worker::new(worker_config(port, dir.path())).unwrap();
    let t = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(20), worker.run_once())
        .await
        .expect("connect_timeout 0.5 s bounds the attempt, not the kernel's 2 minutes")
        .unwrap_err();
    assert!(matches!(e, Error::Net { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("connect 127.0.0.1:{port} (retried for 0.5 s)")),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// A fake fleet server for one connection: answers `hello` with `hello:1.0:plan` and
/// `greeting`, `get_cid` with `set_cid:100`, `ready` with `after_ready`, then keeps reading
/// until the peer closes; returns every line it got.
async fn scripted_server(
    greeting: String,
    after_ready: Vec<u8>,
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
            let reply: Vec<u8> = match line.split(':').next().unwrap_or("") {
                "hello" => format!("hello:1.0:plan\n{greeting}").into_bytes(),
                "get_cid" => b"set_cid:100\n".to_vec(),
                "ready" => after_ready.clone(),
                _ => Vec::new(),
            };
            seen.push(line);
            if !reply.is_empty() && w.write_all(&reply).await.is_err() {
                break;
            }
            if seen.last().map(String::as_str) == Some("ready") {
                // Said its piece: close, so that the worker's wait ends.
                let _ = w.shutdown().await;
            }
        }
        seen
    });
    (port, task)
}

const PLAN: &str =
    "plan:run=1:runtime=0.5:chunksize=1:filesize=2:min_chunksize=1:sync=none:keep_files=2\n";

#[tokio::test]
async fn a_server_flooding_junk_lines_does_not_flood_the_workers_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // 20,000 lines the worker ignores, while it waits for the fleet's start.
    let flood = "hb\n".repeat(20_000).into_bytes();
    let (port, seen) = scripted_server(PLAN.to_string(), flood).await;
    let mut config = worker_config(port, &dir.path().join("out"));
    config.client.log_dir = Some(logs.clone());
    let worker = Worker::new(config).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected(_)), "{e:?}");
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(seen.iter().any(|l| l == "ready"), "{seen:?}");
    let mut log = String::new();
    for f in std::fs::read_dir(&logs).unwrap() {
        log.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    let ignored = log.lines().filter(|l| l.contains("ignored")).count();
    assert!(
        ignored <= 100,
        "{ignored} log lines about ignored lines: a server can fill the worker's disk"
    );
    assert!(
        log.contains("more lines from the server ignored"),
        "the suppressed lines are counted: {log}"
    );
}
