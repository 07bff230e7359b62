//! The file writer in a shared output directory where someone else plants names (a symbolic
//! link, a FIFO) where the client's next file goes, in a file system that hangs, and with a
//! probe that is stopped halfway. On 127.0.0.1 with ephemeral ports and temporary directories;
//! every wait is bounded. Planting is done as another user (nobody, uid 65534, through
//! `setpriv`) in a sticky world-writable directory, as on a shared scratch file system.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, ServerHandle, WorkerHandle};
use loadmon::client::ClientConfig;
use loadmon::error::ErrorKind;
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::WorkerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::Status;

use common::hung_fs::{self, HungFs};

/// Bound on every wait (a machine under load is slow, a broken build must still fail).
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `args` as nobody (uid and gid 65534, no supplementary groups).
fn as_nobody(args: &[&std::ffi::OsStr]) {
    let st = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .status()
        .expect("setpriv (util-linux)");
    assert!(st.success(), "as nobody: {args:?}");
}

/// A temporary directory others can enter, with a sticky world-writable `shared` directory in
/// it (like /tmp) and a `victim` file of root's outside it.
struct Shared {
    top: tempfile::TempDir,
}

impl Shared {
    fn new() -> Shared {
        let top = tempfile::tempdir().unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let shared = top.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::write(top.path().join("victim"), b"precious").unwrap();
        Shared { top }
    }

    fn dir(&self) -> PathBuf {
        self.top.path().join("shared")
    }

    fn victim(&self) -> PathBuf {
        self.top.path().join("victim")
    }

    /// Plants, as nobody, `what` (`ln -s <victim>` or `mkfifo`) at the name of client 100's
    /// first file for every second from now to `secs` seconds on (the name has the time in it).
    fn plant_first_file_names(&self, what: &str, secs: i64) -> Vec<PathBuf> {
        let now = chrono::Local::now();
        let names: Vec<PathBuf> = (-1..=secs)
            .map(|d| {
                let stamp = (now + chrono::TimeDelta::seconds(d)).format("%Y-%m-%d_%H.%M.%S");
                self.dir().join(format!("client_100_0_{stamp}"))
            })
            .collect();
        for name in &names {
            match what {
                "link" => as_nobody(&[
                    "ln".as_ref(),
                    "-s".as_ref(),
                    self.victim().as_os_str(),
                    name.as_os_str(),
                ]),
                _ => as_nobody(&["mkfifo".as_ref(), name.as_os_str()]),
            }
        }
        names
    }
}

fn writer(out_dir: &Path, run_time_s: f64) -> FileWriter {
    FileWriter::new(FileWriterConfig {
        run_time_s,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 1 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: out_dir.to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

fn client_config(port: u16) -> ClientConfig {
    ClientConfig {
        port,
        heartbeat_period: Duration::from_millis(200),
        stats_period: Duration::from_millis(200),
        ..Default::default()
    }
}

/// Runs one 60 s client in `dir` and returns its error and the server's report of it.
fn run_one_client(dir: &Path) -> (loadmon::Error, loadmon::report::ClientReport) {
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let client = ClientHandle::spawn(client_config(server.port()), writer(dir, 60.0)).unwrap();
    let t = Instant::now();
    let e = client
        .join(Some(LIMIT))
        .expect_err("the client cannot write where a name is planted");
    assert!(t.elapsed() < LIMIT, "{e}");
    let report = server
        .wait(Some(LIMIT))
        .expect("the server ends with its only client");
    (e, report.clients[0].clone())
}

/// The error names the planted path and says why; the server records the same (FAILED).
fn assert_refused_name(e: &loadmon::Error, c: &loadmon::report::ClientReport, planted: &[PathBuf]) {
    assert_eq!(e.kind(), ErrorKind::File, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("already taken"), "{msg}");
    assert!(
        planted
            .iter()
            .any(|p| msg.contains(&p.display().to_string())),
        "the message names the planted path: {msg}"
    );
    assert_eq!(c.status, Status::Failed, "{c:?}");
    assert!(
        c.reason
            .as_deref()
            .is_some_and(|r| r.contains("already taken")),
        "{c:?}"
    );
}

#[test]
fn a_link_planted_at_the_next_data_file_name_is_not_followed() {
    let s = Shared::new();
    let planted = s.plant_first_file_names("link", 15);
    let (e, c) = run_one_client(&s.dir());
    assert_refused_name(&e, &c, &planted);
    assert_eq!(
        std::fs::read(s.victim()).unwrap(),
        b"precious",
        "the link's target is untouched"
    );
    for p in &planted {
        assert!(
            std::fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{}",
            p.display()
        );
    }
}

#[test]
fn a_fifo_planted_at_the_next_data_file_name_fails_the_client_at_once() {
    let s = Shared::new();
    let planted = s.plant_first_file_names("fifo", 15);
    // Not blocked in open() for ever (the run time is 60 s): the client fails at its first file.
    let (e, c) = run_one_client(&s.dir());
    assert_refused_name(&e, &c, &planted);
    assert!(c.time_ran_s < 30.0, "{c:?}");
}

/// A fleet server with one worker's plan: 1 GiB chunks (a probe of seconds on most disks).
fn big_chunk_server() -> ServerHandle {
    let plan = Plan {
        run_time_s: 100_000.0,
        chunk_size_bytes: 1024 << 20,
        file_size_bytes: 2048 << 20,
        min_chunk_size_bytes: 1 << 20,
        ..Plan::default()
    };
    ServerHandle::start(ServerConfig {
        port: 0,
        fleet: Some(FleetConfig::new(1, plan)),
        ..Default::default()
    })
    .unwrap()
}

/// Threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

fn probe_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".loadmon_probe_"))
        })
        .collect()
}

/// Waits (bounded) until `cond` holds; whether it did.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn a_worker_cancelled_mid_probe_stops_the_probe_thread_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = big_chunk_server();
    let worker = WorkerHandle::spawn(WorkerConfig {
        client: client_config(server.port()),
        out_dir: dir.path().to_path_buf(),
        // The plan's 1 GiB chunks and 100,000 s are above the worker's default limits (256 MB,
        // 24 h), which would refuse the plan before any probe.
        max_chunk_mb: 4096,
        max_run_time: Duration::from_secs(200_000),
        ..Default::default()
    })
    .unwrap();
    assert!(
        eventually(LIMIT, || !probe_files(dir.path()).is_empty()),
        "the worker never started its probe"
    );
    std::thread::sleep(Duration::from_millis(100));
    worker.cancel();
    let e = worker.join(Some(LIMIT)).expect_err("cancelled");
    assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
    // The probe does not go on writing its 2 GiB on a thread of its own: its file is removed
    // and the worker's threads are gone at once.
    assert!(
        eventually(Duration::from_millis(1500), || probe_files(dir.path())
            .is_empty()
            && threads_named("loadmon-worker") == 0),
        "the probe still runs after the worker was cancelled: {:?}, {} thread(s)",
        probe_files(dir.path()),
        threads_named("loadmon-worker")
    );
    server.stop().unwrap();
}

#[test]
fn a_probe_that_shows_two_files_cannot_fit_ends_without_writing_its_whole_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    // 2 GiB chunks, 2 files in 0.5 s: a chunk write over 0.25 s already shows the rule fails.
    let e = FileWriter::new(FileWriterConfig {
        run_time_s: 0.5,
        chunk_size_bytes: 2048 << 20,
        file_size_bytes: 2048 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("at least 2 must"), "{e}");
    // Not the 4 GiB the two whole chunk writes would be (seconds): about twice 0.25 s.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(probe_files(dir.path()).is_empty());
}

/// The writer stuck in a file system that never answers (a hung NFS mount): cancelling the
/// client still ends it within a bound, the stuck thread left behind. Runs in a mount namespace
/// of its own (the inner test below, in this test binary started again under `unshare -m`).
#[test]
fn cancel_ends_a_client_whose_writer_hangs_in_the_file_system() {
    if !hung_fs::available() {
        eprintln!("skipped: needs root, /dev/fuse, unshare and nsenter");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = hung_fs::in_own_mount_namespace(&exe)
        .args([
            "--exact",
            "inner_cancel_ends_a_client_whose_writer_hangs",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOADMON_TEST_OWN_MOUNT_NS", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by cancel_ends_a_client_whose_writer_hangs_in_the_file_system in its own mount namespace"]
fn inner_cancel_ends_a_client_whose_writer_hangs() {
    assert_eq!(
        std::env::var("LOADMON_TEST_OWN_MOUNT_NS").as_deref(),
        Ok("1"),
        "mounts: only in a mount namespace of its own"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Validated on a working disk, then the disk hangs.
    let w = writer(&out, 60.0);
    let hung = HungFs::mount(std::process::id(), &out);
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let client = ClientHandle::spawn(client_config(server.port()), w).unwrap();
    assert!(
        eventually(LIMIT, || server
            .snapshot()
            .first()
            .is_some_and(|c| c.status == Status::Running)),
        "the client never started"
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    client.cancel();
    let r = client.join(Some(LIMIT));
    let e = r.expect_err("cancelled");
    assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let report = server.wait(Some(LIMIT)).unwrap();
    assert_ne!(
        report.clients[0].status,
        Status::Pass,
        "{}",
        report.to_text()
    );
    // The stuck call fails once the file system goes away; the thread then ends.
    drop(hung);
}

/// `loadmon client` whose writer hangs in a file system that never answers: SIGTERM still ends
/// it, 130, within the grace of the stuck write plus the runtime's (it used to wait for ever,
/// heartbeating).
#[test]
fn sigterm_ends_a_client_process_whose_writer_hangs_in_the_file_system() {
    if !hung_fs::available() {
        eprintln!("skipped: needs root, /dev/fuse, unshare and nsenter");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let child = hung_fs::in_own_mount_namespace(Path::new(env!("CARGO_BIN_EXE_loadmon")))
        .args([
            "client",
            "--no-log-files",
            "--port",
            &server.port().to_string(),
        ])
        .args(["--runtime", "60", "--chunksize", "1", "--filesize", "1"])
        .args(["--min-chunksize", "1", "--heartbeat-period", "0.2"])
        .args(["--out-dir", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = common::ChildGuard(child);
    assert!(
        eventually(LIMIT, || server
            .snapshot()
            .first()
            .is_some_and(|c| c.status == Status::Running)),
        "the client never started"
    );
    // From now on its next file hangs in open().
    let _hung = HungFs::mount(child.0.id(), &out);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    // SAFETY: signalling our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(libc::pid_t::try_from(child.0.id()).unwrap(), libc::SIGTERM) },
        0
    );
    let status = child.wait_for(LIMIT);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let mut err = String::new();
    use std::io::Read;
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("did not return within"), "{err}");
    let report = server.wait(Some(LIMIT)).unwrap();
    assert_ne!(
        report.clients[0].status,
        Status::Pass,
        "{}",
        report.to_text()
    );
}
