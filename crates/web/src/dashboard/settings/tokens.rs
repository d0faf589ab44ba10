//! `/settings/tokens`: API tokens, through the same database functions as
//! `/api/v1/tokens`. A new token's secret is on the page that creates it
//! and nowhere else: only its hash is stored.
//!
//! A token made here belongs to the admin who made it, with the scope they
//! choose; changing or deleting that admin's account narrows or deletes it.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::DbError;
use postino_db::api_tokens::{self, ApiToken};
use postino_domain::{ApiScope, Role, TokenName};
use serde::Deserialize;

use super::form::Errors;
use crate::AppState;
use crate::dashboard::page::PageId;
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, render};

#[derive(Template)]
#[template(path = "dashboard/settings/tokens.html")]
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
    scope: &'static str,
    /// Who it belongs to, or "Installation" for a token made by the
    /// operator on the command line.
    owner: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

/// The scopes the form offers, with what each allows.
const SCOPE_CHOICES: [(&str, &str); 5] = [
    (
        "admin",
        "Admin: everything, including tokens and sending settings",
    ),
    (
        "write",
        "Write: lists, subscribers, imports, templates and campaigns",
    ),
    (
        "subscribers",
        "Subscribers: change lists, subscribers and imports; read the rest",
    ),
    (
        "campaigns",
        "Campaigns: change templates and campaigns; read the rest",
    ),
    (
        "read",
        "Read only: reads lists, subscribers and campaigns, changes nothing",
    ),
];

impl From<ApiToken> for TokenRow {
    fn from(t: ApiToken) -> Self {
        let day = |at: chrono::DateTime<chrono::Utc>| at.format("%-d %b %Y, %H:%M UTC").to_string();
        Self {
            id: t.uuid,
            name: t.name.into(),
            prefix: t.prefix,
            scope: t.scope.as_str(),
            owner: t.owner.map_or_else(
                || "Installation".to_owned(),
                |o| {
                    if o.name.is_empty() {
                        o.email
                    } else {
                        format!("{} ({})", o.name, o.email)
                    }
                },
            ),
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
    #[serde(default)]
    scope: String,
    #[serde(skip)]
    errors: Errors,
}

impl TokenForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    /// The scope the form shows as chosen: admin unless another was sent.
    pub(crate) fn chosen(&self, scope: &str) -> bool {
        if self.scope.is_empty() {
            scope == "admin"
        } else {
            self.scope == scope
        }
    }

    pub(crate) fn scopes(&self) -> &'static [(&'static str, &'static str)] {
        &SCOPE_CHOICES
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
    let name = TokenName::parse(&form.name)
        .map_err(|e| form.errors.add("name", e.reason))
        .ok();
    // Admin when the form sent none; never wider than the admin's role.
    let scope = if form.scope.is_empty() {
        Some(ApiScope::Admin)
    } else {
        form.scope.parse::<ApiScope>().ok()
    }
    .filter(|s| ApiScope::ceiling(signed_in.0.user.role).covers(*s));
    if scope.is_none() {
        form.errors.add(
            "scope",
            "choose read, subscribers, campaigns, write or admin",
        );
    }
    let (name, scope) = match (name, scope) {
        (Some(name), Some(scope)) => (name, scope),
        _ => {
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
        let (_, secret) =
            api_tokens::create(&mut conn, &name, Some(signed_in.0.user.id), scope).await?;
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
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    api_tokens::revoke(&mut conn, id)
        .await
        .map_err(|e| match e {
            DbError::NotFound => PageError::NotFound("token"),
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
