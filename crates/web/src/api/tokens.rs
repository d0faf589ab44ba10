//! `/api/v1/tokens`: API tokens, shown once and stored hashed.
//!
//! Ownership: a token made here belongs to the owner of the token that made
//! it (a dashboard user, or nobody for an installation token) and gets at
//! most that token's scope, so no chain of tokens ever holds more than the
//! person at its start. The whole area needs the admin scope (see `auth`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use postino_db::api_tokens::{self, ApiToken};
use postino_domain::{ApiScope, Role, TokenName};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, grantable};
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, IdPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token's record; the secret is never shown again after creation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    id: Uuid,
    name: String,
    /// The first characters of the secret, to recognise it.
    prefix: String,
    /// What it may do; never more than its owner's role allows.
    scope: ApiScope,
    /// The dashboard user it belongs to; `null` for an installation token,
    /// made by the operator (`postino token create`, `postino demo`) or by
    /// another installation token.
    owner: Option<OwnerResponse>,
    created_at: DateTime<Utc>,
    /// When it last authenticated a request, to the minute.
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The user a token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OwnerResponse {
    id: Uuid,
    email: String,
    name: String,
    /// Their role now, which bounds what their tokens may do.
    role: Role,
}

impl From<ApiToken> for TokenResponse {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.uuid,
            name: t.name.into(),
            prefix: t.prefix,
            scope: t.scope,
            owner: t.owner.map(|o| OwnerResponse {
                id: o.uuid,
                email: o.email,
                name: o.name,
                role: o.role,
            }),
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token, with its secret: store it now, it cannot be shown again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    record: TokenResponse,
    /// The secret, for `Authorization: Bearer <token>`.
    token: String,
}

/// Every token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokensResponse {
    items: Vec<TokenResponse>,
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// What it is for, 1 to 100 characters.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    name: TokenName,
    /// What it may do; by default the scope of the token making it, and
    /// never more (403).
    #[serde(default)]
    scope: Option<ApiScope>,
}

/// List tokens, newest first, revoked ones included.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "OK", body = TokensResponse)))]
async fn list_tokens(State(state): State<AppState>) -> Result<Json<TokensResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let tokens = api_tokens::all(&mut conn).await?;
    Ok(Json(TokensResponse {
        items: tokens.into_iter().map(TokenResponse::from).collect(),
    }))
}

/// Create a token. The response is the only time its secret is shown. It
/// belongs to the owner of the token making it, with at most its scope.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "Created", body = CreatedToken),
              (status = 403, description = "The scope asked for is wider than this token's", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_token(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), WebError> {
    let scope = body.scope.unwrap_or(caller.scope);
    if !grantable(&caller, scope) {
        return Err(WebError::Forbidden(format!(
            "this token's scope is {}; it cannot make a token of scope {scope}",
            caller.scope
        )));
    }
    let mut conn = state.db.acquire().await?;
    let (record, secret) =
        api_tokens::create(&mut conn, &body.name, caller.owner_id, scope).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            record: record.into(),
            token: secret.expose().to_owned(),
        }),
    ))
}

/// Revoke a token; requests using it are refused from now on.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn revoke_token(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    api_tokens::revoke(&mut conn, id)
        .await
        .map_err(|e| match e {
            postino_db::DbError::NotFound => WebError::NotFound("token"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
