//! Helpers shared by the integration tests: a server on 127.0.0.1:0 and a raw line client.
#![allow(dead_code)]

pub mod hung_fs;

use std::net::SocketAddr;
use std::time::Duration;

use loadmon::server::{Server, ServerConfig, ServerControl};
use loadmon::Report;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Bound on every wait in the tests, so a broken build fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub addr: SocketAddr,
    pub control: ServerControl,
    pub task: JoinHandle<loadmon::Result<Report>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let server = Server::bind(ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            ..config
        })
        .await
        .expect("bind");
        let addr = server.local_addr();
        let control = server.control();
        // The run writes the report files of its configuration.
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            control,
            task,
        }
    }

    /// Waits for the server to stop by itself.
    pub async fn report(self) -> Report {
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server did not stop in time")
            .expect("server task")
            .expect("server result")
    }

    /// Stops the server and returns its report.
    pub async fn stop(self) -> Report {
        self.control.stop();
        self.report().await
    }
}

/// A client that speaks raw lines, as an old seed client would.
pub struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        // Without this, Nagle + delayed ACK holds back each second small line by ~40 ms.
        stream.set_nodelay(true).expect("nodelay");
        let (r, w) = stream.into_split();
        Raw {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// The next line (without `\n`), `None` at end of stream.
    pub async fn recv(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
            .await
            .expect("no line in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        Some(line.trim_end_matches('\n').to_string())
    }

    /// Whether the server closed the connection (reads to the end, bounded).
    pub async fn closed(&mut self) -> bool {
        loop {
            match self.recv().await {
                None => return true,
                Some(_) => continue,
            }
        }
    }

    /// The seed's handshake: `get_cid`, `ready` → `set_cid:<id>`, `run_tests`. Returns the id.
    pub async fn seed_handshake(&mut self) -> u32 {
        self.send("get_cid").await;
        self.send("ready").await;
        let set = self.recv().await.expect("set_cid");
        let id = set
            .strip_prefix("set_cid:")
            .unwrap_or_else(|| panic!("expected set_cid, got {set:?}"))
            .parse()
            .expect("numeric id");
        assert_eq!(self.recv().await.as_deref(), Some("run_tests"));
        id
    }

    /// The challenge–response of a client with `token` (see `loadmon::auth`): `hello:1.0:auth`,
    /// the server's `hello` and `challenge`, our `auth`, its `auth_ok` (checked).
    pub async fn authenticate(&mut self, token: &str) {
        use loadmon::auth::{prove, verify, Nonce, Role};
        use loadmon::protocol::Message;
        self.send("hello:1.0:auth").await;
        assert_eq!(self.recv().await.as_deref(), Some("hello:1.0:auth"));
        let line = self.recv().await.expect("challenge");
        let Ok(Message::Challenge(server)) = Message::parse(&line) else {
            panic!("expected a challenge, got {line:?}")
        };
        let client = Nonce::random().unwrap();
        let proof = prove(token, Role::Client, &server, &client);
        self.send(
            &Message::Auth {
                nonce: client,
                proof,
            }
            .encode(),
        )
        .await;
        let line = self.recv().await.expect("auth_ok");
        let Ok(Message::AuthOk(theirs)) = Message::parse(&line) else {
            panic!("expected auth_ok, got {line:?}")
        };
        assert!(verify(token, Role::Server, &server, &client, &theirs));
    }

    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// A child process that is killed (and reaped) if the test ends before it exits.
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Waits for the child to exit, polling; panics if it is still running after `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> std::process::ExitStatus {
        let t = std::time::Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                t.elapsed() < limit,
                "the child did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// promtool (Debian package `prometheus`) accepts `metrics` without a lint finding.
pub fn promtool_accepts(metrics: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, metrics).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian package prometheus) must be installed: run `make system-deps`");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{metrics}");
    assert!(said.trim().is_empty(), "promtool lint findings: {said}");
}

/// The DOM of `url` in headless Chromium once its scripts ran.
pub fn chromium_dom(url: &str, dir: &std::path::Path, name: &str) -> String {
    let dom_path = dir.join(format!("{name}-dom.html"));
    let profile = dir.join(format!("chromium-profile-{name}"));
    let child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium (Debian package chromium) must be installed: run `make system-deps`");
    let status = ChildGuard(child).wait_for(Duration::from_secs(60));
    assert!(status.success(), "chromium: {status}");
    std::fs::read_to_string(&dom_path).unwrap()
}

/// A fake fleet server for one connection on 127.0.0.1: answers `hello` with `hello:1.0:plan`
/// and `greeting` (the plan line(s), newline-terminated), `get_cid` with `set_cid:100`, `ready`
/// with `after_ready` and then closes its sending side; keeps reading until the peer closes
/// (each read bounded by 60 s) and returns every line it got.
pub async fn fake_fleet_server(
    greeting: String,
    after_ready: Vec<u8>,
) -> (u16, JoinHandle<Vec<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        let limit = Duration::from_secs(60);
        while let Ok(Ok(Some(line))) = tokio::time::timeout(limit, lines.next_line()).await {
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

/// A small plan for the tests: 1 MiB chunks, 2 MiB files, `run_time_s` seconds.
pub fn small_plan(run_time_s: f64) -> loadmon::plan::Plan {
    loadmon::plan::Plan {
        run_time_s,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 2 << 20,
        min_chunk_size_bytes: 1 << 20,
        ..loadmon::plan::Plan::default()
    }
}
