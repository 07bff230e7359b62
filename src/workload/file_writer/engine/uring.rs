//! The io_uring engine: up to `depth` writes in flight to one file, as fio's
//! `ioengine=io_uring` keeps `iodepth` of them, from buffers aligned for O_DIRECT (one per
//! slot, allocated once, registered with the kernel when it allows it).
//!
//! A chunk goes out as one write per slot buffer's worth (at most [`PIECE_MB`](super::super::PIECE_MB),
//! as the synchronous path writes it); a short write is resubmitted for its remainder, an
//! `EAGAIN`/`EINTR` completion is retried (at most [`MAX_RETRIES`] times in a row), and any
//! other failure (`ENOSPC`, `EIO`, …) ends the file with an error naming it. A chunk with a
//! scheduled start is never submitted before it; the waits are at most [`WAIT_STEP`] long and look at
//! `stop` in between. A stop (or an error) submits nothing more and waits for the writes in
//! flight: the kernel reads the buffers until each write completes, so no call returns before
//! (a ring that cannot be waited on any more leaks its buffers rather than freeing them under the
//! kernel).
//!
//! [`usable`] probes, once per process, whether io_uring can write here: a kernel without it (or
//! without its timed waits, Linux 5.11), a seccomp profile that refuses it (Docker's default
//! refuses `io_uring_setup`), or `kernel.io_uring_disabled` send the stream to the synchronous
//! engine, whose description says why: the client says it once in its log, and the report
//! shows it (`clients[].engine`).
//!
//! The one module of the crate with `unsafe` code: pushing a write hands the kernel a pointer
//! into a buffer (and registering the buffers pins them), which the compiler cannot follow.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

use super::{Chunk, Done, Engine, Fill, WAIT_STEP};
use crate::error::{Error, Result};
use crate::workload::file_writer::files::ChunkBuf;

/// `EAGAIN`/`EINTR` completions of one write in a row before the write is an error.
pub(crate) const MAX_RETRIES: u32 = 1000;

/// One write in a slot: a piece of a chunk, and how much of it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// The chunk's id in this file.
    chunk: u64,
    /// File offset of the piece's first byte.
    offset: u64,
    /// Bytes in the piece (at most a slot's buffer).
    len: u32,
    /// Bytes of it written so far (short writes).
    written: u32,
    /// `EAGAIN`/`EINTR` completions in a row.
    retries: u32,
}

/// What a completion means for its piece.
#[derive(Debug)]
enum Settled {
    /// Written in full.
    Written,
    /// Submit it again (its remainder after a short write, or the same after `EAGAIN`).
    Again(Piece),
    /// Failed.
    Failed(io::Error),
}

/// Reads a completion's result for `piece`: pure, so that short writes, retries and errors are
/// tested without a kernel that makes them.
fn settle(mut piece: Piece, res: i32) -> Settled {
    if res < 0 {
        let errno = -res;
        if matches!(errno, libc::EAGAIN | libc::EINTR) && piece.retries < MAX_RETRIES {
            piece.retries += 1;
            return Settled::Again(piece);
        }
        return Settled::Failed(io::Error::from_raw_os_error(errno));
    }
    let left = piece.len - piece.written;
    let n = res.unsigned_abs().min(left);
    if n == 0 && left > 0 {
        return Settled::Failed(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "the write of {left} bytes at offset {} wrote nothing",
                piece.offset + u64::from(piece.written)
            ),
        ));
    }
    piece.written += n;
    piece.retries = 0;
    if piece.written < piece.len {
        Settled::Again(piece)
    } else {
        Settled::Written
    }
}

/// A chunk handed out and not yet written in full.
#[derive(Debug)]
struct Open {
    id: u64,
    len: u64,
    /// Offset of its first byte not yet submitted.
    next_offset: u64,
    /// Bytes not yet submitted.
    unsubmitted: u64,
    /// Bytes written (whole pieces).
    written: u64,
    /// Its pieces in flight.
    in_flight: u32,
    scheduled: Option<Instant>,
    started: Instant,
}

impl Open {
    /// The next piece of at most `max` bytes.
    fn take_piece(&mut self, max: u32) -> Piece {
        let len = u32::try_from(self.unsubmitted.min(u64::from(max))).unwrap_or(max);
        let piece = Piece {
            chunk: self.id,
            offset: self.next_offset,
            len,
            written: 0,
            retries: 0,
        };
        self.next_offset += u64::from(len);
        self.unsubmitted -= u64::from(len);
        self.in_flight += 1;
        piece
    }

    fn is_written(&self) -> bool {
        self.unsubmitted == 0 && self.in_flight == 0 && self.written == self.len
    }
}

/// One file's pass: the chunks open, the next one waiting for its start, how it ends.
struct Pass<'a> {
    fd: types::Fd,
    path: &'a Path,
    open: Vec<Open>,
    pending: Option<Chunk>,
    next_id: u64,
    /// `next` said there is no more.
    exhausted: bool,
    /// `stop` said to stop while there was more to hand out.
    stopping: bool,
    failure: Option<Error>,
    in_flight: usize,
}

impl Pass<'_> {
    /// Nothing more is submitted.
    fn halted(&self) -> bool {
        self.stopping || self.failure.is_some()
    }

    /// Nothing more is submitted and nothing is in flight.
    fn finished(&self) -> bool {
        self.in_flight == 0
            && (self.halted() || (self.exhausted && self.pending.is_none() && self.open.is_empty()))
    }

    fn fail(&mut self, op: &'static str, e: io::Error) {
        if self.failure.is_none() {
            self.failure = Some(Error::file(op, self.path, e));
        }
    }
}

/// The io_uring engine of one stream (see the module's documentation).
pub(crate) struct UringEngine {
    /// Declared first: dropped (closed, its buffers unregistered) before the buffers.
    ring: IoUring,
    /// One buffer per slot, and the piece in flight from it.
    bufs: Vec<ChunkBuf>,
    slots: Vec<Option<Piece>>,
    /// Slots with nothing in flight.
    free: Vec<usize>,
    /// Most writes in flight at once so far (what the depth reached).
    peak_in_flight: usize,
    /// The buffers are registered (`WriteFixed`).
    fixed: bool,
    /// A wait failed with writes perhaps still in flight: the buffers are leaked, not freed.
    poisoned: bool,
    /// Completions read in one go (user data, result).
    cqes: Vec<(u64, i32)>,
}

impl std::fmt::Debug for UringEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringEngine")
            .field("depth", &self.bufs.len())
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        if self.poisoned {
            // The kernel may still read them: never freed.
            std::mem::forget(std::mem::take(&mut self.bufs));
        }
    }
}

impl UringEngine {
    /// An engine keeping up to `depth` writes in flight, with one buffer of
    /// `min(chunk_bytes, PIECE_MB)` per slot. The outer error: the buffers cannot be allocated;
    /// the inner one: the ring cannot be set up (why, for the fallback's message).
    pub(crate) fn new(depth: u32, chunk_bytes: u64) -> Result<std::result::Result<Self, String>> {
        let depth = depth.max(1);
        let mut bufs = Vec::with_capacity(depth as usize);
        for _ in 0..depth {
            bufs.push(ChunkBuf::new(chunk_bytes)?);
        }
        let ring = match IoUring::new(depth.next_power_of_two()) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("io_uring_setup({depth}): {e}"))),
        };
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.piece().as_ptr() as *mut libc::c_void,
                iov_len: b.piece().len(),
            })
            .collect();
        // SAFETY: the buffers are owned by the engine, never moved (a Vec's heap block stays
        // where it is) nor freed before the ring is dropped (`ring` is declared first), and
        // the kernel only reads them (writes only).
        let fixed = unsafe { ring.submitter().register_buffers(&iovecs) }.is_ok();
        Ok(Ok(UringEngine {
            ring,
            slots: vec![None; bufs.len()],
            free: (0..bufs.len()).rev().collect(),
            bufs,
            peak_in_flight: 0,
            fixed,
            poisoned: false,
            cqes: Vec::with_capacity(depth as usize * 2),
        }))
    }

    /// Writes in flight at most.
    pub(crate) fn depth(&self) -> usize {
        self.bufs.len()
    }

    /// Most writes that were in flight at once, over the engine's life.
    #[cfg(test)]
    pub(crate) fn peak_in_flight(&self) -> usize {
        self.peak_in_flight
    }

    /// Writes `file`'s chunks as `next` hands them out (see the module's documentation);
    /// `path` names the file in an error. `Ok(true)` when `next` said there was no more and
    /// every chunk it handed out was written in full; `Ok(false)` after a stop.
    fn write_chunks(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
        fill: Option<&Fill<'_>>,
    ) -> Result<bool> {
        if self.poisoned {
            return Err(Error::Internal(
                "the io_uring engine was used again after a failed wait".into(),
            ));
        }
        let mut p = Pass {
            fd: types::Fd(file.as_raw_fd()),
            path,
            open: Vec::new(),
            pending: None,
            next_id: 0,
            exhausted: false,
            stopping: false,
            failure: None,
            in_flight: 0,
        };
        loop {
            // Once `next` said there is no more, a stop changes nothing: the rest is in flight.
            if !p.halted() && (!p.exhausted || p.pending.is_some()) && stop() {
                p.stopping = true;
            }
            if !p.halted() {
                self.submit(&mut p, next, done, fill);
            }
            if p.finished() {
                break;
            }
            let until = p.pending.as_ref().and_then(|c| c.scheduled);
            let until = until.filter(|_| !p.halted());
            let wait = until.map_or(WAIT_STEP, |t| {
                t.saturating_duration_since(Instant::now()).min(WAIT_STEP)
            });
            if p.in_flight == 0 {
                // Only a chunk waiting for its start.
                std::thread::sleep(wait);
                continue;
            }
            if let Err(e) = self.wait(wait) {
                self.poisoned = true;
                return Err(Error::file("wait for io_uring writes to", path, e));
            }
            self.reap(&mut p, done);
        }
        match p.failure {
            Some(e) => Err(e),
            None => Ok(!p.stopping),
        }
    }

    /// Submits pieces while a slot is free: the rest of an open chunk first, then the next
    /// chunk once its start has come; with `fill`, each piece's buffer filled first.
    fn submit(
        &mut self,
        p: &mut Pass<'_>,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        fill: Option<&Fill<'_>>,
    ) {
        let max = self.piece_len();
        while let Some(&slot) = self.free.last() {
            if let Some(o) = p.open.iter_mut().find(|o| o.unsubmitted > 0) {
                let piece = o.take_piece(max);
                if let Some(f) = fill {
                    // A new piece only: a short write's remainder is resubmitted from the
                    // bytes already there (`reap`).
                    let filled = match self.bufs[slot].piece_mut().get_mut(..piece.len as usize) {
                        Some(bytes) => (f.fill)(bytes, piece.offset),
                        None => Err(Error::Internal("a piece larger than its buffer".into())),
                    };
                    if let Err(e) = filled {
                        // Nothing of it is in flight: the pass ends with the error.
                        o.in_flight -= 1;
                        p.failure.get_or_insert(e);
                        return;
                    }
                }
                self.free.pop();
                if let Err(e) = self.push(slot, piece, p.fd) {
                    p.fail("submit a write to", e);
                    return;
                }
                p.in_flight += 1;
                self.peak_in_flight = self.peak_in_flight.max(p.in_flight);
                continue;
            }
            if p.pending.is_none() {
                if p.exhausted {
                    return;
                }
                p.pending = next();
                if p.pending.is_none() {
                    p.exhausted = true;
                    return;
                }
            }
            let now = Instant::now();
            if p.pending
                .as_ref()
                .and_then(|c| c.scheduled)
                .is_some_and(|t| t > now)
            {
                return;
            }
            let Some(c) = p.pending.take() else { return };
            let o = Open {
                id: p.next_id,
                len: c.len,
                next_offset: c.offset,
                unsubmitted: c.len,
                written: 0,
                in_flight: 0,
                scheduled: c.scheduled,
                started: now,
            };
            p.next_id += 1;
            p.open.push(o);
            if c.len == 0 {
                Self::complete_chunk(p, p.next_id - 1, done);
            }
        }
    }

    /// Bytes one write takes at most: a slot's buffer.
    fn piece_len(&self) -> u32 {
        let len = self.bufs.first().map_or(0, |b| b.piece().len());
        u32::try_from(len).unwrap_or(!4095)
    }

    /// Puts `piece` (its part not yet written) on the submission queue from `slot`'s buffer.
    fn push(&mut self, slot: usize, piece: Piece, fd: types::Fd) -> io::Result<()> {
        let buf = self.bufs[slot].piece();
        let from = buf
            .get(piece.written as usize..piece.len as usize)
            .ok_or_else(|| io::Error::other("a write larger than its buffer"))?;
        let offset = piece.offset + u64::from(piece.written);
        let len = piece.len - piece.written;
        let entry = if self.fixed {
            let index = u16::try_from(slot).map_err(io::Error::other)?;
            opcode::WriteFixed::new(fd, from.as_ptr(), len, index)
                .offset(offset)
                .build()
        } else {
            opcode::Write::new(fd, from.as_ptr(), len)
                .offset(offset)
                .build()
        };
        let entry = entry.user_data(slot as u64);
        // SAFETY: `from` lies in a buffer the engine owns and never writes to nor frees while
        // the write is in flight: every write pushed is reaped before `write_file` returns, or
        // the buffers are leaked (`poisoned`). The submission queue holds at least `depth`
        // entries and at most `depth` writes are pushed before they are submitted.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("the io_uring submission queue is full"))?;
        self.slots[slot] = Some(piece);
        Ok(())
    }

    /// Submits what was pushed and waits up to `timeout` for a completion. A timeout, a signal
    /// or a full completion queue is no error (the caller reaps and comes back).
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the completions: a piece written, resubmitted, or failed.
    fn reap(&mut self, p: &mut Pass<'_>, done: &mut dyn FnMut(Done) -> Result<()>) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        for &(data, res) in &cqes {
            let slot = usize::try_from(data).unwrap_or(usize::MAX);
            let Some(piece) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            p.in_flight -= 1;
            let settled = settle(piece, res);
            if let Settled::Again(again) = settled {
                if !p.halted() {
                    match self.push(slot, again, p.fd) {
                        Ok(()) => p.in_flight += 1,
                        Err(e) => {
                            p.fail("submit a write to", e);
                            self.free.push(slot);
                        }
                    }
                    continue;
                }
            }
            self.free.push(slot);
            let Some(o) = p.open.iter_mut().find(|o| o.id == piece.chunk) else {
                continue;
            };
            o.in_flight -= 1;
            match settled {
                Settled::Written => {
                    o.written += u64::from(piece.len);
                    Self::complete_chunk(p, piece.chunk, done);
                }
                Settled::Failed(e) => p.fail("write", e),
                Settled::Again(_) => {}
            }
        }
        self.cqes = cqes;
    }

    /// Calls `done` for chunk `id` if it is written in full (and nothing failed).
    fn complete_chunk(p: &mut Pass<'_>, id: u64, done: &mut dyn FnMut(Done) -> Result<()>) {
        let Some(i) = p.open.iter().position(|o| o.id == id && o.is_written()) else {
            return;
        };
        let o = p.open.swap_remove(i);
        if p.failure.is_some() {
            return;
        }
        let d = Done {
            len: o.len,
            scheduled: o.scheduled,
            started: o.started,
            finished: Instant::now(),
        };
        if let Err(e) = done(d) {
            p.failure = Some(e);
        }
    }
}

/// How a stream writes.
pub(crate) enum Choice {
    /// Through io_uring, `depth` writes in flight.
    Uring(Box<dyn Engine>),
    /// One write at a time (the synchronous engine); `why`: the depth asked for could not be
    /// had (io_uring refused here), `None` when one at a time was asked for (depth 1).
    Sync {
        /// Why not io_uring, for the log and the report.
        why: Option<String>,
    },
}

/// The engine for `depth` writes in flight per stream, with chunks of `chunk_bytes`: io_uring
/// when `depth > 1` and `usable` (the probe, [`usable`] outside tests) says it can write here;
/// otherwise the synchronous engine, and why.
///
/// # Errors
/// The slot buffers cannot be allocated.
pub(crate) fn choose(
    depth: u32,
    chunk_bytes: u64,
    usable: impl FnOnce() -> std::result::Result<(), String>,
) -> Result<Choice> {
    if depth <= 1 {
        return Ok(Choice::Sync { why: None });
    }
    let refused = match usable() {
        Ok(()) => match UringEngine::new(depth, chunk_bytes)? {
            Ok(engine) => return Ok(Choice::Uring(Box::new(engine))),
            Err(why) => why,
        },
        Err(why) => why,
    };
    Ok(Choice::Sync {
        why: Some(format!(
            "iodepth {depth} asked; io_uring cannot be used here: {refused}"
        )),
    })
}

impl Engine for UringEngine {
    fn write_file(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
        fill: Option<&Fill<'_>>,
    ) -> Result<bool> {
        self.write_chunks(file, path, next, done, stop, fill)
    }

    fn describe(&self) -> String {
        let registered = if self.fixed {
            ", registered buffers"
        } else {
            ""
        };
        format!("io_uring, iodepth {}{registered}", self.depth())
    }
}

/// Whether io_uring can write here: probed once per process (see the module's documentation).
/// `Err` says why not.
pub(crate) fn usable() -> std::result::Result<(), String> {
    static STATUS: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    STATUS.get_or_init(probe).clone()
}

/// Sets up a ring, checks the operations the engine needs, and runs a no-op through it (a
/// seccomp filter may allow the setup and refuse `io_uring_enter`).
fn probe() -> std::result::Result<(), String> {
    let mut ring = IoUring::new(2).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => format!("the kernel has no io_uring ({e})"),
        Some(libc::EPERM | libc::EACCES) => format!(
            "io_uring is not permitted here (a seccomp profile, as a container's default, or \
             the sysctl kernel.io_uring_disabled): {e}"
        ),
        _ => format!("io_uring_setup failed: {e}"),
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err(
            "the kernel's io_uring has no timed waits (IORING_FEAT_EXT_ARG, Linux 5.11)".into(),
        );
    }
    let mut ops = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut ops)
        .map_err(|e| format!("io_uring's operation probe failed: {e}"))?;
    if !ops.is_supported(opcode::Write::CODE) {
        return Err("the kernel's io_uring cannot write (IORING_OP_WRITE, Linux 5.6)".into());
    }
    let nop = opcode::Nop::new().build().user_data(1);
    // SAFETY: a no-op refers to no memory.
    unsafe { ring.submission().push(&nop) }
        .map_err(|_| "io_uring's submission queue is full".to_string())?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter failed: {e}"))?;
    let result = ring.completion().next().map(|c| c.result());
    match result {
        Some(res) if res >= 0 => Ok(()),
        Some(res) => Err(format!(
            "io_uring's no-op failed: {}",
            io::Error::from_raw_os_error(-res)
        )),
        None => Err("io_uring gave no completion for a no-op".into()),
    }
}

#[cfg(test)]
mod tests;
