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
use postino_domain::{PageSize, Role};
use uuid::Uuid;

use super::search::{SearchForm, Start};
use crate::AppState;
use crate::dashboard::page::{Layout, PageError, SignedIn, grouped, render};
use crate::files::csv_response;
use postino_service::exports::subscribers_csv;

/// Rows per page: a screenful that still reads well on a phone.
const PAGE_SIZE: u32 = 50;

#[derive(Template)]
#[template(path = "dashboard/subscribers/index.html")]
struct SubscribersPage {
    layout: Layout,
    form: SearchForm,
    lists: Vec<(Uuid, String)>,
    r: Results,
    notice: Option<String>,
}

/// The table under the form, alone, for htmx to swap in.
#[derive(Template)]
#[template(path = "dashboard/subscribers/results.html")]
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
    /// The controls for acting on ticked rows, for editors.
    bulk: Option<Bulk>,
}

/// What the bulk form needs.
struct Bulk {
    csrf_token: String,
    lists: Vec<(Uuid, String)>,
    /// This page, to come back to afterwards.
    back: String,
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
    /// How many subscribers a bulk action changed. Text, since numbers do
    /// not survive `flatten` in a query string.
    #[serde(default)]
    affected: String,
}

/// Fixed messages only, and a number: the query string is not echoed into
/// the page.
fn notice(key: &str, affected: Option<u64>) -> Option<String> {
    let people = |n: u64| {
        if n == 1 {
            "1 subscriber was".to_owned()
        } else {
            format!(
                "{} subscribers were",
                grouped(i64::try_from(n).unwrap_or(i64::MAX))
            )
        }
    };
    let n = affected.unwrap_or(0);
    let text = match key {
        "deleted" => "The subscriber was deleted, with everything Postino held on them.".to_owned(),
        "bulk-deleted" => format!("{} deleted.", people(n)),
        "bulk-blocklisted" => format!(
            "{} blocklisted and unsubscribed from every list.",
            people(n)
        ),
        "bulk-added" => format!("{} added to the list.", people(n)),
        "bulk-removed" => format!("{} taken off the list.", people(n)),
        "none-ticked" => "Tick the subscribers to act on first.".to_owned(),
        "choose-list" => "Choose the list as well.".to_owned(),
        _ => return None,
    };
    Some(text)
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    headers: HeaderMap,
    Query(query): Query<IndexQuery>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let lists: Vec<(Uuid, String)> = lists::choices(&mut conn)
        .await?
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
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
                bulk: signed_in.require(Role::Editor).is_ok().then(|| Bulk {
                    csrf_token: signed_in.0.csrf_token.clone(),
                    lists: lists.clone(),
                    back: match form.start() {
                        Start::First => form.href(None),
                        Start::After(c) => form.href(Some(("after", c))),
                        Start::Before(c) => form.href(Some(("before", c))),
                    },
                }),
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
                bulk: None,
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
    let page = SubscribersPage {
        layout: signed_in.layout("subscribers", "Subscribers"),
        form,
        lists,
        r: results,
        notice: notice(&query.notice, query.affected.parse().ok()),
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
        Ok((_, filter)) => Ok(csv_response(
            subscribers_csv(state.db.clone(), filter),
            "subscribers.csv",
        )),
        // The search page names what is wrong with the conditions.
        Err(form) => Ok(Redirect::to(&form.href(None)).into_response()),
    }
}
