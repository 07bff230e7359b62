//! `loadmon.Server`: its settings (every field of `ServerConfig`, with the core's defaults and
//! rules) and its handle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadmon::blocking::ServerHandle;
use loadmon::config;
use loadmon::server::{FleetConfig, FleetOptionsGiven, HttpLimits, ServerConfig};
use loadmon::Report;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::args::{
    opt_count_arg, opt_int_arg, opt_secs_arg, path_arg, py_bool, py_repr, secs_arg, timeout_arg,
    Arg,
};
use crate::errors::{core, guard, state_error, to_py};
use crate::events::PyEvents;
use crate::live::{register, Live};
use crate::logs::sync_log_level;
use crate::plan::plan_arg;
use crate::results::{report_to_py, results, serialized};
use crate::wait::{lock, wait_interruptibly};

enum ServerState {
    Idle,
    Starting,
    Started(Arc<ServerHandle>),
}

/// The loadmon server: hands out client ids from ``first_client_id``, watches every client
/// (heartbeats, stats, files, statuses), and writes the report when the run is over.
///
/// ``start()`` binds and returns at once (``port=0`` picks a free port, then readable as
/// ``port``); the server runs on threads of its own, which never need the GIL. It stops by
/// itself once at least one client got an id and every connection closed; ``wait()`` returns
/// its report then, ``stop()`` ends it at once (running clients become ABORTED). Used as a
/// context manager (``with`` or ``async with``) it starts on enter and stops on exit.
///
/// A server runs once: ``start()`` after it stopped raises StateError (create a new Server).
/// A started server that is dropped (``del``, garbage collection, an exception, interpreter
/// exit) is stopped within a second and still writes its report files.
///
/// Fleet mode: with ``expect_clients=N`` the server hands every ``Worker`` the same ``plan``
/// (a ``loadmon.Plan``; the seed's test by default) and withholds ``run_tests`` until N
/// clients are ready, then starts them all at once; ``start_timeout`` (seconds after the
/// start) starts whoever is ready by then. ``max_clients=None`` is then at least N. The
/// report's ``expected_clients``, ``started_clients``, ``common_start`` and ``total_series``
/// describe the fleet.
///
/// Bounds on what peers may hold: ``max_pending`` connections in the handshake at once (more
/// wait in the listen queue, never refused), ``max_ids`` ids handed out in one run,
/// ``write_timeout`` seconds a peer may leave replies unread, ``max_line_bytes`` per line; the
/// HTTP listener's ``http_header_read_timeout``, ``http_idle_timeout``,
/// ``http_write_timeout`` (seconds) and ``http_max_connections``.
///
/// Durations are seconds (floats), from more than 0 to 10**9; numbers out of range raise
/// ConfigError (a ValueError). ``None`` for any argument means the core's default, which the
/// signature shows (``loadmon._loadmon.defaults()``).
#[pyclass(name = "Server", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyServer {
    config: ServerConfig,
    state: Mutex<ServerState>,
}

/// The arguments of `Server(...)`, as Python gave them.
struct ServerArgs<'a, 'py> {
    host: Option<String>,
    port: Arg<'a, 'py>,
    max_clients: Arg<'a, 'py>,
    first_client_id: Arg<'a, 'py>,
    heartbeat_timeout: Arg<'a, 'py>,
    report_json: Arg<'a, 'py>,
    log_dir: Arg<'a, 'py>,
    handshake_timeout: Arg<'a, 'py>,
    token: Option<String>,
    http: Option<String>,
    http_linger: Arg<'a, 'py>,
    report_csv: Arg<'a, 'py>,
    report_html: Arg<'a, 'py>,
    expect_clients: Arg<'a, 'py>,
    plan: Arg<'a, 'py>,
    start_timeout: Arg<'a, 'py>,
    http_allow_hosts: Option<Vec<String>>,
    allow_clear_token: Option<bool>,
    max_pending: Arg<'a, 'py>,
    max_ids: Arg<'a, 'py>,
    write_timeout: Arg<'a, 'py>,
    max_line_bytes: Arg<'a, 'py>,
    http_header_read_timeout: Arg<'a, 'py>,
    http_idle_timeout: Arg<'a, 'py>,
    http_max_connections: Arg<'a, 'py>,
    http_write_timeout: Arg<'a, 'py>,
    latency_log: Arg<'a, 'py>,
    thresholds: Option<Vec<String>>,
    abort_on_fail: Option<bool>,
    baseline: Arg<'a, 'py>,
    report_junit: Arg<'a, 'py>,
}

impl ServerArgs<'_, '_> {
    /// The ServerConfig, checked by the core (`ServerConfig::validate`).
    fn config(self, py: Python<'_>) -> PyResult<ServerConfig> {
        let d = ServerConfig::default();
        let fleet = self.fleet(py)?;
        let http_limits = self.http_limits(py, d.http_limits)?;
        let config = ServerConfig {
            host: self.host.unwrap_or(d.host.clone()),
            port: opt_int_arg(py, "port", self.port)?.unwrap_or(d.port),
            max_clients: opt_count_arg(py, "max_clients", self.max_clients, config::CLIENTS)?
                .unwrap_or_else(|| ServerConfig::default_max_clients(fleet.as_ref())),
            max_pending: opt_count_arg(py, "max_pending", self.max_pending, config::CLIENTS)?
                .unwrap_or(d.max_pending),
            max_ids: opt_count_arg(py, "max_ids", self.max_ids, config::IDS)?.unwrap_or(d.max_ids),
            first_client_id: opt_int_arg(py, "first_client_id", self.first_client_id)?
                .unwrap_or(d.first_client_id),
            heartbeat_timeout: opt_secs_arg(
                py,
                "heartbeat_timeout",
                self.heartbeat_timeout,
                config::HEARTBEAT_TIMEOUT,
                d.heartbeat_timeout,
            )?,
            handshake_timeout: opt_secs_arg(
                py,
                "handshake_timeout",
                self.handshake_timeout,
                config::HANDSHAKE_TIMEOUT,
                d.handshake_timeout,
            )?,
            write_timeout: opt_secs_arg(
                py,
                "write_timeout",
                self.write_timeout,
                config::WRITE_TIMEOUT,
                d.write_timeout,
            )?,
            max_line_bytes: opt_int_arg(py, "max_line_bytes", self.max_line_bytes)?
                .unwrap_or(d.max_line_bytes),
            token: self.token,
            allow_clear_token: self.allow_clear_token.unwrap_or(d.allow_clear_token),
            report_json: path_arg(self.report_json)?,
            log_dir: path_arg(self.log_dir)?,
            report_csv: path_arg(self.report_csv)?,
            report_html: path_arg(self.report_html)?,
            latency_log: path_arg(self.latency_log)?,
            report_junit: path_arg(self.report_junit)?,
            thresholds: self.thresholds.unwrap_or(d.thresholds.clone()),
            abort_on_fail: self.abort_on_fail.unwrap_or(d.abort_on_fail),
            baseline: path_arg(self.baseline)?,
            http: self.http,
            http_linger: opt_secs_arg(
                py,
                "http_linger",
                self.http_linger,
                config::HTTP_LINGER,
                d.http_linger,
            )?,
            http_allow_hosts: self.http_allow_hosts.unwrap_or(d.http_allow_hosts),
            http_limits,
            fleet,
        };
        core(py, config.validate())?;
        Ok(config)
    }

    /// The fleet of `expect_clients`, `start_timeout` and `plan` (the core's one rule:
    /// `FleetConfig::from_options`).
    fn fleet(&self, py: Python<'_>) -> PyResult<Option<FleetConfig>> {
        let plan_given: &[&str] = if self.plan.is_some() { &["plan"] } else { &[] };
        let given = FleetOptionsGiven {
            plan: plan_given,
            start_timeout: self.start_timeout.is_some().then_some("start_timeout"),
            expect_clients: "expect_clients",
        };
        let expect =
            opt_count_arg::<usize>(py, "expect_clients", self.expect_clients, config::CLIENTS)?;
        if expect.is_none() {
            // The rule's error comes before any conversion of the options it refuses.
            return core(py, FleetConfig::from_options(None, None, None, given));
        }
        let start_timeout = self
            .start_timeout
            .map(|v| secs_arg(py, "start_timeout", v, config::START_TIMEOUT))
            .transpose()?;
        let plan = self.plan.map(|p| plan_arg(py, p)).transpose()?;
        core(
            py,
            FleetConfig::from_options(expect, start_timeout, plan, given),
        )
    }

    /// The HTTP listener's limits (`http_` and the name of the `HttpLimits` field).
    fn http_limits(&self, py: Python<'_>, d: HttpLimits) -> PyResult<HttpLimits> {
        let timeout = |name, v, default| opt_secs_arg(py, name, v, config::HTTP_TIMEOUT, default);
        Ok(HttpLimits {
            header_read_timeout: timeout(
                "http_header_read_timeout",
                self.http_header_read_timeout,
                d.header_read_timeout,
            )?,
            idle_timeout: timeout("http_idle_timeout", self.http_idle_timeout, d.idle_timeout)?,
            max_connections: opt_count_arg(
                py,
                "http_max_connections",
                self.http_max_connections,
                config::CLIENTS,
            )?
            .unwrap_or(d.max_connections),
            write_timeout: timeout(
                "http_write_timeout",
                self.http_write_timeout,
                d.write_timeout,
            )?,
        })
    }
}

impl PyServer {
    fn handle(&self, py: Python<'_>) -> PyResult<Arc<ServerHandle>> {
        match &*lock(&self.state) {
            ServerState::Started(h) => Ok(h.clone()),
            ServerState::Starting => Err(state_error(
                py,
                "the server is starting in another thread: wait for start() to return",
            )),
            ServerState::Idle => Err(state_error(
                py,
                "the server is not started: call start() first",
            )),
        }
    }

    fn started(&self) -> Option<Arc<ServerHandle>> {
        match &*lock(&self.state) {
            ServerState::Started(h) => Some(h.clone()),
            _ => None,
        }
    }

    fn wait_report(
        &self,
        py: Python<'_>,
        h: Arc<ServerHandle>,
        timeout: Option<Duration>,
    ) -> PyResult<Report> {
        let r = wait_interruptibly(
            py,
            timeout,
            "the server is still running",
            |slice| h.try_wait(Some(slice)),
            |_| {},
        )?;
        r.map_err(|e| to_py(py, &e))
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|p| p.into_inner()),
            ServerState::Idle,
        );
        if let ServerState::Started(h) = state {
            // Stop it, let it write its reports, and join its thread, with the GIL released:
            // nothing the engine does needs the GIL.
            let stop = move || {
                h.control().stop();
                h.close_http();
                drop(h);
            };
            Python::attach(|py| py.detach(stop));
        }
    }
}
#[pymethods]
impl PyServer {
    #[new]
    #[pyo3(signature = (host=None, port=None, max_clients=None, first_client_id=None,
        heartbeat_timeout=None, report_json=None, log_dir=None, handshake_timeout=None,
        token=None, http=None, http_linger=None, report_csv=None, report_html=None,
        expect_clients=None, plan=None, start_timeout=None, http_allow_hosts=None,
        allow_clear_token=None, max_pending=None, max_ids=None, write_timeout=None,
        max_line_bytes=None, http_header_read_timeout=None, http_idle_timeout=None,
        http_max_connections=None, http_write_timeout=None, latency_log=None,
        thresholds=None, abort_on_fail=None, baseline=None, report_junit=None),
        text_signature = "(host='127.0.0.1', port=1234, max_clients=5, first_client_id=100, \
            heartbeat_timeout=15.0, report_json=None, log_dir=None, handshake_timeout=10.0, \
            token=None, http=None, http_linger=0.0, report_csv=None, report_html=None, \
            expect_clients=None, plan=None, start_timeout=None, http_allow_hosts=(), \
            allow_clear_token=False, max_pending=256, max_ids=100000, write_timeout=10.0, \
            max_line_bytes=4096, http_header_read_timeout=10.0, http_idle_timeout=30.0, \
            http_max_connections=128, http_write_timeout=30.0, latency_log=None, \
            thresholds=(), abort_on_fail=False, baseline=None, report_junit=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new<'a, 'py>(
        py: Python<'py>,
        host: Option<String>,
        port: Arg<'a, 'py>,
        max_clients: Arg<'a, 'py>,
        first_client_id: Arg<'a, 'py>,
        heartbeat_timeout: Arg<'a, 'py>,
        report_json: Arg<'a, 'py>,
        log_dir: Arg<'a, 'py>,
        handshake_timeout: Arg<'a, 'py>,
        token: Option<String>,
        http: Option<String>,
        http_linger: Arg<'a, 'py>,
        report_csv: Arg<'a, 'py>,
        report_html: Arg<'a, 'py>,
        expect_clients: Arg<'a, 'py>,
        plan: Arg<'a, 'py>,
        start_timeout: Arg<'a, 'py>,
        http_allow_hosts: Option<Vec<String>>,
        allow_clear_token: Option<bool>,
        max_pending: Arg<'a, 'py>,
        max_ids: Arg<'a, 'py>,
        write_timeout: Arg<'a, 'py>,
        max_line_bytes: Arg<'a, 'py>,
        http_header_read_timeout: Arg<'a, 'py>,
        http_idle_timeout: Arg<'a, 'py>,
        http_max_connections: Arg<'a, 'py>,
        http_write_timeout: Arg<'a, 'py>,
        latency_log: Arg<'a, 'py>,
        thresholds: Option<Vec<String>>,
        abort_on_fail: Option<bool>,
        baseline: Arg<'a, 'py>,
        report_junit: Arg<'a, 'py>,
    ) -> PyResult<Self> {
        guard(py, "Server()", || {
            let args = ServerArgs {
                host,
                port,
                max_clients,
                first_client_id,
                heartbeat_timeout,
                report_json,
                log_dir,
                handshake_timeout,
                token,
                http,
                http_linger,
                report_csv,
                report_html,
                expect_clients,
                plan,
                start_timeout,
                http_allow_hosts,
                allow_clear_token,
                max_pending,
                max_ids,
                write_timeout,
                max_line_bytes,
                http_header_read_timeout,
                http_idle_timeout,
                http_max_connections,
                http_write_timeout,
                latency_log,
                thresholds,
                abort_on_fail,
                baseline,
                report_junit,
            };
            Ok(PyServer {
                config: args.config(py)?,
                state: Mutex::new(ServerState::Idle),
            })
        })
    }

    /// Binds and starts serving in the background; returns at once. StateError if the server
    /// was started before (a server runs once); BindError (an OSError with ``errno``) if the
    /// address cannot be bound.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "Server.start", || {
            {
                let mut s = lock(&self.state);
                match &*s {
                    ServerState::Idle => *s = ServerState::Starting,
                    ServerState::Starting => {
                        return Err(state_error(py, "the server is starting in another thread"))
                    }
                    ServerState::Started(h) if h.is_finished() => {
                        return Err(state_error(
                            py,
                            "this server has run and stopped: a Server runs once, create a new one",
                        ))
                    }
                    ServerState::Started(_) => {
                        return Err(state_error(py, "the server is already started"))
                    }
                }
            }
            sync_log_level(py);
            let config = self.config.clone();
            // No lock held here: another thread may read `port` or call `stop()` meanwhile.
            let started = py.detach(|| ServerHandle::start(config));
            let mut s = lock(&self.state);
            match started {
                Ok(h) => {
                    let h = Arc::new(h);
                    register(Live::Server(Arc::downgrade(&h)));
                    *s = ServerState::Started(h);
                    Ok(())
                }
                Err(e) => {
                    *s = ServerState::Idle;
                    Err(to_py(py, &e))
                }
            }
        })
    }

    /// The port (the bound one once started, when 0 was asked).
    #[getter]
    fn port(&self) -> u16 {
        self.started().map_or(self.config.port, |h| h.port())
    }

    /// The host the server binds.
    #[getter]
    fn host(&self) -> &str {
        &self.config.host
    }

    /// The HTTP port once started (``None`` without ``http=``).
    #[getter]
    fn http_port(&self) -> Option<u16> {
        self.started().and_then(|h| h.http_addr()).map(|a| a.port())
    }

    /// The dashboard's URL once started (``None`` without ``http=``).
    #[getter]
    fn http_url(&self) -> Option<String> {
        self.started()
            .and_then(|h| h.http_addr())
            .map(|a| format!("http://{a}/"))
    }

    /// An iterator over the live events, as dicts (``event`` names the kind:
    /// ``client_connected``, ``id_assigned``, ``status_changed``, ``stats_sample``,
    /// ``file_rollover``, ``heartbeat_missed``, ``refused``, ``lagged``, and ``report`` last,
    /// after which it ends). Each wait releases the GIL; ``timeout`` bounds the wait for each
    /// event (LoadmonTimeoutError; 0 only takes what is there, None waits as long as it
    /// takes). A context manager: ``with server.events() as ev: ...`` closes it. Call it
    /// before clients connect to see them all.
    #[pyo3(signature = (timeout=None))]
    fn events(&self, py: Python<'_>, timeout: Arg<'_, '_>) -> PyResult<PyEvents> {
        guard(py, "Server.events", || {
            let timeout = timeout_arg(py, timeout)?;
            let events = core(py, self.handle(py)?.events())?;
            Ok(PyEvents::new(events, timeout))
        })
    }

    /// Whether the server has been started and has not stopped yet.
    #[getter]
    fn running(&self) -> bool {
        self.started().is_some_and(|h| !h.is_finished())
    }

    /// A live snapshot of every client so far (a tuple of ClientInfo; empty before start).
    #[getter]
    fn clients<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Server.clients", || {
            let snapshot = self.started().map(|h| h.snapshot()).unwrap_or_default();
            let json = serialized(py, serde_json::to_string(&snapshot))?;
            results(py)?.call_method1("_clients_from_json", (json,))
        })
    }

    /// The report so far (the final one after the server stopped).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Server.report", || {
            let r = self.handle(py)?.report();
            report_to_py(py, &r)
        })
    }

    /// Blocks (GIL released, Ctrl-C interrupts) until the server stops by itself and returns
    /// its report. ``timeout``: None waits as long as it takes, 0 only checks, else seconds;
    /// LoadmonTimeoutError (a TimeoutError) when it passes.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Arg<'_, '_>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Server.wait", || {
            let timeout = timeout_arg(py, timeout)?;
            let h = self.handle(py)?;
            let r = self.wait_report(py, h, timeout)?;
            report_to_py(py, &r)
        })
    }

    /// ``await server.wait_async()``: as wait(), without blocking the event loop.
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(
        slf: &Bound<'py, Self>,
        timeout: Arg<'_, 'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Server.wait_async", || {
            timeout_arg(py, timeout)?;
            py.import("loadmon._aio")?
                .call_method1("wait", (slf, timeout))
        })
    }

    /// Stops the server (running clients become ABORTED), writes its report files and returns
    /// the report; on a stopped server, returns the same report. StateError before start().
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "Server.stop", || {
            let h = self.handle(py)?;
            h.control().stop();
            let r = self.wait_report(py, h, None)?;
            report_to_py(py, &r)
        })
    }

    /// Starts the server (``with Server(...) as server:``).
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    /// Stops the server if it was started, whatever happened in the block.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        if self.started().is_some() {
            self.stop(py)?;
        }
        Ok(false)
    }

    /// Starts the server (``async with Server(...) as server:``); binding does not wait.
    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Server.__aenter__", || {
            py.import("loadmon._aio")?
                .call_method1("enter_server", (slf,))
        })
    }

    /// Stops the server if it was started, whatever happened in the block, and waits for its
    /// report (written to its files) without blocking the event loop.
    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        slf: &Bound<'py, Self>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Server.__aexit__", || {
            py.import("loadmon._aio")?
                .call_method1("exit_server", (slf,))
        })
    }

    /// Asks a started server to stop and returns at once (``wait()`` then returns its
    /// report); whether it was started. Used by ``async with``.
    fn _request_stop(&self) -> bool {
        match self.started() {
            Some(h) => {
                h.control().stop();
                true
            }
            None => false,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Server(host={}, port={}, running={})",
            py_repr(py, &self.config.host),
            self.port(),
            py_bool(self.running())
        )
    }
}
