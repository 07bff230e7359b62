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
//! a while ([`auth_gate`], [`auth_failed`], see `guard.rs`). In fleet mode the acceptor also
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
use super::guard::{Failed, LOCKOUT};
use super::session::{late_reason, ClientState};
use super::{ClientCell, Shared};
use crate::connection::Connection;
use crate::events::EventKind;

/// How long a closing connection waits for the peer to read our last line.
pub(super) const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Accepts and serves connections until the run ends; returns whether it was stopped (by
/// `shutdown` or [`super::ServerControl::stop`]) rather than ending by itself. Every
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
                let due = shared.barrier().map(|mut b| b.on_timer(Instant::now()));
                match due {
                    Some(Due::Released(r)) => {
                        shared.released(r);
                        if r.started == 0 {
                            // Nobody to start: the run is over.
                            break true;
                        }
                    }
                    Some(Due::Wait(Some(at))) => {
                        start_timeout.as_mut().reset(at);
                        start_timeout_armed = true;
                    }
                    Some(Due::Wait(None) | Due::Done) | None => {}
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
    // Tell every connection to wrap up ("server stopped"), then wait for them: each one ends
    // within its close linger, whatever its peer does.
    shared.stop.cancel();
    shared.wrap_up.fire();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            log.warn(format!("a connection handler failed: {e}"));
        }
    }
    // A handler that panicked left its client unfinished.
    let now = Instant::now();
    for cell in shared.cells() {
        let event = super::lock_cell(&cell).set_status(
            crate::report::Status::Aborted,
            Some("connection handler ended unexpectedly".into()),
            now,
        );
        if let Some(e) = event {
            shared.events.emit(|| e);
        }
    }
    stopped
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

/// Whether `peer` may try a token now ([`guard`](super::guard)); the refusal if not.
pub(super) fn auth_gate(shared: &Shared, peer: SocketAddr, now: Instant) -> Result<(), String> {
    shared
        .auth_guard
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(peer.ip(), now)
}

/// Counts a wrong token or proof from `peer`; a lock-out it starts is logged (within the
/// refusals' log budget).
pub(super) fn auth_failed(shared: &Shared, peer: SocketAddr, now: Instant) {
    let failed = shared
        .auth_guard
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .failed(peer.ip(), now);
    if let Failed::LockedOut(n) = failed {
        shared.warn_refusal(format!(
            "Locking out {} for {:.0} s: {n} failed token attempts",
            peer.ip(),
            LOCKOUT.as_secs_f64()
        ));
    }
}

/// A client's slot and id, taken at `get_cid`.
pub(super) struct Admitted {
    pub id: u32,
    pub cell: ClientCell,
    /// Given back when the connection ends.
    pub slot: OwnedSemaphorePermit,
}

/// Takes a `max_clients` slot and the next id for `peer`, or says why not.
pub(super) fn register(
    shared: &Shared,
    peer: SocketAddr,
    protocol_version: Option<String>,
    now: Instant,
) -> Result<Admitted, String> {
    if let Some(r) = shared.barrier().and_then(|b| b.released()) {
        return Err(late_reason(r.started));
    }
    let slot = shared
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| format!("server full: {} clients max", shared.config.max_clients))?;
    let mut st = shared.lock();
    if st.issued >= shared.config.max_ids {
        return Err(format!(
            "client id limit reached: this run hands out at most {} ids",
            shared.config.max_ids
        ));
    }
    let Some(id) = st.next_id else {
        return Err(format!(
            "client ids exhausted: the last id ({}) was given",
            u32::MAX
        ));
    };
    st.next_id = id.checked_add(1);
    st.issued += 1;
    let cell = Arc::new(std::sync::Mutex::new(ClientState::new(
        id,
        peer,
        protocol_version,
        now,
    )));
    st.clients.insert(id, cell.clone());
    Ok(Admitted { id, cell, slot })
}
