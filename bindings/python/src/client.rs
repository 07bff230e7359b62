//! `loadmon.Client`: the generic client to subclass (its settings: a `ClientConfig`, an
//! optional run time and the file sizes it announces).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadmon::blocking::ClientHandle;
use loadmon::client::ClientConfig;
use loadmon::config;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyWeakrefReference};

use crate::args::{opt_int_arg, py_bool, py_repr, secs_arg, timeout_arg, Arg, ClientArgs};
use crate::errors::{core, guard, state_error};
use crate::run::{exit_client, join_handle, Caught, RunSlot};
use crate::wait::lock;
use crate::workload::PyWorkload;

#[derive(Clone)]
struct ClientSettings {
    config: ClientConfig,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
}

/// The generic client (the seed's "extend the generic client"): subclass it and implement
/// ``run_tests(self, ctx)``, plain or ``async def``. ``run()`` connects, gets an id, calls
/// ``run_tests(ctx)`` after the server's ``run_tests`` (on a thread of its own, while Rust
/// sends heartbeats and stats), and sends ``done`` when it returns. If it raises an Exception,
/// the server gets an error report (FAILED) and ``run()`` raises WorkloadError with that
/// exception as ``__cause__``; SystemExit and KeyboardInterrupt are raised as themselves.
///
/// ``run_time`` (seconds) makes ``ctx.stopped`` true when it is over; ``chunk_size`` and
/// ``file_size`` (MB, both or neither) are announced to the server with ``file_stats``.
/// ``None`` for any argument means the core's default, which the signature shows. A
/// subclass's ``__init__`` must call ``super().__init__(...)`` (``run()`` raises StateError
/// otherwise). A context manager, as TestClient.
#[pyclass(
    name = "Client",
    module = "loadmon._loadmon",
    subclass,
    frozen,
    weakref
)]
pub(crate) struct PyClient {
    settings: Mutex<ClientSettings>,
    run: RunSlot<ClientHandle>,
    caught: Caught,
    /// Set by `Client.__init__`: a subclass whose `__init__` does not call it has no settings
    /// of its own, and must not run with the defaults' address.
    initialized: AtomicBool,
}

impl Drop for PyClient {
    fn drop(&mut self) {
        self.run.drop_run();
    }
}

impl PyClient {
    fn spawn(slf: &Bound<'_, Self>) -> PyResult<Arc<ClientHandle>> {
        let py = slf.py();
        let this = slf.get();
        if !this.initialized.load(Ordering::SeqCst) {
            let name = slf.get_type().name()?;
            return Err(state_error(
                py,
                &format!(
                    "{name}.__init__() did not call super().__init__(...): loadmon.Client was \
                     never initialized (no server address, no settings), so it cannot run"
                ),
            ));
        }
        let s = lock(&this.settings).clone();
        *lock(&this.caught) = None;
        // A generator (function) or a non-callable run_tests is refused here (TypeError).
        py.import("loadmon._workload")?
            .call_method1("check", (slf,))?;
        let workload = PyWorkload {
            obj: PyWeakrefReference::new(slf.as_any())?.unbind(),
            run_time: s.run_time,
            file_stats: s.file_stats,
            caught: this.caught.clone(),
        };
        this.run
            .start(py, move || ClientHandle::spawn(s.config, workload))
    }
}

#[pymethods]
impl PyClient {
    /// Accepts any arguments so that subclasses can have their own ``__init__``.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs),
        text_signature = "(host='127.0.0.1', port=1234, heartbeat_period=5.0, \
            stats_period=10.0, run_time=None, chunk_size=None, file_size=None, \
            connect_timeout=5.0, token=None, log_dir=None, allow_clear_token=False, \
            handshake_timeout=10.0, max_line_bytes=4096)")]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyClient {
            settings: Mutex::new(ClientSettings {
                config: ClientConfig::default(),
                run_time: None,
                file_stats: None,
            }),
            run: RunSlot::new(),
            caught: Arc::new(Mutex::new(None)),
            initialized: AtomicBool::new(false),
        }
    }

    /// Settings of the client (see the class). ConfigError for an invalid value.
    #[pyo3(signature = (host=None, port=None, heartbeat_period=None, stats_period=None,
        run_time=None, chunk_size=None, file_size=None, connect_timeout=None, token=None,
        log_dir=None, allow_clear_token=None, handshake_timeout=None, max_line_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn __init__<'a, 'py>(
        &self,
        py: Python<'py>,
        host: Option<String>,
        port: Arg<'a, 'py>,
        heartbeat_period: Arg<'a, 'py>,
        stats_period: Arg<'a, 'py>,
        run_time: Arg<'a, 'py>,
        chunk_size: Arg<'a, 'py>,
        file_size: Arg<'a, 'py>,
        connect_timeout: Arg<'a, 'py>,
        token: Option<String>,
        log_dir: Arg<'a, 'py>,
        allow_clear_token: Option<bool>,
        handshake_timeout: Arg<'a, 'py>,
        max_line_bytes: Arg<'a, 'py>,
    ) -> PyResult<()> {
        guard(py, "Client.__init__", || {
            let config = ClientArgs {
                host,
                port,
                heartbeat_period,
                stats_period,
                connect_timeout,
                handshake_timeout,
                max_line_bytes,
                token,
                log_dir,
                allow_clear_token,
            }
            .config(py)?;
            let chunk = opt_int_arg::<u64>(py, "chunk_size", chunk_size)?;
            let file = opt_int_arg::<u64>(py, "file_size", file_size)?;
            let file_stats = core(py, config::file_stats(chunk, file))?;
            let run_time = run_time
                .map(|v| secs_arg(py, "run_time", v, config::RUN_TIME))
                .transpose()?;
            *lock(&self.settings) = ClientSettings {
                config,
                run_time,
                file_stats,
            };
            self.initialized.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    /// Override this: the test to run once the server says ``run_tests`` (a plain method or
    /// an ``async def``). Loop until ``ctx.stopped``; report with ``ctx.file_rollover()``,
    /// ``ctx.record_write()``, ``ctx.send_stats()``.
    fn run_tests(&self, ctx: &Bound<'_, PyAny>) -> PyResult<()> {
        let _ = ctx;
        Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "subclasses of loadmon.Client must implement run_tests(self, ctx)",
        ))
    }

    /// Connects, calls ``run_tests(ctx)`` after the server's ``run_tests``, sends ``done``,
    /// returns the ClientResult (GIL released while waiting; Ctrl-C cancels the run).
    fn run<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Client.run", || {
            let h = Self::spawn(slf)?;
            join_handle(py, h, None, Some(&slf.get().caught))
        })
    }

    /// ``await client.run_async()``: as run(), without blocking the event loop (cancelling
    /// the task cancels the run).
    fn run_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Client.run_async", || {
            py.import("loadmon._aio")?.call_method1("run", (slf,))
        })
    }

    /// Starts the run in the background; ``join()`` waits for its result. StateError if it
    /// is already running.
    fn start(slf: &Bound<'_, Self>) -> PyResult<()> {
        guard(slf.py(), "Client.start", || Self::spawn(slf).map(|_| ()))
    }

    /// Waits (GIL released) for the result of ``start()``. ``timeout``: None waits as long as
    /// it takes, 0 only checks, else seconds (LoadmonTimeoutError). StateError before start().
    #[pyo3(signature = (timeout=None))]
    fn join<'py>(&self, py: Python<'py>, timeout: Arg<'_, '_>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Client.join", || {
            let timeout = timeout_arg(py, timeout)?;
            let h = self.run.handle(py)?;
            join_handle(py, h, timeout, Some(&self.caught))
        })
    }

    /// Asks a running client to stop: ``ctx.stopped`` becomes True, and ``join()`` raises
    /// LoadmonInterruptedError. Returns at once.
    fn cancel(&self) {
        self.run.cancel();
    }

    /// Whether a run is going on (started and not finished).
    #[getter]
    fn running(&self) -> bool {
        self.run.running()
    }

    /// The server's host.
    #[getter]
    fn host(&self) -> String {
        lock(&self.settings).config.host.clone()
    }

    /// The server's port.
    #[getter]
    fn port(&self) -> u16 {
        lock(&self.settings).config.port
    }

    /// Starts the run (``with MyClient(...) as client:``).
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        guard(slf.py(), "Client.__enter__", || {
            Self::spawn(&slf).map(|_| ())
        })?;
        Ok(slf)
    }

    /// Waits for the run to end; if the block raised, cancels it first (``ctx.stopped``
    /// becomes True). The result is kept: ``join()`` after the block returns it (or raises
    /// the run's error).
    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        guard(py, "Client.__exit__", || exit_client(py, &self.run, exc))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.get();
        let (host, port) = {
            let s = lock(&this.settings);
            (s.config.host.clone(), s.config.port)
        };
        Ok(format!(
            "{}(host={}, port={}, running={})",
            slf.get_type().name()?,
            py_repr(py, &host),
            port,
            py_bool(this.run.running())
        ))
    }
}
