//! `/api/v1/templates`: layouts that wrap campaign bodies through a
//! `{{ content }}` slot.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_db::templates::Layout;
use postino_service::layouts::{self, LayoutDraft};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, IdPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
}

/// A layout.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateResponse {
    id: Uuid,
    name: String,
    /// HTML with a `{{ content }}` slot.
    body: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Layout> for TemplateResponse {
    fn from(l: Layout) -> Self {
        Self {
            id: l.uuid,
            name: l.name,
            body: l.body,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// Every layout.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplatesResponse {
    items: Vec<TemplateResponse>,
}

/// A new layout, or a changed one (both fields required).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateBody {
    /// 1 to 200 characters.
    name: String,
    /// HTML with a `{{ content }}` slot; checked when saved.
    body: String,
}

impl From<TemplateBody> for LayoutDraft {
    fn from(b: TemplateBody) -> Self {
        Self {
            name: b.name,
            body: b.body,
        }
    }
}

/// List layouts.
#[utoipa::path(get, path = "/templates", tag = "templates", responses((status = 200, description = "OK", body = TemplatesResponse)))]
async fn list_templates(
    State(state): State<AppState>,
) -> Result<Json<TemplatesResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = layouts::all(&mut conn).await?;
    Ok(Json(TemplatesResponse {
        items: items.into_iter().map(TemplateResponse::from).collect(),
    }))
}

/// Create a layout.
#[utoipa::path(post, path = "/templates", tag = "templates", request_body = TemplateBody,
    responses((status = 201, description = "Created", body = TemplateResponse),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<(StatusCode, Json<TemplateResponse>), WebError> {
    let mut conn = state.db.acquire().await?;
    let layout = layouts::create(&state.service, &mut conn, body.into()).await?;
    Ok((StatusCode::CREATED, Json(layout.into())))
}

/// Get a layout.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = TemplateResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_template(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<TemplateResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(layouts::get(&mut conn, id).await?.into()))
}

/// Replace a layout.
#[utoipa::path(put, path = "/templates/{id}", tag = "templates", params(("id" = Uuid, Path)),
    request_body = TemplateBody,
    responses((status = 200, description = "OK", body = TemplateResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn update_template(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<TemplateResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let layout = layouts::update(&state.service, &mut conn, id, body.into()).await?;
    Ok(Json(layout.into()))
}

/// Delete a layout that no campaign uses.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn delete_template(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    layouts::delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
