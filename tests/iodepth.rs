//! `--iodepth` end to end, as processes: a client keeping several writes in flight per stream
//! through io_uring, and the same client where a seccomp filter refuses io_uring (as a
//! container's default profile does): it writes one chunk at a time, says so once in its log,
//! and the report names the engine and why.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");

/// `loadmon server` writing its JSON report to `report`, and its port.
fn spawn_server(report: &Path) -> (ChildGuard, u16) {
    let mut child = Command::new(BIN)
        .args(["-q", "server", "--port", "0", "--no-log-files", "--no-live"])
        .args(["--report-json", report.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                let port = rest.trim_end_matches('.').rsplit(':').next().unwrap();
                let _ = tx.send(port.parse::<u16>().unwrap());
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(30)).expect("no port");
    (child, port)
}

/// A client of 2 streams at depth 4, O_DIRECT, 1 MiB chunks in 4 MiB files for 1 s, keeping
/// the last 2 files of each stream, its log in `dir/logs`.
fn client(port: u16, dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "client",
        "--port",
        &port.to_string(),
        "-r",
        "1",
        "-c",
        "1m",
        "-f",
        "4m",
    ])
    .args([
        "--min-chunksize",
        "1m",
        "--sync",
        "direct",
        "--jobs",
        "2",
        "--iodepth",
        "4",
    ])
    .args(["--keep-files", "2"])
    .args(["--out-dir", dir.join("data").to_str().unwrap()])
    .args(["--log-dir", dir.join("logs").to_str().unwrap()]);
    c
}

/// Makes `cmd`'s process refuse `io_uring_setup` with EPERM, as Docker's default seccomp
/// profile does: a seccomp filter installed between fork and exec.
fn refuse_io_uring(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // io_uring_setup: the same number on every architecture (the unified table from 424 on).
    const NR_IO_URING_SETUP: u32 = 425;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // A = seccomp_data.nr (offset 0)
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: NR_IO_URING_SETUP,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two system calls (no allocation,
    // no lock); `filter` is moved into it and outlives the calls.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `cmd` to its end (bounded), its exit code and stderr.
fn finish(cmd: &mut Command) -> (i32, String) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let status = child.wait_for(Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

/// The client's one log file.
fn client_log(dir: &Path) -> String {
    let logs: Vec<_> = std::fs::read_dir(dir.join("logs")).unwrap().collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap()
}

/// The files kept in `dir/data`: the last 2 of each stream, whole (4 MiB of the writer's
/// byte) and named for their stream; the report's streams add up to the client's figures.
fn check_files(dir: &Path, row: &loadmon::ClientReport) {
    let mut per_stream = [0u64; 2];
    for e in std::fs::read_dir(dir.join("data")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let stream: usize = name.split('_').nth(2).unwrap().parse().unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 4 << 20, "{name}");
        assert!(
            data.iter().all(|&b| b == 0x5a),
            "{name}: not the writer's bytes"
        );
        per_stream[stream] += 1;
    }
    assert_eq!(per_stream, [2, 2], "each stream keeps its last 2 files");
    assert_eq!(row.streams.len(), 2);
    let files: u64 = row.streams.iter().map(|s| s.files_written).sum();
    let bytes: u64 = row.streams.iter().map(|s| s.bytes_written).sum();
    assert_eq!((files, bytes), (row.files_written, row.bytes_written));
    assert!(row.bytes_written >= row.files_written * (4 << 20));
}

#[test]
fn a_client_keeps_its_depth_in_flight_through_io_uring() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let (mut server, port) = spawn_server(&json);
    let (code, err) = finish(&mut client(port, tmp.path()));
    assert_eq!(code, 0, "{err}");
    assert!(server.wait_for(Duration::from_secs(30)).success());
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report.clients[0];
    assert_eq!(row.status, loadmon::Status::Pass, "{:?}", row.reason);
    let engine = row.engine.as_deref().unwrap_or_default();
    assert!(engine.starts_with("io_uring, iodepth 4"), "{engine}");
    check_files(tmp.path(), row);
    let log = client_log(tmp.path());
    let said: Vec<&str> = log.lines().filter(|l| l.contains("engine: ")).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains("engine: io_uring, iodepth 4"), "{log}");
}

#[test]
fn where_io_uring_is_refused_the_client_writes_one_chunk_at_a_time_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let (mut server, port) = spawn_server(&json);
    let mut c = client(port, tmp.path());
    refuse_io_uring(&mut c);
    let (code, err) = finish(&mut c);
    assert_eq!(code, 0, "{err}");
    assert!(server.wait_for(Duration::from_secs(30)).success());
    let report = loadmon::Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report.clients[0];
    assert_eq!(row.status, loadmon::Status::Pass, "{:?}", row.reason);
    let engine = row.engine.as_deref().unwrap_or_default();
    assert!(
        engine.starts_with("sync") && engine.contains("not permitted"),
        "{engine}"
    );
    check_files(tmp.path(), row);
    // Said once in the client's log (two streams, one warning), naming the depth asked for.
    let log = client_log(tmp.path());
    let said: Vec<&str> = log.lines().filter(|l| l.contains("engine: ")).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("iodepth 4") && said[0].contains("not permitted"),
        "{log}"
    );
}
