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

/// `loadmon worker --max-chunk-mb/--max-run-time/--max-disk`: bad values exit 2 saying why;
/// sizes take units.
#[test]
fn worker_limit_flags_are_checked() {
    for (args, why) in [
        (
            &["--max-chunk-mb", "5000"][..],
            "max_chunk_mb must be from 1 to 4096, not 5000",
        ),
        (
            &["--max-chunk-mb", "0"],
            "max_chunk_mb must be from 1 to 4096, not 0",
        ),
        (&["--max-run-time", "0"], "max_run_time must be positive"),
        (
            &["--max-disk", "10kB"],
            "max_disk must be a size in MB, or with a unit",
        ),
        (&["--max-disk", "0"], "max_disk must be a size in MB"),
    ] {
        let (code, _, err) =
            run(&[&["worker", "--no-log-files", "--port", "1"][..], args].concat());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (code, out, _) = run(&["worker", "--help"]);
    assert_eq!(code, 0);
    for default in ["[default: 256]", "[default: 86400]", "[default: 10240]"] {
        assert!(out.contains(default), "{default}: {out}");
    }
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

/// SIGHUP (the terminal or the ssh session closed) stops the server as SIGTERM does: the
/// report is written, exit 3 (before: killed, exit 129, no report).
#[test]
fn sighup_writes_the_report_and_exits_3() {
    a_signal_writes_the_report_and_exits_3("-HUP");
}

/// A server started with SIGHUP ignored (`nohup`, `trap '' HUP`: detached on purpose) keeps
/// ignoring it: it runs on and serves, and SIGTERM still ends it with the report.
#[test]
fn a_server_started_with_sighup_ignored_runs_on_after_one() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let script = format!(
        "trap '' HUP; exec '{BIN}' server --port 0 --no-log-files --no-live --report-json '{}'",
        json.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                let _ = tx.send(rest.rsplit(':').next().unwrap().parse::<u16>().unwrap());
            }
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(20)).expect("port");
    let kill = |signal: &str| {
        let st = Command::new("kill")
            .args([signal, &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    kill("-HUP");
    // Still serving after it.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    std::io::Write::write_all(&mut s, b"get_cid\nready\nstart\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "set_cid:100\n", "{}", log.lock().unwrap());
    kill("-TERM");
    assert_eq!(wait_exit(&mut server), 3);
    let log = log_with(&log, "loadmon: stopped by SIGTERM");
    assert!(!log.contains("SIGHUP"), "{log}");
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.clients[0].reason.as_deref(), Some("server stopped"));
}

/// SIGHUP ends a running client as SIGTERM does: it says so and exits 130, and the server
/// records why (before: killed by the signal, nothing said).
#[test]
fn sighup_ends_a_client_as_sigterm_does() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let data = tmp.path().join("data");
    let (mut server, port) = spawn_server(&["--report-json", json.to_str().unwrap(), "-q"]);
    let mut args = client_args(port, &data);
    args[4] = "60".into(); // -r: runs until stopped
    assert_eq!(args[3], "-r");
    let mut client = ChildGuard(
        Command::new(BIN)
            .args(&args)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Running: its first data file is there.
    let t = std::time::Instant::now();
    while !std::fs::read_dir(&data).is_ok_and(|d| {
        d.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("client_"))
    }) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the client never wrote"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new("kill")
        .args(["-HUP", &client.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(wait_exit(&mut client), 130);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut client.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("loadmon: interrupted"), "{err}");
    assert_eq!(wait_exit(&mut server), 3);
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        report.clients[0].reason.as_deref(),
        Some("interrupted: client run cancelled")
    );
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

/// Waits (bounded) until the server's collected stderr contains `what`, and returns it.
fn log_with(log: &Mutex<String>, what: &str) -> String {
    let t = std::time::Instant::now();
    loop {
        let l = log.lock().unwrap().clone();
        if l.contains(what) {
            return l;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no {what:?} in:\n{l}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An IPv4-mapped loopback address (`::ffff:127.0.0.1`) is loopback: no "non-loopback address
/// without a token" warning for the protocol port nor for the HTTP listener.
#[test]
fn a_mapped_loopback_address_is_loopback() {
    let (mut server, _, log) = spawn_server_logged(&[
        "--host",
        "::ffff:127.0.0.1",
        "--http",
        "[::ffff:127.0.0.1]:0",
    ]);
    let st = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(wait_exit(&mut server), 3);
    // The last line the server writes: everything before it has been collected.
    let log = log_with(&log, "loadmon: stopped by SIGTERM");
    assert!(log.contains("listening on [::ffff:127.0.0.1]:"), "{log}");
    assert!(!log.contains("non-loopback"), "{log}");
}

/// One HTTP/1.0 GET of `path` with `Host: host` to `addr`: (status line, whole answer).
fn http_get(addr: &str, path: &str, host: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    (answer.lines().next().unwrap_or("").to_string(), answer)
}

/// `--http-allow-host NAME` (repeatable) names the host names the HTTP listener answers to
/// besides IP addresses and localhost; any other name gets 421, saying how to allow it. A value
/// that is no host name is a configuration error (exit 2).
#[test]
fn http_allow_host_names_the_names_the_listener_answers_to() {
    let (code, _, err) = run(&[
        "server",
        "--port",
        "0",
        "--no-log-files",
        "--http",
        "127.0.0.1:0",
        "--http-allow-host",
        "example.com:8080",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--http-allow-host"), "{err}");
    let (mut server, _, log) = spawn_server_logged(&[
        "--http",
        "127.0.0.1:0",
        "--http-allow-host",
        "loadmon.example",
        "--http-allow-host",
        "second.example",
    ]);
    let line = log_with(&log, "loadmon dashboard on http://");
    let addr = line
        .split("loadmon dashboard on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    for host in [
        "loadmon.example",
        "second.example:80",
        "127.0.0.1",
        "localhost",
    ] {
        let (status, answer) = http_get(&addr, "/api/server", host);
        assert!(status.contains(" 200 "), "{host}: {answer}");
    }
    let (status, answer) = http_get(&addr, "/api/report", "evil.example");
    assert!(status.contains(" 421 "), "{answer}");
    assert!(answer.contains("--http-allow-host"), "{answer}");
    let st = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(wait_exit(&mut server), 3);
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

/// `--help` of every command that takes a token never shows its value (LOADMON_TOKEN from the
/// environment), and says where a token is safer than on the command line.
#[test]
fn help_never_shows_the_token_and_offers_a_token_file() {
    let secret = "hunter2-very-secret";
    for cmd in ["server", "client", "worker"] {
        let out = Command::new(BIN)
            .args([cmd, "--help"])
            .env("LOADMON_TOKEN", secret)
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd}: {help}");
        assert!(!help.contains(secret), "{cmd} shows the token:\n{help}");
        assert!(help.contains("[env: LOADMON_TOKEN]"), "{cmd}: {help}");
        assert!(help.contains("--token-file <PATH>"), "{cmd}: {help}");
        assert!(help.contains("process list"), "{cmd}: {help}");
        assert!(help.contains("--allow-clear-token"), "{cmd}: {help}");
    }
}

/// Writes `text` to `name` in `dir` with `mode`; returns the path.
#[cfg(unix)]
fn token_file(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `--token-file`: the token is the file's line (its newline dropped); a file others may read,
/// an empty or missing file, and a second token (`--token`, LOADMON_TOKEN) are usage errors.
#[cfg(unix)]
#[test]
fn a_token_file_gives_the_token_and_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let good = token_file(tmp.path(), "token", "file-token\n", 0o600);
    let (mut server, port) = spawn_server(&["--token-file", good.to_str().unwrap(), "-q"]);
    // The client has it from the environment: the server's newline was dropped.
    let out = Command::new(BIN)
        .args(client_args(port, &tmp.path().join("data")))
        .arg("-q")
        .env("LOADMON_TOKEN", "file-token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(wait_exit(&mut server), 0);

    let open = token_file(tmp.path(), "open", "file-token\n", 0o644);
    let empty = token_file(tmp.path(), "empty", "\n", 0o600);
    let two_lines = token_file(tmp.path(), "two", "a\nb\n", 0o600);
    let missing = tmp.path().join("missing");
    let data = tmp.path().join("data");
    for (extra, env, want) in [
        (
            vec!["--token-file", open.to_str().unwrap()],
            None,
            "permissions 0644 are too open",
        ),
        (
            vec!["--token-file", empty.to_str().unwrap()],
            None,
            "it is empty",
        ),
        (
            vec!["--token-file", two_lines.to_str().unwrap()],
            None,
            "one line",
        ),
        (
            vec!["--token-file", missing.to_str().unwrap()],
            None,
            "cannot open it",
        ),
        (
            vec!["--token-file", good.to_str().unwrap(), "--token", "x"],
            None,
            "--token-file and --token both give a token",
        ),
        (
            vec!["--token-file", good.to_str().unwrap()],
            Some("x"),
            "--token-file and LOADMON_TOKEN (set in the environment) both give a token",
        ),
    ] {
        for cmd in ["server", "client", "worker"] {
            let mut c = Command::new(BIN);
            c.args([cmd, "--no-log-files"]);
            if cmd == "server" {
                c.args(["--port", "0"]);
            } else {
                c.args(["--port", "1", "--out-dir"]).arg(&data);
            }
            c.args(&extra);
            match env {
                Some(v) => c.env("LOADMON_TOKEN", v),
                None => c.env_remove("LOADMON_TOKEN"),
            };
            let out = c.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {extra:?}: {err}");
            assert!(err.contains(want), "{cmd} {extra:?}: {err}");
        }
    }
}

/// The verify flags: a bad value or a broken rule exits 2 saying which bound or rule; a
/// fleet server's plan carries them to its workers, and refuses them without a fleet.
#[test]
fn verify_flags_are_checked_and_travel_in_the_fleet_plan() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    for (args, why) in [
        (
            &["--verify-block", "3000"][..],
            "verify block of 3000 bytes: it must be a power of two from 512 bytes to 1048576 \
             bytes",
        ),
        (
            &["--verify", "sometimes"],
            "verify must be none, rollover or end, not \"sometimes\"",
        ),
        (
            &["--verify-continue"],
            "verify_continue needs a check of the data: set verify to rollover or end",
        ),
        (
            &["--verify", "rollover", "--verify-peer"],
            "verify_peer checks another client's files when the run ends: set verify to end",
        ),
        (
            &["--overwrite", "--keep-files", "all"],
            "keep_files must be a number, not all",
        ),
        (
            &[
                "--verify",
                "end",
                "-c",
                "6k",
                "--min-chunksize",
                "4k",
                "-f",
                "12k",
            ],
            "verify writes whole blocks of 4 KiB: chunk size 6 KiB and file size 12 KiB must \
             both be multiples of it",
        ),
    ] {
        let (code, _, err) = run(&[
            &["client", "--no-log-files", "--port", "1", "--out-dir", out][..],
            args,
        ]
        .concat());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (code, _, err) = run(&["server", "--no-log-files", "--port", "0", "--verify", "end"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("(verify) set a fleet's plan: they need --expect-clients"),
        "{err}"
    );
    // The plan a fleet server hands its workers carries the verify settings.
    let (_server, port) = spawn_server(&[
        "--expect-clients",
        "1",
        "--no-live",
        "-r",
        "2",
        "-c",
        "1",
        "--min-chunksize",
        "1",
        "-f",
        "2",
        "--verify",
        "rollover",
        "--verify-block",
        "64k",
        "--verify-continue",
        "--overwrite",
    ]);
    let mut peer = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    peer.write_all(b"hello:1.0:plan,ping\n").unwrap();
    let mut lines = BufReader::new(peer.try_clone().unwrap()).lines();
    let hello = lines.next().unwrap().unwrap();
    assert!(hello.starts_with("hello:"), "{hello}");
    let plan = lines.next().unwrap().unwrap();
    assert!(
        plan.starts_with("plan:run=")
            && plan.ends_with(
                ":keep_files=2:verify=rollover:verify_block=64k:verify_continue=1:overwrite=1"
            ),
        "{plan}"
    );
}
