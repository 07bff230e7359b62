//! The file writer's settings ([`FileWriterConfig`], [`SyncMode`], [`KeepFiles`]) and their
//! rules.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

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
}
