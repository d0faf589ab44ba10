//! CSV export of subscribers: a list's members, or everyone matching the
//! same filters as the search. The file has the columns the importer reads
//! (`email,name,attributes`), so an export imports back unchanged. Every
//! cell goes through `csv_cell`, which neutralises spreadsheet formulas
//! (the importer undoes it).
//!
//! The body streams: rows are read in keyset batches of 5,000 and written
//! out as they come, so a million-row export holds one batch in memory.

use axum::extract::State;
use axum::response::Response;
use postino_db::lists;
use postino_db::subscribers::SubscriberFilter;
use postino_service::exports::subscribers_csv;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::subscribers::FilterParams;
use crate::error::{Problem, WebError};
use crate::extract::{ApiQuery, IdPath};
use crate::files::csv_response;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_subscribers))
        .routes(routes!(export_list))
}

/// Export matching subscribers as CSV (`email,name,attributes`).
#[utoipa::path(get, path = "/subscribers/export.csv", tag = "subscribers", params(FilterParams),
    responses((status = 200, description = "OK", body = String, content_type = "text/csv"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn export_subscribers(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FilterParams>,
) -> Result<Response, WebError> {
    let mut conn = state.db.acquire().await?;
    let filter = params.resolve(&mut conn).await?;
    Ok(csv_response(
        subscribers_csv(state.db.clone(), filter),
        "subscribers.csv",
    ))
}

/// Export a list's members as CSV (`email,name,attributes`).
#[utoipa::path(get, path = "/lists/{id}/export.csv", tag = "lists", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = String, content_type = "text/csv"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn export_list(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, WebError> {
    let mut conn = state.db.acquire().await?;
    let found = lists::resolve(&mut conn, &[id]).await?;
    let Some(&(_, list_id, _)) = found.first() else {
        return Err(WebError::NotFound("list"));
    };
    let filter = SubscriberFilter {
        list_id: Some(list_id),
        ..SubscriberFilter::default()
    };
    Ok(csv_response(
        subscribers_csv(state.db.clone(), filter),
        &format!("list-{id}.csv"),
    ))
}
