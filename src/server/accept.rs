//! Admission: which connections get served, and when a run ends.
//!
//! A new connection needs one of `max_pending` places (connections without an id yet); the
//! place is given back when the connection gets an id or closes, and the handshake deadline
//! bounds how long it can be held. While every place is taken the server accepts nothing: new
//! connections wait in the kernel's listen queue (TCP backpressure) and are served, in order,
//! as places free up. A connection storm (a fleet of thousands starting at once, on a busy
//! machine) is slowed down, never refused; silent sockets can delay others by at most the
//! handshake deadline. A `max_clients` slot and an id are taken only at `get_cid`,
//! after the token: silent or unauthenticated sockets can never lock out a client that has the
//! token. A peer address that keeps sending wrong tokens is slowed down, then locked out for
//! a while (`Shared::auth_gate`, `Shared::auth_failed`, see `guard.rs`). In fleet mode the acceptor also
//! runs the start timeout, refuses `get_cid` after the fleet started, and does not end the run
//! when every connection has closed before the start (the fleet may still be gathering).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::barrier::Due;
use super::shared::{lock_cell, Shared};
use crate::connection::Connection;
use crate::events::EventKind;

/// Accepts and serves connections until the run ends; returns whether it was stopped (by
/// `shutdown` or [`ServerControl::stop`](super::ServerControl::stop)) rather than ending by itself. Every
/// connection has been closed when this returns.
pub(super) async fn serve(
    listener: TcpListener,
    shared: &Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let log = shared.log.clone();
    let mut tasks = JoinSet::new();
    let mut accept_backoff = Duration::from_millis(10);
    // A handshake place, taken before accepting: none free, nothing accepted.
    let mut place: Option<OwnedSemaphorePermit> = None;
    tokio::pin!(shutdown);
    // Fleet mode's start timeout (fixed from the server's start).
    let start_deadline = shared.barrier().and_then(|b| b.deadline());
    let start_timeout = tokio::time::sleep_until(start_deadline.unwrap_or_else(Instant::now));
    tokio::pin!(start_timeout);
    let mut start_timeout_armed = start_deadline.is_some();
    let stopped = loop {
        tokio::select! {
            _ = &mut start_timeout, if start_timeout_armed => {
                start_timeout_armed = false;
                match start_timeout_due(shared) {
                    StartDue::GiveUp => break true,
                    StartDue::Again(at) => {
                        start_timeout.as_mut().reset(at);
                        start_timeout_armed = true;
                    }
                    StartDue::Nothing => {}
                }
            }
            _ = &mut shutdown => {
                log.info("Shutdown requested: stopping server...");
                break true;
            }
            _ = shared.stop.cancelled() => {
                log.info("Stop requested: stopping server...");
                break true;
            }
            free = shared.pending.clone().acquire_owned(), if place.is_none() => {
                // The semaphore is never closed.
                place = free.ok();
            }
            accepted = listener.accept(), if place.is_some() => match accepted {
                Ok((stream, peer)) => {
                    accept_backoff = Duration::from_millis(10);
                    if let Some(place) = place.take() {
                        admit(shared, &mut tasks, stream, peer, place);
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    log.warn(format!("accept failed: {e}; retrying in {accept_backoff:?}"));
                    tokio::time::sleep(accept_backoff).await;
                    accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                }
            },
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined {
                    log.warn(format!("a connection handler failed: {e}"));
                }
                // In fleet mode, not before the start: a fleet may still be gathering (a
                // client that came early and left does not end the run).
                let gathering = shared.barrier().is_some_and(|b| b.released().is_none());
                if tasks.is_empty() && !gathering && !shared.lock().clients.is_empty() {
                    log.info("All client connections closed.");
                    break false;
                }
            }
        }
    };
    drop(listener);
    wrap_up(shared, tasks).await;
    stopped
}

/// What the start timeout found.
enum StartDue {
    /// Nobody was ready to start: the run is over.
    GiveUp,
    /// Look again then.
    Again(Instant),
    /// Nothing more to do.
    Nothing,
}

/// Fleet mode's start timeout fired: the barrier starts whoever is ready (or gives up).
fn start_timeout_due(shared: &Shared) -> StartDue {
    let due = shared.barrier().map(|mut b| b.on_timer(Instant::now()));
    match due {
        Some(Due::Released(r)) => {
            shared.released(r);
            if r.started == 0 {
                return StartDue::GiveUp;
            }
            StartDue::Nothing
        }
        Some(Due::Wait(Some(at))) => StartDue::Again(at),
        Some(Due::Wait(None) | Due::Done) | None => StartDue::Nothing,
    }
}

/// The run is over: tells every connection to wrap up ("server stopped"), then waits for
/// them (each one ends within its close linger, whatever its peer does).
async fn wrap_up(shared: &Shared, mut tasks: JoinSet<()>) {
    shared.stop.cancel();
    shared.wrap_up.fire();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            shared.log.warn(format!("a connection handler failed: {e}"));
        }
    }
    // A handler that panicked left its client unfinished.
    let now = Instant::now();
    for cell in shared.cells() {
        let event = lock_cell(&cell).set_status(
            crate::report::Status::Aborted,
            Some("connection handler ended unexpectedly".into()),
            now,
        );
        if let Some(e) = event {
            shared.events.emit(|| e);
        }
    }
}

/// Serves `stream` in its handshake `place`.
fn admit(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    stream: TcpStream,
    peer: SocketAddr,
    place: OwnedSemaphorePermit,
) {
    shared
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.events.emit(|| EventKind::ClientConnected {
        peer: peer.to_string(),
    });
    let conn = Connection::new(stream, shared.config.max_line_bytes);
    tasks.spawn(super::conn::serve(shared.clone(), conn, peer, place));
}
