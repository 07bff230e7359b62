//! Attacks on the connection driver's hand-written poll (server/conn.rs, server/signal.rs):
//! a peer that keeps its socket always readable on a single-threaded runtime, a stop from
//! another thread while hundreds of clients wait at the fleet's start, and exact message
//! counts when a client registers in the middle of a read that ends the connection, and a
//! server whose clock jumps past a deadline (a stall) while the peer's line waits unread.
//!
//! Real sockets on 127.0.0.1, short real timeouts (or a paused clock), every wait bounded.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Raw, TestServer, WAIT};
use loadmon::events::EventKind;
use loadmon::server::{FleetConfig, ServerConfig, ServerControl};
use loadmon::Status;

/// A peer on an OS thread of its own (so that it does not wait for the runtime under test)
/// that sends `first`, then `line` over and over as fast as the socket takes it and never
/// reads, until the server closes the connection, `quit` is set, or `WAIT`. Returns whether
/// the server closed it.
fn flood_from_a_thread(
    addr: SocketAddr,
    first: &'static str,
    line: &'static str,
    quit: Arc<AtomicBool>,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.write_all(first.as_bytes()).expect("first lines");
        let chunk = line.repeat(8192);
        let end = Instant::now() + WAIT;
        while Instant::now() < end && !quit.load(Ordering::Relaxed) {
            match s.write(chunk.as_bytes()) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // Reset or broken pipe: the server closed it.
                Err(_) => return true,
            }
        }
        false
    })
}

fn count(control: &ServerControl, name: &str) -> u64 {
    control
        .message_counts()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// On a single-threaded runtime, a registered peer that keeps the socket full of heartbeats
/// and a peer that keeps it full of junk before any `get_cid` starve nobody: an honest client
/// runs to PASS meanwhile, the junk peer is closed at its handshake deadline (the timer wins
/// over a socket that is always readable), and a stop from another thread ends the
/// heartbeat flooder ("server stopped").
#[tokio::test]
async fn peers_that_keep_the_socket_readable_starve_nobody_on_one_thread() {
    let server = TestServer::start(ServerConfig {
        handshake_timeout: Duration::from_millis(800),
        heartbeat_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let quit = Arc::new(AtomicBool::new(false));
    let hb_flood =
        flood_from_a_thread(server.addr, "get_cid\nready\nstart\n", "hb\n", quit.clone());
    let junk_flood = flood_from_a_thread(server.addr, "", "frobnicate\n", quit.clone());
    // Both floods are under way (the first has an id) before the honest client comes.
    let control = server.control.clone();
    until("the floods to be read", || {
        count(&control, "hb") > 10_000 && count(&control, "invalid") > 0
    })
    .await;

    let honest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut c = Raw::connect(server.addr).await;
        let id = c.seed_handshake().await;
        c.send("start").await;
        c.send("hb").await;
        c.send("done").await;
        assert!(c.closed().await);
        id
    })
    .await
    .expect("an honest client was starved by the floods");

    // The junk peer never asked for an id: closed at its handshake deadline.
    let junk_closed = tokio::task::spawn_blocking(move || junk_flood.join().unwrap());
    assert!(
        tokio::time::timeout(Duration::from_secs(10), junk_closed)
            .await
            .expect("a peer flooding junk outlived its handshake deadline")
            .unwrap(),
        "the junk flooder was not closed by the server"
    );

    // Stop from another thread while the heartbeat flood goes on.
    let stopper = server.control.clone();
    std::thread::spawn(move || stopper.stop()).join().unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), server.report())
        .await
        .expect("stop did not end the run while a peer floods");
    quit.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || hb_flood.join()).await;
    assert!(report.stopped);
    assert_eq!(report.clients.len(), 2, "{:?}", report.clients);
    let flooder = &report.clients[0];
    assert_eq!(flooder.status, Status::Aborted, "{flooder:?}");
    assert_eq!(flooder.reason.as_deref(), Some("server stopped"));
    assert!(flooder.heartbeats > 10_000, "{flooder:?}");
    assert_eq!(report.clients[1].id, honest);
    assert_eq!(report.clients[1].status, Status::Pass);
}

/// Hundreds of clients wait at the fleet's start (it never comes); a stop from another thread
/// ends every connection promptly, none of them gets `run_tests`, every client is ABORTED
/// "server stopped". On two serving threads, so that tasks move between threads while their
/// stop subscription is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_from_another_thread_ends_every_client_waiting_at_the_start() {
    const N: usize = 300;
    let server = TestServer::start(ServerConfig {
        max_clients: N + 1,
        heartbeat_timeout: Duration::from_secs(60),
        handshake_timeout: Duration::from_secs(60),
        fleet: Some(FleetConfig::new(N + 1, common::small_plan(0.5))),
        ..Default::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..N {
        let mut c = Raw::connect(server.addr).await;
        c.send_bytes(b"hello:1.0:plan\nget_cid\nready\n").await;
        assert_eq!(c.recv().await.as_deref(), Some("hello:1.0:plan"));
        assert!(c.recv().await.unwrap().starts_with("plan:"));
        assert!(c.recv().await.unwrap().starts_with("set_cid:"));
        clients.push(c);
    }
    let control = server.control.clone();
    until("every client to wait at the start", || {
        control.fleet().is_some_and(|f| f.ready == N)
    })
    .await;

    let stopper = server.control.clone();
    let started = tokio::time::Instant::now();
    std::thread::spawn(move || stopper.stop()).join().unwrap();
    let ends: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut after = Vec::new();
                while let Some(line) = c.recv().await {
                    after.push(line);
                }
                after
            })
        })
        .collect();
    for end in ends {
        let after = tokio::time::timeout(Duration::from_secs(10), end)
            .await
            .expect("a waiting client was not closed after the stop")
            .unwrap();
        assert!(after.is_empty(), "lines after the stop: {after:?}");
    }
    let report = tokio::time::timeout(Duration::from_secs(10), server.report())
        .await
        .expect("the run did not end after the stop");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(report.stopped);
    assert_eq!(report.clients.len(), N);
    for c in &report.clients {
        assert_eq!(c.status, Status::Aborted, "{c:?}");
        assert_eq!(c.reason.as_deref(), Some("server stopped"), "{c:?}");
    }
}

/// Lines that register a client, then heartbeats, stats, junk, and the end of the connection,
/// all in one write (one read for the server): every line is counted once, the lines after
/// `get_cid` go to the new client's record, and the client ends ABORTED with the right reason
/// — for an end of stream and for a protocol error (over-long line) in that same read.
#[tokio::test]
async fn a_client_that_registers_and_ends_in_one_read_is_counted_and_recorded() {
    let server = TestServer::start(ServerConfig {
        max_line_bytes: 512,
        ..Default::default()
    })
    .await;
    // Keeps the run going until the checks are done.
    let mut keeper = Raw::connect(server.addr).await;
    let keeper_id = keeper.seed_handshake().await;
    let control = server.control.clone();
    let before = control.message_counts();
    let was = |name: &str| before.iter().find(|(n, _)| *n == name).unwrap().1;

    // 1: ends with the end of the stream.
    let mut eof = Raw::connect(server.addr).await;
    eof.send_bytes(
        b"hello:1.0\nget_cid\nhb\nhb\nbogus\nsend_stats:1.5:0.5\nfile_roll\nfile_stats:1:2\nstart\nhb\n",
    )
    .await;
    assert_eq!(eof.recv().await.as_deref(), Some("hello:1.0"));
    let eof_id: u32 = eof
        .recv()
        .await
        .unwrap()
        .strip_prefix("set_cid:")
        .unwrap()
        .parse()
        .unwrap();
    eof.close().await;

    // 2: ends with a protocol error in the same read.
    let mut bad = Raw::connect(server.addr).await;
    let mut lines = b"get_cid\nhb\nwhat\nfile_roll\n".to_vec();
    lines.extend(std::iter::repeat_n(b'x', 600));
    lines.extend(b"\nhb\n");
    bad.send_bytes(&lines).await;
    assert!(bad.recv().await.unwrap().starts_with("set_cid:"));
    assert!(bad.closed().await);

    until("both clients to end", || {
        let r = control.report();
        r.clients.len() == 3
            && r.clients
                .iter()
                .filter(|c| c.status == Status::Aborted)
                .count()
                == 2
    })
    .await;
    let delta = |name: &str| count(&control, name) - was(name);
    assert_eq!(delta("hello"), 1);
    assert_eq!(delta("get_cid"), 2);
    // The `hb` after the over-long line is never read as a line.
    assert_eq!(delta("hb"), 4);
    assert_eq!(delta("invalid"), 2);
    assert_eq!(delta("send_stats"), 1);
    assert_eq!(delta("file_roll"), 2);
    assert_eq!(delta("file_stats"), 1);
    assert_eq!(delta("start"), 1);

    let report = control.report();
    let by_id = |id: u32| report.clients.iter().find(|c| c.id == id).unwrap();
    let e = by_id(eof_id);
    assert_eq!(e.status, Status::Aborted, "{e:?}");
    assert_eq!(e.reason.as_deref(), Some("connection closed before done"));
    assert_eq!(e.heartbeats, 3, "{e:?}");
    assert_eq!(e.stats_reports, 1, "{e:?}");
    assert_eq!(e.files_written, 1, "{e:?}");
    assert_eq!(e.cpu_avg_pct, 1.5, "{e:?}");
    assert_eq!(e.protocol_version.as_deref(), Some("1.0"), "{e:?}");
    let b = report
        .clients
        .iter()
        .find(|c| c.id != eof_id && c.id != keeper_id)
        .unwrap();
    assert_eq!(b.status, Status::Aborted, "{b:?}");
    assert!(
        b.reason
            .as_deref()
            .unwrap_or("")
            .starts_with("protocol error:"),
        "{b:?}"
    );
    assert_eq!(b.heartbeats, 1, "{b:?}");
    assert_eq!(b.files_written, 1, "{b:?}");

    keeper.send("start").await;
    keeper.send("done").await;
    assert!(keeper.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 3);
}

/// A server stalled (SIGSTOP, a VM pause) past the heartbeat timeout while its client kept
/// sending, on a paused clock: a heartbeat is in the socket when the server's clock jumps past
/// the timeout. The deadline looks at the socket first: the heartbeat counts, no
/// missed-heartbeat warning (armed: someone listens to the events), no TIMED OUT, and the
/// client ends PASS. Three stalls in a row.
#[tokio::test(start_paused = true)]
async fn a_heartbeat_waiting_in_the_socket_when_the_clock_jumps_past_the_timeout_counts() {
    let timeout = Duration::from_secs(10);
    let server = TestServer::start(ServerConfig {
        heartbeat_timeout: timeout,
        ..Default::default()
    })
    .await;
    let mut events = server.control.subscribe();
    let mut c = Raw::connect(server.addr).await;
    c.seed_handshake().await;
    c.send("start").await;
    let control = server.control.clone();
    for sent in 0..3 {
        // The server has read every line so far and waits for the next one ...
        until("the heartbeats so far to be read", || {
            count(&control, "hb") == sent
        })
        .await;
        // ... which arrives while the server is stalled for longer than the timeout.
        c.send("hb").await;
        tokio::time::advance(timeout + Duration::from_secs(1)).await;
    }
    c.send("done").await;
    assert!(c.closed().await);
    let report = server.report().await;
    let client = &report.clients[0];
    assert_eq!(client.status, Status::Pass, "{client:?}");
    assert_eq!(client.heartbeats, 3, "{client:?}");
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(WAIT, events.next()).await {
        seen.push(e.kind);
    }
    assert!(
        !seen
            .iter()
            .any(|k| matches!(k, EventKind::HeartbeatMissed { .. })),
        "{seen:?}"
    );
}

/// The same for the handshake deadline: a `get_cid` in the socket when the server's clock
/// jumps past the handshake timeout is answered, not closed as "no get_cid".
#[tokio::test(start_paused = true)]
async fn a_get_cid_waiting_in_the_socket_when_the_clock_jumps_past_the_handshake_deadline_is_answered(
) {
    let timeout = Duration::from_secs(5);
    let server = TestServer::start(ServerConfig {
        handshake_timeout: timeout,
        ..Default::default()
    })
    .await;
    let mut c = Raw::connect(server.addr).await;
    let control = server.control.clone();
    until("the connection to be accepted", || {
        control.connection_counts().0 == 1
    })
    .await;
    c.send("get_cid").await;
    tokio::time::advance(timeout + Duration::from_secs(1)).await;
    let reply = c.recv().await;
    assert!(
        reply.as_deref().is_some_and(|r| r.starts_with("set_cid:")),
        "{reply:?}"
    );
    c.send("ready").await;
    assert_eq!(c.recv().await.as_deref(), Some("run_tests"));
    c.send("start").await;
    c.send("hb").await;
    c.send("done").await;
    assert!(c.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass, "{report:?}");
}

/// The same for the write deadline: replies wait for the peer when the server stalls; the
/// peer reads them all meanwhile, and the server's clock jumps past the write timeout before
/// it has seen the socket take more. The deadline tries the socket first: the replies go,
/// the peer is not closed as "not reading", and it ends PASS.
#[tokio::test(start_paused = true)]
async fn replies_the_peer_took_during_a_stall_do_not_trip_the_write_deadline() {
    use std::io::{ErrorKind, Read};
    let write_timeout = Duration::from_secs(10);
    let server = TestServer::start(ServerConfig {
        write_timeout,
        heartbeat_timeout: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    // A small receive buffer: the replies pile up soon. Non-blocking std socket: the test
    // reads and writes without ever letting the (paused) clock move.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut s = stream.into_std().unwrap();
    s.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut drain = |s: &mut std::net::TcpStream, got: &mut Vec<u8>| loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) => panic!("read: {e}"),
        }
    };
    let write_all = |s: &mut std::net::TcpStream, mut bytes: &[u8]| {
        while !bytes.is_empty() {
            match s.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
    };
    write_all(&mut s, b"get_cid\nready\nstart\n");
    // Repeated `get_cid`s, each answered, never read: until the server stops reading them
    // (its replies wait for the peer) and the socket takes no more.
    let line = b"get_cid\n";
    let chunk = "get_cid\n".repeat(1024);
    let mut stuck = 0;
    // What a partial write left of its last line: sent before `done`, which would otherwise
    // be glued to half a `get_cid` and never seen as `done`.
    let mut rest: &[u8] = &[];
    for _ in 0..1_000_000 {
        match s.write(chunk.as_bytes()) {
            Ok(n) => {
                stuck = 0;
                rest = &line[n % line.len()..];
                if rest.len() == line.len() {
                    rest = &[];
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => stuck += 1,
            Err(e) => panic!("write: {e}"),
        }
        if stuck > 200 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(stuck > 200, "the server kept reading");
    // The server stalls; meanwhile the peer reads what was sent, then the clock jumps.
    drain(&mut s, &mut got);
    tokio::time::advance(write_timeout + Duration::from_secs(1)).await;
    // From now on the peer reads everything and ends the run.
    let mut last = [rest, b"done\n"].concat();
    let mut closed = false;
    for _ in 0..10_000_000 {
        closed = drain(&mut s, &mut got);
        if closed {
            break;
        }
        if !last.is_empty() {
            match s.write(&last) {
                Ok(n) => {
                    last.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        tokio::task::yield_now().await;
    }
    assert!(closed, "the server never closed the connection");
    let report = server.report().await;
    let client = &report.clients[0];
    assert_eq!(client.status, Status::Pass, "{client:?}");
}
