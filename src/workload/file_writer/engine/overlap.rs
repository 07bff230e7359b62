//! The synchronous engine's verified O_DIRECT write: while one piece is written, the next is
//! filled on a helper thread (two buffers, handed back and forth), so that the fill costs the
//! write path next to nothing (docs/VERIFY.md, Figures: filling then writing on one thread
//! gave 0.84x, filling ahead 0.95x and better).
//!
//! The next piece is foreseen from the current one: the rest of the chunk, or the next chunk
//! of the same length right after it (as the stream hands them out), never past the file's
//! size. A piece that turns out other than foreseen (a stop, a shorter chunk) is filled where
//! it is written; the piece filled ahead is then dropped. A helper thread that cannot be
//! started, or ends, leaves the engine filling each piece itself.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use super::{wait_until, Chunk, Done, Fill, SyncEngine};
use crate::error::{Error, Result};
use crate::workload::file_writer::files::{write_all_at, ChunkBuf};

/// A piece to fill: the buffer, the file offset, its length.
type Order = (ChunkBuf, u64, usize);
/// A filled piece: the buffer, and how the fill went.
type Filled = (ChunkBuf, Result<()>);

/// The buffers of one file's write and the piece being filled ahead.
struct Pipe {
    /// Buffers in hand (not at the helper thread).
    hand: Vec<ChunkBuf>,
    /// The piece the helper thread is filling (offset, length), if any.
    ahead: Option<(u64, usize)>,
    to_fill: Option<SyncSender<Order>>,
    filled: Receiver<Filled>,
    chunk_bytes: u64,
}

impl Pipe {
    /// The piece at `at` of `n` bytes, filled: the one filled ahead if it is that piece, else
    /// filled here.
    fn take(&mut self, at: u64, n: usize, fill: &Fill<'_>) -> Result<ChunkBuf> {
        if let Some(p) = self.ahead.take() {
            match self.filled.recv() {
                Ok((b, r)) if p == (at, n) => {
                    r?;
                    return Ok(b);
                }
                Ok((b, _)) => self.hand.push(b),
                // The helper ended (it panicked): its buffer is gone, fill here from now on.
                Err(_) => self.to_fill = None,
            }
        }
        let mut b = match self.hand.pop() {
            Some(b) => b,
            None => ChunkBuf::new(self.chunk_bytes)?,
        };
        let bytes = b
            .piece_mut()
            .get_mut(..n)
            .ok_or_else(|| Error::Internal("a piece larger than its buffer".into()))?;
        (fill.fill)(bytes, at)?;
        Ok(b)
    }

    /// Hands a buffer in hand to the helper thread to fill the piece at `at` of `n` bytes.
    fn fill_ahead(&mut self, at: u64, n: usize) {
        let (Some(tx), Some(b)) = (self.to_fill.as_ref(), self.hand.pop()) else {
            return;
        };
        match tx.send((b, at, n)) {
            Ok(()) => self.ahead = Some((at, n)),
            Err(e) => {
                self.hand.push(e.0 .0);
                self.to_fill = None;
            }
        }
    }

    /// Ends the helper thread and takes back the buffer it holds.
    fn close(mut self) -> Vec<ChunkBuf> {
        self.to_fill = None;
        if self.ahead.take().is_some() {
            if let Ok((b, _)) = self.filled.recv() {
                self.hand.push(b);
            }
        }
        self.hand
    }
}

impl SyncEngine {
    /// [`Engine::write_file`](super::Engine::write_file) with `fill`, for O_DIRECT: the next
    /// piece filled on a helper thread while this one is written (see the module's
    /// documentation).
    pub(super) fn write_overlapped(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
        fill: &Fill<'_>,
    ) -> Result<bool> {
        self.ensure(2)?;
        let max = self.bufs.first().map_or(0, |b| b.piece().len()) as u64;
        let hand = std::mem::take(&mut self.bufs);
        let chunk_bytes = self.chunk_bytes;
        let (result, hand) = std::thread::scope(|s| {
            let (order_tx, order_rx) = sync_channel::<Order>(1);
            let (filled_tx, filled_rx) = sync_channel::<Filled>(1);
            let helper = std::thread::Builder::new()
                .name("loadmon-fill".into())
                .spawn_scoped(s, move || {
                    let _cpu = (fill.thread)();
                    for (mut b, at, n) in order_rx {
                        let r = match b.piece_mut().get_mut(..n) {
                            Some(bytes) => (fill.fill)(bytes, at),
                            None => Err(Error::Internal("a piece larger than its buffer".into())),
                        };
                        if filled_tx.send((b, r)).is_err() {
                            break;
                        }
                    }
                });
            let mut pipe = Pipe {
                hand,
                ahead: None,
                to_fill: helper.is_ok().then_some(order_tx),
                filled: filled_rx,
                chunk_bytes,
            };
            let r = write_chunks(&mut pipe, file, path, next, done, stop, fill, max);
            let hand = pipe.close();
            // Joined here: a helper that panicked is no panic of the scope's (its buffer is
            // made again at the next write).
            if let Ok(h) = helper {
                let _ = h.join();
            }
            (r, hand)
        });
        self.bufs = hand;
        result
    }
}

/// The chunks of one file through `pipe` (pieces of at most `max` bytes).
#[allow(clippy::too_many_arguments)]
fn write_chunks(
    pipe: &mut Pipe,
    file: &File,
    path: &Path,
    next: &mut dyn FnMut() -> Option<Chunk>,
    done: &mut dyn FnMut(Done) -> Result<()>,
    stop: &dyn Fn() -> bool,
    fill: &Fill<'_>,
    max: u64,
) -> Result<bool> {
    if max == 0 {
        return Err(Error::Internal("the sync engine has no buffer".into()));
    }
    while let Some(c) = next() {
        if let Some(at) = c.scheduled {
            if !wait_until(at, stop) {
                return Ok(false);
            }
        }
        let started = Instant::now();
        let end = c.offset + c.len;
        let mut at = c.offset;
        while at < end {
            if stop() {
                return Ok(false);
            }
            let n = (end - at).min(max) as usize;
            let b = pipe.take(at, n, fill)?;
            // The next piece: the rest of this chunk, or the next chunk (as long as this one)
            // right after it, within the file.
            let then = at + n as u64;
            let then_n = if then < end {
                end - then
            } else {
                c.len.min(fill.file_bytes.saturating_sub(then))
            }
            .min(max);
            if then_n > 0 {
                pipe.fill_ahead(then, then_n as usize);
            }
            let written = write_all_at(file, &b.piece()[..n], at);
            pipe.hand.push(b);
            written.map_err(|e| Error::file("write", path, e))?;
            at = then;
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
