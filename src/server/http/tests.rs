//! The limits run on a paused clock (`start_paused`): tokio moves time forward only when
//! every task waits, so "closed after 10 s" is checked without waiting 10 s. The sockets
//! are real (127.0.0.1, port 0); loopback delivers a write before `write` returns.
//!
//! These drive the listener and the routes together on sockets; the pure checks sit beside
//! their code.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bodies::LIVE_TTL;
use super::listener::{connection, serve_app, SHUTDOWN_GRACE};
use super::routes::{router, App};
use crate::logging::EventLog;
use crate::server::{HttpLimits, Server, ServerConfig};

/// Bound on every wait (paused time: costs nothing unless something is broken).
const WAIT: Duration = Duration::from_secs(600);

fn limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        max_connections: 4,
        write_timeout: Duration::from_secs(5),
    }
}

/// A bound server (not running: its control answers) behind an App.
async fn app(token: Option<&str>) -> (Server, App) {
    let server = Server::bind(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        ..ServerConfig::default()
    })
    .await
    .expect("bind");
    let app = App {
        control: server.control(),
        token: token.map(Arc::from),
        hosts: Arc::default(),
        bodies: Arc::default(),
    };
    (server, app)
}

struct Listening {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn listen(app: App, limits: HttpLimits) -> Listening {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let log = Arc::new(EventLog::open("server", None).expect("log"));
    let task = tokio::spawn(serve_app(listener, router(app), stop.clone(), log, limits));
    Listening { addr, stop, task }
}

/// Sends a keep-alive GET and reads the answer: (status, body); `None` if the connection
/// closed or broke first.
async fn get(s: &mut TcpStream, path: &str, headers: &str) -> Option<(u16, Vec<u8>)> {
    let req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    read_response(s).await
}

async fn read_response(s: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    let mut body = buf.split_off(head_end);
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((status, body))
}

/// Reads until the server closes the connection (bounded by [`WAIT`]); true if it did.
async fn closed(s: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    // End of stream or a reset: closed either way.
    tokio::time::timeout(WAIT, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(start_paused = true)]
async fn partial_headers_are_closed_after_the_header_timeout() {
    let (_server, app) = app(None).await;
    let l = listen(app, limits()).await;
    // Slowloris: a request line and one header, never the blank line.
    let mut slow = TcpStream::connect(l.addr).await.expect("connect");
    let t = Instant::now();
    slow.write_all(b"GET /api/server HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    // And a connection that sends nothing at all.
    let mut silent = TcpStream::connect(l.addr).await.expect("connect");
    assert!(closed(&mut slow).await, "partial headers kept open");
    assert!(closed(&mut silent).await, "silent connection kept open");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "{took:?}: the header timeout is 10 s (idle 30 s)"
    );
    // Meanwhile the listener serves others.
    let mut ok = TcpStream::connect(l.addr).await.expect("connect");
    assert_eq!(
        get(&mut ok, "/api/server", "").await.map(|r| r.0),
        Some(200)
    );
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (_server, app) = app(None).await;
    let l = listen(app, limits()).await;
    let mut s = TcpStream::connect(l.addr).await.expect("connect");
    assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
    // Idle, but less than the idle timeout (and longer than the header timeout: an idle
    // pause is not a slow request): still served.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
    let t = Instant::now();
    assert!(closed(&mut s).await, "idle connection kept open");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(40),
        "{took:?}: the idle timeout is 30 s"
    );
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let (_server, app) = app(None).await;
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        max_connections: 3,
        ..limits()
    };
    let l = listen(app, limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
        held.push(s);
    }
    let t = Instant::now();
    for _ in 0..5 {
        let mut extra = TcpStream::connect(l.addr).await.expect("connect");
        let mut got = Vec::new();
        let r = tokio::time::timeout(WAIT, extra.read_to_end(&mut got)).await;
        assert!(r.is_ok(), "a connection over the cap was kept open");
        // Either the 503 made it before the close, or nothing did.
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 503 "),
            "{got:?}"
        );
    }
    // At once: no timer ran (the clock is paused and only moves when every task waits
    // on one).
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The held ones still work.
    for s in &mut held {
        assert_eq!(get(s, "/api/server", "").await.map(|r| r.0), Some(200));
    }
    // Once they close, new connections are served again.
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        if get(&mut s, "/api/server", "").await.map(|r| r.0) == Some(200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "no connection served after the held ones closed");
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn an_unread_response_is_dropped_after_the_write_timeout() {
    let (_server, app) = app(None).await;
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        ..limits()
    };
    // A pipe of 64 bytes: the response cannot fit, and the peer never reads it.
    let (mut peer, ours) = tokio::io::duplex(64);
    let log = Arc::new(EventLog::open("server", None).expect("log"));
    let t = Instant::now();
    let conn = tokio::spawn(connection(
        ours,
        router(app),
        limits,
        CancellationToken::new(),
        log,
    ));
    peer.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    tokio::time::timeout(WAIT, conn)
        .await
        .expect("connection not closed")
        .expect("task");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(60),
        "{took:?}: the write timeout is 5 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_reading_peer_is_served_past_the_write_timeout() {
    let (_server, app) = app(None).await;
    let (mut peer, ours) = tokio::io::duplex(64);
    let log = Arc::new(EventLog::open("server", None).expect("log"));
    let conn = tokio::spawn(connection(
        ours,
        router(app),
        limits(),
        CancellationToken::new(),
        log,
    ));
    peer.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    // 64 bytes every 2 s: the whole answer takes far longer than the 5 s write timeout.
    let t = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match tokio::time::timeout(WAIT, peer.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            other => panic!("read: {other:?}"),
        }
    }
    assert!(t.elapsed() > Duration::from_secs(10), "{:?}", t.elapsed());
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("\"clients\""), "{text}");
    tokio::time::timeout(WAIT, conn)
        .await
        .expect("ends")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn concurrent_report_fetches_share_one_body() {
    let (server, app) = app(None).await;
    let control = server.control();
    server.run_until(async {}).await.expect("run");
    assert!(control.is_finished());
    let limits = HttpLimits {
        max_connections: 16,
        ..limits()
    };
    let l = listen(app.clone(), limits).await;
    // Many slow readers at once: some never read, some do.
    let mut unread = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        s.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        unread.push(s);
    }
    let fetches: Vec<_> = (0..4)
        .map(|_| {
            let addr = l.addr;
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.ok()?;
                let mut bodies = Vec::new();
                for _ in 0..5 {
                    bodies.push(get(&mut s, "/api/report", "").await?);
                }
                Some(bodies)
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for f in fetches {
        let got = f.await.expect("task").expect("answers");
        bodies.extend(got);
    }
    assert_eq!(bodies.len(), 20);
    let expected = serde_json::to_vec(&control.report()).expect("json");
    assert!(bodies
        .iter()
        .all(|(code, b)| *code == 200 && *b == expected));
    // Long after (the final report never changes): still the same one body.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let a = app.report_body().await.expect("body");
    let b = app.report_body().await.expect("body");
    assert_eq!(a.as_ptr(), b.as_ptr(), "one allocation shared");
    assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 1);
    drop(unread);
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn live_bodies_are_shared_briefly_then_rebuilt() {
    let (_server, app) = app(None).await;
    for _ in 0..10 {
        app.report_body().await.expect("body");
    }
    assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 1);
    tokio::time::advance(LIVE_TTL).await;
    app.report_body().await.expect("body");
    assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn stopping_closes_idle_connections_and_the_listener() {
    let (_server, app) = app(None).await;
    let l = listen(app, limits()).await;
    let mut s = TcpStream::connect(l.addr).await.expect("connect");
    assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
    let t = Instant::now();
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
    assert!(closed(&mut s).await);
    // Within the shutdown grace, not after the idle timeout.
    assert!(t.elapsed() <= SHUTDOWN_GRACE, "{:?}", t.elapsed());
    assert!(TcpStream::connect(l.addr).await.is_err(), "still listening");
}

#[tokio::test(start_paused = true)]
async fn lower_case_bearer_is_accepted_and_a_wrong_token_refused() {
    let (_server, app) = app(Some("s3cret")).await;
    let l = listen(app, limits()).await;
    let mut s = TcpStream::connect(l.addr).await.expect("connect");
    for (headers, code) in [
        ("", 401),
        ("authorization: bearer s3cret\r\n", 200),
        ("authorization: Bearer s3cret\r\n", 200),
        ("authorization: bearer wrong\r\n", 401),
        ("x-loadmon-token: s3cret\r\n", 200),
    ] {
        let got = get(&mut s, "/api/report", headers).await.map(|r| r.0);
        assert_eq!(got, Some(code), "{headers:?}");
    }
    l.stop.cancel();
    tokio::time::timeout(WAIT, l.task)
        .await
        .expect("stops")
        .expect("task");
}
