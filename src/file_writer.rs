//! The test client's workload: write files of `file_size_mb` in `chunk_size_mb` writes, one after
//! another, for `run_time_s`, reporting each completed file (`file_roll`).
//!
//! Files are named as the seed named them, `client_<id>_<n>_<YYYY-mm-dd_HH.MM.SS>` (`n` from 0), in
//! `out_dir`. Only the newest `keep_files` finished files are kept, so a long run cannot fill the
//! disk. The seed's three validation rules run before connecting: chunk ≥ the minimum (10 MB),
//! chunk ≤ file, and a timed probe write must show that at least 2 whole files fit in the run time.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::client::{Context, Workload};
use crate::error::{Error, Result};

/// One MiB, the protocol's MB.
const MIB: u64 = 1024 * 1024;
/// The byte the seed filled its files with.
const FILL: u8 = 0x5a;
/// Alignment for O_DIRECT buffers.
const DIRECT_ALIGN: usize = 4096;
/// Largest chunk accepted, MiB (the chunk is held in memory; the rule is
/// [`config::CHUNK_SIZE_MB`](crate::config::CHUNK_SIZE_MB)).
pub const MAX_CHUNK_SIZE_MB: u64 = crate::config::CHUNK_SIZE_MB.max;

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
#[derive(Debug, Clone, PartialEq)]
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
    pub sync: SyncMode,
    /// Finished files to keep (default 2).
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
        if self.file_size_mb > crate::protocol::MAX_SIZE_MB {
            return Err(Error::Config(format!(
                "file size {} MB is above the maximum of {} MB",
                self.file_size_mb,
                crate::protocol::MAX_SIZE_MB
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
#[derive(Debug)]
pub struct FileWriter {
    config: FileWriterConfig,
    probe: Probe,
}

impl FileWriter {
    /// Validates `config` with the seed's three rules, the timed probe included.
    ///
    /// # Errors
    /// [`Error::Config`] for a broken rule (including a probe showing fewer than 2 files fit),
    /// [`Error::File`] if `out_dir` cannot be written.
    pub fn new(config: FileWriterConfig) -> Result<FileWriter> {
        config.validate()?;
        let probe = run_probe(&config)?;
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

fn run_probe(config: &FileWriterConfig) -> Result<Probe> {
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
    let buf = ChunkBuf::new(chunk_bytes)?;
    // Two timed chunk writes, keeping the faster: the first one also pays for first-touch
    // costs (page faults, lazy binding, a cold instruction cache) that the run will not.
    let result = (|| -> Result<f64> {
        let mut f = open_for_write(&path, config.sync)?;
        let mut best = f64::INFINITY;
        for _ in 0..2 {
            let t = Instant::now();
            f.write_all(buf.as_slice(chunk_bytes))
                .map_err(|e| Error::file("write", &path, e))?;
            if config.sync == SyncMode::File {
                f.sync_all().map_err(|e| Error::file("fsync", &path, e))?;
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    })();
    let _ = std::fs::remove_file(&path);
    let chunk_write_s = result?;
    let chunks_per_file = config.file_size_mb as f64 / config.chunk_size_mb as f64;
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

fn open_for_write(path: &Path, sync: SyncMode) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if sync == SyncMode::Direct {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_DIRECT);
        }
        #[cfg(not(target_os = "linux"))]
        {
            return Err(Error::Config(
                "sync=direct (O_DIRECT) is only supported on Linux".into(),
            ));
        }
    }
    opts.open(path).map_err(|e| {
        if sync == SyncMode::Direct && e.raw_os_error() == Some(libc::EINVAL) {
            Error::Config(format!(
                "sync=direct: the filesystem of {} does not support O_DIRECT ({e})",
                path.parent().unwrap_or(path).display()
            ))
        } else {
            Error::file("create", path, e)
        }
    })
}

/// A chunk of `0x5a` bytes aligned for O_DIRECT.
struct ChunkBuf {
    data: Vec<u8>,
    offset: usize,
}

impl ChunkBuf {
    fn new(len: u64) -> Result<ChunkBuf> {
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
        let end = (self.offset + len).min(self.data.len());
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
        let mut kept: VecDeque<PathBuf> = VecDeque::new();
        let mut n: u64 = 0;
        while !ctx.time_is_up() {
            let stamp = chrono::Local::now().format("%Y-%m-%d_%H.%M.%S");
            // The id is a u32 from the protocol parser: it cannot contain a path separator.
            let path = cfg
                .out_dir
                .join(format!("client_{}_{n}_{stamp}", ctx.client_id()));
            let mut f = open_for_write(&path, cfg.sync)?;
            let mut remaining = file_bytes;
            let mut complete = true;
            while remaining > 0 {
                if ctx.time_is_up() {
                    complete = false;
                    break;
                }
                let len = remaining.min(chunk_bytes);
                let t = Instant::now();
                if let Err(e) = f.write_all(buf.as_slice(len)) {
                    drop(f);
                    let _ = std::fs::remove_file(&path);
                    return Err(Error::file("write", &path, e));
                }
                ctx.record_write(len, t.elapsed())?;
                remaining -= len;
            }
            if !complete {
                // A partial file is not a file written: remove it.
                drop(f);
                let _ = std::fs::remove_file(&path);
                break;
            }
            n += 1;
            if cfg.sync == SyncMode::File {
                if let Err(e) = f.sync_all() {
                    drop(f);
                    let _ = std::fs::remove_file(&path);
                    return Err(Error::file("fsync", &path, e));
                }
            }
            drop(f);
            ctx.file_rollover()?;
            kept.push_back(path);
            if let KeepFiles::Last(k) = cfg.keep_files {
                while kept.len() > k {
                    if let Some(old) = kept.pop_front() {
                        std::fs::remove_file(&old).map_err(|e| Error::file("remove", &old, e))?;
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

    #[test]
    fn aligned_buffer() {
        let b = ChunkBuf::new(MIB).unwrap();
        let s = b.as_slice(MIB);
        assert_eq!(s.len(), MIB as usize);
        assert_eq!(s.as_ptr() as usize % DIRECT_ALIGN, 0);
        assert!(s.iter().all(|&x| x == FILL));
    }
}
