//! `loadmon._loadmon`: the Python face of loadmon.
//!
//! Thin by design: it converts Python values to the core's types with the core's rules
//! (`loadmon::config`), maps `Error::kind()` to the exception classes of `loadmon.errors`, and
//! calls the core's blocking handle layer (`loadmon::blocking`). It decides no bound, default or
//! error of its own. Three rules hold everywhere:
//!
//! - **No panic crosses into Python**: every entry point runs under [`guard`], which turns a
//!   Rust panic into `loadmon.InternalError` (pyo3's `PanicException` is a `BaseException`).
//! - **Nothing blocks with the GIL held**: every wait runs in `py.detach`, in slices so Ctrl-C
//!   gets through; no `Mutex` of this module is held across `py.detach` or a Python call, so a
//!   second thread can always read `port` or `cancel()` while another waits.
//! - **The engine's threads never need the GIL**: log records go into a bounded queue
//!   ([`LOG`]) that `loadmon._logging` drains on a Python thread of its own. Only a generic
//!   client's `run_tests` (user Python code) takes the GIL, on its own thread.
//!
//! Results (`Report`, `ClientInfo`, `ClientResult`) are plain frozen Python dataclasses of
//! `loadmon._results`, built from the core's JSON.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, EventPoll, Events, ServerHandle, WorkerHandle, WriterCheck};
use loadmon::client::{ClientConfig, ClientResult, Context, Workload};
use loadmon::config::{self, Integer, Zero};
use loadmon::error::ErrorKind;
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::logging::{set_log_sink, LogLevel, LogRecord, LogSink};
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::{WorkerConfig, WorkerSummary};
use loadmon::{Error, Report};
use pyo3::exceptions::{PyException, PyOverflowError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType, PyWeakrefMethods, PyWeakrefReference};

/// How often a blocking wait wakes up to let Ctrl-C through.
const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// How long Ctrl-C in a client's `run()`/`join()` waits for the cancelled run to end before
/// KeyboardInterrupt is raised (a run_tests that ignores `ctx.stopped` is not waited for).
const CANCEL_GRACE: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Errors, panics, conversions
// ---------------------------------------------------------------------------------------------

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
fn to_py(py: Python<'_>, e: &Error) -> PyErr {
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

fn config_error(py: Python<'_>, msg: String) -> PyErr {
    to_py(py, &Error::Config(msg))
}

fn state_error(py: Python<'_>, msg: &str) -> PyErr {
    to_py(py, &Error::State(msg.into()))
}

/// Runs an entry point; a Rust panic in it becomes `loadmon.InternalError` naming `what`.
fn guard<T>(py: Python<'_>, what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(to_py(py, &Error::from_panic(what, p.as_ref()))))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A Python int as the setting's integer type, with the core's range check: out of range
/// (`port=-1`, `port=70000`, `2**200`) is a ConfigError; a non-integer a TypeError.
fn int_arg<T: Integer>(py: Python<'_>, name: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    reject_bool(name, v)?;
    match v.extract::<i128>() {
        Ok(i) => config::integer::<T>(name, i).map_err(|e| to_py(py, &e)),
        // Beyond i128: certainly out of range.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(config_error(
            py,
            format!("{name} must be from {} to {}, not {v}", T::LOW, T::HIGH),
        )),
        Err(e) => Err(e),
    }
}

/// `True`/`False` where an int is expected (`port=True`) is a TypeError, not 1 or 0.
fn reject_bool(name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be an int, not bool"
        )));
    }
    Ok(())
}

/// An optional Python int for a setting with a rule of the core's (`config::CLIENTS`, …): out
/// of the rule's range is a ConfigError stating it (`expect_clients=-1`: "from 1 to 1000000").
fn opt_count_arg<T: Integer>(
    py: Python<'_>,
    name: &str,
    v: Option<&Bound<'_, PyAny>>,
    rule: config::Count,
) -> PyResult<Option<T>> {
    v.map(|v| {
        reject_bool(name, v)?;
        match v.extract::<i128>() {
            Ok(i) => rule.get::<T>(name, i).map_err(|e| to_py(py, &e)),
            Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
                Err(to_py(py, &rule.error(name, v)))
            }
            Err(e) => Err(e),
        }
    })
    .transpose()
}

fn opt_int_arg<T: Integer>(
    py: Python<'_>,
    name: &str,
    v: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<T>> {
    v.map(|v| int_arg(py, name, v)).transpose()
}

/// A Python number of seconds as an `f64`; an int too large for a float is infinite (and then
/// refused by the core's bounds), a non-number a TypeError, and so is a bool (`retry_max=True`
/// is a slip, not one second).
fn float_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not bool"
        )));
    }
    match v.extract::<f64>() {
        Ok(f) => Ok(f),
        Err(e) if e.is_instance_of::<PyOverflowError>(v.py()) => Ok(if v.lt(0)? {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        Err(e) => Err(e),
    }
}

/// Seconds as a Duration with the core's bounds (finite, ≤ 10^9 s, positive unless `zero`).
fn secs_arg(py: Python<'_>, name: &str, v: &Bound<'_, PyAny>, zero: Zero) -> PyResult<Duration> {
    config::seconds(name, float_arg(name, v)?, zero).map_err(|e| to_py(py, &e))
}

/// An optional seconds argument with its bounds; `None` is the core's `default`.
fn opt_secs_arg(
    py: Python<'_>,
    name: &str,
    v: Option<&Bound<'_, PyAny>>,
    zero: Zero,
    default: Duration,
) -> PyResult<Duration> {
    v.map_or(Ok(default), |v| secs_arg(py, name, v, zero))
}

/// A wait's `timeout`: `None` waits as long as it takes, `0` polls, else that many seconds.
fn timeout_arg(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let t = v.map(|v| float_arg("timeout", v)).transpose()?;
    config::wait_timeout_s(t).map_err(|e| to_py(py, &e))
}

fn path_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<PathBuf>> {
    v.map(|v| v.extract::<PathBuf>()).transpose()
}

/// Waits for `poll` with the GIL released, waking every 100 ms for Ctrl-C. On Ctrl-C,
/// `on_interrupt` runs and KeyboardInterrupt is raised; past `timeout`, LoadmonTimeoutError
/// saying "`what` after N s". No lock is held meanwhile.
fn wait_interruptibly<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    what: &str,
    mut poll: impl FnMut(Duration) -> Option<loadmon::Result<T>> + Send,
    on_interrupt: impl FnOnce(Python<'_>),
) -> PyResult<loadmon::Result<T>> {
    // A deadline too far to represent is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            None => SIGNAL_POLL,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_POLL),
        };
        if let Some(r) = py.detach(|| poll(slice)) {
            flush_logs(py);
            return Ok(r);
        }
        if let Err(interrupt) = py.check_signals() {
            on_interrupt(py);
            return Err(interrupt);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let t = timeout.unwrap_or_default().as_secs_f64();
            return Err(to_py(py, &Error::Timeout(format!("{what} after {t:.1} s"))));
        }
    }
}

fn results(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("loadmon._results")
}

fn report_to_py<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyAny>> {
    results(py)?
        .getattr("Report")?
        .call_method1("_from_json", (r.to_json(),))
}

fn result_to_py<'py>(py: Python<'py>, r: &ClientResult) -> PyResult<Bound<'py, PyAny>> {
    results(py)?
        .getattr("ClientResult")?
        .call_method1("_from_json", (r.to_json(),))
}

/// Python repr of a string (quotes as Python writes them).
fn py_repr(py: Python<'_>, s: &str) -> String {
    pyo3::types::PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Lets `loadmon._logging` set the engine's log level from the loggers' current levels before
/// an engine starts, so that a level set just before is honoured from the first record.
fn sync_log_level(py: Python<'_>) {
    if let Ok(m) = py.import("loadmon._logging") {
        let _ = m.call_method0("sync_level");
    }
}

// ---------------------------------------------------------------------------------------------
// Log records: a bounded queue filled by the engine's threads, drained by Python
// ---------------------------------------------------------------------------------------------

/// Records Python may fall behind by before new ones are counted and dropped.
const LOG_CAPACITY: usize = 10_000;
/// Records handed to Python per call.
const LOG_BATCH: usize = 1_000;

struct LogItems {
    records: VecDeque<(u8, &'static str, String)>,
    dropped: u64,
    woken: bool,
}

struct LogQueue {
    items: Mutex<LogItems>,
    ready: Condvar,
}

/// The log queue: the sink pushes (never waits for Python), `_log_next` pops.
static LOG: LogQueue = LogQueue {
    items: Mutex::new(LogItems {
        records: VecDeque::new(),
        dropped: 0,
        woken: false,
    }),
    ready: Condvar::new(),
};

fn log_sink(r: &LogRecord<'_>) {
    // Never blocks while the process forks (`_fork_prepare` holds the lock then): a thread
    // blocked here at the fork would leave the core's locks held in the child.
    let mut g = loop {
        match LOG.items.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if FORKING.load(Ordering::SeqCst) => return,
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    };
    if g.records.len() >= LOG_CAPACITY {
        g.dropped += 1;
        return;
    }
    g.records
        .push_back((r.level as u8, r.target, r.message.to_string()));
    drop(g);
    LOG.ready.notify_one();
}

/// The queued log records, `(level, target, message)` with level 1 debug, 2 info, 3 warning;
/// waits up to `timeout` seconds (GIL released) for the first one. Used by `loadmon._logging`.
#[pyfunction]
fn _log_next(py: Python<'_>, timeout: f64) -> PyResult<Vec<(u8, &'static str, String)>> {
    guard(py, "_log_next", || {
        let wait = Duration::try_from_secs_f64(timeout.clamp(0.0, 60.0)).unwrap_or_default();
        Ok(py.detach(|| {
            let mut g = lock(&LOG.items);
            let deadline = Instant::now() + wait;
            while g.records.is_empty() && !g.woken {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = LOG
                    .ready
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            g.woken = false;
            let mut out = Vec::new();
            if g.dropped > 0 {
                let msg = format!(
                    "{} log record(s) dropped: Python's logging fell more than {LOG_CAPACITY} behind",
                    g.dropped
                );
                out.push((LogLevel::Warn as u8, "loadmon::client", msg));
                g.dropped = 0;
            }
            let n = g.records.len().min(LOG_BATCH);
            out.extend(g.records.drain(..n));
            out
        }))
    })
}

/// Waits up to `timeout` seconds (GIL released) until a record is queued or `_log_wake` is
/// called; whether records are queued. Takes none out (`_log_next(0)` does).
#[pyfunction]
fn _log_wait(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    guard(py, "_log_wait", || {
        let wait = Duration::try_from_secs_f64(timeout.clamp(0.0, 60.0)).unwrap_or_default();
        Ok(py.detach(|| {
            let mut g = lock(&LOG.items);
            let deadline = Instant::now() + wait;
            while g.records.is_empty() && g.dropped == 0 && !g.woken {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = LOG
                    .ready
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            g.woken = false;
            !g.records.is_empty() || g.dropped > 0
        }))
    })
}

/// Emits on the calling thread the log records queued so far (`loadmon._logging.flush`), so
/// that what the engine logged before a blocking call returned is logged when it returns.
fn flush_logs(py: Python<'_>) {
    if let Ok(m) = py.import("loadmon._logging") {
        let _ = m.call_method0("flush");
    }
}

/// Empties the log queue without emitting it (interpreter exit past its deadline); how many
/// records were queued or dropped.
#[pyfunction]
fn _log_discard(py: Python<'_>) -> PyResult<u64> {
    guard(py, "_log_discard", || {
        let mut g = lock(&LOG.items);
        let n = g.records.len() as u64 + g.dropped;
        g.records.clear();
        g.dropped = 0;
        Ok(n)
    })
}

/// Set while `os.fork()` runs (between `_fork_prepare` and `_fork_parent`/`_fork_child`).
static FORKING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The log queue's lock, held by the forking thread across the fork: no thread holds it
    /// at the fork, so the child's copy of it is free.
    static FORK_GUARD: std::cell::RefCell<Option<MutexGuard<'static, LogItems>>> =
        const { std::cell::RefCell::new(None) };
}

/// `os.fork()` is about to run (`os.register_at_fork(before=...)`): takes the log queue's
/// lock (its holders never need the GIL) until `_fork_parent`/`_fork_child`.
#[pyfunction]
fn _fork_prepare(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_prepare", || {
        FORKING.store(true, Ordering::SeqCst);
        let g = lock(&LOG.items);
        FORK_GUARD.with(|f| *f.borrow_mut() = Some(g));
        Ok(())
    })
}

/// `os.fork()` returned in the parent: releases the log queue.
#[pyfunction]
fn _fork_parent(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_parent", || {
        FORK_GUARD.with(|f| f.borrow_mut().take());
        FORKING.store(false, Ordering::SeqCst);
        Ok(())
    })
}

/// `os.fork()` returned in the child: the parent's servers and clients have no thread here
/// (interpreter exit must not wait for them) and its queued log records are the parent's
/// (its log thread emits them): both are forgotten, and the log queue is released.
#[pyfunction]
fn _fork_child(py: Python<'_>) -> PyResult<()> {
    guard(py, "_fork_child", || {
        lock(&LIVE).clear();
        FORK_GUARD.with(|f| {
            if let Some(g) = f.borrow_mut().as_mut() {
                g.records.clear();
                g.dropped = 0;
                g.woken = false;
            }
            f.borrow_mut().take()
        });
        FORKING.store(false, Ordering::SeqCst);
        Ok(())
    })
}

/// Wakes a `_log_next` that is waiting (the log thread is stopping).
#[pyfunction]
fn _log_wake(py: Python<'_>) -> PyResult<()> {
    guard(py, "_log_wake", || {
        lock(&LOG.items).woken = true;
        LOG.ready.notify_all();
        Ok(())
    })
}

/// Sets the lowest level the engine sends (a `logging` level number; None: no records).
#[pyfunction]
#[pyo3(signature = (level))]
fn _log_level(py: Python<'_>, level: Option<i64>) -> PyResult<()> {
    guard(py, "_log_level", || {
        let level = level.map(|l| match l {
            i64::MIN..=10 => LogLevel::Debug,
            11..=20 => LogLevel::Info,
            _ => LogLevel::Warn,
        });
        set_log_sink(level.map(|l| (l, Arc::new(log_sink) as LogSink)));
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Handles still running at interpreter exit
// ---------------------------------------------------------------------------------------------

enum Live {
    Server(Weak<ServerHandle>),
    Client(Weak<ClientHandle>),
    Worker(Weak<WorkerHandle>),
}

impl Live {
    fn alive(&self) -> bool {
        match self {
            Live::Server(w) => w.strong_count() > 0,
            Live::Client(w) => w.strong_count() > 0,
            Live::Worker(w) => w.strong_count() > 0,
        }
    }
}

/// Every server, client and worker this process started and still holds, so that interpreter exit
/// stops them (and the servers write their reports) before Python is torn down.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

fn register(l: Live) {
    let mut g = lock(&LIVE);
    g.retain(Live::alive);
    g.push(l);
}

/// Cancels every running client and worker and stops every running server, then waits (GIL released) up
/// to `timeout` seconds for them all. Called by `loadmon._logging` at interpreter exit.
#[pyfunction]
fn _shutdown(py: Python<'_>, timeout: f64) -> PyResult<()> {
    guard(py, "_shutdown", || {
        let live: Vec<Live> = std::mem::take(&mut *lock(&LIVE));
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        let mut workers = Vec::new();
        for l in live {
            match l {
                Live::Server(w) => servers.extend(w.upgrade()),
                Live::Client(w) => clients.extend(w.upgrade()),
                Live::Worker(w) => workers.extend(w.upgrade()),
            }
        }
        let wait = Duration::try_from_secs_f64(timeout.clamp(0.0, 60.0)).unwrap_or_default();
        py.detach(|| {
            let deadline = Instant::now() + wait;
            for c in &clients {
                c.cancel();
            }
            for w in &workers {
                w.cancel();
            }
            for s in &servers {
                s.control().stop();
                s.close_http();
            }
            for c in &clients {
                let _ = c.try_join(Some(deadline.saturating_duration_since(Instant::now())));
            }
            for w in &workers {
                let _ = w.try_join(Some(deadline.saturating_duration_since(Instant::now())));
            }
            for s in &servers {
                let _ = s.try_wait(Some(deadline.saturating_duration_since(Instant::now())));
            }
            // The run_tests still running had their time: their clients stop waiting.
            PY_GONE.store(true, Ordering::SeqCst);
        });
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Module functions
// ---------------------------------------------------------------------------------------------

/// Renders a JSON report as `text` (the seed's report), `csv` or `html`.
#[pyfunction]
fn _render_report(py: Python<'_>, json: &str, format: &str) -> PyResult<String> {
    guard(py, "_render_report", || {
        let r = Report::from_json(json).map_err(|e| to_py(py, &e))?;
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

/// Panics inside the guard (for the tests: a panic must surface as InternalError).
#[pyfunction]
fn _test_panic(py: Python<'_>, message: &str) -> PyResult<()> {
    guard(py, "_test_panic", || panic!("{message}"))
}

fn keep_files_to_py<'py>(py: Python<'py>, k: KeepFiles) -> PyResult<Bound<'py, PyAny>> {
    Ok(match k.count() {
        Some(n) => n.into_pyobject(py)?.into_any(),
        None => "all".into_pyobject(py)?.into_any(),
    })
}

/// The core's defaults, as the signatures show them: `{"server": {...}, "client": {...},
/// "test_client": {...}, "plan": {...}, "worker": {...}}` (seconds as floats).
#[pyfunction]
fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    guard(py, "defaults", || {
        let s = ServerConfig::default();
        let c = ClientConfig::default();
        let w = FileWriterConfig::default();
        let server = PyDict::new(py);
        server.set_item("host", &s.host)?;
        server.set_item("port", s.port)?;
        server.set_item("max_clients", s.max_clients)?;
        server.set_item("first_client_id", s.first_client_id)?;
        server.set_item("heartbeat_timeout", s.heartbeat_timeout.as_secs_f64())?;
        server.set_item("handshake_timeout", s.handshake_timeout.as_secs_f64())?;
        server.set_item("http_linger", s.http_linger.as_secs_f64())?;
        server.set_item("token", s.token)?;
        server.set_item("allow_clear_token", s.allow_clear_token)?;
        server.set_item("http", s.http)?;
        server.set_item("http_allow_hosts", PyTuple::new(py, &s.http_allow_hosts)?)?;
        server.set_item("report_json", s.report_json)?;
        server.set_item("report_csv", s.report_csv)?;
        server.set_item("report_html", s.report_html)?;
        server.set_item("log_dir", s.log_dir)?;
        let client = PyDict::new(py);
        client.set_item("host", &c.host)?;
        client.set_item("port", c.port)?;
        client.set_item("heartbeat_period", c.heartbeat_period.as_secs_f64())?;
        client.set_item("stats_period", c.stats_period.as_secs_f64())?;
        client.set_item("connect_timeout", c.connect_timeout.as_secs_f64())?;
        client.set_item("token", &c.token)?;
        client.set_item("allow_clear_token", c.allow_clear_token)?;
        client.set_item("log_dir", &c.log_dir)?;
        let test_client = client.copy()?;
        test_client.set_item("run_time", w.run_time_s)?;
        test_client.set_item("chunk_size", w.chunk_size_mb)?;
        test_client.set_item("file_size", w.file_size_mb)?;
        test_client.set_item("min_chunk_size", w.min_chunk_size_mb)?;
        test_client.set_item("out_dir", w.out_dir.to_string_lossy())?;
        test_client.set_item("sync", w.sync.to_string())?;
        test_client.set_item("keep_files", keep_files_to_py(py, w.keep_files)?)?;
        client.set_item("run_time", py.None())?;
        client.set_item("chunk_size", py.None())?;
        client.set_item("file_size", py.None())?;
        server.set_item("expect_clients", py.None())?;
        server.set_item("plan", py.None())?;
        server.set_item("start_timeout", py.None())?;
        let p = Plan::default();
        let plan = PyDict::new(py);
        plan.set_item("run_time", p.run_time_s)?;
        plan.set_item("chunk_size", p.chunk_size_mb)?;
        plan.set_item("file_size", p.file_size_mb)?;
        plan.set_item("min_chunk_size", p.min_chunk_size_mb)?;
        plan.set_item("sync", p.sync.to_string())?;
        plan.set_item("keep_files", keep_files_to_py(py, p.keep_files)?)?;
        let wd = WorkerConfig::default();
        let worker = client.copy()?;
        for k in ["run_time", "chunk_size", "file_size"] {
            worker.del_item(k)?;
        }
        worker.set_item("out_dir", wd.out_dir.to_string_lossy())?;
        worker.set_item("stay", wd.stay)?;
        worker.set_item("retry_max", wd.retry_max.as_secs_f64())?;
        worker.set_item("max_chunk_mb", wd.max_chunk_mb)?;
        worker.set_item("max_run_time", wd.max_run_time.as_secs_f64())?;
        worker.set_item("max_disk_mb", wd.max_disk_mb)?;
        let d = PyDict::new(py);
        d.set_item("server", server)?;
        d.set_item("client", client)?;
        d.set_item("test_client", test_client)?;
        d.set_item("plan", plan)?;
        d.set_item("worker", worker)?;
        Ok(d)
    })
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

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
/// Durations are seconds (floats), from more than 0 to 10**9; numbers out of range raise
/// ConfigError (a ValueError). ``None`` for any argument means the core's default, which the
/// signature shows (``loadmon._loadmon.defaults()``).
#[pyclass(name = "Server", module = "loadmon._loadmon", frozen)]
struct PyServer {
    config: ServerConfig,
    state: Mutex<ServerState>,
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
        allow_clear_token=None),
        text_signature = "(host='127.0.0.1', port=1234, max_clients=5, first_client_id=100, \
            heartbeat_timeout=15.0, report_json=None, log_dir=None, handshake_timeout=10.0, \
            token=None, http=None, http_linger=0.0, report_csv=None, report_html=None, \
            expect_clients=None, plan=None, start_timeout=None, http_allow_hosts=(), \
            allow_clear_token=False)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: Option<String>,
        port: Option<&Bound<'_, PyAny>>,
        max_clients: Option<&Bound<'_, PyAny>>,
        first_client_id: Option<&Bound<'_, PyAny>>,
        heartbeat_timeout: Option<&Bound<'_, PyAny>>,
        report_json: Option<&Bound<'_, PyAny>>,
        log_dir: Option<&Bound<'_, PyAny>>,
        handshake_timeout: Option<&Bound<'_, PyAny>>,
        token: Option<String>,
        http: Option<String>,
        http_linger: Option<&Bound<'_, PyAny>>,
        report_csv: Option<&Bound<'_, PyAny>>,
        report_html: Option<&Bound<'_, PyAny>>,
        expect_clients: Option<&Bound<'_, PyAny>>,
        plan: Option<&Bound<'_, PyAny>>,
        start_timeout: Option<&Bound<'_, PyAny>>,
        http_allow_hosts: Option<Vec<String>>,
        allow_clear_token: Option<bool>,
    ) -> PyResult<Self> {
        guard(py, "Server()", || {
            let d = ServerConfig::default();
            let given: Vec<&str> = [
                ("plan", plan.is_some()),
                ("start_timeout", start_timeout.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
            let fleet = FleetConfig::from_options(
                opt_count_arg::<usize>(py, "expect_clients", expect_clients, config::CLIENTS)?,
                start_timeout
                    .map(|v| secs_arg(py, "start_timeout", v, config::START_TIMEOUT))
                    .transpose()?,
                plan.map(|p| plan_arg(py, p)).transpose()?,
                &given,
                "expect_clients",
            )
            .map_err(|e| to_py(py, &e))?;
            let config = ServerConfig {
                host: host.unwrap_or(d.host.clone()),
                port: opt_int_arg(py, "port", port)?.unwrap_or(d.port),
                max_clients: opt_count_arg(py, "max_clients", max_clients, config::CLIENTS)?
                    .unwrap_or_else(|| ServerConfig::default_max_clients(fleet.as_ref())),
                first_client_id: opt_int_arg(py, "first_client_id", first_client_id)?
                    .unwrap_or(d.first_client_id),
                heartbeat_timeout: opt_secs_arg(
                    py,
                    "heartbeat_timeout",
                    heartbeat_timeout,
                    config::HEARTBEAT_TIMEOUT,
                    d.heartbeat_timeout,
                )?,
                handshake_timeout: opt_secs_arg(
                    py,
                    "handshake_timeout",
                    handshake_timeout,
                    config::HANDSHAKE_TIMEOUT,
                    d.handshake_timeout,
                )?,
                http_linger: opt_secs_arg(
                    py,
                    "http_linger",
                    http_linger,
                    config::HTTP_LINGER,
                    d.http_linger,
                )?,
                token,
                allow_clear_token: allow_clear_token.unwrap_or(d.allow_clear_token),
                report_json: path_arg(report_json)?,
                log_dir: path_arg(log_dir)?,
                http,
                report_csv: path_arg(report_csv)?,
                report_html: path_arg(report_html)?,
                fleet,
                http_allow_hosts: http_allow_hosts.unwrap_or(d.http_allow_hosts.clone()),
                ..d
            };
            config.validate().map_err(|e| to_py(py, &e))?;
            Ok(PyServer {
                config,
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
    fn events(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<PyEvents> {
        guard(py, "Server.events", || {
            let timeout = timeout_arg(py, timeout)?;
            let events = self.handle(py)?.events().map_err(|e| to_py(py, &e))?;
            Ok(PyEvents {
                state: Mutex::new(EventsState::Ready(events)),
                timeout,
            })
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
            let json = serde_json::to_string(&snapshot)
                .map_err(|e| to_py(py, &Error::Internal(e.to_string())))?;
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
    fn wait<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
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
        timeout: Option<&Bound<'py, PyAny>>,
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

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

enum EventsState {
    Ready(Events),
    InUse,
    Closed,
}

/// The iterator ``Server.events()`` returns: each item is a dict (the JSON event), and it
/// ends after the ``report`` event. A context manager; ``close()`` ends it early.
#[pyclass(name = "Events", module = "loadmon._loadmon", frozen)]
struct PyEvents {
    state: Mutex<EventsState>,
    timeout: Option<Duration>,
}

impl PyEvents {
    /// The next event as a dict, waiting at most `timeout` (None: as long as it takes) with
    /// the GIL released; `None` once the iteration is over.
    fn next_within<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Take the subscription out; no lock is held while waiting.
        let mut events = {
            let mut s = lock(&self.state);
            match std::mem::replace(&mut *s, EventsState::InUse) {
                EventsState::Ready(e) => e,
                EventsState::Closed => {
                    *s = EventsState::Closed;
                    return Ok(None);
                }
                EventsState::InUse => {
                    return Err(state_error(
                        py,
                        "this events iterator is in use by another thread",
                    ))
                }
            }
        };
        let state = &self.state;
        let next = wait_interruptibly(
            py,
            timeout,
            "no event",
            |slice| {
                if matches!(*lock(state), EventsState::Closed) {
                    return Some(Ok(None));
                }
                match events.next_timeout(Some(slice)) {
                    EventPoll::Event(e) => Some(Ok(Some(e))),
                    EventPoll::Ended => Some(Ok(None)),
                    EventPoll::Timeout => None,
                }
            },
            |_| {},
        );
        let mut s = lock(&self.state);
        let ended = matches!(next, Ok(Ok(None))) || matches!(*s, EventsState::Closed);
        *s = if ended {
            EventsState::Closed
        } else {
            EventsState::Ready(events)
        };
        drop(s);
        match next?.map_err(|e| to_py(py, &e))? {
            Some(e) if !ended => py
                .import("json")?
                .call_method1("loads", (e.to_json_line().trim_end(),))
                .map(Some),
            _ => Ok(None),
        }
    }
}

#[pymethods]
impl PyEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        guard(py, "Events.__next__", || self.next_within(py, self.timeout))
    }

    /// ``async for event in server.events():``.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next event, awaited without blocking the event loop (StopAsyncIteration after the
    /// ``report`` event; the iterator's ``timeout`` bounds each wait).
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Events.__anext__", || {
            let timeout = slf.get().timeout.map(|d| d.as_secs_f64());
            py.import("loadmon._aio")?
                .call_method1("next_event", (slf, timeout))
        })
    }

    /// The next event, waiting at most ``timeout`` seconds (LoadmonTimeoutError; 0 only takes
    /// what is there); None once the iteration is over. Used by ``async for``.
    #[pyo3(signature = (timeout))]
    fn _next<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        guard(py, "Events._next", || {
            let timeout = timeout_arg(py, timeout)?;
            self.next_within(py, timeout)
        })
    }

    /// Ends the iteration and drops the subscription (a waiting ``next()`` ends too).
    fn close(&self) {
        *lock(&self.state) = EventsState::Closed;
    }

    /// Returns the iterator (``with server.events() as events:``).
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Closes the iterator.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Client runs (shared by TestClient and Client)
// ---------------------------------------------------------------------------------------------

/// A handle a `RunSlot` holds: a client's or a worker's.
trait RunHandle: Send + Sync + Sized + 'static {
    /// "client" or "worker", for messages.
    const WHAT: &'static str;
    fn cancel(&self);
    fn is_finished(&self) -> bool;
    /// The entry of the interpreter-exit registry.
    fn live(h: &Arc<Self>) -> Live;
}

impl RunHandle for ClientHandle {
    const WHAT: &'static str = "client";
    fn cancel(&self) {
        ClientHandle::cancel(self);
    }
    fn is_finished(&self) -> bool {
        ClientHandle::is_finished(self)
    }
    fn live(h: &Arc<Self>) -> Live {
        Live::Client(Arc::downgrade(h))
    }
}

impl RunHandle for WorkerHandle {
    const WHAT: &'static str = "worker";
    fn cancel(&self) {
        WorkerHandle::cancel(self);
    }
    fn is_finished(&self) -> bool {
        WorkerHandle::is_finished(self)
    }
    fn live(h: &Arc<Self>) -> Live {
        Live::Worker(Arc::downgrade(h))
    }
}

enum RunState<H> {
    Idle,
    /// `cancel` is set by a `cancel()` that came while the run was being started.
    Starting {
        cancel: bool,
    },
    Running(Arc<H>),
}

/// A client's or a worker's run, started at most once at a time; never locked across a wait.
struct RunSlot<H>(Mutex<RunState<H>>);

impl<H: RunHandle> RunSlot<H> {
    fn new() -> Self {
        RunSlot(Mutex::new(RunState::Idle))
    }

    /// Starts a run with `spawn` (called with the GIL released and no lock held).
    fn start(
        &self,
        py: Python<'_>,
        spawn: impl FnOnce() -> loadmon::Result<H> + Send,
    ) -> PyResult<Arc<H>> {
        {
            let mut s = lock(&self.0);
            match &*s {
                RunState::Starting { .. } => {
                    return Err(state_error(
                        py,
                        &format!("this {} is starting in another thread", H::WHAT),
                    ))
                }
                RunState::Running(h) if !h.is_finished() => {
                    return Err(state_error(
                        py,
                        &format!(
                            "this {} is already running: join() or cancel() it first",
                            H::WHAT
                        ),
                    ))
                }
                _ => *s = RunState::Starting { cancel: false },
            }
        }
        sync_log_level(py);
        let spawned = py.detach(spawn);
        let mut s = lock(&self.0);
        let cancelled = matches!(*s, RunState::Starting { cancel: true });
        match spawned {
            Ok(h) => {
                let h = Arc::new(h);
                if cancelled {
                    h.cancel();
                }
                register(H::live(&h));
                *s = RunState::Running(h.clone());
                Ok(h)
            }
            Err(e) => {
                *s = RunState::Idle;
                Err(to_py(py, &e))
            }
        }
    }

    fn handle(&self, py: Python<'_>) -> PyResult<Arc<H>> {
        match &*lock(&self.0) {
            RunState::Running(h) => Ok(h.clone()),
            RunState::Starting { .. } => Err(state_error(
                py,
                &format!(
                    "the {} is starting in another thread: wait for start() to return",
                    H::WHAT
                ),
            )),
            RunState::Idle => Err(state_error(
                py,
                &format!("the {} is not started: call start() first", H::WHAT),
            )),
        }
    }

    fn cancel(&self) {
        let mut s = lock(&self.0);
        match &mut *s {
            RunState::Running(h) => h.cancel(),
            RunState::Starting { cancel } => *cancel = true,
            RunState::Idle => {}
        }
    }

    fn running(&self) -> bool {
        match &*lock(&self.0) {
            RunState::Running(h) => !h.is_finished(),
            RunState::Starting { .. } => true,
            RunState::Idle => false,
        }
    }

    /// Cancels a run still going and joins it, with the GIL released (a dropped client or
    /// worker).
    fn drop_run(&mut self) {
        let state = std::mem::replace(
            self.0.get_mut().unwrap_or_else(|p| p.into_inner()),
            RunState::Idle,
        );
        if let RunState::Running(h) = state {
            if !h.is_finished() {
                Python::attach(|py| {
                    py.detach(move || {
                        h.cancel();
                        drop(h);
                    })
                });
            }
        }
    }
}

/// What the last `run_tests` raised, to re-raise from `run()`/`join()`.
type Caught = Arc<Mutex<Option<Py<PyAny>>>>;

/// Waits for a client handle's result, interruptibly (Ctrl-C cancels the run), and converts
/// it. A workload that raised: a BaseException that is not an Exception (SystemExit,
/// KeyboardInterrupt) is raised as itself; an Exception becomes WorkloadError with the
/// original (and its traceback) as `__cause__`.
fn join_handle<'py>(
    py: Python<'py>,
    h: Arc<ClientHandle>,
    timeout: Option<Duration>,
    caught: Option<&Caught>,
) -> PyResult<Bound<'py, PyAny>> {
    let h2 = h.clone();
    // A Ctrl-C while the run ends (after the first one) ends the wait at once.
    let mut second_interrupt = None;
    let r = wait_interruptibly(
        py,
        timeout,
        "the client is still running",
        |slice| h.try_join(Some(slice)),
        |py| {
            // Cancelled: a run_tests that looks at ctx.stopped ends within the grace (and the
            // server sees it); one that does not goes on on its own thread, unwaited.
            h2.cancel();
            let deadline = Instant::now() + CANCEL_GRACE;
            while Instant::now() < deadline {
                let slice = deadline.saturating_duration_since(Instant::now());
                if py
                    .detach(|| h2.try_join(Some(slice.min(SIGNAL_POLL))))
                    .is_some()
                {
                    break;
                }
                if let Err(e) = py.check_signals() {
                    second_interrupt = Some(e);
                    break;
                }
            }
        },
    )
    .map_err(|first| second_interrupt.take().unwrap_or(first))?;
    match r {
        Ok(result) => result_to_py(py, &result),
        Err(e) => {
            let original = match (e.kind(), caught) {
                // Taken, not copied: the exception's traceback refers back to the slot, a
                // cycle the garbage collector cannot see through Rust.
                (ErrorKind::Workload, Some(c)) => lock(c).take(),
                _ => None,
            };
            match original {
                Some(o) if !o.bind(py).is_instance_of::<PyException>() => {
                    Err(PyErr::from_value(o.into_bound(py)))
                }
                Some(o) => {
                    let err = to_py(py, &e);
                    err.set_cause(py, Some(PyErr::from_value(o.into_bound(py))));
                    Err(err)
                }
                None => Err(to_py(py, &e)),
            }
        }
    }
}

/// The end of a `with client:` block: a run still going is cancelled if the block raised, and
/// waited for either way (GIL released; Ctrl-C cancels it and raises KeyboardInterrupt). The
/// run's result stays with the client: `join()` after the block returns it or raises its error.
fn exit_client(
    py: Python<'_>,
    run: &RunSlot<ClientHandle>,
    exc: &Bound<'_, PyTuple>,
) -> PyResult<bool> {
    let raised = exc.len() > 0 && !exc.get_item(0)?.is_none();
    if let Ok(h) = run.handle(py) {
        if raised {
            h.cancel();
        }
        let h2 = h.clone();
        let _ = wait_interruptibly(
            py,
            None,
            "the client is still running",
            |slice| h.try_join(Some(slice)),
            move |_| h2.cancel(),
        )?;
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// TestClient
// ---------------------------------------------------------------------------------------------

/// The file-writing test client (the seed's ``client.py``): connects to a server, writes
/// files of ``file_size`` MB in chunks of ``chunk_size`` MB for ``run_time`` seconds, keeps
/// the last ``keep_files`` (an int, or "all"), and sends heartbeats and stats meanwhile.
///
/// The constructor applies the seed's validation (chunk >= min_chunk_size, chunk <= file, a
/// timed probe showing at least 2 files fit in the run time) and raises ConfigError (a
/// ValueError) for any invalid or out-of-range argument. ``run()`` blocks (GIL released) and
/// returns a ClientResult; ``start()`` runs it in the background, ``join()`` waits for it,
/// ``cancel()`` stops it. A running client that is dropped is cancelled and joined (within a
/// second). A context manager: ``with TestClient(...) as client:`` starts the run, and the
/// block's end waits for it (cancelled first if the block raised; ``join()`` then gives the
/// result). ``None`` for any argument means the core's default, which the signature shows.
#[pyclass(name = "TestClient", module = "loadmon._loadmon", frozen)]
struct PyTestClient {
    client: ClientConfig,
    writer: FileWriterConfig,
    validated: Mutex<Option<FileWriter>>,
    run: RunSlot<ClientHandle>,
}

impl PyTestClient {
    fn spawn(&self, py: Python<'_>) -> PyResult<Arc<ClientHandle>> {
        let validated = lock(&self.validated).take();
        let (client, writer) = (self.client.clone(), self.writer.clone());
        self.run.start(py, move || {
            let w = match validated {
                Some(w) => w,
                None => FileWriter::new(writer)?,
            };
            ClientHandle::spawn(client, w)
        })
    }
}

impl Drop for PyTestClient {
    fn drop(&mut self) {
        self.run.drop_run();
    }
}

/// The ClientConfig of `host`, `port`, periods, token and log_dir, with the core's defaults.
#[allow(clippy::too_many_arguments)]
fn client_config(
    py: Python<'_>,
    host: Option<String>,
    port: Option<&Bound<'_, PyAny>>,
    heartbeat_period: Option<&Bound<'_, PyAny>>,
    stats_period: Option<&Bound<'_, PyAny>>,
    connect_timeout: Option<&Bound<'_, PyAny>>,
    token: Option<String>,
    log_dir: Option<&Bound<'_, PyAny>>,
    allow_clear_token: Option<bool>,
) -> PyResult<ClientConfig> {
    let d = ClientConfig::default();
    let config = ClientConfig {
        host: host.unwrap_or(d.host.clone()),
        port: opt_int_arg(py, "port", port)?.unwrap_or(d.port),
        heartbeat_period: opt_secs_arg(
            py,
            "heartbeat_period",
            heartbeat_period,
            config::HEARTBEAT_PERIOD,
            d.heartbeat_period,
        )?,
        stats_period: opt_secs_arg(
            py,
            "stats_period",
            stats_period,
            config::STATS_PERIOD,
            d.stats_period,
        )?,
        connect_timeout: opt_secs_arg(
            py,
            "connect_timeout",
            connect_timeout,
            config::CONNECT_TIMEOUT,
            d.connect_timeout,
        )?,
        token,
        allow_clear_token: allow_clear_token.unwrap_or(d.allow_clear_token),
        log_dir: path_arg(log_dir)?,
        ..d
    };
    config.validate().map_err(|e| to_py(py, &e))?;
    Ok(config)
}

#[pymethods]
impl PyTestClient {
    #[new]
    #[pyo3(signature = (host=None, port=None, run_time=None, chunk_size=None, file_size=None,
        out_dir=None, sync=None, keep_files=None, min_chunk_size=None, heartbeat_period=None,
        stats_period=None, connect_timeout=None, token=None, log_dir=None,
        allow_clear_token=None),
        text_signature = "(host='127.0.0.1', port=1234, run_time=15.0, chunk_size=10, \
            file_size=50, out_dir='client_files', sync='none', keep_files=2, min_chunk_size=10, \
            heartbeat_period=5.0, stats_period=10.0, connect_timeout=5.0, token=None, \
            log_dir=None, allow_clear_token=False)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: Option<String>,
        port: Option<&Bound<'_, PyAny>>,
        run_time: Option<&Bound<'_, PyAny>>,
        chunk_size: Option<&Bound<'_, PyAny>>,
        file_size: Option<&Bound<'_, PyAny>>,
        out_dir: Option<&Bound<'_, PyAny>>,
        sync: Option<String>,
        keep_files: Option<&Bound<'_, PyAny>>,
        min_chunk_size: Option<&Bound<'_, PyAny>>,
        heartbeat_period: Option<&Bound<'_, PyAny>>,
        stats_period: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        token: Option<String>,
        log_dir: Option<&Bound<'_, PyAny>>,
        allow_clear_token: Option<bool>,
    ) -> PyResult<Self> {
        guard(py, "TestClient()", || {
            let client = client_config(
                py,
                host,
                port,
                heartbeat_period,
                stats_period,
                connect_timeout,
                token,
                log_dir,
                allow_clear_token,
            )?;
            let d = FileWriterConfig::default();
            let writer = FileWriterConfig {
                run_time_s: run_time
                    .map(|v| float_arg("run_time", v))
                    .transpose()?
                    .unwrap_or(d.run_time_s),
                chunk_size_mb: opt_int_arg(py, "chunk_size", chunk_size)?
                    .unwrap_or(d.chunk_size_mb),
                file_size_mb: opt_int_arg(py, "file_size", file_size)?.unwrap_or(d.file_size_mb),
                min_chunk_size_mb: opt_int_arg(py, "min_chunk_size", min_chunk_size)?
                    .unwrap_or(d.min_chunk_size_mb),
                out_dir: path_arg(out_dir)?.unwrap_or(d.out_dir),
                sync: match sync {
                    Some(s) => s.parse::<SyncMode>().map_err(|e| to_py(py, &e))?,
                    None => d.sync,
                },
                keep_files: match keep_files {
                    Some(v) => keep_files_arg(py, v)?,
                    None => d.keep_files,
                },
            };
            // The probe runs on a thread of its own, waited for in slices (GIL released):
            // Ctrl-C stops it and raises KeyboardInterrupt at once.
            let check = WriterCheck::spawn(writer.clone()).map_err(|e| to_py(py, &e))?;
            let validated = wait_interruptibly(
                py,
                None,
                "the probe is still running",
                |slice| check.try_join(Some(slice)),
                |py| {
                    check.cancel();
                    // A probe that stops in time removes its file before the interrupt.
                    let _ = py.detach(|| check.try_join(Some(CANCEL_GRACE)));
                },
            )?
            .map_err(|e| to_py(py, &e))?;
            Ok(PyTestClient {
                client,
                writer,
                validated: Mutex::new(Some(validated)),
                run: RunSlot::new(),
            })
        })
    }

    /// Connects, writes files for the run time, returns the ClientResult (GIL released;
    /// Ctrl-C cancels the run and raises KeyboardInterrupt).
    fn run<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "TestClient.run", || {
            let h = self.spawn(py)?;
            join_handle(py, h, None, None)
        })
    }

    /// ``await client.run_async()``: as run(), without blocking the event loop (cancelling
    /// the task cancels the run).
    fn run_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "TestClient.run_async", || {
            py.import("loadmon._aio")?.call_method1("run", (slf,))
        })
    }

    /// Starts the run in the background; ``join()`` waits for its result. StateError if it
    /// is already running.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "TestClient.start", || self.spawn(py).map(|_| ()))
    }

    /// Waits (GIL released) for the result of ``start()``. ``timeout``: None waits as long as
    /// it takes, 0 only checks, else seconds (LoadmonTimeoutError). StateError before start().
    #[pyo3(signature = (timeout=None))]
    fn join<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "TestClient.join", || {
            let timeout = timeout_arg(py, timeout)?;
            let h = self.run.handle(py)?;
            join_handle(py, h, timeout, None)
        })
    }

    /// Asks a running client to stop (its ``join()`` then raises LoadmonInterruptedError);
    /// returns at once. Nothing happens if it is not running.
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
    fn host(&self) -> &str {
        &self.client.host
    }

    /// The server's port.
    #[getter]
    fn port(&self) -> u16 {
        self.client.port
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

    /// The smallest chunk size accepted, MB.
    #[getter]
    fn min_chunk_size(&self) -> u64 {
        self.writer.min_chunk_size_mb
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

    /// Finished files kept: an int, or "all".
    #[getter]
    fn keep_files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        keep_files_to_py(py, self.writer.keep_files)
    }

    /// Starts the run (``with TestClient(...) as client:``).
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    /// Waits for the run to end; if the block raised, cancels it first. The result is kept:
    /// ``join()`` after the block returns it (or raises the run's error).
    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        guard(py, "TestClient.__exit__", || {
            exit_client(py, &self.run, exc)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "TestClient(host={}, port={}, run_time={:?}, chunk_size={}, file_size={}, running={})",
            py_repr(py, &self.client.host),
            self.client.port,
            self.writer.run_time_s,
            self.writer.chunk_size_mb,
            self.writer.file_size_mb,
            py_bool(self.run.running())
        )
    }
}

/// A `loadmon.Plan` as the core's plan, checked by the core's rules (`Plan::validate`:
/// ConfigError saying which rule failed); anything else is a TypeError.
fn plan_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Plan> {
    let class = results(py)?.getattr("Plan")?;
    if !v.is_instance(&class)? {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "plan must be a loadmon.Plan, not {}",
            v.get_type().name()?
        )));
    }
    let sync: String = v.getattr("sync")?.extract()?;
    let plan = Plan {
        run_time_s: float_arg("run_time", &v.getattr("run_time")?)?,
        chunk_size_mb: int_arg(py, "chunk_size", &v.getattr("chunk_size")?)?,
        file_size_mb: int_arg(py, "file_size", &v.getattr("file_size")?)?,
        min_chunk_size_mb: int_arg(py, "min_chunk_size", &v.getattr("min_chunk_size")?)?,
        sync: sync.parse::<SyncMode>().map_err(|e| to_py(py, &e))?,
        keep_files: keep_files_arg(py, &v.getattr("keep_files")?)?,
    };
    plan.validate().map_err(|e| to_py(py, &e))?;
    Ok(plan)
}

/// Checks a `loadmon.Plan` with the core's rules (its `__post_init__` calls this).
#[pyfunction]
fn _check_plan(py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<()> {
    guard(py, "Plan()", || plan_arg(py, plan).map(|_| ()))
}

/// `keep_files`: a positive int, or "all" (the core's `KeepFiles` rules).
fn keep_files_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<KeepFiles> {
    reject_bool("keep_files", v)?;
    if let Ok(s) = v.extract::<String>() {
        let k: KeepFiles = s.parse().map_err(|e| to_py(py, &e))?;
        // A number in a string ("3") is refused, as for every other int argument.
        if k.count().is_some() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "keep_files must be an int or \"all\", not the string {}",
                py_repr(py, &s)
            )));
        }
        return Ok(k);
    }
    match v.extract::<i128>() {
        Ok(n) => KeepFiles::last(n).map_err(|e| to_py(py, &e)),
        // Beyond i128: the core's error for the nearest value it can name.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            let n = if v.lt(0)? { i128::MIN } else { i128::MAX };
            KeepFiles::last(n).map_err(|e| to_py(py, &e))
        }
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "keep_files must be an int or \"all\", not {}",
            v.get_type().name()?
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Context and the generic Client
// ---------------------------------------------------------------------------------------------

/// What ``Client.run_tests`` gets: the client id, the run's clock, and reporting. It is dead
/// once the run is over: ``stopped`` is then True and every report raises StateError.
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

    /// True once the run should end: run time over, server gone, cancelled, or the run over.
    #[getter]
    fn stopped(&self) -> bool {
        self.inner.time_is_up()
    }

    /// True once the run is over (``run_tests`` returned, or the client gave up).
    #[getter]
    fn finished(&self) -> bool {
        self.inner.is_finished()
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

    /// Reports one completed file (``file_roll``). StateError after the run.
    fn file_rollover(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "Context.file_rollover", || {
            self.inner.file_rollover().map_err(|e| to_py(py, &e))
        })
    }

    /// Records one write of ``n_bytes`` that took ``seconds``. StateError after the run.
    fn record_write(
        &self,
        py: Python<'_>,
        n_bytes: &Bound<'_, PyAny>,
        seconds: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(py, "Context.record_write", || {
            let n = int_arg::<u64>(py, "n_bytes", n_bytes)?;
            let d = secs_arg(py, "seconds", seconds, Zero::Allowed)?;
            self.inner.record_write(n, d).map_err(|e| to_py(py, &e))
        })
    }

    /// Sends ``send_stats:<cpu_pct>:<mem_pct>``. StateError after the run.
    fn send_stats(&self, py: Python<'_>, cpu_pct: f64, mem_pct: f64) -> PyResult<()> {
        guard(py, "Context.send_stats", || {
            self.inner
                .send_stats(cpu_pct, mem_pct)
                .map_err(|e| to_py(py, &e))
        })
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

    fn __repr__(&self) -> String {
        format!(
            "Context(client_id={}, stopped={}, files_written={})",
            self.inner.client_id(),
            py_bool(self.inner.time_is_up()),
            self.inner.files_written()
        )
    }
}

/// How a `run_tests` call ended: `None` while it runs, then `Some(None)` if it returned,
/// `Some(Some(text))` if it raised (`"RuntimeError: message"`).
struct RunEnd {
    end: Mutex<Option<Option<String>>>,
    ready: Condvar,
}

/// Handed to `loadmon._workload.start`: its thread calls `finish` when `run_tests` ends.
#[pyclass(name = "_RunEnd", module = "loadmon._loadmon", frozen)]
struct PyRunEnd {
    end: Arc<RunEnd>,
    caught: Caught,
    finished: AtomicBool,
}

impl Drop for PyRunEnd {
    /// The thread that should have called `finish` is gone without calling it (it died, or
    /// could never start): the waiting client thread must not wait for ever.
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) {
            *lock(&self.end.end) = Some(Some(
                "run_tests' thread ended without reporting how run_tests ended".into(),
            ));
            self.end.ready.notify_all();
        }
    }
}

/// Set once interpreter exit gave the running `run_tests` their time (`_shutdown`): a client
/// thread still waiting for one stops waiting (its Python thread will never run again).
static PY_GONE: AtomicBool = AtomicBool::new(false);

#[pymethods]
impl PyRunEnd {
    /// Records how `run_tests` ended: `exc` is what it raised (None if it returned) and
    /// `text` its description.
    #[pyo3(signature = (exc=None, text=None))]
    fn finish(&self, exc: Option<Py<PyAny>>, text: Option<String>) {
        self.finished.store(true, Ordering::SeqCst);
        let failed = exc.is_some();
        *lock(&self.caught) = exc;
        *lock(&self.end.end) = Some(failed.then(|| text.unwrap_or_default()));
        self.end.ready.notify_all();
    }
}

/// A Python object's `run_tests(ctx)` as a core workload. The call runs on a Python daemon
/// thread (`loadmon._workload`), started with the GIL taken briefly; the client's own thread
/// then waits for its end without the GIL. A coroutine `run_tests` returns (`async def`) runs
/// to its end in an event loop of its own (`asyncio.run`). At interpreter exit a `run_tests`
/// that ignores `ctx.stopped` is ended with the other daemon threads, and no Rust frame is on
/// its stack when that happens.
struct PyWorkload {
    obj: Py<PyWeakrefReference>,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
    caught: Caught,
}

impl Workload for PyWorkload {
    fn file_stats(&self) -> Option<(u64, u64)> {
        self.file_stats
    }

    fn run_time(&self) -> Option<Duration> {
        self.run_time
    }

    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let end = Arc::new(RunEnd {
            end: Mutex::new(None),
            ready: Condvar::new(),
        });
        Python::attach(|py| -> PyResult<()> {
            let c = Py::new(py, PyContext { inner: ctx.clone() })?;
            let e = Py::new(
                py,
                PyRunEnd {
                    end: end.clone(),
                    caught: self.caught.clone(),
                    finished: AtomicBool::new(false),
                },
            )?;
            // Held weakly (no cycle client -> run -> workload -> client): a client dropped
            // before its run_tests is called is finalized, which cancels the run.
            let Some(client) = self.obj.bind(py).upgrade() else {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the client was dropped",
                ));
            };
            py.import("loadmon._workload")?
                .call_method1("start", (client, c, e))?;
            Ok(())
        })
        .map_err(|e| Error::Workload(format!("cannot start run_tests: {e}")))?;
        let mut g = lock(&end.end);
        loop {
            if let Some(outcome) = g.take() {
                return match outcome {
                    None => Ok(()),
                    Some(text) => Err(Error::Workload(text)),
                };
            }
            if PY_GONE.load(Ordering::SeqCst) {
                return Err(Error::Workload(
                    "run_tests did not return before interpreter exit".into(),
                ));
            }
            g = end
                .ready
                .wait_timeout(g, SIGNAL_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

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
struct PyClient {
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
            connect_timeout=5.0, token=None, log_dir=None, allow_clear_token=False)")]
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
        log_dir=None, allow_clear_token=None))]
    #[allow(clippy::too_many_arguments)]
    fn __init__(
        &self,
        py: Python<'_>,
        host: Option<String>,
        port: Option<&Bound<'_, PyAny>>,
        heartbeat_period: Option<&Bound<'_, PyAny>>,
        stats_period: Option<&Bound<'_, PyAny>>,
        run_time: Option<&Bound<'_, PyAny>>,
        chunk_size: Option<&Bound<'_, PyAny>>,
        file_size: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        token: Option<String>,
        log_dir: Option<&Bound<'_, PyAny>>,
        allow_clear_token: Option<bool>,
    ) -> PyResult<()> {
        guard(py, "Client.__init__", || {
            let config = client_config(
                py,
                host,
                port,
                heartbeat_period,
                stats_period,
                connect_timeout,
                token,
                log_dir,
                allow_clear_token,
            )?;
            let chunk = opt_int_arg::<u64>(py, "chunk_size", chunk_size)?;
            let file = opt_int_arg::<u64>(py, "file_size", file_size)?;
            let file_stats = config::file_stats(chunk, file).map_err(|e| to_py(py, &e))?;
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
    fn join<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
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

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------

fn summary_to_py<'py>(py: Python<'py>, s: &WorkerSummary) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(s).map_err(|e| to_py(py, &Error::Internal(e.to_string())))?;
    results(py)?
        .getattr("WorkerSummary")?
        .call_method1("_from_json", (json,))
}

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
struct PyWorker {
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

#[pymethods]
impl PyWorker {
    #[new]
    #[pyo3(signature = (host=None, port=None, out_dir=None, token=None, stay=None,
        retry_max=None, heartbeat_period=None, stats_period=None, connect_timeout=None,
        log_dir=None, max_chunk_mb=None, max_run_time=None, max_disk_mb=None,
        allow_clear_token=None),
        text_signature = "(host='127.0.0.1', port=1234, out_dir='client_files', token=None, \
            stay=False, retry_max=5.0, heartbeat_period=5.0, stats_period=10.0, \
            connect_timeout=5.0, log_dir=None, max_chunk_mb=256, max_run_time=86400.0, \
            max_disk_mb=10240, allow_clear_token=False)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: Option<String>,
        port: Option<&Bound<'_, PyAny>>,
        out_dir: Option<&Bound<'_, PyAny>>,
        token: Option<String>,
        stay: Option<bool>,
        retry_max: Option<&Bound<'_, PyAny>>,
        heartbeat_period: Option<&Bound<'_, PyAny>>,
        stats_period: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        log_dir: Option<&Bound<'_, PyAny>>,
        max_chunk_mb: Option<&Bound<'_, PyAny>>,
        max_run_time: Option<&Bound<'_, PyAny>>,
        max_disk_mb: Option<&Bound<'_, PyAny>>,
        allow_clear_token: Option<bool>,
    ) -> PyResult<Self> {
        guard(py, "Worker()", || {
            let client = client_config(
                py,
                host,
                port,
                heartbeat_period,
                stats_period,
                connect_timeout,
                token,
                log_dir,
                allow_clear_token,
            )?;
            let d = WorkerConfig::default();
            let config = WorkerConfig {
                client,
                out_dir: path_arg(out_dir)?.unwrap_or(d.out_dir),
                stay: stay.unwrap_or(d.stay),
                retry_max: opt_secs_arg(
                    py,
                    "retry_max",
                    retry_max,
                    config::RETRY_MAX,
                    d.retry_max,
                )?,
                max_chunk_mb: opt_count_arg(
                    py,
                    "max_chunk_mb",
                    max_chunk_mb,
                    config::CHUNK_SIZE_MB,
                )?
                .unwrap_or(d.max_chunk_mb),
                max_run_time: opt_secs_arg(
                    py,
                    "max_run_time",
                    max_run_time,
                    config::MAX_RUN_TIME,
                    d.max_run_time,
                )?,
                max_disk_mb: opt_count_arg(py, "max_disk_mb", max_disk_mb, config::MAX_DISK_MB)?
                    .unwrap_or(d.max_disk_mb),
            };
            config.validate().map_err(|e| to_py(py, &e))?;
            Ok(PyWorker {
                config,
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
    fn join<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
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

/// Tells the server that a client cannot run (it failed validation, say): the client gets an
/// id and the report lists it as FAILED with ``reason``. Returns the id.
#[pyfunction]
#[pyo3(signature = (reason, host=None, port=None, chunk_size=None, file_size=None,
    connect_timeout=None, token=None),
    text_signature = "(reason, host='127.0.0.1', port=1234, chunk_size=None, file_size=None, \
        connect_timeout=5.0, token=None)")]
#[allow(clippy::too_many_arguments)]
fn report_failure(
    py: Python<'_>,
    reason: String,
    host: Option<String>,
    port: Option<&Bound<'_, PyAny>>,
    chunk_size: Option<&Bound<'_, PyAny>>,
    file_size: Option<&Bound<'_, PyAny>>,
    connect_timeout: Option<&Bound<'_, PyAny>>,
    token: Option<String>,
) -> PyResult<u32> {
    guard(py, "report_failure", || {
        let config = client_config(
            py,
            host,
            port,
            None,
            None,
            connect_timeout,
            token,
            None,
            None,
        )?;
        let chunk = opt_int_arg::<u64>(py, "chunk_size", chunk_size)?;
        let file = opt_int_arg::<u64>(py, "file_size", file_size)?;
        let file_stats = config::file_stats(chunk, file).map_err(|e| to_py(py, &e))?;
        // On a thread of its own, waited for in slices: Ctrl-C interrupts the connect and the
        // handshake (the attempt is then abandoned; its thread ends with its connect timeout
        // or with the process).
        let (tx, rx) = std::sync::mpsc::channel();
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
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Some(Err(Error::Internal(
                    "report_failure's thread ended without a result".into(),
                ))),
            },
            |_| {},
        )?;
        r.map_err(|e| to_py(py, &e))
    })
}

/// The native module behind `import loadmon`.
#[pymodule]
fn _loadmon(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Warnings reach the queue from the start; loadmon._logging sets the level the loggers
    // want as soon as it is imported.
    set_log_sink(Some((LogLevel::Warn, Arc::new(log_sink) as LogSink)));
    m.add("__version__", loadmon::VERSION)?;
    let (major, minor) = loadmon::protocol::PROTOCOL_VERSION;
    m.add("PROTOCOL_VERSION", format!("{major}.{minor}"))?;
    m.add_class::<PyServer>()?;
    m.add_class::<PyTestClient>()?;
    m.add_class::<PyClient>()?;
    m.add_class::<PyContext>()?;
    m.add_class::<PyEvents>()?;
    m.add_class::<PyRunEnd>()?;
    m.add_class::<PyWorker>()?;
    m.add_function(wrap_pyfunction!(_check_plan, m)?)?;
    m.add_function(wrap_pyfunction!(report_failure, m)?)?;
    m.add_function(wrap_pyfunction!(defaults, m)?)?;
    m.add_function(wrap_pyfunction!(_render_report, m)?)?;
    m.add_function(wrap_pyfunction!(_log_next, m)?)?;
    m.add_function(wrap_pyfunction!(_log_wake, m)?)?;
    m.add_function(wrap_pyfunction!(_log_discard, m)?)?;
    m.add_function(wrap_pyfunction!(_fork_prepare, m)?)?;
    m.add_function(wrap_pyfunction!(_fork_parent, m)?)?;
    m.add_function(wrap_pyfunction!(_fork_child, m)?)?;
    m.add_function(wrap_pyfunction!(_log_wait, m)?)?;
    m.add_function(wrap_pyfunction!(_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(_test_panic, m)?)?;
    Ok(())
}
