//! Hostile peers and careless users against a real server over loopback: one test per item of
//! issue "[1 of 4] A server no peer can stall, and a report that always survives". Each of
//! these failed on the server before the restructuring (server/{session,conn,accept}.rs).
//!
//! Timeouts here are real but short (hundreds of milliseconds) with generous bounded waits;
//! the timing rules themselves are unit-tested with a paused clock in `server::session`.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, Raw, TestServer, WAIT};
use loadmon::server::ServerConfig;
use loadmon::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

/// A connection with a tiny receive buffer that writes `line` over and over and never reads:
/// the server's replies pile up. Runs until the server closes it (or `WAIT`).
async fn never_reads(
    addr: SocketAddr,
    first: &[&str],
    line: &'static str,
) -> tokio::task::JoinHandle<()> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    for l in first {
        stream.write_all(format!("{l}\n").as_bytes()).await.unwrap();
    }
    let chunk = format!("{line}\n").repeat(4096);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(WAIT, async {
            // Ends when the server closes the connection (reset or broken pipe).
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        })
        .await;
    })
}

/// A seed client that runs to PASS: handshake, start, done.
async fn passing_client(addr: SocketAddr, token: Option<&str>) -> u32 {
    let mut c = Raw::connect(addr).await;
    if let Some(t) = token {
        c.authenticate(t).await;
    }
    let id = c.seed_handshake().await;
    c.send("file_stats:10:20").await;
    c.send("start").await;
    c.send("hb").await;
    c.send("done").await;
    assert!(c.closed().await);
    id
}

/// A short write timeout (the rest as `config` says).
fn fast(config: ServerConfig) -> ServerConfig {
    ServerConfig {
        write_timeout: Duration::from_millis(500),
        ..config
    }
}

/// Item 1: a registered peer that never reads is closed (ABORTED, peer not reading), its slot
/// is freed for the next client, and the server stops by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_frees_its_slot() {
    let server = TestServer::start(fast(ServerConfig {
        max_clients: 1,
        handshake_timeout: Duration::from_secs(30),
        ..Default::default()
    }))
    .await;
    let flood = never_reads(server.addr, &["get_cid"], "get_cid").await;
    // Connected meanwhile (so that the run does not end when the flooder is closed), but it
    // asks for an id only afterwards.
    let mut next = Raw::connect(server.addr).await;
    tokio::time::timeout(WAIT, flood).await.unwrap().unwrap();
    // The one slot is free again.
    let id = next.seed_handshake().await;
    next.send("start").await;
    next.send("done").await;
    assert!(next.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 2, "{report:?}");
    let flooder = &report.clients[0];
    assert_eq!(flooder.status, Status::Aborted);
    assert!(
        flooder
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("peer not reading"),
        "{flooder:?}"
    );
    assert_eq!(report.clients[1].id, id);
    assert_eq!(report.clients[1].status, Status::Pass);
}

/// Item 1, before authentication: `hello` floods from a peer without the token neither stall
/// the server nor keep a client with the token out; stop works while it floods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_flood_that_never_reads_stalls_nothing() {
    let server = TestServer::start(fast(ServerConfig {
        token: Some("s3cret".into()),
        max_clients: 1,
        handshake_timeout: Duration::from_secs(30),
        ..Default::default()
    }))
    .await;
    let flood = never_reads(server.addr, &[], "hello:1.0").await;
    passing_client(server.addr, Some("s3cret")).await;
    // The flooder is closed by the write deadline, long before its handshake deadline.
    tokio::time::timeout(Duration::from_secs(10), flood)
        .await
        .expect("the flooding peer was not closed")
        .unwrap();
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Pass);
}

/// A stop request ends a run even while a peer floods and never reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_run_while_a_peer_floods() {
    let server = TestServer::start(ServerConfig {
        write_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let _flood = never_reads(server.addr, &["get_cid"], "get_cid").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("stop did not end the run");
    assert!(report.stopped);
    assert_eq!(report.clients[0].status, Status::Aborted);
    assert_eq!(report.clients[0].reason.as_deref(), Some("server stopped"));
}

/// Item 2: silent connections take no `max_clients` slot; the handshake places have their own
/// limit, and a connection over it waits (the server accepts nothing while every place is
/// taken) and is served as soon as one frees up: never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_take_no_client_slot() {
    let server = TestServer::start(fast(ServerConfig {
        token: Some("s3cret".into()),
        max_clients: 5,
        max_pending: 8,
        handshake_timeout: Duration::from_secs(30),
        ..Default::default()
    }))
    .await;
    let mut idle = Vec::new();
    for _ in 0..7 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // More than max_clients silent sockets: a client with the token still gets in.
    let id = passing_client(server.addr, Some("s3cret")).await;
    assert_eq!(id, 100);
    // All 8 handshake places taken: the next connection is not served (nor refused) ...
    idle.push(TcpStream::connect(server.addr).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = Raw::connect(server.addr).await;
    extra.send("hello:1.0").await;
    let early = tokio::time::timeout(Duration::from_millis(500), extra.recv()).await;
    assert!(
        early.is_err(),
        "served or refused while every place was taken: {early:?}"
    );
    // ... until a place frees up: then it is served, in order.
    drop(idle);
    let line = tokio::time::timeout(WAIT, extra.recv())
        .await
        .expect("served once places freed")
        .unwrap_or_default();
    assert_eq!(line, "hello:1.0");
    let (_, refused) = server.control.connection_counts();
    assert_eq!(refused, 0);
    drop(extra);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
}

/// A storm of connections far over the handshake places (a fleet starting at once): every
/// client is served, none refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_storm_is_slowed_never_refused() {
    let server = TestServer::start(fast(ServerConfig {
        max_clients: 301,
        max_pending: 4,
        ..Default::default()
    }))
    .await;
    // One client stays connected through the storm, so that the run cannot end (every
    // connection closed) between two waves.
    let mut anchor = Raw::connect(server.addr).await;
    assert_eq!(anchor.seed_handshake().await, 100);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let addr = server.addr;
        clients.spawn(async move { passing_client(addr, None).await });
    }
    let mut ids = Vec::new();
    while let Some(id) = clients.join_next().await {
        ids.push(id.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    let (_, refused) = server.control.connection_counts();
    assert_eq!(refused, 0);
    for line in ["file_stats:10:20", "start", "hb", "done"] {
        anchor.send(line).await;
    }
    assert!(anchor.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 301);
}

/// Item 2: without the token, `get_cid` is refused and takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_cid_without_the_token_takes_no_slot_and_no_id() {
    let server = TestServer::start(ServerConfig {
        token: Some("s3cret".into()),
        max_clients: 1,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let mut c = Raw::connect(server.addr).await;
        c.send("get_cid").await;
        let line = c.recv().await.unwrap_or_default();
        assert!(line.starts_with("refused:a token is required"), "{line}");
    }
    assert_eq!(passing_client(server.addr, Some("s3cret")).await, 100);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
}

/// Item 4: a peer sending junk cannot flood the log: a few warnings, then a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_lines_are_counted_but_their_warnings_are_rate_limited() {
    let logs = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig {
        log_dir: Some(logs.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let mut c = Raw::connect(server.addr).await;
    let junk = "frobnicate:\x1b[2Jxyz\n".repeat(20_000);
    c.send_bytes(junk.as_bytes()).await;
    c.seed_handshake().await;
    c.send_bytes(junk.as_bytes()).await;
    c.send("start").await;
    c.send("done").await;
    assert!(c.closed().await);
    let counts = server.control.message_counts();
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);
    let invalid = counts.iter().find(|(n, _)| *n == "invalid").unwrap().1;
    assert_eq!(invalid, 40_000, "every bad line is counted");
    let log_file = std::fs::read_dir(logs.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(log_file).unwrap();
    assert!(log.len() < 16 * 1024, "log of {} bytes:\n{log}", log.len());
    assert!(log.contains("not logged"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape sequences are escaped in the log"
    );
}

/// Issue 21: clock lines are bounded (a malformed one is counted invalid), a sample for an
/// answer the server did not send is ignored, and a real exchange of a client whose clock is
/// 5 s behind gives its offset and a warning in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_lines_are_bounded_and_a_forged_sample_is_ignored() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    for bad in [
        "clock",
        "clock:x",
        "clock:-5",
        "clock:1:2:3:4",
        "clock:9007199254740993",
    ] {
        c.send(bad).await;
    }
    // A sample for an answer never sent: an offset of 1e9 s, ignored.
    c.send("clock:1:1000000000000000:3").await;
    let behind_us = |skew_us: u64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        u64::try_from(now.as_micros()).unwrap() - skew_us
    };
    let c0 = behind_us(5_000_000);
    c.send(&format!("clock:{c0}")).await;
    let answer = c.recv().await.unwrap();
    let s1: u64 = answer
        .strip_prefix(&format!("clock:{c0}:"))
        .unwrap_or_else(|| panic!("{answer}"))
        .parse()
        .unwrap();
    let c2 = behind_us(5_000_000);
    c.send(&format!("clock:{c0}:{s1}:{c2}")).await;
    // Replayed, and with a forged s1: ignored.
    c.send(&format!("clock:{c0}:{s1}:{c2}")).await;
    c.send(&format!("clock:{c0}:{}:{c2}", s1 - 3_000_000)).await;
    c.send("start").await;
    c.send("done").await;
    assert!(c.closed().await);
    let counts = server.control.message_counts();
    let report = server.report().await;
    let count = |name: &str| counts.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(count("invalid"), 5);
    assert_eq!(count("clock"), 5);
    let row = &report.clients[0];
    let (offset, rtt) = (row.clock_offset_ms.unwrap(), row.clock_rtt_ms.unwrap());
    assert!((offset - 5000.0).abs() < 50.0 && rtt < 50.0, "{row:?}");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let w = &report.warnings[0];
    assert!(
        w.starts_with("client 100's clock is ") && w.contains(" s behind the server's"),
        "{w}"
    );
    assert!(report.to_text().contains(&format!("\nWarning: {w}\n")));
}

/// Item 5: the ids one run hands out are capped; the one over the cap is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_churn_is_capped() {
    let server = TestServer::start(ServerConfig {
        max_ids: 50,
        ..Default::default()
    })
    .await;
    // One client stays connected, so the run does not end between the others.
    let mut holder = Raw::connect(server.addr).await;
    assert_eq!(holder.seed_handshake().await, 100);
    for _ in 0..49 {
        let mut c = Raw::connect(server.addr).await;
        c.send("get_cid").await;
        assert!(c.recv().await.unwrap().starts_with("set_cid:"));
        c.close().await;
    }
    let mut c = Raw::connect(server.addr).await;
    c.send("get_cid").await;
    let line = c.recv().await.unwrap_or_default();
    assert_eq!(
        line,
        "refused:client id limit reached: this run hands out at most 50 ids"
    );
    assert!(c.closed().await);
    holder.close().await;
    let report = server.report().await;
    assert_eq!(report.clients.len(), 50);
}

/// Item 8: totals saturate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_do_not_wrap() {
    let server = TestServer::start(ServerConfig::default()).await;
    // Both connected first, so the run does not end between them.
    let clients = [
        Raw::connect(server.addr).await,
        Raw::connect(server.addr).await,
    ];
    for mut c in clients {
        c.seed_handshake().await;
        c.send("start").await;
        c.send("write_stats:18446744073709551615:0:0").await;
        c.send("done").await;
        assert!(c.closed().await);
    }
    let report = server.report().await;
    assert_eq!(report.clients[0].bytes_written, u64::MAX);
    assert_eq!(report.total.bytes_written, u64::MAX);
}

/// Item 9: the id space ends in a refusal, never a repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_id_is_given_once() {
    let server = TestServer::start(ServerConfig {
        first_client_id: u32::MAX,
        ..Default::default()
    })
    .await;
    let mut first = Raw::connect(server.addr).await;
    assert_eq!(first.seed_handshake().await, u32::MAX);
    let mut second = Raw::connect(server.addr).await;
    second.send("get_cid").await;
    let line = second.recv().await.unwrap_or_default();
    assert!(line.starts_with("refused:client ids exhausted"), "{line}");
    first.send("start").await;
    first.send("done").await;
    assert!(first.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Pass);
}

/// Item 10: limits out of bounds are configuration errors before anything listens.
#[test]
fn a_huge_max_clients_is_a_configuration_error() {
    let e = loadmon::blocking::ServerHandle::start(ServerConfig {
        port: 0,
        max_clients: 2305843009213693952,
        ..Default::default()
    })
    .expect_err("out of bounds");
    assert!(e.is_config(), "{e}");
}

/// Item 11: a line of exactly the bound ending in CRLF, `-0`, and a byte counter that must
/// not go down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_at_the_bound_minus_zero_and_monotonic_bytes() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    c.send("send_stats:-0:1").await;
    c.send("write_stats:1000:0:0").await;
    c.send("write_stats:10:0:0").await;
    c.send("hb").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let live = server.control.snapshot();
    assert_eq!(live[0].bytes_written, 1000, "bytes never go down");
    assert_eq!(live[0].cpu_last_pct.map(f64::to_bits), Some(0f64.to_bits()));
    let reason = "x".repeat(4096 - "error:".len());
    c.send_bytes(format!("error:{reason}\r\n").as_bytes()).await;
    assert!(c.closed().await);
    let report = server.report().await;
    let client = &report.clients[0];
    assert_eq!(client.status, Status::Failed, "{client:?}");
    assert_eq!(client.reason.as_deref(), Some(reason.as_str()));
    assert!(!report.to_json().contains("-0.0"));
}

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loadmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Items 6 and 7: an unusable report path is a configuration error (exit 2) before
/// "listening on", and a device is never replaced.
#[test]
fn unusable_report_paths_exit_2_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let under_file = blocker.join("r.json");
    for path in [under_file.to_str().unwrap(), "/dev/null"] {
        let (code, _, err) = run_cli(&[
            "server",
            "--port",
            "0",
            "--no-log-files",
            "--report-json",
            path,
        ]);
        assert_eq!(code, 2, "{path}: {err}");
        assert!(!err.contains("listening on"), "{err}");
        assert!(err.contains("JSON report"), "{err}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

/// Item 6: a report file that fails after the run does not lose the report: the text report
/// is printed, the other files are written, and the exit code is 1.
#[test]
fn a_report_file_that_fails_at_the_end_loses_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let json = sub.join("r.json");
    let csv = dir.path().join("r.csv");
    let mut child = ChildGuard(
        Command::new(BIN)
            .args(["server", "--port", "0", "--no-log-files", "--no-live"])
            .arg("--report-json")
            .arg(&json)
            .arg("--report-csv")
            .arg(&csv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port = common_port(&mut child);
    std::fs::remove_dir(&sub).unwrap();
    std::fs::write(&sub, "now a file").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(passing_client(
        format!("127.0.0.1:{port}").parse().unwrap(),
        None,
    ));
    let status = child.wait_for(WAIT);
    let mut out = String::new();
    let mut stdout = child.0.stdout.take().unwrap();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(out.contains("Test status:   PASS"), "{out}");
    assert!(std::fs::read_to_string(&csv).unwrap().contains("PASS"));
}

/// The port a `loadmon server --port 0` child prints on stderr.
fn common_port(child: &mut ChildGuard) -> u16 {
    use std::io::BufRead;
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    port
}

/// A peer that sends nothing at all is closed at the handshake deadline and its place freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_at_the_handshake_deadline() {
    let server = TestServer::start(ServerConfig {
        max_pending: 1,
        handshake_timeout: Duration::from_millis(800),
        ..Default::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Its place is free again.
    passing_client(server.addr, None).await;
    server.report().await;
}
