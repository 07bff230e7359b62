//! `loadmon.verify`: checks files written with verified data, offline (`loadmon verify`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;

use loadmon::verify::{check_paths_until, VerifyConfig, FINDINGS};
use loadmon::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::args::{block_arg, bool_arg, opt_count_arg, opt_int_arg, Arg};
use crate::errors::{core, guard, to_py};
use crate::results::serialized;
use crate::wait::wait_interruptibly;

/// The name of `v`'s type, for an error.
fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// One path: a `str`, `bytes` (the file system's own bytes) or an `os.PathLike` giving
/// either; `None` for anything else.
fn one_path(v: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    if !(v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.hasattr("__fspath__")?)
    {
        return Ok(None);
    }
    let p = v.py().import("os")?.call_method1("fspath", (v,))?;
    if let Ok(b) = p.cast::<PyBytes>() {
        return Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(
            b.as_bytes(),
        ))));
    }
    p.extract::<PathBuf>().map(Some)
}

/// The paths to check: one path ([`one_path`]), or any iterable of them (a list, a tuple, a
/// generator such as `Path.glob`'s).
fn paths_arg(v: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Some(one) = one_path(v)? {
        return Ok(vec![one]);
    }
    let Ok(items) = v.try_iter() else {
        return Err(PyTypeError::new_err(format!(
            "paths must be a path (str, bytes or os.PathLike) or an iterable of paths, not {}",
            type_name(v)
        )));
    };
    items
        .enumerate()
        .map(|(i, item)| {
            let item = item?;
            one_path(&item)?.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "paths[{i}] must be a path (str, bytes or os.PathLike), not {}",
                    type_name(&item)
                ))
            })
        })
        .collect()
}

/// Checks files written with verified data (``TestClient(verify=...)``), offline, as
/// ``loadmon verify --json`` does: ``paths`` is a file or a directory (its ``client_<id>_…``
/// data files) as ``str``, ``bytes`` or ``os.PathLike``, or any iterable of them. Returns the
/// report as a dict: ``files`` (each with ``path``, ``size_bytes``, ``expected``,
/// ``blocks_checked``, ``blocks_ok``, ``errors`` by
/// class, ``findings`` (``path``, ``offset_bytes``, ``blocks``, ``class``, ``expected``,
/// ``found``), ``findings_left_off``, ``notes``), ``blocks_checked``, ``blocks_ok``,
/// ``errors`` (``corrupt``, ``stale``, ``misdirected``, ``torn``, ``short``), ``bytes_read``,
/// ``elapsed_s``, ``cpu_s``, ``read_mb_s``, ``cpu_s_per_gb``, and ``skipped`` (entries of a
/// directory named like data files that are not regular files, each ``path`` and ``reason``:
/// left out, never opened). Bad blocks are findings, not errors:
/// ``sum(report["errors"].values()) == 0`` means every block is as written.
///
/// ``direct``: read with O_DIRECT (the page cache cannot answer); ``max_findings``: findings
/// kept per file; ``block_size`` (an int of bytes or a text such as "64k"), ``run_id`` and
/// ``generation``: what every block must be (None: settled from the file's own blocks).
///
/// The check runs without the GIL; Ctrl-C raises KeyboardInterrupt at once and stops the check
/// on its own thread before its next read (of at most 4 MiB). Raises ConfigError for a bad
/// option, a path that does not exist or a path given that is not a regular file, FileError
/// when a file cannot be read or looked at (a symbolic-link loop).
#[pyfunction]
#[pyo3(signature = (paths, *, direct=None, max_findings=None, block_size=None, run_id=None,
    generation=None),
    text_signature = "(paths, *, direct=False, max_findings=100, block_size=None, \
        run_id=None, generation=None)")]
pub(crate) fn verify<'py>(
    py: Python<'py>,
    paths: &Bound<'py, PyAny>,
    direct: Arg<'_, 'py>,
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
            direct: direct
                .map(|v| bool_arg("direct", v))
                .transpose()?
                .unwrap_or(d.direct),
            max_findings: opt_count_arg(py, "max_findings", max_findings, FINDINGS)?
                .unwrap_or(d.max_findings),
            block_bytes,
            run_id: opt_int_arg(py, "run_id", run_id)?.or(d.run_id),
            generation: opt_int_arg(py, "generation", generation)?.or(d.generation),
        };
        core(py, config.validate())?;
        // On a thread of its own, waited for in slices: Ctrl-C interrupts the wait and stops
        // the check (within one read), which nobody waits for any more.
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("loadmon-verify".into())
            .spawn(move || {
                let until = || stopped.load(Ordering::Relaxed);
                let _ = tx.send(check_paths_until(&paths, &config, &until));
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
            |_| stop.store(true, Ordering::Relaxed),
        )?;
        let report = core(py, report)?;
        let json = serialized(py, serde_json::to_string(&report))?;
        py.import("json")?.call_method1("loads", (json,))
    })
}
