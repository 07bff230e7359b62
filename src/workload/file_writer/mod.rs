//! The test client's workload: `jobs` streams (one by default, the seed's writer), each writing
//! files of `file_size_bytes` in `chunk_size_bytes` writes, one after another, for
//! `run_time_s`, reporting each completed file (`file_roll`).
//!
//! Files are named as the seed named them, `client_<id>_<n>_<YYYY-mm-dd_HH.MM.SS>` (`n` from
//! 0), in `out_dir`; with several streams each has its own sequence,
//! `client_<id>_<stream>_<n>_<stamp>` (`stream` from 0). Only the newest `keep_files` finished
//! files of each stream are kept, so a long run cannot fill the disk. The seed's three
//! validation rules run before connecting: chunk ≥ the minimum (10 MB), chunk ≤ file, and a
//! timed probe write — every stream writing at once — must show that at least 2 whole files
//! per stream fit in the run time.
//!
//! `out_dir` may be shared with other users (a world-writable scratch directory): every file is
//! created new (`O_CREAT|O_EXCL|O_NOFOLLOW`), so a name that already exists, whatever it is (a
//! file, a symbolic link, a FIFO), is never opened: the run ends with an error naming it. The one
//! exception is a regular file of the same user with no other link, a leftover of an earlier run
//! (the same client id in the same second): it is removed and the file created anew, as the
//! seed's overwrite did. A file is removed (a partial file, a file past `keep_files`, the probe's) only while its name still
//! holds the very file the writer created. Writes go out in pieces of at most [`PIECE_MB`], and
//! a stop (or the end of the run time) takes effect between two pieces.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::units::size_text;
use crate::workload::{Context, Workload};

mod engine;
mod files;
mod pace;
mod settings;
mod stream;
mod verified;

use files::{create_new, write_chunk_at, ChunkBuf};
pub use settings::{
    FileWriterConfig, KeepFiles, SyncMode, VerifyMode, DIRECT_ALIGN_BYTES, MAX_CHUNK_SIZE_MB,
};
use stream::Stream;
use verified::{KeptFile, RunVerify};
pub use verified::{PAUSE_ENV, PEER_WAIT};

/// One MiB, the protocol's MB.
const MIB: u64 = crate::units::BYTES_PER_MB_U64;
/// Largest single write, MiB: a larger chunk is written in pieces of this size (one buffer of
/// this size is held in memory per write in flight), and a stop takes effect between two
/// pieces, so that it never waits for a whole chunk of up to [`MAX_CHUNK_SIZE_MB`]: a stopped
/// writer returns well within the run's [`STOP_GRACE`](crate::workload::STOP_GRACE). A chunk
/// up to this size is one write, as in the seed. A multiple of the O_DIRECT alignment.
pub const PIECE_MB: u64 = 16;

/// What the validation probe measured (every stream writing at once).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    /// Seconds for a stream to write (and sync, per the mode) one chunk while every stream
    /// writes: the faster of two timed writes, of the slowest stream.
    pub chunk_write_s: f64,
    /// Whole files per stream that fit in the run time at that speed.
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
                "only {:.2} whole file(s) of {} fit in {} s at the measured {:.1} MB/s{}; \
                 at least 2 must (raise the run time or lower the file size)",
                probe.files_that_fit,
                size_text(config.file_size_bytes),
                config.run_time_s,
                config.chunk_size_bytes as f64 / MIB as f64 / probe.chunk_write_s.max(1e-9),
                per_stream(&config)
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

/// `" per stream, with N streams writing at once"` for several streams, else nothing.
fn per_stream(config: &FileWriterConfig) -> String {
    if config.jobs > 1 {
        format!(" per stream, with {} streams writing at once", config.jobs)
    } else {
        String::new()
    }
}

/// The probe: every stream writes two timed chunks to a probe file of its own at once.
fn run_probe(config: &FileWriterConfig, cancel: &CancellationToken) -> Result<Probe> {
    let dir = &config.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::file("create directory", dir, e))?;
    let chunks_per_file = config.file_size_bytes as f64 / config.chunk_size_bytes as f64;
    // A chunk write slower than this shows that fewer than 2 files fit: it is not waited for
    // to the end (the probe's bound, whatever the chunk size and the disk).
    let too_slow_s = config.run_time_s / (2.0 * chunks_per_file);
    let results: Vec<Result<Option<f64>>> = if config.jobs <= 1 {
        vec![probe_stream(config, cancel, too_slow_s)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..config.jobs)
                .map(|_| s.spawn(|| probe_stream(config, cancel, too_slow_s)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(panicked("probe"))))
                .collect()
        })
    };
    let mut slowest: Option<f64> = Some(0.0);
    for r in results {
        slowest = match (slowest, r?) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let Some(chunk_write_s) = slowest else {
        return Err(Error::Config(format!(
            "writing one {} chunk took over {too_slow_s:.3} s (twice){}: fewer than 2 whole \
             files of {} fit in {} s; at least 2 must (raise the run time or lower the file \
             size)",
            size_text(config.chunk_size_bytes),
            per_stream(config),
            size_text(config.file_size_bytes),
            config.run_time_s
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

/// The error of a thread of the writer's that panicked.
fn panicked(what: &str) -> Error {
    Error::Workload(format!("a file writer {what} thread panicked"))
}

/// One stream's probe: the faster of two timed chunk writes to a probe file of its own, or
/// `None` if both took over `too_slow_s` (not waited for to the end).
fn probe_stream(
    config: &FileWriterConfig,
    cancel: &CancellationToken,
    too_slow_s: f64,
) -> Result<Option<f64>> {
    // One probe file per validation and stream: many clients of one process may share an
    // out dir.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = config.out_dir.join(format!(
        ".loadmon_probe_{}_{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    let chunk_bytes = config.chunk_size_bytes;
    let buf = ChunkBuf::new(chunk_bytes)?;
    let (f, own) = create_new(&path, config.sync)?;
    // Two timed chunk writes, keeping the faster: the first one also pays for first-touch
    // costs (page faults, lazy binding, a cold instruction cache) that the run will not.
    let result = (|| -> Result<Option<f64>> {
        let mut best: Option<f64> = None;
        for i in 0..2u64 {
            let t = Instant::now();
            let stop = || cancel.is_cancelled() || t.elapsed().as_secs_f64() > too_slow_s;
            let written = write_chunk_at(&f, &buf, i * chunk_bytes, chunk_bytes, &stop)
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
    result
}

impl Workload for FileWriter {
    fn file_stats(&self) -> Option<(u64, u64)> {
        Some(self.config.file_stats_mb())
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
        let verify = RunVerify::new(cfg, ctx)?;
        if verify.peer {
            RunVerify::clear_done(&cfg.out_dir, ctx.client_id());
        }
        let kept = if cfg.jobs <= 1 {
            let mut engine = engine::for_config(cfg)?;
            let pace_start = start_pace(cfg, ctx);
            let stream = Stream {
                config: cfg,
                ctx: ctx.clone(),
                halt: &|| false,
                pace_start,
                verify: &verify,
            };
            stream.run(engine.as_mut())?
        } else {
            run_streams(cfg, ctx, &verify)?
        };
        if verify.peer {
            verify.check_peer(ctx, &cfg.out_dir, kept)?;
        }
        // With verify_continue, the run's first bad block is its verdict.
        verify.end_result()
    }
}

/// A paced run's start, from which every stream's schedule counts (taken once the streams'
/// engines are ready: setting them up is not the schedule's time), once the context knows the
/// run is paced (it then sends the schedule figures each second); `None` without a rate.
fn start_pace(config: &FileWriterConfig, ctx: &Context) -> Option<Instant> {
    let rate_mb_s = config.rate_mb_s?;
    ctx.start_pace(rate_mb_s * crate::units::BYTES_PER_MB, config.jobs as usize);
    Some(Instant::now())
}

/// Runs `config.jobs` streams at once, each on a thread of its own (counted as one of the
/// client's writer threads); the first stream that fails stops the others, and its error is
/// the run's. Every stream's engine is set up first, so that a paced run's schedule starts
/// when all of them can write. Returns every stream's complete kept files.
fn run_streams(
    config: &FileWriterConfig,
    ctx: &Context,
    verify: &RunVerify,
) -> Result<Vec<KeptFile>> {
    let engines = (0..config.jobs)
        .map(|_| engine::for_config(config))
        .collect::<Result<Vec<_>>>()?;
    let pace_start = start_pace(config, ctx);
    let failed = AtomicBool::new(false);
    let halt = || failed.load(Ordering::Relaxed);
    let run_one = |index: u32, mut engine: Box<dyn engine::Engine>| -> Result<Vec<KeptFile>> {
        let stream_ctx = ctx.stream(index)?;
        let _cpu = stream_ctx.writer_thread();
        let stream = Stream {
            config,
            ctx: stream_ctx,
            halt: &halt,
            pace_start,
            verify,
        };
        let r = stream.run(engine.as_mut());
        if r.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        r
    };
    let results: Vec<Result<Vec<KeptFile>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..config.jobs)
            .zip(engines)
            .map(|(i, engine)| {
                std::thread::Builder::new()
                    .name(format!("loadmon-stream-{i}"))
                    .spawn_scoped(s, move || run_one(i, engine))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(panicked("stream"))),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    Err(Error::Workload(format!(
                        "cannot start a stream thread: {e}"
                    )))
                }
            })
            .collect()
    });
    let kept = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(kept.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(dir: &Path) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: 30.0,
            chunk_size_bytes: MIB,
            file_size_bytes: 2 * MIB,
            min_chunk_size_bytes: MIB,
            out_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn seed_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.min_chunk_size_bytes = 10 * MIB;
        let e = FileWriter::new(c).unwrap_err().to_string();
        assert!(e.contains("below the minimum of 10 MB"), "{e}");

        let mut c = cfg(dir.path());
        c.chunk_size_bytes = 3 * MIB;
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
            chunk_size_bytes: 1024 * MIB,
            file_size_bytes: 2048 * MIB,
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
