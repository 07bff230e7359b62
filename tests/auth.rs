//! The token: a challenge–response that never sends it, both ways (the server proves it knows
//! it too), the clear form of older peers only where allowed, and guessing slowed down and
//! locked out. On 127.0.0.1 with ephemeral ports; every wait is bounded.

mod common;

use std::time::Duration;

use common::{Raw, TestServer};
use loadmon::auth::{prove, Nonce, Role};
use loadmon::client::{Client, ClientConfig};
use loadmon::protocol::{Message, ProtocolError};
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::workload::{Context, Workload};
use loadmon::{Error, Status};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TOKEN: &str = "s3cret-Token_0123";
const LIMIT: Duration = Duration::from_secs(60);

struct Noop;
impl Workload for Noop {
    fn run(&mut self, _: &Context) -> loadmon::Result<()> {
        Ok(())
    }
}

fn client_config(port: u16, token: Option<&str>) -> ClientConfig {
    ClientConfig {
        port,
        token: token.map(String::from),
        handshake_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn worker_config(port: u16, token: Option<&str>, out_dir: &std::path::Path) -> WorkerConfig {
    WorkerConfig {
        client: ClientConfig {
            heartbeat_period: Duration::from_millis(200),
            stats_period: Duration::from_millis(200),
            ..client_config(port, token)
        },
        out_dir: out_dir.to_path_buf(),
        ..Default::default()
    }
}

fn with_token(config: ServerConfig) -> ServerConfig {
    ServerConfig {
        token: Some(TOKEN.into()),
        ..config
    }
}

/// Whether `e` is the client's "the server did not authenticate" error.
fn unproven(e: &Error) -> bool {
    matches!(e, Error::Protocol(ProtocolError::Auth(_)))
}

/// A proxy on 127.0.0.1 in front of `to` for one connection: returns its port and, once the
/// connection ends, every byte the client sent (what someone on the path would capture).
async fn capturing_proxy(to: std::net::SocketAddr) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(to).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let back = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
        });
        let mut captured = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(LIMIT, cr.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    captured.extend_from_slice(&buf[..n]);
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        let _ = sw.shutdown().await;
        let _ = tokio::time::timeout(LIMIT, back).await;
        captured
    });
    (port, task)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a client sends on the wire never contains the token: a loadmon client and a fleet
/// worker, each through a proxy that records their bytes, run to PASS against a server with
/// the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_what_clients_send_never_contains_the_token() {
    let server = TestServer::start(with_token(ServerConfig::default())).await;
    let (port, capture) = capturing_proxy(server.addr).await;
    let client = Client::new(client_config(port, Some(TOKEN))).unwrap();
    let result = tokio::time::timeout(LIMIT, client.run(Noop))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.client_id, 100);
    let sent = capture.await.unwrap();
    let text = String::from_utf8_lossy(&sent);
    assert!(!contains(&sent, TOKEN.as_bytes()), "{text}");
    assert!(text.starts_with("hello:1.0:auth\nauth:"), "{text}");
    assert!(!text.contains("token:"), "{text}");
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);

    // A fleet worker, plan and all.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(with_token(ServerConfig {
        fleet: Some(FleetConfig::new(1, common::small_plan(0.5))),
        ..Default::default()
    }))
    .await;
    let (port, capture) = capturing_proxy(server.addr).await;
    let worker = Worker::new(worker_config(port, Some(TOKEN), dir.path())).unwrap();
    let run = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.plan, common::small_plan(0.5));
    let sent = capture.await.unwrap();
    let text = String::from_utf8_lossy(&sent);
    assert!(!contains(&sent, TOKEN.as_bytes()), "{text}");
    assert!(
        text.starts_with("hello:1.0:plan,ping,auth\nauth:"),
        "{text}"
    );
    let report = server.report().await;
    assert_eq!(report.clients[0].status, Status::Pass);
}

/// What a loadmon from before the challenge–response sends first, at once.
async fn older(c: &mut Raw, token: &str) {
    let lines = format!("hello:1.0\ntoken:{token}\nget_cid\nready\n");
    c.send_bytes(lines.as_bytes()).await;
}

/// A loadmon from before the challenge–response sends `hello:1.0`, `token:<secret>`, `get_cid`
/// and `ready` at once: refused by default (its token is not even compared), served when the
/// server allows the clear token.
#[tokio::test]
async fn a_peer_that_only_knows_the_clear_token_is_refused_unless_allowed() {
    let server = TestServer::start(with_token(ServerConfig::default())).await;
    let mut c = Raw::connect(server.addr).await;
    older(&mut c, TOKEN).await;
    assert_eq!(c.recv().await.as_deref(), Some("hello:1.0"));
    let refused = c.recv().await.unwrap_or_default();
    assert!(
        refused.starts_with("refused:the token in clear")
            && refused.contains("--allow-clear-token"),
        "{refused}"
    );
    assert!(c.closed().await);
    assert!(server.stop().await.clients.is_empty());

    let server = TestServer::start(with_token(ServerConfig {
        allow_clear_token: true,
        ..Default::default()
    }))
    .await;
    let mut c = Raw::connect(server.addr).await;
    older(&mut c, TOKEN).await;
    assert_eq!(c.recv().await.as_deref(), Some("hello:1.0"));
    assert_eq!(c.recv().await.as_deref(), Some("set_cid:100"));
    assert_eq!(c.recv().await.as_deref(), Some("run_tests"));
    c.send("start").await;
    c.send("done").await;
    assert!(c.closed().await);
    let mut wrong = Raw::connect(server.addr).await;
    older(&mut wrong, "guess").await;
    assert_eq!(wrong.recv().await.as_deref(), Some("hello:1.0"));
    assert_eq!(wrong.recv().await.as_deref(), Some("refused:wrong token"));
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Pass);
}

/// A fake fleet server that offers `auth` and a plan but cannot prove it knows the token:
/// `auth_ok` with a proof made with another token, or no `auth_ok` at all before the plan, or
/// no challenge–response offered. Returns the port and the lines it got.
async fn impostor(kind: &'static str) -> (u16, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        let server_nonce = Nonce::random().unwrap();
        let plan = Message::Plan(common::small_plan(0.5).to_wire(1)).encode();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
            let reply = match Message::parse(&line) {
                Ok(Message::Hello { .. }) => match kind {
                    "wrong proof" | "plan before proof" => {
                        format!("hello:1.0:plan,auth\nchallenge:{server_nonce}\n")
                    }
                    // An older server, or one without a token: a plan at once.
                    _ => format!("hello:1.0:plan\n{plan}\n"),
                },
                Ok(Message::Auth { nonce, .. }) => match kind {
                    "wrong proof" => {
                        let proof = prove("not the token", Role::Server, &server_nonce, &nonce);
                        format!("{}\n{plan}\n", Message::AuthOk(proof).encode())
                    }
                    _ => format!("{plan}\n"),
                },
                Ok(Message::GetCid) => "set_cid:100\n".into(),
                Ok(Message::Ready) => "run_tests\n".into(),
                _ => String::new(),
            };
            seen.push(line);
            if w.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        seen
    });
    (port, task)
}

/// A worker takes no plan from a server that does not prove it knows the token: it takes no
/// id, writes nothing and stops (with `stay` too: no later run cures it).
#[tokio::test]
async fn a_worker_refuses_the_plan_of_a_server_that_does_not_prove_it_knows_the_token() {
    for kind in ["wrong proof", "plan before proof", "no challenge"] {
        let dir = tempfile::tempdir().unwrap();
        let (port, seen) = impostor(kind).await;
        let mut config = worker_config(port, Some(TOKEN), &dir.path().join("out"));
        config.stay = true;
        let worker = Worker::new(config).unwrap();
        let e = tokio::time::timeout(LIMIT, worker.run())
            .await
            .unwrap()
            .unwrap_err();
        assert!(unproven(&e), "{kind}: {e:?}");
        let msg = e.to_string();
        match kind {
            "wrong proof" => assert!(msg.contains("did not prove it knows the token"), "{msg}"),
            "plan before proof" => {
                assert!(
                    msg.contains("sent plan before proving it knows the token"),
                    "{msg}"
                )
            }
            _ => assert!(
                msg.contains("offers no challenge-response") && msg.contains("--allow-clear-token"),
                "{msg}"
            ),
        }
        drop(worker);
        let seen = seen.await.unwrap();
        assert!(
            !seen
                .iter()
                .any(|l| l == "get_cid" || l.starts_with("token:")),
            "{kind}: {seen:?}"
        );
        assert!(
            std::fs::read_dir(dir.path().join("out"))
                .map(|d| d.count() == 0)
                .unwrap_or(true),
            "{kind}: the plan ran"
        );
    }
}

/// A client with a token goes on only with a server that proves it knows that token: a
/// server without a token (or with another one) is an error, and the client takes no id.
#[tokio::test]
async fn a_client_refuses_a_server_that_does_not_know_its_token() {
    let server = TestServer::start(ServerConfig::default()).await;
    let client = Client::new(client_config(server.addr.port(), Some(TOKEN))).unwrap();
    let e = tokio::time::timeout(LIMIT, client.run(Noop))
        .await
        .unwrap()
        .unwrap_err();
    assert!(unproven(&e), "{e:?}");
    assert!(server.stop().await.clients.is_empty());

    // Another token: the server refuses the client's proof.
    let server = TestServer::start(with_token(ServerConfig::default())).await;
    let client = Client::new(client_config(server.addr.port(), Some("another"))).unwrap();
    let e = tokio::time::timeout(LIMIT, client.run(Noop))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Refused(r) if r == "wrong token"),
        "{e:?}"
    );
    assert!(server.stop().await.clients.is_empty());
}

/// A fake loadmon server from before the challenge–response: it answers `hello:1.0` (it
/// ignores the `auth` capability) and wants `token:<secret>` before `get_cid`.
async fn older_server() -> (u16, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        let mut authenticated = false;
        while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
            let reply = match line.split(':').next().unwrap_or("") {
                "hello" => "hello:1.0\n".to_string(),
                "token" => {
                    authenticated = line == format!("token:{TOKEN}");
                    String::new()
                }
                "get_cid" if authenticated => "set_cid:100\n".into(),
                "get_cid" => "refused:wrong token\n".into(),
                "ready" => "run_tests\n".into(),
                _ => String::new(),
            };
            let done = line == "done";
            seen.push(line);
            if w.write_all(reply.as_bytes()).await.is_err() || done {
                break;
            }
        }
        seen
    });
    (port, task)
}

/// With `allow_clear_token`, a client sends the token in clear to an older server that asks
/// for it that way (and only then); without, it stops before sending it.
#[tokio::test]
async fn allow_clear_token_lets_a_client_work_with_an_older_server() {
    let (port, seen) = older_server().await;
    let client = Client::new(ClientConfig {
        allow_clear_token: true,
        ..client_config(port, Some(TOKEN))
    })
    .unwrap();
    let r = tokio::time::timeout(LIMIT, client.run(Noop))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.client_id, 100);
    let seen = seen.await.unwrap();
    assert_eq!(
        seen[..3],
        ["hello:1.0:auth", &format!("token:{TOKEN}"), "get_cid"]
    );

    let (port, seen) = older_server().await;
    let client = Client::new(client_config(port, Some(TOKEN))).unwrap();
    let e = tokio::time::timeout(LIMIT, client.run(Noop))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        unproven(&e) && e.to_string().contains("--allow-clear-token"),
        "{e}"
    );
    drop(client);
    let seen = seen.await.unwrap();
    assert_eq!(seen, ["hello:1.0:auth"], "the token was not sent");

    // The setting needs a token.
    let e = Client::new(ClientConfig {
        allow_clear_token: true,
        ..client_config(port, None)
    })
    .unwrap_err();
    assert!(e.is_config(), "{e}");
}

/// One address guessing: the first few wrong proofs are answered `wrong token` at once, then
/// attempts are refused unheard (`too many failed token attempts`), even with the right token;
/// other clients (here, a connection authenticated before) are not affected.
#[tokio::test]
async fn guessing_from_one_address_is_slowed_down_then_refused() {
    let server = TestServer::start(with_token(ServerConfig {
        max_clients: 2,
        ..Default::default()
    }))
    .await;
    // In before the guessing: it keeps its session.
    let mut good = Raw::connect(server.addr).await;
    good.authenticate(TOKEN).await;
    let guess = |token: &'static str| {
        let addr = server.addr;
        async move {
            let mut c = Raw::connect(addr).await;
            c.send("hello:1.0:auth").await;
            assert_eq!(c.recv().await.as_deref(), Some("hello:1.0:auth"));
            let line = c.recv().await.unwrap();
            let Ok(Message::Challenge(server)) = Message::parse(&line) else {
                panic!("{line}")
            };
            let client = Nonce::random().unwrap();
            let proof = prove(token, Role::Client, &server, &client);
            c.send(
                &Message::Auth {
                    nonce: client,
                    proof,
                }
                .encode(),
            )
            .await;
            let answer = c.recv().await.unwrap_or_default();
            (c, answer)
        }
    };
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(guess("guess").await.1);
    }
    assert!(
        answers.iter().all(|a| a == "refused:wrong token"),
        "{answers:?}"
    );
    let (_, fifth) = guess("guess").await;
    assert!(
        fifth.starts_with("refused:too many failed token attempts from 127.0.0.1 (4)"),
        "{fifth}"
    );
    // The right token from that address waits too.
    let (_, right) = guess(TOKEN).await;
    assert!(
        right.starts_with("refused:too many failed token attempts"),
        "{right}"
    );
    let id = good.seed_handshake().await;
    good.send("start").await;
    good.send("done").await;
    assert!(good.closed().await);
    let report = server.report().await;
    assert_eq!(report.clients.len(), 1);
    assert_eq!(
        (report.clients[0].id, report.clients[0].status),
        (id, Status::Pass)
    );
}
