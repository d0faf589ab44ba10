//! Public pages that subscribers reach from messages: unsubscribe (a page
//! that confirms, and the RFC 8058 one-click POST that mail clients send).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use postino_service::unsubscribe;

use crate::AppState;
use crate::error::ErrorReport;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/unsubscribe/{token}", get(show).post(unsubscribe))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnsubscribeState {
    Confirm,
    Done,
    NotFound,
    Unavailable,
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
    let html = UnsubscribePage {
        state,
        email,
        lists,
    }
    .render()
    // The page is static bar two strings; failing to render it is a bug
    // that must not leave the subscriber without an answer.
    .unwrap_or_else(|_| "Please try again in a moment.".to_owned());
    (status, Html(html)).into_response()
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        UnsubscribeState::NotFound,
        String::new(),
        &[],
    )
}

/// A failure, as a page a subscriber can read; the cause goes to the log.
fn failed(e: &postino_service::Error) -> Response {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        UnsubscribeState::Unavailable,
        String::new(),
        &[],
    );
    response.extensions_mut().insert(ErrorReport(format!(
        "{e}: {:?}",
        std::error::Error::source(e)
    )));
    response
}

/// Shows what unsubscribing will do, with a button; changes nothing (link
/// scanners fetch every URL in a message, so GET must be harmless).
async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let found = async {
        let mut conn = state.db.acquire().await?;
        unsubscribe::lookup(&mut conn, &state.service.addressing.signer, &token).await
    };
    match found.await {
        Ok(Some(who)) => page(
            StatusCode::OK,
            UnsubscribeState::Confirm,
            who.email,
            &who.lists,
        ),
        Ok(None) => not_found(),
        Err(e) => failed(&e),
    }
}

/// Unsubscribes from every list of the campaign, at once and idempotently:
/// the page's button, or a mail client's RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`).
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let one_click = body.as_ref() == b"List-Unsubscribe=One-Click";
    let done = async {
        let mut conn = state.db.acquire().await?;
        let found =
            unsubscribe::lookup(&mut conn, &state.service.addressing.signer, &token).await?;
        if let Some(who) = &found {
            unsubscribe::confirm(&mut conn, who, one_click).await?;
        }
        Ok::<_, postino_service::Error>(found)
    };
    match done.await {
        Ok(Some(who)) => page(
            StatusCode::OK,
            UnsubscribeState::Done,
            who.email,
            &who.lists,
        ),
        Ok(None) => not_found(),
        Err(e) => failed(&e),
    }
}
