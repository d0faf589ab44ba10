//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! middleware that measures every request.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use secrecy::{ExposeSecret, SecretString};

use crate::AppState;
use crate::auth::constant_time_eq;
use crate::error::ErrorReport;

/// The process-wide Prometheus recorder. Metrics are global in the `metrics`
/// crate, so every app in one process (tests start many) shares one recorder.
///
/// # Errors
///
/// If another metrics recorder was installed first.
pub fn prometheus() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Liveness: the process answers.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers within two seconds.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.db),
    )
    .await;
    match check {
        Ok(Ok(_)) => Json(json!({"status": "ready", "database": "ok"})).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "unreachable"})),
        )
            .into_response(),
    }
}

/// Prometheus text exposition, behind `http.metrics_token` when one is set.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    exposition(
        &state.metrics,
        state.settings.metrics_token.as_ref(),
        &headers,
    )
}

fn exposition(
    handle: &PrometheusHandle,
    token: Option<&SecretString>,
    headers: &HeaderMap,
) -> Response {
    if let Some(expected) = token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if !constant_time_eq(presented, expected.expose_secret()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"metrics\""),
                )],
                "/metrics needs Authorization: Bearer <http.metrics_token>\n",
            )
                .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `/metrics` (behind `http.metrics_token` when set) and `/healthz`, with
/// the security headers: what a separate metrics listener serves, for the
/// web role's `http.metrics_listen` and a standalone sender's
/// `sender.metrics_listen` alike.
pub fn metrics_router(handle: PrometheusHandle, token: Option<SecretString>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let handle = handle.clone();
                let token = token.clone();
                async move { exposition(&handle, token.as_ref(), &headers) }
            }),
        )
        .route("/healthz", axum::routing::get(healthz))
        .layer(axum::middleware::from_fn(crate::headers::security_headers))
}

/// `/metrics` and `/healthz` alone, for a process that serves no API (a
/// standalone sender), so its counters can be scraped too.
pub fn metrics_only(handle: PrometheusHandle) -> axum::Router {
    metrics_router(handle, None)
}

/// Counts and times every request by method, route template and status, and
/// logs server-side failures once with their cause chain.
pub(crate) async fn measure(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    // The route template ("/api/v1/lists/{id}"), never the raw path: raw paths
    // would make one time series per id.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    if let Some(ErrorReport(chain)) = response.extensions().get::<ErrorReport>() {
        tracing::error!(error.chain = %chain, status = %response.status(), "request failed");
    }
    response
}
