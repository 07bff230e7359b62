//! Fleet mode against hostile or broken peers: a worker facing a server that sends odd plans,
//! floods it or never answers, and a fleet server facing odd clients. On 127.0.0.1 with
//! ephemeral ports and temporary directories; every wait is bounded.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use loadmon::client::ClientConfig;
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};

/// Bound on every wait (a machine under load is slow, a broken build must still fail).
const LIMIT: Duration = Duration::from_secs(60);

fn worker_config(port: u16, out_dir: &Path) -> WorkerConfig {
    WorkerConfig {
        client: ClientConfig {
            port,
            heartbeat_period: Duration::from_millis(200),
            stats_period: Duration::from_millis(200),
            connect_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(2),
            ..Default::default()
        },
        out_dir: out_dir.to_path_buf(),
        ..Default::default()
    }
}

/// A listener whose accept queue is full (backlog 0, one connection queued and never
/// accepted): the kernel drops further SYNs, as a host that is down or firewalled does.
async fn black_hole() -> (TcpListener, tokio::net::TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let filler = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    (listener, filler)
}

#[tokio::test]
async fn a_server_whose_syns_are_dropped_is_given_up_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (listener, _filler) = black_hole().await;
    let port = listener.local_addr().unwrap().port();
    let worker = Worker::new(worker_config(port, dir.path())).unwrap();
    let t = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(20), worker.run_once())
        .await
        .expect("connect_timeout 0.5 s bounds the attempt, not the kernel's 2 minutes")
        .unwrap_err();
    assert!(matches!(e, Error::Net { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("connect 127.0.0.1:{port} (retried for 0.5 s)")),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

const PLAN: &str =
    "plan:run=1:runtime=0.5:chunksize=1:filesize=2:min_chunksize=1:sync=none:keep_files=2\n";

#[tokio::test]
async fn a_server_flooding_junk_lines_does_not_flood_the_workers_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // 20,000 lines the worker ignores, while it waits for the fleet's start.
    let flood = "hb\n".repeat(20_000).into_bytes();
    let (port, seen) = common::fake_fleet_server(PLAN.to_string(), flood).await;
    let mut config = worker_config(port, &dir.path().join("out"));
    config.client.log_dir = Some(logs.clone());
    let worker = Worker::new(config).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected(_)), "{e:?}");
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(seen.iter().any(|l| l == "ready"), "{seen:?}");
    let mut log = String::new();
    for f in std::fs::read_dir(&logs).unwrap() {
        log.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    let ignored = log.lines().filter(|l| l.contains("ignored")).count();
    assert!(
        ignored <= 100,
        "{ignored} log lines about ignored lines: a server can fill the worker's disk"
    );
    assert!(
        log.contains("more lines from the server ignored"),
        "the suppressed lines are counted: {log}"
    );
}

/// `plan:` with `fields` replacing the good plan's (key=value pairs, `:`-separated).
fn plan_with(changes: &[(&str, &str)]) -> String {
    let mut fields: Vec<(String, String)> = PLAN
        .trim_end()
        .strip_prefix("plan:")
        .unwrap()
        .split(':')
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    for (k, v) in changes {
        match fields.iter_mut().find(|(key, _)| key == k) {
            Some(f) => f.1 = v.to_string(),
            None => fields.push((k.to_string(), v.to_string())),
        }
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("plan:{}\n", body.join(":"))
}

#[tokio::test]
async fn a_plan_with_edge_numbers_is_refused_by_the_worker_before_it_allocates_or_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: Vec<(String, &str)> = vec![
        // Parsed, then refused by the file writer's rules (no chunk buffer is made).
        (
            plan_with(&[("chunksize", "0"), ("min_chunksize", "0")]),
            "chunk size must be at least 512 bytes, not 0 MB",
        ),
        (
            plan_with(&[("chunksize", "2"), ("filesize", "1")]),
            "chunk size 2 MB is larger than file size 1 MB",
        ),
        (
            plan_with(&[("chunksize", "1073741824"), ("filesize", "1073741824")]),
            "above the maximum of 4096 MB",
        ),
        (
            plan_with(&[("min_chunksize", "50")]),
            "chunk size 1 MB is below the minimum of 50 MB",
        ),
        (plan_with(&[("runtime", "1e-300")]), "at least 1 ns"),
        (plan_with(&[("keep_files", "0")]), "keep_files"),
        // Not a plan at all.
        (
            plan_with(&[("chunksize", "1000000000000000000")]),
            "larger than 1 PiB",
        ),
        (plan_with(&[("chunksize", "-1")]), "invalid chunksize"),
        (plan_with(&[("runtime", "NaN")]), "invalid runtime"),
        (plan_with(&[("runtime", "1e300")]), "invalid runtime"),
        (plan_with(&[("runtime", "0")]), "invalid runtime"),
        (plan_with(&[("sync", "turbo")]), "invalid sync"),
        (PLAN.replace("run=1", "runtime=2"), "key given twice"),
        (
            PLAN.replace(":keep_files=2", ""),
            "expected 8 field(s), got 7",
        ),
        (
            PLAN.replace("run=1", "run=99999999999999999999"),
            "invalid run",
        ),
    ];
    for (plan, why) in cases {
        let (port, seen) = common::fake_fleet_server(plan.clone(), Vec::new()).await;
        let worker = Worker::new(worker_config(port, &out)).unwrap();
        let e = tokio::time::timeout(LIMIT, worker.run_once())
            .await
            .unwrap_or_else(|_| panic!("the worker hangs on {plan}"))
            .unwrap_err();
        assert!(
            matches!(e, Error::Config(_) | Error::Protocol(_)),
            "{plan}: {e:?}"
        );
        assert!(e.to_string().contains(why), "{plan}: {e}");
        drop(worker);
        let seen = seen.await.unwrap();
        let last = seen.last().unwrap();
        assert!(
            last.starts_with("error:") && last.contains(why),
            "{plan}: the server is told why: {seen:?}"
        );
        assert!(!seen.iter().any(|l| l == "ready"), "{plan}: {seen:?}");
        let files: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(files.is_empty(), "{plan}: {files:?}");
    }
}

#[tokio::test]
async fn run_tests_without_a_plan_or_an_over_long_plan_line_end_the_attempt_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    // run_tests where the plan should be: ignored; no plan within the handshake timeout.
    let (port, seen) = common::fake_fleet_server("run_tests\n".into(), Vec::new()).await;
    let worker = Worker::new(worker_config(port, dir.path())).unwrap();
    let t = Instant::now();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(e.to_string().contains("no plan from the server"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(30));
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(
        !seen.iter().any(|l| l == "ready" || l == "start"),
        "{seen:?}"
    );
    // A plan line longer than the worker's line bound (4 KiB).
    let long = format!("{}{}\n", PLAN.trim_end(), ":x".repeat(4000));
    let (port, _seen) = common::fake_fleet_server(long, Vec::new()).await;
    let worker = Worker::new(worker_config(port, dir.path())).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("longer than"), "{e}");
}

#[tokio::test]
async fn a_second_plan_or_a_plan_after_run_tests_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // After ready: another plan (other run, other sizes), then run_tests, then a plan again.
    let other = plan_with(&[("run", "2"), ("chunksize", "2"), ("filesize", "4")]);
    let after_ready = format!("{other}run_tests\n{other}").into_bytes();
    let (port, seen) = common::fake_fleet_server(PLAN.to_string(), after_ready).await;
    let worker = Worker::new(worker_config(port, dir.path())).unwrap();
    let result = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap();
    drop(worker);
    let seen = seen.await.unwrap();
    // The server closed right after its script: the run ends early, but with the first plan.
    let e = result.unwrap_err();
    assert!(
        matches!(e, Error::Disconnected(_) | Error::Net { .. }),
        "{e:?}"
    );
    assert!(seen.iter().any(|l| l == "file_stats:1:2"), "{seen:?}");
    assert!(
        !seen.iter().any(|l| l.starts_with("file_stats:2")),
        "{seen:?}"
    );
}

#[test]
fn a_fleet_larger_than_the_ids_the_server_may_hand_out_is_a_configuration_error() {
    use loadmon::plan::Plan;
    use loadmon::server::{FleetConfig, ServerConfig};
    let fleet = |n: usize| Some(FleetConfig::new(n, Plan::default()));
    // Five clients expected, three ids to give: the fleet could never start.
    let e = ServerConfig {
        max_clients: 5,
        max_ids: 3,
        fleet: fleet(5),
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("max_ids"), "{e}");
    // The id space ends at 4294967295: one id left.
    let e = ServerConfig {
        first_client_id: u32::MAX,
        fleet: fleet(3),
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(
        e.is_config() && e.to_string().contains("first_client_id"),
        "{e}"
    );
    // Exactly enough is fine.
    for ok in [
        ServerConfig {
            max_ids: 3,
            fleet: fleet(3),
            ..Default::default()
        },
        ServerConfig {
            first_client_id: u32::MAX - 2,
            fleet: fleet(3),
            ..Default::default()
        },
    ] {
        ok.validate().unwrap();
    }
}

mod server_side {
    use super::common::{Raw, TestServer};
    use super::*;
    use loadmon::server::{FleetConfig, ServerConfig};
    use loadmon::Status;

    fn fleet(expect: usize) -> ServerConfig {
        ServerConfig {
            port: 0,
            heartbeat_timeout: Duration::from_secs(30),
            fleet: Some(FleetConfig::new(expect, common::small_plan(0.5))),
            ..Default::default()
        }
    }

    async fn id_of(c: &mut Raw) -> u32 {
        c.send("get_cid").await;
        let set = c.recv().await.unwrap();
        set.strip_prefix("set_cid:").unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn one_client_more_than_expected_is_refused_with_the_reason_and_the_fleet_runs() {
        let server = TestServer::start(fleet(2)).await;
        let mut c = Vec::new();
        for _ in 0..3 {
            let mut r = Raw::connect(server.addr).await;
            id_of(&mut r).await;
            c.push(r);
        }
        for r in &mut c[..2] {
            r.send("ready").await;
        }
        for r in &mut c[..2] {
            assert_eq!(r.recv().await.as_deref(), Some("run_tests"));
        }
        c[2].send("ready").await;
        let refused = c[2].recv().await.unwrap();
        assert!(
            refused.starts_with("refused:run already started: 2 client(s) started together"),
            "{refused}"
        );
        assert!(c[2].closed().await);
        for r in &mut c[..2] {
            r.send("start").await;
            r.send("done").await;
        }
        let report = server.report().await;
        assert_eq!(report.total.started_clients, Some(2));
        let statuses: Vec<Status> = report.clients.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [Status::Pass, Status::Pass, Status::Aborted]);
    }

    #[tokio::test]
    async fn a_client_that_says_start_and_done_before_the_fleet_starts_is_not_counted_as_run() {
        let server = TestServer::start(fleet(2)).await;
        let mut early = Raw::connect(server.addr).await;
        id_of(&mut early).await;
        early.send("ready").await;
        early.send("start").await;
        early.send("done").await;
        assert!(early.closed().await);
        let mut w = Vec::new();
        for _ in 0..2 {
            let mut r = Raw::connect(server.addr).await;
            id_of(&mut r).await;
            r.send("ready").await;
            w.push(r);
        }
        for r in &mut w {
            assert_eq!(r.recv().await.as_deref(), Some("run_tests"));
            r.send("start").await;
            r.send("done").await;
        }
        let report = server.report().await;
        // It never got run_tests: not RUNNING before the fleet, not PASS.
        let early = &report.clients[0];
        assert_eq!(early.status, Status::Aborted, "{}", report.to_text());
        assert_eq!(
            early.reason.as_deref(),
            Some("done before the fleet started")
        );
        assert_eq!(early.start_time, None);
        assert_eq!(report.total.started_clients, Some(2));
        let passed = report
            .clients
            .iter()
            .filter(|c| c.status == Status::Pass)
            .count();
        assert_eq!(passed, 2);
    }
}

/// A `loadmon worker` in a child process, writing into `out`, that has connected to the
/// returned listener's first connection and said hello; `wrap` makes its command (the binary
/// as is, or under `unshare -m`).
#[cfg(target_os = "linux")]
async fn worker_process(
    out: &Path,
    wrap: impl FnOnce(&Path) -> std::process::Command,
) -> (
    common::ChildGuard,
    tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    use std::process::Stdio;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = wrap(Path::new(env!("CARGO_BIN_EXE_loadmon")))
        .args(["worker", "--no-log-files", "--port", &port.to_string()])
        .args(["--out-dir", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = common::ChildGuard(child);
    let (stream, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let (r, w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    assert_eq!(
        lines.next_line().await.unwrap().as_deref(),
        Some("hello:1.0:plan,ping")
    );
    (child, lines, w)
}

/// Waits (bounded, off the runtime) for `child` to exit; its status and standard error.
#[cfg(target_os = "linux")]
async fn exit_of(mut child: common::ChildGuard) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let status = child.wait_for(Duration::from_secs(20));
        let mut err = String::new();
        use std::io::Read;
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    })
    .await
    .unwrap()
}

/// A FIFO planted where the plan's probe file goes (its first in this process): the probe
/// never opens it (it would block there for ever), the worker tells the server why it cannot
/// run (FAILED) and exits 1 at once.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_fifo_planted_at_the_probe_file_name_fails_the_worker_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (child, mut lines, mut w) =
        worker_process(&out, |p: &Path| std::process::Command::new(p)).await;
    let fifo = out.join(format!(".loadmon_probe_{}_0", child.0.id()));
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    w.write_all(format!("hello:1.0:plan\n{PLAN}").as_bytes())
        .await
        .unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("get_cid"));
    w.write_all(b"set_cid:100\n").await.unwrap();
    let error = tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("error:") {
                return line;
            }
        }
        panic!("the worker left without saying why");
    })
    .await
    .expect("the worker is blocked: no error within the limit");
    assert!(
        error.contains(".loadmon_probe_") && error.contains("already taken"),
        "{error}"
    );
    let t = Instant::now();
    let (status, err) = exit_of(child).await;
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("already taken"), "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the planted FIFO is left alone"
    );
}

/// SIGTERM while the plan's probe is stuck in a file system that does not answer (a hung NFS
/// mount, made with FUSE in the worker's own mount namespace): the worker exits within its
/// grace, 130, saying so.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sigterm_while_the_probe_hangs_in_the_file_system_still_stops_the_worker() {
    if !common::hung_fs::available() {
        eprintln!("skipped: needs root, /dev/fuse, unshare and nsenter");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (child, mut lines, mut w) =
        worker_process(&out, common::hung_fs::in_own_mount_namespace).await;
    let pid = child.0.id();
    // The worker checked its out dir before it connected: from now on the disk hangs.
    let _hung = common::hung_fs::HungFs::mount(pid, &out);
    w.write_all(format!("hello:1.0:plan\n{PLAN}").as_bytes())
        .await
        .unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("get_cid"));
    w.write_all(b"set_cid:100\n").await.unwrap();
    // The worker is in its probe now (it sends hb meanwhile).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    // SAFETY: signalling our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(libc::pid_t::try_from(pid).unwrap(), libc::SIGTERM) },
        0
    );
    let (status, err) = exit_of(child).await;
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: while checking the plan"),
        "{err}"
    );
    assert!(err.contains("did not finish"), "{err}");
}

/// A server that plans a new run for every connection, sends `run_tests` and closes at once:
/// every run fails as soon as it starts. A staying worker must back off between such runs as
/// it does between failed connections, not come back ten times a second for ever.
#[tokio::test]
async fn a_stay_worker_backs_off_from_runs_that_keep_failing_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut accepted = Vec::new();
        for run in 1..=5u32 {
            let Ok(Ok((stream, _))) = tokio::time::timeout(LIMIT, listener.accept()).await else {
                break;
            };
            accepted.push(Instant::now());
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
                let reply = match line.split(':').next().unwrap_or("") {
                    "hello" => format!(
                        "hello:1.0:plan\n{}",
                        PLAN.replace("run=1:", &format!("run={run}:"))
                    ),
                    "get_cid" => "set_cid:100\n".to_string(),
                    "ready" => "run_tests\n".to_string(),
                    _ => String::new(),
                };
                if w.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
                if line == "ready" {
                    break;
                }
            }
            // Gone right after the start.
        }
        // The worker comes back once more after the fifth run: it is between runs (in the
        // handshake, not in a run) when the test stops it. Held open until then.
        let back = tokio::time::timeout(LIMIT, listener.accept()).await;
        (accepted, back)
    });
    let mut config = worker_config(port, &dir.path().join("out"));
    config.stay = true;
    config.retry_max = Duration::from_millis(800);
    let worker = Worker::new(config).unwrap();
    let cancel = worker.cancel_token();
    let run = tokio::spawn(async move { worker.run().await });
    let (accepted, back) = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(
        matches!(back, Ok(Ok(_))),
        "the worker did not come back after the fifth run"
    );
    cancel.cancel();
    let summary = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap();
    assert!(summary.is_ok(), "{summary:?}");
    assert_eq!(accepted.len(), 5, "the worker kept coming back");
    // Pauses of 0.1, 0.2, 0.4 and 0.8 s (capped by retry_max) between the five runs: the
    // last gap holds at least the 0.8 s pause (a reset backoff made it about 0.1 s).
    let last_gap = accepted[4] - accepted[3];
    assert!(
        last_gap >= Duration::from_millis(750),
        "the worker came back {last_gap:?} after a run that failed at once; gaps: {:?}",
        accepted.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
}

/// The process's peak resident memory, MiB (Linux: `VmHWM`).
#[cfg(target_os = "linux")]
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// The plan of the issue: 4,096 MB chunks, 1 PiB files, keep every file, 10^9 s. The file
/// writer's own bounds let it through; the worker's local limits (defaults) refuse it before a
/// chunk is allocated or a byte written, and the server hears why. Then plans that break one
/// limit each, and one that fits in no file system.
#[tokio::test]
async fn a_plan_beyond_the_workers_own_limits_is_refused_with_the_reason_and_nothing_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let hostile = plan_with(&[
        ("runtime", "1e9"),
        ("chunksize", "4096"),
        ("filesize", "1073741824"),
        ("keep_files", "all"),
    ]);
    let cases: Vec<(String, &str)> = vec![
        (
            hostile,
            "the plan's chunk size 4096 MB is above this worker's limit of 256 MB (max_chunk_mb",
        ),
        (
            plan_with(&[("chunksize", "257"), ("filesize", "300")]),
            "above this worker's limit of 256 MB (max_chunk_mb",
        ),
        (
            plan_with(&[("runtime", "1e9")]),
            "the plan's run time 1000000000 s is above this worker's limit of 86400 s \
             (max_run_time)",
        ),
        (
            plan_with(&[("runtime", "86401")]),
            "limit of 86400 s (max_run_time)",
        ),
        // Two whole files at least: 2 PiB.
        (
            plan_with(&[("filesize", "1073741824")]),
            "the plan can occupy 2147483648 MB in",
        ),
        (
            plan_with(&[("filesize", "6000")]),
            "above this worker's limit of 10240 MB (max_disk_mb)",
        ),
    ];
    for (plan, why) in cases {
        let (port, seen) = common::fake_fleet_server(plan.clone(), Vec::new()).await;
        let worker = Worker::new(worker_config(port, &out)).unwrap();
        let e = tokio::time::timeout(LIMIT, worker.run_once())
            .await
            .unwrap_or_else(|_| panic!("the worker hangs on {plan}"))
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{plan}: {e:?}");
        assert!(e.to_string().contains(why), "{plan}: {e}");
        drop(worker);
        let seen = seen.await.unwrap();
        let last = seen.last().unwrap();
        assert!(
            last.starts_with("error:") && last.contains(why),
            "{plan}: the server is told why: {seen:?}"
        );
        assert!(!seen.iter().any(|l| l == "ready"), "{plan}: {seen:?}");
        let files: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(files.is_empty(), "{plan}: {files:?}");
    }
    // A plan that is within max_disk_mb but not within the space free on out_dir's file
    // system (no disk has 2 PiB free).
    let plan = plan_with(&[("filesize", "1073741824")]);
    let (port, seen) = common::fake_fleet_server(plan, Vec::new()).await;
    let mut config = worker_config(port, &out);
    config.max_disk_mb = loadmon::units::MAX_SIZE_LIMIT_MB;
    let worker = Worker::new(config).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("MB are free there"), "{e}");
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(
        seen.last().unwrap().contains("MB are free there"),
        "{seen:?}"
    );
    // Nothing of the size of a hostile chunk was ever held (the tests of this binary write
    // 1 MiB chunks).
    #[cfg(target_os = "linux")]
    assert!(
        peak_rss_mb() < 200,
        "peak RSS {} MiB: a chunk of the plan was allocated",
        peak_rss_mb()
    );
}

/// keep_files=all: the disk space is what the run time fills at the rate the probe measured,
/// checked after the probe (which writes and removes its own file).
#[tokio::test]
async fn keep_all_is_refused_when_the_run_time_fills_more_than_max_disk_at_the_probes_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // 60 s of 2 MiB files: more than 5 files fill 10 MiB at any rate above 0.2 MiB/s.
    let plan = plan_with(&[("runtime", "60"), ("keep_files", "all")]);
    let (port, seen) = common::fake_fleet_server(plan, Vec::new()).await;
    let mut config = worker_config(port, &out);
    config.max_disk_mb = 10;
    let worker = Worker::new(config).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("keep_files=all: the ")
            && text.contains("whole file(s) the probe's rate fills in 60 s")
            && text.ends_with("above this worker's limit of 10 MB (max_disk_mb)"),
        "{text}"
    );
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(seen.last().unwrap().contains("(max_disk_mb)"), "{seen:?}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// The refusal reaches the server's report (FAILED, with the reason); the same plan within
/// the worker's limits runs and passes.
#[tokio::test]
async fn a_plan_beyond_a_limit_is_failed_in_the_report_and_one_within_the_limits_runs() {
    use loadmon::server::{FleetConfig, ServerConfig};
    use loadmon::Status;
    let dir = tempfile::tempdir().unwrap();
    let plan = loadmon::plan::Plan {
        chunk_size_bytes: 2 << 20,
        file_size_bytes: 4 << 20,
        ..common::small_plan(0.5)
    };
    let fleet = || ServerConfig {
        port: 0,
        fleet: Some(FleetConfig::new(1, plan)),
        ..Default::default()
    };
    let server = common::TestServer::start(fleet()).await;
    let mut config = worker_config(server.addr.port(), dir.path());
    config.max_chunk_mb = 1;
    let worker = Worker::new(config).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("limit of 1 MB (max_chunk_mb"), "{e}");
    let report = server.stop().await;
    assert_eq!(report.clients.len(), 1, "{}", report.to_text());
    assert_eq!(report.clients[0].status, Status::Failed);
    let reason = report.clients[0].reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("the plan's chunk size 2 MB is above this worker's limit of 1 MB"),
        "{reason}"
    );
    // Within the limits (the defaults): it runs.
    let server = common::TestServer::start(fleet()).await;
    let worker = Worker::new(worker_config(server.addr.port(), dir.path())).unwrap();
    let run = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .expect("a plan within the limits runs");
    assert_eq!(run.plan, plan);
    let report = server.report().await;
    assert_eq!(
        report.clients[0].status,
        Status::Pass,
        "{}",
        report.to_text()
    );
}

#[test]
fn the_workers_limits_are_checked_when_it_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let ok = worker_config(1, dir.path());
    assert_eq!(
        (ok.max_chunk_mb, ok.max_run_time, ok.max_disk_mb),
        (256, Duration::from_secs(86_400), 10_240)
    );
    for (bad, name) in [
        (
            WorkerConfig {
                max_chunk_mb: 0,
                ..ok.clone()
            },
            "max_chunk_mb",
        ),
        (
            WorkerConfig {
                max_chunk_mb: 4097,
                ..ok.clone()
            },
            "max_chunk_mb",
        ),
        (
            WorkerConfig {
                max_run_time: Duration::ZERO,
                ..ok.clone()
            },
            "max_run_time",
        ),
        (
            WorkerConfig {
                max_run_time: Duration::from_secs(1_000_000_001),
                ..ok.clone()
            },
            "max_run_time",
        ),
        (
            WorkerConfig {
                max_disk_mb: 0,
                ..ok.clone()
            },
            "max_disk_mb",
        ),
        (
            WorkerConfig {
                max_disk_mb: u64::MAX,
                ..ok.clone()
            },
            "max_disk_mb",
        ),
    ] {
        let e = Worker::new(bad).unwrap_err();
        assert!(e.is_config() && e.to_string().contains(name), "{e}");
    }
}

/// A fleet server for one connection that offers `ping`: `hello:1.0:plan,ping` and the plan,
/// `set_cid:100`; after `ready`, every `ping` is answered `pong` for `pong_for` (on the test's
/// clock); then, with `close`, it closes, else it goes silent and keeps the connection open
/// (a hung server, or a host gone without a FIN) until the worker closes it. Returns the lines.
async fn pinging_server(
    pong_for: Duration,
    close: bool,
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        let mut ready_at: Option<tokio::time::Instant> = None;
        let limit = Duration::from_secs(600);
        while let Ok(Ok(Some(line))) = tokio::time::timeout(limit, lines.next_line()).await {
            let answering = ready_at.is_some_and(|t| t.elapsed() < pong_for);
            let reply = match line.split(':').next().unwrap_or("") {
                "hello" => format!("hello:1.0:plan,ping\n{PLAN}"),
                "get_cid" => "set_cid:100\n".to_string(),
                "ready" => {
                    ready_at = Some(tokio::time::Instant::now());
                    String::new()
                }
                "ping" if answering => "pong\n".to_string(),
                "ping" if close => break,
                _ => String::new(),
            };
            seen.push(line);
            if !reply.is_empty() && w.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        seen
    });
    (port, task)
}

/// A server that goes silent after the worker said `ready` (the socket stays open: a hung
/// server process, or its host gone without a FIN) is given up within the heartbeat period
/// plus the handshake timeout; a server that answers the pings keeps the worker waiting.
#[tokio::test(start_paused = true)]
async fn a_ready_worker_gives_up_on_a_server_that_stops_answering_its_pings() {
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = pinging_server(Duration::ZERO, false).await;
    let worker = Worker::new(worker_config(port, &dir.path().join("out"))).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .expect("the ready worker waits for ever on a silent server")
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(
        e.to_string().contains(
            "the server said nothing for 2.2 s while this worker waited for the fleet's start \
             (it pings every 0.2 s)"
        ),
        "{e}"
    );
    drop(worker);
    let seen = seen.await.unwrap();
    assert_eq!(seen[0], "hello:1.0:plan,ping");
    let ready = seen.iter().position(|l| l == "ready").expect("ready");
    let pings = seen[ready..].iter().filter(|l| *l == "ping").count();
    // One every 0.2 s for the 2.2 s of silence.
    assert!((10..=11).contains(&pings), "{pings} pings: {seen:?}");

    // Answered for a minute, then the server closes: the worker waited the whole minute.
    let (port, seen) = pinging_server(Duration::from_secs(60), true).await;
    let worker = Worker::new(worker_config(port, &dir.path().join("out"))).unwrap();
    let t = tokio::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(600), worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected(_)), "{e:?}");
    assert!(t.elapsed() >= Duration::from_secs(60), "{:?}", t.elapsed());
    drop(worker);
    let pings = seen.await.unwrap().iter().filter(|l| *l == "ping").count();
    assert!(pings >= 290, "{pings}");
}

/// A server that does not offer `ping` (one from before it): the worker does not ping and
/// waits as long as the server keeps the connection.
#[tokio::test(start_paused = true)]
async fn a_worker_does_not_ping_a_server_that_did_not_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = common::fake_fleet_server(PLAN.to_string(), Vec::new()).await;
    let worker = Worker::new(worker_config(port, &dir.path().join("out"))).unwrap();
    let e = tokio::time::timeout(LIMIT, worker.run_once())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected(_)), "{e:?}");
    drop(worker);
    let seen = seen.await.unwrap();
    assert!(!seen.iter().any(|l| l == "ping"), "{seen:?}");
}

/// The server's side: a worker that said `hello:…:ping` gets `pong` for each `ping` while it
/// waits at the barrier, and one whose pings stop (its host died) is TIMED OUT and leaves the
/// barrier; a seed client at the barrier is not held to a heartbeat.
#[tokio::test(start_paused = true)]
async fn a_waiting_worker_whose_pings_stop_is_timed_out_and_leaves_the_barrier() {
    use common::{Raw, TestServer};
    use loadmon::server::{FleetConfig, ServerConfig};
    use loadmon::Status;
    let server = TestServer::start(ServerConfig {
        port: 0,
        heartbeat_timeout: Duration::from_secs(3),
        fleet: Some(FleetConfig::new(3, common::small_plan(0.5))),
        ..Default::default()
    })
    .await;
    let mut seed = Raw::connect(server.addr).await;
    seed.send("get_cid").await;
    assert_eq!(seed.recv().await.as_deref(), Some("set_cid:100"));
    seed.send("ready").await;
    let mut w = Raw::connect(server.addr).await;
    w.send("hello:1.0:plan,ping").await;
    assert_eq!(w.recv().await.as_deref(), Some("hello:1.0:plan,ping"));
    assert!(w.recv().await.unwrap().starts_with("plan:"));
    w.send("get_cid").await;
    assert_eq!(w.recv().await.as_deref(), Some("set_cid:101"));
    w.send("ready").await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        w.send("ping").await;
        assert_eq!(w.recv().await.as_deref(), Some("pong"));
    }
    assert_eq!(server.control.fleet().unwrap().ready, 2);
    // Silence: after the heartbeat timeout the worker is gone from the barrier.
    assert!(w.closed().await, "the silent worker is closed");
    assert_eq!(server.control.fleet().unwrap().ready, 1);
    // The seed client waited all along, without a heartbeat.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(server.control.fleet().unwrap().ready, 1);
    let report = server.stop().await;
    let by_id = |id: u32| report.clients.iter().find(|c| c.id == id).unwrap();
    assert_eq!(by_id(101).status, Status::TimedOut);
    assert_eq!(
        by_id(101).reason.as_deref(),
        Some("no ping for 3.0 s while waiting for the fleet's start")
    );
    assert_eq!(by_id(100).status, Status::Aborted, "stopped, not timed out");
}

/// Waits (bounded) until `n` clients are ready at the server's barrier.
async fn until_counted(control: &loadmon::server::ServerControl, n: usize) {
    for _ in 0..1000 {
        if control.fleet().is_some_and(|f| f.ready == n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} client(s) never ready at the barrier");
}

/// The TCP timers of this host's established connections matching `filter` (`ss -tno`).
#[cfg(target_os = "linux")]
fn tcp_timers(filter: &[&str]) -> String {
    let out = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .args(filter)
        .output()
        .expect("run ss (iproute2)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`tcp_timers`] once every line sent is acknowledged (until then the timer shown is the
/// retransmission's), bounded.
#[cfg(target_os = "linux")]
async fn idle_timers(filter: &[&str]) -> String {
    let mut timers = String::new();
    for _ in 0..100 {
        timers = tcp_timers(filter);
        if !timers.contains("timer:(on,") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    timers
}

/// TCP keepalive on both ends, so that a peer whose host vanished without a FIN is noticed
/// where nothing is sent: the server's connection to a seed client waiting at the barrier,
/// and a worker waiting for the start of a server without `ping`. Checked on the sockets
/// (`ss` shows a keepalive timer of at most 10 s on an idle connection).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn both_ends_of_a_connection_keep_it_alive_with_tcp_keepalive() {
    use common::{Raw, TestServer};
    use loadmon::server::{FleetConfig, ServerConfig};
    // ss writes 9.5 s as `9.500ms`, 10 s as `10sec`, 0.5 s as `500ms`, 2 h as `120min`.
    let seconds = |v: &str| -> Option<f64> {
        if v.contains("min") {
            return None;
        }
        if let Some(s) = v.strip_suffix("sec") {
            return s.parse().ok();
        }
        let ms = v.strip_suffix("ms")?;
        match ms.split_once('.') {
            Some((s, ms)) => Some(s.parse::<f64>().ok()? + ms.parse::<f64>().ok()? / 1000.0),
            None => Some(ms.parse::<f64>().ok()? / 1000.0),
        }
    };
    let keepalive = |timers: &str| {
        timers.lines().count() == 1
            && timers
                .split("timer:(keepalive,")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .and_then(seconds)
                .is_some_and(|s| s <= 10.0)
    };
    // The server's end of a seed client's connection, waiting at the barrier.
    let server = TestServer::start(ServerConfig {
        port: 0,
        fleet: Some(FleetConfig::new(2, common::small_plan(0.5))),
        ..Default::default()
    })
    .await;
    let mut seed = Raw::connect(server.addr).await;
    seed.send("get_cid").await;
    assert_eq!(seed.recv().await.as_deref(), Some("set_cid:100"));
    seed.send("ready").await;
    let port = format!(":{}", server.addr.port());
    until_counted(&server.control, 1).await;
    let timers = idle_timers(&["sport", "=", &port]).await;
    assert!(keepalive(&timers), "server side: {timers}");
    // The test's raw client has none: the timer is the server's.
    assert!(!tcp_timers(&["dport", "=", &port]).contains("keepalive"));
    server.stop().await;

    // The worker's end, waiting for the start of a server that does not ping.
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let worker = Worker::new(worker_config(port, &dir.path().join("out"))).unwrap();
    let cancel = worker.cancel_token();
    let run = tokio::spawn(async move { worker.run_once().await });
    let (stream, _) = listener.accept().await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        let reply = match line.split(':').next().unwrap_or("") {
            "hello" => format!("hello:1.0:plan\n{PLAN}"),
            "get_cid" => "set_cid:100\n".to_string(),
            _ => String::new(),
        };
        w.write_all(reply.as_bytes()).await.unwrap();
        if line == "ready" {
            break;
        }
    }
    let port = format!(":{port}");
    let timers = idle_timers(&["dport", "=", &port]).await;
    assert!(keepalive(&timers), "worker side: {timers}");
    cancel.cancel();
    let e = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap();
    assert!(matches!(e, Err(Error::Interrupted(_))), "{e:?}");
}
