//! `/subscribers`: search and filter everyone, a page at a time, and export
//! what the search selects as CSV. The filter, the keyset pages and the
//! export are the API's own (`/api/v1/subscribers`), so a million rows page
//! as fast as a hundred and nothing is counted.
//!
//! The table is a partial of its own: the search form asks for it with htmx
//! as you type and swaps it in, and the same URL without htmx is the whole
//! page, so every search is a link that works without JavaScript.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use postino_db::lists;
use postino_db::subscribers::{self, Subscriber};
use postino_domain::PageSize;
use uuid::Uuid;

use super::page::{Layout, PageError, SignedIn, render};
use super::subscriber_search::{SearchForm, Start};
use crate::AppState;
use crate::api::exports::stream_csv;

/// Rows per page: a screenful that still reads well on a phone.
const PAGE_SIZE: u32 = 50;

#[derive(Template)]
#[template(path = "dashboard/subscribers.html")]
struct SubscribersPage {
    layout: Layout,
    form: SearchForm,
    lists: Vec<(Uuid, String)>,
    r: Results,
    notice: Option<&'static str>,
}

/// The table under the form, alone, for htmx to swap in.
#[derive(Template)]
#[template(path = "dashboard/subscribers_results.html")]
struct ResultsPart {
    r: Results,
}

/// The table under the form and the links around it.
struct Results {
    rows: Vec<Row>,
    /// What makes the conditions unusable; the form also says it next to
    /// each field, but htmx swaps only this part.
    problems: Vec<String>,
    filtered: bool,
    clear_href: &'static str,
    export_href: String,
    previous: Option<String>,
    next: Option<String>,
}

/// A subscriber as their table row shows them.
pub(crate) struct Row {
    id: Uuid,
    email: String,
    name: String,
    status: &'static str,
    /// (list name, membership status).
    lists: Vec<(String, &'static str)>,
    created: String,
}

impl From<Subscriber> for Row {
    fn from(s: Subscriber) -> Self {
        Self {
            id: s.uuid,
            email: s.email.as_str().to_owned(),
            name: s.name.as_str().to_owned(),
            status: s.status.as_str(),
            lists: s
                .memberships
                .into_iter()
                .map(|m| (m.list_name, m.status.as_str()))
                .collect(),
            created: day(s.created_at),
        }
    }
}

/// A date as the tables show it: 3 Mar 2026.
pub(crate) fn day(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct IndexQuery {
    #[serde(flatten)]
    form: SearchForm,
    #[serde(default)]
    notice: String,
}

/// Fixed messages only: the query string is not echoed into the page.
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "deleted" => Some("The subscriber was deleted, with everything Postino held on them."),
        _ => None,
    }
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    headers: HeaderMap,
    Query(query): Query<IndexQuery>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let (form, results) = match query.form.resolve(&mut conn).await {
        Ok((form, filter)) => {
            let size = PageSize::parse(Some(PAGE_SIZE)).unwrap_or_default();
            let page = match form.start() {
                Start::First => subscribers::search(&mut conn, &filter, None, size).await?,
                Start::After(c) => subscribers::search(&mut conn, &filter, Some(c), size).await?,
                Start::Before(c) => subscribers::search_before(&mut conn, &filter, c, size).await?,
            };
            let results = Results {
                rows: page.items.into_iter().map(Row::from).collect(),
                problems: Vec::new(),
                filtered: form.is_filtered(),
                clear_href: "/subscribers",
                export_href: form.export_href(),
                previous: page.previous.map(|c| form.href(Some(("before", c)))),
                next: page.next.map(|c| form.href(Some(("after", c)))),
            };
            (form, results)
        }
        Err(form) => {
            let results = Results {
                rows: Vec::new(),
                problems: form.problems(),
                filtered: true,
                clear_href: "/subscribers",
                export_href: String::new(),
                previous: None,
                next: None,
            };
            (*form, results)
        }
    };
    // htmx swaps the table alone; restoring history needs the whole page.
    // The table always comes with 200, since htmx swaps nothing else.
    let partial = headers.get("hx-target").is_some_and(|t| t == "results")
        && !headers.contains_key("hx-history-restore-request");
    if partial {
        return Ok(render(StatusCode::OK, &ResultsPart { r: results }));
    }
    let status = if form.has_errors() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let lists = lists::choices(&mut conn)
        .await?
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
    let page = SubscribersPage {
        layout: signed_in.layout("subscribers", "Subscribers"),
        form,
        lists,
        r: results,
        notice: notice(&query.notice),
    };
    Ok(render(status, &page))
}

/// `GET /subscribers/export.csv`: the API's streaming export, with the
/// search form's conditions and the session's sign-in instead of a token.
pub(crate) async fn export(
    State(state): State<AppState>,
    Extension(_signed_in): Extension<SignedIn>,
    Query(form): Query<SearchForm>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    match form.resolve(&mut conn).await {
        Ok((_, filter)) => Ok(stream_csv(state.db.clone(), filter, "subscribers.csv")),
        // The search page names what is wrong with the conditions.
        Err(form) => Ok(Redirect::to(&form.href(None)).into_response()),
    }
}
