//! The `loadmon` command: exit codes, messages, a real server and client as processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run loadmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_errors_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let (code, _, err) = run(&["client", "-c", "5", "--out-dir", out, "--no-log-files"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "loadmon: invalid configuration: chunk size 5 MB is below the minimum of 10 MB"
    );
    let (code, _, err) = run(&["client", "-c", "20", "-f", "10", "--out-dir", out]);
    assert_eq!(code, 2);
    assert!(
        err.contains("chunk size 20 MB is larger than file size 10 MB"),
        "{err}"
    );
    let (code, _, err) = run(&["client", "--sync", "sometimes"]);
    assert_eq!(code, 2);
    assert!(err.contains("sync must be none, file or direct"), "{err}");
    let (code, _, _) = run(&[
        "server",
        "--max-clients",
        "0",
        "--no-log-files",
        "--port",
        "0",
    ]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["server", "--port", "notaport"]);
    assert_eq!(code, 2);
}

#[test]
fn an_unreachable_server_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let (code, _, err) = run(&[
        "client",
        "--port",
        &port,
        "--connect-timeout",
        "0.3",
        "-c",
        "1",
        "--min-chunksize",
        "1",
        "-f",
        "2",
        "-r",
        "2",
        "--out-dir",
        tmp.path().to_str().unwrap(),
        "--no-log-files",
        "-q",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("loadmon: connect 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn the_quick_demo_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, out, err) = run(&[
        "demo",
        "--quick",
        "--no-log-files",
        "-q",
        "--out-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("Test status:   PASS").count(), 3, "{out}");
    assert!(!data.exists(), "the demo removes its data files");
}

/// Starts `loadmon server` and reads its port from its stderr.
fn spawn_server(extra: &[&str]) -> (ChildGuard, u16) {
    let mut child = Command::new(BIN)
        .args(["server", "--port", "0", "--no-log-files"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                let port = rest
                    .trim_end_matches('.')
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse::<u16>();
                let _ = tx.send(port.unwrap());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server port");
    (child, port)
}

fn wait_exit(child: &mut ChildGuard) -> i32 {
    child.wait_for(Duration::from_secs(30)).code().unwrap_or(-1)
}

#[test]
fn server_and_client_processes_run_a_test() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let (mut server, port) = spawn_server(&["--report-json", json.to_str().unwrap(), "-q"]);
    let result = tmp.path().join("result.json");
    let (code, out, err) = run(&[
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
        tmp.path().join("data").to_str().unwrap(),
        "--no-log-files",
        "-q",
        "--result-json",
        result.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("client 100: "), "{out}");
    assert_eq!(wait_exit(&mut server), 0);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut server.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("  Client 100\n    Test status:   PASS\n"),
        "{stdout}"
    );
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.clients[0].status, loadmon::Status::Pass);
    let r: loadmon::client::ClientResult =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r.files_written, report.clients[0].files_written);
}

#[test]
fn sigterm_writes_the_report_and_exits_3() {
    a_signal_writes_the_report_and_exits_3("-TERM");
}

#[test]
fn sigint_writes_the_report_and_exits_3() {
    a_signal_writes_the_report_and_exits_3("-INT");
}

fn a_signal_writes_the_report_and_exits_3(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let (mut server, port) = spawn_server(&["--report-json", json.to_str().unwrap(), "-q"]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut s, b"get_cid\nready\nstart\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "set_cid:100\n");
    let st = Command::new("kill")
        .args([signal, &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(wait_exit(&mut server), 3);
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.clients[0].status, loadmon::Status::Aborted);
    assert_eq!(report.clients[0].reason.as_deref(), Some("server stopped"));
}
