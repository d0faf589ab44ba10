//! Bearer-token authentication for the API.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use postino_db::api_tokens;

use crate::AppState;
use crate::error::WebError;

/// The API token that authenticated a request (its internal key).
#[derive(Debug, Clone, Copy)]
pub struct TokenId(pub i64);

/// Refuses any request without a live API token; applied as a route layer to
/// the whole API router, so no API route can be added without it.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, WebError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(WebError::Unauthorized)?;
    let mut conn = state.db.acquire().await?;
    let token = api_tokens::authenticate(&mut conn, presented)
        .await?
        .ok_or(WebError::Unauthorized)?;
    drop(conn);
    req.extensions_mut().insert(TokenId(token));
    Ok(next.run(req).await)
}

/// Compares in time independent of where the strings differ, so response
/// times reveal nothing about a secret (the length aside).
pub(crate) fn constant_time_eq(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
