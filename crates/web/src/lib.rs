//! Postino's HTTP surface.
//!
//! # Layout
//!
//! - [`router`] — the whole application as one axum `Router`, so tests can
//!   drive it without a socket and the binary can serve it.
//! - `api`: the REST API under `/api/v1` (lists, subscribers, tokens, SMTP
//!   servers, CSV imports and exports) and its
//!   OpenAPI document, served at `/api/v1/openapi.json` with a viewer at `/api/docs`.
//! - `public`: pages subscribers reach from messages (unsubscribe); a
//!   failure there is an HTML page too.
//! - `dashboard`: the marketers' pages (login, overview, lists), their
//!   session cookie, CSRF check and static assets.
//! - `auth`: bearer-token authentication and scope checks, applied to every
//!   API route at once.
//! - `headers`: the security headers every response carries.
//! - `ops`: `/healthz`, `/readyz`, `/metrics` and per-request measurements.
//! - [`error`] — [`WebError`], the one mapping from failures to responses.
//! - `extract`: JSON, query and path extractors whose errors name the field.
//! - `files`: CSV uploads streamed to disk and CSV downloads streamed out,
//!   shared by the API's and the dashboard's import and export.
//! - `documents`: JSON documents both surfaces hand out (the personal-data
//!   export of a subscriber).
//!
//! Dependency rule: web holds only HTTP (routing, authentication,
//! extractors, request and response types, pages). Every change goes
//! through `postino-service`, whose errors each surface turns into its own
//! answer (problem JSON for the API, an HTML page for the dashboard and the
//! public pages). The dashboard must not import `crate::api`: what both
//! surfaces share besides the service lives beside them (`files` for CSV
//! uploads and downloads, `documents` for JSON documents both hand out).
//! The relay, DKIM-key and limit settings pages are the last to still call
//! the API's modules.
//! Web never depends on the scheduler or sender, which it meets only
//! through database rows.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod auth;
mod dashboard;
mod documents;
pub mod error;
mod extract;
mod files;
mod headers;
mod ops;
mod public;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode};
use axum::middleware;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::Caller;
pub use error::WebError;
pub use ops::{metrics_only, metrics_router, prometheus};
pub use postino_service::CampaignSettings;

/// HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Public base URL, used in links that leave the server (e-mails).
    pub root_url: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests running longer than this are answered 408 and dropped, so a
    /// stuck request cannot hold a connection or block shutdown forever.
    pub request_timeout_secs: u64,
    /// Behind a reverse proxy, the header it puts the client's address in
    /// (`X-Forwarded-For`, `X-Real-IP`); its last address is taken, the one
    /// the proxy itself added. Empty: the connecting address. A request
    /// without the header, or with a value that is not an address, counts
    /// against the connecting address. Set it only behind a proxy that
    /// every request passes through, or clients could claim any address.
    pub client_ip_header: String,
    /// Failed dashboard sign-ins one client address may make in 15 minutes
    /// before it is refused, whichever accounts it tries; 0 turns it off.
    pub login_failures_per_ip: u32,
    /// Whether SMTP relays may be on loopback, private or link-local
    /// addresses (127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 169.254/16,
    /// 100.64/10, ::1, fc00::/7, fe80::/10). On by default, so the local
    /// sink and a relay on the same network work; turn it off where the
    /// people who may edit relays must not reach the internal network
    /// through the connection test. Checked when a relay is saved or tested.
    pub allow_private_relay_hosts: bool,
    /// When set, `/metrics` answers only requests with
    /// `Authorization: Bearer <this>` (compared in constant time).
    pub metrics_token: Option<secrecy::SecretString>,
    /// When set, `/metrics` is served on this address only (for a
    /// monitoring network) and no longer on `listen`.
    pub metrics_listen: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            root_url: "http://127.0.0.1:8080".to_owned(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            client_ip_header: String::new(),
            login_failures_per_ip: 50,
            allow_private_relay_hosts: true,
            metrics_token: None,
            metrics_listen: None,
        }
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: PgPool,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// HTTP settings.
    pub settings: WebSettings,
    /// What the use cases need besides the database.
    pub service: postino_service::Context,
}

/// The OpenAPI document of the REST API.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().into_openapi()
}

/// Every API operation as (method, full path template), read from the
/// OpenAPI document, which is built from the same registrations as the router.
#[must_use]
pub fn api_operations() -> Vec<(Method, String)> {
    let doc = openapi();
    let mut ops = Vec::new();
    for (path, item) in &doc.paths.paths {
        let full = format!("/api/v1{path}");
        let candidates = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (method, present) in candidates {
            if present {
                ops.push((method, full.clone()));
            }
        }
    }
    ops
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let scopes = std::sync::Arc::new(auth::ScopeTable::from_openapi(&openapi));
    let api = api
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), scopes),
            auth::require_token,
        ))
        .fallback(|| async { WebError::NotFound("API route") });
    let timeout = Duration::from_secs(state.settings.request_timeout_secs.max(1));
    let body_limit = state.settings.max_body_bytes;
    let mut app = Router::new()
        .nest("/api/v1", api)
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi))
        .merge(public::router())
        .merge(dashboard::router(state.clone()))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    // On its own listener when one is configured (see `metrics_router`).
    if state.settings.metrics_listen.is_none() {
        app = app.route("/metrics", get(ops::metrics));
    }
    app.fallback(dashboard::not_found)
        .layer(
            ServiceBuilder::new()
                // Outermost, so every answer carries them, errors included.
                .layer(middleware::from_fn(headers::security_headers))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                        let route = req
                            .extensions()
                            .get::<axum::extract::MatchedPath>()
                            .map_or("unmatched", axum::extract::MatchedPath::as_str);
                        let request_id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        tracing::info_span!("request", method = %req.method(), route, request_id)
                    }),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::from_fn(ops::measure))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}
