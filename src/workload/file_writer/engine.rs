//! How chunks reach the device: the chunk a stream hands an engine, what the engine reports
//! back for it, and the engines.
//!
//! Stand-in (issue 22, phase 1 of the `iodepth` branch): the shape of issue 22's shared design,
//! until the `streams` branch's `engine.rs` (the trait and the synchronous engine) is merged.
#![allow(dead_code)]

use std::time::Instant;

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
