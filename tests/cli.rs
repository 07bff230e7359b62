//! The `loadmon` command: exit codes, messages, a real server and client as processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
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

/// `--threads` follows the core's rule (`loadmon::config::check_server_threads`), with the
/// core's message.
#[test]
fn the_thread_count_is_checked_by_the_core_rule() {
    let max = loadmon::config::MAX_SERVER_THREADS;
    for n in [0, max + 1, 100_000] {
        let n = n.to_string();
        let (code, _, err) = run(&["server", "--threads", &n, "--no-log-files", "--port", "0"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!("threads must be from 1 to {max}, not {n}")),
            "{err}"
        );
    }
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
    let html = tmp.path().join("demo.html");
    let (code, out, err) = run(&[
        "demo",
        "--quick",
        "--no-log-files",
        "-q",
        "--out-dir",
        data.to_str().unwrap(),
        "--report-html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("Test status:   PASS").count(), 3, "{out}");
    assert!(
        out.contains(&format!("HTML report: {}", html.display())),
        "{out}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<tr><td>").count(), 3);
    assert_eq!(
        page.matches("class=\"series\"").count(),
        7,
        "the all-clients chart, then two charts of three clients"
    );
    assert_eq!(page.matches("data-client=\"all clients\"").count(), 1);
    assert!(!data.exists(), "the demo removes its data files");
}

/// Starts `loadmon server` and reads its port from its stderr.
fn spawn_server(extra: &[&str]) -> (ChildGuard, u16) {
    let (child, port, _) = spawn_server_logged(extra);
    (child, port)
}

/// As [`spawn_server`], also collecting everything the server writes on stderr.
fn spawn_server_logged(extra: &[&str]) -> (ChildGuard, u16, Arc<Mutex<String>>) {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
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
            sink.lock().unwrap().push_str(&format!("{line}\n"));
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
    (child, port, log)
}

/// The arguments of a short test client run against `port`.
fn client_args(port: u16, data: &std::path::Path) -> Vec<String> {
    [
        "client",
        "--port",
        &port.to_string(),
        "-r",
        "2",
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

#[test]
fn json_stream_on_stdout_status_lines_and_report_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, html) = (tmp.path().join("r.csv"), tmp.path().join("r.html"));
    let (mut server, port, log) = spawn_server_logged(&[
        "--json-stream",
        "-",
        "--report-csv",
        csv.to_str().unwrap(),
        "--report-html",
        html.to_str().unwrap(),
        "--status-interval",
        "0.2",
        "--no-live",
    ]);
    // Read the stream as it comes (thousands of file_rollover events: more than a pipe holds).
    let mut out = server.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let (code, _, err) = run(&client_args(port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(wait_exit(&mut server), 0);
    let stdout = reader.join().unwrap();
    // stdout is nothing but JSON lines, from the connection to the final report.
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "client_connected", "{kinds:?}");
    assert_eq!(kinds[1], "id_assigned");
    assert_eq!(*kinds.last().unwrap(), "report");
    for k in ["status_changed", "stats_sample", "file_rollover"] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    assert!(events
        .iter()
        .any(|e| e["event"] == "status_changed" && e["status"] == "PASS"));
    assert_eq!(
        events.last().unwrap()["report"]["clients"][0]["status"],
        "PASS"
    );
    // The text report went to stderr instead, and so did the status lines (with
    // --no-live none would be printed; here the JSON stream is on stdout, so no table).
    let log = log.lock().unwrap().clone();
    assert!(log.contains("    Test status:   PASS"), "{log}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv_text.starts_with("id,status,") && csv_text.contains("\n100,PASS,"),
        "{csv_text}"
    );
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.contains("<td>100</td>") && html_text.contains("<svg"));
}

#[test]
fn plain_status_lines_when_stdout_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, port, log) = spawn_server_logged(&["--status-interval", "0.2"]);
    let (code, _, err) = run(&client_args(port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(wait_exit(&mut server), 0);
    let log = log.lock().unwrap().clone();
    let status: Vec<&str> = log.lines().filter(|l| l.contains("client(s): ")).collect();
    assert!(status.len() >= 3, "{log}");
    assert!(
        status
            .iter()
            .any(|l| l.contains("1 client(s): 1 running, 0 pass")),
        "{log}"
    );
    // Plain lines: no cursor movement.
    assert!(
        !log.contains("\x1b[1A") && !log.contains("\x1b[2K"),
        "{log}"
    );
}

/// Runs `cmd` under `script`, which gives it a pseudo-terminal of type `term`.
fn in_a_terminal(cmd: &str, term: &str) -> std::process::Child {
    Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        // Set explicitly: CI runs without TERM.
        .env("TERM", term)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs a command in a pseudo-terminal")
}

/// A server and a 2 s client, each in a terminal of type `term`: what each printed.
fn terminal_session(term: &str, server_args: &str) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = ChildGuard(in_a_terminal(
        &format!("{BIN} server --port 0 --no-log-files {server_args}"),
        term,
    ));
    let out = server.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let screen = Arc::new(Mutex::new(String::new()));
    let sink = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut buf = Vec::new();
        let mut sent = false;
        while r
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let line = String::from_utf8_lossy(&buf).into_owned();
            buf.clear();
            if !sent {
                if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                    let port: String = rest
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let _ = tx.send(port.parse::<u16>().unwrap());
                    sent = true;
                }
            }
            sink.lock().unwrap().push_str(&line);
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server port");
    let args = client_args(port, &tmp.path().join("data")).join(" ");
    let mut client = ChildGuard(in_a_terminal(&format!("{BIN} {args} -q"), term));
    let mut client_stdout = client.0.stdout.take().unwrap();
    let client_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut client_stdout, &mut s);
        s
    });
    assert!(client.wait_for(Duration::from_secs(30)).success());
    let client_out = String::from_utf8_lossy(&client_reader.join().unwrap()).into_owned();
    assert_eq!(wait_exit(&mut server), 0);
    reader.join().unwrap();
    let screen = screen.lock().unwrap().clone();
    (screen, client_out)
}

#[test]
fn a_live_table_and_a_progress_bar_on_a_terminal() {
    let (screen, bar) = terminal_session("xterm-256color", "-q");
    // The table's header and a RUNNING row for the client, redrawn in place.
    assert!(screen.contains("client  status"), "{screen}");
    assert!(
        screen.contains("mem MiB") && screen.contains("hb age"),
        "{screen}"
    );
    assert!(screen.contains("100  RUNNING"), "{screen}");
    assert!(
        screen.contains("1 client(s): 1 running, 0 pass"),
        "{screen}"
    );
    assert!(screen.contains("Test status:   PASS"), "{screen}");
    // The client's bar: run time and MB/s.
    assert!(
        bar.contains("client 100 [") && bar.contains("MB/s"),
        "{bar}"
    );
}

#[test]
fn a_terminal_that_cannot_redraw_gets_plain_status_lines() {
    let (screen, bar) = terminal_session("dumb", "--status-interval 0.2");
    assert!(!screen.contains("hb age"), "{screen}");
    assert!(
        screen.contains("] 1 client(s): 1 running, 0 pass"),
        "{screen}"
    );
    assert!(screen.contains("Test status:   PASS"), "{screen}");
    assert!(!bar.contains("client 100 ["), "{bar}");
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
    let mut args = client_args(port, &tmp.path().join("data"));
    args.extend([
        "-q".into(),
        "--result-json".into(),
        result.display().to_string(),
    ]);
    let (code, out, err) = run(&args);
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

#[test]
fn a_json_stream_reader_that_never_reads_does_not_stall_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    // stdout is a pipe nobody reads: after 64 KiB the stream's writes block.
    let (mut server, port, log) = spawn_server_logged(&["--json-stream", "-"]);
    let (code, _, err) = run(&client_args(port, &tmp.path().join("data")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(wait_exit(&mut server), 0);
    let log = log.lock().unwrap().clone();
    assert!(log.contains("    Test status:   PASS"), "{log}");
}
