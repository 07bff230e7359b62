//! Reading a file back: aligned buffers (O_DIRECT's rules), positioned reads, nothing
//! allocated per block.
//!
//! A whole file is read in order with [`Reader::pieces`]: for a file larger than one buffer,
//! a helper thread reads the next piece into a second buffer while the caller checks the
//! current one (one read in flight: the next read overlaps this piece's check), the stop still
//! asked on the caller's thread before each read is ordered. A helper that cannot be started (or a second buffer
//! that cannot be had) leaves the reads on the caller's thread, one after the other.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::CheckGuard;
use crate::error::{Error, Result};
use crate::stats::WriterGuard;

/// Alignment of O_DIRECT buffers, offsets and lengths.
pub(crate) const DIRECT_ALIGN: usize = 4096;
/// Bytes read at once (a multiple of every block size and of [`DIRECT_ALIGN`]).
pub(crate) const READ_BYTES: usize = 4 << 20;

/// A buffer whose usable part starts on a [`DIRECT_ALIGN`] boundary.
pub(crate) struct AlignedBuf {
    data: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` usable bytes, zeroed.
    pub(crate) fn new(len: usize) -> Result<AlignedBuf> {
        let mut data = Vec::new();
        data.try_reserve_exact(len + DIRECT_ALIGN)
            .map_err(|e| Error::Config(format!("cannot allocate a {len}-byte read buffer: {e}")))?;
        data.resize(len + DIRECT_ALIGN, 0);
        let start = data.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        Ok(AlignedBuf { data, start, len })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.start + self.len]
    }
}

/// What a read needs, shareable with a helper thread (the stop check is not here: it stays on
/// the checking thread).
pub(crate) struct Source {
    file: File,
    pub(crate) path: PathBuf,
    direct: bool,
    /// Its size when opened, bytes.
    pub(crate) len_bytes: u64,
}

/// A file opened for reading back.
pub(crate) struct Reader<'a> {
    pub(crate) src: Source,
    stop: Option<&'a dyn Fn() -> bool>,
    read_thread: Option<&'a (dyn Fn() -> Option<WriterGuard> + Sync)>,
}

/// A piece for the helper thread to read: the buffer, the offset.
type Order<'b> = (&'b mut [u8], u64);
/// A piece read by the helper thread: the buffer, the bytes read or the error.
type Got<'b> = (&'b mut [u8], Result<usize>);

/// The reads ahead of one [`Reader::pieces`]: the helper thread's channels (none without a
/// helper) and the buffer not in use.
struct Ahead<'b> {
    order: Option<SyncSender<Order<'b>>>,
    got: Option<Receiver<Got<'b>>>,
    spare: Option<&'b mut [u8]>,
}

impl<'b> Ahead<'b> {
    /// Reads on the caller's thread only.
    fn none() -> Ahead<'b> {
        Ahead {
            order: None,
            got: None,
            spare: None,
        }
    }

    /// Orders the piece at `offset` read into the spare buffer; whether it was.
    fn order(&mut self, offset: u64) -> bool {
        let (Some(tx), Some(buf)) = (self.order.as_ref(), self.spare.take()) else {
            return false;
        };
        match tx.send((buf, offset)) {
            Ok(()) => true,
            Err(e) => {
                self.spare = Some(e.0 .0);
                self.order = None;
                false
            }
        }
    }
}

impl<'a> Reader<'a> {
    /// Opens a regular file (O_DIRECT with `direct`, so the page cache cannot answer). The
    /// open never blocks (`O_NONBLOCK`: a FIFO under the name is refused, not waited on);
    /// with `guard`, a symbolic link is not followed and the file must be the one named.
    ///
    /// # Errors
    /// [`Error::Config`] for a path that is not a regular file or a file system that refuses
    /// O_DIRECT; [`Error::File`] when it cannot be opened, is a symbolic link (`no_follow`)
    /// or is not the file expected (`file_id`).
    pub(crate) fn open(path: &Path, direct: bool, guard: &CheckGuard<'a>) -> Result<Reader<'a>> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut flags = libc::O_NONBLOCK;
            if guard.no_follow {
                flags |= libc::O_NOFOLLOW;
            }
            #[cfg(target_os = "linux")]
            if direct {
                flags |= libc::O_DIRECT;
            }
            opts.custom_flags(flags);
        }
        #[cfg(not(target_os = "linux"))]
        if direct {
            return Err(Error::Config(
                "verify: O_DIRECT reads are Linux only".into(),
            ));
        }
        let file = opts.open(path).map_err(|e| {
            if direct && e.raw_os_error() == Some(libc::EINVAL) {
                Error::Config(format!(
                    "verify: the file system of {} refuses O_DIRECT ({e})",
                    path.display()
                ))
            } else if guard.no_follow && e.raw_os_error() == Some(libc::ELOOP) {
                Error::file(
                    "open",
                    path,
                    io::Error::other(format!(
                        "a symbolic link is under the name, not a data file: not followed ({e})"
                    )),
                )
            } else {
                Error::file("open", path, e)
            }
        })?;
        let meta = file.metadata().map_err(|e| Error::file("stat", path, e))?;
        if !meta.is_file() {
            return Err(Error::Config(format!(
                "verify: {} is not a regular file",
                path.display()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if guard
                .file_id
                .is_some_and(|id| id != (meta.dev(), meta.ino()))
            {
                return Err(Error::file(
                    "open",
                    path,
                    io::Error::other(
                        "the name no longer holds the file this client wrote (it was \
                         replaced): not checked",
                    ),
                ));
            }
            // Reads of a regular file wait for the disk as ever.
            let flags =
                rustix::fs::fcntl_getfl(&file).map_err(|e| Error::file("open", path, e.into()))?;
            rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)
                .map_err(|e| Error::file("open", path, e.into()))?;
        }
        Ok(Reader {
            src: Source {
                file,
                path: path.to_path_buf(),
                direct,
                len_bytes: meta.len(),
            },
            stop: guard.stop,
            read_thread: guard.read_thread,
        })
    }

    /// [`Error::Interrupted`] once the guard's `stop` says so.
    fn stopped(&self) -> Result<()> {
        if self.stop.is_some_and(|stop| stop()) {
            return Err(Error::Interrupted(format!(
                "the check of {} was stopped",
                self.src.path.display()
            )));
        }
        Ok(())
    }

    /// Reads from `offset` (a multiple of [`DIRECT_ALIGN`]) into `buf` (aligned, its length a
    /// multiple of [`DIRECT_ALIGN`]) up to its end or the end of the file; returns the bytes
    /// read.
    ///
    /// # Errors
    /// [`Error::File`] for a failed read; [`Error::Interrupted`] once the guard's `stop` says
    /// so (asked before each read).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.stopped()?;
        self.src.read_at(offset, buf)
    }

    /// Hands `each` the file's pieces in order, with their offsets: the first (`n` bytes from
    /// offset 0) already in `buf`, then each next one of up to `buf`'s length, read as long as
    /// the one before filled `buf` and the file (its size when opened) goes on; a read of
    /// nothing ends them (the file shrank). With more than the first piece to read, a second
    /// buffer is made and each next piece read on a helper thread while `each` takes the
    /// current one (the guard's `read_thread` called on it); the guard's `stop` is asked on
    /// this thread before each read is ordered, once the read before has come back, so a stop
    /// ends the reads between two of them, none left under way. A helper that cannot be
    /// started, or a second buffer that cannot be had, leaves the reads on this thread.
    ///
    /// # Errors
    /// As [`Reader::read_at`], for the first read that fails (the pieces before it handed
    /// to `each`).
    pub(crate) fn pieces(
        &self,
        buf: &mut AlignedBuf,
        n: usize,
        each: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<()> {
        let len = buf.bytes().len();
        // A file that fits one buffer (most small files) needs no second one, nor a thread.
        let mut other = if n == len && self.src.len_bytes > len as u64 {
            AlignedBuf::new(len).ok()
        } else {
            None
        };
        let Some(other) = other.as_mut() else {
            return self.each_piece(&mut Ahead::none(), buf.bytes_mut(), n, each);
        };
        let src = &self.src;
        let read_thread = self.read_thread;
        std::thread::scope(|s| {
            let (order_tx, order_rx) = sync_channel::<Order<'_>>(1);
            let (got_tx, got_rx) = sync_channel::<Got<'_>>(1);
            let helper = std::thread::Builder::new()
                .name("loadmon-read".into())
                .spawn_scoped(s, move || {
                    let _cpu = read_thread.and_then(|t| t());
                    for (b, offset) in order_rx {
                        let r = src.read_at(offset, b);
                        if got_tx.send((b, r)).is_err() {
                            break;
                        }
                    }
                });
            let mut ahead = Ahead {
                order: helper.is_ok().then_some(order_tx),
                got: Some(got_rx),
                spare: Some(other.bytes_mut()),
            };
            let r = self.each_piece(&mut ahead, buf.bytes_mut(), n, each);
            // The helper ends after the read under way, if any (joined by the scope).
            drop(ahead);
            if let Ok(h) = helper {
                let _ = h.join();
            }
            r
        })
    }

    /// [`Reader::pieces`]'s loop: the first piece in `buf` (`n` bytes), the next ones read
    /// through `ahead` where it can, here where it cannot.
    fn each_piece<'b>(
        &self,
        ahead: &mut Ahead<'b>,
        mut buf: &'b mut [u8],
        mut n: usize,
        each: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<()> {
        let mut offset = 0u64;
        loop {
            let next = offset + n as u64;
            let more = n == buf.len() && next < self.src.len_bytes;
            if more {
                self.stopped()?;
            }
            let ordered = more && ahead.order(next);
            each(offset, &buf[..n]);
            if !more {
                return Ok(());
            }
            let r = match ahead.got.as_ref().filter(|_| ordered).map(Receiver::recv) {
                Some(Ok((b, r))) => {
                    ahead.spare = Some(std::mem::replace(&mut buf, b));
                    r
                }
                // The helper ended (it panicked): its buffer is gone, read here from now on.
                Some(Err(_)) => {
                    ahead.order = None;
                    self.src.read_at(next, buf)
                }
                None => self.src.read_at(next, buf),
            };
            n = r?;
            if n == 0 {
                return Ok(());
            }
            offset = next;
        }
    }
}

impl Source {
    /// [`Reader::read_at`] without the stop.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len_bytes.saturating_sub(offset);
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        // O_DIRECT reads whole aligned units: the last one may end past the end of the file.
        let ask = if self.direct {
            want.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN
        } else {
            want
        }
        .min(buf.len());
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut buf[got..ask], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::file("read", &self.path, e)),
            }
            if self.direct && got % DIRECT_ALIGN != 0 {
                break;
            }
        }
        Ok(got.min(want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces of a file of two and a half buffers, whole and in order: read ahead on a
    /// helper thread, and on the caller's thread alone (as when no helper can be started).
    #[test]
    fn pieces_read_ahead_are_the_pieces_read_one_after_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..2 * READ_BYTES + READ_BYTES / 2 + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let reader = Reader::open(&path, false, &CheckGuard::default()).unwrap();
        let run = |ahead: bool| {
            let mut buf = AlignedBuf::new(READ_BYTES).unwrap();
            let n = reader.read_at(0, buf.bytes_mut()).unwrap();
            let mut seen = Vec::new();
            let mut each = |offset: u64, piece: &[u8]| {
                let at = offset as usize;
                assert_eq!(piece, &data[at..at + piece.len()]);
                seen.push((offset, piece.len()));
            };
            if ahead {
                reader.pieces(&mut buf, n, &mut each).unwrap();
            } else {
                let b = buf.bytes_mut();
                reader
                    .each_piece(&mut Ahead::none(), b, n, &mut each)
                    .unwrap();
            }
            seen
        };
        let r = READ_BYTES as u64;
        let want = [
            (0, READ_BYTES),
            (r, READ_BYTES),
            (2 * r, READ_BYTES / 2 + 123),
        ];
        assert_eq!(run(true), want);
        assert_eq!(run(false), want);
    }
}
