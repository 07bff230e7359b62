//! The `loadmon` command in hostile surroundings: a closed stdout, a FIFO nobody reads, bad
//! addresses and directories, a signal before any client, a server that sends escape
//! sequences, absurd limits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

/// Bound on every wait for a process.
const LIMIT: Duration = Duration::from_secs(30);

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run loadmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `loadmon server` on port 0 and what it wrote on stderr so far.
struct Server {
    child: ChildGuard,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `loadmon server --port 0 --no-log-files <extra>`; `keep_stdout: false` closes the
    /// read end of its stdout pipe at once (every write to it then fails with EPIPE).
    fn start(extra: &[&str], keep_stdout: bool) -> Server {
        let mut child = Command::new(BIN)
            .args(["server", "--port", "0", "--no-log-files"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loadmon server");
        if !keep_stdout {
            drop(child.stdout.take());
        }
        let stderr = child.stderr.take().expect("stderr");
        let child = ChildGuard(child);
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                    let port = rest.trim_end_matches('.').rsplit(':').next().unwrap();
                    let _ = tx.send(port.parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no port; stderr: {}", log.lock().unwrap()));
        Server {
            child,
            port,
            stderr: log,
        }
    }

    /// Waits (bounded) for the server to exit by itself: its exit code and its stderr.
    fn wait(&mut self) -> (i32, String) {
        let status = self.child.wait_for(LIMIT);
        // Let the stderr reader catch the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let log = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), log)
    }
}

/// The arguments of a short (1 s) test client against `port`.
fn client_args(port: u16, data: &Path) -> Vec<String> {
    [
        "client",
        "--port",
        &port.to_string(),
        "-r",
        "1",
        "-c",
        "1",
        "--min-chunksize",
        "1",
        "-f",
        "2",
        "--heartbeat-period",
        "0.1",
        "--stats-period",
        "0.2",
        "--out-dir",
        data.to_str().unwrap(),
        "--no-log-files",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn assert_no_panic(code: i32, stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(code, 101, "{stderr}");
}

#[test]
fn a_server_whose_stdout_is_closed_does_not_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let mut server = Server::start(&["--report-json", json.to_str().unwrap()], false);
    let (code, _, err) = run(&client_args(server.port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    let (code, log) = server.wait();
    assert_no_panic(code, &log);
    assert_eq!(code, 0, "{log}");
    assert!(json.exists());
}

#[test]
fn a_client_whose_stdout_is_closed_still_writes_its_result() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(&["-q"], true);
    let result = tmp.path().join("result.json");
    let mut args = client_args(server.port, &tmp.path().join("data"));
    args.extend(["--result-json".into(), result.display().to_string()]);
    let mut child = Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().unwrap();
    let mut client = ChildGuard(child);
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = client.wait_for(LIMIT).code().unwrap_or(-1);
    let err = reader.join().unwrap();
    assert_no_panic(code, &err);
    assert_eq!(code, 0, "{err}");
    let r: loadmon::client::ClientResult =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("result JSON")).unwrap();
    assert_eq!(r.client_id, 100);
    assert_eq!(server.wait().0, 0);
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success());
}

#[test]
fn a_json_stream_fifo_nobody_opens_does_not_block_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("events");
    mkfifo(&fifo);
    let json = tmp.path().join("report.json");
    let started = Instant::now();
    let mut server = Server::start(
        &[
            "--json-stream",
            fifo.to_str().unwrap(),
            "--report-json",
            json.to_str().unwrap(),
            "--handshake-timeout",
            "3",
        ],
        true,
    );
    let (code, _, err) = run(&client_args(server.port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    let (code, log) = server.wait();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("Test status:   PASS") || json.exists(),
        "{log}"
    );
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.clients[0].status, loadmon::Status::Pass);
    assert!(log.contains("no reader"), "the lost stream is said: {log}");
    // No 10 s wait for a stream writer stuck in open().
    assert!(started.elapsed() < Duration::from_secs(9), "{log}");
}

#[test]
fn a_json_stream_fifo_opened_late_gets_the_rest_of_the_events() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("events");
    mkfifo(&fifo);
    let mut server = Server::start(&["--json-stream", fifo.to_str().unwrap(), "-q"], true);
    // The reader opens the FIFO once the server runs.
    let path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(path).unwrap_or_default());
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, err) = run(&client_args(server.port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    let (code, log) = server.wait();
    assert_eq!(code, 0, "{log}");
    let text = reader.join().unwrap();
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["event"], "report", "{text}");
}

#[test]
fn an_unusable_http_address_exits_2_before_listening() {
    for bad in ["not-an-address", "127.0.0.1:99999", "127.0.0.1", ":8080x"] {
        let (code, _, err) = run(&["server", "--port", "0", "--no-log-files", "--http", bad]);
        assert_eq!(code, 2, "--http {bad}: {err}");
        assert!(!err.contains("listening on"), "{err}");
        assert!(err.contains("HOST:PORT"), "{err}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "demo",
        "--quick",
        "--no-log-files",
        "--http",
        "not-an-address",
        "--out-dir",
        tmp.path().join("d").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn an_unusable_out_dir_exits_2_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // Nothing listens there: had the client tried to connect, it would exit 1.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut args = client_args(port, &file.join("sub"));
    args.extend(["--connect-timeout".into(), "0.2".into()]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out-dir"), "{err}");
    assert!(!err.contains("connect 127.0.0.1"), "{err}");
}

#[test]
fn sigterm_before_any_client_says_so_and_exits_3() {
    let mut server = Server::start(&[], true);
    let st = Command::new("kill")
        .args(["-TERM", &server.child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, log) = server.wait();
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("loadmon: stopped by SIGTERM"), "{log}");
    assert!(log.contains("before any client"), "{log}");
}

#[test]
fn a_refusal_with_escape_sequences_reaches_the_terminal_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Read the client's handshake (up to `ready`), then refuse it.
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains("ready\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        s.write_all(b"refused:\x1b]0;pwned\x07bad\n").unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Until the client closes.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let (code, out, err) = run(&client_args(port, &tmp.path().join("data")));
    fake.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains('\x1b') && !out.contains('\x1b'), "{err:?}");
    assert!(!err.contains('\x07'), "{err:?}");
    assert!(
        err.contains("refused by the server: \\u{1b}]0;pwned\\u{7}bad"),
        "{err}"
    );
}

#[test]
fn absurd_limits_exit_2_without_a_panic() {
    for n in ["2305843009213693952", "1000001", "18446744073709551615"] {
        let (code, _, err) = run(&[
            "server",
            "--port",
            "0",
            "--no-log-files",
            "--max-clients",
            n,
        ]);
        assert_no_panic(code, &err);
        assert_eq!(code, 2, "--max-clients {n}: {err}");
        assert!(!err.contains("listening on"), "{err}");
    }
    for (flag, v) in [
        ("--heartbeat-timeout", "inf"),
        ("--heartbeat-timeout", "NaN"),
        ("--handshake-timeout", "-1"),
        ("--http-linger", "1e10"),
        ("--status-interval", "1e400"),
    ] {
        let (code, _, err) = run(&["server", "--port", "0", "--no-log-files", flag, v]);
        assert_no_panic(code, &err);
        assert_eq!(code, 2, "{flag} {v}: {err}");
        assert!(!err.contains("listening on"), "{err}");
    }
    for (flag, v) in [
        ("-r", "inf"),
        ("--heartbeat-period", "1000000001"),
        ("--stats-period", "-0.5"),
        ("--connect-timeout", "nan"),
    ] {
        let (code, _, err) = run(&["client", "--no-log-files", flag, v]);
        assert_no_panic(code, &err);
        assert_eq!(code, 2, "{flag} {v}: {err}");
    }
}
