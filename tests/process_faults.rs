//! Faults that need real processes: a client killed with SIGKILL, a client whose disk is full,
//! a server stopped (SIGSTOP) for longer than its heartbeat timeout.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ChildGuard, Raw, TestServer, WAIT};
use loadmon::server::ServerConfig;
use loadmon::Status;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

fn client_args(port: u16, run_time: &str, file_mb: &str, out_dir: &std::path::Path) -> Vec<String> {
    [
        "client",
        "--port",
        &port.to_string(),
        "-r",
        run_time,
        "-c",
        "1",
        "--min-chunksize",
        "1",
        "-f",
        file_mb,
        "--heartbeat-period",
        "0.1",
        "--stats-period",
        "0.2",
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--no-log-files",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn wait_child(child: &mut ChildGuard) -> std::process::Output {
    let t = Instant::now();
    loop {
        if child.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(t.elapsed() < WAIT, "child did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = std::process::Output {
        status: child.0.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut e) = child.0.stderr.take() {
        e.read_to_end(&mut out.stderr).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_run_is_aborted_and_its_files_stay_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let port = server.addr.port();
    let mut victim = ChildGuard(
        Command::new(BIN)
            .args(client_args(port, "60", "2", &tmp.path().join("victim")))
            .spawn()
            .unwrap(),
    );
    // Wait until the victim has written something, then start the healthy client.
    let t = Instant::now();
    while server
        .control
        .snapshot()
        .first()
        .is_none_or(|c| c.files_written < 2)
    {
        assert!(t.elapsed() < WAIT, "the victim never wrote a file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut healthy = ChildGuard(
        Command::new(BIN)
            .args(client_args(port, "1", "2", &tmp.path().join("healthy")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    victim.0.kill().unwrap(); // SIGKILL: no goodbye, no done
    let files_before_kill = server.control.snapshot()[0].files_written;
    let out = wait_child(&mut healthy).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = server.report().await;
    let (v, h) = (&report.clients[0], &report.clients[1]);
    assert_eq!(v.status, Status::Aborted);
    assert_eq!(v.reason.as_deref(), Some("connection closed before done"));
    assert!(
        v.files_written >= files_before_kill && v.files_written >= 2,
        "{v:?}"
    );
    assert!(
        v.bytes_written >= v.files_written * 2 * 1024 * 1024,
        "{v:?}"
    );
    assert_eq!(h.status, Status::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_client_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(ServerConfig::default()).await;
    let args = client_args(server.addr.port(), "5", "4", &tmp.path().join("data"))
        .into_iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // RLIMIT_FSIZE of 3 MiB (6144 blocks of 512 bytes): the probe (2 x 1 MiB) fits, the first
    // 4 MiB file does not. The write fails with EFBIG, like a disk filling up.
    let script = format!("ulimit -f 6144 && exec '{BIN}' {args}");
    let mut child = ChildGuard(
        Command::new("sh")
            .args(["-c", &script])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = wait_child(&mut child).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("loadmon: write ") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = server.report().await;
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Failed);
    let reason = c.reason.as_deref().unwrap();
    assert!(
        reason.contains("write ") && reason.contains("File too large"),
        "{reason}"
    );
}

/// Sends `signal` (`-STOP`, `-CONT`) to `pid` with kill(1).
fn kill(signal: &str, pid: u32) {
    let st = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {signal} {pid}");
}

/// A server stopped (SIGSTOP: a VM pause, a stall) for twice its heartbeat timeout while its
/// clients keep sending heartbeats, then continued (SIGCONT), three times in a row: no client
/// is TIMED OUT, every one ends PASS (exit 0). Before the fix, on each resume every deadline
/// fired before the heartbeats waiting in the sockets were read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_longer_than_the_heartbeat_timeout_times_out_no_healthy_client() {
    const CLIENTS: usize = 3;
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let mut server = ChildGuard(
        Command::new(BIN)
            .args(["server", "--port", "0", "--no-log-files", "--no-live"])
            .args(["--heartbeat-timeout", "1.5", "--max-clients", "3"])
            .arg("--report-json")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its stderr is read to the end on a thread (a full pipe would block the server).
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                let _ = tx.send(rest.trim().parse::<std::net::SocketAddr>().unwrap());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let addr = rx.recv_timeout(WAIT).expect("the server's address");
    let pid = server.0.id();

    // Each client: heartbeats every 0.3 s until told to finish, then `done`.
    let (finish, _) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = Raw::connect(addr).await;
        c.seed_handshake().await;
        c.send("start").await;
        let mut finish = finish.subscribe();
        clients.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    _ = tick.tick() => c.send("hb").await,
                    _ = finish.changed() => break,
                }
            }
            c.send("done").await;
            c.closed().await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        kill("-STOP", pid);
        tokio::time::sleep(Duration::from_secs(3)).await;
        kill("-CONT", pid);
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    finish.send(true).unwrap();
    // (A client closed by the server panics on its next send: the report says why.)
    let mut ended_cleanly = Vec::new();
    for c in clients {
        ended_cleanly.push(matches!(tokio::time::timeout(WAIT, c).await, Ok(Ok(true))));
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_for(WAIT);
        (status, log.join().unwrap())
    })
    .await
    .unwrap();
    let (status, log) = status;
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.clients.len(), CLIENTS, "{log}");
    for c in &report.clients {
        assert_eq!(c.status, Status::Pass, "{c:?}\n{log}");
    }
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(ended_cleanly, [true; CLIENTS]);
}
