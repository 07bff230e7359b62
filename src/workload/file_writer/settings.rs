//! The file writer's settings ([`FileWriterConfig`], [`SyncMode`], [`KeepFiles`]) and their
//! rules.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::units::size_text;

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;

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

/// Whether and when the writer checks the data it wrote (docs/VERIFY.md): with any mode but
/// `None`, every block of every chunk carries a self-describing header and a CRC-32C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// Files are written as the seed wrote them, unchecked (the default).
    #[default]
    None,
    /// Each finished file is read back and checked just before `keep_files` would delete it
    /// (or `overwrite` rewrite it), so aged data is checked; with `sync = direct` the read is
    /// O_DIRECT. With `keep_files = all` nothing is deleted: the files are checked when the
    /// run ends, as with `End`.
    Rollover,
    /// The kept files are checked when the run ends.
    End,
}

impl FromStr for VerifyMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(VerifyMode::None),
            "rollover" => Ok(VerifyMode::Rollover),
            "end" => Ok(VerifyMode::End),
            other => Err(Error::Config(format!(
                "verify must be none, rollover or end, not {other:?}"
            ))),
        }
    }
}

impl fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyMode::None => "none",
            VerifyMode::Rollover => "rollover",
            VerifyMode::End => "end",
        })
    }
}

/// How many finished files to keep on disk.
///
/// # Examples
/// ```
/// use loadmon::workload::file_writer::KeepFiles;
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
    /// use loadmon::workload::file_writer::KeepFiles;
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

/// The file writer's settings. `Default` gives the seed's (15 s, 10 MB chunks, 50 MB files,
/// one stream writing one chunk at a time, as fast as it can).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileWriterConfig {
    /// How long to write, seconds (default 15).
    pub run_time_s: f64,
    /// Size of one write, bytes (default 10 MiB; from 512 bytes to 4096 MiB).
    pub chunk_size_bytes: u64,
    /// Size of one file, bytes (default 50 MiB).
    pub file_size_bytes: u64,
    /// Smallest chunk allowed, bytes (default 10 MiB, the seed's minimum; lower it for
    /// small-block tests).
    pub min_chunk_size_bytes: u64,
    /// Directory for the files (default `client_files`).
    pub out_dir: PathBuf,
    /// Durability mode (default none).
    #[serde(serialize_with = "crate::config::ser::display")]
    pub sync: SyncMode,
    /// Finished files to keep, per stream (default 2).
    #[serde(serialize_with = "crate::config::ser::display")]
    pub keep_files: KeepFiles,
    /// Writer streams (fio's `numjobs`, elbencho's `-t`): each writes its own sequence of files
    /// with its own `keep_files`, and the client's figures are their sums (default 1, the
    /// seed's one writer; 1 to [`JOBS`](crate::config::JOBS)'s maximum, 256).
    pub jobs: u32,
    /// Writes in flight per stream (fio's `iodepth` with `ioengine=io_uring`): above 1, up to
    /// this many chunk writes of a stream are submitted at once through io_uring, each from
    /// its own buffer (default 1: one write at a time, `pwrite`, the seed's; 1 to 256). With
    /// `sync = direct` they go to the device as submitted; buffered writes (`none`, `file`)
    /// complete in the page cache, the kernel copying up to this many at once on its own
    /// worker threads (`file`'s fsync per file waits for them all). Where io_uring cannot be
    /// used (a kernel without it, a seccomp profile that refuses it) each stream writes one
    /// chunk at a time, and the client's log and report (`engine`) say why.
    pub iodepth: u32,
    /// The client's pace, MB/s (MiB/s), shared evenly by its streams: each chunk has a
    /// scheduled start, and latency is measured from the schedule as well as from the
    /// actual start. `None` (the default): as fast as the device takes the writes.
    pub rate_mb_s: Option<f64>,
    /// Whether and when the written data is checked (default none: written as the seed
    /// wrote it).
    #[serde(serialize_with = "crate::config::ser::display")]
    pub verify: VerifyMode,
    /// Size of a verify block, bytes: a power of two from 512 bytes to 1 MiB (default 4 KiB);
    /// the chunk and file sizes must be whole multiples of it.
    pub verify_block_bytes: u64,
    /// A bad block found by the check does not stop the writing: the run carries on writing
    /// and checking (every bad block counted and reported) and still ends FAILED, with the
    /// first finding as its reason; by default the first one ends the run at once.
    pub verify_continue: bool,
    /// When the run ends, check another client's kept files in the same (shared) `out_dir`
    /// instead of this client's own (elbencho's `--rotatehosts`): the next client id above
    /// this one that has files there (wrapping round), so that a host's own page cache
    /// cannot hide a lost write. Needs `verify = end`.
    pub verify_peer: bool,
    /// Once a stream holds `keep_files` finished files, the next file rewrites the oldest in
    /// place (the same name and file number, the next write generation) instead of deleting
    /// it and creating a new one (fio's `overwrite`; a recycled log). Needs `keep_files` to
    /// be a number.
    pub overwrite: bool,
}

impl Default for FileWriterConfig {
    fn default() -> Self {
        FileWriterConfig {
            run_time_s: 15.0,
            chunk_size_bytes: 10 * MIB,
            file_size_bytes: 50 * MIB,
            min_chunk_size_bytes: 10 * MIB,
            out_dir: PathBuf::from("client_files"),
            sync: SyncMode::None,
            keep_files: KeepFiles::default(),
            jobs: 1,
            iodepth: 1,
            rate_mb_s: None,
            verify: VerifyMode::None,
            verify_block_bytes: u64::from(crate::verify::DEFAULT_BLOCK_BYTES),
            verify_continue: false,
            verify_peer: false,
            overwrite: false,
        }
    }
}

/// O_DIRECT's alignment: with `sync = direct` a chunk and a file are whole multiples of it.
pub const DIRECT_ALIGN_BYTES: u64 = 4096;

impl FileWriterConfig {
    /// The seed's first two rules and the basic sanity of every field (no I/O).
    ///
    /// # Errors
    /// [`Error::Config`] saying which rule failed, with its bound.
    pub fn validate(&self) -> Result<()> {
        crate::config::seconds("run_time", self.run_time_s, crate::config::RUN_TIME)?;
        self.check_sizes()?;
        self.keep_files.check()?;
        if self.out_dir.as_os_str().is_empty() {
            return Err(Error::Config("out_dir must not be empty".into()));
        }
        crate::config::JOBS.check("jobs", u64::from(self.jobs))?;
        crate::config::IODEPTH.check("iodepth", u64::from(self.iodepth))?;
        if let Some(r) = self.rate_mb_s {
            crate::config::rate_mb_s("rate", r)?;
            self.check_pace(r)?;
        }
        self.check_verify()?;
        let slot = self.chunk_size_bytes.min(super::PIECE_MB * MIB);
        let buffers = u64::from(self.jobs) * u64::from(self.iodepth) * slot;
        if buffers > crate::config::MAX_WRITE_BUFFERS_BYTES {
            return Err(Error::Config(format!(
                "jobs × iodepth × the write buffer ({} × {} × {}) is {}, above the limit of {} \
                 (each write in flight holds its buffer in memory): lower jobs, iodepth or the \
                 chunk size",
                self.jobs,
                self.iodepth,
                size_text(slot),
                size_text(buffers),
                size_text(crate::config::MAX_WRITE_BUFFERS_BYTES)
            )));
        }
        Ok(())
    }

    /// The verify settings' rules: the block size's bounds, sizes that are whole blocks, and
    /// the settings that need another.
    fn check_verify(&self) -> Result<()> {
        if self.overwrite && self.keep_files == KeepFiles::All {
            return Err(Error::Config(
                "overwrite rewrites the oldest of the kept files: keep_files must be a number, \
                 not all"
                    .into(),
            ));
        }
        if self.verify == VerifyMode::None {
            if self.verify_continue || self.verify_peer {
                let which = if self.verify_peer {
                    "verify_peer"
                } else {
                    "verify_continue"
                };
                return Err(Error::Config(format!(
                    "{which} needs a check of the data: set verify to rollover or end"
                )));
            }
            return Ok(());
        }
        if self.verify_peer && self.verify != VerifyMode::End {
            return Err(Error::Config(
                "verify_peer checks another client's files when the run ends: set verify to \
                 end"
                .into(),
            ));
        }
        let bs = crate::verify::check_block_bytes(self.verify_block_bytes)?;
        if !self.chunk_size_bytes.is_multiple_of(bs) || !self.file_size_bytes.is_multiple_of(bs) {
            return Err(Error::Config(format!(
                "verify writes whole blocks of {}: chunk size {} and file size {} must both be \
                 multiples of it (set verify_block, or the sizes)",
                size_text(bs),
                size_text(self.chunk_size_bytes),
                size_text(self.file_size_bytes)
            )));
        }
        Ok(())
    }

    /// The seed's rule of 2 whole files in the run time, at the pace of `rate_mb_s`: each
    /// stream writes at its share (`rate / jobs`), so it can write no more than that, however
    /// fast the disk (the probe checks the disk).
    fn check_pace(&self, rate_mb_s: f64) -> Result<()> {
        let jobs = f64::from(self.jobs.max(1));
        let stream_mb_s = rate_mb_s / jobs;
        let file_mb = self.file_size_bytes as f64 / MIB as f64;
        let fit = self.run_time_s * stream_mb_s / file_mb;
        if fit >= 2.0 {
            return Ok(());
        }
        let share = if self.jobs > 1 {
            format!(
                " ({stream_mb_s:.3} MB/s per stream, over {} streams)",
                self.jobs
            )
        } else {
            String::new()
        };
        Err(Error::Config(format!(
            "at a rate of {} MB/s{share}, only {fit:.2} whole file(s) of {} fit in {} \
             s; at least 2 must (raise the rate or the run time, or lower the file size)",
            crate::config::number(rate_mb_s),
            size_text(self.file_size_bytes),
            self.run_time_s
        )))
    }

    /// The sizes' rules: the seed's (chunk ≥ minimum, chunk ≤ file), their bounds, and
    /// O_DIRECT's alignment.
    fn check_sizes(&self) -> Result<()> {
        let (chunk, file) = (self.chunk_size_bytes, self.file_size_bytes);
        if chunk < self.min_chunk_size_bytes {
            return Err(Error::Config(format!(
                "chunk size {} is below the minimum of {}",
                size_text(chunk),
                size_text(self.min_chunk_size_bytes)
            )));
        }
        let rule = crate::config::CHUNK_SIZE_BYTES;
        if chunk < rule.min {
            return Err(Error::Config(format!(
                "chunk size must be at least {}, not {}",
                size_text(rule.min),
                size_text(chunk)
            )));
        }
        if chunk > rule.max {
            return Err(Error::Config(format!(
                "chunk size {} is above the maximum of {}",
                size_text(chunk),
                size_text(rule.max)
            )));
        }
        if chunk > file {
            return Err(Error::Config(format!(
                "chunk size {} is larger than file size {}",
                size_text(chunk),
                size_text(file)
            )));
        }
        crate::config::MIN_CHUNK_SIZE_BYTES
            .check("min_chunk_size_bytes", self.min_chunk_size_bytes)?;
        let rule = crate::config::FILE_SIZE_BYTES;
        if file > rule.max {
            return Err(Error::Config(format!(
                "file size {} is above the maximum of {}",
                size_text(file),
                size_text(rule.max)
            )));
        }
        if self.sync == SyncMode::Direct
            && (chunk % DIRECT_ALIGN_BYTES != 0 || file % DIRECT_ALIGN_BYTES != 0)
        {
            return Err(Error::Config(format!(
                "sync=direct (O_DIRECT) writes whole multiples of {}: chunk size {} and file \
                 size {} must both be",
                size_text(DIRECT_ALIGN_BYTES),
                size_text(chunk),
                size_text(file)
            )));
        }
        Ok(())
    }

    /// The chunk and file size announced in the seed's `file_stats:<chunk_mb>:<file_mb>`, MiB:
    /// exact for whole MiB (every seed size), the whole MiB they hold otherwise (a 256 KiB chunk
    /// is announced as 0, 1.5 MiB as 1). Rounded down, so that a server's "whole files × file
    /// size" (the bytes a seed client is credited with, and the least a loadmon client's count
    /// may show) never exceeds what was written; the exact bytes are on the plan and in the
    /// client's own result.
    pub fn file_stats_mb(&self) -> (u64, u64) {
        (self.chunk_size_bytes / MIB, self.file_size_bytes / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!("FILE".parse::<SyncMode>().unwrap(), SyncMode::File);
        assert!("fsync".parse::<SyncMode>().is_err());
        assert_eq!("all".parse::<KeepFiles>().unwrap(), KeepFiles::All);
        assert_eq!("3".parse::<KeepFiles>().unwrap(), KeepFiles::Last(3));
        assert!("-1".parse::<KeepFiles>().is_err());
    }

    #[test]
    fn streams_depth_rate_and_sizes_are_checked_with_their_bounds() {
        let ok = FileWriterConfig::default();
        assert!(ok.validate().is_ok());
        let bad = |c: FileWriterConfig, want: &str| {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        bad(
            FileWriterConfig {
                jobs: 0,
                ..ok.clone()
            },
            "jobs must be from 1 to 256, not 0",
        );
        bad(
            FileWriterConfig {
                jobs: 10_000,
                ..ok.clone()
            },
            "jobs must be from 1 to 256",
        );
        bad(
            FileWriterConfig {
                iodepth: 257,
                ..ok.clone()
            },
            "iodepth must be from 1 to 256",
        );
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e6 + 1.0] {
            bad(
                FileWriterConfig {
                    rate_mb_s: Some(r),
                    ..ok.clone()
                },
                "rate must be a number of MB/s above 0 and at most 1000000",
            );
        }
        bad(
            FileWriterConfig {
                jobs: 256,
                iodepth: 256,
                ..ok.clone()
            },
            "above the limit of 4096 MB",
        );
    }

    #[test]
    fn a_tiny_rate_reads_as_a_number_in_the_message() {
        let c = FileWriterConfig {
            rate_mb_s: Some(1e-300),
            ..FileWriterConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("at a rate of 1e-300 MB/s, only 0.00 whole file(s)"),
            "{e}"
        );
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn sub_mb_sizes_and_the_direct_io_alignment() {
        let ok = FileWriterConfig::default();
        let bad = |c: FileWriterConfig, want: &str| {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        let small = FileWriterConfig {
            chunk_size_bytes: 6000,
            file_size_bytes: 60_000,
            min_chunk_size_bytes: 4096,
            ..ok.clone()
        };
        assert!(small.validate().is_ok(), "sub-MB chunks, buffered");
        assert_eq!(small.file_stats_mb(), (0, 0), "file_stats rounds down");
        let odd = FileWriterConfig {
            chunk_size_bytes: MIB + MIB / 2,
            file_size_bytes: 3 * MIB + 1,
            ..ok.clone()
        };
        assert_eq!(odd.file_stats_mb(), (1, 3));
        bad(
            FileWriterConfig {
                sync: SyncMode::Direct,
                ..small.clone()
            },
            "multiples of 4 KiB: chunk size 6000 bytes and file size 60000 bytes",
        );
        let aligned = FileWriterConfig {
            chunk_size_bytes: 4096,
            file_size_bytes: 64 << 10,
            sync: SyncMode::Direct,
            ..small
        };
        assert!(aligned.validate().is_ok());
        bad(
            FileWriterConfig {
                chunk_size_bytes: 256,
                min_chunk_size_bytes: 0,
                ..aligned
            },
            "chunk size must be at least 512 bytes",
        );
        bad(
            FileWriterConfig {
                chunk_size_bytes: 1 << 20,
                ..ok
            },
            "chunk size 1 MB is below the minimum of 10 MB",
        );
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    #[test]
    fn verify_settings_are_checked_with_their_rules() {
        let ok = FileWriterConfig {
            verify: VerifyMode::Rollover,
            ..Default::default()
        };
        ok.validate().unwrap();
        assert_eq!("END".parse::<VerifyMode>().unwrap(), VerifyMode::End);
        let e = "later".parse::<VerifyMode>().unwrap_err().to_string();
        assert!(e.contains("none, rollover or end"), "{e}");
        let cases: [(FileWriterConfig, &str); 6] = [
            (
                FileWriterConfig {
                    verify_block_bytes: 3000,
                    ..ok.clone()
                },
                "power of two",
            ),
            (
                FileWriterConfig {
                    verify_block_bytes: 1 << 20,
                    chunk_size_bytes: 10 * MIB + 4096,
                    file_size_bytes: 50 * MIB,
                    ..ok.clone()
                },
                "multiples of it",
            ),
            (
                FileWriterConfig {
                    verify_continue: true,
                    ..Default::default()
                },
                "verify_continue needs",
            ),
            (
                FileWriterConfig {
                    verify_peer: true,
                    ..ok.clone()
                },
                "set verify to end",
            ),
            (
                FileWriterConfig {
                    overwrite: true,
                    keep_files: KeepFiles::All,
                    ..Default::default()
                },
                "keep_files must be a number",
            ),
            (
                FileWriterConfig {
                    verify_peer: true,
                    ..Default::default()
                },
                "verify_peer needs",
            ),
        ];
        for (c, want) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
