//! `/api/v1/sending-limits` and `/api/v1/domain-limits`: how fast Postino
//! may send, overall and per recipient domain, and the throttles the sender
//! set itself when a domain asked it to slow down. Per-relay limits live on
//! the SMTP servers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_db::{PgConnection, policy};
use postino_domain::DomainLimit;
use postino_domain::policy::check_rate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::ApiJson;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_limits, put_limits))
        .routes(routes!(list_domain_limits))
        .routes(routes!(
            get_domain_limit,
            put_domain_limit,
            delete_domain_limit
        ))
}

/// A throttle the sender set itself after a domain answered 421 or 4.7.x.
/// It is raised by half after each quiet period and lifted at its ceiling.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ThrottleResponse {
    domain: String,
    /// Messages per minute allowed now.
    messages_per_minute: u32,
    /// The rate it was slowed from; reaching it again lifts the throttle.
    ceiling: u32,
    /// When the domain last asked to slow down.
    slowed_at: DateTime<Utc>,
}

/// The installation-wide limit and the throttles in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SendingLimitsResponse {
    /// Most messages per second across every sender process, as set here;
    /// null when unset (the `[sender] messages_per_second` setting applies).
    messages_per_second: Option<f64>,
    /// Throttles the sender set itself, by domain.
    throttles: Vec<ThrottleResponse>,
}

/// The installation-wide limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendingLimitsBody {
    /// Most messages per second across every sender process; null removes
    /// the limit set here.
    #[schema(exclusive_minimum = 0, maximum = 1000000)]
    messages_per_second: Option<f64>,
}

async fn limits_response(state: &AppState) -> Result<SendingLimitsResponse, WebError> {
    let mut conn = state.db.acquire().await?;
    let messages_per_second = policy::global_rate(&mut conn).await?;
    let throttles = policy::throttles(&mut conn)
        .await?
        .into_iter()
        .map(|t| ThrottleResponse {
            domain: t.domain,
            messages_per_minute: t.messages_per_minute,
            ceiling: t.ceiling,
            slowed_at: t.slowed_at,
        })
        .collect();
    Ok(SendingLimitsResponse {
        messages_per_second,
        throttles,
    })
}

/// The installation-wide sending limit and the domain throttles in force.
#[utoipa::path(get, path = "/sending-limits", tag = "limits",
    responses((status = 200, description = "OK", body = SendingLimitsResponse)))]
async fn get_limits(
    State(state): State<AppState>,
) -> Result<Json<SendingLimitsResponse>, WebError> {
    Ok(Json(limits_response(&state).await?))
}

/// Set the installation-wide sending limit. Senders apply it within
/// `sender.reload_servers`.
#[utoipa::path(put, path = "/sending-limits", tag = "limits", request_body = SendingLimitsBody,
    responses((status = 200, description = "OK", body = SendingLimitsResponse),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn put_limits(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SendingLimitsBody>,
) -> Result<Json<SendingLimitsResponse>, WebError> {
    {
        let mut conn = state.db.acquire().await?;
        set_global_rate(&mut conn, body.messages_per_second).await?;
    }
    Ok(Json(limits_response(&state).await?))
}

/// Limits for one recipient domain, across every sender process.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DomainLimitResponse {
    /// The domain, lower case, in ASCII (punycode) form.
    domain: String,
    /// Most messages to it in flight at once; null for no limit.
    max_connections: Option<u32>,
    /// Most messages to it per minute; null for no limit.
    messages_per_minute: Option<u32>,
}

impl From<DomainLimit> for DomainLimitResponse {
    fn from(l: DomainLimit) -> Self {
        Self {
            domain: l.domain,
            max_connections: l.max_connections,
            messages_per_minute: l.messages_per_minute,
        }
    }
}

/// Every per-domain limit, by domain.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DomainLimitsResponse {
    items: Vec<DomainLimitResponse>,
}

/// A domain's limits; at least one of them.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainLimitBody {
    /// Most messages to it in flight at once, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub(crate) max_connections: Option<u32>,
    /// Most messages to it per minute.
    #[schema(minimum = 1)]
    pub(crate) messages_per_minute: Option<u32>,
}

fn checked(domain: &str, body: DomainLimitBody) -> Result<DomainLimit, WebError> {
    DomainLimit {
        domain: domain.to_owned(),
        max_connections: body.max_connections,
        messages_per_minute: body.messages_per_minute,
    }
    .normalised()
    .map_err(|e| WebError::invalid(e.what, e.reason))
}

/// The domain in the path, normalised as limits store it.
fn domain_in_path(domain: &str) -> Result<String, WebError> {
    let any = DomainLimitBody {
        max_connections: Some(1),
        messages_per_minute: None,
    };
    checked(domain, any).map(|l| l.domain)
}

/// Checks and stores the installation-wide limit; `None` removes it. The
/// API and the dashboard both set it through here.
pub(crate) async fn set_global_rate(
    conn: &mut PgConnection,
    rate: Option<f64>,
) -> Result<(), WebError> {
    check_rate("messages_per_second", rate).map_err(|e| WebError::invalid(e.what, e.reason))?;
    Ok(policy::set_global_rate(conn, rate).await?)
}

/// Checks and stores `domain`'s limits, replacing any it had; returns them
/// as stored and whether they are new.
pub(crate) async fn store_domain_limit(
    conn: &mut PgConnection,
    domain: &str,
    body: DomainLimitBody,
) -> Result<(DomainLimit, bool), WebError> {
    let limit = checked(domain, body)?;
    let created = policy::put_domain_limit(conn, &limit).await?;
    Ok((limit, created))
}

/// Removes `domain`'s limits.
pub(crate) async fn remove_domain_limit(
    conn: &mut PgConnection,
    domain: &str,
) -> Result<(), WebError> {
    let domain = domain_in_path(domain)?;
    Ok(policy::delete_domain_limit(conn, &domain)
        .await
        .map_err(postino_service::Error::not_found("domain limit"))?)
}

/// Every per-domain limit, by domain.
#[utoipa::path(get, path = "/domain-limits", tag = "limits",
    responses((status = 200, description = "OK", body = DomainLimitsResponse)))]
async fn list_domain_limits(
    State(state): State<AppState>,
) -> Result<Json<DomainLimitsResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = policy::domain_limits(&mut conn).await?;
    Ok(Json(DomainLimitsResponse {
        items: items.into_iter().map(DomainLimitResponse::from).collect(),
    }))
}

/// One domain's limits.
#[utoipa::path(get, path = "/domain-limits/{domain}", tag = "limits", params(("domain" = String, Path)),
    responses((status = 200, description = "OK", body = DomainLimitResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not a domain", body = Problem, content_type = "application/problem+json")))]
async fn get_domain_limit(
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<DomainLimitResponse>, WebError> {
    let domain = domain_in_path(&domain)?;
    let mut conn = state.db.acquire().await?;
    let limit = policy::domain_limit(&mut conn, &domain)
        .await
        .map_err(postino_service::Error::not_found("domain limit"))?;
    Ok(Json(limit.into()))
}

/// Set a domain's limits, replacing any it had.
#[utoipa::path(put, path = "/domain-limits/{domain}", tag = "limits", params(("domain" = String, Path)),
    request_body = DomainLimitBody,
    responses((status = 200, description = "Replaced", body = DomainLimitResponse),
              (status = 201, description = "Created", body = DomainLimitResponse),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn put_domain_limit(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<DomainLimitBody>,
) -> Result<(StatusCode, Json<DomainLimitResponse>), WebError> {
    let mut conn = state.db.acquire().await?;
    let (limit, created) = store_domain_limit(&mut conn, &domain, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(limit.into())))
}

/// Remove a domain's limits.
#[utoipa::path(delete, path = "/domain-limits/{domain}", tag = "limits", params(("domain" = String, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not a domain", body = Problem, content_type = "application/problem+json")))]
async fn delete_domain_limit(
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    remove_domain_limit(&mut conn, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
