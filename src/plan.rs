//! The plan a fleet server hands to its workers: the file writer's parameters, without the
//! output directory (each worker writes where it was told to).
//!
//! A [`Plan`] is checked by the same rules as [`FileWriterConfig::validate`] (it builds one and
//! calls it): the server checks its plan before it listens, and a worker checks the plan it
//! receives again, timed probe included ([`FileWriter::new`](crate::file_writer::FileWriter::new)),
//! because only the worker's host can tell whether two files fit in the run time there. On the
//! wire it is the `plan` command ([`Message::Plan`](crate::protocol::Message::Plan)); its
//! grammar is in [`crate::protocol`].

use std::fmt;
use std::path::PathBuf;

use crate::error::Result;
use crate::file_writer::{FileWriterConfig, KeepFiles, SyncMode};

/// What every worker of a fleet runs. `Default` gives the seed's test (15 s, 10 MB chunks,
/// 50 MB files), as `loadmon client` without options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How long to write, seconds (`--runtime`).
    pub run_time_s: f64,
    /// Size of one write, MiB (`--chunksize`).
    pub chunk_size_mb: u64,
    /// Size of one file, MiB (`--filesize`).
    pub file_size_mb: u64,
    /// Smallest chunk allowed, MiB (`--min-chunksize`, the seed's 10 by default).
    pub min_chunk_size_mb: u64,
    /// Durability mode (`--sync`).
    pub sync: SyncMode,
    /// Finished files each worker keeps (`--keep-files`).
    pub keep_files: KeepFiles,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::from_writer_config(&FileWriterConfig::default())
    }
}

impl Plan {
    /// The plan of a file writer's settings (its output directory left out).
    pub fn from_writer_config(c: &FileWriterConfig) -> Plan {
        Plan {
            run_time_s: c.run_time_s,
            chunk_size_mb: c.chunk_size_mb,
            file_size_mb: c.file_size_mb,
            min_chunk_size_mb: c.min_chunk_size_mb,
            sync: c.sync,
            keep_files: c.keep_files,
        }
    }

    /// The file writer's settings for this plan, writing into `out_dir`.
    pub fn writer_config(&self, out_dir: PathBuf) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: self.run_time_s,
            chunk_size_mb: self.chunk_size_mb,
            file_size_mb: self.file_size_mb,
            min_chunk_size_mb: self.min_chunk_size_mb,
            out_dir,
            sync: self.sync,
            keep_files: self.keep_files,
        }
    }

    /// The file writer's rules, without I/O ([`FileWriterConfig::validate`]; the timed probe
    /// runs on each worker).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) saying which rule failed.
    pub fn validate(&self) -> Result<()> {
        self.writer_config(PathBuf::from(".")).validate()
    }
}

impl fmt::Display for Plan {
    /// `15 s, 10 MB chunks, 50 MB files, min chunk 10 MB, sync none, keep 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} s, {} MB chunks, {} MB files, min chunk {} MB, sync {}, keep {}",
            self.run_time_s,
            self.chunk_size_mb,
            self.file_size_mb,
            self.min_chunk_size_mb,
            self.sync,
            self.keep_files
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_is_the_seed_test_and_valid() {
        let p = Plan::default();
        assert_eq!(
            (p.run_time_s, p.chunk_size_mb, p.file_size_mb),
            (15.0, 10, 50)
        );
        assert!(p.validate().is_ok());
        let back = Plan::from_writer_config(&p.writer_config("x".into()));
        assert_eq!(back, p);
    }

    #[test]
    fn the_file_writer_rules_apply() {
        let bad = [
            Plan {
                chunk_size_mb: 5,
                ..Plan::default()
            },
            Plan {
                chunk_size_mb: 60,
                ..Plan::default()
            },
            Plan {
                run_time_s: 1e300,
                ..Plan::default()
            },
            Plan {
                run_time_s: f64::NAN,
                ..Plan::default()
            },
            Plan {
                keep_files: KeepFiles::Last(0),
                ..Plan::default()
            },
        ];
        for p in bad {
            assert!(p.validate().unwrap_err().is_config(), "{p:?}");
        }
    }
}
