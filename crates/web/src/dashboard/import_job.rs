//! `/import/{id}`: one import's progress bar while it runs (the page polls
//! `/import/{id}/progress` every second), then its summary, its first bad
//! rows, the full error report as CSV, and cancelling, all through the
//! same use cases as `/api/v1/imports`.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::imports::{self, Import, RowError};
use postino_db::lists;
use postino_domain::{ImportStatus, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::imports::{file_name, is_live, mode_label, percent};
use super::page::{Layout, PageError, SignedIn, grouped, render};
use crate::AppState;
use crate::dashboard::page::PageId;
use crate::files::csv_response;
use postino_service::Error;
use postino_service::imports as service;

/// Bad rows shown on the page; the CSV has them all.
const SHOWN_ERRORS: i64 = 20;

/// What the page and its progress bar show of a job.
pub(crate) struct JobView {
    id: Uuid,
    status: &'static str,
    live: bool,
    queued: bool,
    percent: i64,
    rows_read: String,
    imported: String,
    updated: String,
    skipped: String,
    failed: String,
    failed_count: i64,
    error: Option<String>,
}

impl From<&Import> for JobView {
    fn from(job: &Import) -> Self {
        Self {
            id: job.uuid,
            status: job.status.as_str(),
            live: is_live(job.status),
            queued: job.status == ImportStatus::Queued,
            percent: percent(job),
            rows_read: grouped(job.rows_read),
            imported: grouped(job.imported),
            updated: grouped(job.updated),
            skipped: grouped(job.skipped),
            failed: grouped(job.failed),
            failed_count: job.failed,
            error: job.error.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/import.html")]
struct ImportPage {
    layout: Layout,
    job: JobView,
    file_name: String,
    when: String,
    mode: &'static str,
    lists: Vec<String>,
    errors: Vec<RowError>,
    /// Whether `errors` is every bad row.
    shown_all: bool,
    notice: Option<&'static str>,
    /// For the progress bar's cancel button, shared with [`ProgressPart`].
    can_edit: bool,
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "dashboard/import_progress.html")]
struct ProgressPart {
    job: JobView,
    can_edit: bool,
    csrf_token: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// Fixed messages only: the query string is not echoed into the page.
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "cancelled" => Some(
            "The import was cancelled. Rows imported before that stay; the rest of the file \
             was not read.",
        ),
        "ended" => Some("The import had already ended, so there was nothing to cancel."),
        _ => None,
    }
}

async fn load(state: &AppState, id: Uuid) -> Result<Import, PageError> {
    let mut conn = state.db.acquire().await?;
    Ok(imports::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("import"))?)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let job = load(&state, id).await?;
    let mut conn = state.db.acquire().await?;
    let lists = lists::all(&mut conn)
        .await?
        .into_iter()
        .filter(|l| job.list_ids.contains(&l.id))
        .map(|l| l.name.as_str().to_owned())
        .collect();
    let errors = imports::errors_after(&mut conn, job.id, 0, SHOWN_ERRORS).await?;
    let layout = signed_in.layout("import", "Import");
    let page = ImportPage {
        can_edit: layout.can_edit,
        csrf_token: layout.csrf_token.clone(),
        layout,
        job: JobView::from(&job),
        file_name: file_name(&job),
        when: job.created_at.format("%-d %b %Y, %H:%M UTC").to_string(),
        mode: mode_label(job.mode),
        lists,
        shown_all: i64::try_from(errors.len()).unwrap_or(i64::MAX) >= job.failed,
        errors,
        notice: notice(&query.notice),
    };
    Ok(render(StatusCode::OK, &page))
}

/// The bar alone, for htmx to swap in. Once the job has ended the whole
/// page is loaded instead, to show the summary and the bad rows.
pub(crate) async fn progress(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let job = load(&state, id).await?;
    let layout = signed_in.layout("import", "Import");
    let part = ProgressPart {
        job: JobView::from(&job),
        can_edit: layout.can_edit,
        csrf_token: layout.csrf_token,
    };
    let mut response = render(StatusCode::OK, &part);
    if !is_live(job.status)
        && headers.contains_key("hx-request")
        && let Ok(to) = HeaderValue::from_str(&format!("/import/{id}"))
    {
        response.headers_mut().insert("hx-redirect", to);
    }
    Ok(response)
}

/// Every bad row as CSV: line, reason, the row as it was in the file.
pub(crate) async fn errors_csv(
    State(state): State<AppState>,
    Extension(_signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let report = service::error_report(&state.db, id).await?;
    Ok(csv_response(report, &format!("import-{id}-errors.csv")))
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let notice = match service::cancel(&state.db, id).await {
        Ok(_) => "cancelled",
        Err(Error::Conflict { .. }) => "ended",
        Err(e) => return Err(e.into()),
    };
    Ok(Redirect::to(&format!("/import/{id}?notice={notice}")).into_response())
}
