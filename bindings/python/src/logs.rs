//! Log records: a bounded queue filled by the engine's threads (which never wait for Python)
//! and drained by `loadmon._logging` on a Python thread of its own; and the fork hooks that
//! keep the queue's lock free in a forked child.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loadmon::logging::{set_log_sink, LogLevel, LogRecord, LogSink};
use pyo3::prelude::*;

use crate::errors::guard;
use crate::wait::lock;

/// Records Python may fall behind by before new ones are counted and dropped.
const LOG_CAPACITY: usize = 10_000;
/// Records handed to Python per call.
const LOG_BATCH: usize = 1_000;

struct LogItems {
    records: VecDeque<(u8, &'static str, String)>,
    dropped: u64,
    woken: bool,
}

struct LogQueue {
    items: Mutex<LogItems>,
    ready: Condvar,
}

/// The log queue: the sink pushes (never waits for Python), `_log_next` pops.
static LOG: LogQueue = LogQueue {
    items: Mutex::new(LogItems {
        records: VecDeque::new(),
        dropped: 0,
        woken: false,
    }),
    ready: Condvar::new(),
};

fn log_sink(r: &LogRecord<'_>) {
    // Never blocks while the process forks (`_fork_prepare` holds the lock then): a thread
    // blocked here at the fork would leave the core's locks held in the child.
    let mut g = loop {
        match LOG.items.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if FORKING.load(Ordering::SeqCst) => return,
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    };
    if g.records.len() >= LOG_CAPACITY {
        g.dropped += 1;
        return;
    }
    g.records
        .push_back((r.level as u8, r.target, r.message.to_string()));
    drop(g);
    LOG.ready.notify_one();
}

/// The queued log records, `(level, target, message)` with level 1 debug, 2 info, 3 warning;
/// waits up to `timeout` seconds (GIL released) for the first one. Used by `loadmon._logging`.
#[pyfunction]
pub(crate) fn _log_next(py: Python<'_>, timeout: f64) -> PyResult<Vec<(u8, &'static str, String)>> {
    guard(py, "_log_next", || {
        let wait = Duration::try_from_secs_f64(timeout.clamp(0.0, 60.0)).unwrap_or_default();
        Ok(py.detach(|| {
            let mut g = lock(&LOG.items);
            let deadline = Instant::now() + wait;
            while g.records.is_empty() && !g.woken {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = LOG
                    .ready
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            g.woken = false;
            let mut out = Vec::new();
            if g.dropped > 0 {
                let msg = format!(
                    "{} log record(s) dropped: Python's logging fell more than {LOG_CAPACITY} behind",
                    g.dropped
                );
                out.push((LogLevel::Warn as u8, "loadmon::client", msg));
                g.dropped = 0;
            }
            let n = g.records.len().min(LOG_BATCH);
            out.extend(g.records.drain(..n));
            out
        }))
    })
}

/// Waits up to `timeout` seconds (GIL released) until a record is queued or `_log_wake` is
/// called; whether records are queued. Takes none out (`_log_next(0)` does).
#[pyfunction]
pub(crate) fn _log_wait(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    guard(py, "_log_wait", || {
        let wait = Duration::try_from_secs_f64(timeout.clamp(0.0, 60.0)).unwrap_or_default();
        Ok(py.detach(|| {
            let mut g = lock(&LOG.items);
            let deadline = Instant::now() + wait;
            while g.records.is_empty() && g.dropped == 0 && !g.woken {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = LOG
                    .ready
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            g.woken = false;
            !g.records.is_empty() || g.dropped > 0
        }))
    })
}

/// Emits on the calling thread the log records queued so far (`loadmon._logging.flush`), so
/// that what the engine logged before a blocking call returned is logged when it returns.
pub(crate) fn flush_logs(py: Python<'_>) {
    if let Ok(m) = py.import("loadmon._logging") {
        let _ = m.call_method0("flush");
    }
}

/// Lets `loadmon._logging` set the engine's log level from the loggers' current levels before
/// an engine starts, so that a level set just before is honoured from the first record.
pub(crate) fn sync_log_level(py: Python<'_>) {
    if let Ok(m) = py.import("loadmon._logging") {
        let _ = m.call_method0("sync_level");
    }
}

/// Sends the engine's warnings to the queue (before `loadmon._logging` sets the level the
/// loggers want).
pub(crate) fn install_sink() {
    set_log_sink(Some((LogLevel::Warn, Arc::new(log_sink) as LogSink)));
}
/// Empties the log queue without emitting it (interpreter exit past its deadline); how many
/// records were queued or dropped.
#[pyfunction]
pub(crate) fn _log_discard(py: Python<'_>) -> PyResult<u64> {
    guard(py, "_log_discard", || {
        let mut g = lock(&LOG.items);
        let n = g.records.len() as u64 + g.dropped;
        g.records.clear();
        g.dropped = 0;
        Ok(n)
    })
}

/// Set while `os.fork()` runs (between `_fork_prepare` and `_fork_parent`/`_fork_child`).
static FORKING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The log queue's lock, held by the forking thread across the fork: no thread holds it
    /// at the fork, so the child's copy of it is free.
    static FORK_GUARD: std::cell::RefCell<Option<MutexGuard<'static, LogItems>>> =
        const { std::cell::RefCell::new(None) };
}

/// `os.fork()` is about to run (`os.register_at_fork(before=...)`): takes the log queue's
/// lock (its holders never need the GIL) until `_fork_parent`/`_fork_child`.
#[pyfunction]
pub(crate) fn _fork_prepare(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_prepare", || {
        FORKING.store(true, Ordering::SeqCst);
        let g = lock(&LOG.items);
        FORK_GUARD.with(|f| *f.borrow_mut() = Some(g));
        Ok(())
    })
}

/// `os.fork()` returned in the parent: releases the log queue.
#[pyfunction]
pub(crate) fn _fork_parent(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_parent", || {
        FORK_GUARD.with(|f| f.borrow_mut().take());
        FORKING.store(false, Ordering::SeqCst);
        Ok(())
    })
}

/// `os.fork()` returned in the child: the parent's servers and clients have no thread here
/// (interpreter exit must not wait for them) and its queued log records are the parent's
/// (its log thread emits them): both are forgotten, and the log queue is released.
#[pyfunction]
pub(crate) fn _fork_child(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_child", || {
        crate::live::forget_all();
        FORK_GUARD.with(|f| {
            if let Some(g) = f.borrow_mut().as_mut() {
                g.records.clear();
                g.dropped = 0;
                g.woken = false;
            }
            f.borrow_mut().take()
        });
        FORKING.store(false, Ordering::SeqCst);
        Ok(())
    })
}

/// Wakes a `_log_next` that is waiting (the log thread is stopping).
#[pyfunction]
pub(crate) fn _log_wake(py: Python<'_>) -> PyResult<()> {
    guard(py, "_log_wake", || {
        lock(&LOG.items).woken = true;
        LOG.ready.notify_all();
        Ok(())
    })
}

/// Sets the lowest level the engine sends (a `logging` level number; None: no records).
#[pyfunction]
#[pyo3(signature = (level))]
pub(crate) fn _log_level(py: Python<'_>, level: Option<i64>) -> PyResult<()> {
    guard(py, "_log_level", || {
        let level = level.map(|l| match l {
            i64::MIN..=10 => LogLevel::Debug,
            11..=20 => LogLevel::Info,
            _ => LogLevel::Warn,
        });
        set_log_sink(level.map(|l| (l, Arc::new(log_sink) as LogSink)));
        Ok(())
    })
}
