//! `loadmon._loadmon`: the Python face of loadmon.
//!
//! Thin by design: it converts Python values to the core's types with the core's rules
//! (`loadmon::config`), maps `Error::kind()` to the exception classes of `loadmon.errors`, and
//! calls the core's blocking handle layer (`loadmon::blocking`). It decides no bound, default or
//! error of its own. Three rules hold everywhere:
//!
//! - **No panic crosses into Python**: every entry point runs under [`errors::guard`], which
//!   turns a Rust panic into `loadmon.InternalError` (pyo3's `PanicException` is a
//!   `BaseException`).
//! - **Nothing blocks with the GIL held**: every wait runs in `py.detach`, in slices so Ctrl-C
//!   gets through ([`wait`]); no `Mutex` of this module is held across `py.detach` or a Python
//!   call, so a second thread can always read `port` or `cancel()` while another waits.
//! - **The engine's threads never need the GIL**: log records go into a bounded queue
//!   ([`logs`]) that `loadmon._logging` drains on a Python thread of its own. Only a generic
//!   client's `run_tests` (user Python code) takes the GIL, on its own thread.
//!
//! Results (`Report`, `ClientInfo`, `ClientResult`) are plain frozen Python dataclasses of
//! `loadmon._results`, built from the core's JSON.
//!
//! # Layout
//! One room per job, as the tokenizers bindings do:
//! - a file per class: [`server`] (`Server`), [`events`] (`Events`), [`test_client`]
//!   (`TestClient`), [`client`] (`Client`), [`context`] (`Context`), [`worker`] (`Worker`),
//!   [`workload`] (`_RunEnd` and a `run_tests` as a core workload), [`plan`] (`Plan`'s
//!   conversion), [`report_failure`], [`verify`] (`verify()`, the offline check);
//! - shared parts: [`args`] (argument conversion with the core's rules), [`errors`] (the
//!   exception of each core error, the panic guard), [`logs`] (the log queue and fork hooks),
//!   [`live`] (handles stopped at interpreter exit), [`run`] (a client's or worker's run),
//!   [`wait`] (waiting without the GIL), [`results`] (result dataclasses), [`defaults`] (the
//!   core's defaults, checked against every signature by a test).

mod args;
mod client;
mod context;
mod defaults;
mod errors;
mod events;
mod live;
mod logs;
mod plan;
mod report_failure;
mod results;
mod run;
mod server;
mod test_client;
mod verify;
mod wait;
mod worker;
mod workload;

use pyo3::prelude::*;

/// The native module behind `import loadmon`.
#[pymodule]
fn _loadmon(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Warnings reach the queue from the start; loadmon._logging sets the level the loggers
    // want as soon as it is imported.
    logs::install_sink();
    m.add("__version__", loadmon::VERSION)?;
    let (major, minor) = loadmon::protocol::PROTOCOL_VERSION;
    m.add("PROTOCOL_VERSION", format!("{major}.{minor}"))?;
    m.add_class::<server::PyServer>()?;
    m.add_class::<test_client::PyTestClient>()?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<context::PyContext>()?;
    m.add_class::<events::PyEvents>()?;
    m.add_class::<workload::PyRunEnd>()?;
    m.add_class::<worker::PyWorker>()?;
    m.add_function(wrap_pyfunction!(plan::_check_plan, m)?)?;
    m.add_function(wrap_pyfunction!(report_failure::report_failure, m)?)?;
    m.add_function(wrap_pyfunction!(verify::verify, m)?)?;
    m.add_function(wrap_pyfunction!(defaults::defaults, m)?)?;
    m.add_function(wrap_pyfunction!(defaults::_core_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(results::_render_report, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_next, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_wake, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_discard, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_fork_prepare, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_fork_parent, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_fork_child, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_wait, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(live::_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_test_panic, m)?)?;
    Ok(())
}
