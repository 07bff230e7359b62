//! `loadmon.verify`: checks files written with verified data, offline (`loadmon verify`).

use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError};

use loadmon::verify::{check_paths, VerifyConfig};
use loadmon::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::args::{block_arg, opt_int_arg, Arg};
use crate::errors::{core, guard, to_py};
use crate::results::serialized;
use crate::wait::wait_interruptibly;

/// The paths to check: one path (`str` or `os.PathLike`), or a sequence of them.
fn paths_arg(v: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = v.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    v.extract::<Vec<PathBuf>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "paths must be a path or a sequence of paths, not {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })
}

/// Checks files written with verified data (``TestClient(verify=...)``), offline, as
/// ``loadmon verify --json`` does: ``paths`` is a file or a directory (its ``client_<id>_…``
/// data files), or a sequence of them. Returns the report as a dict: ``files`` (each with
/// ``path``, ``size_bytes``, ``expected``, ``blocks_checked``, ``blocks_ok``, ``errors`` by
/// class, ``findings`` (``path``, ``offset_bytes``, ``blocks``, ``class``, ``expected``,
/// ``found``), ``findings_left_off``, ``notes``), ``blocks_checked``, ``blocks_ok``,
/// ``errors`` (``corrupt``, ``stale``, ``misdirected``, ``torn``, ``short``), ``bytes_read``,
/// ``elapsed_s``, ``cpu_s``, ``read_mb_s``, ``cpu_s_per_gb``. Bad blocks are findings, not
/// errors: ``sum(report["errors"].values()) == 0`` means every block is as written.
///
/// ``direct``: read with O_DIRECT (the page cache cannot answer); ``max_findings``: findings
/// kept per file; ``block_size`` (an int of bytes or a text such as "64k"), ``run_id`` and
/// ``generation``: what every block must be (None: settled from the file's own blocks).
///
/// The check runs without the GIL; Ctrl-C raises KeyboardInterrupt at once (the check left
/// behind ends on its own thread). Raises ConfigError for a bad option or a path that does not
/// exist, FileError when a file cannot be read.
#[pyfunction]
#[pyo3(signature = (paths, *, direct=None, max_findings=None, block_size=None, run_id=None,
    generation=None),
    text_signature = "(paths, *, direct=False, max_findings=100, block_size=None, \
        run_id=None, generation=None)")]
pub(crate) fn verify<'py>(
    py: Python<'py>,
    paths: &Bound<'py, PyAny>,
    direct: Option<bool>,
    max_findings: Arg<'_, 'py>,
    block_size: Arg<'_, 'py>,
    run_id: Arg<'_, 'py>,
    generation: Arg<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(py, "verify", || {
        let d = VerifyConfig::default();
        let paths = paths_arg(paths)?;
        let block_bytes = match block_size {
            // At most 1 MiB by the core's bound.
            Some(v) => Some(core(
                py,
                u32::try_from(block_arg(py, "block_size", v)?)
                    .map_err(|e| Error::Config(format!("block_size: {e}"))),
            )?),
            None => d.block_bytes,
        };
        let config = VerifyConfig {
            direct: direct.unwrap_or(d.direct),
            max_findings: opt_int_arg(py, "max_findings", max_findings)?.unwrap_or(d.max_findings),
            block_bytes,
            run_id: opt_int_arg(py, "run_id", run_id)?.or(d.run_id),
            generation: opt_int_arg(py, "generation", generation)?.or(d.generation),
        };
        core(py, config.validate())?;
        // On a thread of its own, waited for in slices: Ctrl-C interrupts the wait.
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("loadmon-verify".into())
            .spawn(move || {
                let _ = tx.send(check_paths(&paths, &config));
            })
            .map_err(|e| to_py(py, &Error::Internal(format!("cannot start a thread: {e}"))))?;
        let report = wait_interruptibly(
            py,
            None,
            "verify",
            move |slice| match rx.recv_timeout(slice) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Err(Error::Internal(
                    "verify's thread ended without a report".into(),
                ))),
            },
            |_| {},
        )?;
        let report = core(py, report)?;
        let json = serialized(py, serde_json::to_string(&report))?;
        py.import("json")?.call_method1("loads", (json,))
    })
}
