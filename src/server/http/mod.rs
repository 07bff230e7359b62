//! The optional HTTP listener (axum routes, connections driven by hyper on the server's own
//! runtime): a JSON API, Prometheus `/metrics` and a dashboard page embedded in the binary.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the dashboard (one HTML page, no external file) |
//! | `GET /api/clients` | live snapshot: the JSON report's client objects |
//! | `GET /api/report` | the report so far; the final one after the run |
//! | `GET /api/series` | each client's time series (throughput, CPU, memory) |
//! | `GET /api/io` | each client's host I/O view over time (device utilisation, write wait, queue, MB/s, I/O pressure, dirty/writeback) |
//! | `GET /api/total` | the report's `total`: all clients together, with the all-clients series |
//! | `GET /api/server` | version, addresses, uptime, whether the run is over, the fleet's barrier |
//! | `GET /metrics` | Prometheus text exposition format 0.0.4 |
//!
//! With a token set, every route but the dashboard page needs `Authorization: Bearer <token>`
//! (the scheme in any case) or `X-Loadmon-Token: <token>`; the page reads the token from its
//! URL fragment (`http://host:port/#token=…`), which browsers never send to the server.
//!
//! DNS rebinding: a web page on a name its attacker points at this listener's address (say
//! 127.0.0.1) would be same-origin with it in the browser, and could read the report. So every
//! route answers only requests whose `Host` is an IP address, `localhost`, or a name of
//! [`ServerConfig::http_allow_hosts`](crate::server::ServerConfig::http_allow_hosts) (`*`:
//! any); any other name gets `421 Misdirected Request` saying how to allow it. An IP address
//! or `localhost` cannot be rebound (the attack needs a name its attacker controls); a request
//! without `Host` (no browser sends one) is served. No CORS header is ever sent, so no other
//! origin may read an answer.
//!
//! The listener shares the process's file descriptors with the protocol port, so no peer may
//! hold a connection for free ([`HttpLimits`]): at most `max_connections` at once (the next one
//! gets a minimal `503` and is closed at once), request headers must arrive within
//! `header_read_timeout`, a keep-alive connection idle for `idle_timeout` is closed, and a
//! response the peer does not read is dropped after `write_timeout` without progress.
//!
//! Large bodies are serialised once and shared ([`Bytes`](axum::body::Bytes)) by every
//! request that wants them: the final report for as long as the listener lives, live data for
//! [`LIVE_TTL`](bodies::LIVE_TTL). N slow readers therefore hold one copy, not N.
//!
//! # Rooms
//!
//! - [`listener`]: accepting within the connection cap, driving each connection with hyper,
//!   stopping; [`timeouts`]: a connection's header, idle and write timeouts.
//! - [`routes`]: the routes and their handlers; [`access`]: the `Host` allow-list and the
//!   token in front of them; [`bodies`]: the shared bodies of the large answers.
//! - [`metrics`]: the Prometheus exposition, one table row per metric family.
//!
//! The listener knows no route and the routes no socket: [`serve`] joins them.

mod access;
mod bodies;
mod listener;
mod metrics;
mod routes;
#[cfg(test)]
mod tests;
mod timeouts;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::logging::EventLog;
use crate::server::{HttpLimits, ServerControl};

/// Serves until `stop` is cancelled, within `limits`. Once stopped it accepts no one, lets
/// in-flight responses finish for a short grace time, then closes what is left.
pub(crate) async fn serve(
    listener: TcpListener,
    control: ServerControl,
    token: Option<String>,
    allow_hosts: Vec<String>,
    stop: CancellationToken,
    log: Arc<EventLog>,
    limits: HttpLimits,
) {
    let app = routes::App {
        control,
        token: token.map(Arc::from),
        hosts: Arc::new(access::Hosts::new(&allow_hosts)),
        bodies: Arc::default(),
    };
    listener::serve_app(listener, routes::router(app), stop, log, limits).await;
}
