//! The routes: the dashboard page, the JSON API and `/metrics`, behind the `Host` and token
//! checks of [`access`](super::access) (the table is in the [module docs](super)).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::access::{require_host, require_token, Hosts};
use super::bodies::Bodies;
use super::metrics::metrics_text;
use crate::server::ServerControl;

const DASHBOARD: &str = include_str!("dashboard.html");

/// What every route reads: the server, the token and hosts it checks, the shared bodies.
#[derive(Clone)]
pub(super) struct App {
    pub(super) control: ServerControl,
    pub(super) token: Option<Arc<str>>,
    pub(super) hosts: Arc<Hosts>,
    pub(super) bodies: Arc<Bodies>,
}

/// Every route of [`App`], the API's behind the token, all behind the `Host` check.
pub(super) fn router(app: App) -> Router {
    let api = Router::new()
        .route("/api/clients", get(clients))
        .route("/api/report", get(report))
        .route("/api/series", get(series))
        .route("/api/io", get(io))
        .route("/api/total", get(total))
        .route("/api/server", get(server))
        .route("/api/verdict", get(verdict))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            app.token.clone(),
            require_token,
        ));
    Router::new()
        .route("/", get(dashboard))
        .merge(api)
        .layer(middleware::from_fn_with_state(
            app.hosts.clone(),
            require_host,
        ))
        .with_state(app)
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
    pub(super) async fn report_body(&self) -> Result<Bytes, serde_json::Error> {
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

/// The thresholds' verdict (`null` for a server without rules).
async fn verdict(State(app): State<App>) -> Response {
    json_response(to_json(&app.control.verdict()))
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

async fn io(State(app): State<App>) -> Response {
    let finished = app.control.is_finished();
    json_response(
        app.bodies
            .io
            .get(finished, false, || to_json(&app.control.io_series()))
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
