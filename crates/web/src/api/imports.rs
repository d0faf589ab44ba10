//! `/api/v1/imports`: CSV uploads that become background import jobs, their
//! progress, their error reports, and cancelling them.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use postino_db::imports::Import;
use postino_domain::{ImportMode, ImportStatus};
use postino_service::imports;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::IdPath;
use crate::files::{self, csv_response};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The upload is streamed to disk under its own limit,
        // import.max_upload_bytes, counted by the handler; the API-wide
        // body limit is for JSON and must not apply here.
        .routes(routes!(create_import, list_imports))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .routes(routes!(get_import, cancel_import))
        .routes(routes!(import_errors))
}

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportResponse {
    id: Uuid,
    status: ImportStatus,
    mode: ImportMode,
    /// Existing subscribers' names are overwritten and attributes merged.
    overwrite: bool,
    /// Double opt-in memberships arrive confirmed.
    confirmed: bool,
    file_name: String,
    file_bytes: i64,
    /// Data rows read so far (good and bad).
    rows_read: i64,
    /// Subscribers created.
    imported: i64,
    /// Existing subscribers changed.
    updated: i64,
    /// Good rows that changed nothing (already on the lists, blocklisted, …).
    skipped: i64,
    /// Bad rows; see `errors_url`.
    failed: i64,
    /// Share of the file processed, 0 to 1.
    progress: f64,
    /// Why the whole import failed, if it did.
    error: Option<String>,
    /// The bad rows as CSV: line, reason, original row.
    errors_url: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Import> for ImportResponse {
    fn from(job: Import) -> Self {
        let progress = imports::progress(&job);
        Self {
            errors_url: format!("/api/v1/imports/{}/errors", job.uuid),
            id: job.uuid,
            status: job.status,
            mode: job.mode,
            overwrite: job.overwrite,
            confirmed: job.confirmed,
            file_name: job.file_name,
            file_bytes: job.file_bytes,
            rows_read: job.rows_read,
            imported: job.imported,
            updated: job.updated,
            skipped: job.skipped,
            failed: job.failed,
            progress,
            error: job.error,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// Recent imports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportList {
    items: Vec<ImportResponse>,
}

/// Upload a CSV file and start importing it.
///
/// Send the file as the body with `Content-Type: text/csv` and the options
/// as query parameters, or as `multipart/form-data` with the file in a field
/// named `file` and the options as query parameters or further fields. The
/// file is checked for a usable header at once; rows are imported in the
/// background: follow the job at the returned `Location`.
#[utoipa::path(post, path = "/imports", tag = "imports", params(files::ImportParams),
    request_body(content = String, content_type = "text/csv",
                 description = "The CSV file (or multipart/form-data with a `file` field)"),
    responses((status = 202, description = "Accepted", body = ImportResponse),
              (status = 400, description = "Response", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_import(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, HeaderMap, Json<ImportResponse>), WebError> {
    let mut params = files::ImportParams::default();
    for (key, value) in form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
    {
        params.set(&key, &value)?;
    }
    let job = files::upload(&state, request, &mut params, &[]).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/imports/{}", job.uuid)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(job.into())))
}

/// Recent imports, newest first (up to 100).
#[utoipa::path(get, path = "/imports", tag = "imports",
    responses((status = 200, description = "OK", body = ImportList)))]
async fn list_imports(State(state): State<AppState>) -> Result<Json<ImportList>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = postino_db::imports::recent(&mut conn, 100).await?;
    Ok(Json(ImportList {
        items: items.into_iter().map(ImportResponse::from).collect(),
    }))
}

/// One import: status, counters and progress.
#[utoipa::path(get, path = "/imports/{id}", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ImportResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_import(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ImportResponse>, WebError> {
    Ok(Json(imports::get(&state.db, id).await?.into()))
}

/// Cancel an import that is queued or running. Batches already committed
/// stay (each batch is all-or-nothing); the rest of the file is not read.
#[utoipa::path(delete, path = "/imports/{id}", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = ImportResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn cancel_import(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ImportResponse>, WebError> {
    Ok(Json(imports::cancel(&state.db, id).await?.into()))
}

/// The rows an import could not take, as CSV: `line,reason,original`.
#[utoipa::path(get, path = "/imports/{id}/errors", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = String, content_type = "text/csv"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn import_errors(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, WebError> {
    let report = imports::error_report(&state.db, id).await?;
    Ok(csv_response(report, &format!("import-{id}-errors.csv")))
}
