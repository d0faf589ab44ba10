//! `/settings/tokens`: API tokens, through the same database functions as
//! `/api/v1/tokens`. A new token's secret is on the page that creates it
//! and nowhere else: only its hash is stored.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::DbError;
use postino_db::api_tokens::{self, ApiToken};
use postino_domain::{Role, TokenName};
use serde::Deserialize;

use super::form::Errors;
use crate::AppState;
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, render};
use crate::error::WebError;
use crate::extract::IdPath;

#[derive(Template)]
#[template(path = "dashboard/settings_tokens.html")]
struct TokensPage {
    layout: Layout,
    tab: &'static str,
    tokens: Vec<TokenRow>,
    form: TokenForm,
    /// A token just created: its name and secret, shown this once.
    created: Option<(String, String)>,
    notice: Option<&'static str>,
}

struct TokenRow {
    id: uuid::Uuid,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

impl From<ApiToken> for TokenRow {
    fn from(t: ApiToken) -> Self {
        let day = |at: chrono::DateTime<chrono::Utc>| at.format("%-d %b %Y, %H:%M UTC").to_string();
        Self {
            id: t.uuid,
            name: t.name.into(),
            prefix: t.prefix,
            created: day(t.created_at),
            last_used: t.last_used_at.map_or_else(|| "Never".to_owned(), day),
            revoked: t.revoked_at.map(day),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(skip)]
    errors: Errors,
}

impl TokenForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice(key: &str) -> Option<&'static str> {
    match key {
        "revoked" => Some("The token was revoked. Requests using it are refused from now on."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: TokenForm,
    created: Option<(String, String)>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let tokens = api_tokens::all(&mut conn).await?;
    let page = TokensPage {
        layout: signed_in.layout("settings", "API tokens"),
        tab: "tokens",
        tokens: tokens.into_iter().map(TokenRow::from).collect(),
        form,
        created,
        notice,
    };
    let mut response = render(status, &page);
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        TokenForm::default(),
        None,
        notice(&query.notice),
    )
    .await
}

/// Creates a token and answers with the page itself, not a redirect: the
/// secret exists only in this response.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<TokenForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let name = match TokenName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => {
            form.errors.add("name", e.reason);
            return page(
                &state,
                &signed_in,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
                None,
            )
            .await;
        }
    };
    let secret = {
        let mut conn = state.db.acquire().await?;
        let (_, secret) = api_tokens::create(&mut conn, &name, Some(signed_in.0.user.id)).await?;
        secret
    };
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        TokenForm::default(),
        Some((name.into(), secret.expose().to_owned())),
        None,
    )
    .await
}

/// Revokes a token. htmx is sent to the refreshed table (the row stays,
/// marked revoked); a plain form is redirected there.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    api_tokens::revoke(&mut conn, id)
        .await
        .map_err(|e| match e {
            DbError::NotFound => PageError::Internal(WebError::NotFound("token")),
            other => other.into(),
        })?;
    let to = "/settings/tokens?notice=revoked";
    if headers.contains_key("hx-request") {
        let mut response = StatusCode::OK.into_response();
        response
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static(to));
        return Ok(response);
    }
    Ok(Redirect::to(to).into_response())
}
