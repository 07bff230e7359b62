//! `loadmon.Plan` (a dataclass of `loadmon._results`) as the core's fleet plan.

use loadmon::plan::Plan;
use loadmon::workload::file_writer::{SyncMode, VerifyMode};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::args::{
    block_arg, bool_arg, float_arg, keep_files_arg, opt_count_arg, rate_arg, size_arg,
};
use crate::errors::{core, guard};
use crate::results::results;
use loadmon::config::{CHUNK_SIZE_BYTES, FILE_SIZE_BYTES, IODEPTH, JOBS, MIN_CHUNK_SIZE_BYTES};

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
    let verify: String = v.getattr("verify")?.extract()?;
    let plan = Plan {
        run_time_s: float_arg("run_time", &v.getattr("run_time")?)?,
        chunk_size_bytes: size_arg(
            py,
            "chunk_size",
            &v.getattr("chunk_size")?,
            CHUNK_SIZE_BYTES,
        )?,
        file_size_bytes: size_arg(py, "file_size", &v.getattr("file_size")?, FILE_SIZE_BYTES)?,
        min_chunk_size_bytes: size_arg(
            py,
            "min_chunk_size",
            &v.getattr("min_chunk_size")?,
            MIN_CHUNK_SIZE_BYTES,
        )?,
        jobs: count_arg(py, "jobs", &v.getattr("jobs")?, JOBS)?,
        iodepth: count_arg(py, "iodepth", &v.getattr("iodepth")?, IODEPTH)?,
        rate_mb_s: rate_arg(py, Some(&v.getattr("rate")?))?,
        sync: core(py, sync.parse::<SyncMode>())?,
        keep_files: keep_files_arg(py, &v.getattr("keep_files")?)?,
        verify: core(py, verify.parse::<VerifyMode>())?,
        verify_block_bytes: block_arg(py, "verify_block", &v.getattr("verify_block")?)?,
        verify_continue: bool_arg("verify_continue", &v.getattr("verify_continue")?)?,
        verify_peer: bool_arg("verify_peer", &v.getattr("verify_peer")?)?,
        overwrite: bool_arg("overwrite", &v.getattr("overwrite")?)?,
    };
    core(py, plan.validate())?;
    Ok(plan)
}

/// A whole number within the core's `rule` (an attribute of a Plan: never None).
fn count_arg(
    py: Python<'_>,
    name: &str,
    v: &Bound<'_, PyAny>,
    rule: loadmon::config::Count,
) -> PyResult<u32> {
    let n = opt_count_arg::<u32>(py, name, Some(v), rule)?;
    Ok(n.unwrap_or(1))
}

/// Checks a `loadmon.Plan` with the core's rules (its `__post_init__` calls this).
#[pyfunction]
pub(crate) fn _check_plan(py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<()> {
    guard(py, "Plan()", || plan_arg(py, plan).map(|_| ()))
}
