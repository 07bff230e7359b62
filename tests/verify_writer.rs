//! Verified writes end to end, in-process (a server and file writer clients over loopback):
//! an undamaged run reports 0 errors over every block; data damaged between write and check
//! (through the writer's test-only pause hook, `LOADMON_TEST_VERIFY_PAUSE`) is found at the
//! right offset with the right class by the writer's own check (`verify = rollover`, `end`,
//! `verify_peer`) and the client ends FAILED with the finding as its reason, and
//! `loadmon verify` finds the same on the same files; `verify_continue` carries on and still
//! ends FAILED; a seed server sees an ordinary client.
//!
//! The pause hook is read from the environment, which is the process's: the tests here take
//! turns ([`ENV`]).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::WAIT;
use loadmon::blocking::{ClientHandle, ServerHandle};
use loadmon::client::{ClientConfig, ClientResult};
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{
    FileWriter, FileWriterConfig, KeepFiles, VerifyMode, PAUSE_ENV,
};
use loadmon::{Report, Status};

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");
const KIB: u64 = 1024;
const FILE: u64 = 256 * KIB;
const BLOCK: u64 = 4096;
const BLOCKS: u64 = FILE / BLOCK;

/// The tests take turns: the pause hook's variable is the process's.
static ENV: Mutex<()> = Mutex::new(());

/// This test's turn, with the pause hook on in `pause` (or off).
fn turn(pause: Option<&Path>) -> MutexGuard<'static, ()> {
    let g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    match pause {
        Some(dir) => std::env::set_var(PAUSE_ENV, dir),
        None => std::env::remove_var(PAUSE_ENV),
    }
    g
}

/// Small files: 64 KiB chunks, 256 KiB files (64 blocks of 4 KiB), paced at 4 MB/s (so that
/// a run keeps few files to check: an unoptimized build checks some 25 MB/s).
fn config(out: &Path, run_time_s: f64, verify: VerifyMode, keep: KeepFiles) -> FileWriterConfig {
    FileWriterConfig {
        run_time_s,
        chunk_size_bytes: 64 * KIB,
        file_size_bytes: FILE,
        min_chunk_size_bytes: 4 * KIB,
        out_dir: out.to_path_buf(),
        keep_files: keep,
        verify,
        rate_mb_s: Some(4.0),
        ..Default::default()
    }
}

fn client(port: u16) -> ClientConfig {
    ClientConfig {
        port,
        heartbeat_period: Duration::from_millis(100),
        stats_period: Duration::from_millis(200),
        ..Default::default()
    }
}

fn server() -> ServerHandle {
    ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap()
}

/// Runs one client of `config` against a server of its own, serving the pause hook in `pause`
/// with `on_pause(file, generation, nth pause of the run)` (it damages or not; the marker is
/// removed after it). The client's result and the server's report.
fn run(
    config: FileWriterConfig,
    pause: Option<&Path>,
    on_pause: &mut dyn FnMut(&Path, u64, usize),
) -> (loadmon::Result<ClientResult>, Report) {
    let server = server();
    let c = ClientHandle::spawn(client(server.port()), FileWriter::new(config).unwrap()).unwrap();
    serve_pauses(pause, &mut || c.is_finished(), on_pause);
    let result = c.join(Some(WAIT));
    let report = server.wait(Some(WAIT)).unwrap();
    (result, report)
}

/// Serves the pause hook's markers in `pause` until `finished()`: each `<name>.pause` (the
/// data file `<name>` in the out dir is waiting to be checked) is handed to `on_pause` with
/// its generation and its rank among the run's pauses, then removed.
fn serve_pauses(
    pause: Option<&Path>,
    finished: &mut dyn FnMut() -> bool,
    on_pause: &mut dyn FnMut(&Path, u64, usize),
) {
    let t = Instant::now();
    let mut nth = 0;
    while !finished() {
        assert!(t.elapsed() < 3 * WAIT, "the run did not end");
        if let Some(dir) = pause {
            let mut markers: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "pause"))
                .collect();
            markers.sort();
            for m in markers {
                let generation: u64 = std::fs::read_to_string(&m).unwrap().trim().parse().unwrap();
                let name = m.file_stem().unwrap().to_owned();
                on_pause(Path::new(&name), generation, nth);
                nth += 1;
                std::fs::remove_file(&m).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `loadmon verify --json` of `files` with `args`: its report.
fn offline(files: &[PathBuf], args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["verify", "--json"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The first finding of the offline report: (class, offset, blocks).
fn first_offline(report: &serde_json::Value) -> (String, u64, u64) {
    let f = &report["files"][0]["findings"][0];
    (
        f["class"].as_str().unwrap().to_string(),
        f["offset_bytes"].as_u64().unwrap(),
        f["blocks"].as_u64().unwrap(),
    )
}

/// The client FAILED with a finding of `class` at `offset` (`blocks` of them) of `file` as its
/// reason, both in its error and in the server's report.
fn failed_with(
    result: &loadmon::Result<ClientResult>,
    report: &Report,
    class: &str,
    offset: u64,
    blocks: u64,
    file: &Path,
) {
    let want = format!(
        "verify: {class} at offset {offset} of {} ({blocks} block(s)): expected",
        file.display()
    );
    let e = result.as_ref().unwrap_err().to_string();
    assert!(e.contains(&want), "{e}\nwanted: {want}");
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Failed, "{c:?}");
    let reason = c.reason.as_deref().unwrap_or("");
    assert!(reason.contains(&want), "{reason}\nwanted: {want}");
    // The finding reached the server too (a vfind line), at the same place.
    let v = c.verify.as_ref().expect("the server's verify figures");
    assert!(v.errors_total >= blocks, "{v:?}");
    let f = v.findings.first().expect("a finding");
    assert_eq!((f.offset_bytes, f.blocks), (offset, blocks), "{f:?}");
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("client_"))
        })
        .collect();
    v.sort();
    v
}

/// Rewrites bytes of `path` in place (the same file: the writer checks it is still its own).
fn damage(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn undamaged_runs_report_no_error_over_every_block() {
    let _turn = turn(None);
    // rollover, keeping 2: every file deleted was checked first.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1.0, VerifyMode::Rollover, KeepFiles::Last(2));
    let (r, report) = run(cfg, None, &mut |_, _, _| {});
    let r = r.unwrap();
    assert_eq!(report.clients[0].status, Status::Pass);
    let v = r.verify.expect("verify figures");
    assert!(r.files_written > 3, "{r:?}");
    assert_eq!(v.files_checked, r.files_written - 2);
    assert_eq!(v.blocks_checked, v.files_checked * BLOCKS);
    assert_eq!((v.errors_total, v.errors.corrupt), (0, 0));
    // end, keeping all: every file checked when the run ended.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1.0, VerifyMode::End, KeepFiles::All);
    let (r, report) = run(cfg, None, &mut |_, _, _| {});
    let r = r.unwrap();
    assert_eq!(report.clients[0].status, Status::Pass);
    let v = r.verify.expect("verify figures");
    assert_eq!(v.files_checked, r.files_written);
    assert_eq!(v.blocks_checked, r.files_written * BLOCKS);
    assert_eq!(v.errors_total, 0);
    // The server got the same figures (the last verify line, before done).
    let sv = report.clients[0]
        .verify
        .as_ref()
        .expect("the server's verify figures");
    assert_eq!(
        (sv.files_checked, sv.blocks_checked, sv.errors_total),
        (v.files_checked, v.blocks_checked, 0)
    );
    let files = data_files(tmp.path());
    assert_eq!(files.len() as u64, r.files_written);
    let off = offline(&files, &[]);
    assert_eq!(off["blocks_ok"].as_u64().unwrap(), r.files_written * BLOCKS);
    // The JSON result carries the figures; without verify, null.
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["verify"]["errors_total"], 0);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 0.3, VerifyMode::None, KeepFiles::Last(1));
    let (r, _) = run(cfg, None, &mut |_, _, _| {});
    let json: serde_json::Value = serde_json::from_str(&r.unwrap().to_json()).unwrap();
    assert!(json["verify"].is_null());
}

/// A rollover run (keeping 1) whose first checked file is damaged by `hurt` at its pause: the
/// client fails with `(class, offset, blocks)`, and `loadmon verify` (with `args`) says the
/// same of the file.
fn rollover_finds(hurt: fn(&Path), want: (&str, u64, u64), args: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let cfg = config(&out, 1.0, VerifyMode::Rollover, KeepFiles::Last(1));
    let mut damaged = None;
    let (r, report) = run(cfg, Some(&pause), &mut |name, generation, nth| {
        assert_eq!(generation, 1);
        if nth == 0 {
            let file = out.join(name);
            hurt(&file);
            damaged = Some(file);
        }
    });
    let file = damaged.expect("no pause");
    failed_with(&r, &report, want.0, want.1, want.2, &file);
    // The damaged file stays (a file is deleted only once checked clean).
    assert!(file.exists());
    let off = offline(std::slice::from_ref(&file), args);
    assert_eq!(
        first_offline(&off),
        (want.0.to_string(), want.1, want.2),
        "{off}"
    );
}

#[test]
fn a_flipped_byte_is_corrupt_at_its_block() {
    rollover_finds(
        |f| damage(f, |b| b[3 * 4096 + 1000] ^= 0x01),
        ("corrupt", 3 * BLOCK, 1),
        &[],
    );
}

#[test]
fn a_zeroed_range_is_torn() {
    rollover_finds(
        |f| damage(f, |b| b[8 * 4096..10 * 4096].fill(0)),
        ("torn", 8 * BLOCK, 2),
        &[],
    );
}

#[test]
fn a_truncated_file_is_short() {
    rollover_finds(
        |f| {
            let file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
            file.set_len(50 * 4096).unwrap();
        },
        ("short", 50 * BLOCK, BLOCKS - 50),
        &[],
    );
}

/// Another client's file copied over one of this client's: misdirected, every block. The other
/// client writes at the same time into the same directory; both pause before their first
/// check, and the test copies the other's file over this one's.
#[test]
fn another_clients_file_copied_over_is_misdirected() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let server = server();
    let cfg = || config(&out, 1.5, VerifyMode::Rollover, KeepFiles::Last(1));
    let a = ClientHandle::spawn(client(server.port()), FileWriter::new(cfg()).unwrap()).unwrap();
    let b = ClientHandle::spawn(client(server.port()), FileWriter::new(cfg()).unwrap()).unwrap();
    // Hold both clients' first pauses, then copy one's file over the other's.
    let t = Instant::now();
    let (victim, source) = loop {
        assert!(t.elapsed() < WAIT, "no pauses");
        let mut names: Vec<String> = std::fs::read_dir(&pause)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.strip_suffix(".pause").map(str::to_string)
            })
            .collect();
        names.sort();
        let ids: std::collections::BTreeSet<u32> = names
            .iter()
            .map(|n| loadmon::verify::parse_file_name(n).unwrap().client_id)
            .collect();
        if ids.len() == 2 {
            let first = names.first().unwrap().clone();
            let other = names
                .iter()
                .find(|n| {
                    loadmon::verify::parse_file_name(n).unwrap().client_id
                        != loadmon::verify::parse_file_name(&first).unwrap().client_id
                })
                .unwrap()
                .clone();
            break (out.join(first), out.join(other));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::fs::copy(&source, &victim).unwrap();
    let victim_id = loadmon::verify::parse_file_name(victim.file_name().unwrap().to_str().unwrap())
        .unwrap()
        .client_id;
    serve_pauses(
        Some(&pause),
        &mut || a.is_finished() && b.is_finished(),
        &mut |_, _, _| {},
    );
    let (ra, rb) = (a.join(Some(WAIT)), b.join(Some(WAIT)));
    let report = server.wait(Some(WAIT)).unwrap();
    let (hurt, fine) = if ra.as_ref().map_or(0, |r| r.client_id) == victim_id
        || rb.as_ref().is_ok_and(|r| r.client_id != victim_id)
    {
        (ra, rb)
    } else {
        (rb, ra)
    };
    assert!(fine.is_ok(), "{fine:?}");
    let want = format!(
        "verify: misdirected at offset 0 of {} ({BLOCKS} block(s)): expected client {victim_id}",
        victim.display()
    );
    let e = hurt.unwrap_err().to_string();
    assert!(e.contains(&want), "{e}\nwanted: {want}");
    let c = report.clients.iter().find(|c| c.id == victim_id).unwrap();
    assert_eq!(c.status, Status::Failed);
    assert!(c.reason.as_deref().unwrap_or("").contains(&want));
    let off = offline(std::slice::from_ref(&victim), &[]);
    assert_eq!(
        first_offline(&off),
        ("misdirected".to_string(), 0, BLOCKS),
        "{off}"
    );
}

/// `overwrite` keeping 1: an older generation of the same file put back (gen 1 saved aside at
/// its check, put back over gen 2 before gen 2's check): stale, every block.
#[test]
fn an_older_copy_put_back_is_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let mut cfg = config(&out, 1.0, VerifyMode::Rollover, KeepFiles::Last(1));
    cfg.overwrite = true;
    let aside = tmp.path().join("gen1");
    let mut damaged = None;
    let (r, report) = run(cfg, Some(&pause), &mut |name, generation, _| {
        let file = out.join(name);
        match generation {
            1 => {
                std::fs::copy(&file, &aside).unwrap();
                // The marker of the complete file says its generation too.
                let written = pause.join(format!("{}.written", name.display()));
                assert_eq!(std::fs::read_to_string(written).unwrap().trim(), "1");
            }
            2 => {
                // Copied in place: the same file, its older bytes.
                std::fs::copy(&aside, &file).unwrap();
                damaged = Some(file);
            }
            g => panic!("generation {g} checked after the damage"),
        }
    });
    let file = damaged.expect("no second generation");
    failed_with(&r, &report, "stale", 0, BLOCKS, &file);
    // Offline, a whole file of an older generation looks as written unless the generation is
    // given (docs/VERIFY.md).
    let off = offline(std::slice::from_ref(&file), &["--generation", "2"]);
    assert_eq!(
        first_offline(&off),
        ("stale".to_string(), 0, BLOCKS),
        "{off}"
    );
    // The file kept one name all along.
    assert_eq!(data_files(&out), [file]);
}

/// `verify = end`: the kept files are checked after the run time, a damaged one found.
#[test]
fn the_end_check_finds_a_damaged_kept_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let cfg = config(&out, 0.5, VerifyMode::End, KeepFiles::Last(3));
    let mut damaged = None;
    let (r, report) = run(cfg, Some(&pause), &mut |name, _, nth| {
        if nth == 1 {
            let file = out.join(name);
            damage(&file, |b| b[FILE as usize - 1] ^= 0xff);
            damaged = Some(file);
        }
    });
    let file = damaged.expect("fewer than 2 kept files");
    failed_with(&r, &report, "corrupt", FILE - BLOCK, 1, &file);
}

/// `verify_continue`: the run carries on past a bad block and ends FAILED with the first
/// finding as its reason.
#[test]
fn verify_continue_carries_on_and_still_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let mut cfg = config(&out, 1.0, VerifyMode::Rollover, KeepFiles::Last(1));
    cfg.verify_continue = true;
    let mut damaged = Vec::new();
    let (r, report) = run(cfg, Some(&pause), &mut |name, _, nth| {
        if nth == 0 || nth == 2 {
            let file = out.join(name);
            damage(&file, |b| b[5 * 4096 + 7] ^= 0x10);
            damaged.push(file);
        }
    });
    assert_eq!(damaged.len(), 2, "the run went on past the first bad block");
    failed_with(&r, &report, "corrupt", 5 * BLOCK, 1, &damaged[0]);
    let c = &report.clients[0];
    assert!(c.files_written > 3, "{c:?}");
}

/// `verify_peer`: two clients in one directory each check the other's kept files (and a
/// damaged one is found by the client that checks it, not by its writer); a client alone
/// checks its own.
#[test]
fn peers_check_each_others_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
    std::fs::create_dir_all(&pause).unwrap();
    let _turn = turn(Some(&pause));
    let server = server();
    let cfg = || {
        let mut c = config(&out, 0.8, VerifyMode::End, KeepFiles::Last(2));
        c.verify_peer = true;
        c
    };
    let a = ClientHandle::spawn(client(server.port()), FileWriter::new(cfg()).unwrap()).unwrap();
    let b = ClientHandle::spawn(client(server.port()), FileWriter::new(cfg()).unwrap()).unwrap();
    let mut damaged: Option<PathBuf> = None;
    serve_pauses(
        Some(&pause),
        &mut || a.is_finished() && b.is_finished(),
        &mut |name, _, _| {
            if damaged.is_none() {
                let file = out.join(name);
                damage(&file, |b| b[2 * 4096 + 100] ^= 0x04);
                damaged = Some(file);
            }
        },
    );
    let (ra, rb) = (a.join(Some(WAIT)), b.join(Some(WAIT)));
    let report = server.wait(Some(WAIT)).unwrap();
    let file = damaged.expect("no peer check");
    let writer = loadmon::verify::parse_file_name(file.file_name().unwrap().to_str().unwrap())
        .unwrap()
        .client_id;
    // The writer of the damaged file passes (it checked the other's); the other fails.
    let (mine, theirs) = match &ra {
        Ok(r) if r.client_id == writer => (ra, rb),
        _ => (rb, ra),
    };
    let mine = mine.unwrap();
    assert_eq!(
        mine.verify.unwrap().files_checked,
        2,
        "the peer's 2 kept files"
    );
    let e = theirs.unwrap_err().to_string();
    let want = format!(
        "verify: corrupt at offset 8192 of {} (1 block(s))",
        file.display()
    );
    assert!(e.contains(&want), "{e}");
    let statuses: Vec<Status> = report.clients.iter().map(|c| c.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == Status::Pass).count(), 1);
    // Each left its done marker, listing its kept files.
    assert_eq!(
        std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".loadmon_done_")
            })
            .count(),
        2
    );

    // Alone in a directory of its own: its own files, with a warning.
    let solo = tmp.path().join("solo");
    let mut c = config(&solo, 0.5, VerifyMode::End, KeepFiles::Last(2));
    c.verify_peer = true;
    let (r, report) = run(c, Some(&pause), &mut |_, _, _| {});
    let r = r.unwrap();
    assert_eq!(report.clients[0].status, Status::Pass);
    assert_eq!(r.verify.unwrap().files_checked, 2);
}

/// A seed server (which knows none of loadmon's lines) sees an ordinary client: no `verify`
/// nor `vfind` line reaches it, however many files are checked.
#[test]
fn a_seed_server_sees_an_ordinary_client() {
    let _turn = turn(None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 0.5, VerifyMode::End, KeepFiles::All);
    let w = FileWriter::new(cfg).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed_server_run(w));
}

/// [`a_seed_server_sees_an_ordinary_client`]'s run of `w` against a fake seed server.
async fn seed_server_run(w: FileWriter) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seed = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.split(':').next().unwrap_or("") {
                "get_cid" => w.write_all(b"set_cid:100\n").await.unwrap(),
                "ready" => w.write_all(b"run_tests\n").await.unwrap(),
                _ => {}
            }
            let end = line == "done" || line.starts_with("error:");
            seen.push(line);
            if end {
                break;
            }
        }
        seen
    });
    let c = loadmon::client::Client::new(client(port)).unwrap();
    let r = tokio::time::timeout(WAIT, c.run(w)).await.unwrap().unwrap();
    assert!(r.verify.unwrap().files_checked >= 1);
    let seen = seed.await.unwrap();
    assert_eq!(seen.last().map(String::as_str), Some("done"));
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("verify:") || l.starts_with("vfind:")),
        "{seen:?}"
    );
}

/// A co-tenant of the shared directory replaces a kept file before the end's check: with a
/// symbolic link to a good copy of it (the check would pass, through the link, on a file this
/// client did not write), then with a FIFO (an open for reading would wait for a writer for
/// ever). Neither is followed nor waited on: the client ends FAILED, the file named.
#[test]
fn a_kept_file_replaced_by_a_link_or_a_fifo_is_not_checked_through_it() {
    for fifo in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (out, pause) = (tmp.path().join("data"), tmp.path().join("pause"));
        std::fs::create_dir_all(&pause).unwrap();
        let _turn = turn(Some(&pause));
        let cfg = config(&out, 0.5, VerifyMode::End, KeepFiles::Last(3));
        let mut replaced = None;
        let t = Instant::now();
        let (r, report) = run(cfg, Some(&pause), &mut |name, _, nth| {
            if nth == 0 {
                let file = out.join(name);
                let aside = tmp.path().join("aside");
                std::fs::rename(&file, &aside).unwrap();
                if fifo {
                    let ok = Command::new("mkfifo").arg(&file).status().unwrap();
                    assert!(ok.success());
                } else {
                    std::fs::copy(&aside, tmp.path().join("copy")).unwrap();
                    std::os::unix::fs::symlink(tmp.path().join("copy"), &file).unwrap();
                }
                replaced = Some(file);
            }
        });
        assert!(t.elapsed() < WAIT, "{:?}", t.elapsed());
        let file = replaced.expect("no pause");
        let e = r.unwrap_err().to_string();
        let why = if fifo {
            "is not a regular file"
        } else {
            "a symbolic link is under the name"
        };
        assert!(
            e.contains(why) && e.contains(&file.display().to_string()),
            "{e}"
        );
        assert_eq!(report.clients[0].status, Status::Failed);
    }
}

/// Whether this machine can give a test a mount namespace of its own: root and `unshare`
/// (util-linux); `Err` says why not.
fn own_mount_namespace() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        return Err("needs root (to mount a tmpfs in a mount namespace of its own)".into());
    }
    let unshare = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .output();
    match unshare {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`unshare -m` fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("needs unshare (util-linux): {e}")),
    }
}

/// A full disk under a writing client, with `verify` none, rollover and end: the client ends
/// FAILED (no panic, no hang), its reason and the server's naming the file and "No space left
/// on device"; the files it completed are as written (`loadmon verify`) and the partial one is
/// removed. Each case mounts a small tmpfs, in a mount namespace of its own (this test binary
/// started again under `unshare -m`, the inner tests below): the host's mounts are never
/// touched. Needs root and `unshare`, as CI has: without them the test is skipped, or fails
/// when `CI` is set.
#[test]
fn a_full_disk_fails_the_client_naming_the_file() {
    if let Err(why) = own_mount_namespace() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test (as root, with unshare): {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "inner_full_disk_",
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
    assert!(text.contains("4 passed"), "{text}");
}

/// A tmpfs of `size` mounted on a directory (in the test's own mount namespace), unmounted
/// when dropped (before the directory is removed).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        assert_eq!(
            std::env::var("LOADMON_TEST_OWN_MOUNT_NS").as_deref(),
            Ok("1"),
            "mounts: only in a mount namespace of its own"
        );
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("loadmon-enospc")
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Size of the full disk's tmpfs: 8 of the tests' files.
const DISK: &str = "2m";

/// Writes into `out` (the full disk) with `verify` and `keep` until the disk is full (and with
/// `fill_after_checks`, once that many files were checked, a co-tenant fills what is left and
/// takes what the writer frees): the client's error, the server's report.
fn run_until_full(
    out: &Path,
    verify: VerifyMode,
    keep: KeepFiles,
    fill_after_checks: Option<u64>,
    iodepth: u32,
) -> (String, Report) {
    let _turn = turn(None);
    // Never reached: the disk fills first.
    let cfg = FileWriterConfig {
        iodepth,
        ..config(out, 60.0, verify, keep)
    };
    let server = server();
    let c = ClientHandle::spawn(client(server.port()), FileWriter::new(cfg).unwrap()).unwrap();
    let filler = out.join("filler");
    let mut hog: Option<std::fs::File> = None;
    let t = Instant::now();
    while !c.is_finished() {
        assert!(t.elapsed() < WAIT, "the client did not end on a full disk");
        let checked = server
            .snapshot()
            .first()
            .and_then(|c| c.verify.as_ref())
            .map_or(0, |v| v.files_checked);
        if fill_after_checks.is_some_and(|n| checked >= n) && hog.is_none() {
            hog = Some(std::fs::File::create(&filler).unwrap());
        }
        if let Some(f) = &mut hog {
            use std::io::Write;
            // Takes every free 4 KiB until the disk refuses.
            while f.write_all(&[0xee; 4096]).is_ok() {}
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let e = c
        .join(Some(WAIT))
        .expect_err("a full disk fails the client")
        .to_string();
    let report = server.wait(Some(WAIT)).unwrap();
    drop(hog);
    let _ = std::fs::remove_file(&filler);
    (e, report)
}

/// What every full-disk case expects: FAILED, the reason (the client's and the server's)
/// naming a data file in `out` and ENOSPC; every data file left is whole, and (with verify)
/// as written; returns them.
fn failed_on_full_disk(out: &Path, e: &str, report: &Report, verified: bool) -> Vec<PathBuf> {
    let prefix = format!("{}/client_", out.display());
    for text in [e, report.clients[0].reason.as_deref().unwrap_or("")] {
        assert!(
            text.contains(&prefix) && text.contains("No space left on device"),
            "{text}"
        );
    }
    assert!(!e.contains("verify:"), "a full disk is not bad data: {e}");
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Failed, "{c:?}");
    let files = data_files(out);
    assert!(!files.is_empty());
    for f in &files {
        // The partial file was removed: every file left is whole.
        assert_eq!(std::fs::metadata(f).unwrap().len(), FILE, "{}", f.display());
    }
    if verified {
        if let Some(v) = &c.verify {
            assert_eq!(v.errors_total, 0, "{v:?}");
            assert!(v.findings.is_empty(), "{v:?}");
        }
        let off = offline(&files, &[]);
        assert_eq!(
            off["blocks_ok"].as_u64().unwrap(),
            files.len() as u64 * BLOCKS,
            "{off}"
        );
    }
    files
}

#[test]
#[ignore = "run by a_full_disk_fails_the_client_naming_the_file in its own mount namespace"]
fn inner_full_disk_without_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(tmp.path(), DISK);
    let (e, report) = run_until_full(tmp.path(), VerifyMode::None, KeepFiles::All, None, 1);
    let files = failed_on_full_disk(tmp.path(), &e, &report, false);
    assert_eq!(files.len() as u64, report.clients[0].files_written);
    assert!(report.clients[0].verify.is_none());
}

#[test]
#[ignore = "run by a_full_disk_fails_the_client_naming_the_file in its own mount namespace"]
fn inner_full_disk_verify_end() {
    let tmp = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(tmp.path(), DISK);
    let (e, report) = run_until_full(tmp.path(), VerifyMode::End, KeepFiles::All, None, 1);
    let files = failed_on_full_disk(tmp.path(), &e, &report, true);
    // Every complete file is kept (the run failed before its end's check).
    assert_eq!(files.len() as u64, report.clients[0].files_written);
}

/// Rollover keeping 2: files are checked and deleted until a co-tenant fills the disk and
/// takes the space the writer frees.
#[test]
#[ignore = "run by a_full_disk_fails_the_client_naming_the_file in its own mount namespace"]
fn inner_full_disk_verify_rollover() {
    let tmp = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(tmp.path(), DISK);
    let (e, report) = run_until_full(
        tmp.path(),
        VerifyMode::Rollover,
        KeepFiles::Last(2),
        Some(1),
        1,
    );
    let files = failed_on_full_disk(tmp.path(), &e, &report, true);
    assert!(files.len() <= 3, "{files:?}");
    let v = report.clients[0].verify.as_ref().expect("checked files");
    assert!(v.files_checked >= 1, "{v:?}");
}

/// `verify = end` through the io_uring engine (`iodepth` 4; or the engine it falls back to).
#[test]
#[ignore = "run by a_full_disk_fails_the_client_naming_the_file in its own mount namespace"]
fn inner_full_disk_verify_end_iodepth_4() {
    let tmp = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(tmp.path(), DISK);
    let (e, report) = run_until_full(tmp.path(), VerifyMode::End, KeepFiles::All, None, 4);
    let files = failed_on_full_disk(tmp.path(), &e, &report, true);
    assert_eq!(files.len() as u64, report.clients[0].files_written);
}
