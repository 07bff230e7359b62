//! `loadmon.Plan` (a dataclass of `loadmon._results`) as the core's fleet plan.

use loadmon::plan::Plan;
use loadmon::workload::file_writer::SyncMode;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::args::{float_arg, int_arg, keep_files_arg};
use crate::errors::{core, guard};
use crate::results::results;

/// A `loadmon.Plan` as the core's plan, checked by the core's rules (`Plan::validate`:
/// ConfigError saying which rule failed); anything else is a TypeError.
pub(crate) fn plan_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Plan> {
    let class = results(py)?.getattr("Plan")?;
    if !v.is_instance(&class)? {
        return Err(PyTypeError::new_err(format!(
            "plan must be a loadmon.Plan, not {}",
            v.get_type().name()?
        )));
    }
    let sync: String = v.getattr("sync")?.extract()?;
    let plan = Plan {
        run_time_s: float_arg("run_time", &v.getattr("run_time")?)?,
        chunk_size_mb: int_arg(py, "chunk_size", &v.getattr("chunk_size")?)?,
        file_size_mb: int_arg(py, "file_size", &v.getattr("file_size")?)?,
        min_chunk_size_mb: int_arg(py, "min_chunk_size", &v.getattr("min_chunk_size")?)?,
        sync: core(py, sync.parse::<SyncMode>())?,
        keep_files: keep_files_arg(py, &v.getattr("keep_files")?)?,
    };
    core(py, plan.validate())?;
    Ok(plan)
}

/// Checks a `loadmon.Plan` with the core's rules (its `__post_init__` calls this).
#[pyfunction]
pub(crate) fn _check_plan(py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<()> {
    guard(py, "Plan()", || plan_arg(py, plan).map(|_| ()))
}
