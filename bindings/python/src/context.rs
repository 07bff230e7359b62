//! `loadmon.Context`: what a generic client's `run_tests` gets.

use loadmon::config::Zero;
use loadmon::workload::Context;
use pyo3::prelude::*;

use crate::args::{int_arg, py_bool, secs_arg};
use crate::errors::{guard, to_py};

/// What ``Client.run_tests`` gets: the client id, the run's clock, and reporting. It is dead
/// once the run is over: ``stopped`` is then True and every report raises StateError.
#[pyclass(name = "Context", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyContext {
    pub(crate) inner: Context,
}

#[pymethods]
impl PyContext {
    /// The id the server assigned.
    #[getter]
    fn client_id(&self) -> u32 {
        self.inner.client_id()
    }

    /// True once the run should end: run time over, server gone, cancelled, or the run over.
    #[getter]
    fn stopped(&self) -> bool {
        self.inner.time_is_up()
    }

    /// True once the run is over (``run_tests`` returned, or the client gave up).
    #[getter]
    fn finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Seconds left of the run time, or None if the client has none.
    #[getter]
    fn remaining(&self) -> Option<f64> {
        self.inner.remaining().map(|d| d.as_secs_f64())
    }

    /// Seconds since run_tests was called.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.elapsed().as_secs_f64()
    }

    /// Reports one completed file (``file_roll``). StateError after the run.
    fn file_rollover(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "Context.file_rollover", || {
            self.inner.file_rollover().map_err(|e| to_py(py, &e))
        })
    }

    /// Records one write of ``n_bytes`` that took ``seconds``. StateError after the run.
    fn record_write(
        &self,
        py: Python<'_>,
        n_bytes: &Bound<'_, PyAny>,
        seconds: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(py, "Context.record_write", || {
            let n = int_arg::<u64>(py, "n_bytes", n_bytes)?;
            let d = secs_arg(py, "seconds", seconds, Zero::Allowed)?;
            self.inner.record_write(n, d).map_err(|e| to_py(py, &e))
        })
    }

    /// Sends ``send_stats:<cpu_pct>:<mem_pct>``. StateError after the run.
    fn send_stats(&self, py: Python<'_>, cpu_pct: f64, mem_pct: f64) -> PyResult<()> {
        guard(py, "Context.send_stats", || {
            self.inner
                .send_stats(cpu_pct, mem_pct)
                .map_err(|e| to_py(py, &e))
        })
    }

    /// Files reported so far.
    #[getter]
    fn files_written(&self) -> u64 {
        self.inner.files_written()
    }

    /// Bytes recorded so far.
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }

    fn __repr__(&self) -> String {
        format!(
            "Context(client_id={}, stopped={}, files_written={})",
            self.inner.client_id(),
            py_bool(self.inner.time_is_up()),
            self.inner.files_written()
        )
    }
}
