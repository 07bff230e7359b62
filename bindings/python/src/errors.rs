//! Errors: each core error as its `loadmon.errors` exception (the hierarchy under
//! `loadmon.LoadmonError` is Python's, in `python/loadmon/errors.py`), and the guard that keeps
//! a Rust panic from crossing into Python.

use std::panic::{catch_unwind, AssertUnwindSafe};

use loadmon::error::ErrorKind;
use loadmon::Error;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The `loadmon.errors` class of each kind of core error. Exhaustive: a new kind in the core
/// does not compile here until it has a class.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "ConfigError",
        ErrorKind::File => "FileError",
        ErrorKind::Net => "ConnectError",
        ErrorKind::Bind => "BindError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::VersionMismatch => "VersionMismatchError",
        ErrorKind::Refused => "RefusedError",
        ErrorKind::Disconnected => "DisconnectedError",
        ErrorKind::Timeout => "LoadmonTimeoutError",
        ErrorKind::Workload => "WorkloadError",
        ErrorKind::Interrupted => "LoadmonInterruptedError",
        ErrorKind::State => "StateError",
        ErrorKind::Internal => "InternalError",
    }
}

/// Maps a core error to its `loadmon.errors` exception. An error with an OS error behind it
/// (its class is an `OSError`) is built with `(errno, strerror, filename)`, so that Python sets
/// those attributes, and keeps the core's message as its `str()`.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let errors = py.import("loadmon.errors")?;
        let cls = errors
            .getattr(class_name(e.kind()))?
            .cast_into::<PyType>()
            .map_err(PyErr::from)?;
        Ok(match e.os_message() {
            Some(strerror) => PyErr::from_value(errors.call_method1(
                "_os_error",
                (
                    cls,
                    e.to_string(),
                    e.raw_os_error(),
                    strerror,
                    e.path().map(|p| p.as_os_str()),
                ),
            )?),
            None => PyErr::from_type(cls, e.to_string()),
        })
    })();
    made.unwrap_or_else(|import_error| import_error)
}

/// `loadmon.ConfigError` with `msg`.
pub(crate) fn config_error(py: Python<'_>, msg: String) -> PyErr {
    to_py(py, &Error::Config(msg))
}

/// `loadmon.StateError` with `msg`.
pub(crate) fn state_error(py: Python<'_>, msg: &str) -> PyErr {
    to_py(py, &Error::State(msg.into()))
}

/// A core result as a Python one (the error as its `loadmon.errors` exception).
pub(crate) fn core<T>(py: Python<'_>, r: loadmon::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py(py, &e))
}

/// Runs an entry point; a Rust panic in it becomes `loadmon.InternalError` naming `what`.
pub(crate) fn guard<T>(py: Python<'_>, what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(to_py(py, &Error::from_panic(what, p.as_ref()))))
}

/// Panics inside the guard (for the tests: a panic must surface as InternalError).
#[pyfunction]
pub(crate) fn _test_panic(py: Python<'_>, message: &str) -> PyResult<()> {
    guard(py, "_test_panic", || panic!("{message}"))
}
