//! Blocking handles that own their tokio runtime: the layer the C and Python faces wrap.
//!
//! [`ServerHandle`] runs a server on its own runtime (start, port, snapshot, wait with a timeout,
//! stop → report). [`ClientHandle`] runs a client on its own thread (spawn, join with a timeout,
//! cancel), [`WorkerHandle`] a fleet worker, [`WriterCheck`] a file writer's validation probe.
//! Waits take a timeout so that a caller can wake up to check for Ctrl-C.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientConfig, ClientResult};
use crate::error::{Error, Result};
use crate::events::{Event, EventStream};
use crate::report::{ClientReport, Report};
use crate::server::{Server, ServerConfig, ServerControl};
use crate::worker::{Worker, WorkerConfig, WorkerSummary};
use crate::workload::file_writer::{FileWriter, FileWriterConfig};
use crate::workload::Workload;

/// A result that arrives later, once, and can be read many times.
#[derive(Debug)]
struct Outcome<T> {
    value: Mutex<Option<Result<T>>>,
    ready: Condvar,
}

impl<T: Clone> Outcome<T> {
    fn new() -> Arc<Self> {
        Arc::new(Outcome {
            value: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    fn set(&self, v: Result<T>) {
        let mut g = self.value.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(v);
        }
        self.ready.notify_all();
    }

    fn is_set(&self) -> bool {
        self.value
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The value, waiting up to `timeout` (`None`: forever). `None` if it did not arrive.
    fn wait(&self, timeout: Option<Duration>) -> Option<Result<T>> {
        // A timeout too long to add to now is "forever".
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut g = self.value.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = g.as_ref() {
                return Some(v.clone());
            }
            g = match deadline {
                None => self.ready.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.ready
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// The one runtime a handle owns: single-threaded (`threads` ≤ 1, the default for every handle)
/// or multi-threaded with `threads` workers (the CLI's `--threads`).
fn runtime(threads: usize, name: &str) -> Result<tokio::runtime::Runtime> {
    let mut b = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))
}

/// Runs `f`, turning a panic into an [`Error::Internal`] naming `what`: nothing the engine does
/// can unwind into a caller (a C program, the Python interpreter) or leave a result unset.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(Error::from_panic(what, p.as_ref())))
}

/// Polls `fut` on the calling thread until it completes or `timeout` passes (`None`: no
/// limit), parking between wake-ups; for futures that need no runtime (tokio's channels).
fn block_on_timeout<F: std::future::Future>(
    fut: F,
    timeout: Option<Duration>,
) -> Option<F::Output> {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        // No deadline (no timeout, or one too long to add to now): park until woken.
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                std::thread::park_timeout(left);
            }
        }
    }
}

/// A server running on its own runtime and thread, with what its configuration asks for around
/// it (as [`Server::run`]): the HTTP listener (while the run lasts, then for
/// [`ServerConfig::http_linger`]) and the report files (checked before the run, written after
/// it). Usable from any thread, async code included: its runtime is started, run and dropped
/// on its own thread, never on the caller's.
///
/// # Examples
/// ```
/// use loadmon::blocking::ServerHandle;
/// use loadmon::server::ServerConfig;
/// use std::time::Duration;
///
/// let server = ServerHandle::start(ServerConfig { port: 0, ..Default::default() }).unwrap();
/// assert_ne!(server.port(), 0);
/// assert!(server.wait(Some(Duration::from_millis(10))).is_err()); // nobody came yet
/// let report = server.stop().unwrap();
/// assert!(report.clients.is_empty());
/// ```
#[derive(Debug)]
pub struct ServerHandle {
    control: ServerControl,
    outcome: Arc<Outcome<Report>>,
    /// Set once the final text report has been logged (after `outcome`, which a log handler
    /// of that record may already read).
    logged: Arc<Outcome<()>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How long [`ServerHandle::stop`] waits, after the result, for the text report to be logged.
const REPORT_LOGGED_WAIT: Duration = Duration::from_secs(5);

impl ServerHandle {
    /// Checks the configuration (report paths included), binds the protocol port and the
    /// HTTP listener, and starts serving on a thread of its own; returns once the server
    /// listens.
    ///
    /// The server runs on a single-threaded runtime: the work per message is tiny, and one
    /// thread spares the cross-thread wake-ups of a multi-threaded scheduler.
    ///
    /// # Errors
    /// As [`Server::bind`]; [`Error::Bind`] if the HTTP address cannot be bound.
    pub fn start(config: ServerConfig) -> Result<ServerHandle> {
        Self::start_on(config, 1)
    }

    /// As [`ServerHandle::start`], on a runtime of `threads` threads (1: the single-threaded
    /// runtime; at most [`MAX_SERVER_THREADS`](crate::config::MAX_SERVER_THREADS), see
    /// [`check_server_threads`](crate::config::check_server_threads)).
    ///
    /// # Errors
    /// [`Error::Config`] for a thread count out of bounds; as [`ServerHandle::start`].
    pub fn start_on(config: ServerConfig, threads: usize) -> Result<ServerHandle> {
        guard("starting the server", || Self::start_inner(config, threads))
    }

    fn start_inner(config: ServerConfig, threads: usize) -> Result<ServerHandle> {
        crate::config::check_server_threads(threads)?;
        let outcome = Outcome::new();
        let out = outcome.clone();
        let logged = Outcome::new();
        let logged_tx = logged.clone();
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("loadmon-server".into())
            .spawn(move || {
                // Whatever happens, the caller hears of it: a panic is an error result.
                let bound = guard("starting the server", || {
                    let rt = runtime(threads, "loadmon-server")?;
                    let server = rt.block_on(Server::bind(config))?;
                    Ok((rt, server))
                });
                let (rt, server) = match bound {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let control = server.control();
                let _ = started_tx.send(Ok(control.clone()));
                // Whatever happens in the run, the result is set: a panic is an error result,
                // never a handle that waits for ever.
                let result = guard("the server thread", || {
                    // The result is set before the text report is logged: a log handler that
                    // calls `wait` on that record finds it.
                    rt.block_on(server.run_then(std::future::pending(), |r| out.set(r.clone())))
                });
                out.set(result);
                logged_tx.set(Ok(()));
                // The HTTP listener serves the final report for its linger time (or until
                // close_http); a run that ended in a panic has closed it.
                rt.block_on(control.http_closed());
                rt.shutdown_background();
            })
            .map_err(|e| Error::Internal(format!("cannot start the server thread: {e}")))?;
        let control = started.recv().unwrap_or_else(|_| {
            Err(Error::Internal(
                "the server thread ended before the server started".into(),
            ))
        });
        match control {
            Ok(control) => Ok(ServerHandle {
                control,
                outcome,
                logged,
                thread: Mutex::new(Some(thread)),
            }),
            Err(e) => {
                let _ = thread.join();
                Err(e)
            }
        }
    }

    /// Ends the HTTP listener's linger after the run (it stops with the run anyway when
    /// [`ServerConfig::http_linger`] is zero).
    pub fn close_http(&self) {
        self.control.close_http();
    }

    /// Waits up to `timeout` (`None`: as long as it takes) until the run is over and the HTTP
    /// listener, if any, has closed; whether it has.
    pub fn wait_http_closed(&self, timeout: Option<Duration>) -> bool {
        block_on_timeout(self.control.http_closed(), timeout).is_some()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.control.local_addr()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Every client so far, with live figures.
    pub fn snapshot(&self) -> Vec<ClientReport> {
        self.control.snapshot()
    }

    /// The report so far (the final one once the server stopped).
    pub fn report(&self) -> Report {
        self.control.report()
    }

    /// The HTTP listener's address, if the server has one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.control.http_addr()
    }

    /// Subscribes to the live event stream (see [`crate::events`]); the stream ends after the
    /// final report.
    ///
    /// # Examples
    /// ```
    /// use loadmon::blocking::{ClientHandle, ServerHandle};
    /// use loadmon::client::ClientConfig;
    /// use loadmon::events::EventKind;
    /// use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
    /// use loadmon::server::ServerConfig;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let server = ServerHandle::start(ServerConfig { port: 0, ..Default::default() }).unwrap();
    /// let events = server.events().unwrap(); // before any client: every event is seen
    /// let writer = FileWriter::new(FileWriterConfig {
    ///     run_time_s: 0.5,
    ///     chunk_size_bytes: 1 << 20,
    ///     file_size_bytes: 1 << 20,
    ///     min_chunk_size_bytes: 1 << 20,
    ///     out_dir: dir.path().to_path_buf(),
    ///     ..Default::default()
    /// })
    /// .unwrap();
    /// let client = ClientHandle::spawn(ClientConfig { port: server.port(), ..Default::default() }, writer).unwrap();
    /// let kinds: Vec<EventKind> = events.map(|e| e.kind).collect(); // ends after the report
    /// assert!(matches!(kinds[0], EventKind::ClientConnected { .. }));
    /// assert!(matches!(kinds[1], EventKind::IdAssigned { client_id: 100, .. }));
    /// assert!(matches!(kinds.last(), Some(EventKind::Report { .. })));
    /// client.join(None).unwrap();
    /// ```
    ///
    /// # Errors
    /// None today (see [`Events::new`]).
    pub fn events(&self) -> Result<Events> {
        Events::new(self.control.subscribe())
    }

    /// A cloneable control for stopping from another thread.
    pub fn control(&self) -> ServerControl {
        self.control.clone()
    }

    /// Whether the server has stopped and its report is ready.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_set()
    }

    /// Waits until the server stops by itself (or is stopped) and returns the report.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it is still running after `timeout` (`None` waits forever); the
    /// server's own error (the JSON report could not be written) otherwise.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Report> {
        self.try_wait(timeout).unwrap_or_else(|| {
            Err(Error::Timeout(format!(
                "the server is still running after {:.1} s",
                timeout.unwrap_or_default().as_secs_f64()
            )))
        })
    }

    /// Like [`ServerHandle::wait`], but `None` when the server is still running after `timeout`:
    /// a caller polling in slices cannot mistake a late report for a timeout.
    pub fn try_wait(&self, timeout: Option<Duration>) -> Option<Result<Report>> {
        self.outcome.wait(timeout)
    }

    /// Stops the server (running clients become ABORTED) and returns the report; on a server
    /// that already stopped, returns the same report. When it returns, the final text report
    /// has also been logged (a log sink removed right after still got it).
    ///
    /// # Errors
    /// As [`ServerHandle::wait`].
    pub fn stop(&self) -> Result<Report> {
        self.control.stop();
        let report = self.wait(None);
        // The result is there before the final text report is logged (so that a handler of
        // that record can read it); a caller of stop also has that record when this returns —
        // unless it is the server's own thread (a log sink calling stop), which would wait
        // for itself.
        let own_thread = self
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if !own_thread {
            let _ = self.logged.wait(Some(REPORT_LOGGED_WAIT));
        }
        report
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.control.stop();
        self.control.close_http();
        if self.outcome.wait(Some(Duration::from_secs(10))).is_some() {
            if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = t.join();
            }
        }
    }
}

/// What [`Events::next_timeout`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPoll {
    /// The next event.
    Event(Box<Event>),
    /// None arrived within the timeout.
    Timeout,
    /// The stream is over (the final report was the last event).
    Ended,
}

/// A blocking subscription to a server's events. Also an [`Iterator`] that blocks for each
/// event and ends after the final report. It needs no runtime of its own: the waiting thread
/// parks until the server's runtime wakes it (or the timeout passes).
#[derive(Debug)]
pub struct Events {
    stream: EventStream,
}

impl Events {
    /// Blocking access to `stream` (e.g. from
    /// [`ServerControl::subscribe`](crate::server::ServerControl::subscribe)), for a thread
    /// outside the server's runtime.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for a subscription that can fail.
    pub fn new(stream: EventStream) -> Result<Events> {
        Ok(Events { stream })
    }

    /// The next event, waiting at most `timeout` (`None`: as long as it takes; zero: only
    /// what is already there).
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> EventPoll {
        let got = block_on_timeout(self.stream.next(), timeout);
        match got {
            None => EventPoll::Timeout,
            Some(None) => EventPoll::Ended,
            Some(Some(e)) => EventPoll::Event(Box::new(e)),
        }
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        match self.next_timeout(None) {
            EventPoll::Event(e) => Some(*e),
            EventPoll::Timeout | EventPoll::Ended => None,
        }
    }
}

/// Something run to its end on a thread of its own, on its own single-threaded runtime: a
/// client or a worker. Its result is always set (a panic is an `Internal` result), so `join`
/// never waits on a dead thread; dropping it cancels a run still going and waits for it.
#[derive(Debug)]
struct Task<T: Clone> {
    /// "client" or "worker", for messages.
    what: &'static str,
    cancel: CancellationToken,
    outcome: Arc<Outcome<T>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<T: Clone + Send + 'static> Task<T> {
    /// Runs `run` on a new thread named `loadmon-<what>`; `cancel` is the token `run` obeys.
    fn spawn<F>(what: &'static str, cancel: CancellationToken, run: F) -> Result<Task<T>>
    where
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let outcome = Outcome::new();
        let out = outcome.clone();
        let name = format!("loadmon-{what}");
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                // Whatever happens, the result is set: a panic is an error result, never a
                // handle whose join waits for ever.
                let result = guard(&format!("the {what} thread"), || {
                    let rt = runtime(1, &name)?;
                    let r = rt.block_on(run);
                    rt.shutdown_timeout(Duration::from_secs(1));
                    r
                });
                out.set(result);
            })
            .map_err(|e| Error::Internal(format!("cannot start a {what} thread: {e}")))?;
        Ok(Task {
            what,
            cancel,
            outcome,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn join(&self, timeout: Option<Duration>) -> Result<T> {
        self.try_join(timeout).unwrap_or_else(|| {
            Err(Error::Timeout(format!(
                "the {} is still running after {:.1} s",
                self.what,
                timeout.unwrap_or_default().as_secs_f64()
            )))
        })
    }

    fn try_join(&self, timeout: Option<Duration>) -> Option<Result<T>> {
        let r = self.outcome.wait(timeout)?;
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        Some(r)
    }

    fn is_finished(&self) -> bool {
        self.outcome.is_set()
    }
}

impl<T: Clone> Drop for Task<T> {
    fn drop(&mut self) {
        if !self.outcome.is_set() {
            self.cancel.cancel();
        }
        // The same wait as `join`: the thread is joined once the result is in.
        if self.outcome.wait(Some(Duration::from_secs(10))).is_some() {
            if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = t.join();
            }
        }
    }
}

/// A client running on its own thread.
#[derive(Debug)]
pub struct ClientHandle {
    task: Task<ClientResult>,
}

impl ClientHandle {
    /// Starts `workload` under a client with `config` on a new thread; returns at once.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting, [`Error::Internal`] if no thread can be started.
    pub fn spawn<W: Workload>(config: ClientConfig, workload: W) -> Result<ClientHandle> {
        guard("starting the client", || {
            let client = Client::new(config)?;
            let cancel = client.cancel_token();
            let task = Task::spawn("client", cancel, async move { client.run(workload).await })?;
            Ok(ClientHandle { task })
        })
    }

    /// Waits for the result.
    ///
    /// # Errors
    /// [`Error::Timeout`] if the client is still running after `timeout` (`None` waits
    /// forever); otherwise the client's own error.
    pub fn join(&self, timeout: Option<Duration>) -> Result<ClientResult> {
        self.task.join(timeout)
    }

    /// Like [`ClientHandle::join`], but `None` when the client is still running after
    /// `timeout`: a caller polling in slices cannot mistake a late result for a timeout.
    pub fn try_join(&self, timeout: Option<Duration>) -> Option<Result<ClientResult>> {
        self.task.try_join(timeout)
    }

    /// Asks the client to stop; [`ClientHandle::join`] then returns [`Error::Interrupted`].
    pub fn cancel(&self) {
        self.task.cancel.cancel();
    }

    /// Whether the client has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Runs a client to the end on the calling thread's behalf.
///
/// # Errors
/// As [`Client::run`].
pub fn run_client<W: Workload>(config: ClientConfig, workload: W) -> Result<ClientResult> {
    ClientHandle::spawn(config, workload)?.join(None)
}

/// Tells the server that a client cannot run (see [`Client::report_failure`]): the report then
/// shows it FAILED with `reason`. Returns the id the server gave it.
///
/// # Errors
/// As [`Client::report_failure`].
pub fn report_failure(
    config: ClientConfig,
    file_stats: Option<(u64, u64)>,
    reason: &str,
) -> Result<u32> {
    guard("reporting a failure", || {
        let client = Client::new(config)?;
        let cancel = client.cancel_token();
        let reason = reason.to_string();
        // On a thread of its own, as every handle: callable from async code too.
        Task::spawn("client", cancel, async move {
            client.report_failure(file_stats, &reason).await
        })?
        .join(None)
    })
}

/// A fleet worker running on its own thread (see [`crate::worker`]).
///
/// # Examples
/// ```
/// use loadmon::blocking::{ServerHandle, WorkerHandle};
/// use loadmon::client::ClientConfig;
/// use loadmon::plan::Plan;
/// use loadmon::server::{FleetConfig, ServerConfig};
/// use loadmon::worker::WorkerConfig;
///
/// let dir = tempfile::tempdir().unwrap();
/// let plan = Plan { run_time_s: 0.5, chunk_size_bytes: 1 << 20, file_size_bytes: 1 << 20, min_chunk_size_bytes: 1 << 20, ..Plan::default() };
/// let server = ServerHandle::start(ServerConfig {
///     port: 0,
///     fleet: Some(FleetConfig::new(1, plan)),
///     ..Default::default()
/// })
/// .unwrap();
/// let worker = WorkerHandle::spawn(WorkerConfig {
///     client: ClientConfig { port: server.port(), ..Default::default() },
///     out_dir: dir.path().to_path_buf(),
///     ..Default::default()
/// })
/// .unwrap();
/// let done = worker.join(None).unwrap();
/// assert_eq!(done.last.unwrap().plan, plan);
/// let report = server.wait(None).unwrap();
/// assert_eq!(report.total.started_clients, Some(1));
/// ```
#[derive(Debug)]
pub struct WorkerHandle {
    task: Task<WorkerSummary>,
}

impl WorkerHandle {
    /// Starts a worker with `config` on a new thread; returns at once.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad setting, [`Error::File`] if the log file cannot be made,
    /// [`Error::Internal`] if no thread can be started.
    pub fn spawn(config: WorkerConfig) -> Result<WorkerHandle> {
        guard("starting the worker", || {
            let worker = Worker::new(config)?;
            let cancel = worker.cancel_token();
            let task = Task::spawn("worker", cancel, async move { worker.run().await })?;
            Ok(WorkerHandle { task })
        })
    }

    /// Waits for the worker to finish: after its run, or (with `stay`) once cancelled.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it is still running after `timeout` (`None` waits forever);
    /// otherwise the worker's own error (see [`Worker::run`]).
    pub fn join(&self, timeout: Option<Duration>) -> Result<WorkerSummary> {
        self.task.join(timeout)
    }

    /// Like [`WorkerHandle::join`], but `None` when the worker is still running after
    /// `timeout`.
    pub fn try_join(&self, timeout: Option<Duration>) -> Option<Result<WorkerSummary>> {
        self.task.try_join(timeout)
    }

    /// Asks the worker to stop (a running test ends; a `stay` worker returns its summary).
    pub fn cancel(&self) {
        self.task.cancel.cancel();
    }

    /// Whether the worker has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// A file writer's validation ([`FileWriter::new_cancellable`]: the seed's rules and the timed
/// probe) on a thread of its own, for a caller that must stay responsive meanwhile (a face that
/// checks for Ctrl-C, an event loop): wait in slices with [`WriterCheck::try_join`], stop it
/// with [`WriterCheck::cancel`] (the probe then ends within one write). Nothing ever waits for
/// the thread without a bound: dropping the check cancels a probe still going and returns at
/// once (a probe stuck in a file system call that does not return is left behind).
///
/// # Examples
/// ```
/// use loadmon::blocking::WriterCheck;
/// use loadmon::workload::file_writer::FileWriterConfig;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let check = WriterCheck::spawn(FileWriterConfig {
///     run_time_s: 30.0,
///     chunk_size_bytes: 1 << 20,
///     file_size_bytes: 2 << 20,
///     min_chunk_size_bytes: 1 << 20,
///     out_dir: dir.path().to_path_buf(),
///     ..Default::default()
/// })
/// .unwrap();
/// let writer = loop {
///     if let Some(r) = check.try_join(Some(Duration::from_millis(100))) {
///         break r.unwrap(); // (a face checks for Ctrl-C between two slices)
///     }
/// };
/// assert!(writer.probe().files_that_fit >= 2.0);
/// ```
#[derive(Debug)]
pub struct WriterCheck {
    cancel: CancellationToken,
    outcome: Arc<Outcome<FileWriter>>,
}

impl WriterCheck {
    /// Starts validating `config` on a new thread; returns at once.
    ///
    /// # Errors
    /// [`Error::Internal`] if no thread can be started.
    pub fn spawn(config: FileWriterConfig) -> Result<WriterCheck> {
        let cancel = CancellationToken::new();
        let outcome = Outcome::new();
        let (stop, out) = (cancel.clone(), outcome.clone());
        std::thread::Builder::new()
            .name("loadmon-probe".into())
            .spawn(move || {
                out.set(guard("the file writer's probe", || {
                    FileWriter::new_cancellable(config, &stop)
                }));
            })
            .map_err(|e| Error::Internal(format!("cannot start a probe thread: {e}")))?;
        Ok(WriterCheck { cancel, outcome })
    }

    /// The validated writer, or why the configuration cannot run, waiting up to `timeout`
    /// (`None`: as long as it takes); `None` if the check is still going after it.
    pub fn try_join(&self, timeout: Option<Duration>) -> Option<Result<FileWriter>> {
        self.outcome.wait(timeout)
    }

    /// Stops the probe: [`WriterCheck::try_join`] then gives [`Error::Interrupted`] (or the
    /// result, if it was already in). Returns at once.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for WriterCheck {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
