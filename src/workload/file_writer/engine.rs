//! How a stream's chunks reach the device: the [`Engine`] a stream hands its chunks to;
//! [`SyncEngine`], which writes them one at a time with positional writes (`pwrite`) from
//! one buffer aligned for O_DIRECT; and, for `iodepth` above 1, the io_uring engine
//! (`uring`, Linux), which keeps that many writes in flight.
//!
//! The stream ([`super::stream`]) decides which file, which chunk and when (each chunk's
//! scheduled start, for a paced run); the engine only how the bytes get there.
//!
//! With verified data (`verify`), the stream hands the engine a [`Fill`] too: every piece is
//! filled with self-describing blocks before it is written, in a way that keeps the cost out
//! of the write path where it can: the synchronous engine fills buffered writes in
//! sub-pieces of at most [`FILL_PIECE_BYTES`] (the filled bytes are still in the CPU's cache
//! when the kernel copies them), and with O_DIRECT fills the next piece on a helper thread
//! while the current one is written (two buffers); the io_uring engine fills a slot's buffer
//! when it takes a new piece, while the other slots' writes are in flight (never again for
//! the remainder of a short write). Without it the bytes are the seed's, as ever.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{write_all_at, write_chunk_at, ChunkBuf};
use super::{FileWriterConfig, SyncMode};
use crate::error::{Error, Result};
use crate::stats::WriterGuard;

mod overlap;
#[cfg(target_os = "linux")]
mod uring;

/// One chunk a stream hands to its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Where in the file it goes, bytes.
    pub offset: u64,
    /// Its length, bytes.
    pub len: u64,
    /// When it is due to start (a paced run); `None`: at once.
    pub scheduled: Option<Instant>,
}

/// One chunk written in full (its latencies: `Done::service`, `Done::response`,
/// `Done::start_lag`, with the schedule in [`super::pace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Done {
    /// Its length, bytes.
    pub len: u64,
    /// When it was due to start, as the stream scheduled it.
    pub scheduled: Option<Instant>,
    /// When its write was submitted.
    pub started: Instant,
    /// When its write completed.
    pub finished: Instant,
}

/// Largest piece the synchronous engine fills and then writes at once in a buffered verified
/// write: small enough to stay in the CPU's cache between the fill and the kernel's copy
/// (docs/VERIFY.md, Figures: 16 MiB pieces cost 0.73x in CPU, 1 MiB ones 0.82x). A multiple of
/// every verify block size.
pub(crate) const FILL_PIECE_BYTES: u64 = 1 << 20;

/// How an engine fills each piece with verified blocks before writing it (`verify`).
pub(crate) struct Fill<'a> {
    /// Fills `buf`, the file's bytes from the offset on (a whole number of verify blocks).
    pub fill: &'a (dyn Fn(&mut [u8], u64) -> Result<()> + Sync),
    /// The file's size, bytes: nothing past it is filled (a piece filled ahead stops there).
    pub file_bytes: u64,
    /// Called on a helper thread the engine fills from (its guard dropped there), so that its
    /// CPU is the client's ([`Context::writer_thread`](crate::workload::Context::writer_thread)).
    pub thread: &'a (dyn Fn() -> Option<WriterGuard> + Sync),
}

/// How chunks reach the device.
pub(crate) trait Engine: Send {
    /// Writes `file`'s chunks (at `path`, for errors) as `next` hands them out (`None`: no
    /// more — the file is complete or the run stops), keeping at most the engine's depth in
    /// flight, never submitting a chunk before its `scheduled` start (waiting in steps that
    /// notice `stop()`), and calls `done` for each completed chunk. `Ok(true)` when every
    /// chunk handed out was written in full; `Ok(false)` when `stop()` cut one short. With
    /// `fill`, every piece is filled by it before it is written.
    fn write_file(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
        fill: Option<&Fill<'_>>,
    ) -> Result<bool>;

    /// Which engine this is, for the log and the report (`clients[].engine`): `sync`,
    /// `io_uring, iodepth 4, registered buffers`, or, where the depth asked for could not be
    /// had, `sync` with why.
    fn describe(&self) -> String;
}

/// The engine for one of `config`'s streams, each its own (its own buffers, its own ring):
/// with `iodepth` above 1, io_uring keeping that many writes in flight where the kernel lets
/// this process use it ([`uring::usable`], probed once); otherwise, or where it does not, one
/// write at a time ([`SyncEngine`], whose [`Engine::describe`] then says why).
///
/// # Errors
/// [`Error::Config`] if the buffers cannot be allocated.
pub(crate) fn for_config(config: &FileWriterConfig) -> Result<Box<dyn Engine>> {
    let (depth, chunk) = (config.iodepth, config.chunk_size_bytes);
    #[cfg(target_os = "linux")]
    let why = match uring::choose(depth, chunk, uring::usable)? {
        uring::Choice::Uring(engine) => return Ok(engine),
        uring::Choice::Sync { why } => why,
    };
    #[cfg(not(target_os = "linux"))]
    let why = (depth > 1).then(|| format!("iodepth {depth} asked; io_uring is Linux only"));
    let mut engine = SyncEngine::new(chunk)?;
    engine.why = why;
    engine.direct = config.sync == SyncMode::Direct;
    Ok(Box::new(engine))
}

/// Longest step of a wait for a chunk's scheduled start: a stop is noticed within it.
const WAIT_STEP: Duration = Duration::from_millis(50);

/// Waits until `at`, in steps of at most [`WAIT_STEP`]; `false` if `stop()` turned true
/// first.
pub(crate) fn wait_until(at: Instant, stop: &dyn Fn() -> bool) -> bool {
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(WAIT_STEP));
    }
}

/// One write at a time (a depth of 1), synchronous: `pwrite` from one aligned buffer, a chunk
/// larger than [`PIECE_MB`](super::PIECE_MB) in pieces (a stop is noticed between them).
pub(crate) struct SyncEngine {
    /// The buffers: one; a verified O_DIRECT write adds a second (filled while the other is
    /// written).
    bufs: Vec<ChunkBuf>,
    chunk_bytes: u64,
    /// The file is written with O_DIRECT (a verified write then fills ahead on a helper
    /// thread).
    direct: bool,
    /// Why one write at a time where more were asked for (`iodepth` above 1 without
    /// io_uring).
    why: Option<String>,
}

impl SyncEngine {
    /// An engine for chunks of up to `chunk_bytes`.
    ///
    /// # Errors
    /// [`Error::Config`] if its buffer cannot be allocated.
    pub(crate) fn new(chunk_bytes: u64) -> Result<SyncEngine> {
        Ok(SyncEngine {
            bufs: vec![ChunkBuf::new(chunk_bytes)?],
            chunk_bytes,
            direct: false,
            why: None,
        })
    }

    /// Makes sure the engine holds at least `n` buffers (a second one at the first verified
    /// O_DIRECT write; one lost to a helper thread that failed is made again).
    fn ensure(&mut self, n: usize) -> Result<()> {
        while self.bufs.len() < n {
            self.bufs.push(ChunkBuf::new(self.chunk_bytes)?);
        }
        Ok(())
    }

    /// Chunk `c` filled (by `fill`) and written in sub-pieces of at most
    /// [`FILL_PIECE_BYTES`], a stop noticed between them; `Ok(false)` when stopped.
    fn write_filled_chunk(
        &mut self,
        file: &File,
        path: &Path,
        c: &Chunk,
        fill: &Fill<'_>,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        self.ensure(1)?;
        let Some(buf) = self.bufs.first_mut() else {
            return Err(Error::Internal("the sync engine has no buffer".into()));
        };
        let piece = buf.piece_mut();
        let max = (piece.len() as u64).min(FILL_PIECE_BYTES);
        let end = c.offset + c.len;
        let mut at = c.offset;
        while at < end {
            if stop() {
                return Ok(false);
            }
            let n = (end - at).min(max) as usize;
            let bytes = &mut piece[..n];
            (fill.fill)(bytes, at)?;
            write_all_at(file, bytes, at).map_err(|e| Error::file("write", path, e))?;
            at += n as u64;
        }
        Ok(true)
    }
}

impl Engine for SyncEngine {
    fn write_file(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
        fill: Option<&Fill<'_>>,
    ) -> Result<bool> {
        if let (Some(f), true) = (fill, self.direct) {
            return self.write_overlapped(file, path, next, done, stop, f);
        }
        while let Some(c) = next() {
            if let Some(at) = c.scheduled {
                if !wait_until(at, stop) {
                    return Ok(false);
                }
            }
            let started = Instant::now();
            let full = match fill {
                Some(f) => self.write_filled_chunk(file, path, &c, f, stop)?,
                None => {
                    self.ensure(1)?;
                    let Some(buf) = self.bufs.first() else {
                        return Err(Error::Internal("the sync engine has no buffer".into()));
                    };
                    write_chunk_at(file, buf, c.offset, c.len, stop)
                        .map_err(|e| Error::file("write", path, e))?
                }
            };
            if !full {
                return Ok(false);
            }
            done(Done {
                len: c.len,
                scheduled: c.scheduled,
                started,
                finished: Instant::now(),
            })?;
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        match &self.why {
            None => "sync".into(),
            Some(why) => format!("sync, one write at a time ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::file_writer::files::create_new;
    use crate::workload::file_writer::SyncMode;

    #[test]
    fn the_sync_engine_writes_what_it_is_handed_and_waits_for_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let (f, _own) = create_new(&path, SyncMode::None).unwrap();
        let mut e = SyncEngine::new(4096).unwrap();
        let t0 = Instant::now();
        let mut chunks = (0..3u64).map(|i| Chunk {
            offset: i * 4096,
            len: 4096,
            scheduled: Some(t0 + Duration::from_millis(20 * i)),
        });
        let mut done = Vec::new();
        let full = e
            .write_file(
                &f,
                &path,
                &mut || chunks.next(),
                &mut |d| {
                    done.push(d);
                    Ok(())
                },
                &|| false,
                None,
            )
            .unwrap();
        assert!(full);
        assert_eq!(f.metadata().unwrap().len(), 3 * 4096);
        assert_eq!(done.len(), 3);
        for d in &done {
            assert!(d.started >= d.scheduled.unwrap() && d.finished >= d.started);
        }
        // A stop during the wait for a chunk's start: nothing more is written.
        let mut late = std::iter::once(Chunk {
            offset: 3 * 4096,
            len: 4096,
            scheduled: Some(Instant::now() + Duration::from_secs(3600)),
        });
        let t = Instant::now();
        let stopped = e
            .write_file(
                &f,
                &path,
                &mut || late.next(),
                &mut |_| Ok(()),
                &|| t.elapsed() > Duration::from_millis(30),
                None,
            )
            .unwrap();
        assert!(!stopped);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(f.metadata().unwrap().len(), 3 * 4096);
    }
}
