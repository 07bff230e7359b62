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
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::workload::{Context, Workload};

mod engine;
mod files;
mod settings;

use files::{create_new, write_chunk, ChunkBuf, OwnFile};
pub use settings::{FileWriterConfig, KeepFiles, SyncMode, MAX_CHUNK_SIZE_MB};

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;
/// Largest single write, MiB: a larger chunk is written in pieces of this size (one buffer of
/// this size is held in memory), and a stop takes effect between two pieces, so that it never
/// waits for a whole chunk of up to [`MAX_CHUNK_SIZE_MB`]: a stopped writer returns well within
/// the run's [`STOP_GRACE`](crate::workload::STOP_GRACE). A chunk up to this size is one write,
/// as in the seed. A multiple of the O_DIRECT alignment.
pub const PIECE_MB: u64 = 16;

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
    /// use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
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

impl Workload for FileWriter {
    fn file_stats(&self) -> Option<(u64, u64)> {
        Some((self.config.chunk_size_mb, self.config.file_size_mb))
    }

    fn run_time(&self) -> Option<Duration> {
        Duration::try_from_secs_f64(self.config.run_time_s).ok()
    }

    fn data_dir(&self) -> Option<&std::path::Path> {
        Some(&self.config.out_dir)
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
    use std::path::Path;

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
}
