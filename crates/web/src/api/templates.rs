//! `/api/v1/templates`: layouts that wrap campaign bodies through a
//! `{{ content }}` slot.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_compose::{CampaignSource, Recipient};
use postino_db::DbError;
use postino_db::templates::{self, Layout};
use postino_domain::BodyFormat;
use postino_sandbox::{Sandbox, Template};
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

/// Checks the name and that the layout compiles and renders around a sample
/// body; returns the name as stored. The API and the dashboard's template
/// pages both save through this.
pub(crate) async fn validate(
    sandbox: &Sandbox,
    name: &str,
    body: &str,
) -> Result<String, WebError> {
    let name =
        postino_domain::ListName::parse(name).map_err(|e| WebError::invalid("name", e.reason))?;
    compile(sandbox, body).await?;
    Ok(name.as_str().to_owned())
}

/// Sample campaign content, for checking and previewing a layout.
const SAMPLE_CONTENT: &str = "<h1>Your campaign's content</h1>\n\
    <p>Hello {{ subscriber.name }}, this is where each campaign's text goes.</p>";

/// A layout around the sample content, as campaigns will use it.
fn sample_source(body: &str) -> CampaignSource<'_> {
    CampaignSource {
        uuid: Uuid::nil(),
        name: "sample",
        subject: "sample",
        body: SAMPLE_CONTENT,
        format: BodyFormat::Html,
        text_body: None,
        layout: Some(body),
    }
}

/// A layout's error, named by its line, on the `body` field.
fn layout_error(e: postino_sandbox::Error) -> WebError {
    match e {
        postino_sandbox::Error::Template(e) => {
            let line = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            WebError::invalid("body", format!("{line}{}", e.reason))
        }
        e @ postino_sandbox::Error::Unavailable(_) => WebError::Internal(Box::new(e)),
    }
}

async fn compile(sandbox: &Sandbox, body: &str) -> Result<Template, WebError> {
    if body.len() > 512 * 1024 {
        return Err(WebError::invalid("body", "must be at most 512 KiB"));
    }
    sandbox
        .compile(&sample_source(body))
        .await
        .map_err(layout_error)
}

/// The layout around sample content for a sample person, as HTML; errors
/// name the line at fault, as saving would.
pub(crate) async fn sample(sandbox: &Sandbox, body: &str) -> Result<String, WebError> {
    let rendered = compile(sandbox, body)
        .await?
        .render(&Recipient::sample(), "#unsubscribe")
        .await
        .map_err(layout_error)?;
    Ok(rendered.html.unwrap_or_default())
}

#[cfg(test)]
pub(crate) fn sample_in_process(body: &str) -> Result<(), postino_compose::TemplateError> {
    postino_compose::CompiledCampaign::compile(&sample_source(body)).map(|_| ())
}

/// Deletes a layout that no campaign uses.
pub(crate) async fn delete(db: &postino_db::PgPool, id: Uuid) -> Result<(), WebError> {
    let mut conn = db.acquire().await?;
    match templates::delete(&mut conn, id).await {
        Ok(()) => Ok(()),
        Err(DbError::MissingReference { .. }) => Err(WebError::Conflict {
            field: String::new(),
            message: "campaigns still use this template; change their template first".to_owned(),
        }),
        Err(e) => Err(not_found(e)),
    }
}

pub(crate) fn not_found(e: DbError) -> WebError {
    match e {
        DbError::NotFound => WebError::NotFound("template"),
        other => other.into(),
    }
}

/// List layouts.
#[utoipa::path(get, path = "/templates", tag = "templates", responses((status = 200, description = "OK", body = TemplatesResponse)))]
async fn list_templates(
    State(state): State<AppState>,
) -> Result<Json<TemplatesResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = templates::all(&mut conn).await?;
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
    let name = validate(&state.templates, &body.name, &body.body).await?;
    let mut conn = state.db.acquire().await?;
    let layout = templates::create(&mut conn, &name, &body.body).await?;
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
    Ok(Json(
        templates::get(&mut conn, id)
            .await
            .map_err(not_found)?
            .into(),
    ))
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
    let name = validate(&state.templates, &body.name, &body.body).await?;
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        templates::update(&mut conn, id, &name, &body.body)
            .await
            .map_err(not_found)?
            .into(),
    ))
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
    delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
