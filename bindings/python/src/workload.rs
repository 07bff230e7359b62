//! A generic client's `run_tests` as a core workload: the call runs on a Python thread
//! (`loadmon._workload`), and the client's own thread waits for its end without the GIL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use loadmon::workload::{Context, Workload};
use loadmon::Error;
use pyo3::prelude::*;
use pyo3::types::{PyWeakrefMethods, PyWeakrefReference};

use crate::context::PyContext;
use crate::live::PY_GONE;
use crate::run::Caught;
use crate::wait::{lock, SIGNAL_POLL};

/// How a `run_tests` call ended: `None` while it runs, then `Some(None)` if it returned,
/// `Some(Some(text))` if it raised (`"RuntimeError: message"`).
struct RunEnd {
    end: Mutex<Option<Option<String>>>,
    ready: Condvar,
}

/// Handed to `loadmon._workload.start`: its thread calls `finish` when `run_tests` ends.
#[pyclass(name = "_RunEnd", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyRunEnd {
    end: Arc<RunEnd>,
    caught: Caught,
    finished: AtomicBool,
}

impl Drop for PyRunEnd {
    /// The thread that should have called `finish` is gone without calling it (it died, or
    /// could never start): the waiting client thread must not wait for ever.
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) {
            *lock(&self.end.end) = Some(Some(
                "run_tests' thread ended without reporting how run_tests ended".into(),
            ));
            self.end.ready.notify_all();
        }
    }
}

#[pymethods]
impl PyRunEnd {
    /// Records how `run_tests` ended: `exc` is what it raised (None if it returned) and
    /// `text` its description.
    #[pyo3(signature = (exc=None, text=None))]
    fn finish(&self, exc: Option<Py<PyAny>>, text: Option<String>) {
        self.finished.store(true, Ordering::SeqCst);
        let failed = exc.is_some();
        *lock(&self.caught) = exc;
        *lock(&self.end.end) = Some(failed.then(|| text.unwrap_or_default()));
        self.end.ready.notify_all();
    }
}

/// A Python object's `run_tests(ctx)` as a core workload. The call runs on a Python daemon
/// thread (`loadmon._workload`), started with the GIL taken briefly; the client's own thread
/// then waits for its end without the GIL. A coroutine `run_tests` returns (`async def`) runs
/// to its end in an event loop of its own (`asyncio.run`). At interpreter exit a `run_tests`
/// that ignores `ctx.stopped` is ended with the other daemon threads, and no Rust frame is on
/// its stack when that happens.
pub(crate) struct PyWorkload {
    pub(crate) obj: Py<PyWeakrefReference>,
    pub(crate) run_time: Option<Duration>,
    pub(crate) file_stats: Option<(u64, u64)>,
    pub(crate) caught: Caught,
}

impl Workload for PyWorkload {
    fn file_stats(&self) -> Option<(u64, u64)> {
        self.file_stats
    }

    fn run_time(&self) -> Option<Duration> {
        self.run_time
    }

    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let end = Arc::new(RunEnd {
            end: Mutex::new(None),
            ready: Condvar::new(),
        });
        Python::attach(|py| -> PyResult<()> {
            let c = Py::new(py, PyContext { inner: ctx.clone() })?;
            let e = Py::new(
                py,
                PyRunEnd {
                    end: end.clone(),
                    caught: self.caught.clone(),
                    finished: AtomicBool::new(false),
                },
            )?;
            // Held weakly (no cycle client -> run -> workload -> client): a client dropped
            // before its run_tests is called is finalized, which cancels the run.
            let Some(client) = self.obj.bind(py).upgrade() else {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the client was dropped",
                ));
            };
            py.import("loadmon._workload")?
                .call_method1("start", (client, c, e))?;
            Ok(())
        })
        .map_err(|e| Error::Workload(format!("cannot start run_tests: {e}")))?;
        let mut g = lock(&end.end);
        loop {
            if let Some(outcome) = g.take() {
                return match outcome {
                    None => Ok(()),
                    Some(text) => Err(Error::Workload(text)),
                };
            }
            if PY_GONE.load(Ordering::SeqCst) {
                return Err(Error::Workload(
                    "run_tests did not return before interpreter exit".into(),
                ));
            }
            g = end
                .ready
                .wait_timeout(g, SIGNAL_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
