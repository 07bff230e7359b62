//! The writer's verified data (`verify`): one run id per run, the checks of written files
//! (before `keep_files` deletes or `overwrite` rewrites one, or when the run ends), what a bad
//! block does to the run, the test-only pause hook, and `verify_peer`'s check of another
//! client's files. docs/VERIFY.md, "The writer", says it for users.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::files::{create_new, remove_leftover};
use super::{FileWriterConfig, SyncMode, VerifyMode};
use crate::error::{Error, Result};
use crate::verify::{
    check_file_guarded, fill_chunk, parse_file_name, BlockContext, CheckGuard, Expected, Finding,
    VerifyConfig,
};
use crate::workload::Context;

/// The test hook's environment variable: a directory where the writer leaves a `.pause` marker
/// before each check and a `.written` marker after each complete file (test-only).
pub const PAUSE_ENV: &str = "LOADMON_TEST_VERIFY_PAUSE";
/// Longest wait of the pause hook for its marker to be removed.
const PAUSE_MAX: Duration = Duration::from_secs(30);
/// Step of the waits (the pause hook, a peer's end).
const POLL: Duration = Duration::from_millis(10);
/// Longest wait for the peer to finish writing (`verify_peer`).
pub const PEER_WAIT: Duration = Duration::from_secs(60);
/// Largest done marker read (a hostile one is refused, not allocated for).
const MARKER_MAX_BYTES: u64 = 64 << 20;
/// How much older than the run's start a peer's file may look and still be of this run: a
/// file system's coarse time stamps (`verify_peer`).
const FRESH_SLACK: Duration = Duration::from_secs(1);

/// A run's verify settings and state, shared by its streams.
#[derive(Debug)]
pub(super) struct RunVerify {
    pub(super) mode: VerifyMode,
    /// The run's id (every stream's blocks carry it); 0 without verify.
    pub(super) run_id: u64,
    block_bytes: u32,
    file_bytes: u64,
    /// Checks read with O_DIRECT (`sync = direct`).
    direct: bool,
    /// `verify_continue`: a bad block does not end the run.
    keep_going: bool,
    /// `verify_peer`: the end's check is of the next client's files.
    pub(super) peer: bool,
    /// The pause hook's directory (test-only), read once per run.
    pause: Option<PathBuf>,
    /// The run's first finding, as text (with `verify_continue`: the run's verdict at its end).
    first: Mutex<Option<String>>,
    /// When the run started, less [`FRESH_SLACK`]: a peer's done marker or data file last
    /// written before is an earlier run's (`verify_peer`).
    fresh_from: SystemTime,
}

/// A complete file a stream kept: what the end check (or a peer) expects of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeptFile {
    /// Its name in the out dir.
    pub(super) name: String,
    pub(super) stream: u32,
    pub(super) file_seq: u64,
    pub(super) generation: u64,
}

/// What a writer leaves in the out dir when its write loop ends (`verify_peer`):
/// `.loadmon_done_<client id>`, for the client that checks its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DoneMarker {
    client_id: u32,
    run_id: u64,
    block_bytes: u32,
    file_size_bytes: u64,
    /// Its complete kept files (a file whose last rewrite was cut short is not listed).
    files: Vec<KeptFile>,
}

/// A finding as the run's error text: `verify: <class> at offset <o> of <path> (<n>
/// block(s)): expected <e>, found <f>`.
pub(super) fn finding_text(f: &Finding) -> String {
    format!("verify: {}", f.sentence())
}

/// Now, Unix nanoseconds (0 before 1970).
fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The done marker's name for client `id`.
fn done_name(id: u32) -> String {
    format!(".loadmon_done_{id}")
}

impl RunVerify {
    /// The run's verify state: a fresh run id, the pause hook's directory (test-only: the
    /// environment is read here, once per run). Says the run id in the client's log.
    pub(super) fn new(config: &FileWriterConfig, ctx: &Context) -> Result<RunVerify> {
        let on = config.verify != VerifyMode::None;
        let run_id = if on { crate::verify::new_run_id()? } else { 0 };
        let block_bytes = u32::try_from(config.verify_block_bytes).map_err(|_| {
            Error::Config(format!(
                "verify block of {} bytes is out of bounds",
                config.verify_block_bytes
            ))
        })?;
        let pause = if on {
            std::env::var_os(PAUSE_ENV)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        } else {
            None
        };
        if on {
            ctx.start_verify();
            ctx.note(
                false,
                format!(
                    "verify: run id {run_id:#018x}, {block_bytes}-byte blocks, checked {}{}{}",
                    match (config.verify, config.verify_peer) {
                        (_, true) => "at the end, another client's files (verify_peer)",
                        (VerifyMode::End, _) => "at the end",
                        _ => "before a file is deleted or rewritten",
                    },
                    if config.verify_continue {
                        "; a bad block does not stop the run (verify_continue)"
                    } else {
                        ""
                    },
                    if pause.is_some() {
                        "; the test pause hook is on"
                    } else {
                        ""
                    }
                ),
            );
        }
        Ok(RunVerify {
            mode: config.verify,
            run_id,
            block_bytes,
            file_bytes: config.file_size_bytes,
            direct: config.sync == SyncMode::Direct,
            keep_going: config.verify_continue,
            peer: config.verify_peer,
            pause,
            first: Mutex::new(None),
            fresh_from: SystemTime::now()
                .checked_sub(FRESH_SLACK)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// Whether pieces are filled with verified blocks.
    pub(super) fn on(&self) -> bool {
        self.mode != VerifyMode::None
    }

    /// What the blocks of file `file_seq` of `stream`, generation `generation`, carry.
    pub(super) fn block_context(
        &self,
        client_id: u32,
        stream: u32,
        file_seq: u64,
        generation: u64,
    ) -> BlockContext {
        BlockContext {
            block_bytes: self.block_bytes,
            run_id: self.run_id,
            client_id,
            stream,
            file_seq,
            generation,
            write_time_ns: 0,
            file_size_bytes: self.file_bytes,
        }
    }

    /// Fills `buf`, the bytes of the file `ctx` describes from `offset` on, stamped now.
    pub(super) fn fill(ctx: &BlockContext, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut c = *ctx;
        c.write_time_ns = unix_ns();
        fill_chunk(buf, &c, offset)
    }

    /// Checks `path` against `expected` (after the pause hook, if on), counts it for the
    /// client ([`Context::record_verify`]), and judges it: a bad block is the run's error
    /// (its first finding's text), or, with `verify_continue`, the run's first finding is
    /// kept for its end. The file is read through no symbolic link, and must be the file
    /// `file_id` (device, inode) where known (this client's own). `stop`: the pause and the
    /// check end early (between two reads), and the file counts as not checked.
    pub(super) fn check(
        &self,
        ctx: &Context,
        path: &Path,
        expected: &Expected,
        file_id: Option<(u64, u64)>,
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        self.pause(path, expected.generation.unwrap_or(0), stop);
        let config = VerifyConfig {
            direct: self.direct,
            max_findings: crate::protocol::MAX_FINDINGS_SENT,
            ..VerifyConfig::default()
        };
        // The thread that reads ahead is one of the client's writer threads, as the fill's.
        let read_thread = || ctx.writer_thread();
        let guard = CheckGuard {
            no_follow: true,
            file_id,
            stop: Some(stop),
            read_thread: Some(&read_thread),
        };
        let report = match check_file_guarded(path, expected, &config, &guard) {
            Err(Error::Interrupted(_)) if stop() => return Ok(()),
            r => r?,
        };
        ctx.record_verify(&report)?;
        let Some(f) = report.findings.first() else {
            return Ok(());
        };
        let text = finding_text(f);
        if !self.keep_going {
            return Err(Error::Workload(text));
        }
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert(text);
        }
        Ok(())
    }

    /// The run's outcome as far as its checks go: with `verify_continue`, its first finding
    /// (if any) is its error.
    pub(super) fn end_result(&self) -> Result<()> {
        match self.first.lock().ok().and_then(|f| f.clone()) {
            Some(text) => Err(Error::Workload(text)),
            None => Ok(()),
        }
    }

    /// The pause hook (test-only): `<dir>/<name>.pause` (holding the generation checked) is
    /// made, and the check waits until it is removed (at most [`PAUSE_MAX`], or a stop).
    fn pause(&self, path: &Path, generation: u64, stop: &dyn Fn() -> bool) {
        let Some(marker) = self.marker(path, "pause") else {
            return;
        };
        if put_marker(&marker, generation).is_err() {
            return;
        }
        let t = Instant::now();
        while marker.exists() && t.elapsed() < PAUSE_MAX && !stop() {
            std::thread::sleep(POLL);
        }
        let _ = std::fs::remove_file(&marker);
    }

    /// The pause hook's record of a complete file (test-only): `<dir>/<name>.written`,
    /// holding the generation just written.
    pub(super) fn written(&self, path: &Path, generation: u64) {
        if let Some(marker) = self.marker(path, "written") {
            let _ = put_marker(&marker, generation);
        }
    }

    /// `<pause dir>/<file name>.<what>`, with the hook on.
    fn marker(&self, path: &Path, what: &str) -> Option<PathBuf> {
        let dir = self.pause.as_ref()?;
        let name = path.file_name()?.to_string_lossy();
        Some(dir.join(format!("{name}.{what}")))
    }

    /// Removes this client's done marker of an earlier run (`verify_peer`), if it is its own.
    pub(super) fn clear_done(out_dir: &Path, client_id: u32) {
        remove_leftover(&out_dir.join(done_name(client_id)));
    }

    /// `verify_peer` at the run's end: says this client is done writing (its done marker,
    /// listing `own`), then checks the next client's kept files once that client is done
    /// (see docs/VERIFY.md). A client alone in the out dir checks its own, with a warning.
    pub(super) fn check_peer(
        &self,
        ctx: &Context,
        out_dir: &Path,
        own: Vec<KeptFile>,
    ) -> Result<()> {
        let me = ctx.client_id();
        let marker = DoneMarker {
            client_id: me,
            run_id: self.run_id,
            block_bytes: self.block_bytes,
            file_size_bytes: self.file_bytes,
            files: own,
        };
        put_done(out_dir, &marker)?;
        let stop = || ctx.is_stopped();
        let t = Instant::now();
        let peer = loop {
            let Some(peer) = next_client(out_dir, me, self.fresh_from)? else {
                ctx.note(
                    true,
                    format!(
                        "verify_peer: no other client's files in {}: this client checks its own",
                        out_dir.display()
                    ),
                );
                break marker;
            };
            if let Some(m) = read_done(out_dir, peer, self.fresh_from)? {
                ctx.note(
                    false,
                    format!(
                        "verify_peer: checking client {peer}'s {} kept file(s)",
                        m.files.len()
                    ),
                );
                break m;
            }
            if stop() {
                return Ok(());
            }
            if t.elapsed() >= PEER_WAIT {
                return Err(Error::Workload(format!(
                    "verify_peer: client {peer}, whose files this client checks, did not finish \
                     writing within {} s (no {} in {}): its files were not checked",
                    PEER_WAIT.as_secs(),
                    done_name(peer),
                    out_dir.display()
                )));
            }
            std::thread::sleep(POLL * 10);
        };
        for f in &peer.files {
            if stop() {
                return Ok(());
            }
            let id = parse_file_name(&f.name);
            if id.map(|i| (i.client_id, i.stream, i.file_seq))
                != Some((peer.client_id, f.stream, f.file_seq))
            {
                return Err(Error::Workload(format!(
                    "verify_peer: client {}'s done marker names {:?}, not one of its data files",
                    peer.client_id, f.name
                )));
            }
            let expected = Expected {
                block_bytes: Some(peer.block_bytes),
                run_id: Some(peer.run_id),
                client_id: Some(peer.client_id),
                stream: Some(f.stream),
                file_seq: Some(f.file_seq),
                generation: Some(f.generation),
                file_size_bytes: Some(peer.file_size_bytes),
            };
            self.check(ctx, &out_dir.join(&f.name), &expected, None, &stop)?;
        }
        Ok(())
    }
}

/// Writes `marker` (the generation) whole: a reader sees no file or all of it.
fn put_marker(marker: &Path, generation: u64) -> std::io::Result<()> {
    let mut tmp = marker.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{generation}\n"))?;
    std::fs::rename(&tmp, marker)
}

/// Writes this client's done marker whole (created new, then renamed into place).
fn put_done(out_dir: &Path, marker: &DoneMarker) -> Result<()> {
    use std::io::Write;
    let path = out_dir.join(done_name(marker.client_id));
    let tmp = out_dir.join(format!("{}.tmp", done_name(marker.client_id)));
    let (mut f, _own) = create_new(&tmp, SyncMode::None)?;
    let text = serde_json::to_vec(marker)
        .map_err(|e| Error::Internal(format!("the done marker as JSON: {e}")))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::file("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| Error::file("rename", &tmp, e))
}

/// Client `id`'s done marker, if it is there and of this run (written since `fresh_from`: an
/// earlier run's is not yet this run's). Read bounded, through no link, never blocking (a
/// FIFO under the name is refused).
fn read_done(out_dir: &Path, id: u32, fresh_from: SystemTime) -> Result<Option<DoneMarker>> {
    use std::io::Read;
    let path = out_dir.join(done_name(id));
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let not_marker = |why: String| {
        Error::Workload(format!(
            "verify_peer: {} is not a done marker: {why}",
            path.display()
        ))
    };
    let f = match opts.open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(not_marker(format!("a symbolic link, not followed ({e})")))
        }
        Err(e) => return Err(Error::file("open", &path, e)),
    };
    let meta = f.metadata().map_err(|e| Error::file("stat", &path, e))?;
    if !meta.is_file() {
        return Err(not_marker("not a regular file".into()));
    }
    if meta.modified().is_ok_and(|t| t < fresh_from) {
        return Ok(None);
    }
    let mut text = Vec::new();
    f.take(MARKER_MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::file("read", &path, e))?;
    if text.len() as u64 > MARKER_MAX_BYTES {
        return Err(not_marker(format!("over {MARKER_MAX_BYTES} bytes")));
    }
    let m: DoneMarker = serde_json::from_slice(&text).map_err(|e| not_marker(e.to_string()))?;
    if m.client_id != id {
        return Err(Error::Workload(format!(
            "verify_peer: {} says it is client {}'s",
            path.display(),
            m.client_id
        )));
    }
    Ok(Some(m))
}

/// The client whose files client `me` checks: the next id above its own with data files or a
/// done marker in `out_dir` written since `fresh_from` (an earlier run's leftovers are no
/// peer), wrapping round to the lowest; `None` when there is none.
fn next_client(out_dir: &Path, me: u32, fresh_from: SystemTime) -> Result<Option<u32>> {
    let mut ids = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(out_dir).map_err(|e| Error::file("list", out_dir, e))? {
        let e = e.map_err(|e| Error::file("list", out_dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let id = match name.strip_prefix(".loadmon_done_") {
            Some(id) => id.parse::<u32>().ok(),
            None => parse_file_name(&name).map(|n| n.client_id),
        };
        let Some(id) = id.filter(|&id| id != me && !ids.contains(&id)) else {
            continue;
        };
        // The entry's own time (no link followed); one that vanished since is no evidence.
        if e.metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= fresh_from)
        {
            ids.insert(id);
        }
    }
    Ok(ids
        .range(me..)
        .next()
        .or_else(|| ids.iter().next())
        .copied())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::workload::file_writer::KeepFiles;

    const STAMP: &str = "2026-12-05_10.11.12";

    /// `f()` on a thread of its own, bounded: a call that blocks (an open of a FIFO) fails the
    /// test.
    fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("blocked")
    }

    fn mkfifo(path: &Path) {
        assert!(std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success());
    }

    fn marker_text(id: u32, files: &[(&str, u64)]) -> String {
        let m = DoneMarker {
            client_id: id,
            run_id: 1,
            block_bytes: 4096,
            file_size_bytes: 8192,
            files: files
                .iter()
                .map(|(name, n)| KeptFile {
                    name: (*name).to_string(),
                    stream: 0,
                    file_seq: *n,
                    generation: 1,
                })
                .collect(),
        };
        serde_json::to_string(&m).unwrap()
    }

    /// Sets `path`'s modification time (no link followed: `path` is a regular file here) an
    /// hour back: an earlier run's.
    fn age(path: &Path) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_done_marker_is_never_followed_nor_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let from = SystemTime::now() - FRESH_SLACK;
        let marker = dir.path().join(done_name(5));
        // A FIFO: refused at once, not waited on for a writer.
        mkfifo(&marker);
        let d = dir.path().to_path_buf();
        let e = bounded(move || read_done(&d, 5, from))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A symbolic link (to an endless device, to a big file): not followed.
        for target in ["/dev/zero", "/proc/self/exe"] {
            std::fs::remove_file(&marker).unwrap();
            std::os::unix::fs::symlink(target, &marker).unwrap();
            let d = dir.path().to_path_buf();
            let e = bounded(move || read_done(&d, 5, from))
                .unwrap_err()
                .to_string();
            assert!(e.contains("symbolic link, not followed"), "{e}");
        }
        // A huge file (sparse): refused past the bound, never read whole.
        std::fs::remove_file(&marker).unwrap();
        let f = std::fs::File::create(&marker).unwrap();
        f.set_len(MARKER_MAX_BYTES * 4).unwrap();
        let e = read_done(dir.path(), 5, from).unwrap_err().to_string();
        assert!(e.contains("over"), "{e}");
        // Garbage, and another client's marker under this one's name.
        std::fs::write(&marker, b"\x00\xffnot json").unwrap();
        let e = read_done(dir.path(), 5, from).unwrap_err().to_string();
        assert!(e.contains("is not a done marker"), "{e}");
        std::fs::write(&marker, marker_text(6, &[])).unwrap();
        let e = read_done(dir.path(), 5, from).unwrap_err().to_string();
        assert!(e.contains("says it is client 6's"), "{e}");
        std::fs::write(&marker, marker_text(5, &[])).unwrap();
        assert!(read_done(dir.path(), 5, from).unwrap().is_some());
    }

    #[test]
    fn an_earlier_runs_marker_and_files_are_no_peer() {
        let dir = tempfile::tempdir().unwrap();
        let from = SystemTime::now() - FRESH_SLACK;
        // Client 5 of an earlier run: its data file and its done marker, an hour old.
        let old_file = dir.path().join(format!("client_5_0_{STAMP}"));
        std::fs::write(&old_file, b"x").unwrap();
        let old_marker = dir.path().join(done_name(5));
        std::fs::write(
            &old_marker,
            marker_text(5, &[(&format!("client_5_0_{STAMP}"), 0)]),
        )
        .unwrap();
        age(&old_file);
        age(&old_marker);
        assert_eq!(next_client(dir.path(), 3, from).unwrap(), None);
        assert!(read_done(dir.path(), 5, from).unwrap().is_none());
        // Client 9 of this run (a data file written now) is the peer; client 5's marker,
        // written anew by this run, is its own again.
        std::fs::write(dir.path().join(format!("client_9_0_{STAMP}")), b"x").unwrap();
        assert_eq!(next_client(dir.path(), 3, from).unwrap(), Some(9));
        std::fs::write(&old_marker, marker_text(5, &[])).unwrap();
        assert_eq!(next_client(dir.path(), 3, from).unwrap(), Some(5));
        assert!(read_done(dir.path(), 5, from).unwrap().is_some());
    }

    fn peer_run(dir: &Path) -> (Arc<RunVerify>, Context, crate::workload::RunControl) {
        let config = FileWriterConfig {
            out_dir: dir.to_path_buf(),
            verify: VerifyMode::End,
            verify_peer: true,
            file_size_bytes: 8192,
            keep_files: KeepFiles::Last(2),
            ..Default::default()
        };
        let (ctx, control, _rx) = Context::new(3, Instant::now(), Some(Duration::from_secs(1)));
        let v = RunVerify::new(&config, &ctx).unwrap();
        (Arc::new(v), ctx, control)
    }

    #[cfg(unix)]
    #[test]
    fn a_peers_marker_names_only_its_own_data_files_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (v, ctx, _control) = peer_run(dir.path());
        let marker = dir.path().join(done_name(5));
        // A name outside the out dir.
        std::fs::write(&marker, marker_text(5, &[("../../etc/passwd", 0)])).unwrap();
        let e = v
            .check_peer(&ctx, dir.path(), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not one of its data files"), "{e}");
        // A data file of the peer's name that is a link (to a FIFO, to a big file): not
        // followed, not waited on.
        let name = format!("client_5_0_{STAMP}");
        std::fs::write(&marker, marker_text(5, &[(&name, 0)])).unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // The peer's check, on a thread of its own (a hang would fail the bound).
        let check_peer_bounded = || {
            bounded({
                let (v, ctx, d) = (Arc::clone(&v), ctx.clone(), dir.path().to_path_buf());
                move || {
                    v.check_peer(&ctx, &d, Vec::new())
                        .map_err(|e| e.to_string())
                }
            })
        };
        for target in [fifo.as_path(), Path::new("/proc/self/exe")] {
            let _ = std::fs::remove_file(dir.path().join(&name));
            std::os::unix::fs::symlink(target, dir.path().join(&name)).unwrap();
            let e = check_peer_bounded().unwrap_err();
            assert!(e.contains("symbolic link") && e.contains(&name), "{e}");
        }
        // The FIFO itself under the name: refused at once.
        std::fs::remove_file(dir.path().join(&name)).unwrap();
        std::fs::rename(&fifo, dir.path().join(&name)).unwrap();
        let e = check_peer_bounded().unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// A stop ends a check between two reads: a big file is not read to its end, and counts
    /// as not checked (no finding, no figures).
    #[test]
    fn a_stop_ends_a_check_of_a_big_file_between_two_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (v, ctx, control) = peer_run(dir.path());
        let path = dir.path().join(format!("client_3_0_{STAMP}"));
        let b = v.block_context(3, 0, 0, 1);
        let b = BlockContext {
            file_size_bytes: 256 << 20,
            ..b
        };
        let mut data = vec![0u8; 256 << 20];
        fill_chunk(&mut data, &b, 0).unwrap();
        std::fs::write(&path, &data).unwrap();
        drop(data);
        let reads = std::sync::atomic::AtomicU32::new(0);
        let stop = || reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
        let t = Instant::now();
        v.check(&ctx, &path, &Expected::of(&b), None, &stop)
            .unwrap();
        // One read of 4 MiB, not 64 of them.
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(reads.load(std::sync::atomic::Ordering::Relaxed) <= 3);
        let stats = control.counters().verify_stats().unwrap();
        assert_eq!((stats.files_checked, stats.blocks_checked), (0, 0));
        // Unstopped, the same file is checked whole and clean.
        v.check(&ctx, &path, &Expected::of(&b), None, &|| false)
            .unwrap();
        let stats = control.counters().verify_stats().unwrap();
        assert_eq!(stats.files_checked, 1);
        assert_eq!(stats.blocks_checked, (256 << 20) / 4096);
    }
}
