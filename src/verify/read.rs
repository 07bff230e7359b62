//! Reading a file back: one aligned buffer (O_DIRECT's rules), positioned reads, nothing
//! allocated per block.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::CheckGuard;
use crate::error::{Error, Result};

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

/// A file opened for reading back.
pub(crate) struct Reader<'a> {
    file: File,
    pub(crate) path: PathBuf,
    direct: bool,
    /// Its size when opened, bytes.
    pub(crate) len_bytes: u64,
    stop: Option<&'a dyn Fn() -> bool>,
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
            file,
            path: path.to_path_buf(),
            direct,
            len_bytes: meta.len(),
            stop: guard.stop,
        })
    }

    /// Reads from `offset` (a multiple of [`DIRECT_ALIGN`]) into `buf` (aligned, its length a
    /// multiple of [`DIRECT_ALIGN`]) up to its end or the end of the file; returns the bytes
    /// read.
    ///
    /// # Errors
    /// [`Error::File`] for a failed read; [`Error::Interrupted`] once the guard's `stop` says
    /// so (asked before each read).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.stop.is_some_and(|stop| stop()) {
            return Err(Error::Interrupted(format!(
                "the check of {} was stopped",
                self.path.display()
            )));
        }
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
