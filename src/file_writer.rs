//! The test client's workload: write files of `file_size_mb` in `chunk_size_mb` writes, one after
//! another, for `run_time_s`, reporting each completed file (`file_roll`).
//!
//! Files are named as the seed named them, `client_<id>_<n>_<YYYY-mm-dd_HH.MM.SS>` (`n` from 0), in
//! `out_dir`. Only the newest `keep_files` finished files are kept, so a long run cannot fill the
//! disk. The seed's three validation rules run before connecting: chunk ≥ the minimum (10 MB),
//! chunk ≤ file, and a timed probe write must show that at least 2 whole files fit in the run time.
//!
//! `out_dir` may be shared with other users (a world-writable scratch directory): every file is
//! created new (`O_CREAT|O_EXCL|O_NOFOLLOW`), so a name that already exists, whatever it is (a
//! file, a symbolic link, a FIFO), is never opened: the run ends with an error naming it. The one
//! exception is a regular file of the same user with no other link, a leftover of an earlier run
//! (the same client id in the same second): it is removed and the file created anew, as the
//! seed's overwrite did. A file is removed (a partial file, a file past `keep_files`, the probe's) only while its name still
//! holds the very file the writer created. Writes go out in pieces of at most [`PIECE_MB`], and
//! a stop (or the end of the run time) takes effect between two pieces.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{Context, Workload};
use crate::error::{Error, Result};

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;
/// The byte the seed filled its files with.
const FILL: u8 = 0x5a;
/// Alignment for O_DIRECT buffers.
const DIRECT_ALIGN: usize = 4096;
/// Largest chunk accepted, MiB (the chunk is held in memory; the rule is
/// [`config::CHUNK_SIZE_MB`](crate::config::CHUNK_SIZE_MB)).
pub const MAX_CHUNK_SIZE_MB: u64 = crate::config::CHUNK_SIZE_MB.max;
/// Largest single write, MiB: a larger chunk is written in pieces of this size (one buffer of
/// this size is held in memory), and a stop takes effect between two pieces, so that it never
/// waits for a whole chunk of up to [`MAX_CHUNK_SIZE_MB`]. A chunk up to this size is one write,
/// as in the seed. A multiple of the O_DIRECT alignment.
pub const PIECE_MB: u64 = 16;

/// How written data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Buffered writes; the page cache decides (the seed's behaviour).
    #[default]
    None,
    /// `fsync` each file before it counts as written.
    File,
    /// `O_DIRECT`: bypass the page cache (an error where the filesystem does not allow it).
    Direct,
}

impl FromStr for SyncMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SyncMode::None),
            "file" => Ok(SyncMode::File),
            "direct" => Ok(SyncMode::Direct),
            other => Err(Error::Config(format!(
                "sync must be none, file or direct, not {other:?}"
            ))),
        }
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncMode::None => "none",
            SyncMode::File => "file",
            SyncMode::Direct => "direct",
        })
    }
}

/// How many finished files to keep on disk.
///
/// # Examples
/// ```
/// use loadmon::file_writer::KeepFiles;
/// assert_eq!("all".parse::<KeepFiles>().unwrap(), KeepFiles::All);
/// assert_eq!("3".parse::<KeepFiles>().unwrap(), KeepFiles::Last(3));
/// assert!("0".parse::<KeepFiles>().is_err());
/// assert!(KeepFiles::last(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepFiles {
    /// Keep the last N (at least 1); older ones are deleted as new ones complete.
    Last(usize),
    /// Keep every file (can fill the disk on a long run).
    All,
}

impl Default for KeepFiles {
    fn default() -> Self {
        KeepFiles::Last(2)
    }
}

impl KeepFiles {
    /// Keep the last `n` files, from a face's integer.
    ///
    /// # Errors
    /// [`Error::Config`] unless `n` is at least 1 and fits in memory's address space.
    pub fn last(n: i128) -> Result<KeepFiles> {
        Self::setting("keep_files", n, "\"all\"")
    }

    /// Keep the last `n` files, from a face's integer set as `name`, where the face spells
    /// "keep all" as `all` (C: `plan_keep_files`, `LOADMON_KEEP_ALL`).
    ///
    /// # Examples
    /// ```
    /// use loadmon::file_writer::KeepFiles;
    ///
    /// assert_eq!(KeepFiles::setting("plan_keep_files", 3, "ALL").unwrap(), KeepFiles::Last(3));
    /// let e = KeepFiles::setting("plan_keep_files", 0, "ALL").unwrap_err().to_string();
    /// assert!(e.ends_with("plan_keep_files must be a whole number of at least 1 or ALL, not 0"), "{e}");
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming `name` unless `n` is at least 1 and fits in memory's address
    /// space.
    pub fn setting(name: &str, n: i128, all: &str) -> Result<KeepFiles> {
        match crate::config::integer::<usize>(name, n) {
            Ok(0) | Err(_) => Err(Self::named_error(name, &n.to_string(), all)),
            Ok(n) => Ok(KeepFiles::Last(n)),
        }
    }

    /// The number of files kept; `None` for all.
    pub fn count(self) -> Option<usize> {
        match self {
            KeepFiles::Last(n) => Some(n),
            KeepFiles::All => None,
        }
    }

    fn error(v: &str) -> Error {
        Self::named_error("keep_files", v, "\"all\"")
    }

    fn named_error(name: &str, v: &str, all: &str) -> Error {
        Error::Config(format!(
            "{name} must be a whole number of at least 1 or {all}, not {v}"
        ))
    }

    fn check(self) -> Result<()> {
        match self {
            KeepFiles::Last(0) => Err(Self::error("0")),
            KeepFiles::Last(_) | KeepFiles::All => Ok(()),
        }
    }
}

impl FromStr for KeepFiles {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(KeepFiles::All);
        }
        match t.parse::<i128>() {
            Ok(n) => KeepFiles::last(n),
            Err(_) => Err(Self::error(&format!("{s:?}"))),
        }
    }
}

impl fmt::Display for KeepFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepFiles::All => f.write_str("all"),
            KeepFiles::Last(n) => write!(f, "{n}"),
        }
    }
}

/// The file writer's settings. `Default` gives the seed's (15 s, 10 MB chunks, 50 MB files).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileWriterConfig {
    /// How long to write, seconds (default 15).
    pub run_time_s: f64,
    /// Size of one write, MiB (default 10).
    pub chunk_size_mb: u64,
    /// Size of one file, MiB (default 50).
    pub file_size_mb: u64,
    /// Smallest chunk allowed, MiB (default 10, the seed's minimum).
    pub min_chunk_size_mb: u64,
    /// Directory for the files (default `client_files`).
    pub out_dir: PathBuf,
    /// Durability mode (default none).
    #[serde(serialize_with = "crate::config::ser::display")]
    pub sync: SyncMode,
    /// Finished files to keep (default 2).
    #[serde(serialize_with = "crate::config::ser::display")]
    pub keep_files: KeepFiles,
}

impl Default for FileWriterConfig {
    fn default() -> Self {
        FileWriterConfig {
            run_time_s: 15.0,
            chunk_size_mb: 10,
            file_size_mb: 50,
            min_chunk_size_mb: 10,
            out_dir: PathBuf::from("client_files"),
            sync: SyncMode::None,
            keep_files: KeepFiles::default(),
        }
    }
}

impl FileWriterConfig {
    /// The seed's first two rules and the basic sanity of every field (no I/O).
    ///
    /// # Errors
    /// [`Error::Config`] saying which rule failed.
    pub fn validate(&self) -> Result<()> {
        crate::config::seconds("run_time", self.run_time_s, crate::config::RUN_TIME)?;
        if self.chunk_size_mb < self.min_chunk_size_mb {
            return Err(Error::Config(format!(
                "chunk size {} MB is below the minimum of {} MB",
                self.chunk_size_mb, self.min_chunk_size_mb
            )));
        }
        if self.chunk_size_mb == 0 {
            return Err(Error::Config("chunk size must be at least 1 MB".into()));
        }
        if self.chunk_size_mb > self.file_size_mb {
            return Err(Error::Config(format!(
                "chunk size {} MB is larger than file size {} MB",
                self.chunk_size_mb, self.file_size_mb
            )));
        }
        if self.chunk_size_mb > MAX_CHUNK_SIZE_MB {
            return Err(Error::Config(format!(
                "chunk size {} MB is above the maximum of {MAX_CHUNK_SIZE_MB} MB",
                self.chunk_size_mb
            )));
        }
        if self.file_size_mb > crate::units::MAX_SIZE_MB {
            return Err(Error::Config(format!(
                "file size {} MB is above the maximum of {} MB",
                self.file_size_mb,
                crate::units::MAX_SIZE_MB
            )));
        }
        self.keep_files.check()?;
        if self.out_dir.as_os_str().is_empty() {
            return Err(Error::Config("out_dir must not be empty".into()));
        }
        Ok(())
    }
}

/// What the validation probe measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    /// Seconds to write (and sync, per the mode) one chunk: the faster of two timed writes.
    pub chunk_write_s: f64,
    /// Whole files that fit in the run time at that speed.
    pub files_that_fit: f64,
}

/// The test client's workload.
#[derive(Debug, Clone)]
pub struct FileWriter {
    config: FileWriterConfig,
    probe: Probe,
}

impl FileWriter {
    /// Validates `config` with the seed's three rules, the timed probe included.
    ///
    /// The probe ends as soon as it shows that fewer than 2 files fit (a chunk write slower
    /// than half the run time per file is not waited for to the end). To stop it from another
    /// thread, use [`FileWriter::new_cancellable`].
    ///
    /// # Errors
    /// [`Error::Config`] for a broken rule (including a probe showing fewer than 2 files fit),
    /// [`Error::File`] if `out_dir` cannot be written (or the probe's file name is taken).
    pub fn new(config: FileWriterConfig) -> Result<FileWriter> {
        Self::new_cancellable(config, &CancellationToken::new())
    }

    /// As [`FileWriter::new`], with a probe that stops, within one write of at most
    /// [`PIECE_MB`], once `cancel` is cancelled (its file is then removed).
    ///
    /// # Examples
    /// ```
    /// use loadmon::file_writer::{FileWriter, FileWriterConfig};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cancel = CancellationToken::new();
    /// cancel.cancel();
    /// let config = FileWriterConfig { out_dir: dir.path().to_path_buf(), ..Default::default() };
    /// let e = FileWriter::new_cancellable(config, &cancel).unwrap_err();
    /// assert!(matches!(e, loadmon::Error::Interrupted(_)), "{e}");
    /// assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0); // nothing left behind
    /// ```
    ///
    /// # Errors
    /// As [`FileWriter::new`]; [`Error::Interrupted`] if cancelled.
    pub fn new_cancellable(
        config: FileWriterConfig,
        cancel: &CancellationToken,
    ) -> Result<FileWriter> {
        config.validate()?;
        let probe = run_probe(&config, cancel)?;
        if probe.files_that_fit < 2.0 {
            return Err(Error::Config(format!(
                "only {:.2} whole file(s) of {} MB fit in {} s at the measured {:.1} MB/s; \
                 at least 2 must (raise the run time or lower the file size)",
                probe.files_that_fit,
                config.file_size_mb,
                config.run_time_s,
                config.chunk_size_mb as f64 / probe.chunk_write_s.max(1e-9)
            )));
        }
        Ok(FileWriter { config, probe })
    }

    /// The settings.
    pub fn config(&self) -> &FileWriterConfig {
        &self.config
    }

    /// What the validation probe measured.
    pub fn probe(&self) -> Probe {
        self.probe
    }
}

fn run_probe(config: &FileWriterConfig, cancel: &CancellationToken) -> Result<Probe> {
    let dir = &config.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::file("create directory", dir, e))?;
    // One probe file per validation: many clients of one process may share an out dir.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = dir.join(format!(
        ".loadmon_probe_{}_{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let chunk_bytes = config.chunk_size_mb * MIB;
    let chunks_per_file = config.file_size_mb as f64 / config.chunk_size_mb as f64;
    // A chunk write slower than this shows that fewer than 2 files fit: it is not waited for
    // to the end (the probe's bound, whatever the chunk size and the disk).
    let too_slow_s = config.run_time_s / (2.0 * chunks_per_file);
    let buf = ChunkBuf::new(chunk_bytes)?;
    let (mut f, own) = create_new(&path, config.sync)?;
    // Two timed chunk writes, keeping the faster: the first one also pays for first-touch
    // costs (page faults, lazy binding, a cold instruction cache) that the run will not.
    let result = (|| -> Result<Option<f64>> {
        let mut best: Option<f64> = None;
        for _ in 0..2 {
            let t = Instant::now();
            let stop = || cancel.is_cancelled() || t.elapsed().as_secs_f64() > too_slow_s;
            let written = write_chunk(&mut f, &buf, chunk_bytes, stop)
                .map_err(|e| Error::file("write", &path, e))?;
            if written && config.sync == SyncMode::File {
                f.sync_all().map_err(|e| Error::file("fsync", &path, e))?;
            }
            if cancel.is_cancelled() {
                return Err(Error::Interrupted("during the file writer's probe".into()));
            }
            let took = t.elapsed().as_secs_f64();
            if written && took <= too_slow_s {
                best = Some(best.map_or(took, |b| b.min(took)));
            }
        }
        Ok(best)
    })();
    drop(f);
    let _ = own.remove();
    let Some(chunk_write_s) = result? else {
        return Err(Error::Config(format!(
            "writing one {} MB chunk took over {too_slow_s:.3} s (twice): fewer than 2 whole \
             files of {} MB fit in {} s; at least 2 must (raise the run time or lower the file \
             size)",
            config.chunk_size_mb, config.file_size_mb, config.run_time_s
        )));
    };
    let file_s = chunk_write_s * chunks_per_file;
    Ok(Probe {
        chunk_write_s,
        files_that_fit: if file_s > 0.0 {
            config.run_time_s / file_s
        } else {
            f64::INFINITY
        },
    })
}

/// Writes `len` bytes of `buf` (repeated) to `f` in pieces of at most [`PIECE_MB`], asking
/// `stop` before each piece. `Ok(false)` if stopped before the end.
fn write_chunk(
    f: &mut File,
    buf: &ChunkBuf,
    len: u64,
    stop: impl Fn() -> bool,
) -> io::Result<bool> {
    let mut left = len;
    while left > 0 {
        if stop() {
            return Ok(false);
        }
        let n = left.min(PIECE_MB * MIB);
        f.write_all(buf.as_slice(n))?;
        left -= n;
    }
    Ok(true)
}

/// A file this writer created: removed only while its name still holds that very file (same
/// device and inode), never whatever someone put there since.
#[derive(Debug)]
struct OwnFile {
    path: PathBuf,
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
    /// Removes the file (the name, never a link's target: `unlink` follows no link); an error,
    /// and nothing removed, if the name now holds something else.
    fn remove(&self) -> io::Result<()> {
        let now = std::fs::symlink_metadata(&self.path)?;
        if file_id(&now) != self.id {
            return Err(io::Error::other(
                "the name no longer holds the file this client wrote (it was replaced): left alone",
            ));
        }
        std::fs::remove_file(&self.path)
    }
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

/// Creates `path` for writing, new: an existing name of any kind (a file, a symbolic link, even
/// a dangling one, a FIFO) is never opened (`O_CREAT|O_EXCL|O_NOFOLLOW`), so nothing planted in
/// a shared directory can redirect the data or block the open. Only a leftover regular file of
/// this user's own ([`own_leftover`]) is removed first (`unlink` follows no link).
fn create_new(path: &Path, sync: SyncMode) -> Result<(File, OwnFile)> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
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
struct ChunkBuf {
    data: Vec<u8>,
    offset: usize,
}

impl ChunkBuf {
    /// A buffer for chunks of `chunk` bytes: the chunk, or one piece of a larger chunk.
    fn new(chunk: u64) -> Result<ChunkBuf> {
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

    fn as_slice(&self, len: u64) -> &[u8] {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let end = self.offset.saturating_add(len).min(self.data.len());
        &self.data[self.offset..end]
    }
}

impl Workload for FileWriter {
    fn file_stats(&self) -> Option<(u64, u64)> {
        Some((self.config.chunk_size_mb, self.config.file_size_mb))
    }

    fn run_time(&self) -> Option<Duration> {
        Duration::try_from_secs_f64(self.config.run_time_s).ok()
    }

    fn run(&mut self, ctx: &Context) -> Result<()> {
        let cfg = &self.config;
        std::fs::create_dir_all(&cfg.out_dir)
            .map_err(|e| Error::file("create directory", &cfg.out_dir, e))?;
        let chunk_bytes = cfg.chunk_size_mb * MIB;
        let file_bytes = cfg.file_size_mb * MIB;
        let buf = ChunkBuf::new(chunk_bytes)?;
        let mut kept: VecDeque<OwnFile> = VecDeque::new();
        let mut n: u64 = 0;
        // A partial file is not a file written: removed (if it is still the one written).
        let discard = |own: &OwnFile| {
            let _ = own.remove();
        };
        while !ctx.time_is_up() {
            let stamp = chrono::Local::now().format("%Y-%m-%d_%H.%M.%S");
            // The id is a u32 from the protocol parser: it cannot contain a path separator.
            let path = cfg
                .out_dir
                .join(format!("client_{}_{n}_{stamp}", ctx.client_id()));
            let (mut f, own) = create_new(&path, cfg.sync)?;
            let mut remaining = file_bytes;
            let mut complete = true;
            while remaining > 0 {
                let len = remaining.min(chunk_bytes);
                let t = Instant::now();
                match write_chunk(&mut f, &buf, len, || ctx.time_is_up()) {
                    Ok(true) => {}
                    Ok(false) => {
                        complete = false;
                        break;
                    }
                    Err(e) => {
                        drop(f);
                        discard(&own);
                        return Err(Error::file("write", &path, e));
                    }
                }
                if let Err(e) = ctx.record_write(len, t.elapsed()) {
                    // The run is over (the client gave up waiting for this thread).
                    drop(f);
                    discard(&own);
                    return Err(e);
                }
                remaining -= len;
            }
            if !complete {
                drop(f);
                discard(&own);
                break;
            }
            n += 1;
            if cfg.sync == SyncMode::File {
                if let Err(e) = f.sync_all() {
                    drop(f);
                    discard(&own);
                    return Err(Error::file("fsync", &path, e));
                }
            }
            drop(f);
            ctx.file_rollover()?;
            kept.push_back(own);
            if let KeepFiles::Last(k) = cfg.keep_files {
                while kept.len() > k {
                    if let Some(old) = kept.pop_front() {
                        old.remove()
                            .map_err(|e| Error::file("remove", &old.path, e))?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: 30.0,
            chunk_size_mb: 1,
            file_size_mb: 2,
            min_chunk_size_mb: 1,
            out_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn parses_modes() {
        assert_eq!("FILE".parse::<SyncMode>().unwrap(), SyncMode::File);
        assert!("fsync".parse::<SyncMode>().is_err());
        assert_eq!("all".parse::<KeepFiles>().unwrap(), KeepFiles::All);
        assert_eq!("3".parse::<KeepFiles>().unwrap(), KeepFiles::Last(3));
        assert!("-1".parse::<KeepFiles>().is_err());
    }

    #[test]
    fn seed_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.min_chunk_size_mb = 10;
        let e = FileWriter::new(c).unwrap_err().to_string();
        assert!(e.contains("below the minimum of 10 MB"), "{e}");

        let mut c = cfg(dir.path());
        c.chunk_size_mb = 3;
        let e = FileWriter::new(c).unwrap_err().to_string();
        assert!(e.contains("larger than file size"), "{e}");

        let mut c = cfg(dir.path());
        c.run_time_s = 1e-6;
        let e = FileWriter::new(c).unwrap_err().to_string();
        assert!(e.contains("at least 2 must"), "{e}");

        let mut c = cfg(dir.path());
        c.run_time_s = f64::NAN;
        assert!(FileWriter::new(c).unwrap_err().is_config());

        let mut c = cfg(dir.path());
        c.keep_files = KeepFiles::Last(0);
        assert!(FileWriter::new(c).unwrap_err().is_config());

        let w = FileWriter::new(cfg(dir.path())).unwrap();
        assert!(w.probe().files_that_fit >= 2.0);
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn out_dir_that_is_a_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let mut c = cfg(&file);
        c.out_dir = file.join("sub");
        let e = FileWriter::new(c).unwrap_err().to_string();
        assert!(e.contains("create directory") && e.contains("sub"), "{e}");
    }

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

    #[test]
    fn a_cancelled_probe_ends_within_a_piece() {
        let dir = tempfile::tempdir().unwrap();
        let c = FileWriterConfig {
            run_time_s: 1e6,
            chunk_size_mb: 1024,
            file_size_mb: 2048,
            ..cfg(dir.path())
        };
        let cancel = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = cancel.clone();
        std::thread::spawn(move || {
            let _ = tx.send(FileWriter::new_cancellable(c, &stop).map(|_| ()));
        });
        let t = Instant::now();
        while std::fs::read_dir(dir.path()).unwrap().count() == 0 {
            assert!(t.elapsed() < Duration::from_secs(20), "no probe file");
            std::thread::sleep(Duration::from_millis(5));
        }
        cancel.cancel();
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the probe went on after the cancel")
            .unwrap_err();
        assert!(matches!(e, Error::Interrupted(_)), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_large_chunk_is_written_in_pieces_and_a_stop_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _own) = create_new(&dir.path().join("f"), SyncMode::None).unwrap();
        let buf = ChunkBuf::new(64 * MIB).unwrap();
        // The buffer is one piece, not the chunk.
        assert_eq!((buf.data.len() - DIRECT_ALIGN) as u64, PIECE_MB * MIB);
        let pieces = std::cell::Cell::new(0);
        let done = write_chunk(&mut f, &buf, 40 * MIB, || {
            pieces.set(pieces.get() + 1);
            pieces.get() > 2
        })
        .unwrap();
        assert!(!done);
        assert_eq!(f.metadata().unwrap().len(), 2 * PIECE_MB * MIB);
        assert!(write_chunk(&mut f, &buf, 40 * MIB, || false).unwrap());
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
