//! Cancelling the async API the tokio way (dropping the future, through
//! `tokio::time::timeout` or `select!`) stops what it started: the workload of a client or a
//! worker sees the stop and returns (so that its runtime can shut down), and a server's run
//! ends with a final report in which no client is still running.

mod common;

use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use loadmon::client::{Client, ClientConfig};
use loadmon::events::EventKind;
use loadmon::server::{FleetConfig, Server, ServerConfig};
use loadmon::worker::{Worker, WorkerConfig};
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::workload::{Context, Workload};
use loadmon::Status;
use tokio::time::error::Elapsed;

use common::{small_plan, Raw, WAIT};

/// A long test: much longer than any bound below, so that only a stop can end it in time.
const LONG_RUN_S: f64 = 300.0;

/// How long a runtime may take to shut down once its workload was told to stop (it finishes
/// the chunk it is writing).
const SHUTDOWN: Duration = Duration::from_secs(60);

/// A server on 127.0.0.1:0 whose timeouts do not fire while a test's paused clock jumps.
fn server_config() -> ServerConfig {
    ServerConfig {
        port: 0,
        heartbeat_timeout: Duration::from_secs(3600),
        handshake_timeout: Duration::from_secs(3600),
        write_timeout: Duration::from_secs(3600),
        ..Default::default()
    }
}

fn client_config(port: u16) -> ClientConfig {
    ClientConfig {
        port,
        handshake_timeout: Duration::from_secs(3600),
        ..Default::default()
    }
}

/// A workload that says when it starts (with its context), then runs until it is stopped
/// (bounded: 20 s at most, so that a broken build fails instead of hanging).
struct UntilStopped {
    started: tokio::sync::mpsc::UnboundedSender<Context>,
}

impl Workload for UntilStopped {
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let _ = self.started.send(ctx.clone());
        let t = std::time::Instant::now();
        while !ctx.is_stopped() && t.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// Any workload, saying when it starts.
struct Announced<W> {
    inner: W,
    started: tokio::sync::mpsc::UnboundedSender<Context>,
}

impl<W: Workload> Workload for Announced<W> {
    fn file_stats(&self) -> Option<(u64, u64)> {
        self.inner.file_stats()
    }
    fn run_time(&self) -> Option<Duration> {
        self.inner.run_time()
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let _ = self.started.send(ctx.clone());
        self.inner.run(ctx)
    }
}

/// Gives up on `run` as a caller's `tokio::time::timeout` does (its future is dropped with
/// the timeout's). The clock is paused, and tokio does not move a paused clock by itself while
/// a blocking task (the workload) runs: the test moves it past the timeout.
async fn give_up_on<F: Future + Unpin>(run: F) -> Result<F::Output, Elapsed> {
    let timeout = tokio::time::timeout(Duration::from_secs(1), run);
    tokio::time::advance(Duration::from_secs(2)).await;
    timeout.await
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// A paused-clock runtime, as `#[tokio::test(start_paused = true)]` builds.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Drops `rt` on a thread of its own; whether it was gone within [`SHUTDOWN`] (a runtime's
/// drop waits for its blocking tasks: a workload that never stops holds it for ever).
fn shuts_down(rt: tokio::runtime::Runtime) -> bool {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = tx.send(());
    });
    rx.recv_timeout(SHUTDOWN).is_ok()
}

#[tokio::test(start_paused = true)]
async fn dropping_a_client_run_stops_its_workload() {
    let server = Server::bind(server_config()).await.unwrap();
    let port = server.local_addr().port();
    let control = server.control();
    let serving = tokio::spawn(server.run());

    let client = Client::new(client_config(port)).unwrap();
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let mut run = Box::pin(client.run(UntilStopped { started: tx }));
    let ctx = tokio::select! {
        r = &mut run => panic!("the run ended before its workload started: {r:?}"),
        ctx = started.recv() => ctx.unwrap(),
    };
    assert!(!ctx.is_stopped());
    let gave_up = give_up_on(&mut run).await;
    assert!(gave_up.is_err(), "the run ended by itself: {gave_up:?}");
    drop(run);
    assert!(
        ctx.is_stopped(),
        "the workload of a dropped run must see the stop"
    );
    assert!(ctx.is_finished());
    assert!(
        ctx.file_rollover().is_err(),
        "a dropped run takes no reports"
    );

    // The client is gone from the server's view: it is no longer running there.
    control.stop();
    let report = tokio::time::timeout(WAIT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.clients.len(), 1);
    assert_ne!(report.clients[0].status, Status::Running);
    assert_ne!(report.clients[0].status, Status::Pass);
}

/// The case: a file writer under a client whose run is dropped keeps writing, and the
/// program's runtime never shuts down (its drop waits for the writer's thread).
#[test]
fn a_dropped_client_run_lets_the_runtime_shut_down_and_the_files_stop() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FileWriter::new(FileWriterConfig {
        run_time_s: LONG_RUN_S,
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 1 << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    let rt = paused_runtime();
    let ctx = rt.block_on(async {
        let server = Server::bind(server_config()).await.unwrap();
        let port = server.local_addr().port();
        tokio::spawn(server.run());
        let client = Client::new(client_config(port)).unwrap();
        let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let mut run = Box::pin(client.run(Announced {
            inner: writer,
            started: tx,
        }));
        let ctx = tokio::select! {
            r = &mut run => panic!("the run ended before its workload started: {r:?}"),
            ctx = started.recv() => ctx.unwrap(),
        };
        let gave_up = give_up_on(run).await;
        assert!(gave_up.is_err(), "the run ended by itself: {gave_up:?}");
        ctx
    });
    assert!(ctx.is_stopped());
    assert!(
        shuts_down(rt),
        "the runtime did not shut down within {SHUTDOWN:?}: the writer still runs"
    );
    // The writer's thread is over: nothing writes any more.
    let files = files_in(dir.path());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files_in(dir.path()), files);
}

/// A fleet worker whose `run` future is dropped while its plan runs: the file writer stops
/// and the runtime can shut down.
#[test]
fn a_dropped_worker_run_stops_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let rt = paused_runtime();
    let out_dir = dir.path().join("data");
    rt.block_on(async {
        let server = Server::bind(ServerConfig {
            fleet: Some(FleetConfig::new(1, small_plan(LONG_RUN_S))),
            ..server_config()
        })
        .await
        .unwrap();
        let port = server.local_addr().port();
        let mut events = server.control().subscribe();
        tokio::spawn(server.run());
        let worker = Worker::new(WorkerConfig {
            client: client_config(port),
            out_dir: out_dir.clone(),
            ..Default::default()
        })
        .unwrap();
        let mut run = Box::pin(worker.run());
        // The server sees the worker start its plan.
        let running = async {
            while let Some(e) = events.next().await {
                if let EventKind::StatusChanged {
                    status: Status::Running,
                    ..
                } = e.kind
                {
                    return;
                }
            }
            panic!("the event stream ended before the worker ran");
        };
        tokio::select! {
            r = &mut run => panic!("the worker ended before its run started: {r:?}"),
            () = running => {}
        }
        let gave_up = give_up_on(run).await;
        assert!(gave_up.is_err(), "the worker ended by itself: {gave_up:?}");
        assert!(worker.progress().get().is_some());
    });
    assert!(
        shuts_down(rt),
        "the runtime did not shut down within {SHUTDOWN:?}: the worker's writer still runs"
    );
    let files = files_in(&out_dir);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files_in(&out_dir), files);
}

/// A server whose `run` future is dropped ends its run there: the control says finished, the
/// client that was running is ABORTED ("server stopped"), and its connection is closed.
#[tokio::test(start_paused = true)]
async fn dropping_a_server_run_finishes_its_report() {
    let server = Server::bind(server_config()).await.unwrap();
    let addr = server.local_addr();
    let control = server.control();
    let mut events = control.subscribe();
    let mut run = Box::pin(server.run());
    let mut raw = Raw::connect(addr).await;
    let running = async {
        raw.seed_handshake().await;
        raw.send("start").await;
        while let Some(e) = events.next().await {
            if let EventKind::StatusChanged {
                status: Status::Running,
                ..
            } = e.kind
            {
                return;
            }
        }
        panic!("the event stream ended before the client ran");
    };
    tokio::select! {
        r = &mut run => panic!("the server stopped by itself: {r:?}"),
        () = running => {}
    }
    assert!(!control.is_finished());
    let gave_up = give_up_on(run).await;
    assert!(
        gave_up.is_err(),
        "the server stopped by itself: {gave_up:?}"
    );

    assert!(control.is_finished(), "a dropped run is over");
    let report = control.report();
    assert!(report.stopped);
    assert_eq!(report.clients.len(), 1);
    assert_eq!(report.clients[0].status, Status::Aborted);
    assert_eq!(
        report.clients[0].reason.as_deref(),
        Some(loadmon::report::STOPPED_REASON)
    );
    assert_eq!(control.snapshot()[0].status, Status::Aborted);
    // The event stream ends with that report, and the client's connection is closed.
    let mut last = None;
    while let Some(e) = tokio::time::timeout(WAIT, events.next()).await.unwrap() {
        last = Some(e.kind);
    }
    assert!(matches!(last, Some(EventKind::Report { .. })), "{last:?}");
    assert!(raw.closed().await);
}

/// A server whose `run` future is dropped (a caller's `tokio::time::timeout`) still writes the
/// report files it was configured with, as a stop does: the final report exists, and losing
/// it because the caller gave up on the future would lose the run's result.
#[tokio::test(start_paused = true)]
async fn dropping_a_server_run_writes_its_report_files() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let server = Server::bind(ServerConfig {
        report_json: Some(json.clone()),
        ..server_config()
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let control = server.control();
    let mut run = Box::pin(server.run());
    let mut raw = Raw::connect(addr).await;
    tokio::select! {
        r = &mut run => panic!("the server stopped by itself: {r:?}"),
        _ = raw.seed_handshake() => {}
    }
    let gave_up = give_up_on(run).await;
    assert!(
        gave_up.is_err(),
        "the server stopped by itself: {gave_up:?}"
    );
    assert!(control.is_finished());
    let written = std::fs::read_to_string(&json).expect("the report file of a dropped run");
    let back = loadmon::Report::from_json(&written).unwrap();
    assert_eq!(back, control.report());
}
