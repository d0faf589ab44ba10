//! `/api/v1/campaigns/{id}/deliveries`: who got a campaign, who did not,
//! and why; and retrying the failures.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use postino_db::deliveries::DeliveryRow;
use postino_domain::{Cursor, DeliveryStatus, PageSize};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::{ApiQuery, IdPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_failed))
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// Only deliveries in this state (`failed` answers "who did not get it").
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// One recipient's delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryResponse {
    subscriber: Uuid,
    email: String,
    status: DeliveryStatus,
    attempts: i32,
    /// The last SMTP reply code, if the server answered.
    last_code: Option<i32>,
    /// The last SMTP reply, connection error, or why it was skipped.
    last_reply: Option<String>,
    /// When it is due (for a queued retry) or was last due.
    run_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryResponse {
    fn from(r: DeliveryRow) -> Self {
        Self {
            subscriber: r.subscriber,
            email: r.email,
            status: r.status,
            attempts: r.attempts,
            last_code: r.last_code,
            last_reply: r.last_reply,
            run_at: r.run_at,
            sent_at: r.sent_at,
            updated_at: r.updated_at,
        }
    }
}

/// One page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryPage {
    items: Vec<DeliveryResponse>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// What a retry did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RetryResponse {
    /// Failed deliveries queued again (blocklisted recipients are not).
    requeued: u64,
}

/// A campaign's deliveries in recipient order, with the last SMTP reply of
/// each: `?status=failed` lists who did not get it, and why.
#[utoipa::path(get, path = "/campaigns/{id}/deliveries", tag = "campaigns",
    params(("id" = Uuid, Path), DeliveryParams),
    responses((status = 200, description = "OK", body = DeliveryPage),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryPage>, WebError> {
    let limit = PageSize::parse(params.limit).map_err(|e| WebError::invalid("limit", e.reason))?;
    let after = params
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| WebError::invalid("cursor", e.reason))?
        .map_or(0, Cursor::key);
    let mut conn = state.db.acquire().await?;
    let (rows, next_cursor) =
        postino_service::deliveries::page(&mut conn, id, params.status, after, limit).await?;
    Ok(Json(DeliveryPage {
        items: rows.into_iter().map(DeliveryResponse::from).collect(),
        next_cursor,
    }))
}

/// Queue a campaign's failed deliveries again, as new, and reopen the
/// campaign if it had finished. Recipients blocklisted meanwhile are left out.
#[utoipa::path(post, path = "/campaigns/{id}/deliveries/retry", tag = "campaigns",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = RetryResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn retry_failed(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<RetryResponse>, WebError> {
    let mut tx = state.db.begin().await?;
    let requeued = postino_service::deliveries::retry(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(RetryResponse { requeued }))
}
