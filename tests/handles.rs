//! The blocking handles never leave a result unset and the rules layer refuses absurd numbers:
//! a panic on an engine thread is an `Internal` error, a run time of 1e300 s a configuration
//! error, a context used after its run a `State` error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadmon::blocking::{ClientHandle, EventPoll, ServerHandle};
use loadmon::client::ClientConfig;
use loadmon::error::ErrorKind;
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
use loadmon::workload::{Context, Workload};

const JOIN: Option<Duration> = Some(Duration::from_secs(30));

fn server() -> ServerHandle {
    ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap()
}

fn client(port: u16) -> ClientConfig {
    ClientConfig {
        port,
        heartbeat_period: Duration::from_millis(100),
        stats_period: Duration::from_millis(100),
        ..Default::default()
    }
}

/// A workload whose `run_time` panics: it is called on the client's engine thread, outside the
/// workload's own catch.
struct PanickyRunTime;
impl Workload for PanickyRunTime {
    fn run_time(&self) -> Option<Duration> {
        panic!("run_time exploded")
    }
    fn run(&mut self, _ctx: &Context) -> loadmon::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panic_on_the_client_thread_is_an_internal_error_not_a_hang() {
    let s = server();
    let h = ClientHandle::spawn(client(s.port()), PanickyRunTime).unwrap();
    let e = h.join(JOIN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert!(e.to_string().contains("run_time exploded"), "{e}");
    // Joining again gives the same answer at once.
    assert_eq!(
        h.join(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::Internal
    );
    drop(s);
}

/// A workload that claims a run time no clock can add, and ends when cancelled.
struct Forever(Arc<Mutex<Option<Context>>>);
impl Workload for Forever {
    fn run_time(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        *self.0.lock().unwrap() = Some(ctx.clone());
        while !ctx.time_is_up() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

#[test]
fn a_huge_run_time_does_not_panic_and_the_context_dies_with_the_run() {
    let s = server();
    let seen = Arc::new(Mutex::new(None));
    let h = ClientHandle::spawn(client(s.port()), Forever(seen.clone())).unwrap();
    for _ in 0..3000 {
        if seen.lock().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let ctx = seen.lock().unwrap().clone().expect("the workload started");
    assert!(!ctx.is_finished() && !ctx.is_stopped());
    ctx.file_rollover().unwrap();
    h.cancel();
    let e = h.join(JOIN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
    // After the run: stopped, finished, and every report refused.
    assert!(ctx.is_stopped() && ctx.is_finished());
    assert_eq!(
        ctx.remaining(),
        None,
        "a run time no clock can add has no deadline"
    );
    assert_eq!(ctx.file_rollover().unwrap_err().kind(), ErrorKind::State);
    assert_eq!(
        ctx.record_write(1, Duration::from_millis(1))
            .unwrap_err()
            .kind(),
        ErrorKind::State
    );
    assert_eq!(
        ctx.send_stats(1.0, 1.0).unwrap_err().kind(),
        ErrorKind::State
    );
    assert_eq!(ctx.files_written(), 1);
    let report = s.stop().unwrap();
    assert_eq!(
        report.clients[0].files_written, 1,
        "the late report did not count"
    );
}

#[test]
fn absurd_run_times_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    for run_time_s in [1e300, 1.8e19, f64::NAN, f64::INFINITY, -1.0, 0.0, 1e9 + 1.0] {
        let e = FileWriter::new(FileWriterConfig {
            run_time_s,
            out_dir: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{run_time_s}: {e}");
    }
    let e = ClientHandle::spawn(
        ClientConfig {
            connect_timeout: Duration::from_secs(2_000_000_000),
            ..Default::default()
        },
        PanickyRunTime,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn events_wait_without_a_runtime_of_their_own() {
    let s = server();
    let mut events = s.events().unwrap();
    // Nothing yet: a zero timeout polls and returns at once.
    assert_eq!(
        events.next_timeout(Some(Duration::ZERO)),
        EventPoll::Timeout
    );
    assert_eq!(
        events.next_timeout(Some(Duration::from_millis(20))),
        EventPoll::Timeout
    );
    // A timeout too long for the clock waits like no timeout: the stop's report wakes it.
    let ctl = s.control();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        ctl.stop();
    });
    match events.next_timeout(Some(Duration::MAX)) {
        EventPoll::Event(e) => assert!(e.is_final(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(events.next_timeout(None), EventPoll::Ended);
    stopper.join().unwrap();
}

/// A workload that reports more bytes than a counter holds: the count saturates, never wraps.
struct Huge(Arc<Mutex<Option<Context>>>);
impl Workload for Huge {
    fn run_time(&self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        *self.0.lock().unwrap() = Some(ctx.clone());
        ctx.record_write(u64::MAX - 1, Duration::ZERO)?;
        ctx.record_write(u64::MAX - 1, Duration::ZERO)?;
        assert_eq!(ctx.bytes_written(), u64::MAX);
        Ok(())
    }
}

#[test]
fn byte_counts_saturate() {
    let s = server();
    let seen = Arc::new(Mutex::new(None));
    let r = ClientHandle::spawn(client(s.port()), Huge(seen.clone()))
        .unwrap()
        .join(JOIN)
        .unwrap();
    assert_eq!(r.bytes_written, u64::MAX);
    // Once the run is over, no time is left of it (even if it ended early).
    let ctx = seen.lock().unwrap().clone().unwrap();
    assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    let report = s.wait(JOIN).unwrap();
    assert_eq!(report.clients[0].bytes_written, u64::MAX);
}

#[test]
fn a_token_that_cannot_fit_in_a_line_is_a_configuration_error() {
    let long = "x".repeat(100_000);
    for token in [long.as_str(), "a\0b", "tab\there"] {
        let e = ServerHandle::start(ServerConfig {
            port: 0,
            token: Some(token.into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let e = ClientHandle::spawn(
            ClientConfig {
                token: Some(token.into()),
                ..Default::default()
            },
            Huge(Arc::default()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    // The longest token that fits still works end to end.
    let max = ServerConfig::default().max_line_bytes - "token:".len() - 1;
    let token = "t".repeat(max);
    let s = ServerHandle::start(ServerConfig {
        port: 0,
        token: Some(token.clone()),
        ..Default::default()
    })
    .unwrap();
    let r = ClientHandle::spawn(
        ClientConfig {
            token: Some(token),
            ..client(s.port())
        },
        Huge(Arc::default()),
    )
    .unwrap()
    .join(JOIN);
    assert!(r.is_ok(), "{r:?}");
}

/// The thread count of a server handle is a setting with a bound, checked by the core's rules:
/// 0 is not silently one thread, and 100,000 is an error, not an aborted process.
#[test]
fn the_server_thread_count_is_a_bounded_setting() {
    let config = || ServerConfig {
        port: 0,
        ..Default::default()
    };
    let max = loadmon::config::MAX_SERVER_THREADS;
    for n in [0, max + 1, 100_000] {
        let e = ServerHandle::start_on(config(), n).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{n}: {e}");
        assert!(
            e.to_string()
                .contains(&format!("threads must be from 1 to {max}, not {n}")),
            "{e}"
        );
    }
    for n in [1, 2] {
        let s = ServerHandle::start_on(config(), n).unwrap();
        assert!(s.stop().unwrap().clients.is_empty());
    }
}

/// The blocking handles work when called from async code (a `#[tokio::main]` program): they
/// own their runtime on a thread of their own, and never start or drop one on the caller's.
#[tokio::test]
async fn the_blocking_handles_work_from_async_code() {
    let s = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    assert_ne!(s.port(), 0);
    let id = loadmon::blocking::report_failure(client(s.port()), None, "no disk here").unwrap();
    assert_eq!(id, 100);
    let report = s.wait(JOIN).unwrap();
    assert_eq!(report.clients[0].status, loadmon::Status::Failed);
    assert_eq!(report.clients[0].reason.as_deref(), Some("no disk here"));
    drop(s);
}
