//! `/settings`: what only admins change — the relays mail goes through, the
//! DKIM keys that sign it, how fast it may go, API tokens, and who may sign
//! in. Every page and every change requires [`Role::Admin`], checked by each
//! handler itself.
//!
//! # Layout
//!
//! - `smtp`: relays, their add/edit form and the connection test.
//! - `dkim`: DKIM keys and the DNS record each needs.
//! - `limits`: the overall rate, per-domain limits, throttles in force.
//! - `tokens`: API tokens; a new secret is shown once.
//! - `users`: dashboard users, their roles and passwords.
//! - `form`: field errors and number parsing the forms share.

mod dkim;
mod form;
mod limits;
mod smtp;
mod tokens;
mod users;

use axum::Extension;
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postino_domain::Role;

use super::page::{PageError, SignedIn};
use crate::AppState;

/// The settings pages' routes; the caller puts them behind the session layer.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(index))
        .route("/settings/smtp", get(smtp::index).post(smtp::create))
        .route("/settings/smtp/{id}", post(smtp::update))
        .route("/settings/smtp/{id}/edit", get(smtp::edit))
        .route("/settings/smtp/{id}/delete", post(smtp::delete))
        .route("/settings/smtp/{id}/test", post(smtp::test))
        .route("/settings/dkim", get(dkim::index).post(dkim::create))
        .route("/settings/dkim/{id}/delete", post(dkim::delete))
        .route("/settings/limits", get(limits::index))
        .route("/settings/limits/rate", post(limits::set_rate))
        .route("/settings/limits/domains", post(limits::put_domain))
        .route(
            "/settings/limits/domains/{domain}/delete",
            post(limits::delete_domain),
        )
        .route("/settings/tokens", get(tokens::index).post(tokens::create))
        .route("/settings/tokens/{id}/revoke", post(tokens::revoke))
        .route("/settings/users", get(users::index).post(users::create))
        .route("/settings/users/{id}/edit", get(users::edit))
        .route("/settings/users/{id}/role", post(users::change_role))
        .route("/settings/users/{id}/password", post(users::reset_password))
        .route("/settings/users/{id}/delete", post(users::delete))
}

/// The first section; settings has no page of its own.
async fn index(Extension(signed_in): Extension<SignedIn>) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    Ok(Redirect::to("/settings/smtp").into_response())
}
