//! The listener: accepts connections up to the cap, drives each with hyper on the server's
//! runtime within the [`HttpLimits`] (its timeouts: [`timeouts`](super::timeouts)), and
//! stops when told. It knows no route: it serves whatever [`Router`] it is given.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::timeouts::{Guarded, Phase, Watch};
use crate::logging::EventLog;
use crate::server::HttpLimits;

/// Longest the listener waits, once stopped, for in-flight responses (at most the write
/// timeout); connections still open then are closed.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Backoff after a failed `accept` (for instance out of file descriptors), doubled up to the max.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a connection beyond [`HttpLimits::max_connections`] is sent (best effort, never
/// waited for) before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain\r\n\
content-length: 26\r\n\
retry-after: 1\r\n\
connection: close\r\n\
\r\n\
too many HTTP connections\n";

/// Serves `router` on `listener` until `stop` is cancelled, within `limits`. Once stopped it
/// accepts no one, lets in-flight responses finish for a short grace time, then closes what
/// is left.
pub(super) async fn serve_app(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    log: Arc<EventLog>,
    limits: HttpLimits,
) {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut conns = JoinSet::new();
    let mut refused = Refusals::default();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            // Reap finished connections as they end.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        let (router, stop, log) = (router.clone(), stop.clone(), log.clone());
                        conns.spawn(async move {
                            connection(stream, router, limits, stop, log).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        refuse(stream);
                        refused.note(limits.max_connections, &log);
                    }
                }
            }
            Err(e) => {
                if backoff == ACCEPT_BACKOFF_MIN {
                    log.warn(format!("HTTP listener: accept failed: {e} (retrying)"));
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    drop(listener);
    drain(conns, limits, &log).await;
}

/// Lets the connections still open finish within the shutdown grace, then closes them.
async fn drain(mut conns: JoinSet<()>, limits: HttpLimits, log: &EventLog) {
    let grace = limits.write_timeout.min(SHUTDOWN_GRACE);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        log.debug(|| {
            format!(
                "HTTP listener stopped; {} connection(s) still busy after {:.1} s closed",
                conns.len(),
                grace.as_secs_f64()
            )
        });
        conns.shutdown().await;
    }
}

/// Sends [`BUSY`] if the socket takes it at once, then closes the connection.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(BUSY);
}

/// Logs refused connections: the first at once, then a count at most once a minute.
#[derive(Default)]
struct Refusals {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, max: usize, log: &EventLog) {
        self.unlogged += 1;
        if self
            .logged_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        log.warn(format!(
            "HTTP: {} connection(s) refused: {max} already open (the limit)",
            self.unlogged
        ));
        self.unlogged = 0;
        self.logged_at = Some(Instant::now());
    }
}

/// Serves one connection until it ends, overstays a limit, or the listener stops.
pub(super) async fn connection<I>(
    io: I,
    router: Router,
    limits: HttpLimits,
    stop: CancellationToken,
    log: Arc<EventLog>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Guarded::new(io, watch.clone(), limits.write_timeout));
    let tower = TowerToHyperService::new(router);
    let service_watch = watch.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        service_watch.set(Phase::Handling);
        let answer = hyper::service::Service::call(&tower, req);
        let watch = service_watch.clone();
        async move {
            let r = answer.await;
            watch.set(Phase::Idle(Instant::now()));
            r
        }
    });
    // The timeouts are [`Watch`]'s and [`Guarded`]'s, not hyper's: hyper's header timeout
    // also runs between keep-alive requests and hyper has no write timeout.
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .writev(true)
        .header_read_timeout(None::<Duration>)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    log.debug(|| format!("HTTP connection ended: {e}"));
                }
                return;
            }
            why = watch.expired(&limits) => {
                log.debug(|| format!("HTTP connection closed: {why}"));
                return;
            }
            () = stop.cancelled(), if !stopping => {
                // Idle connections close now, a response in flight finishes first.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
