//! Results: `Report`, `ClientInfo`, `ClientResult` and `WorkerSummary` are plain frozen
//! dataclasses of `loadmon._results`, built from the core's JSON; and the report renderer.

use loadmon::client::ClientResult;
use loadmon::worker::WorkerSummary;
use loadmon::{Error, Report};
use pyo3::prelude::*;

use crate::errors::{config_error, core, guard, to_py};

/// The module `loadmon._results`.
pub(crate) fn results(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("loadmon._results")
}

/// The outcome of serializing a core value (it cannot fail: an error is a bug, InternalError).
pub(crate) fn serialized<T>(py: Python<'_>, r: serde_json::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py(py, &Error::Internal(e.to_string())))
}

/// A report as `loadmon.Report`.
pub(crate) fn report_to_py<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyAny>> {
    results(py)?
        .getattr("Report")?
        .call_method1("_from_json", (r.to_json(),))
}

/// A client's result as `loadmon.ClientResult`.
pub(crate) fn result_to_py<'py>(py: Python<'py>, r: &ClientResult) -> PyResult<Bound<'py, PyAny>> {
    results(py)?
        .getattr("ClientResult")?
        .call_method1("_from_json", (r.to_json(),))
}

/// A worker's summary as `loadmon.WorkerSummary`.
pub(crate) fn summary_to_py<'py>(
    py: Python<'py>,
    s: &WorkerSummary,
) -> PyResult<Bound<'py, PyAny>> {
    results(py)?
        .getattr("WorkerSummary")?
        .call_method1("_from_json", (serialized(py, serde_json::to_string(s))?,))
}

/// Renders a JSON report as `text` (the seed's report), `csv` or `html`.
#[pyfunction]
pub(crate) fn _render_report(py: Python<'_>, json: &str, format: &str) -> PyResult<String> {
    guard(py, "_render_report", || {
        let r = core(py, Report::from_json(json))?;
        match format {
            "text" => Ok(r.to_text()),
            "csv" => Ok(r.to_csv()),
            "html" => Ok(r.to_html()),
            other => Err(config_error(
                py,
                format!("format must be text, csv or html, not {other:?}"),
            )),
        }
    })
}
