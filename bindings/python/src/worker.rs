//! `loadmon.Worker`: a fleet worker (its settings: every field of `WorkerConfig`, with the
//! core's defaults and rules).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loadmon::blocking::WorkerHandle;
use loadmon::config;
use loadmon::worker::WorkerConfig;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::args::{
    opt_count_arg, opt_secs_arg, path_arg, py_bool, py_repr, timeout_arg, Arg, ClientArgs,
};
use crate::errors::{core, guard, to_py};
use crate::results::summary_to_py;
use crate::run::RunSlot;
use crate::wait::wait_interruptibly;

/// Waits for a worker's summary, interruptibly (Ctrl-C cancels the worker), and converts it.
fn join_worker<'py>(
    py: Python<'py>,
    h: Arc<WorkerHandle>,
    timeout: Option<Duration>,
) -> PyResult<Bound<'py, PyAny>> {
    let h2 = h.clone();
    let r = wait_interruptibly(
        py,
        timeout,
        "the worker is still running",
        |slice| h.try_join(Some(slice)),
        move |py| {
            h2.cancel();
            py.detach(|| {
                let _ = h2.join(Some(Duration::from_secs(10)));
            });
        },
    )?;
    match r {
        Ok(summary) => summary_to_py(py, &summary),
        Err(e) => Err(to_py(py, &e)),
    }
}

/// A fleet worker (``loadmon worker``): connects to a fleet server (``Server(expect_clients=N,
/// plan=...)``), takes its plan, checks it on this host (the seed's rules and the timed probe),
/// waits for the fleet's start and writes files as planned into ``out_dir``. ``run()`` blocks
/// (GIL released) and returns a WorkerSummary; ``start()`` runs it in the background,
/// ``join()`` waits for it, ``cancel()`` stops it. With ``stay=True`` it comes back for the
/// next run until cancelled, retrying with backoff (at most ``retry_max`` seconds between
/// attempts) while the server is away. A plan beyond this host's limits (``max_chunk_mb``,
/// ``max_run_time`` seconds, ``max_disk_mb`` in ``out_dir`` at once) is refused and the server
/// lists the worker FAILED with the reason. Used as a context manager it starts on enter and is
/// cancelled and joined on exit; a running worker that is dropped is cancelled and joined
/// (within a second). ``None`` for any argument means the core's default, which the signature
/// shows; out-of-range numbers raise ConfigError.
#[pyclass(name = "Worker", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyWorker {
    config: WorkerConfig,
    run: RunSlot<WorkerHandle>,
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        self.run.drop_run();
    }
}

impl PyWorker {
    fn spawn(&self, py: Python<'_>) -> PyResult<Arc<WorkerHandle>> {
        let config = self.config.clone();
        self.run.start(py, move || WorkerHandle::spawn(config))
    }
}

/// The worker's own arguments of `Worker(...)` (its client's are a `ClientArgs`).
struct WorkerArgs<'a, 'py> {
    out_dir: Arg<'a, 'py>,
    stay: Option<bool>,
    retry_max: Arg<'a, 'py>,
    max_chunk_mb: Arg<'a, 'py>,
    max_run_time: Arg<'a, 'py>,
    max_disk_mb: Arg<'a, 'py>,
}

impl WorkerArgs<'_, '_> {
    /// The WorkerConfig of `client`, checked by the core (`WorkerConfig::validate`).
    fn config(self, py: Python<'_>, client: ClientArgs<'_, '_>) -> PyResult<WorkerConfig> {
        let d = WorkerConfig::default();
        let config = WorkerConfig {
            client: client.config(py)?,
            out_dir: path_arg(self.out_dir)?.unwrap_or(d.out_dir),
            stay: self.stay.unwrap_or(d.stay),
            retry_max: opt_secs_arg(
                py,
                "retry_max",
                self.retry_max,
                config::RETRY_MAX,
                d.retry_max,
            )?,
            max_chunk_mb: opt_count_arg(
                py,
                "max_chunk_mb",
                self.max_chunk_mb,
                config::CHUNK_SIZE_MB,
            )?
            .unwrap_or(d.max_chunk_mb),
            max_run_time: opt_secs_arg(
                py,
                "max_run_time",
                self.max_run_time,
                config::MAX_RUN_TIME,
                d.max_run_time,
            )?,
            max_disk_mb: opt_count_arg(py, "max_disk_mb", self.max_disk_mb, config::MAX_DISK_MB)?
                .unwrap_or(d.max_disk_mb),
        };
        core(py, config.validate())?;
        Ok(config)
    }
}

#[pymethods]
impl PyWorker {
    #[new]
    #[pyo3(signature = (host=None, port=None, out_dir=None, token=None, stay=None,
        retry_max=None, heartbeat_period=None, stats_period=None, connect_timeout=None,
        log_dir=None, max_chunk_mb=None, max_run_time=None, max_disk_mb=None,
        allow_clear_token=None, handshake_timeout=None, max_line_bytes=None),
        text_signature = "(host='127.0.0.1', port=1234, out_dir='client_files', token=None, \
            stay=False, retry_max=5.0, heartbeat_period=5.0, stats_period=10.0, \
            connect_timeout=5.0, log_dir=None, max_chunk_mb=256, max_run_time=86400.0, \
            max_disk_mb=10240, allow_clear_token=False, handshake_timeout=10.0, \
            max_line_bytes=4096)")]
    #[allow(clippy::too_many_arguments)]
    fn new<'a, 'py>(
        py: Python<'py>,
        host: Option<String>,
        port: Arg<'a, 'py>,
        out_dir: Arg<'a, 'py>,
        token: Option<String>,
        stay: Option<bool>,
        retry_max: Arg<'a, 'py>,
        heartbeat_period: Arg<'a, 'py>,
        stats_period: Arg<'a, 'py>,
        connect_timeout: Arg<'a, 'py>,
        log_dir: Arg<'a, 'py>,
        max_chunk_mb: Arg<'a, 'py>,
        max_run_time: Arg<'a, 'py>,
        max_disk_mb: Arg<'a, 'py>,
        allow_clear_token: Option<bool>,
        handshake_timeout: Arg<'a, 'py>,
        max_line_bytes: Arg<'a, 'py>,
    ) -> PyResult<Self> {
        guard(py, "Worker()", || {
            let client = ClientArgs {
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
            };
            let worker = WorkerArgs {
                out_dir,
                stay,
                retry_max,
                max_chunk_mb,
                max_run_time,
                max_disk_mb,
            };
            Ok(PyWorker {
                config: worker.config(py, client)?,
                run: RunSlot::new(),
            })
        })
    }

    /// Runs to the end (one run; with ``stay``, until cancelled) and returns the
    /// WorkerSummary (GIL released; Ctrl-C cancels it and raises KeyboardInterrupt). Raises
    /// the run's error: RefusedError if the server is not in fleet mode or its run already
    /// started, ConfigError/FileError if the plan cannot run on this host, ...
    fn run<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Worker.run", || {
            let h = self.spawn(py)?;
            join_worker(py, h, None)
        })
    }

    /// ``await worker.run_async()``: as run(), without blocking the event loop (cancelling
    /// the task cancels the worker).
    fn run_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Worker.run_async", || {
            py.import("loadmon._aio")?.call_method1("run", (slf,))
        })
    }

    /// Starts the worker in the background; ``join()`` waits for its summary. StateError if
    /// it is already running.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "Worker.start", || self.spawn(py).map(|_| ()))
    }

    /// Waits (GIL released) for the summary of ``start()``. ``timeout``: None waits as long as
    /// it takes, 0 only checks, else seconds (LoadmonTimeoutError). StateError before start().
    #[pyo3(signature = (timeout=None))]
    fn join<'py>(&self, py: Python<'py>, timeout: Arg<'_, '_>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Worker.join", || {
            let timeout = timeout_arg(py, timeout)?;
            let h = self.run.handle(py)?;
            join_worker(py, h, timeout)
        })
    }

    /// Asks the worker to stop; returns at once. A run under way ends (``join()`` raises
    /// LoadmonInterruptedError); a ``stay`` worker between runs returns its summary.
    fn cancel(&self) {
        self.run.cancel();
    }

    /// Whether the worker is running (started and not finished).
    #[getter]
    fn running(&self) -> bool {
        self.run.running()
    }

    /// The server's host.
    #[getter]
    fn host(&self) -> &str {
        &self.config.client.host
    }

    /// The server's port.
    #[getter]
    fn port(&self) -> u16 {
        self.config.client.port
    }

    /// Directory of the data files.
    #[getter]
    fn out_dir(&self) -> PathBuf {
        self.config.out_dir.clone()
    }

    /// Whether it comes back for the next run.
    #[getter]
    fn stay(&self) -> bool {
        self.config.stay
    }

    /// Starts the worker (``with Worker(...) as worker:``).
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    /// Cancels the worker if it still runs and waits for it to end (GIL released); its result
    /// is dropped (use ``join()`` in the block to get it).
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        guard(py, "Worker.__exit__", || {
            if let Ok(h) = self.run.handle(py) {
                h.cancel();
                let _ = wait_interruptibly(
                    py,
                    None,
                    "the worker is still running",
                    |slice| h.try_join(Some(slice)),
                    |_| {},
                )?;
            }
            Ok(false)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Worker(host={}, port={}, stay={}, running={})",
            py_repr(py, &self.config.client.host),
            self.config.client.port,
            py_bool(self.config.stay),
            py_bool(self.run.running())
        )
    }
}
