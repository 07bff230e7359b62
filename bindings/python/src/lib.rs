//! `loadmon._loadmon`: the Python face of loadmon.
//!
//! Thin by design: it converts arguments and results, maps `loadmon::Error` to the exception
//! classes of `loadmon.errors`, and calls the core's blocking handle layer
//! (`loadmon::blocking`) with the GIL released. No engine logic lives here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, EventPoll, Events, ServerHandle};
use loadmon::client::{ClientConfig, ClientResult, Context, Workload};
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::server::ServerConfig;
use loadmon::{ClientReport, Error, Report};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

/// How often a blocking wait wakes up to let Ctrl-C through.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Maps a core error to its `loadmon.errors` class.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let name = match &e {
        Error::Config(_) => "ConfigError",
        Error::File { .. } => "FileError",
        Error::Net { .. } => "ConnectError",
        Error::Protocol(_) => "ProtocolError",
        Error::VersionMismatch { .. } => "VersionMismatchError",
        Error::Refused(_) => "RefusedError",
        Error::Disconnected(_) => "DisconnectedError",
        Error::Timeout(_) => "TimeoutError",
        Error::Workload(_) => "WorkloadError",
        Error::Interrupted(_) => "InterruptedError",
        Error::Internal(_) => "InternalError",
        _ => "LoadmonError",
    };
    match py
        .import("loadmon.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
    {
        Ok(cls) => PyErr::from_type(cls, e.to_string()),
        Err(import_error) => import_error,
    }
}

fn config_error(py: Python<'_>, msg: String) -> PyErr {
    to_py(py, Error::Config(msg))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Seconds (a Python float) to a Duration, or a ConfigError naming the argument.
fn seconds(py: Python<'_>, name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            config_error(
                py,
                format!("{name} must be a positive number of seconds, not {s}"),
            )
        })
}

/// Waits for `poll` with the GIL released, waking every 100 ms for Ctrl-C. On Ctrl-C,
/// `on_interrupt` runs and KeyboardInterrupt is raised; past `timeout`, TimeoutError saying
/// "`what` after N s".
fn wait_interruptibly<T: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    what: &str,
    mut poll: impl FnMut(Duration) -> Option<loadmon::Result<T>> + Send,
    on_interrupt: impl FnOnce(Python<'_>),
) -> PyResult<T> {
    let deadline = match timeout {
        None => None,
        Some(t) if t >= 0.0 && t.is_finite() => Some(Instant::now() + Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(config_error(
                py,
                format!("timeout must be >= 0 seconds, not {t}"),
            ))
        }
    };
    loop {
        let slice = match deadline {
            None => SIGNAL_POLL,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_POLL),
        };
        if let Some(r) = py.detach(|| poll(slice)) {
            return r.map_err(|e| to_py(py, e));
        }
        if let Err(interrupt) = py.check_signals() {
            on_interrupt(py);
            return Err(interrupt);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(to_py(
                py,
                Error::Timeout(format!("{what} after {:.1} s", timeout.unwrap_or_default())),
            ));
        }
    }
}

fn json_to_py<'py>(py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (json,))
}

/// One client as the report or a live snapshot shows it.
#[pyclass(name = "ClientInfo", module = "loadmon._loadmon", frozen, get_all)]
#[derive(Clone)]
struct PyClientInfo {
    id: u32,
    status: String,
    time_ran_s: f64,
    cpu_avg_pct: f64,
    mem_avg_pct: f64,
    files_written: u64,
    file_size_mb: u64,
    chunk_size_mb: u64,
    heartbeats: u64,
    stats_reports: u64,
    bytes_written: u64,
    throughput_mb_s: f64,
    reason: Option<String>,
    peer: Option<String>,
    protocol_version: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    cpu_core_avg_pct: Option<f64>,
    rss_avg_bytes: Option<u64>,
    rss_peak_bytes: Option<u64>,
    chunk_p50_ms: Option<f64>,
    chunk_p99_ms: Option<f64>,
    last_heartbeat_age_s: Option<f64>,
    cpu_last_pct: Option<f64>,
    mem_last_pct: Option<f64>,
    rss_last_bytes: Option<u64>,
    process_clients: Option<u32>,
    json: String,
}

impl From<&ClientReport> for PyClientInfo {
    fn from(c: &ClientReport) -> Self {
        PyClientInfo {
            id: c.id,
            status: c.status.as_str().to_string(),
            time_ran_s: c.time_ran_s,
            cpu_avg_pct: c.cpu_avg_pct,
            mem_avg_pct: c.mem_avg_pct,
            files_written: c.files_written,
            file_size_mb: c.file_size_mb,
            chunk_size_mb: c.chunk_size_mb,
            heartbeats: c.heartbeats,
            stats_reports: c.stats_reports,
            bytes_written: c.bytes_written,
            throughput_mb_s: c.throughput_mb_s,
            reason: c.reason.clone(),
            peer: c.peer.clone(),
            protocol_version: c.protocol_version.clone(),
            start_time: c.start_time.clone(),
            end_time: c.end_time.clone(),
            cpu_core_avg_pct: c.cpu_core_avg_pct,
            rss_avg_bytes: c.rss_avg_bytes,
            rss_peak_bytes: c.rss_peak_bytes,
            chunk_p50_ms: c.chunk_p50_ms,
            chunk_p99_ms: c.chunk_p99_ms,
            last_heartbeat_age_s: c.last_heartbeat_age_s,
            cpu_last_pct: c.cpu_last_pct,
            mem_last_pct: c.mem_last_pct,
            rss_last_bytes: c.rss_last_bytes,
            process_clients: c.process_clients,
            json: serde_json::to_string(c).unwrap_or_default(),
        }
    }
}

#[pymethods]
impl PyClientInfo {
    /// The fields as a dict (the JSON report's keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.json)
    }

    fn __repr__(&self) -> String {
        format!(
            "ClientInfo(id={}, status={:?}, time_ran_s={:.2}, files_written={})",
            self.id, self.status, self.time_ran_s, self.files_written
        )
    }
}

/// The server's report.
#[pyclass(name = "Report", module = "loadmon._loadmon", frozen)]
struct PyReport {
    inner: Report,
}

#[pymethods]
impl PyReport {
    /// Every client, in id order.
    #[getter]
    fn clients(&self) -> Vec<PyClientInfo> {
        self.inner.clients.iter().map(PyClientInfo::from).collect()
    }

    /// When the server started (RFC 3339).
    #[getter]
    fn start_time(&self) -> &str {
        &self.inner.start_time
    }

    /// When the server stopped (RFC 3339).
    #[getter]
    fn end_time(&self) -> &str {
        &self.inner.end_time
    }

    /// All clients together, as a dict.
    #[getter]
    fn total<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_string(&self.inner.total).unwrap_or_default(),
        )
    }

    /// The report as a dict (the JSON report's structure).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.to_json())
    }

    /// The JSON report.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// The clients as CSV (header row with the JSON field names, one row per client).
    fn to_csv(&self) -> String {
        self.inner.to_csv()
    }

    /// A self-contained HTML page: the report table and SVG charts of each client's
    /// throughput and CPU over time.
    fn to_html(&self) -> String {
        self.inner.to_html()
    }

    /// Each client's time series: a list of dicts `{"id": ..., "samples": [...]}`.
    #[getter]
    fn series<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_string(&self.inner.series).unwrap_or_else(|_| "[]".into()),
        )
    }

    /// The seed's text report.
    fn __str__(&self) -> String {
        self.inner.to_text()
    }

    fn __repr__(&self) -> String {
        format!(
            "Report(clients={}, passed={}, start_time={:?}, end_time={:?})",
            self.inner.total.clients,
            self.inner.total.passed,
            self.inner.start_time,
            self.inner.end_time
        )
    }
}

/// What a finished client run produced.
#[pyclass(name = "ClientResult", module = "loadmon._loadmon", frozen, get_all)]
struct PyClientResult {
    client_id: u32,
    files_written: u64,
    bytes_written: u64,
    run_time_s: f64,
    throughput_mb_s: f64,
    chunk_p50_ms: Option<f64>,
    chunk_p99_ms: Option<f64>,
    heartbeats_sent: u64,
    stats_sent: u64,
}

impl From<ClientResult> for PyClientResult {
    fn from(r: ClientResult) -> Self {
        PyClientResult {
            client_id: r.client_id,
            files_written: r.files_written,
            bytes_written: r.bytes_written,
            run_time_s: r.run_time_s,
            throughput_mb_s: r.throughput_mb_s,
            chunk_p50_ms: r.chunk_p50_ms,
            chunk_p99_ms: r.chunk_p99_ms,
            heartbeats_sent: r.heartbeats_sent,
            stats_sent: r.stats_sent,
        }
    }
}

#[pymethods]
impl PyClientResult {
    /// The fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("client_id", self.client_id)?;
        d.set_item("files_written", self.files_written)?;
        d.set_item("bytes_written", self.bytes_written)?;
        d.set_item("run_time_s", self.run_time_s)?;
        d.set_item("throughput_mb_s", self.throughput_mb_s)?;
        d.set_item("chunk_p50_ms", self.chunk_p50_ms)?;
        d.set_item("chunk_p99_ms", self.chunk_p99_ms)?;
        d.set_item("heartbeats_sent", self.heartbeats_sent)?;
        d.set_item("stats_sent", self.stats_sent)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "ClientResult(client_id={}, files_written={}, bytes_written={}, throughput_mb_s={:.2})",
            self.client_id, self.files_written, self.bytes_written, self.throughput_mb_s
        )
    }
}

/// The server.
#[pyclass(name = "Server", module = "loadmon._loadmon", frozen)]
struct PyServer {
    config: ServerConfig,
    handle: Mutex<Option<Arc<ServerHandle>>>,
}

impl PyServer {
    fn handle(&self, py: Python<'_>) -> PyResult<Arc<ServerHandle>> {
        lock(&self.handle).clone().ok_or_else(|| {
            to_py(
                py,
                Error::Config("the server is not started: call start() first".into()),
            )
        })
    }
}

#[pymethods]
impl PyServer {
    #[new]
    #[pyo3(signature = (host="127.0.0.1".to_string(), port=1234, max_clients=5, first_client_id=100,
        heartbeat_timeout=None, report_json=None, log_dir=None, handshake_timeout=None, token=None,
        http=None, http_linger=0.0, report_csv=None, report_html=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        max_clients: usize,
        first_client_id: u32,
        heartbeat_timeout: Option<f64>,
        report_json: Option<PathBuf>,
        log_dir: Option<PathBuf>,
        handshake_timeout: Option<f64>,
        token: Option<String>,
        http: Option<String>,
        http_linger: f64,
        report_csv: Option<PathBuf>,
        report_html: Option<PathBuf>,
    ) -> PyResult<Self> {
        let defaults = ServerConfig::default();
        let config = ServerConfig {
            host,
            port,
            max_clients,
            first_client_id,
            heartbeat_timeout: match heartbeat_timeout {
                Some(s) => seconds(py, "heartbeat_timeout", s)?,
                None => defaults.heartbeat_timeout,
            },
            handshake_timeout: match handshake_timeout {
                Some(s) => seconds(py, "handshake_timeout", s)?,
                None => defaults.handshake_timeout,
            },
            token,
            report_json,
            log_dir,
            http,
            http_linger: if http_linger == 0.0 {
                Duration::ZERO
            } else {
                seconds(py, "http_linger", http_linger)?
            },
            report_csv,
            report_html,
            ..defaults
        };
        config.validate().map_err(|e| to_py(py, e))?;
        Ok(PyServer {
            config,
            handle: Mutex::new(None),
        })
    }

    /// Binds and starts serving in the background; returns at once.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut slot = lock(&self.handle);
        if slot.is_some() {
            return Err(to_py(
                py,
                Error::Config("the server is already started".into()),
            ));
        }
        let config = self.config.clone();
        let handle = py
            .detach(|| ServerHandle::start(config))
            .map_err(|e| to_py(py, e))?;
        *slot = Some(Arc::new(handle));
        Ok(())
    }

    /// The port (the real one once started, when 0 was asked).
    #[getter]
    fn port(&self) -> u16 {
        lock(&self.handle)
            .as_ref()
            .map_or(self.config.port, |h| h.port())
    }

    /// The host the server binds.
    #[getter]
    fn host(&self) -> &str {
        &self.config.host
    }

    /// The HTTP port once started (`None` without `http=`).
    #[getter]
    fn http_port(&self) -> Option<u16> {
        lock(&self.handle)
            .as_ref()
            .and_then(|h| h.http_addr())
            .map(|a| a.port())
    }

    /// The dashboard's URL once started (`None` without `http=`).
    #[getter]
    fn http_url(&self) -> Option<String> {
        lock(&self.handle)
            .as_ref()
            .and_then(|h| h.http_addr())
            .map(|a| format!("http://{a}/"))
    }

    /// An iterator over the live events, as dicts (`event` names the kind: `client_connected`,
    /// `id_assigned`, `status_changed`, `stats_sample`, `file_rollover`, `heartbeat_missed`,
    /// `refused`, `lagged`, and `report` last). Each wait releases the GIL; `timeout` bounds
    /// the wait for each event (TimeoutError). Call it before clients connect to see them all.
    #[pyo3(signature = (timeout=None))]
    fn events(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyEvents> {
        let h = self.handle(py)?;
        if let Some(t) = timeout {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(config_error(
                    py,
                    format!("timeout must be >= 0 seconds, not {t}"),
                ));
            }
        }
        let events = h.events().map_err(|e| to_py(py, e))?;
        Ok(PyEvents {
            events: Mutex::new(Some(events)),
            timeout,
        })
    }

    /// Whether the server has been started and has not stopped yet.
    #[getter]
    fn running(&self) -> bool {
        lock(&self.handle)
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    /// A live snapshot of every client so far.
    fn clients(&self) -> Vec<PyClientInfo> {
        lock(&self.handle).as_ref().map_or_else(Vec::new, |h| {
            h.snapshot().iter().map(PyClientInfo::from).collect()
        })
    }

    /// The report so far (the final one after the server stopped).
    fn report(&self, py: Python<'_>) -> PyResult<PyReport> {
        Ok(PyReport {
            inner: self.handle(py)?.report(),
        })
    }

    /// Blocks until the server stops by itself and returns the report.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyReport> {
        let h = self.handle(py)?;
        let inner = wait_interruptibly(
            py,
            timeout,
            "the server is still running",
            |slice| h.try_wait(Some(slice)),
            |_| {},
        )?;
        Ok(PyReport { inner })
    }

    /// Stops the server (running clients become ABORTED) and returns the report.
    fn stop(&self, py: Python<'_>) -> PyResult<PyReport> {
        let h = self.handle(py)?;
        h.control().stop();
        self.wait(py, None)
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        if lock(&self.handle).is_some() {
            self.stop(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Server(host={:?}, port={}, running={})",
            self.config.host,
            self.port(),
            self.running()
        )
    }
}

/// The iterator `Server.events()` returns.
#[pyclass(name = "Events", module = "loadmon._loadmon", frozen)]
struct PyEvents {
    events: Mutex<Option<Events>>,
    timeout: Option<f64>,
}

#[pymethods]
impl PyEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Never wait for this lock with the GIL held: another thread may hold it while it
        // waits (GIL released) for an event and then needs the GIL back.
        let mut slot = match self.events.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(to_py(
                    py,
                    Error::Config(
                        "this events iterator is already in use by another thread".into(),
                    ),
                ))
            }
        };
        let Some(events) = slot.as_mut() else {
            return Ok(None);
        };
        let next = wait_interruptibly(
            py,
            self.timeout,
            "no event",
            |slice| match events.next_timeout(Some(slice)) {
                EventPoll::Event(e) => Some(Ok(Some(e))),
                EventPoll::Ended => Some(Ok(None)),
                EventPoll::Timeout => None,
            },
            |_| {},
        )?;
        match next {
            Some(e) => json_to_py(py, e.to_json_line().trim_end()).map(Some),
            None => {
                *slot = None;
                Ok(None)
            }
        }
    }
}

/// Starts a client run in `slot` unless one is still running there.
fn start_in(
    py: Python<'_>,
    slot: &Mutex<Option<Arc<ClientHandle>>>,
    spawn: impl FnOnce() -> loadmon::Result<ClientHandle> + Send,
) -> PyResult<Arc<ClientHandle>> {
    let mut slot = lock(slot);
    if slot.as_ref().is_some_and(|h| !h.is_finished()) {
        return Err(to_py(
            py,
            Error::Config("this client is already running".into()),
        ));
    }
    let handle = Arc::new(py.detach(spawn).map_err(|e| to_py(py, e))?);
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Cancels the run in `slot`, if any.
fn cancel_in(slot: &Mutex<Option<Arc<ClientHandle>>>) {
    if let Some(h) = lock(slot).as_ref() {
        h.cancel();
    }
}

/// Runs a client handle to the end, interruptibly; Ctrl-C cancels it.
fn run_handle(
    py: Python<'_>,
    h: Arc<ClientHandle>,
    timeout: Option<f64>,
) -> PyResult<PyClientResult> {
    let h2 = h.clone();
    wait_interruptibly(
        py,
        timeout,
        "the client is still running",
        |slice| h.try_join(Some(slice)),
        move |py| {
            h2.cancel();
            py.detach(|| {
                let _ = h2.join(Some(Duration::from_secs(10)));
            });
        },
    )
    .map(PyClientResult::from)
}

fn keep_files_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<KeepFiles> {
    if let Ok(n) = v.extract::<usize>() {
        if n == 0 {
            return Err(config_error(
                py,
                "keep_files must be at least 1 (or \"all\")".into(),
            ));
        }
        return Ok(KeepFiles::Last(n));
    }
    match v.extract::<String>() {
        Ok(s) => s.parse().map_err(|e| to_py(py, e)),
        Err(_) => Err(config_error(
            py,
            format!("keep_files must be a positive int or \"all\", not {v}"),
        )),
    }
}

/// The file-writing test client.
#[pyclass(name = "TestClient", module = "loadmon._loadmon", frozen)]
struct PyTestClient {
    client: ClientConfig,
    writer: FileWriterConfig,
    validated: Mutex<Option<FileWriter>>,
    handle: Mutex<Option<Arc<ClientHandle>>>,
}

impl PyTestClient {
    fn spawn(&self, py: Python<'_>) -> PyResult<Arc<ClientHandle>> {
        let validated = lock(&self.validated).take();
        let (client, writer) = (self.client.clone(), self.writer.clone());
        start_in(py, &self.handle, move || {
            let w = match validated {
                Some(w) => w,
                None => FileWriter::new(writer)?,
            };
            ClientHandle::spawn(client, w)
        })
    }
}

#[pymethods]
impl PyTestClient {
    #[new]
    #[pyo3(signature = (host="127.0.0.1".to_string(), port=1234, run_time=15.0, chunk_size=10,
        file_size=50, out_dir=PathBuf::from("client_files"), sync="none".to_string(), keep_files=None,
        min_chunk_size=10, heartbeat_period=5.0, stats_period=10.0, connect_timeout=5.0, token=None,
        log_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        run_time: f64,
        chunk_size: u64,
        file_size: u64,
        out_dir: PathBuf,
        sync: String,
        keep_files: Option<&Bound<'_, PyAny>>,
        min_chunk_size: u64,
        heartbeat_period: f64,
        stats_period: f64,
        connect_timeout: f64,
        token: Option<String>,
        log_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let client = ClientConfig {
            host,
            port,
            heartbeat_period: seconds(py, "heartbeat_period", heartbeat_period)?,
            stats_period: seconds(py, "stats_period", stats_period)?,
            connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
            token,
            log_dir,
            ..Default::default()
        };
        client.validate().map_err(|e| to_py(py, e))?;
        let writer = FileWriterConfig {
            run_time_s: run_time,
            chunk_size_mb: chunk_size,
            file_size_mb: file_size,
            min_chunk_size_mb: min_chunk_size,
            out_dir,
            sync: sync.parse::<SyncMode>().map_err(|e| to_py(py, e))?,
            keep_files: match keep_files {
                Some(v) => keep_files_arg(py, v)?,
                None => KeepFiles::default(),
            },
        };
        let w = writer.clone();
        let validated = py.detach(|| FileWriter::new(w)).map_err(|e| to_py(py, e))?;
        Ok(PyTestClient {
            client,
            writer,
            validated: Mutex::new(Some(validated)),
            handle: Mutex::new(None),
        })
    }

    /// Connects, writes files for the run time, returns the result (GIL released).
    fn run(&self, py: Python<'_>) -> PyResult<PyClientResult> {
        let h = self.spawn(py)?;
        run_handle(py, h, None)
    }

    /// Starts the run in the background; `join()` waits for its result.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.spawn(py).map(|_| ())
    }

    /// Waits for the result of `start()`.
    #[pyo3(signature = (timeout=None))]
    fn join(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyClientResult> {
        let h = lock(&self.handle).clone().ok_or_else(|| {
            to_py(
                py,
                Error::Config("the client is not started: call start() first".into()),
            )
        })?;
        run_handle(py, h, timeout)
    }

    /// Asks a running client to stop (its join() then raises InterruptedError).
    fn cancel(&self) {
        cancel_in(&self.handle);
    }

    /// Run time, seconds.
    #[getter]
    fn run_time(&self) -> f64 {
        self.writer.run_time_s
    }

    /// Chunk size, MB.
    #[getter]
    fn chunk_size(&self) -> u64 {
        self.writer.chunk_size_mb
    }

    /// File size, MB.
    #[getter]
    fn file_size(&self) -> u64 {
        self.writer.file_size_mb
    }

    /// Directory of the data files.
    #[getter]
    fn out_dir(&self) -> PathBuf {
        self.writer.out_dir.clone()
    }

    /// Durability mode: "none", "file" or "direct".
    #[getter]
    fn sync(&self) -> String {
        self.writer.sync.to_string()
    }

    /// Finished files kept: a number or "all".
    #[getter]
    fn keep_files(&self) -> String {
        self.writer.keep_files.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "TestClient(host={:?}, port={}, run_time={}, chunk_size={}, file_size={})",
            self.client.host,
            self.client.port,
            self.writer.run_time_s,
            self.writer.chunk_size_mb,
            self.writer.file_size_mb
        )
    }
}

/// What `Client.run_tests` gets: the client id, reporting, and whether to stop.
#[pyclass(name = "Context", module = "loadmon._loadmon", frozen)]
struct PyContext {
    inner: Context,
}

#[pymethods]
impl PyContext {
    /// The id the server assigned.
    #[getter]
    fn client_id(&self) -> u32 {
        self.inner.client_id()
    }

    /// True once the run should end (run time over, server gone, or cancelled).
    #[getter]
    fn stopped(&self) -> bool {
        self.inner.time_is_up()
    }

    /// Seconds left of the run time, or None if the client has none.
    #[getter]
    fn remaining(&self) -> Option<f64> {
        self.inner.remaining().map(|d| d.as_secs_f64())
    }

    /// Seconds since run_tests was called.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.elapsed().as_secs_f64()
    }

    /// Reports one completed file (`file_roll`).
    fn file_rollover(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.file_rollover().map_err(|e| to_py(py, e))
    }

    /// Records one write of `n_bytes` that took `seconds`.
    fn record_write(&self, py: Python<'_>, n_bytes: u64, seconds: f64) -> PyResult<()> {
        let d = Duration::try_from_secs_f64(seconds)
            .map_err(|_| config_error(py, format!("seconds must be >= 0, not {seconds}")))?;
        self.inner
            .record_write(n_bytes, d)
            .map_err(|e| to_py(py, e))
    }

    /// Sends `send_stats:<cpu_pct>:<mem_pct>`.
    fn send_stats(&self, py: Python<'_>, cpu_pct: f64, mem_pct: f64) -> PyResult<()> {
        self.inner
            .send_stats(cpu_pct, mem_pct)
            .map_err(|e| to_py(py, e))
    }

    /// Files reported so far.
    #[getter]
    fn files_written(&self) -> u64 {
        self.inner.files_written()
    }

    /// Bytes recorded so far.
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }
}

/// A Python object's `run_tests(ctx)` as a core workload.
struct PyWorkload {
    obj: Py<PyAny>,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
}

impl Workload for PyWorkload {
    fn file_stats(&self) -> Option<(u64, u64)> {
        self.file_stats
    }

    fn run_time(&self) -> Option<Duration> {
        self.run_time
    }

    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        Python::attach(|py| {
            let call = Py::new(py, PyContext { inner: ctx.clone() })
                .and_then(|c| self.obj.call_method1(py, "run_tests", (c,)));
            call.map(|_| ()).map_err(|e| {
                let kind = e
                    .get_type(py)
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "Exception".into());
                Error::Workload(format!("{kind}: {}", e.value(py)))
            })
        })
    }
}

#[derive(Clone)]
struct ClientSettings {
    config: ClientConfig,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
}

/// The generic client, to subclass: implement `run_tests(self, ctx)`.
#[pyclass(name = "Client", module = "loadmon._loadmon", subclass, frozen)]
struct PyClient {
    settings: Mutex<ClientSettings>,
    handle: Mutex<Option<Arc<ClientHandle>>>,
}

#[pymethods]
impl PyClient {
    /// Accepts any arguments so that subclasses can have their own `__init__`.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyClient {
            settings: Mutex::new(ClientSettings {
                config: ClientConfig::default(),
                run_time: None,
                file_stats: None,
            }),
            handle: Mutex::new(None),
        }
    }

    #[pyo3(signature = (host="127.0.0.1".to_string(), port=1234, heartbeat_period=5.0,
        stats_period=10.0, run_time=None, chunk_size=None, file_size=None, connect_timeout=5.0,
        token=None, log_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn __init__(
        &self,
        py: Python<'_>,
        host: String,
        port: u16,
        heartbeat_period: f64,
        stats_period: f64,
        run_time: Option<f64>,
        chunk_size: Option<u64>,
        file_size: Option<u64>,
        connect_timeout: f64,
        token: Option<String>,
        log_dir: Option<PathBuf>,
    ) -> PyResult<()> {
        let config = ClientConfig {
            host,
            port,
            heartbeat_period: seconds(py, "heartbeat_period", heartbeat_period)?,
            stats_period: seconds(py, "stats_period", stats_period)?,
            connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
            token,
            log_dir,
            ..Default::default()
        };
        config.validate().map_err(|e| to_py(py, e))?;
        let file_stats = match (chunk_size, file_size) {
            (Some(c), Some(f)) => Some((c, f)),
            (None, None) => None,
            _ => {
                return Err(config_error(
                    py,
                    "chunk_size and file_size go together (both or neither)".into(),
                ))
            }
        };
        *lock(&self.settings) = ClientSettings {
            config,
            run_time: run_time.map(|s| seconds(py, "run_time", s)).transpose()?,
            file_stats,
        };
        Ok(())
    }

    /// Override this: the test to run once the server says `run_tests`.
    fn run_tests(&self, _ctx: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "subclasses of loadmon.Client must implement run_tests(self, ctx)",
        ))
    }

    /// Connects, calls `run_tests(ctx)` after `run_tests` from the server, sends `done`.
    fn run(slf: &Bound<'_, Self>) -> PyResult<PyClientResult> {
        let py = slf.py();
        let this = slf.get();
        let s = lock(&this.settings).clone();
        let workload = PyWorkload {
            obj: slf.clone().into_any().unbind(),
            run_time: s.run_time,
            file_stats: s.file_stats,
        };
        let h = start_in(py, &this.handle, move || {
            ClientHandle::spawn(s.config, workload)
        })?;
        run_handle(py, h, None)
    }

    /// Asks a running client to stop.
    fn cancel(&self) {
        cancel_in(&self.handle);
    }

    /// The server host.
    #[getter]
    fn host(&self) -> String {
        lock(&self.settings).config.host.clone()
    }

    /// The server port.
    #[getter]
    fn port(&self) -> u16 {
        lock(&self.settings).config.port
    }
}

/// Tells the server that a client cannot run (it failed validation, say): the client gets an
/// id and the report lists it as FAILED with `reason`. Returns the id.
#[pyfunction]
#[pyo3(signature = (reason, host="127.0.0.1".to_string(), port=1234, chunk_size=None,
    file_size=None, connect_timeout=5.0, token=None))]
#[allow(clippy::too_many_arguments)]
fn report_failure(
    py: Python<'_>,
    reason: String,
    host: String,
    port: u16,
    chunk_size: Option<u64>,
    file_size: Option<u64>,
    connect_timeout: f64,
    token: Option<String>,
) -> PyResult<u32> {
    let config = ClientConfig {
        host,
        port,
        connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
        token,
        ..Default::default()
    };
    let file_stats = chunk_size.zip(file_size);
    py.detach(|| loadmon::blocking::report_failure(config, file_stats, &reason))
        .map_err(|e| to_py(py, e))
}

/// The native module behind `import loadmon`.
#[pymodule]
fn _loadmon(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust log records → Python logging, logger "loadmon" (and its children). Levels are not
    // cached, so logging configuration done after import (basicConfig, caplog) takes effect.
    let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
    m.add("__version__", loadmon::VERSION)?;
    let (major, minor) = loadmon::protocol::PROTOCOL_VERSION;
    m.add("PROTOCOL_VERSION", format!("{major}.{minor}"))?;
    m.add_class::<PyServer>()?;
    m.add_class::<PyTestClient>()?;
    m.add_class::<PyClient>()?;
    m.add_class::<PyContext>()?;
    m.add_class::<PyReport>()?;
    m.add_class::<PyEvents>()?;
    m.add_class::<PyClientInfo>()?;
    m.add_class::<PyClientResult>()?;
    m.add_function(wrap_pyfunction!(report_failure, m)?)?;
    Ok(())
}
