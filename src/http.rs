//! The optional HTTP listener (axum on the server's own runtime): a JSON API, Prometheus
//! `/metrics` and a dashboard page embedded in the binary.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the dashboard (one HTML page, no external file) |
//! | `GET /api/clients` | live snapshot: the JSON report's client objects |
//! | `GET /api/report` | the report so far; the final one after the run |
//! | `GET /api/series` | each client's time series (throughput, CPU, memory) |
//! | `GET /api/server` | version, addresses, uptime, whether the run is over |
//! | `GET /metrics` | Prometheus text exposition format 0.0.4 |
//!
//! With a token set, every route but the dashboard page needs `Authorization: Bearer <token>`
//! (or `X-Loadmon-Token: <token>`); the page reads the token from its URL fragment
//! (`http://host:port/#token=…`), which browsers never send to the server.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::logging::EventLog;
use crate::report::Status;
use crate::server::ServerControl;

const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(Clone)]
struct App {
    control: ServerControl,
    token: Option<Arc<str>>,
}

/// Serves until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    control: ServerControl,
    token: Option<String>,
    stop: CancellationToken,
    log: Arc<EventLog>,
) {
    let app = App {
        control,
        token: token.map(Arc::from),
    };
    let r = axum::serve(listener, router(app))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = r {
        log.warn(format!("HTTP listener stopped: {e}"));
    }
}

fn router(app: App) -> Router {
    let api = Router::new()
        .route("/api/clients", get(clients))
        .route("/api/report", get(report))
        .route("/api/series", get(series))
        .route("/api/server", get(server))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/", get(dashboard))
        .merge(api)
        .with_state(app)
}

/// Whether the request carries the token (always true without one).
fn authorised(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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

async fn clients(State(app): State<App>) -> Response {
    Json(app.control.snapshot()).into_response()
}

async fn report(State(app): State<App>) -> Response {
    Json(app.control.report()).into_response()
}

async fn series(State(app): State<App>) -> Response {
    Json(app.control.series()).into_response()
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
    }))
    .into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        metrics_text(&app.control),
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
    use super::*;

    #[test]
    fn token_from_either_header_compared_exactly() {
        let mut h = HeaderMap::new();
        assert!(authorised(None, &h));
        assert!(!authorised(Some("s3cret"), &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(!authorised(Some("s3cret"), &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(authorised(Some("s3cret"), &h));
        let mut h = HeaderMap::new();
        h.insert("x-loadmon-token", HeaderValue::from_static("s3cret"));
        assert!(authorised(Some("s3cret"), &h));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(2.5), "2.5");
    }
}
