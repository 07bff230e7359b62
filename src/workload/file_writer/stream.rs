//! One writer stream: its own sequence of files, written chunk by chunk through an
//! [`Engine`], its own `keep_files` set. A client runs `jobs` of them at once; with one, the
//! stream is the seed's writer (its files keep the seed's names).
//!
//! With `overwrite`, once the stream holds `keep_files` files the next write rewrites the
//! oldest in place (same name, same file number, the next generation) instead of deleting it
//! and creating a new one. With verified data (`verify`), each piece is filled with
//! self-describing blocks, and files are checked before they are deleted or rewritten
//! (`rollover`) or when the run ends (`end`; [`super::verified`]).

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use super::engine::{Chunk, Done, Engine, Fill};
use super::files::{create_new, OwnFile};
use super::pace::Pacer;
use super::verified::{KeptFile, RunVerify};
use super::{FileWriterConfig, KeepFiles, SyncMode, VerifyMode};
use crate::error::{Error, Result};
use crate::verify::Expected;
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
    /// The run's verify settings and state.
    pub(super) verify: &'a RunVerify,
}

/// A file the stream keeps.
#[derive(Debug)]
struct Kept {
    own: OwnFile,
    /// Its number in the stream's sequence.
    n: u64,
    /// Its write generation (1 for the first write; one more for each rewrite).
    generation: u64,
    /// Its last rewrite was cut short by the run's end: its blocks are of two generations,
    /// and it is not checked.
    mixed: bool,
}

/// Which file a write goes to.
enum Target<'k> {
    /// A new file, number `n`.
    New(u64),
    /// A kept file, rewritten in place.
    Again(&'k Kept),
}

/// How a file's write ended.
enum Written {
    /// Every chunk written: the file (new or rewritten).
    Complete(Option<OwnFile>),
    /// The run ended first; for a rewrite, whether some of it was handed to the engine (the
    /// file is then of two generations).
    Cut { started: bool },
}

impl Stream<'_> {
    /// Whether the stream must stop: the run's time is up, it was stopped, or another stream
    /// failed.
    fn stopping(&self) -> bool {
        self.ctx.time_is_up() || (self.halt)()
    }

    /// Whether a check must end now: the run was stopped (not merely its time up: the end's
    /// checks run after it), or another stream failed.
    fn check_stopped(&self) -> bool {
        self.ctx.is_stopped() || (self.halt)()
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
    /// run, each chunk at its scheduled start (one schedule across the stream's files). Then,
    /// with `verify = end` (or `rollover` keeping every file), checks its complete kept files.
    /// Returns them (for `verify_peer`'s done marker).
    pub(super) fn run(&self, engine: &mut dyn Engine) -> Result<Vec<KeptFile>> {
        if self.config.iodepth > 1 {
            // Which engine gives (or could not give) the depth asked for: the log and the
            // report say it (once per client, whatever the number of streams).
            self.ctx.report_engine(engine.describe())?;
        }
        let mut pacer = self.pacer();
        let mut kept = VecDeque::new();
        let result = self.write_files(engine, &mut pacer, &mut kept);
        if let Some(p) = &pacer {
            // How far behind it stopped stays the stream's schedule lag.
            self.ctx
                .pace_end(self.index() as usize, p.lag(Instant::now()));
        }
        result?;
        let v = self.verify;
        let at_end = match v.mode {
            VerifyMode::End => !v.peer,
            VerifyMode::Rollover => self.config.keep_files == KeepFiles::All,
            VerifyMode::None => false,
        };
        if at_end {
            for k in &kept {
                if self.check_stopped() {
                    break;
                }
                if !k.mixed {
                    self.check(k)?;
                }
            }
        }
        for k in kept.iter().filter(|k| k.mixed) {
            self.ctx.note(
                !matches!(v.mode, VerifyMode::None),
                format!(
                    "{}: its rewrite to generation {} was cut short by the end of the run: it \
                     holds blocks of two generations{}",
                    k.own.path.display(),
                    k.generation,
                    if v.on() { ", and is not checked" } else { "" }
                ),
            );
        }
        Ok(kept
            .iter()
            .filter(|k| !k.mixed)
            .filter_map(|k| {
                Some(KeptFile {
                    name: k.own.path.file_name()?.to_str()?.to_string(),
                    stream: self.index(),
                    file_seq: k.n,
                    generation: k.generation,
                })
            })
            .collect())
    }

    /// Checks kept file `k` (its every block as this stream wrote it).
    fn check(&self, k: &Kept) -> Result<()> {
        let b = self
            .verify
            .block_context(self.ctx.client_id(), self.index(), k.n, k.generation);
        self.verify.check(
            &self.ctx,
            &k.own.path,
            &Expected::of(&b),
            k.own.id(),
            &|| self.check_stopped(),
        )
    }

    /// [`Stream::run`]'s files, with the stream's schedule `pacer`; those it keeps in `kept`,
    /// oldest first.
    fn write_files(
        &self,
        engine: &mut dyn Engine,
        pacer: &mut Option<Pacer>,
        kept: &mut VecDeque<Kept>,
    ) -> Result<()> {
        let rollover = self.verify.mode == VerifyMode::Rollover;
        let mut n: u64 = 0;
        while !self.stopping() {
            let oldest = match self.config.keep_files {
                KeepFiles::Last(k) if self.config.overwrite && kept.len() >= k => kept.pop_front(),
                _ => None,
            };
            if let Some(mut old) = oldest {
                if rollover {
                    // Its last generation is checked before the next one replaces it.
                    self.check(&old)?;
                }
                let generation = old.generation + 1;
                match self.write_file(engine, Target::Again(&old), generation, pacer)? {
                    Written::Complete(_) => {
                        self.ctx.file_rollover()?;
                        self.verify.written(&old.own.path, generation);
                        old.generation = generation;
                        kept.push_back(old);
                    }
                    Written::Cut { started } => {
                        if started {
                            old.generation = generation;
                            old.mixed = true;
                        }
                        kept.push_front(old);
                        break;
                    }
                }
                continue;
            }
            let Written::Complete(Some(own)) = self.write_file(engine, Target::New(n), 1, pacer)?
            else {
                break;
            };
            self.ctx.file_rollover()?;
            self.verify.written(&own.path, 1);
            kept.push_back(Kept {
                own,
                n,
                generation: 1,
                mixed: false,
            });
            n += 1;
            if let (KeepFiles::Last(k), false) = (self.config.keep_files, self.config.overwrite) {
                while kept.len() > k {
                    if let Some(old) = kept.pop_front() {
                        if rollover {
                            self.check(&old)?;
                        }
                        old.own
                            .remove()
                            .map_err(|e| Error::file("remove", &old.own.path, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a file whole, generation `generation`: a new one (a partial one is removed, if
    /// it is still the one written), or a kept one again in place (a partial rewrite stays).
    /// With a schedule (`pacer`), each chunk has its due time, the context learns when the
    /// next is due (the schedule lag), and each written chunk's response time and start lag
    /// are recorded beside its service time.
    fn write_file(
        &self,
        engine: &mut dyn Engine,
        target: Target<'_>,
        generation: u64,
        pacer: &mut Option<Pacer>,
    ) -> Result<Written> {
        let cfg = self.config;
        let (path, n, f, new) = self.open(target)?;
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
        let blocks = self
            .verify
            .block_context(self.ctx.client_id(), self.index(), n, generation);
        let fill_fn = |buf: &mut [u8], at: u64| RunVerify::fill(&blocks, buf, at);
        let ctx = &self.ctx;
        let thread = || ctx.writer_thread();
        let fill = Fill {
            fill: &fill_fn,
            file_bytes,
            thread: &thread,
        };
        let fill = self.verify.on().then_some(&fill);
        let result = engine.write_file(&f, &path, &mut next, &mut done, &stop, fill);
        let started = offset > 0;
        let complete = matches!(result, Ok(true)) && written == file_bytes;
        let outcome = match result {
            Err(e) => Err(e),
            Ok(_) if !complete => Ok(Written::Cut { started }),
            Ok(_) if cfg.sync == SyncMode::File => f
                .sync_all()
                .map(|()| Written::Complete(None))
                .map_err(|e| Error::file("fsync", &path, e)),
            Ok(_) => Ok(Written::Complete(None)),
        };
        drop(f);
        match outcome {
            Ok(Written::Complete(_)) => Ok(Written::Complete(new)),
            other => {
                // A new file not written whole is removed (if it is still the one written); a
                // partial rewrite stays.
                if let Some(own) = &new {
                    let _ = own.remove();
                }
                other
            }
        }
    }

    /// The file a [`Target`] names, opened for writing: its path, number, handle, and (a new
    /// file) the file this writer created.
    fn open(&self, target: Target<'_>) -> Result<(PathBuf, u64, File, Option<OwnFile>)> {
        Ok(match target {
            Target::New(n) => {
                let path = self.path(n);
                let (f, own) = create_new(&path, self.config.sync)?;
                (path, n, f, Some(own))
            }
            Target::Again(k) => (
                k.own.path.clone(),
                k.n,
                k.own.reopen(self.config.sync)?,
                None,
            ),
        })
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

    /// Every file on disk in `dir` (data files only), checked offline.
    fn check_dir(dir: &std::path::Path) -> crate::verify::VerifyReport {
        crate::verify::check_paths(
            &[dir.to_path_buf()],
            &crate::verify::VerifyConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn verified_files_are_as_written_with_every_engine() {
        use super::super::{SyncMode, VerifyMode};
        // (sync, iodepth, chunk, file): the sync engine buffered (1 MiB sub-pieces) and
        // O_DIRECT (filled ahead), io_uring buffered and O_DIRECT.
        for (sync, depth, chunk, file) in [
            (SyncMode::None, 1, 64 << 10, 256 << 10),
            (SyncMode::None, 1, 3 * MIB, 3 * MIB),
            (SyncMode::Direct, 1, 64 << 10, 256 << 10),
            (SyncMode::Direct, 1, 2 * MIB, 2 * MIB),
            (SyncMode::None, 4, 64 << 10, 256 << 10),
            (SyncMode::Direct, 4, 64 << 10, 256 << 10),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = small(dir.path(), 2, KeepFiles::Last(3));
            c.sync = sync;
            c.iodepth = depth;
            c.chunk_size_bytes = chunk;
            c.file_size_bytes = file;
            c.verify = VerifyMode::End;
            let (ctx, control) = run(c, Duration::from_millis(250));
            let what = format!("{sync:?} iodepth {depth} chunk {chunk}");
            let v = control.counters().verify_stats().expect(&what);
            let kept = files_by_stream(dir.path())
                .values()
                .map(Vec::len)
                .sum::<usize>() as u64;
            assert!(kept >= 2, "{what}");
            // The kept files, at the end.
            assert_eq!(v.files_checked, kept, "{what}");
            assert_eq!(v.blocks_checked, v.files_checked * file / 4096, "{what}");
            assert_eq!(v.errors.total(), 0, "{what}");
            // Offline too: the headers say where each block belongs.
            let r = check_dir(dir.path());
            assert!(r.is_clean(), "{what}: {:?}", r.files[0].findings);
            assert_eq!(r.files.len() as u64, kept, "{what}");
            assert!(ctx.files_written() >= kept);
        }
    }

    #[test]
    fn without_verify_the_bytes_are_the_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, control) = run(
            small(dir.path(), 1, KeepFiles::Last(1)),
            Duration::from_millis(100),
        );
        assert!(ctx.files_written() >= 1);
        assert!(control.counters().verify_stats().is_none());
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            assert!(bytes.iter().all(|&b| b == 0x5a));
        }
    }

    #[test]
    fn overwrite_rewrites_the_oldest_in_place_each_generation_checked() {
        use super::super::VerifyMode;
        let dir = tempfile::tempdir().unwrap();
        let mut c = small(dir.path(), 1, KeepFiles::Last(2));
        c.overwrite = true;
        c.verify = VerifyMode::Rollover;
        let (ctx, control) = run(c, Duration::from_millis(800));
        let mut ns = files_by_stream(dir.path())[&None].clone();
        ns.sort_unstable();
        assert_eq!(ns, [0, 1], "the same two files all along");
        let written = ctx.files_written();
        // At least one whole rewrite (a loaded machine may write few files).
        assert!(written >= 3, "a rewrite: {written}");
        let v = control.counters().verify_stats().unwrap();
        // Every rewrite checked the generation before it (and a last one cut short by the
        // end of the run, whose check came first).
        assert!(
            (written - 2..=written - 1).contains(&v.files_checked),
            "{} checked, {written} written",
            v.files_checked
        );
        assert_eq!(v.errors.total(), 0);
        // The files hold their newest generation (a rewrite cut short by the end is mixed:
        // the offline check then sees the older generation's blocks as stale).
        let r = check_dir(dir.path());
        let gens: Vec<u64> = r
            .files
            .iter()
            .filter_map(|f| f.expected.generation)
            .collect();
        assert!(gens.iter().any(|&g| g > 1), "{gens:?}");
    }

    #[test]
    fn overwrite_without_verify_keeps_the_seed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = small(dir.path(), 2, KeepFiles::Last(1));
        c.overwrite = true;
        let (ctx, _) = run(c, Duration::from_millis(200));
        assert!(ctx.files_written() > 2);
        let on_disk = files_by_stream(dir.path());
        assert_eq!(on_disk.values().map(Vec::len).sum::<usize>(), 2);
        for ns in on_disk.values() {
            assert_eq!(ns, &[0]);
        }
    }
}
