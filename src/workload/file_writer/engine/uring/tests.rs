//! The io_uring engine on temp files: data where the chunks say, at depths 1, 4 and 16,
//! buffered and O_DIRECT; the depth reached; a stop mid-file; a scheduled start; errors naming
//! the file; the fallback.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use super::*;
use crate::workload::file_writer::files::create_new;
use crate::workload::file_writer::SyncMode;

const KIB: u64 = 1024;
/// The byte the writer fills its files with (files.rs).
const FILL: u8 = 0x5a;

fn engine(depth: u32, chunk_bytes: u64) -> UringEngine {
    usable().unwrap_or_else(|why| panic!("io_uring unusable on this machine ({why})"));
    UringEngine::new(depth, chunk_bytes).unwrap().unwrap()
}

/// Hands out `chunks` in order, each as soon as asked.
fn hand_out(chunks: Vec<Chunk>) -> impl FnMut() -> Option<Chunk> {
    let mut it = chunks.into_iter();
    move || it.next()
}

fn chunk(offset: u64, len: u64) -> Chunk {
    Chunk {
        offset,
        len,
        scheduled: None,
    }
}

/// Writes `chunks` to a new file in `dir`; the result and what `done` got.
fn write(
    e: &mut UringEngine,
    dir: &Path,
    sync: SyncMode,
    chunks: Vec<Chunk>,
    stop: &dyn Fn() -> bool,
) -> (PathBuf, Result<bool>, Vec<Done>) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("f{n}"));
    let (f, _own) = create_new(&path, sync).unwrap();
    let mut dones = Vec::new();
    let r = e.write_file(
        &f,
        &path,
        &mut hand_out(chunks),
        &mut |d| {
            dones.push(d);
            Ok(())
        },
        stop,
        None,
    );
    (path, r, dones)
}

#[test]
fn the_probe_finds_io_uring_usable_here() {
    // The engine's tests below need it; on a machine that refuses io_uring this says why.
    assert_eq!(usable(), Ok(()), "io_uring is unusable on this machine");
    assert_eq!(usable(), probe());
}

#[test]
fn chunks_land_at_their_offsets_at_depths_1_4_16() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 * KIB;
    for depth in [1, 4, 16] {
        for (sync, registered) in [
            (SyncMode::None, true),
            (SyncMode::Direct, true),
            (SyncMode::Direct, false),
        ] {
            let mut e = engine(depth, len);
            assert_eq!(e.depth(), depth as usize);
            // Registered buffers where the kernel took them, and plain writes where it did not.
            e.fixed &= registered;
            // Every other chunk: the gaps must stay holes (zeros).
            let chunks: Vec<Chunk> = (0..24).map(|k| chunk(2 * k * len, len)).collect();
            let (path, r, dones) = write(&mut e, dir.path(), sync, chunks, &|| false);
            assert!(r.unwrap(), "depth {depth} {sync:?}");
            assert_eq!(dones.len(), 24);
            assert!(dones
                .iter()
                .all(|d| d.len == len && d.started <= d.finished));
            let data = std::fs::read(&path).unwrap();
            assert_eq!(data.len() as u64, 47 * len, "depth {depth} {sync:?}");
            for (i, block) in data.chunks(len as usize).enumerate() {
                let want = if i % 2 == 0 { FILL } else { 0 };
                assert!(block.iter().all(|&b| b == want), "block {i} depth {depth}");
            }
            // The depth was used: as many writes in flight as slots (24 chunks ready at once).
            assert_eq!(e.peak_in_flight(), depth as usize, "{sync:?}");
        }
    }
}

#[test]
fn a_chunk_larger_than_a_slot_goes_out_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    // Slots of 64 KiB; chunks of 256 KiB and a last one of 96 KiB: 4 + 4 + 2 pieces.
    let mut e = engine(4, 64 * KIB);
    let chunks = vec![
        chunk(0, 256 * KIB),
        chunk(256 * KIB, 256 * KIB),
        chunk(512 * KIB, 96 * KIB),
    ];
    let (path, r, dones) = write(&mut e, dir.path(), SyncMode::Direct, chunks, &|| false);
    assert!(r.unwrap());
    let lens: Vec<u64> = dones.iter().map(|d| d.len).collect();
    let mut sorted = lens.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [96 * KIB, 256 * KIB, 256 * KIB]);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(data.len() as u64, 608 * KIB);
    assert!(data.iter().all(|&b| b == FILL));
    assert_eq!(e.peak_in_flight(), 4);
}

#[test]
fn a_stop_mid_file_waits_for_the_writes_in_flight_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 * KIB;
    let mut e = engine(4, len);
    let path = dir.path().join("stopped");
    let (f, _own) = create_new(&path, SyncMode::Direct).unwrap();
    let dones = Cell::new(0u64);
    let handed = Cell::new(0u64);
    let mut next = || {
        handed.set(handed.get() + 1);
        (handed.get() <= 1000).then(|| chunk((handed.get() - 1) * len, len))
    };
    let stop = || dones.get() >= 5;
    let mut done = |_d: Done| {
        dones.set(dones.get() + 1);
        Ok(())
    };
    let r = e.write_file(&f, &path, &mut next, &mut done, &stop, None);
    assert!(!r.unwrap(), "a stopped file is not complete");
    // Nothing handed out after the stop; what was in flight completed and was reported.
    assert!(handed.get() < 20, "handed out {}", handed.get());
    assert!((5..=5 + 4).contains(&dones.get()), "{} done", dones.get());
    assert_eq!(std::fs::metadata(&path).unwrap().len() % len, 0);
    // Nothing left in flight: the same engine writes the next file in full.
    let chunks = (0..8).map(|k| chunk(k * len, len)).collect();
    let (next_path, r, d) = write(&mut e, dir.path(), SyncMode::Direct, chunks, &|| false);
    assert!(r.unwrap());
    assert_eq!(d.len(), 8);
    assert_eq!(std::fs::metadata(next_path).unwrap().len(), 8 * len);
}

#[test]
fn a_chunk_is_never_submitted_before_its_scheduled_start() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 * KIB;
    let mut e = engine(4, len);
    let t0 = Instant::now();
    let chunks = (0..6)
        .map(|k| Chunk {
            scheduled: Some(t0 + Duration::from_millis(3 * k)),
            ..chunk(k * len, len)
        })
        .collect();
    let (_, r, dones) = write(&mut e, dir.path(), SyncMode::None, chunks, &|| false);
    assert!(r.unwrap());
    assert_eq!(dones.len(), 6);
    for d in &dones {
        let s = d.scheduled.unwrap();
        assert!(
            d.started >= s,
            "started {:?} before its start",
            s - d.started
        );
    }
}

#[test]
fn a_stop_ends_the_wait_for_a_late_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(2, 64 * KIB);
    let t0 = Instant::now();
    let far = vec![Chunk {
        scheduled: Some(t0 + Duration::from_secs(3600)),
        ..chunk(0, 64 * KIB)
    }];
    let stop = move || t0.elapsed() > Duration::from_millis(10);
    let (path, r, dones) = write(&mut e, dir.path(), SyncMode::None, far, &stop);
    assert!(!r.unwrap());
    assert!(dones.is_empty());
    // Within a few steps of the stop, not at the start an hour away.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
}

#[test]
fn a_failed_write_is_an_error_naming_the_file() {
    // ENOSPC: /dev/full refuses every write.
    let mut e = engine(4, 64 * KIB);
    let full = Path::new("/dev/full");
    let f = std::fs::OpenOptions::new().write(true).open(full).unwrap();
    let mut next = hand_out((0..8).map(|k| chunk(k * 64 * KIB, 64 * KIB)).collect());
    let e1 = e
        .write_file(&f, full, &mut next, &mut |_| Ok(()), &|| false, None)
        .unwrap_err();
    let msg = e1.to_string();
    assert!(
        msg.contains("/dev/full") && msg.contains("No space left"),
        "{msg}"
    );
    // A file opened read-only: EBADF, named.
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::write(&ro, b"").unwrap();
    let f = std::fs::File::open(&ro).unwrap();
    let mut next = hand_out(vec![chunk(0, 64 * KIB)]);
    let msg = e
        .write_file(&f, &ro, &mut next, &mut |_| Ok(()), &|| false, None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&ro.display().to_string()) && msg.contains("write"),
        "{msg}"
    );
    // Drained after each error: the engine still writes.
    let chunks = (0..4).map(|k| chunk(k * 64 * KIB, 64 * KIB)).collect();
    let (_, r, _) = write(&mut e, dir.path(), SyncMode::None, chunks, &|| false);
    assert!(r.unwrap());
}

#[test]
fn an_error_from_done_ends_the_file_after_the_writes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(4, 64 * KIB);
    let path = dir.path().join("f");
    let (f, _own) = create_new(&path, SyncMode::None).unwrap();
    let calls = RefCell::new(0);
    let mut next = hand_out((0..64).map(|k| chunk(k * 64 * KIB, 64 * KIB)).collect());
    let mut done = |_d: Done| {
        *calls.borrow_mut() += 1;
        Err(Error::Interrupted("the run is over".into()))
    };
    let err = e
        .write_file(&f, &path, &mut next, &mut done, &|| false, None)
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    assert_eq!(*calls.borrow(), 1, "done is not called after it failed");
    let chunks = (0..4).map(|k| chunk(k * 64 * KIB, 64 * KIB)).collect();
    let (_, r, d) = write(&mut e, dir.path(), SyncMode::None, chunks, &|| false);
    assert!(r.unwrap());
    assert_eq!(d.len(), 4);
}

#[test]
fn completions_short_writes_retries_and_errors() {
    let p = Piece {
        chunk: 3,
        offset: 4096,
        len: 16384,
        written: 0,
        retries: 0,
    };
    assert!(matches!(settle(p, 16384), Settled::Written));
    // A short write: the remainder goes out again, from where it stopped.
    let Settled::Again(rest) = settle(p, 4096) else {
        panic!("a short write is resubmitted")
    };
    assert_eq!((rest.written, rest.offset, rest.len), (4096, 4096, 16384));
    assert!(matches!(settle(rest, 12288), Settled::Written));
    // Nothing written: an error, not a loop.
    let Settled::Failed(e) = settle(rest, 0) else {
        panic!("a write of nothing is an error")
    };
    assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    assert!(e.to_string().contains("offset 8192"), "{e}");
    // EAGAIN is retried, up to a bound.
    let Settled::Again(again) = settle(p, -libc::EAGAIN) else {
        panic!("EAGAIN is retried")
    };
    assert_eq!((again.retries, again.written), (1, 0));
    let tired = Piece {
        retries: MAX_RETRIES,
        ..p
    };
    assert!(matches!(settle(tired, -libc::EAGAIN), Settled::Failed(_)));
    // ENOSPC and the others: failed, with the errno.
    let Settled::Failed(e) = settle(p, -libc::ENOSPC) else {
        panic!("ENOSPC fails")
    };
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
}

#[test]
fn the_engine_falls_back_when_io_uring_is_refused_and_says_why() {
    // Depth 1: one at a time was asked for.
    assert!(matches!(
        choose(1, MIB_TEST, || Ok(())).unwrap(),
        Choice::Sync { why: None }
    ));
    // A refusing probe (a seccomp profile, as a container's default): the synchronous engine,
    // and why, naming the depth asked for and the probe's reason.
    let refused = || Err("io_uring is not permitted here: Operation not permitted".to_string());
    let Choice::Sync { why: Some(why) } = choose(4, MIB_TEST, refused).unwrap() else {
        panic!("a refused io_uring falls back")
    };
    assert!(
        why.contains("iodepth 4") && why.contains("not permitted"),
        "{why}"
    );
    // Allowed: io_uring, with the depth asked for.
    let Choice::Uring(e) = choose(8, MIB_TEST, usable).unwrap() else {
        panic!("io_uring is usable here")
    };
    let d = e.describe();
    assert!(d.starts_with("io_uring, iodepth 8"), "{d}");
}

const MIB_TEST: u64 = 1024 * KIB;
