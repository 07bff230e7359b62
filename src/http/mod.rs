//! The optional HTTP listener (axum routes, connections driven by hyper on the server's own
//! runtime): a JSON API, Prometheus `/metrics` and a dashboard page embedded in the binary.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the dashboard (one HTML page, no external file) |
//! | `GET /api/clients` | live snapshot: the JSON report's client objects |
//! | `GET /api/report` | the report so far; the final one after the run |
//! | `GET /api/series` | each client's time series (throughput, CPU, memory) |
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
//! Large bodies are serialised once and shared ([`Bytes`]) by every request that wants them:
//! the final report for as long as the listener lives, live data for [`LIVE_TTL`]. N slow
//! readers therefore hold one copy, not N.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::logging::EventLog;
use crate::report::Status;
use crate::server::{HttpLimits, ServerControl};

const DASHBOARD: &str = include_str!("dashboard.html");

/// How long a live (not final) body is shared before it is rebuilt.
const LIVE_TTL: Duration = Duration::from_secs(1);

/// Longest the listener waits, once stopped, for in-flight responses (at most the write
/// timeout); connections still open then are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

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

#[derive(Clone)]
struct App {
    control: ServerControl,
    token: Option<Arc<str>>,
    hosts: Arc<Hosts>,
    bodies: Arc<Bodies>,
}

/// The `Host` names the listener answers to, besides IP addresses and `localhost`.
#[derive(Debug, Default)]
struct Hosts {
    /// `*` was given: any.
    any: bool,
    /// Lower case, without a trailing dot.
    names: Vec<String>,
}

/// The host of a `Host` header value, as far as [`Hosts`] cares.
#[derive(Debug, PartialEq)]
enum HostName {
    /// An IP address (`1.2.3.4`, `[::1]`), with or without a port.
    Ip,
    /// A name, lower case, without port and trailing dot.
    Name(String),
}

impl Hosts {
    fn new(allow: &[String]) -> Hosts {
        Hosts {
            any: allow.iter().any(|h| h == "*"),
            names: allow
                .iter()
                .map(|h| {
                    let h = h.trim_start_matches('[').trim_end_matches(']');
                    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
                })
                .collect(),
        }
    }

    /// Whether a request with this `Host` value is served.
    fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        match host_name(host) {
            Some(HostName::Ip) => true,
            Some(HostName::Name(n)) => n == "localhost" || self.names.contains(&n),
            None => false,
        }
    }
}

/// The host of a `Host` header value (`name`, `name:port`, `1.2.3.4:port`, `[v6]:port`);
/// `None` if it is none of these.
fn host_name(value: &str) -> Option<HostName> {
    let port_ok = |p: Option<&str>| p.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return port_ok(port).then_some(HostName::Ip);
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (value, None),
    };
    if !port_ok(port) {
        return None;
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(HostName::Ip);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then(|| HostName::Name(name.to_ascii_lowercase()))
}

/// The shared bodies of the routes whose answer can be large.
#[derive(Default)]
struct Bodies {
    report: BodyCache,
    clients: BodyCache,
    series: BodyCache,
    total: BodyCache,
    metrics: BodyCache,
}

/// One serialised body, handed to every request while it is current: cloning [`Bytes`]
/// shares the allocation, and hyper writes it without copying.
#[derive(Default)]
struct BodyCache {
    /// Held while a body is built, so concurrent requests wait for that one build.
    slot: tokio::sync::Mutex<Option<CachedBody>>,
    /// How many bodies were built (for the tests).
    builds: AtomicU64,
}

struct CachedBody {
    body: Bytes,
    built: Instant,
    /// Whether the run was over when the body was built.
    finished: bool,
}

impl BodyCache {
    /// The current body, built by `build` if there is none. A body is current for
    /// [`LIVE_TTL`] and never across the end of the run; with `keep_final`, a body built after
    /// the run is current for good (the final report never changes).
    async fn get<E>(
        &self,
        finished: bool,
        keep_final: bool,
        build: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            let current = c.finished == finished
                && ((finished && keep_final) || c.built.elapsed() < LIVE_TTL);
            if current {
                return Ok(c.body.clone());
            }
        }
        let body = build()?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        *slot = Some(CachedBody {
            body: body.clone(),
            built: Instant::now(),
            finished,
        });
        Ok(body)
    }
}

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
    let app = App {
        control,
        token: token.map(Arc::from),
        hosts: Arc::new(Hosts::new(&allow_hosts)),
        bodies: Arc::default(),
    };
    serve_app(listener, app, stop, log, limits).await;
}

async fn serve_app(
    listener: TcpListener,
    app: App,
    stop: CancellationToken,
    log: Arc<EventLog>,
    limits: HttpLimits,
) {
    let router = router(app);
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
async fn connection<I>(
    io: I,
    router: Router,
    limits: HttpLimits,
    stop: CancellationToken,
    log: Arc<EventLog>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Guarded {
        io,
        watch: watch.clone(),
        write_timeout: limits.write_timeout,
        stall: None,
    });
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

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers since this instant.
    Head(Instant),
    /// A request is in a handler.
    Handling,
    /// Between requests (or writing a response); the last byte moved at this instant.
    Idle(Instant),
}

/// One connection's [`Phase`], updated by its I/O and its service, watched for timeouts.
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.phase() = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: after an idle pause they start the next request's headers.
    fn read_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Bytes left: the connection is not idle (only pushes a deadline later, no wake needed).
    fn wrote_some(&self) {
        if let Phase::Idle(t) = &mut *self.phase() {
            *t = Instant::now();
        }
    }

    /// When the current phase overstays its limit (`None`: no limit, or too far to count).
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, &'static str)> {
        match *self.phase() {
            Phase::Head(t) => t
                .checked_add(limits.header_read_timeout)
                .map(|d| (d, "no complete request headers within the header timeout")),
            Phase::Idle(t) => t
                .checked_add(limits.idle_timeout)
                .map(|d| (d, "idle for the idle timeout")),
            Phase::Handling => None,
        }
    }

    /// Completes when the connection overstays its phase's limit, with the reason.
    async fn expired(&self, limits: &HttpLimits) -> &'static str {
        loop {
            match self.deadline(limits) {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A connection's socket that reports traffic to its [`Watch`] and fails a write the peer
/// has not taken a byte of for `write_timeout`.
struct Guarded<I> {
    io: I,
    watch: Arc<Watch>,
    write_timeout: Duration,
    /// Running while a write waits on the peer.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<I> Guarded<I> {
    /// Passes a ready write through (and stops the stall timer); on a pending one starts the
    /// timer, or fails once it ran out.
    fn bounded<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let limit = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took no byte of the response within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.watch.wrote_some();
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.read_some();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&r);
        this.bounded(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&r);
        this.bounded(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.bounded(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.bounded(cx, r)
    }
}

fn router(app: App) -> Router {
    let api = Router::new()
        .route("/api/clients", get(clients))
        .route("/api/report", get(report))
        .route("/api/series", get(series))
        .route("/api/total", get(total))
        .route("/api/server", get(server))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/", get(dashboard))
        .merge(api)
        .layer(middleware::from_fn_with_state(app.clone(), require_host))
        .with_state(app)
}

/// Refuses a request for a host name that is not this listener's (DNS rebinding: see the
/// module docs), with `421` and how to allow it.
async fn require_host(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut given = req.headers().get_all(header::HOST).iter();
    let refused = match (given.next(), given.next()) {
        (_, Some(_)) => Some("more than one Host header".to_string()),
        (Some(v), None) if !app.hosts.allows(v.to_str().unwrap_or("")) => {
            let shown: String = String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(100)
                .collect();
            Some(format!(
                "this listener does not answer to the host {shown:?}"
            ))
        }
        // No Host (no browser sends such a request), or one it answers to.
        _ => None,
    };
    // An absolute-form request (`GET http://name/ HTTP/1.1`) names its host there too.
    let refused = refused.or_else(|| {
        let a = req.uri().authority()?;
        (!app.hosts.allows(a.as_str()))
            .then(|| format!("this listener does not answer to the host {:?}", a.as_str()))
    });
    let Some(why) = refused else {
        return next.run(req).await;
    };
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(serde_json::json!({
            "error": format!(
                "{why} (a protection against DNS rebinding): use an IP address or localhost, \
                 or start the server with --http-allow-host NAME (http_allow_hosts) for each \
                 name it is reached by"
            )
        })),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches([' ', '\t']))
}

/// Whether the request carries the token (always true without one).
fn authorised(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .or_else(|| headers.get("x-loadmon-token").and_then(|v| v.to_str().ok()));
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

async fn require_token(State(app): State<App>, req: Request, next: Next) -> Response {
    if authorised(app.token.as_deref(), req.headers()) {
        return next.run(req).await;
    }
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "a token is required: send Authorization: Bearer <token>"
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"loadmon\""),
    );
    r
}

async fn dashboard() -> Response {
    let mut r = Html(DASHBOARD).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(v).map(Bytes::from)
}

/// A shared JSON body as a response (a 500 if it could not be serialised).
fn json_response(body: Result<Bytes, serde_json::Error>) -> Response {
    match body {
        Ok(b) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            b,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not serialise the answer: {e}"),
        )
            .into_response(),
    }
}

impl App {
    async fn report_body(&self) -> Result<Bytes, serde_json::Error> {
        // Read "finished" first: if it is true, report() is the final report.
        let finished = self.control.is_finished();
        self.bodies
            .report
            .get(finished, true, || to_json(&self.control.report()))
            .await
    }
}

async fn clients(State(app): State<App>) -> Response {
    let finished = app.control.is_finished();
    json_response(
        app.bodies
            .clients
            .get(finished, false, || to_json(&app.control.snapshot()))
            .await,
    )
}

async fn report(State(app): State<App>) -> Response {
    json_response(app.report_body().await)
}

async fn series(State(app): State<App>) -> Response {
    let finished = app.control.is_finished();
    json_response(
        app.bodies
            .series
            .get(finished, false, || to_json(&app.control.series()))
            .await,
    )
}

async fn total(State(app): State<App>) -> Response {
    let finished = app.control.is_finished();
    json_response(
        app.bodies
            .total
            .get(finished, true, || to_json(&app.control.report().total))
            .await,
    )
}

async fn server(State(app): State<App>) -> Response {
    let c = &app.control;
    let (connections, refused) = c.connection_counts();
    Json(serde_json::json!({
        "version": crate::VERSION,
        "protocol_addr": c.local_addr().to_string(),
        "http_addr": c.http_addr().map(|a| a.to_string()),
        "uptime_s": c.uptime_s(),
        "finished": c.is_finished(),
        "connections": connections,
        "refused": refused,
        "fleet": c.fleet(),
    }))
    .into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    let finished = app.control.is_finished();
    let body = app
        .bodies
        .metrics
        .get(finished, false, || {
            Ok::<_, Infallible>(Bytes::from(metrics_text(&app.control)))
        })
        .await;
    let body = match body {
        Ok(b) => b,
        Err(never) => match never {},
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// The Prometheus text exposition of the server's state.
pub(crate) fn metrics_text(c: &ServerControl) -> String {
    let clients = c.snapshot();
    let mut s = String::new();
    let family = |s: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
    };
    family(
        &mut s,
        "loadmon_info",
        "gauge",
        "loadmon version (always 1).",
    );
    let _ = writeln!(s, "loadmon_info{{version=\"{}\"}} 1", label(crate::VERSION));
    family(
        &mut s,
        "loadmon_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(s, "loadmon_uptime_seconds {}", num(c.uptime_s()));
    family(
        &mut s,
        "loadmon_finished",
        "gauge",
        "1 once the run is over and the final report is written.",
    );
    let _ = writeln!(s, "loadmon_finished {}", u8::from(c.is_finished()));

    family(
        &mut s,
        "loadmon_clients",
        "gauge",
        "Clients that got an id, by test status.",
    );
    for st in [
        Status::NotStarted,
        Status::Running,
        Status::Pass,
        Status::Aborted,
        Status::TimedOut,
        Status::Failed,
    ] {
        let n = clients.iter().filter(|x| x.status == st).count();
        let _ = writeln!(s, "loadmon_clients{{status=\"{}\"}} {n}", st.as_str());
    }
    let (connections, refused) = c.connection_counts();
    family(
        &mut s,
        "loadmon_connections_total",
        "counter",
        "TCP connections accepted on the protocol port.",
    );
    let _ = writeln!(s, "loadmon_connections_total {connections}");
    family(
        &mut s,
        "loadmon_connections_refused_total",
        "counter",
        "Connections refused (server full, wrong token, protocol version mismatch).",
    );
    let _ = writeln!(s, "loadmon_connections_refused_total {refused}");
    family(
        &mut s,
        "loadmon_messages_total",
        "counter",
        "Protocol lines received, by command (invalid: lines that did not parse).",
    );
    for (cmd, n) in c.message_counts() {
        let _ = writeln!(s, "loadmon_messages_total{{command=\"{cmd}\"}} {n}");
    }

    // All clients together (counters: a client's bytes and files only grow, and no client
    // leaves the report).
    family(
        &mut s,
        "loadmon_fleet_bytes_written_total",
        "counter",
        "Bytes written by all clients together.",
    );
    let bytes = clients
        .iter()
        .fold(0u64, |t, x| t.saturating_add(x.bytes_written));
    let _ = writeln!(s, "loadmon_fleet_bytes_written_total {bytes}");
    family(
        &mut s,
        "loadmon_fleet_files_written_total",
        "counter",
        "Files finished by all clients together.",
    );
    let files = clients
        .iter()
        .fold(0u64, |t, x| t.saturating_add(x.files_written));
    let _ = writeln!(s, "loadmon_fleet_files_written_total {files}");
    if let Some(f) = c.fleet() {
        let gauges: [(&str, &str, usize); 3] = [
            (
                "loadmon_fleet_expected_clients",
                "Fleet mode: clients the start barrier waits for.",
                f.expected,
            ),
            (
                "loadmon_fleet_ready_clients",
                "Fleet mode: clients ready and waiting for the start (0 once started).",
                f.ready,
            ),
            (
                "loadmon_fleet_started_clients",
                "Fleet mode: clients started together (0 before the start).",
                f.started.unwrap_or(0),
            ),
        ];
        for (name, help, v) in gauges {
            family(&mut s, name, "gauge", help);
            let _ = writeln!(s, "{name} {v}");
        }
        if let Some(t) = f
            .start_time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            family(
                &mut s,
                "loadmon_fleet_start_time_seconds",
                "gauge",
                "Fleet mode: when the fleet started, Unix time.",
            );
            let unix = t.timestamp_millis() as f64 / 1000.0;
            let _ = writeln!(s, "loadmon_fleet_start_time_seconds {}", num(unix));
        }
    }

    type Field = fn(&crate::report::ClientReport) -> Option<f64>;
    let per_client: [(&str, &str, &str, Field); 8] = [
        (
            "loadmon_client_bytes_written_total",
            "counter",
            "Bytes the client has written.",
            |x| Some(x.bytes_written as f64),
        ),
        (
            "loadmon_client_files_written_total",
            "counter",
            "Files the client has finished (file_roll).",
            |x| Some(x.files_written as f64),
        ),
        (
            "loadmon_client_heartbeats_total",
            "counter",
            "Heartbeats received from the client.",
            |x| Some(x.heartbeats as f64),
        ),
        (
            "loadmon_client_cpu_percent",
            "gauge",
            "Latest %CPU of the client's writer (100 = one core).",
            |x| x.cpu_last_pct,
        ),
        (
            "loadmon_client_memory_percent",
            "gauge",
            "Latest %MEM of the client's writer.",
            |x| x.mem_last_pct,
        ),
        (
            "loadmon_client_memory_bytes",
            "gauge",
            "Latest resident memory of the client's writer, bytes.",
            |x| x.rss_last_bytes.map(|b| b as f64),
        ),
        (
            "loadmon_client_heartbeat_age_seconds",
            "gauge",
            "Seconds since the client's last heartbeat (running clients).",
            |x| x.last_heartbeat_age_s,
        ),
        (
            "loadmon_client_run_seconds",
            "gauge",
            "Seconds the client has run (from start to done, or to now).",
            |x| Some(x.time_ran_s),
        ),
    ];
    for (name, kind, help, f) in per_client {
        family(&mut s, name, kind, help);
        for x in &clients {
            if let Some(v) = f(x) {
                let _ = writeln!(s, "{name}{{client_id=\"{}\"}} {}", x.id, num(v));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    //! The limits run on a paused clock (`start_paused`): tokio moves time forward only when
    //! every task waits, so "closed after 10 s" is checked without waiting 10 s. The sockets
    //! are real (127.0.0.1, port 0); loopback delivers a write before `write` returns.

    use super::*;
    use crate::server::{Server, ServerConfig};
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    /// Bound on every wait (paused time: costs nothing unless something is broken).
    const WAIT: Duration = Duration::from_secs(600);

    #[test]
    fn token_from_either_header_compared_exactly() {
        let mut h = HeaderMap::new();
        assert!(authorised(None, &h));
        assert!(!authorised(Some("s3cret"), &h));
        for (value, ok) in [
            ("Bearer s3cre", false),
            ("Bearer s3cret", true),
            ("bearer s3cret", true),
            ("BEARER s3cret", true),
            ("bEaReR   s3cret ", true),
            ("bearer wrong", false),
            ("Bearers3cret", false),
            ("Basic s3cret", false),
            ("s3cret", false),
            ("bearer", false),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(authorised(Some("s3cret"), &h), ok, "{value:?}");
        }
        let mut h = HeaderMap::new();
        h.insert("x-loadmon-token", HeaderValue::from_static("s3cret"));
        assert!(authorised(Some("s3cret"), &h));
        h.insert("x-loadmon-token", HeaderValue::from_static("s3cre"));
        assert!(!authorised(Some("s3cret"), &h));
    }

    #[test]
    fn host_values_are_read_as_ip_addresses_names_or_nothing() {
        let name = |n: &str| Some(HostName::Name(n.into()));
        for (value, expected) in [
            ("127.0.0.1", Some(HostName::Ip)),
            ("127.0.0.1:8080", Some(HostName::Ip)),
            ("[::1]", Some(HostName::Ip)),
            ("[::ffff:127.0.0.1]:80", Some(HostName::Ip)),
            ("Example.COM", name("example.com")),
            ("example.com.:443", name("example.com")),
            ("localhost", name("localhost")),
            ("", None),
            (":80", None),
            ("example.com:", None),
            ("example.com:99999", None),
            ("example.com:http", None),
            ("[::1", None),
            ("[::1]80", None),
            ("[example.com]", None),
            ("::1", None),
            ("user@example.com", None),
            ("exa mple.com", None),
        ] {
            assert_eq!(host_name(value), expected, "{value:?}");
        }
        let hosts = Hosts::new(&["Loadmon.Example.".into(), "[::2]".into()]);
        assert!(hosts.allows("loadmon.example:1"));
        assert!(hosts.allows("LOCALHOST"));
        assert!(hosts.allows("10.0.0.1"));
        assert!(!hosts.allows("evil.example"));
        assert!(!hosts.allows("localhost.evil.example"));
        assert!(Hosts::new(&["*".into()]).allows("evil.example"));
        assert!(!Hosts::default().allows("evil.example"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(2.5), "2.5");
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 4,
            write_timeout: Duration::from_secs(5),
        }
    }

    /// A bound server (not running: its control answers) behind an App.
    async fn app(token: Option<&str>) -> (Server, App) {
        let server = Server::bind(ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            ..ServerConfig::default()
        })
        .await
        .expect("bind");
        let app = App {
            control: server.control(),
            token: token.map(Arc::from),
            hosts: Arc::default(),
            bodies: Arc::default(),
        };
        (server, app)
    }

    struct Listening {
        addr: SocketAddr,
        stop: CancellationToken,
        task: JoinHandle<()>,
    }

    async fn listen(app: App, limits: HttpLimits) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let log = Arc::new(EventLog::open("server", None).expect("log"));
        let task = tokio::spawn(serve_app(listener, app, stop.clone(), log, limits));
        Listening { addr, stop, task }
    }

    /// Sends a keep-alive GET and reads the answer: (status, body); `None` if the connection
    /// closed or broke first.
    async fn get(s: &mut TcpStream, path: &str, headers: &str) -> Option<(u16, Vec<u8>)> {
        let req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        read_response(s).await
    }

    async fn read_response(s: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        let mut body = buf.split_off(head_end);
        while body.len() < len {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some((status, body))
    }

    /// Reads until the server closes the connection (bounded by [`WAIT`]); true if it did.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut sink = Vec::new();
        // End of stream or a reset: closed either way.
        tokio::time::timeout(WAIT, s.read_to_end(&mut sink))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn partial_headers_are_closed_after_the_header_timeout() {
        let (_server, app) = app(None).await;
        let l = listen(app, limits()).await;
        // Slowloris: a request line and one header, never the blank line.
        let mut slow = TcpStream::connect(l.addr).await.expect("connect");
        let t = Instant::now();
        slow.write_all(b"GET /api/server HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("write");
        // And a connection that sends nothing at all.
        let mut silent = TcpStream::connect(l.addr).await.expect("connect");
        assert!(closed(&mut slow).await, "partial headers kept open");
        assert!(closed(&mut silent).await, "silent connection kept open");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(30),
            "{took:?}: the header timeout is 10 s (idle 30 s)"
        );
        // Meanwhile the listener serves others.
        let mut ok = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(
            get(&mut ok, "/api/server", "").await.map(|r| r.0),
            Some(200)
        );
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
        let (_server, app) = app(None).await;
        let l = listen(app, limits()).await;
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
        // Idle, but less than the idle timeout (and longer than the header timeout: an idle
        // pause is not a slow request): still served.
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
        let t = Instant::now();
        assert!(closed(&mut s).await, "idle connection kept open");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(30) && took < Duration::from_secs(40),
            "{took:?}: the idle timeout is 30 s"
        );
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn connections_beyond_the_cap_are_closed_at_once() {
        let (_server, app) = app(None).await;
        let limits = HttpLimits {
            header_read_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(3600),
            max_connections: 3,
            ..limits()
        };
        let l = listen(app, limits).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(l.addr).await.expect("connect");
            assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
            held.push(s);
        }
        let t = Instant::now();
        for _ in 0..5 {
            let mut extra = TcpStream::connect(l.addr).await.expect("connect");
            let mut got = Vec::new();
            let r = tokio::time::timeout(WAIT, extra.read_to_end(&mut got)).await;
            assert!(r.is_ok(), "a connection over the cap was kept open");
            // Either the 503 made it before the close, or nothing did.
            assert!(
                got.is_empty() || got.starts_with(b"HTTP/1.1 503 "),
                "{got:?}"
            );
        }
        // At once: no timer ran (the clock is paused and only moves when every task waits
        // on one).
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // The held ones still work.
        for s in &mut held {
            assert_eq!(get(s, "/api/server", "").await.map(|r| r.0), Some(200));
        }
        // Once they close, new connections are served again.
        drop(held);
        let mut served = false;
        for _ in 0..100 {
            let mut s = TcpStream::connect(l.addr).await.expect("connect");
            if get(&mut s, "/api/server", "").await.map(|r| r.0) == Some(200) {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(served, "no connection served after the held ones closed");
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unread_response_is_dropped_after_the_write_timeout() {
        let (_server, app) = app(None).await;
        let limits = HttpLimits {
            header_read_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(3600),
            ..limits()
        };
        // A pipe of 64 bytes: the response cannot fit, and the peer never reads it.
        let (mut peer, ours) = tokio::io::duplex(64);
        let log = Arc::new(EventLog::open("server", None).expect("log"));
        let t = Instant::now();
        let conn = tokio::spawn(connection(
            ours,
            router(app),
            limits,
            CancellationToken::new(),
            log,
        ));
        peer.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        tokio::time::timeout(WAIT, conn)
            .await
            .expect("connection not closed")
            .expect("task");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(60),
            "{took:?}: the write timeout is 5 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_reading_peer_is_served_past_the_write_timeout() {
        let (_server, app) = app(None).await;
        let (mut peer, ours) = tokio::io::duplex(64);
        let log = Arc::new(EventLog::open("server", None).expect("log"));
        let conn = tokio::spawn(connection(
            ours,
            router(app),
            limits(),
            CancellationToken::new(),
            log,
        ));
        peer.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        // 64 bytes every 2 s: the whole answer takes far longer than the 5 s write timeout.
        let t = Instant::now();
        let mut got = Vec::new();
        let mut chunk = [0u8; 64];
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            match tokio::time::timeout(WAIT, peer.read(&mut chunk)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
                other => panic!("read: {other:?}"),
            }
        }
        assert!(t.elapsed() > Duration::from_secs(10), "{:?}", t.elapsed());
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert!(text.contains("\"clients\""), "{text}");
        tokio::time::timeout(WAIT, conn)
            .await
            .expect("ends")
            .expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_report_fetches_share_one_body() {
        let (server, app) = app(None).await;
        let control = server.control();
        server.run_until(async {}).await.expect("run");
        assert!(control.is_finished());
        let limits = HttpLimits {
            max_connections: 16,
            ..limits()
        };
        let l = listen(app.clone(), limits).await;
        // Many slow readers at once: some never read, some do.
        let mut unread = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(l.addr).await.expect("connect");
            s.write_all(b"GET /api/report HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                .await
                .expect("write");
            unread.push(s);
        }
        let fetches: Vec<_> = (0..4)
            .map(|_| {
                let addr = l.addr;
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(addr).await.ok()?;
                    let mut bodies = Vec::new();
                    for _ in 0..5 {
                        bodies.push(get(&mut s, "/api/report", "").await?);
                    }
                    Some(bodies)
                })
            })
            .collect();
        let mut bodies = Vec::new();
        for f in fetches {
            let got = f.await.expect("task").expect("answers");
            bodies.extend(got);
        }
        assert_eq!(bodies.len(), 20);
        let expected = serde_json::to_vec(&control.report()).expect("json");
        assert!(bodies
            .iter()
            .all(|(code, b)| *code == 200 && *b == expected));
        // Long after (the final report never changes): still the same one body.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let a = app.report_body().await.expect("body");
        let b = app.report_body().await.expect("body");
        assert_eq!(a.as_ptr(), b.as_ptr(), "one allocation shared");
        assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 1);
        drop(unread);
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn live_bodies_are_shared_briefly_then_rebuilt() {
        let (_server, app) = app(None).await;
        for _ in 0..10 {
            app.report_body().await.expect("body");
        }
        assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 1);
        tokio::time::advance(LIVE_TTL).await;
        app.report_body().await.expect("body");
        assert_eq!(app.bodies.report.builds.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_closes_idle_connections_and_the_listener() {
        let (_server, app) = app(None).await;
        let l = listen(app, limits()).await;
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        assert_eq!(get(&mut s, "/api/server", "").await.map(|r| r.0), Some(200));
        let t = Instant::now();
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
        assert!(closed(&mut s).await);
        // Within the shutdown grace, not after the idle timeout.
        assert!(t.elapsed() <= SHUTDOWN_GRACE, "{:?}", t.elapsed());
        assert!(TcpStream::connect(l.addr).await.is_err(), "still listening");
    }

    #[tokio::test(start_paused = true)]
    async fn lower_case_bearer_is_accepted_and_a_wrong_token_refused() {
        let (_server, app) = app(Some("s3cret")).await;
        let l = listen(app, limits()).await;
        let mut s = TcpStream::connect(l.addr).await.expect("connect");
        for (headers, code) in [
            ("", 401),
            ("authorization: bearer s3cret\r\n", 200),
            ("authorization: Bearer s3cret\r\n", 200),
            ("authorization: bearer wrong\r\n", 401),
            ("x-loadmon-token: s3cret\r\n", 200),
        ] {
            let got = get(&mut s, "/api/report", headers).await.map(|r| r.0);
            assert_eq!(got, Some(code), "{headers:?}");
        }
        l.stop.cancel();
        tokio::time::timeout(WAIT, l.task)
            .await
            .expect("stops")
            .expect("task");
    }
}
