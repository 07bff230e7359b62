//! A client's or a worker's run, shared by TestClient, Client and Worker: started at most once
//! at a time, joined interruptibly, cancelled when its Python object is dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, WorkerHandle};
use loadmon::error::ErrorKind;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{state_error, to_py};
use crate::live::{register, Live};
use crate::logs::sync_log_level;
use crate::results::result_to_py;
use crate::wait::{lock, wait_interruptibly, CANCEL_GRACE, SIGNAL_POLL};

/// A handle a `RunSlot` holds: a client's or a worker's.
pub(crate) trait RunHandle: Send + Sync + Sized + 'static {
    /// "client" or "worker", for messages.
    const WHAT: &'static str;
    fn cancel(&self);
    fn is_finished(&self) -> bool;
    /// The entry of the interpreter-exit registry.
    fn live(h: &Arc<Self>) -> Live;
}

impl RunHandle for ClientHandle {
    const WHAT: &'static str = "client";
    fn cancel(&self) {
        ClientHandle::cancel(self);
    }
    fn is_finished(&self) -> bool {
        ClientHandle::is_finished(self)
    }
    fn live(h: &Arc<Self>) -> Live {
        Live::Client(Arc::downgrade(h))
    }
}

impl RunHandle for WorkerHandle {
    const WHAT: &'static str = "worker";
    fn cancel(&self) {
        WorkerHandle::cancel(self);
    }
    fn is_finished(&self) -> bool {
        WorkerHandle::is_finished(self)
    }
    fn live(h: &Arc<Self>) -> Live {
        Live::Worker(Arc::downgrade(h))
    }
}

enum RunState<H> {
    Idle,
    /// `cancel` is set by a `cancel()` that came while the run was being started.
    Starting {
        cancel: bool,
    },
    Running(Arc<H>),
}

/// A client's or a worker's run, started at most once at a time; never locked across a wait.
pub(crate) struct RunSlot<H>(Mutex<RunState<H>>);

impl<H: RunHandle> RunSlot<H> {
    pub(crate) fn new() -> Self {
        RunSlot(Mutex::new(RunState::Idle))
    }

    /// Starts a run with `spawn` (called with the GIL released and no lock held).
    pub(crate) fn start(
        &self,
        py: Python<'_>,
        spawn: impl FnOnce() -> loadmon::Result<H> + Send,
    ) -> PyResult<Arc<H>> {
        {
            let mut s = lock(&self.0);
            match &*s {
                RunState::Starting { .. } => {
                    return Err(state_error(
                        py,
                        &format!("this {} is starting in another thread", H::WHAT),
                    ))
                }
                RunState::Running(h) if !h.is_finished() => {
                    return Err(state_error(
                        py,
                        &format!(
                            "this {} is already running: join() or cancel() it first",
                            H::WHAT
                        ),
                    ))
                }
                _ => *s = RunState::Starting { cancel: false },
            }
        }
        sync_log_level(py);
        let spawned = py.detach(spawn);
        let mut s = lock(&self.0);
        let cancelled = matches!(*s, RunState::Starting { cancel: true });
        match spawned {
            Ok(h) => {
                let h = Arc::new(h);
                if cancelled {
                    h.cancel();
                }
                register(H::live(&h));
                *s = RunState::Running(h.clone());
                Ok(h)
            }
            Err(e) => {
                *s = RunState::Idle;
                Err(to_py(py, &e))
            }
        }
    }

    pub(crate) fn handle(&self, py: Python<'_>) -> PyResult<Arc<H>> {
        match &*lock(&self.0) {
            RunState::Running(h) => Ok(h.clone()),
            RunState::Starting { .. } => Err(state_error(
                py,
                &format!(
                    "the {} is starting in another thread: wait for start() to return",
                    H::WHAT
                ),
            )),
            RunState::Idle => Err(state_error(
                py,
                &format!("the {} is not started: call start() first", H::WHAT),
            )),
        }
    }

    pub(crate) fn cancel(&self) {
        let mut s = lock(&self.0);
        match &mut *s {
            RunState::Running(h) => h.cancel(),
            RunState::Starting { cancel } => *cancel = true,
            RunState::Idle => {}
        }
    }

    pub(crate) fn running(&self) -> bool {
        match &*lock(&self.0) {
            RunState::Running(h) => !h.is_finished(),
            RunState::Starting { .. } => true,
            RunState::Idle => false,
        }
    }

    /// Cancels a run still going and joins it, with the GIL released (a dropped client or
    /// worker).
    pub(crate) fn drop_run(&mut self) {
        let state = std::mem::replace(
            self.0.get_mut().unwrap_or_else(|p| p.into_inner()),
            RunState::Idle,
        );
        if let RunState::Running(h) = state {
            if !h.is_finished() {
                Python::attach(|py| {
                    py.detach(move || {
                        h.cancel();
                        drop(h);
                    })
                });
            }
        }
    }
}

/// What the last `run_tests` raised, to re-raise from `run()`/`join()`.
pub(crate) type Caught = Arc<Mutex<Option<Py<PyAny>>>>;

/// Waits for a client handle's result, interruptibly (Ctrl-C cancels the run), and converts
/// it. A workload that raised: a BaseException that is not an Exception (SystemExit,
/// KeyboardInterrupt) is raised as itself; an Exception becomes WorkloadError with the
/// original (and its traceback) as `__cause__`.
pub(crate) fn join_handle<'py>(
    py: Python<'py>,
    h: Arc<ClientHandle>,
    timeout: Option<Duration>,
    caught: Option<&Caught>,
) -> PyResult<Bound<'py, PyAny>> {
    let h2 = h.clone();
    // A Ctrl-C while the run ends (after the first one) ends the wait at once.
    let mut second_interrupt = None;
    let r = wait_interruptibly(
        py,
        timeout,
        "the client is still running",
        |slice| h.try_join(Some(slice)),
        |py| {
            // Cancelled: a run_tests that looks at ctx.stopped ends within the grace (and the
            // server sees it); one that does not goes on on its own thread, unwaited.
            h2.cancel();
            let deadline = Instant::now() + CANCEL_GRACE;
            while Instant::now() < deadline {
                let slice = deadline.saturating_duration_since(Instant::now());
                if py
                    .detach(|| h2.try_join(Some(slice.min(SIGNAL_POLL))))
                    .is_some()
                {
                    break;
                }
                if let Err(e) = py.check_signals() {
                    second_interrupt = Some(e);
                    break;
                }
            }
        },
    )
    .map_err(|first| second_interrupt.take().unwrap_or(first))?;
    match r {
        Ok(result) => result_to_py(py, &result),
        Err(e) => {
            let original = match (e.kind(), caught) {
                // Taken, not copied: the exception's traceback refers back to the slot, a
                // cycle the garbage collector cannot see through Rust.
                (ErrorKind::Workload, Some(c)) => lock(c).take(),
                _ => None,
            };
            match original {
                Some(o) if !o.bind(py).is_instance_of::<PyException>() => {
                    Err(PyErr::from_value(o.into_bound(py)))
                }
                Some(o) => {
                    let err = to_py(py, &e);
                    err.set_cause(py, Some(PyErr::from_value(o.into_bound(py))));
                    Err(err)
                }
                None => Err(to_py(py, &e)),
            }
        }
    }
}

/// The end of a `with client:` block: a run still going is cancelled if the block raised, and
/// waited for either way (GIL released; Ctrl-C cancels it and raises KeyboardInterrupt). The
/// run's result stays with the client: `join()` after the block returns it or raises its error.
pub(crate) fn exit_client(
    py: Python<'_>,
    run: &RunSlot<ClientHandle>,
    exc: &Bound<'_, PyTuple>,
) -> PyResult<bool> {
    let raised = exc.len() > 0 && !exc.get_item(0)?.is_none();
    if let Ok(h) = run.handle(py) {
        if raised {
            h.cancel();
        }
        let h2 = h.clone();
        let _ = wait_interruptibly(
            py,
            None,
            "the client is still running",
            |slice| h.try_join(Some(slice)),
            move |_| h2.cancel(),
        )?;
    }
    Ok(false)
}
