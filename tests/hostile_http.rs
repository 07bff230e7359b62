//! Hostile HTTP peers against a real server (127.0.0.1, port 0) with the default HTTP limits:
//! a connection cap of 128, a 10 s header timeout, a 30 s idle timeout. The limits' timing is
//! checked on a paused clock by the unit tests in `src/http/`; here, real sockets and real
//! time, with every wait bounded and no assertion on speed.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Raw, WAIT};
use loadmon::blocking::ServerHandle;
use loadmon::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `HttpLimits::default().max_connections` (the README documents it).
const CAP: usize = 128;

/// A server with its HTTP listener, as `ServerHandle` (which the CLI, C and Python use)
/// starts them.
struct HttpServer {
    handle: std::sync::Arc<ServerHandle>,
    addr: SocketAddr,
}

impl HttpServer {
    async fn stop(self) {
        let h = self.handle.clone();
        tokio::task::spawn_blocking(move || h.stop())
            .await
            .expect("stop")
            .expect("report");
    }
}

async fn http_server(token: Option<&str>) -> (HttpServer, SocketAddr) {
    http_server_with(ServerConfig {
        token: token.map(String::from),
        ..ServerConfig::default()
    })
    .await
}

/// As [`http_server`], with the rest of `config`.
async fn http_server_with(config: ServerConfig) -> (HttpServer, SocketAddr) {
    let config = ServerConfig {
        port: 0,
        http: Some("127.0.0.1:0".into()),
        ..config
    };
    let handle = tokio::task::spawn_blocking(move || ServerHandle::start(config))
        .await
        .expect("start")
        .expect("server");
    let addr = handle.http_addr().expect("http address");
    let server = HttpServer {
        addr: handle.local_addr(),
        handle: std::sync::Arc::new(handle),
    };
    (server, addr)
}

/// Sends a keep-alive GET (as a browser on `http://127.0.0.1/` would) and reads the answer:
/// (status, body); `None` if the connection closed or broke first, or nothing came within
/// [`WAIT`].
async fn get(s: &mut TcpStream, path: &str, headers: &str) -> Option<(u16, String)> {
    get_raw(s, path, &format!("host: 127.0.0.1\r\n{headers}"))
        .await
        .map(|(status, _, body)| (status, body))
}

/// Sends a keep-alive GET with exactly these header lines (each ending in CRLF) and reads the
/// answer: (status, head in lower case, body).
async fn get_raw(s: &mut TcpStream, path: &str, headers: &str) -> Option<(u16, String, String)> {
    let req = format!("GET {path} HTTP/1.1\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_some(s, &mut buf).await?;
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
        read_some(s, &mut body).await?;
    }
    Some((status, head, String::from_utf8_lossy(&body).into_owned()))
}

async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
}

/// Reads until the server closes the connection; true if it did within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = Vec::new();
    // End of stream or a reset: closed either way.
    tokio::time::timeout(limit, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test]
async fn lower_case_bearer_is_accepted_and_a_wrong_token_refused() {
    let (server, addr) = http_server(Some("s3cret")).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for (headers, code) in [
        ("", 401),
        ("authorization: bearer s3cret\r\n", 200),
        ("authorization: BEARER s3cret\r\n", 200),
        ("authorization: Bearer s3cret\r\n", 200),
        ("authorization: bearer s3cre\r\n", 401),
        ("authorization: bearer wrong-token\r\n", 401),
        ("authorization: basic s3cret\r\n", 401),
        ("x-loadmon-token: s3cret\r\n", 200),
        ("x-loadmon-token: nope\r\n", 401),
    ] {
        let got = get(&mut s, "/api/report", headers).await;
        assert_eq!(
            got.as_ref().map(|r| r.0),
            Some(code),
            "{headers:?}: {got:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_the_protocol_port_still_serves() {
    let (server, http) = http_server(None).await;
    // Fill the cap with idle keep-alive connections, each known to be served.
    let mut held = Vec::with_capacity(CAP);
    for i in 0..CAP {
        let mut s = TcpStream::connect(http).await.expect("connect");
        let got = get(&mut s, "/api/server", "").await;
        assert_eq!(got.map(|r| r.0), Some(200), "connection {i} under the cap");
        held.push(s);
    }
    // Beyond it: closed at once (a 503 at most), not held open.
    for i in 0..8 {
        let mut extra = TcpStream::connect(http).await.expect("connect");
        let mut got = Vec::new();
        let r = tokio::time::timeout(WAIT, extra.read_to_end(&mut got)).await;
        assert!(r.is_ok(), "connection {i} over the cap was kept open");
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 503 "),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    // The protocol port, same process, still hands out ids.
    let mut client = Raw::connect(server.addr).await;
    let id = client.seed_handshake().await;
    assert_eq!(id, 100);
    // Once the idle ones go, a normal GET is served again (the server notices the closes
    // asynchronously: retry, bounded).
    drop(held);
    let mut served = None;
    for _ in 0..100 {
        let mut s = TcpStream::connect(http).await.expect("connect");
        served = get(&mut s, "/api/clients", "").await;
        if served.as_ref().is_some_and(|r| r.0 == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, body) = served.expect("a GET after the idle connections closed");
    assert_eq!(code, 200);
    assert!(body.contains("\"id\":100"), "{body}");
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn slowloris_headers_are_closed_after_the_header_timeout() {
    let (server, http) = http_server(None).await;
    let mut slow = TcpStream::connect(http).await.expect("connect");
    slow.write_all(b"GET /api/report HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
        .await
        .expect("write");
    // Another peer is served meanwhile.
    let mut ok = TcpStream::connect(http).await.expect("connect");
    assert_eq!(
        get(&mut ok, "/api/server", "").await.map(|r| r.0),
        Some(200)
    );
    // The header timeout is 10 s; the idle timeout (30 s) would not close it this soon.
    assert!(
        closed_within(&mut slow, Duration::from_secs(25)).await,
        "a connection with partial headers was kept open for 25 s"
    );
    server.stop().await;
}

/// DNS rebinding: a web page whose name the attacker points at 127.0.0.1 reaches the listener
/// with that name as `Host`, and (no token) would read the report. A name that is not the
/// listener's gets 421 with the reason, on every route; IP addresses and `localhost` (which no
/// attacker can point anywhere) are served. No CORS header is sent, whatever the `Origin`.
#[tokio::test]
async fn a_request_for_a_foreign_host_name_is_refused() {
    let (server, addr) = http_server(None).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let port = addr.port();
    for (host, code) in [
        (format!("127.0.0.1:{port}"), 200),
        ("127.0.0.1".into(), 200),
        (format!("localhost:{port}"), 200),
        ("LocalHost".into(), 200),
        ("localhost.".into(), 200),
        ("[::1]:8080".into(), 200),
        ("10.1.2.3".into(), 200),
        (format!("evil.example:{port}"), 421),
        ("evil.example".into(), 421),
        ("127.0.0.1.nip.io".into(), 421),
        ("localhost.evil.example".into(), 421),
        ("127.0.0.1:port".into(), 421),
        ("[::1".into(), 421),
        ("".into(), 421),
    ] {
        for path in ["/api/report", "/", "/metrics"] {
            let got = get_raw(
                &mut s,
                path,
                &format!("host: {host}\r\norigin: http://{host}\r\n"),
            )
            .await;
            let (status, head, body) = got.unwrap_or_else(|| panic!("{host:?} {path}: no answer"));
            assert_eq!(status, code, "{host:?} {path}: {body}");
            assert!(!head.contains("access-control-"), "{host:?} {path}: {head}");
            if code == 421 {
                assert!(body.contains("--http-allow-host"), "{body}");
            }
        }
    }
    server.stop().await;
}

/// The names given in `http_allow_hosts` are served (without case, port and trailing dot),
/// others still get 421; `*` serves any name.
#[tokio::test]
async fn names_given_in_http_allow_hosts_are_served() {
    let (server, addr) = http_server_with(ServerConfig {
        http_allow_hosts: vec!["loadmon.example".into(), "Dash.Internal.".into()],
        ..ServerConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for (host, code) in [
        ("loadmon.example", 200),
        ("LOADMON.example.:8080", 200),
        ("dash.internal", 200),
        ("127.0.0.1", 200),
        ("other.example", 421),
        ("example", 421),
        ("sub.loadmon.example", 421),
    ] {
        let got = get_raw(&mut s, "/api/server", &format!("host: {host}\r\n")).await;
        assert_eq!(got.as_ref().map(|r| r.0), Some(code), "{host}: {got:?}");
    }
    server.stop().await;

    let (server, addr) = http_server_with(ServerConfig {
        http_allow_hosts: vec!["*".into()],
        ..ServerConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let got = get_raw(&mut s, "/api/report", "host: anything.example\r\n").await;
    assert_eq!(got.as_ref().map(|r| r.0), Some(200), "{got:?}");
    server.stop().await;
}
