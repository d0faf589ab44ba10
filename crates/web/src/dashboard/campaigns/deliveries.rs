//! Who got a campaign and who did not, and why: its deliveries page by
//! page (keyset, so the last page of a million is as quick as the first),
//! filtered by state; retrying the failures; deleting a campaign. The same
//! functions as `/api/v1/campaigns/{id}/deliveries` and `DELETE
//! /api/v1/campaigns/{id}`.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use postino_domain::{Cursor, DeliveryStatus, PageSize, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::editor::refused;
use super::lookup::load;
use crate::AppState;
use crate::dashboard::page::{Layout, PageError, PageId, SignedIn, render};
use postino_service::{Error, deliveries};

/// Rows a page shows.
const PAGE_ROWS: u32 = 50;

#[derive(Template)]
#[template(path = "dashboard/campaigns/deliveries.html")]
struct DeliveriesPage {
    layout: Layout,
    id: Uuid,
    name: String,
    /// The filter in force: "" for every state.
    status: &'static str,
    rows: Vec<Row>,
    /// Link to the next page, with the filter.
    next: Option<String>,
    /// Whether this is a later page (offer a way back to the first).
    later: bool,
}

/// One recipient, as the table shows them.
struct Row {
    subscriber: Uuid,
    email: String,
    status: &'static str,
    attempts: i32,
    /// The server's last reply, or the connection error, with its code.
    reply: String,
    when: String,
}

/// The filters offered, with their labels.
const FILTERS: [(&str, &str); 6] = [
    ("", "All"),
    ("sent", "Delivered"),
    ("failed", "Failed"),
    ("queued", "Waiting"),
    ("sending", "Sending"),
    ("skipped", "Skipped"),
];

impl DeliveriesPage {
    fn filters(&self) -> &'static [(&'static str, &'static str)] {
        &FILTERS
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeliveriesQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Response, PageError> {
    // An unknown filter or a cursor that does not decode shows the first
    // page of everything rather than an error: both come from our links.
    let status = query.status.parse::<DeliveryStatus>().ok();
    let after = Cursor::decode(&query.cursor).map_or(0, Cursor::key);
    let limit = PageSize::parse(Some(PAGE_ROWS))
        .map_err(|e| PageError::from(postino_service::Error::invalid("limit", e.reason)))?;
    let c = load(&state, id).await?;
    let mut conn = state.db.acquire().await?;
    let (rows, next_cursor) = deliveries::page(&mut conn, id, status, after, limit).await?;
    let status = status.map_or("", DeliveryStatus::as_str);
    let page = DeliveriesPage {
        layout: signed_in.layout("campaigns", &c.fields.name),
        id,
        name: c.fields.name.clone(),
        status,
        rows: rows
            .into_iter()
            .map(|r| Row {
                subscriber: r.subscriber,
                email: r.email,
                status: r.status.as_str(),
                attempts: r.attempts,
                reply: match (r.last_code, r.last_reply) {
                    (Some(code), Some(reply)) => format!("{code} {reply}"),
                    (None, Some(reply)) => reply,
                    (Some(code), None) => code.to_string(),
                    (None, None) => String::new(),
                },
                when: r
                    .sent_at
                    .unwrap_or(r.updated_at)
                    .format("%-d %b %Y, %H:%M UTC")
                    .to_string(),
            })
            .collect(),
        next: next_cursor
            .map(|cursor| format!("/campaigns/{id}/deliveries?status={status}&cursor={cursor}")),
        later: after > 0,
    };
    Ok(render(StatusCode::OK, &page))
}

/// Queues the failures again, then shows the campaign saying how many.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut tx = state.db.begin().await?;
    match deliveries::retry(&mut tx, id).await {
        Ok(n) => {
            tx.commit().await?;
            let notice = if n == 0 {
                "nothing-to-retry"
            } else {
                "retried"
            };
            Ok(Redirect::to(&format!("/campaigns/{id}?notice={notice}")).into_response())
        }
        Err(Error::Conflict { message, .. }) => {
            drop(tx);
            refused(&state, &signed_in, id, &message).await
        }
        Err(e) => Err(e.into()),
    }
}
