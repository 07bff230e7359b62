//! `loadmon.report_failure`: tells a server that a client cannot run.

use std::sync::mpsc::{channel, RecvTimeoutError};

use loadmon::config;
use loadmon::Error;
use pyo3::prelude::*;

use crate::args::{opt_int_arg, Arg, ClientArgs};
use crate::errors::{core, guard, to_py};
use crate::wait::wait_interruptibly;

/// Tells the server that a client cannot run (it failed validation, say): the client gets an
/// id and the report lists it as FAILED with ``reason``. Returns the id.
#[pyfunction]
#[pyo3(signature = (reason, host=None, port=None, chunk_size=None, file_size=None,
    connect_timeout=None, token=None),
    text_signature = "(reason, host='127.0.0.1', port=1234, chunk_size=None, file_size=None, \
        connect_timeout=5.0, token=None)")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn report_failure(
    py: Python<'_>,
    reason: String,
    host: Option<String>,
    port: Arg<'_, '_>,
    chunk_size: Arg<'_, '_>,
    file_size: Arg<'_, '_>,
    connect_timeout: Arg<'_, '_>,
    token: Option<String>,
) -> PyResult<u32> {
    guard(py, "report_failure", || {
        let config = ClientArgs {
            host,
            port,
            connect_timeout,
            token,
            ..ClientArgs::default()
        }
        .config(py)?;
        let chunk = opt_int_arg::<u64>(py, "chunk_size", chunk_size)?;
        let file = opt_int_arg::<u64>(py, "file_size", file_size)?;
        let file_stats = core(py, config::file_stats(chunk, file))?;
        // On a thread of its own, waited for in slices: Ctrl-C interrupts the connect and the
        // handshake (the attempt is then abandoned; its thread ends with its connect timeout
        // or with the process).
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("loadmon-report-failure".into())
            .spawn(move || {
                let _ = tx.send(loadmon::blocking::report_failure(
                    config, file_stats, &reason,
                ));
            })
            .map_err(|e| to_py(py, &Error::Internal(format!("cannot start a thread: {e}"))))?;
        let r = wait_interruptibly(
            py,
            None,
            "report_failure",
            move |slice| match rx.recv_timeout(slice) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Err(Error::Internal(
                    "report_failure's thread ended without a result".into(),
                ))),
            },
            |_| {},
        )?;
        core(py, r)
    })
}
