//! CSV export of subscribers: a list's members, or everyone matching the
//! same filters as the search. The file has the columns the importer reads
//! (`email,name,attributes`), so an export imports back unchanged. Every
//! cell goes through `csv_cell`, which neutralises spreadsheet formulas
//! (the importer undoes it).
//!
//! The body streams: rows are read in keyset batches of 5,000 and written
//! out as they come, so a million-row export holds one batch in memory.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use postino_db::export;
use postino_db::subscribers::SubscriberFilter;
use postino_db::{PgPool, lists};
use postino_domain::text::csv_cell;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::imports::csv_response;
use crate::api::subscribers::FilterParams;
use crate::error::{Problem, WebError};
use crate::extract::{ApiQuery, IdPath};

const BATCH: i64 = 5_000;

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
    Ok(stream_csv(state.db.clone(), filter, "subscribers.csv"))
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
    Ok(stream_csv(
        state.db.clone(),
        filter,
        &format!("list-{id}.csv"),
    ))
}

struct Cursor {
    pool: PgPool,
    filter: SubscriberFilter,
    after: i64,
    started: bool,
    done: bool,
}

/// Streams everyone matching `filter` as a CSV download named `file_name`.
pub(crate) fn stream_csv(pool: PgPool, filter: SubscriberFilter, file_name: &str) -> Response {
    let start = Cursor {
        pool,
        filter,
        after: 0,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::try_unfold(start, |mut st| async move {
        if st.done {
            return Ok::<_, std::io::Error>(None);
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        if !st.started {
            st.started = true;
            writer.write_record(["email", "name", "attributes"])?;
        }
        let mut conn = st.pool.acquire().await.map_err(std::io::Error::other)?;
        let rows = export::batch_after(&mut conn, &st.filter, st.after, BATCH)
            .await
            .map_err(std::io::Error::other)?;
        drop(conn);
        st.done = rows.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
        for row in rows {
            let attributes = match &row.attributes {
                Value::Object(map) if map.is_empty() => String::new(),
                other => other.to_string(),
            };
            writer.write_record([
                &*csv_cell(row.email.as_str()),
                &*csv_cell(row.name.as_str()),
                &*csv_cell(attributes.as_str()),
            ])?;
            st.after = row.id;
        }
        let bytes = writer
            .into_inner()
            .map_err(csv::IntoInnerError::into_error)?;
        Ok(Some((Bytes::from(bytes), st)))
    });
    csv_response(Body::from_stream(stream), file_name)
}
