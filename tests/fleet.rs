//! Fleet mode end to end: the real `loadmon` binary (servers and workers as processes) and
//! in-process servers, on 127.0.0.1 with ephemeral ports and temporary directories. Every
//! process a test starts is stopped (killed and reaped if the test ends early), every wait is
//! bounded. The barrier's timing rules are unit-tested on a paused clock in
//! `src/server/barrier.rs` and `src/server/session.rs`; here they are checked on real sockets.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{small_plan, ChildGuard, Raw, TestServer};
use loadmon::blocking::{ClientHandle, ServerHandle, WorkerHandle};
use loadmon::client::ClientConfig;
use loadmon::events::EventKind;
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::{Error, Report, Status};

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

/// Bound on every wait (a machine under load is slow, a broken build must still fail).
const LIMIT: Duration = Duration::from_secs(60);

/// The same plan as server flags.
fn plan_args(plan: &Plan) -> Vec<String> {
    vec![
        "-r".into(),
        plan.run_time_s.to_string(),
        "-c".into(),
        loadmon::units::format_size(plan.chunk_size_bytes),
        "-f".into(),
        loadmon::units::format_size(plan.file_size_bytes),
        "--min-chunksize".into(),
        loadmon::units::format_size(plan.min_chunk_size_bytes),
        "--keep-files".into(),
        plan.keep_files.to_string(),
    ]
}

/// Polls `f` every 20 ms until it is true; panics after [`LIMIT`].
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `loadmon server` process; its stderr is collected as it comes.
struct ServerProc {
    child: ChildGuard,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: PathBuf,
    report: PathBuf,
}

impl ServerProc {
    /// Starts `loadmon server` with `args` on 127.0.0.1 (port 0 unless `args` say), writing
    /// its JSON report into `dir`.
    fn start(dir: &Path, args: &[String]) -> ServerProc {
        let report = dir.join(format!("report-{}.json", unique()));
        let stdout = dir.join(format!("server-{}.out", unique()));
        let mut cmd = Command::new(BIN);
        cmd.args(["server", "--no-log-files", "--no-live"])
            .args(["--report-json", report.to_str().unwrap()])
            .args(args);
        if !args.iter().any(|a| a == "--port") {
            cmd.args(["--port", "0"]);
        }
        let mut child = cmd
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loadmon server");
        let err = child.stderr.take().unwrap();
        let child = ChildGuard(child);
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut server = ServerProc {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            stderr,
            stdout,
            report,
        };
        let mut addr = None;
        wait_until("the server to listen", || {
            let s = server.stderr.lock().unwrap();
            addr = s
                .lines()
                .find_map(|l| l.strip_prefix("loadmon server listening on "))
                .map(|a| a.trim().parse().unwrap());
            addr.is_some()
        });
        server.addr = addr.unwrap();
        server
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn said(&self, text: &str) -> bool {
        self.stderr.lock().unwrap().contains(text)
    }

    /// Waits for the server to exit; its exit code, report and text report.
    fn finish(mut self) -> (i32, Report, String) {
        let status = self.child.wait_for(LIMIT);
        let stderr = self.stderr.lock().unwrap().clone();
        let json = std::fs::read_to_string(&self.report)
            .unwrap_or_else(|e| panic!("no report ({e}); server said:\n{stderr}"));
        let text = std::fs::read_to_string(&self.stdout).unwrap();
        (
            status.code().unwrap_or(-1),
            Report::from_json(&json).unwrap(),
            text,
        )
    }
}

/// A `loadmon worker` process with its output in files.
struct WorkerProc {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl WorkerProc {
    fn start(port: u16, out_dir: &Path, extra: &[&str]) -> WorkerProc {
        let n = unique();
        let parent = out_dir.parent().unwrap();
        let (out, err) = (
            parent.join(format!("worker-{n}.out")),
            parent.join(format!("worker-{n}.err")),
        );
        let child = Command::new(BIN)
            .args(["worker", "--no-log-files", "--port", &port.to_string()])
            .args(["--out-dir", out_dir.to_str().unwrap()])
            .args(["--heartbeat-period", "0.2", "--stats-period", "0.2"])
            .args(extra)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start loadmon worker");
        WorkerProc {
            child: ChildGuard(child),
            out,
            err,
        }
    }

    /// Waits for the worker to exit: (exit code, stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        let status = self.child.wait_for(LIMIT);
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&self.out).unwrap(),
            std::fs::read_to_string(&self.err).unwrap(),
        )
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.0.id()).unwrap();
        // SAFETY: sending a signal to our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }
}

fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The data files in `dir` (not the probe's), with their sizes.
fn data_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().starts_with("client_"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().len(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Seconds between the earliest and the latest client start in `report`.
fn start_spread_s(report: &Report) -> f64 {
    let starts: Vec<chrono::DateTime<chrono::FixedOffset>> = report
        .clients
        .iter()
        .map(|c| {
            chrono::DateTime::parse_from_rfc3339(c.start_time.as_deref().expect("started")).unwrap()
        })
        .collect();
    let first = starts.iter().min().unwrap();
    let last = starts.iter().max().unwrap();
    (*last - *first).num_microseconds().unwrap() as f64 / 1e6
}

#[test]
fn two_workers_wait_and_the_third_starts_all_of_them_with_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(1.0);
    let mut args = vec!["--expect-clients".to_string(), "3".into()];
    args.extend(plan_args(&plan));
    let server = ServerProc::start(dir.path(), &args);
    let outs: Vec<PathBuf> = (1..=3).map(|i| dir.path().join(format!("w{i}"))).collect();
    let first = WorkerProc::start(server.port(), &outs[0], &[]);
    let second = WorkerProc::start(server.port(), &outs[1], &[]);
    wait_until("two workers ready", || {
        server.said("waiting for the fleet: 2 of 3 ready")
    });
    // They wait: nothing starts, nothing is written, however long the third takes.
    std::thread::sleep(Duration::from_millis(700));
    assert!(!server.said("started running tests"));
    assert!(data_files(&outs[0]).is_empty() && data_files(&outs[1]).is_empty());
    let third = WorkerProc::start(server.port(), &outs[2], &[]);
    for w in [first, second, third] {
        let (code, out, err) = w.finish();
        assert_eq!(code, 0, "worker: {out}{err}");
        assert!(out.contains("1 run(s) passed, 0 failed"), "{out}");
        assert!(out.contains("plan 1 s, 1 MB chunks, 2 MB files"), "{out}");
    }
    let (code, report, text) = server.finish();
    assert_eq!(code, 0, "{text}");
    assert_eq!(report.clients.len(), 3);
    assert!(report.clients.iter().all(|c| c.status == Status::Pass));
    // The plan was taken: every worker announced and wrote files of the planned size.
    for c in &report.clients {
        assert_eq!((c.chunk_size_mb, c.file_size_mb), (1, 2));
        assert!(c.files_written >= 1, "{c:?}");
        assert!(c.protocol_version.is_some());
    }
    for out in &outs {
        let files = data_files(out);
        assert!(!files.is_empty() && files.len() <= 2, "{files:?}");
        assert!(files.iter().all(|(_, len)| *len == 2 << 20), "{files:?}");
    }
    let spread = start_spread_s(&report);
    assert!(spread <= 0.5, "start times {spread} s apart");
    let t = &report.total;
    assert_eq!((t.expected_clients, t.started_clients), (Some(3), Some(3)));
    assert!(t.common_start.is_some());
    assert!(!t.series.is_empty());
    let last = t.series.last().unwrap();
    assert_eq!(last.bytes_written, t.bytes_written);
    assert!(t.series.iter().all(|p| p.throughput_mb_s >= 0.0));
    // The seed's block, then the fleet's line.
    assert!(text.contains("Total of 3 client(s) ran. Data for each client:\n"));
    let fleet_line = text
        .lines()
        .find(|l| l.starts_with("Fleet: "))
        .expect("fleet line");
    assert!(
        fleet_line.starts_with("Fleet: 3 of 3 expected client(s) started together at "),
        "{fleet_line}"
    );
    assert!(text.trim_end().ends_with(fleet_line), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_client_joins_the_fleet_with_its_own_parameters_and_gets_no_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--expect-clients".to_string(), "2".into()];
    args.extend(plan_args(&small_plan(1.0)));
    let server = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || ServerProc::start(&d, &args)
    })
    .await
    .unwrap();
    // Exactly the seed client's lines.
    let mut seed = Raw::connect(server.addr).await;
    seed.send("get_cid").await;
    seed.send("ready").await;
    assert_eq!(seed.recv().await.as_deref(), Some("set_cid:100"));
    // Held at the barrier: nothing more comes while it is alone.
    let early = tokio::time::timeout(Duration::from_millis(700), seed.recv()).await;
    assert!(early.is_err(), "got {early:?} before the fleet started");
    let out = dir.path().join("w");
    let worker = WorkerProc::start(server.port(), &out, &[]);
    // The seed client gets run_tests, and never a plan or a hello.
    assert_eq!(seed.recv().await.as_deref(), Some("run_tests"));
    seed.send("file_stats:10:50").await;
    seed.send("start").await;
    seed.send("hb").await;
    seed.send("file_roll").await;
    seed.send("done").await;
    assert!(seed.closed().await);
    let (code, out_text, err) = tokio::task::spawn_blocking(move || worker.finish())
        .await
        .unwrap();
    assert_eq!(code, 0, "{out_text}{err}");
    let (code, report, text) = tokio::task::spawn_blocking(move || server.finish())
        .await
        .unwrap();
    assert_eq!(code, 0, "{text}");
    let seed_report = &report.clients[0];
    assert_eq!((seed_report.id, seed_report.status), (100, Status::Pass));
    assert!(seed_report.protocol_version.is_none());
    assert_eq!(
        (seed_report.chunk_size_mb, seed_report.file_size_mb),
        (10, 50)
    );
    let worker_report = &report.clients[1];
    assert_eq!(worker_report.status, Status::Pass);
    assert_eq!(
        (worker_report.chunk_size_mb, worker_report.file_size_mb),
        (1, 2)
    );
    assert!(start_spread_s(&report) <= 0.5);
    assert_eq!(report.total.started_clients, Some(2));
}

#[test]
fn the_start_timeout_starts_whoever_is_ready_and_a_latecomer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = ["--expect-clients", "3", "--start-timeout", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(plan_args(&small_plan(2.0)));
    let server = ServerProc::start(dir.path(), &args);
    let a = WorkerProc::start(server.port(), &dir.path().join("a"), &[]);
    let b = WorkerProc::start(server.port(), &dir.path().join("b"), &[]);
    wait_until("the start timeout", || {
        server.said("Starting the fleet: 2 of 3 expected client(s) (start timeout)")
    });
    // The third comes while the other two run: refused, no id, exit 1.
    let late = WorkerProc::start(server.port(), &dir.path().join("c"), &[]);
    let (code, out, err) = late.finish();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("run already started: 2 client(s) started together"),
        "{err}"
    );
    assert!(data_files(&dir.path().join("c")).is_empty());
    for w in [a, b] {
        let (code, out, err) = w.finish();
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, report, text) = server.finish();
    // Fewer started than expected: the run is not what was planned (exit 3).
    assert_eq!(code, 3, "{text}");
    assert_eq!(report.clients.len(), 2, "the latecomer got no id");
    assert!(report.clients.iter().all(|c| c.status == Status::Pass));
    let t = &report.total;
    assert_eq!((t.expected_clients, t.started_clients), (Some(3), Some(2)));
    assert!(
        text.contains("Fleet: 2 of 3 expected client(s) started together at "),
        "{text}"
    );
    assert!(text.contains("(start timeout); 2 PASS"), "{text}");
}

#[test]
fn a_stay_worker_runs_two_plans_on_one_port_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w");
    let mut args = vec!["--expect-clients".to_string(), "1".into()];
    args.extend(plan_args(&small_plan(1.0)));
    let first = ServerProc::start(dir.path(), &args);
    let port = first.port();
    let worker = WorkerProc::start(port, &out, &["--stay", "--retry-max", "0.3"]);
    let (code, report, text) = first.finish();
    assert_eq!(code, 0, "{text}");
    assert_eq!(report.clients[0].file_size_mb, 2);
    // The next run on the same port, another plan (3 MiB files), other ids.
    let mut args: Vec<String> = ["--port", &port.to_string(), "--first-client-id", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--expect-clients".to_string(), "1".into()]);
    args.extend(plan_args(&Plan {
        file_size_bytes: 3 << 20,
        ..small_plan(1.0)
    }));
    let second = ServerProc::start(dir.path(), &args);
    let (code, report, text) = second.finish();
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        (report.clients[0].id, report.clients[0].file_size_mb),
        (200, 3)
    );
    // Both runs' files are there, each of its plan's size.
    let files = data_files(&out);
    let sized = |prefix: &str, len: u64| {
        let of: Vec<_> = files
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .collect();
        !of.is_empty() && of.iter().all(|(_, l)| *l == len)
    };
    assert!(sized("client_100_", 2 << 20), "{files:?}");
    assert!(sized("client_200_", 3 << 20), "{files:?}");
    // It stays for a third run until stopped.
    std::thread::sleep(Duration::from_millis(300));
    assert!(worker.child.0.id() > 0);
    worker.signal(libc::SIGTERM);
    let (code, out_text, err) = worker.finish();
    assert_eq!(code, 0, "{out_text}{err}");
    assert!(
        out_text.contains("worker: 2 run(s) passed, 0 failed"),
        "{out_text}"
    );
}

#[test]
fn a_worker_whose_plan_cannot_run_here_is_failed_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    // Valid as a plan (the server checks the rules), but no host writes two 16 MiB files in
    // a millisecond: the worker's probe says so.
    let plan = Plan {
        run_time_s: 0.001,
        chunk_size_bytes: 16 << 20,
        file_size_bytes: 16 << 20,
        min_chunk_size_bytes: 1 << 20,
        ..Plan::default()
    };
    // The fleet waits for a ready worker; the start timeout ends the wait.
    let mut args: Vec<String> = ["--expect-clients", "1", "--start-timeout", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(plan_args(&plan));
    let server = ServerProc::start(dir.path(), &args);
    let worker = WorkerProc::start(server.port(), &dir.path().join("w"), &[]);
    let (code, out, err) = worker.finish();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("at least 2 must"), "{err}");
    let (code, report, text) = server.finish();
    assert_eq!(code, 3, "{text}");
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.reason
            .as_deref()
            .unwrap_or("")
            .contains("at least 2 must"),
        "{c:?}"
    );
    assert_eq!((c.chunk_size_mb, c.file_size_mb), (16, 16));
    assert_eq!(c.time_ran_s, 0.0);
    assert_eq!(report.total.started_clients, Some(0), "it never counted");
    assert!(
        text.contains("Fleet: none of 1 expected client(s) was ready by the start timeout;"),
        "{text}"
    );
}

#[test]
fn a_stay_worker_whose_plan_fails_does_not_rejoin_that_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan {
        run_time_s: 0.001,
        chunk_size_bytes: 16 << 20,
        file_size_bytes: 16 << 20,
        min_chunk_size_bytes: 1 << 20,
        ..Plan::default()
    };
    let mut args: Vec<String> = ["--expect-clients", "1", "--start-timeout", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(plan_args(&plan));
    let server = ServerProc::start(dir.path(), &args);
    // It comes back every 0.2 s at most, for 3 s: many chances to fill the report.
    let worker = WorkerProc::start(
        server.port(),
        &dir.path().join("w"),
        &["--stay", "--retry-max", "0.2"],
    );
    let (code, report, text) = server.finish();
    assert_eq!(code, 3, "{text}");
    assert_eq!(
        report.clients.len(),
        1,
        "one FAILED, not one per retry: {text}"
    );
    assert_eq!(report.clients[0].status, Status::Failed);
    worker.signal(libc::SIGTERM);
    let (code, out, err) = worker.finish();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("worker: 0 run(s) passed, 1 failed"), "{out}");
}

#[test]
fn plan_options_need_fleet_mode_and_are_bounded() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["server", "--no-log-files", "--port", "0"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["-r", "30", "--chunksize", "20"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "loadmon: invalid configuration: the plan options (run_time_s, chunk_size_bytes) set a \
         fleet's plan: they need --expect-clients"
    );
    let (code, err) = run(&["--expect-clients", "2", "-r", "1e300"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1e300") && err.contains("seconds"), "{err}");
    let (code, err) = run(&["--start-timeout", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--expect-clients"), "{err}");
    let (code, err) = run(&["--expect-clients", "6", "--max-clients", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("expect_clients (6) is more than max_clients (5)"),
        "{err}"
    );
    let (code, err) = run(&["--expect-clients", "2", "-c", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("plan: chunk size 5 MB is below the minimum of 10 MB"),
        "{err}"
    );
    let (code, err) = run(&["--expect-clients", "2", "--start-timeout", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("start_timeout must be positive"), "{err}");
    let (code, err) = run(&["--expect-clients", "0"]);
    assert_eq!(code, 2, "{err}");
    // The same bounds through the API.
    let fleet = |plan: Plan| ServerConfig {
        fleet: Some(FleetConfig::new(2, plan)),
        ..Default::default()
    };
    for plan in [
        Plan {
            run_time_s: 1e300,
            ..Plan::default()
        },
        Plan {
            run_time_s: f64::INFINITY,
            ..Plan::default()
        },
        Plan {
            file_size_bytes: u64::MAX,
            chunk_size_bytes: 10 << 20,
            ..Plan::default()
        },
    ] {
        assert!(fleet(plan).validate().unwrap_err().is_config(), "{plan:?}");
    }
    let mut c = fleet(Plan::default());
    if let Some(f) = c.fleet.as_mut() {
        f.start_timeout = Some(Duration::from_secs(u64::MAX));
    }
    assert!(c.validate().unwrap_err().is_config());
}

fn fleet_server(expect: usize, plan: Plan, extra: ServerConfig) -> ServerConfig {
    ServerConfig {
        port: 0,
        fleet: Some(FleetConfig::new(expect, plan)),
        ..extra
    }
}

fn worker_config(port: u16, out_dir: &Path) -> WorkerConfig {
    WorkerConfig {
        client: ClientConfig {
            port,
            heartbeat_period: Duration::from_millis(200),
            stats_period: Duration::from_millis(200),
            ..Default::default()
        },
        out_dir: out_dir.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_peer_that_takes_the_plan_and_never_says_ready_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(0.5);
    let mut config = fleet_server(
        2,
        plan,
        ServerConfig {
            heartbeat_timeout: Duration::from_millis(1500),
            ..Default::default()
        },
    );
    if let Some(f) = config.fleet.as_mut() {
        f.start_timeout = Some(Duration::from_secs(3));
    }
    let server = TestServer::start(config).await;
    let mut events = server.control.subscribe();
    // A peer that says it takes plans, gets one, and then sits there.
    let mut silent = Raw::connect(server.addr).await;
    silent.send("hello:1.0:plan").await;
    silent.send("get_cid").await;
    assert_eq!(silent.recv().await.as_deref(), Some("hello:1.0:plan"));
    let plan_line = silent.recv().await.unwrap();
    assert!(
        plan_line.starts_with("plan:run=")
            && plan_line.ends_with(
                ":runtime=0.5:chunksize=1:filesize=2:min_chunksize=1:sync=none:keep_files=2"
            ),
        "{plan_line}"
    );
    assert_eq!(silent.recv().await.as_deref(), Some("set_cid:100"));
    // One real worker: with the silent one the fleet would be 2, but it never said ready.
    let worker = Worker::new(worker_config(server.addr.port(), dir.path())).unwrap();
    let run = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .expect("the start timeout started the worker")
        .expect("the worker passed");
    assert_eq!(run.plan, plan);
    assert!(
        silent.closed().await,
        "the silent peer is timed out and closed"
    );
    let report = server.report().await;
    let by_id = |id: u32| report.clients.iter().find(|c| c.id == id).unwrap();
    assert_eq!(by_id(100).status, Status::TimedOut);
    assert_eq!(by_id(101).status, Status::Pass);
    assert_eq!(report.total.started_clients, Some(1));
    let mut started = Vec::new();
    while let Some(e) = tokio::time::timeout(LIMIT, events.next()).await.unwrap() {
        if let EventKind::FleetStarted { .. } = e.kind {
            started.push(e.kind);
        }
    }
    assert_eq!(
        started,
        [EventKind::FleetStarted {
            expected: 2,
            started: 1,
            timed_out: true
        }]
    );
}

#[tokio::test]
async fn a_plain_loadmon_client_waits_at_the_barrier_past_its_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(fleet_server(2, small_plan(0.3), ServerConfig::default())).await;
    let writer = FileWriter::new(FileWriterConfig {
        run_time_s: 0.3,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 1 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().join("plain"),
        ..Default::default()
    })
    .unwrap();
    let plain = ClientHandle::spawn(
        ClientConfig {
            port: server.addr.port(),
            handshake_timeout: Duration::from_millis(200),
            ..Default::default()
        },
        writer,
    )
    .unwrap();
    // Five handshake timeouts at the barrier.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!plain.is_finished());
    let worker = Worker::new(worker_config(server.addr.port(), &dir.path().join("w"))).unwrap();
    tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .expect("worker");
    let result = tokio::task::spawn_blocking(move || plain.join(Some(LIMIT)))
        .await
        .unwrap()
        .expect("the plain client ran");
    assert_eq!(result.client_id, 100);
    let report = server.report().await;
    assert!(report.clients.iter().all(|c| c.status == Status::Pass));
    // Its own parameters, not the plan.
    assert_eq!(report.clients[0].file_size_mb, 1);
    assert_eq!(report.clients[1].file_size_mb, 2);
}

#[test]
fn an_endless_start_timeout_is_served_and_stopped() {
    let mut config = fleet_server(3, small_plan(1.0), ServerConfig::default());
    if let Some(f) = config.fleet.as_mut() {
        f.start_timeout = Some(loadmon::server::MAX_DURATION);
    }
    let server = ServerHandle::start(config).unwrap();
    assert!(server.wait(Some(Duration::from_millis(300))).is_err());
    let report = server.stop().unwrap();
    assert!(report.stopped);
    assert_eq!(report.total.expected_clients, Some(3));
    assert_eq!(report.total.started_clients, None);
    assert!(report
        .to_text()
        .contains("Fleet: 3 client(s) expected, the fleet never started;"));
}

#[tokio::test]
async fn a_ready_client_that_leaves_before_the_start_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(fleet_server(2, small_plan(0.5), ServerConfig::default())).await;
    let control = server.control.clone();
    let ready = move || control.fleet().map_or(0, |f| f.ready);
    // A seed client is ready, then goes away.
    let mut gone = Raw::connect(server.addr).await;
    gone.send("get_cid").await;
    gone.send("ready").await;
    assert_eq!(gone.recv().await.as_deref(), Some("set_cid:100"));
    let until = Instant::now() + LIMIT;
    while ready() != 1 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gone.close().await;
    while ready() != 0 {
        assert!(Instant::now() < until, "the one that left still counts");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One worker is then not enough to start: it waits for a second.
    let w1 = WorkerHandle::spawn(worker_config(server.addr.port(), &dir.path().join("1"))).unwrap();
    while ready() != 1 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.control.fleet().unwrap().started, None);
    let w2 = WorkerHandle::spawn(worker_config(server.addr.port(), &dir.path().join("2"))).unwrap();
    for w in [w1, w2] {
        tokio::task::spawn_blocking(move || w.join(Some(LIMIT)).expect("worker"))
            .await
            .unwrap();
    }
    let report = server.report().await;
    let statuses: Vec<Status> = report.clients.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Status::Aborted, Status::Pass, Status::Pass]);
    assert_eq!(report.total.started_clients, Some(2));
}

#[tokio::test]
async fn a_malformed_plan_is_refused_by_the_worker_and_the_server_told_why() {
    let dir = tempfile::tempdir().unwrap();
    for (plan, why) in [
        (
            "plan:run=1:runtime=1e300:chunksize=1:filesize=2:min_chunksize=1:sync=none:keep_files=2",
            "invalid runtime \"1e300\"",
        ),
        (
            "plan:run=1:runtime=1:chunksize=1:filesize=2:min_chunksize=1:sync=none:keep_files=2:rm=rf",
            "plan: expected 8 field(s), got 9",
        ),
        (
            "plan:run=1:runtime=1:chunksize=1:filesize=2:min_chunksize=1:sync=maybe:keep_files=2",
            "invalid sync \"maybe\"",
        ),
    ] {
        let (port, seen) = common::fake_fleet_server(format!("{plan}\n"), Vec::new()).await;
        let worker = Worker::new(worker_config(port, dir.path())).unwrap();
        let e = tokio::time::timeout(LIMIT, worker.run_once())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains(why), "{e}");
        let seen = seen.await.unwrap();
        assert_eq!(seen[0], "hello:1.0:plan,ping");
        assert_eq!(seen[1], "get_cid");
        let last = seen.last().unwrap();
        assert!(
            last.starts_with("error:the plan from the server is not valid: protocol error: ")
                && last.contains(why),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|l| l == "ready" || l == "start"),
            "{seen:?}"
        );
        assert!(data_files(dir.path()).is_empty());
    }
}

#[test]
fn a_worker_leaves_a_server_without_a_plan_without_taking_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let e = WorkerHandle::spawn(worker_config(server.port(), dir.path()))
        .unwrap()
        .join(Some(LIMIT))
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused(ref r) if r.contains("not in fleet mode")),
        "{e}"
    );
    assert!(server.snapshot().is_empty(), "no id was taken");
    server.stop().unwrap();
}

#[test]
fn metrics_of_a_fleet_pass_promtool_and_count_the_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerHandle::start(fleet_server(
        2,
        small_plan(0.5),
        ServerConfig {
            http: Some("127.0.0.1:0".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    let base = format!("http://{}", server.http_addr().unwrap());
    let get = |path: &str| -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        agent
            .get(&format!("{base}{path}"))
            .call()
            .expect("HTTP")
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let w1 = WorkerHandle::spawn(worker_config(server.port(), &dir.path().join("1"))).unwrap();
    wait_until("one worker ready", || {
        server.control().fleet().is_some_and(|f| f.ready == 1)
    });
    let metrics = get("/metrics");
    for line in [
        "loadmon_fleet_expected_clients 2\n",
        "loadmon_fleet_ready_clients 1\n",
        "loadmon_fleet_started_clients 0\n",
        "loadmon_fleet_bytes_written_total 0\n",
        "loadmon_messages_total{command=\"plan\"} 0\n",
    ] {
        assert!(metrics.contains(line), "{line}{metrics}");
    }
    let server_json: serde_json::Value = serde_json::from_str(&get("/api/server")).unwrap();
    assert_eq!(server_json["fleet"]["ready"], 1);
    common::promtool_accepts(&metrics);
    let total: serde_json::Value = serde_json::from_str(&get("/api/total")).unwrap();
    assert_eq!(total["expected_clients"], 2);
    assert!(total["started_clients"].is_null(), "{total}");
    let w2 = WorkerHandle::spawn(worker_config(server.port(), &dir.path().join("2"))).unwrap();
    w1.join(Some(LIMIT)).unwrap();
    w2.join(Some(LIMIT)).unwrap();
    let report = server.wait(Some(LIMIT)).unwrap();
    assert_eq!(report.total.started_clients, Some(2));
    assert!(report.total.bytes_written > 0);
    assert!(report.to_html().contains("All clients together"));
}
