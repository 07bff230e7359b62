//! Handles still running at interpreter exit: every server, client and worker this process
//! started and still holds, so that `loadmon._logging`'s exit hook stops them (and the servers
//! write their reports) before Python is torn down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use loadmon::blocking::{ClientHandle, ServerHandle, WorkerHandle};
use pyo3::prelude::*;

use crate::errors::guard;
use crate::wait::lock;

/// A running handle, held weakly.
pub(crate) enum Live {
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

/// The handles started and still held.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// Set once interpreter exit gave the running `run_tests` their time (`_shutdown`): a client
/// thread still waiting for one stops waiting (its Python thread will never run again).
pub(crate) static PY_GONE: AtomicBool = AtomicBool::new(false);

/// Records a started handle.
pub(crate) fn register(l: Live) {
    let mut g = lock(&LIVE);
    g.retain(Live::alive);
    g.push(l);
}

/// Forgets every handle (a forked child: the parent's have no thread here).
pub(crate) fn forget_all() {
    lock(&LIVE).clear();
}

/// Cancels every running client and worker and stops every running server, then waits (GIL released) up
/// to `timeout` seconds for them all. Called by `loadmon._logging` at interpreter exit.
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>, timeout: f64) -> PyResult<()> {
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
