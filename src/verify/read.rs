//! Reading a file back: one aligned buffer (O_DIRECT's rules), positioned reads, nothing
//! allocated per block.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

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

/// Clears the `O_NONBLOCK` that [`Reader::open`] opened `file` with.
#[cfg(unix)]
fn clear_nonblock(file: &File) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(file)?;
    fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
    Ok(())
}

/// A file opened for reading back.
pub(crate) struct Reader {
    file: File,
    pub(crate) path: PathBuf,
    direct: bool,
    /// Its size when opened, bytes.
    pub(crate) len_bytes: u64,
}

impl Reader {
    /// Opens a regular file (O_DIRECT with `direct`, so the page cache cannot answer).
    ///
    /// # Errors
    /// [`Error::Config`] for a path that is not a regular file or a file system that refuses
    /// O_DIRECT; [`Error::File`] when it cannot be opened.
    pub(crate) fn open(path: &Path, direct: bool) -> Result<Reader> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        // O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer;
        // such a file is refused below, and a regular file's reads ignore the flag (it is
        // cleared anyway once the file is known to be regular).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let direct_flag = if cfg!(target_os = "linux") && direct {
                libc::O_DIRECT
            } else {
                0
            };
            opts.custom_flags(libc::O_NONBLOCK | direct_flag);
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
        clear_nonblock(&file).map_err(|e| Error::file("fcntl", path, e))?;
        Ok(Reader {
            file,
            path: path.to_path_buf(),
            direct,
            len_bytes: meta.len(),
        })
    }

    /// Reads from `offset` (a multiple of [`DIRECT_ALIGN`]) into `buf` (aligned, its length a
    /// multiple of [`DIRECT_ALIGN`]) up to its end or the end of the file; returns the bytes
    /// read.
    ///
    /// # Errors
    /// [`Error::File`] for a failed read.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
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
