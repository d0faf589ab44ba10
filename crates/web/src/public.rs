//! Public pages that subscribers reach from messages: unsubscribe (a page
//! that confirms, and the RFC 8058 one-click POST that mail clients send).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use postino_db::{DbError, campaigns, subscribers};
use uuid::Uuid;

use crate::AppState;
use crate::error::WebError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/unsubscribe/{token}", get(show).post(unsubscribe))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnsubscribeState {
    Confirm,
    Done,
    NotFound,
}

#[derive(Template)]
#[template(path = "public/unsubscribe.html")]
struct UnsubscribePage {
    state: UnsubscribeState,
    email: String,
    lists: String,
}

fn page(status: StatusCode, state: UnsubscribeState, email: String, lists: &[String]) -> Response {
    let lists = match lists {
        [] => "this sender".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    match (UnsubscribePage {
        state,
        email,
        lists,
    })
    .render()
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => WebError::Internal(Box::new(e)).into_response(),
    }
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        UnsubscribeState::NotFound,
        String::new(),
        &[],
    )
}

/// The subscriber's address and the campaign's list names, if the token is
/// genuine and both still exist.
async fn lookup(
    state: &AppState,
    token: &str,
) -> Result<Option<(Uuid, Uuid, String, Vec<String>)>, WebError> {
    let Some((campaign, subscriber)) = state.addressing.signer.verify_unsubscribe(token) else {
        return Ok(None);
    };
    let mut conn = state.db.acquire().await?;
    let email = match subscribers::get(&mut conn, subscriber).await {
        Ok(s) => s.email.to_string(),
        Err(DbError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let lists = campaigns::list_names(&mut conn, campaign).await?;
    if lists.is_empty() && campaigns::get(&mut conn, campaign).await.is_err() {
        return Ok(None);
    }
    Ok(Some((campaign, subscriber, email, lists)))
}

/// Shows what unsubscribing will do, with a button; changes nothing (link
/// scanners fetch every URL in a message, so GET must be harmless).
async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    Ok(match lookup(&state, &token).await? {
        Some((_, _, email, lists)) => {
            page(StatusCode::OK, UnsubscribeState::Confirm, email, &lists)
        }
        None => not_found(),
    })
}

/// Unsubscribes from every list of the campaign, at once and idempotently:
/// the page's button, or a mail client's RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`).
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some((campaign, subscriber, email, lists)) = lookup(&state, &token).await? else {
        return Ok(not_found());
    };
    let one_click = body.as_ref() == b"List-Unsubscribe=One-Click";
    let source = if one_click { "one-click" } else { "link" };
    let mut conn = state.db.acquire().await?;
    subscribers::unsubscribe_from_campaign(&mut conn, campaign, subscriber, source).await?;
    Ok(page(StatusCode::OK, UnsubscribeState::Done, email, &lists))
}
