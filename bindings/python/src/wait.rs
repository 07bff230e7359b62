//! Waiting without the GIL: every blocking call waits in slices with the GIL released, so
//! Ctrl-C gets through, and holds no lock of this module meanwhile.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loadmon::Error;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::logs::flush_logs;

/// How often a blocking wait wakes up to let Ctrl-C through.
pub(crate) const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// How long Ctrl-C in a client's `run()`/`join()` waits for the cancelled run to end before
/// KeyboardInterrupt is raised (a run_tests that ignores `ctx.stopped` is not waited for).
pub(crate) const CANCEL_GRACE: Duration = Duration::from_millis(500);

/// Locks `m`, also after a panic in another holder (the data stays consistent: no holder
/// leaves it half-changed).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits for `poll` with the GIL released, waking every 100 ms for Ctrl-C. On Ctrl-C,
/// `on_interrupt` runs and KeyboardInterrupt is raised; past `timeout`, LoadmonTimeoutError
/// saying "`what` after N s". No lock is held meanwhile.
pub(crate) fn wait_interruptibly<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    what: &str,
    mut poll: impl FnMut(Duration) -> Option<loadmon::Result<T>> + Send,
    on_interrupt: impl FnOnce(Python<'_>),
) -> PyResult<loadmon::Result<T>> {
    // A deadline too far to represent is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            None => SIGNAL_POLL,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_POLL),
        };
        if let Some(r) = py.detach(|| poll(slice)) {
            flush_logs(py);
            return Ok(r);
        }
        if let Err(interrupt) = py.check_signals() {
            on_interrupt(py);
            return Err(interrupt);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let t = timeout.unwrap_or_default().as_secs_f64();
            return Err(to_py(py, &Error::Timeout(format!("{what} after {t:.1} s"))));
        }
    }
}
