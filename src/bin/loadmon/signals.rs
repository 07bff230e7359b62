//! Signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP stop a run (the server's on a thread of its
//! own, a client's or worker's in its runtime); SIGXFSZ is caught so that a file-size limit is
//! an error, not a kill.

use std::sync::{Arc, OnceLock};

use loadmon::blocking::ServerHandle;
use loadmon::Error;

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP, caught from the moment this is made: a signal that
/// comes before the first [`recv`](ShutdownSignals::recv) (right after "listening on", say) is
/// kept for it instead of killing the process without a report.
///
/// SIGHUP (the terminal or the ssh session closed) stops a run as SIGTERM does: the server
/// writes its report, a client or worker ends as stopped. A process started with SIGHUP
/// ignored (`nohup`, or `trap '' HUP` in a script: it was detached on purpose) keeps ignoring
/// it and runs on.
pub(crate) struct ShutdownSignals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Installs the handlers; call inside the runtime.
    pub(crate) fn new() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // Looked at before any handler replaces the disposition the process started with.
            let hup_ignored = *HUP_IGNORED_AT_START.get_or_init(hup_ignored);
            ShutdownSignals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
                hup: if hup_ignored {
                    None
                } else {
                    signal(SignalKind::hangup()).ok()
                },
            }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    /// Completes on the next Ctrl-C, SIGTERM or SIGHUP, with the signal's name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                let got = match s {
                    Some(s) => s.recv().await,
                    None => None,
                };
                if got.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => "SIGINT",
                _ = next(&mut self.term) => "SIGTERM",
                _ = next(&mut self.hup) => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Whether SIGHUP was ignored when the process started (see [`ShutdownSignals`]).
#[cfg(unix)]
static HUP_IGNORED_AT_START: OnceLock<bool> = OnceLock::new();

/// Whether this process ignores SIGHUP, from the kernel's view of it (`SigIgn` in
/// /proc/self/status: bit 0 is SIGHUP). Where there is no /proc, `false`: SIGHUP stops the run.
#[cfg(unix)]
fn hup_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGHUP - 1)) != 0)
}

/// Runs `stop` (with the signal's name) in `rt` on the first Ctrl-C, SIGTERM or SIGHUP; the
/// handlers are installed before this returns.
pub(crate) fn stop_on_signal(
    rt: &tokio::runtime::Runtime,
    stop: impl FnOnce(&'static str) + Send + 'static,
) {
    let mut signals = {
        let _enter = rt.enter();
        ShutdownSignals::new()
    };
    rt.spawn(async move {
        let signal = signals.recv().await;
        stop(signal);
    });
}

/// A handler for SIGXFSZ while the returned value lives. A file-size limit (RLIMIT_FSIZE)
/// raises SIGXFSZ, which kills the process by default; with a handler installed, write()
/// fails with EFBIG instead, the client reports the error to the server (FAILED) and exits 1
/// with a message.
#[cfg(unix)]
pub(crate) fn catch_file_size_limit(
    rt: &tokio::runtime::Runtime,
) -> Option<tokio::signal::unix::Signal> {
    let _enter = rt.enter();
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).ok()
}

/// Ctrl-C, SIGTERM and SIGHUP for the server, on a thread of their own: installed before the
/// server starts, then [`Signals::watch`] stops the run on the first one (or, once the run is
/// over, ends the HTTP linger).
pub(crate) struct Signals {
    rt: tokio::runtime::Runtime,
    signals: ShutdownSignals,
}

impl Signals {
    pub(crate) fn install() -> Result<Signals, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))?;
        let signals = {
            let _in_runtime = rt.enter();
            ShutdownSignals::new()
        };
        Ok(Signals { rt, signals })
    }

    /// Watches for the life of the process; the returned cell names the signal that stopped
    /// the run, if one did.
    pub(crate) fn watch(
        self,
        server: Arc<ServerHandle>,
    ) -> Result<Arc<OnceLock<&'static str>>, Error> {
        let stopped_by = Arc::new(OnceLock::new());
        let cell = stopped_by.clone();
        let Signals { rt, mut signals } = self;
        std::thread::Builder::new()
            .name("loadmon-signals".into())
            .spawn(move || {
                rt.block_on(async {
                    loop {
                        let signal = signals.recv().await;
                        if server.control().is_finished() {
                            server.close_http();
                        } else {
                            let _ = cell.set(signal);
                            server.control().stop();
                        }
                    }
                })
            })
            .map_err(|e| Error::Internal(format!("cannot start the signal thread: {e}")))?;
        Ok(stopped_by)
    }
}
