//! One writer stream: its own sequence of files, written chunk by chunk through an
//! [`Engine`], its own `keep_files` set. A client runs `jobs` of them at once; with one, the
//! stream is the seed's writer (its files keep the seed's names).

use std::collections::VecDeque;
use std::path::PathBuf;

use super::engine::{Chunk, Engine};
use super::files::{create_new, OwnFile};
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

    /// Writes files until the run ends, keeping the newest `keep_files` of them.
    pub(super) fn run(&self, engine: &mut dyn Engine) -> Result<()> {
        let mut kept: VecDeque<OwnFile> = VecDeque::new();
        let mut n: u64 = 0;
        while !self.stopping() {
            let Some(own) = self.write_file(engine, n)? else {
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
    /// removed, if it is still the one written).
    fn write_file(&self, engine: &mut dyn Engine, n: u64) -> Result<Option<OwnFile>> {
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
            let c = Chunk {
                offset,
                len,
                scheduled: None,
            };
            offset += len;
            Some(c)
        };
        let mut done = |d: super::engine::Done| {
            written += d.len;
            self.ctx
                .record_write(d.len, d.finished.saturating_duration_since(d.started))
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
