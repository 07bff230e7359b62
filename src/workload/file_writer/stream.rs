//! One writer stream: its own sequence of files, written chunk by chunk through an
//! [`Engine`], its own `keep_files` set. A client runs `jobs` of them at once; with one, the
//! stream is the seed's writer (its files keep the seed's names).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use super::engine::{Chunk, Done, Engine};
use super::files::{create_new, OwnFile};
use super::pace::Pacer;
use super::{FileWriterConfig, KeepFiles, SyncMode};
use crate::error::{Error, Result};
use crate::workload::Context;

/// One stream of a run.
pub(super) struct Stream<'a> {
    /// The run's settings.
    pub(super) config: &'a FileWriterConfig,
    /// The stream's context (the client's, for a single stream; [`Context::stream`]'s
    /// otherwise).
    pub(super) ctx: Context,
    /// Whether the run must end for a reason of its own (another stream failed).
    pub(super) halt: &'a (dyn Fn() -> bool + Sync),
    /// When a paced run's schedule starts, the same for every stream of the run (`None`: a
    /// run without a rate, each chunk at once).
    pub(super) pace_start: Option<Instant>,
}

impl Stream<'_> {
    /// Whether the stream must stop: the run's time is up, it was stopped, or another stream
    /// failed.
    fn stopping(&self) -> bool {
        self.ctx.time_is_up() || (self.halt)()
    }

    /// The path of the stream's file `n`: `client_<id>_<n>_<stamp>` (the seed's) for a single
    /// stream, `client_<id>_<stream>_<n>_<stamp>` for each of several.
    fn path(&self, n: u64) -> PathBuf {
        let stamp = chrono::Local::now().format("%Y-%m-%d_%H.%M.%S");
        // The id is a u32 from the protocol parser: it cannot contain a path separator.
        let id = self.ctx.client_id();
        let name = match self.ctx.stream_index() {
            None => format!("client_{id}_{n}_{stamp}"),
            Some(s) => format!("client_{id}_{s}_{n}_{stamp}"),
        };
        self.config.out_dir.join(name)
    }

    /// The stream's index among the run's (0 for a single stream).
    fn index(&self) -> u32 {
        self.ctx.stream_index().unwrap_or(0)
    }

    /// The stream's schedule in a paced run: its share of the client's rate, its chunks
    /// placed between the other streams' ([`Pacer::for_stream`]).
    fn pacer(&self) -> Option<Pacer> {
        let (rate_mb_s, start) = (self.config.rate_mb_s?, self.pace_start?);
        Some(Pacer::for_stream(
            rate_mb_s * crate::units::BYTES_PER_MB,
            self.config.jobs,
            self.index(),
            self.config.chunk_size_bytes,
            start,
        ))
    }

    /// Writes files until the run ends, keeping the newest `keep_files` of them; in a paced
    /// run, each chunk at its scheduled start (one schedule across the stream's files).
    pub(super) fn run(&self, engine: &mut dyn Engine) -> Result<()> {
        if self.config.iodepth > 1 {
            // Which engine gives (or could not give) the depth asked for: the log and the
            // report say it (once per client, whatever the number of streams).
            self.ctx.report_engine(engine.describe())?;
        }
        let mut pacer = self.pacer();
        let result = self.write_files(engine, &mut pacer);
        if let Some(p) = &pacer {
            // How far behind it stopped stays the stream's schedule lag.
            self.ctx
                .pace_end(self.index() as usize, p.lag(Instant::now()));
        }
        result
    }

    /// [`Stream::run`]'s files, with the stream's schedule `pacer`.
    fn write_files(&self, engine: &mut dyn Engine, pacer: &mut Option<Pacer>) -> Result<()> {
        let mut kept: VecDeque<OwnFile> = VecDeque::new();
        let mut n: u64 = 0;
        while !self.stopping() {
            let Some(own) = self.write_file(engine, n, pacer)? else {
                break;
            };
            n += 1;
            self.ctx.file_rollover()?;
            kept.push_back(own);
            if let KeepFiles::Last(k) = self.config.keep_files {
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

    /// Writes file `n` whole: the file, or `None` if the run ended first (the partial file is
    /// removed, if it is still the one written). With a schedule (`pacer`), each chunk has
    /// its due time, the context learns when the next is due (the schedule lag), and each
    /// written chunk's response time and start lag are recorded beside its service time.
    fn write_file(
        &self,
        engine: &mut dyn Engine,
        n: u64,
        pacer: &mut Option<Pacer>,
    ) -> Result<Option<OwnFile>> {
        let cfg = self.config;
        let path = self.path(n);
        let (f, own) = create_new(&path, cfg.sync)?;
        let discard = |own: &OwnFile| {
            let _ = own.remove();
        };
        let (file_bytes, chunk_bytes) = (cfg.file_size_bytes, cfg.chunk_size_bytes);
        let mut offset = 0u64;
        let mut written = 0u64;
        let stop = || self.stopping();
        let mut next = || {
            if offset >= file_bytes || stop() {
                return None;
            }
            let len = (file_bytes - offset).min(chunk_bytes);
            let scheduled = pacer.as_mut().map(|p| {
                let due = p.next(len);
                self.ctx.pace_due(self.index() as usize, p.next_due());
                due
            });
            let c = Chunk {
                offset,
                len,
                scheduled,
            };
            offset += len;
            Some(c)
        };
        let mut done = |d: Done| {
            written += d.len;
            self.ctx.record_write(d.len, d.service())?;
            if d.scheduled.is_some() {
                self.ctx.record_schedule(d.response(), d.start_lag())?;
            }
            Ok(())
        };
        let result = engine.write_file(&f, &path, &mut next, &mut done, &stop);
        let complete = matches!(result, Ok(true)) && written == file_bytes;
        if let Err(e) = result {
            drop(f);
            discard(&own);
            return Err(e);
        }
        if !complete {
            drop(f);
            discard(&own);
            return Ok(None);
        }
        if cfg.sync == SyncMode::File {
            if let Err(e) = f.sync_all() {
                drop(f);
                discard(&own);
                return Err(Error::file("fsync", &path, e));
            }
        }
        Ok(Some(own))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::super::{FileWriter, FileWriterConfig, KeepFiles, MIB};
    use crate::protocol::Message;
    use crate::workload::{Context, Workload};

    /// The files in `dir` by stream: `client_<id>_<stream>_<n>_<stamp>` (or the seed's
    /// `client_<id>_<n>_<stamp>`, stream `None`), each with its `n`s.
    fn files_by_stream(dir: &std::path::Path) -> BTreeMap<Option<u32>, Vec<u64>> {
        let mut out: BTreeMap<Option<u32>, Vec<u64>> = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let parts: Vec<&str> = name.split('_').collect();
            assert_eq!(parts[..2], ["client", "7"], "{name}");
            // client, 7, [stream,] n, date, time
            let (stream, n) = match parts.len() {
                5 => (None, parts[2]),
                6 => (Some(parts[2].parse().unwrap()), parts[3]),
                _ => panic!("{name}"),
            };
            out.entry(stream).or_default().push(n.parse().unwrap());
        }
        out
    }

    fn run(config: FileWriterConfig, run_time: Duration) -> (Context, crate::workload::RunControl) {
        let mut w = FileWriter::new(config).unwrap();
        let (ctx, control, _rx) = Context::new(7, Instant::now(), Some(run_time));
        w.run(&ctx).unwrap();
        (ctx, control)
    }

    fn small(dir: &std::path::Path, jobs: u32, keep: KeepFiles) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: 30.0,
            chunk_size_bytes: 64 << 10,
            file_size_bytes: 256 << 10,
            min_chunk_size_bytes: 4096,
            out_dir: dir.to_path_buf(),
            keep_files: keep,
            jobs,
            ..Default::default()
        }
    }

    #[test]
    fn streams_write_disjoint_file_sets_whose_sums_are_the_clients() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, control) = run(
            small(dir.path(), 3, KeepFiles::All),
            Duration::from_millis(300),
        );
        let on_disk = files_by_stream(dir.path());
        // Three streams, each its own sequence from 0, no name shared.
        assert_eq!(
            on_disk.keys().copied().collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        let counters = control.counters();
        let lines = counters.stream_stats();
        assert_eq!(lines.len(), 3);
        let (mut bytes, mut files) = (0, 0);
        for line in &lines {
            let Message::StreamStats(s) = line else {
                panic!("{line:?}")
            };
            let mut ns = on_disk[&Some(s.stream)].clone();
            ns.sort_unstable();
            assert_eq!(
                ns,
                (0..s.files_written).collect::<Vec<_>>(),
                "stream {}",
                s.stream
            );
            assert!(s.files_written >= 1 && s.chunk_p50_us > 0 && s.chunk_max_us >= s.chunk_p99_us);
            // Whole files, plus what a partial file at the end wrote.
            assert!(s.bytes_written >= s.files_written * (256 << 10));
            bytes += s.bytes_written;
            files += s.files_written;
        }
        assert_eq!((bytes, files), (ctx.bytes_written(), ctx.files_written()));
        let total_on_disk: usize = on_disk.values().map(Vec::len).sum();
        assert_eq!(total_on_disk as u64, files, "partial files are removed");
    }

    #[test]
    fn each_stream_keeps_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _control) = run(
            small(dir.path(), 2, KeepFiles::Last(2)),
            Duration::from_millis(300),
        );
        let on_disk = files_by_stream(dir.path());
        assert!(ctx.files_written() > 4, "enough files to roll over");
        for (stream, mut ns) in on_disk {
            assert!(stream.is_some());
            ns.sort_unstable();
            // The newest two of the stream's own sequence.
            assert_eq!(ns.len(), 2, "stream {stream:?}: {ns:?}");
            assert_eq!(ns[1], ns[0] + 1);
        }
    }

    #[test]
    fn one_stream_keeps_the_seed_names_and_sends_no_stream_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = small(dir.path(), 1, KeepFiles::All);
        c.chunk_size_bytes = MIB;
        c.file_size_bytes = MIB;
        c.min_chunk_size_bytes = MIB;
        let (ctx, control) = run(c, Duration::from_millis(200));
        let on_disk = files_by_stream(dir.path());
        assert_eq!(on_disk.keys().copied().collect::<Vec<_>>(), [None]);
        assert_eq!(on_disk[&None].len() as u64, ctx.files_written());
        assert!(control.counters().stream_stats().is_empty());
    }

    #[test]
    fn a_probe_with_streams_leaves_nothing_and_a_stream_index_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let w = FileWriter::new(small(dir.path(), 4, KeepFiles::All)).unwrap();
        assert!(w.probe().files_that_fit >= 2.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let (ctx, _, _rx) = Context::new(7, Instant::now(), None);
        assert!(ctx.stream(255).is_ok());
        let e = ctx.stream(256).unwrap_err().to_string();
        assert!(e.contains("at most 256 streams"), "{e}");
    }
}
