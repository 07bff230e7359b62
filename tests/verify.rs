//! Verified data damaged on disk between write and check: each damage found at the right
//! offset with the right class, an undamaged file clean over every block, hostile files
//! without a panic. Files are written with the library's own `fill_chunk`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use loadmon::verify::{
    check_file, check_file_guarded, check_paths, check_paths_until, fill_chunk, BlockContext,
    CheckGuard, Expected, FileReport, FindingClass, VerifyConfig,
};

const BS: u64 = 4096;
const FILE: u64 = 1 << 20;
const BLOCKS: u64 = FILE / BS;
const NAME: &str = "client_100_3_2026-12-05_10.11.12";

fn ctx(client_id: u32, file_seq: u64, generation: u64) -> BlockContext {
    BlockContext {
        block_bytes: BS as u32,
        run_id: 0x5eed,
        client_id,
        stream: 0,
        file_seq,
        generation,
        write_time_ns: 1_764_900_000_000_000_000,
        file_size_bytes: FILE,
    }
}

/// Writes a whole file in 64 KiB chunks, as the writer would.
fn write(path: &Path, c: &BlockContext) {
    let mut data = vec![0u8; FILE as usize];
    for (i, chunk) in data.chunks_mut(64 << 10).enumerate() {
        let mut c = *c;
        c.write_time_ns += i as u64;
        fill_chunk(chunk, &c, i as u64 * (64 << 10)).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn written(dir: &Path) -> PathBuf {
    let p = dir.join(NAME);
    write(&p, &ctx(100, 3, 1));
    p
}

/// The check `loadmon verify` makes: identity from the name, the rest from the blocks.
fn check(path: &Path) -> FileReport {
    let r = check_paths(&[path.to_path_buf()], &VerifyConfig::default()).unwrap();
    assert_eq!(r.files.len(), 1);
    r.files.into_iter().next().unwrap()
}

/// The one finding of a report, checked: class, offset, blocks.
fn only(r: &FileReport, class: FindingClass, offset: u64, blocks: u64) -> String {
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(
        (f.class, f.offset_bytes, f.blocks),
        (class, offset, blocks),
        "{f:#?}"
    );
    assert_eq!(r.errors.get(class), blocks);
    assert_eq!(r.errors.total(), blocks);
    assert_eq!(f.path, r.path);
    f.found.clone()
}

#[test]
fn an_undamaged_file_is_clean_over_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let r = check(&p);
    assert_eq!((r.blocks_checked, r.blocks_ok), (BLOCKS, BLOCKS));
    assert_eq!(r.errors.total(), 0);
    assert!(r.findings.is_empty());
    let e = r.expected;
    assert_eq!(
        (
            e.client_id,
            e.file_seq,
            e.run_id,
            e.generation,
            e.file_size_bytes
        ),
        (Some(100), Some(3), Some(0x5eed), Some(1), Some(FILE))
    );
    // With everything known (as the writer's own check-back has it), the same.
    let full = Expected::of(&ctx(100, 3, 1));
    let r = check_file(&p, &full, &VerifyConfig::default()).unwrap();
    assert_eq!((r.blocks_ok, r.errors.total()), (BLOCKS, 0));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    // The writer's own check knows the generation: the same file is stale against a newer one.
    let newer = Expected {
        generation: Some(2),
        ..full
    };
    let r = check_file(&p, &newer, &VerifyConfig::default()).unwrap();
    only(&r, FindingClass::Stale, 0, BLOCKS);
    // A directory: its data files, a stream's name too.
    let s = dir.path().join("client_100_2_0_2026-12-05_10.11.12");
    write(
        &s,
        &BlockContext {
            stream: 2,
            file_seq: 0,
            ..ctx(100, 0, 1)
        },
    );
    std::fs::write(dir.path().join("notes.txt"), "not a data file").unwrap();
    let all = check_paths(&[dir.path().to_path_buf()], &VerifyConfig::default()).unwrap();
    assert_eq!(all.files.len(), 2);
    assert_eq!((all.blocks_ok, all.errors.total()), (2 * BLOCKS, 0));
    assert_eq!(all.bytes_read, 2 * FILE);
}

#[test]
fn a_flipped_byte_is_corrupt_at_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    patch(
        &p,
        5 * BS + 1000,
        &[0xff ^ std::fs::read(&p).unwrap()[(5 * BS + 1000) as usize]],
    );
    let found = only(&check(&p), FindingClass::Corrupt, 5 * BS, 1);
    assert!(
        found.contains("1 byte(s) differ") && found.contains("+1000"),
        "{found}"
    );
    // In the header (its offset field) too.
    let p = written(dir.path());
    patch(&p, 9 * BS + 41, &[0x77]);
    let found = only(&check(&p), FindingClass::Corrupt, 9 * BS, 1);
    assert!(found.contains("+41"), "{found}");
}

#[test]
fn an_older_copy_put_back_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let old = std::fs::read(&p).unwrap();
    // The file is written again (generation 2); part of the older copy comes back.
    write(&p, &ctx(100, 3, 2));
    patch(&p, 10 * BS, &old[(10 * BS) as usize..(20 * BS) as usize]);
    let r = check(&p);
    let found = only(&r, FindingClass::Stale, 10 * BS, 10);
    assert!(found.contains("generation 1"), "{found}");
    assert_eq!(r.expected.generation, Some(2));
    assert_eq!(r.blocks_ok, BLOCKS - 10);
    // The whole older copy put back: stale everywhere against the generation written.
    std::fs::write(&p, &old).unwrap();
    let c = VerifyConfig {
        generation: Some(2),
        ..Default::default()
    };
    let r = check_paths(std::slice::from_ref(&p), &c).unwrap();
    only(&r.files[0], FindingClass::Stale, 0, BLOCKS);
}

#[test]
fn another_clients_file_copied_over_is_misdirected() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let other = dir.path().join("client_101_3_2026-12-05_10.11.12");
    write(&other, &ctx(101, 3, 1));
    std::fs::copy(&other, &p).unwrap();
    let found = only(&check(&p), FindingClass::Misdirected, 0, BLOCKS);
    assert!(found.contains("client 101"), "{found}");
    // A part of it, and another file's block, and a block of this file at the wrong place.
    let p = written(dir.path());
    let theirs = std::fs::read(&other).unwrap();
    patch(&p, 40 * BS, &theirs[(40 * BS) as usize..(42 * BS) as usize]);
    let r = check(&p);
    only(&r, FindingClass::Misdirected, 40 * BS, 2);
    let p = written(dir.path());
    let ours = std::fs::read(&p).unwrap();
    patch(&p, 7 * BS, &ours[(3 * BS) as usize..(4 * BS) as usize]);
    let found = only(&check(&p), FindingClass::Misdirected, 7 * BS, 1);
    assert!(found.contains("offset 12288"), "{found}");
}

#[test]
fn zeroed_and_torn_blocks_are_torn() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    patch(&p, 30 * BS, &vec![0u8; 4 * BS as usize]);
    let found = only(&check(&p), FindingClass::Torn, 30 * BS, 4);
    assert_eq!(found, "zeroes");
    // The second half of a block zero: a torn write.
    let p = written(dir.path());
    patch(&p, 50 * BS + BS / 2, &vec![0u8; (BS / 2) as usize]);
    let found = only(&check(&p), FindingClass::Torn, 50 * BS, 1);
    assert!(
        found.contains("4 of 8 sectors as written, 4 zero"),
        "{found}"
    );
    // Half new, half an earlier write of the same place.
    let p = written(dir.path());
    let old = std::fs::read(&p).unwrap();
    write(&p, &ctx(100, 3, 2));
    patch(
        &p,
        60 * BS + 1024,
        &old[(60 * BS + 1024) as usize..(61 * BS) as usize],
    );
    let found = only(&check(&p), FindingClass::Torn, 60 * BS, 1);
    assert!(
        found.contains("2 of 8 sectors as written, 0 zero, 6 of another write"),
        "{found}"
    );
}

#[test]
fn a_truncated_file_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(FILE - 6000).unwrap();
    let r = check(&p);
    let found = only(&r, FindingClass::Short, FILE - 6000, 2);
    assert_eq!(found, format!("{} bytes", FILE - 6000));
    assert_eq!(
        r.findings[0].expected,
        format!("{FILE} bytes (the size its blocks claim)")
    );
    assert_eq!(r.blocks_ok, BLOCKS - 2);
    f.set_len(100 * BS).unwrap();
    only(&check(&p), FindingClass::Short, 100 * BS, BLOCKS - 100);
}

#[test]
fn hostile_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Garbage, with a lone header claiming the largest block and a huge file.
    let mut junk: Vec<u8> = (0..FILE)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let mut h = vec![0u8; 80];
    loadmon::verify::BlockHeader {
        block_bytes: 1 << 20,
        run_id: 1,
        client_id: 100,
        stream: 0,
        file_seq: 3,
        offset_bytes: 0,
        generation: u64::MAX,
        write_time_ns: 0,
        file_size_bytes: 1 << 62,
    }
    .encode(&mut h);
    junk[..80].copy_from_slice(&h);
    for (name, bytes) in [
        ("client_100_3_2026-12-05_10.11.12", &junk[..]),
        ("client_100_4_2026-12-05_10.11.12", &junk[..4097]),
        ("client_100_5_2026-12-05_10.11.12", &b""[..]),
        ("client_100_6_2026-12-05_10.11.12", &[0u8; 100][..]),
        ("garbage.bin", &junk[1..]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let r = check(&p);
        assert_eq!(r.blocks_ok, 0, "{name}");
        assert_eq!(r.blocks_checked, bytes.len() as u64 / BS, "{name}");
        assert!(r.findings.len() <= 100);
        if bytes.len() as u64 >= BS {
            assert!(r.errors.corrupt > 0, "{name}: {r:#?}");
        }
    }
}

/// `f()` on a thread of its own, bounded: a check that blocks (the open of a FIFO) fails.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the check blocked")
}

/// A FIFO under a data file's name (planted in a shared directory) is refused at once, never
/// waited on for a writer: by `check_file`, by a directory's check and by `loadmon verify`.
#[test]
fn a_fifo_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(NAME);
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let p = fifo.clone();
    let e = bounded(move || check_file(&p, &Expected::default(), &VerifyConfig::default()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    // In a directory it is skipped, never opened (the directory's only "data file": none).
    let d = dir.path().to_path_buf();
    let e = bounded(move || check_paths(&[d], &VerifyConfig::default()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds no data file") && e.contains("1 entries under such names are not"),
        "{e}"
    );
    let p = fifo.clone();
    let (code, _, err) = bounded(move || cli(&[p.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// The writer's guard: no symbolic link followed, only the very file named, and a stop ends a
/// check between two reads (of a big file: not read to its end).
#[test]
fn the_guard_follows_no_link_checks_the_file_and_stops() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let m = std::fs::metadata(&p).unwrap();
    let id = (m.dev(), m.ino());
    let config = VerifyConfig::default();
    let own = CheckGuard {
        no_follow: true,
        file_id: Some(id),
        ..Default::default()
    };
    let r = check_file_guarded(&p, &Expected::default(), &config, &own).unwrap();
    assert_eq!(r.blocks_ok, BLOCKS);
    // The file moved away and a link to it (or a copy of it) put under its name: the check
    // would pass, but it is not the file written.
    let moved = dir.path().join("moved");
    std::fs::rename(&p, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &p).unwrap();
    assert_eq!(
        check_file(&p, &Expected::default(), &config)
            .unwrap()
            .blocks_ok,
        BLOCKS
    );
    let e = check_file_guarded(&p, &Expected::default(), &config, &own)
        .unwrap_err()
        .to_string();
    assert!(e.contains("symbolic link") && e.contains(NAME), "{e}");
    std::fs::remove_file(&p).unwrap();
    std::fs::copy(&moved, &p).unwrap();
    let e = check_file_guarded(&p, &Expected::default(), &config, &own)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no longer holds the file"), "{e}");
    // A stop: a 64 MiB file (16 reads) is left after the read under way.
    let big = dir.path().join("client_100_4_2026-12-05_10.11.12");
    let mut c = ctx(100, 4, 1);
    c.file_size_bytes = 64 << 20;
    let mut data = vec![0u8; 64 << 20];
    fill_chunk(&mut data, &c, 0).unwrap();
    std::fs::write(&big, &data).unwrap();
    let reads = std::cell::Cell::new(0u32);
    let stop = || {
        reads.set(reads.get() + 1);
        reads.get() > 2
    };
    let guard = CheckGuard {
        stop: Some(&stop),
        ..Default::default()
    };
    let e = check_file_guarded(&big, &Expected::default(), &config, &guard).unwrap_err();
    assert!(
        matches!(e, loadmon::Error::Interrupted(_)) && e.to_string().contains("stopped"),
        "{e}"
    );
    assert_eq!(
        reads.get(),
        3,
        "asked before each read, and no more once stopped"
    );
}

#[test]
fn direct_reads_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let trunc = OpenOptions::new().write(true).open(&p).unwrap();
    trunc.set_len(FILE - 6000).unwrap();
    let c = VerifyConfig {
        direct: true,
        ..Default::default()
    };
    // A file system without O_DIRECT (tmpfs) refuses it with a clear error.
    match check_paths(std::slice::from_ref(&p), &c) {
        Ok(r) => {
            only(&r.files[0], FindingClass::Short, FILE - 6000, 2);
        }
        Err(e) => assert!(e.is_config() && e.to_string().contains("O_DIRECT"), "{e}"),
    }
}

#[test]
fn bad_input_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let none = check_paths(&[], &VerifyConfig::default()).unwrap_err();
    assert!(none.is_config(), "{none}");
    let missing = check_paths(&[dir.path().join("nope")], &VerifyConfig::default()).unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let empty = check_paths(&[dir.path().to_path_buf()], &VerifyConfig::default()).unwrap_err();
    assert!(empty.to_string().contains("holds no data file"), "{empty}");
    for c in [
        VerifyConfig {
            max_findings: 0,
            ..Default::default()
        },
        VerifyConfig {
            block_bytes: Some(1000),
            ..Default::default()
        },
    ] {
        let e = check_paths(&[dir.path().to_path_buf()], &c).unwrap_err();
        assert!(e.is_config(), "{e}");
    }
}

/// `loadmon verify` on `paths`: exit code, stdout, stderr.
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadmon"))
        .arg("verify")
        .args(args)
        .output()
        .expect("run loadmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `loadmon verify --json` on one file: its exit code, and each finding's class, offset and
/// blocks.
fn cli_findings(path: &Path, extra: &[&str]) -> (i32, Vec<(String, u64, u64)>) {
    let p = path.to_str().unwrap();
    let mut args = vec!["--json", p];
    args.extend_from_slice(extra);
    let (code, out, err) = cli(&args);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let f = v["files"][0]["findings"].as_array().unwrap();
    let found = f
        .iter()
        .map(|x| {
            (
                x["class"].as_str().unwrap().to_string(),
                x["offset_bytes"].as_u64().unwrap(),
                x["blocks"].as_u64().unwrap(),
            )
        })
        .collect();
    (code, found)
}

#[test]
fn the_command_finds_each_damage_with_its_class_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let (code, out, _) = cli(&[p.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("OK {}: {BLOCKS} blocks as written", p.display())),
        "{out}"
    );
    assert!(out.contains("MiB/s, CPU"), "{out}");
    let one = |class: &str, at: u64, n: u64| vec![(class.to_string(), at, n)];
    // Flipped byte.
    patch(
        &p,
        5 * BS + 7,
        &[!std::fs::read(&p).unwrap()[(5 * BS + 7) as usize]],
    );
    assert_eq!(cli_findings(&p, &[]), (4, one("corrupt", 5 * BS, 1)));
    // An older copy put back (the file rewritten as generation 2, then the old one back).
    let p = written(dir.path());
    let old = std::fs::read(&p).unwrap();
    write(&p, &ctx(100, 3, 2));
    patch(&p, 8 * BS, &old[(8 * BS) as usize..(9 * BS) as usize]);
    assert_eq!(cli_findings(&p, &[]), (4, one("stale", 8 * BS, 1)));
    std::fs::write(&p, &old).unwrap();
    assert_eq!(
        cli_findings(&p, &["--generation", "2"]),
        (4, one("stale", 0, BLOCKS))
    );
    // Another client's file copied over.
    let other = dir.path().join("client_101_3_2026-12-05_10.11.12");
    write(&other, &ctx(101, 3, 1));
    std::fs::copy(&other, &p).unwrap();
    assert_eq!(cli_findings(&p, &[]), (4, one("misdirected", 0, BLOCKS)));
    std::fs::remove_file(&other).unwrap();
    // A zeroed range.
    let p = written(dir.path());
    patch(&p, 12 * BS, &vec![0u8; 3 * BS as usize]);
    assert_eq!(cli_findings(&p, &[]), (4, one("torn", 12 * BS, 3)));
    // Truncated.
    let p = written(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(FILE - BS)
        .unwrap();
    assert_eq!(cli_findings(&p, &[]), (4, one("short", FILE - BS, 1)));
    // The text names the class, the offset, what was expected and found.
    let (code, out, _) = cli(&[p.to_str().unwrap()]);
    assert_eq!(code, 4);
    assert!(
        out.contains(&format!(
            "short at offset {} (1 block(s)): expected {FILE} bytes",
            FILE - BS
        )),
        "{out}"
    );
}

#[test]
fn the_commands_bad_input_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    for args in [
        vec![missing.to_str().unwrap()],
        vec!["--block-size", "1000", dir.path().to_str().unwrap()],
        vec!["--max-findings", "0", dir.path().to_str().unwrap()],
        vec![],
    ] {
        let (code, out, err) = cli(&args);
        assert_eq!(code, 2, "{args:?}: {out} {err}");
        assert!(!err.is_empty());
    }
}

/// `loadmon verify` on `path`, killed if it has not ended within 20 s: its exit code (None
/// when it had to be killed) and stderr.
fn cli_within_20s(path: &Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loadmon"))
        .arg("verify")
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run loadmon");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (code, err)
}

#[test]
fn a_fifo_a_device_or_a_symlink_loop_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO nobody writes to: opening it for reading must not wait for a writer.
    let fifo = dir.path().join("client_100_3_2026-12-05_10.11.12");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let (code, err) = cli_within_20s(&fifo);
    assert_eq!(code, Some(2), "a FIFO: {err}");
    assert!(err.contains("is not a regular file"), "{err}");
    // The same FIFO found in a directory: skipped, the directory's data files checked.
    write(
        &dir.path().join("client_100_4_2026-12-05_10.11.12"),
        &ctx(100, 4, 1),
    );
    let (code, err) = cli_within_20s(dir.path());
    assert_eq!(code, Some(0), "a directory with a FIFO: {err}");
    let (code, err) = cli_within_20s(Path::new("/dev/zero"));
    assert_eq!(code, Some(2), "/dev/zero: {err}");
    assert!(err.contains("is not a regular file"), "{err}");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    let (code, err) = cli_within_20s(&a);
    assert_eq!(code, Some(1), "a symlink loop: {err}");
    assert!(err.contains("symbolic links"), "{err}");
}

#[test]
fn a_file_whose_name_is_not_utf8_gets_a_json_report() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"zeros-\xff\xfe"));
    std::fs::write(&p, vec![0u8; 2 * BS as usize]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadmon"))
        .args(["verify", "--json", "--block-size", "4k"])
        .arg(&p)
        .output()
        .expect("run loadmon");
    let text = String::from_utf8_lossy(&out.stdout);
    // Was: exit 1, "internal error: … path contains invalid UTF-8 characters", no report.
    assert_eq!(
        out.status.code(),
        Some(4),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errors"]["torn"], 2);
    let path = v["files"][0]["path"].as_str().unwrap();
    assert!(path.ends_with("zeros-\u{fffd}\u{fffd}"), "{path}");
    assert_eq!(v["files"][0]["findings"][0]["path"], path);
}

/// A directory's entries named like data files that are not regular files (a sub-directory,
/// a FIFO: never opened) are skipped, listed in the report (text and JSON), and its other files
/// checked; the same entry given as PATH is an error (exit 2).
#[test]
fn a_directorys_entries_that_are_not_files_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let good = written(dir.path());
    let sub = dir.path().join("client_100_1_2026-12-05_10.11.12");
    std::fs::create_dir(&sub).unwrap();
    let fifo = dir.path().join("client_100_2_2026-12-05_10.11.12");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let d = dir.path().to_path_buf();
    let r = bounded(move || check_paths(&[d], &VerifyConfig::default())).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(
        (r.files[0].path.as_path(), r.blocks_ok),
        (good.as_path(), BLOCKS)
    );
    let skipped: Vec<(PathBuf, &str)> = r
        .skipped
        .iter()
        .map(|k| (k.path.clone(), k.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (sub.clone(), "not a regular file: a directory"),
            (fifo.clone(), "not a regular file: a FIFO"),
        ]
    );
    let d = dir.path().to_str().unwrap().to_owned();
    let (code, out, err) = bounded(move || cli(&[&d]));
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        out.contains(&format!(
            "SKIPPED {}: not a regular file: a FIFO",
            fifo.display()
        )),
        "{out}"
    );
    assert!(out.contains("verified 1 file(s) (2 skipped)"), "{out}");
    let d = dir.path().to_str().unwrap().to_owned();
    let (code, out, err) = bounded(move || cli(&["--json", &d]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["skipped"][0]["path"], sub.to_str().unwrap());
    assert_eq!(v["skipped"][1]["reason"], "not a regular file: a FIFO");
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    // Given as PATH, a FIFO stays an error; a sub-directory is a directory without data files.
    for p in [&fifo, &sub] {
        let p = p.to_str().unwrap().to_owned();
        let (code, _, err) = bounded(move || cli(&[&p]));
        assert_eq!(code, 2, "{err}");
    }
}

/// A symbolic-link loop is a path that cannot be looked at: an error (exit 1, "a file could
/// not be read"), never a finding (exit 4) nor skipped, whether given as PATH or met in a
/// directory under a data file's name.
#[test]
fn a_symlink_loop_is_an_error_given_or_met_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    let (a, b) = (
        dir.path().join("client_100_1_2026-12-05_10.11.12"),
        dir.path().join("loop-b"),
    );
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    for p in [a.as_path(), dir.path()] {
        let (code, err) = cli_within_20s(p);
        assert_eq!(code, Some(1), "{}: {err}", p.display());
        assert!(err.contains("symbolic links"), "{err}");
    }
    let e = check_paths(&[dir.path().to_path_buf()], &VerifyConfig::default()).unwrap_err();
    assert_eq!(e.kind(), loadmon::error::ErrorKind::File, "{e}");
}

/// `check_paths_until`'s stop is asked before each read, across files, and ends the check
/// at once; one that never says stop checks as `check_paths` does.
#[test]
fn check_paths_until_stops_between_reads() {
    let dir = tempfile::tempdir().unwrap();
    // Two sparse files of 16 MiB (4 reads each) under data file names.
    for n in 1..=2 {
        let p = dir
            .path()
            .join(format!("client_100_{n}_2026-12-05_10.11.12"));
        std::fs::File::create(&p)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
    }
    let asked = std::cell::Cell::new(0u32);
    let stop = || {
        asked.set(asked.get() + 1);
        asked.get() > 6
    };
    let paths = [dir.path().to_path_buf()];
    let e = check_paths_until(&paths, &VerifyConfig::default(), &stop).unwrap_err();
    assert!(matches!(e, loadmon::Error::Interrupted(_)), "{e}");
    assert_eq!(
        asked.get(),
        7,
        "asked before each read, none after the stop"
    );
    let never = check_paths_until(&paths, &VerifyConfig::default(), &|| false).unwrap();
    let all = check_paths(&paths, &VerifyConfig::default()).unwrap();
    assert_eq!((never.files.len(), never.errors), (2, all.errors));
}
