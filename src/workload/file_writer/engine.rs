//! How chunks reach the device: the chunk a stream hands an engine, what the engine reports
//! back for it, and the engines.
//!
//! Stand-in (issue 22, phase 1 of the `iodepth` branch): the shape of issue 22's shared design,
//! until the `streams` branch's `engine.rs` (the trait and the synchronous engine) is merged.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use crate::error::Result;

#[cfg(target_os = "linux")]
pub(crate) mod uring;

/// A chunk to write: where, how much, and when it may start at the earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// File offset of its first byte.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// Its scheduled start (a paced stream); `None`: as soon as a slot is free.
    pub scheduled: Option<Instant>,
}

/// A chunk written in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Done {
    /// Bytes.
    pub len: u64,
    /// Its scheduled start, if it had one.
    pub scheduled: Option<Instant>,
    /// When its first write was submitted.
    pub started: Instant,
    /// When its last write was seen complete.
    pub finished: Instant,
}

/// How chunks reach the device (the streams branch's trait, as it stands).
pub(crate) trait Engine: Send {
    /// Writes `file`'s chunks (at `path`, for errors) as `next` hands them out (`None`: no
    /// more — the file is complete or the run stops), keeping at most the engine's depth in
    /// flight, never submitting a chunk before its `scheduled` start (waiting in steps that
    /// notice `stop()`), and calls `done` for each completed chunk. `Ok(true)` when every
    /// chunk handed out was written in full; `Ok(false)` when `stop()` cut one short.
    fn write_file(
        &mut self,
        file: &File,
        path: &Path,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Done) -> Result<()>,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool>;
}
