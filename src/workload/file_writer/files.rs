//! The files the writer makes, and how its bytes reach them: created new whatever a shared
//! directory holds, removed only while their name holds them, written in pieces from a buffer
//! aligned for O_DIRECT.

use std::fs::{File, OpenOptions};
use std::io;
#[cfg(any(test, not(unix)))]
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{SyncMode, MIB, PIECE_MB};
use crate::error::{Error, Result};

/// The byte the seed filled its files with.
const FILL: u8 = 0x5a;
/// Alignment for O_DIRECT buffers.
const DIRECT_ALIGN: usize = super::DIRECT_ALIGN_BYTES as usize;

/// Writes `len` bytes of `buf` (repeated) to `f` at `offset` in pieces of at most
/// [`PIECE_MB`], asking `stop` before each piece. `Ok(false)` if stopped before the end.
pub(super) fn write_chunk_at(
    f: &File,
    buf: &ChunkBuf,
    offset: u64,
    len: u64,
    stop: &dyn Fn() -> bool,
) -> io::Result<bool> {
    let mut done = 0;
    while done < len {
        if stop() {
            return Ok(false);
        }
        let n = (len - done).min(PIECE_MB * MIB);
        write_all_at(f, buf.as_slice(n), offset + done)?;
        done += n;
    }
    Ok(true)
}

/// `pwrite` until all of `data` is at `offset` of `f`.
#[cfg(unix)]
pub(super) fn write_all_at(f: &File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(data, offset)
}

/// Seek and write, where positional writes are not offered.
#[cfg(not(unix))]
pub(super) fn write_all_at(mut f: &File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::io::Seek;
    f.seek(io::SeekFrom::Start(offset))?;
    f.write_all(data)
}

/// A file this writer created: removed only while its name still holds that very file (same
/// device and inode), never whatever someone put there since.
#[derive(Debug)]
pub(super) struct OwnFile {
    /// Where it was created.
    pub(super) path: PathBuf,
    id: Option<(u64, u64)>,
}

/// A file's device and inode.
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

impl OwnFile {
    /// The file's device and inode, where the platform tells them.
    pub(super) fn id(&self) -> Option<(u64, u64)> {
        self.id
    }

    /// Removes the file (the name, never a link's target: `unlink` follows no link); an error,
    /// and nothing removed, if the name now holds something else.
    pub(super) fn remove(&self) -> io::Result<()> {
        let now = std::fs::symlink_metadata(&self.path)?;
        if file_id(&now) != self.id {
            return Err(io::Error::other(
                "the name no longer holds the file this client wrote (it was replaced): left alone",
            ));
        }
        std::fs::remove_file(&self.path)
    }

    /// Opens the file again for writing in place (`overwrite`: its next generation), never
    /// whatever the name holds now: no link is followed (`O_NOFOLLOW`), nothing is created or
    /// truncated, and the file opened must be the very file created (same device and inode).
    pub(super) fn reopen(&self, sync: SyncMode) -> Result<File> {
        let f = write_options(sync)?
            .open(&self.path)
            .map_err(|e| Error::file("open again", &self.path, e))?;
        let now = f
            .metadata()
            .map_err(|e| Error::file("stat", &self.path, e))?;
        if !now.is_file() || file_id(&now) != self.id {
            return Err(Error::file(
                "open again",
                &self.path,
                io::Error::other(
                    "the name no longer holds the file this client wrote (it was replaced): \
                     not rewritten",
                ),
            ));
        }
        Ok(f)
    }
}

/// Removes `path` if it is a leftover of this user's own ([`own_leftover`]: a regular file
/// with no other link); anything else under the name stays. Whether something was removed.
pub(super) fn remove_leftover(path: &Path) -> bool {
    own_leftover(path) && std::fs::remove_file(path).is_ok()
}

/// Whether `path` is a regular file of this process's effective user with no other link: a
/// file another user planted, a link (hard or symbolic), a FIFO or a device is not.
fn own_leftover(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            m.file_type().is_file()
                && m.nlink() == 1
                && m.uid() == rustix::process::geteuid().as_raw()
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// How the writer opens its files: for writing, following no link (`O_NOFOLLOW`), with
/// O_DIRECT for `sync = direct` (Linux only: elsewhere a [`Error::Config`]).
fn write_options(sync: SyncMode) -> Result<OpenOptions> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    let mut flags = libc::O_NOFOLLOW;
    if sync == SyncMode::Direct {
        #[cfg(target_os = "linux")]
        {
            flags |= libc::O_DIRECT;
        }
        #[cfg(not(target_os = "linux"))]
        {
            return Err(Error::Config(
                "sync=direct (O_DIRECT) is only supported on Linux".into(),
            ));
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(flags);
    }
    Ok(opts)
}

/// Creates `path` for writing, new: an existing name of any kind (a file, a symbolic link, even
/// a dangling one, a FIFO) is never opened (`O_CREAT|O_EXCL|O_NOFOLLOW`), so nothing planted in
/// a shared directory can redirect the data or block the open. Only a leftover regular file of
/// this user's own ([`own_leftover`]) is removed first (`unlink` follows no link).
pub(super) fn create_new(path: &Path, sync: SyncMode) -> Result<(File, OwnFile)> {
    let mut opts = write_options(sync)?;
    opts.create_new(true);
    let opened = match opts.open(path) {
        // A leftover of this user's own (an earlier run with the same id in the same second,
        // a crashed process's probe): removed and created anew, as the seed's overwrite did;
        // it is never opened. Anything else under the name stays as it is.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && own_leftover(path) => {
            match std::fs::remove_file(path) {
                Ok(()) => opts.open(path),
                Err(_) => Err(e),
            }
        }
        r => r,
    };
    let f = opened.map_err(|e| {
        if sync == SyncMode::Direct && e.raw_os_error() == Some(libc::EINVAL) {
            Error::Config(format!(
                "sync=direct: the filesystem of {} does not support O_DIRECT ({e})",
                path.parent().unwrap_or(path).display()
            ))
        } else if e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ELOOP)
        {
            Error::file(
                "create",
                path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "the name is already taken (by a file, a link or a FIFO this client \
                         did not create): nothing was written there ({e})"
                    ),
                ),
            )
        } else {
            Error::file("create", path, e)
        }
    })?;
    let id = match f.metadata() {
        Ok(m) if m.is_file() => file_id(&m),
        Ok(_) => {
            return Err(Error::file(
                "create",
                path,
                io::Error::other("not a regular file"),
            ))
        }
        Err(e) => return Err(Error::file("stat", path, e)),
    };
    Ok((
        f,
        OwnFile {
            path: path.to_path_buf(),
            id,
        },
    ))
}

/// A piece of `0x5a` bytes aligned for O_DIRECT: the most written at once.
pub(super) struct ChunkBuf {
    data: Vec<u8>,
    offset: usize,
}

impl ChunkBuf {
    /// A buffer for chunks of `chunk` bytes: the chunk, or one piece of a larger chunk.
    pub(super) fn new(chunk: u64) -> Result<ChunkBuf> {
        let len = chunk.min(PIECE_MB * MIB);
        let len = usize::try_from(len)
            .map_err(|_| Error::Config(format!("chunk of {len} bytes does not fit in memory")))?;
        let mut data = Vec::new();
        data.try_reserve_exact(len + DIRECT_ALIGN).map_err(|e| {
            Error::Config(format!("cannot allocate a {len}-byte chunk buffer: {e}"))
        })?;
        data.resize(len + DIRECT_ALIGN, FILL);
        let offset = data.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        Ok(ChunkBuf { data, offset })
    }

    /// The whole aligned piece: what one write may take from this buffer.
    pub(super) fn piece(&self) -> &[u8] {
        &self.data[self.offset..self.offset + (self.data.len() - DIRECT_ALIGN)]
    }

    /// The whole aligned piece, to fill before it is written (never while a write from it is
    /// in flight).
    pub(super) fn piece_mut(&mut self) -> &mut [u8] {
        let len = self.data.len() - DIRECT_ALIGN;
        &mut self.data[self.offset..self.offset + len]
    }

    fn as_slice(&self, len: u64) -> &[u8] {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let end = self.offset.saturating_add(len).min(self.data.len());
        &self.data[self.offset..end]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_existing_name_of_any_kind_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let file = dir.path().join("file");
        std::fs::write(&file, b"someone's").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        // A file of this user's own with a second (hard) link is not a leftover either.
        let linked = dir.path().join("linked");
        std::fs::hard_link(&victim, &linked).unwrap();
        for (path, mode) in [
            (&link, SyncMode::None),
            (&dangling, SyncMode::None),
            (&fifo, SyncMode::None),
            (&fifo, SyncMode::File),
            (&file, SyncMode::None),
            (&linked, SyncMode::None),
        ] {
            // On a thread, bounded: an open that blocks (the FIFO) fails the test.
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(create_new(&p, mode).map(|_| ()));
            });
            let e = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("blocked in open")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("already taken") && e.contains(&path.display().to_string()),
                "{e}"
            );
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(std::fs::read(&file).unwrap(), b"someone's");
    }

    #[cfg(unix)]
    #[test]
    fn a_leftover_of_this_users_own_is_created_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_100_0_x");
        std::fs::write(&path, b"an earlier run's").unwrap();
        let (mut f, own) = create_new(&path, SyncMode::None).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        own.remove().unwrap();
    }

    #[test]
    fn only_the_file_created_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_100_0_x");
        let (f, own) = create_new(&path, SyncMode::None).unwrap();
        drop(f);
        // Someone moves it away and puts their own file under its name.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        let e = own.remove().unwrap_err().to_string();
        assert!(e.contains("left alone"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        // The file it created, still under its name, is removed.
        let other = dir.path().join("client_100_1_x");
        let (_, own) = create_new(&other, SyncMode::None).unwrap();
        own.remove().unwrap();
        assert!(!other.exists());
    }

    /// `overwrite`'s reopen: a link (to a victim file) or another file put under the name
    /// is never written through; the file created is.
    #[cfg(unix)]
    #[test]
    fn a_rewrite_opens_only_the_file_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_100_0_x");
        let (f, own) = create_new(&path, SyncMode::None).unwrap();
        drop(f);
        own.reopen(SyncMode::None).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = own.reopen(SyncMode::None).unwrap_err().to_string();
        assert!(e.contains("open again"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::copy(&victim, &path).unwrap();
        let e = own.reopen(SyncMode::None).unwrap_err().to_string();
        assert!(e.contains("was replaced"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_large_chunk_is_written_in_pieces_and_a_stop_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (f, _own) = create_new(&dir.path().join("f"), SyncMode::None).unwrap();
        let buf = ChunkBuf::new(64 * MIB).unwrap();
        // The buffer is one piece, not the chunk.
        assert_eq!((buf.data.len() - DIRECT_ALIGN) as u64, PIECE_MB * MIB);
        let pieces = std::cell::Cell::new(0);
        let done = write_chunk_at(&f, &buf, 0, 40 * MIB, &|| {
            pieces.set(pieces.get() + 1);
            pieces.get() > 2
        })
        .unwrap();
        assert!(!done);
        assert_eq!(f.metadata().unwrap().len(), 2 * PIECE_MB * MIB);
        let at = 2 * PIECE_MB * MIB;
        assert!(write_chunk_at(&f, &buf, at, 40 * MIB, &|| false).unwrap());
        assert_eq!(f.metadata().unwrap().len(), (2 * PIECE_MB + 40) * MIB);
    }

    #[test]
    fn aligned_buffer() {
        let b = ChunkBuf::new(MIB).unwrap();
        let s = b.as_slice(MIB);
        assert_eq!(s.len(), MIB as usize);
        assert_eq!(s.as_ptr() as usize % DIRECT_ALIGN, 0);
        assert!(s.iter().all(|&x| x == FILL));
    }
}
