//! Bearer-token authentication and scope checks for the API.
//!
//! Both happen in one route layer over the whole API router, so no API route
//! can be added without them. What a route needs is read from its OpenAPI
//! tag ([`ScopeTable`]): the document is built from the same registrations
//! as the router, so the table covers every route, and a route with a tag
//! nobody mapped needs the admin scope (fail closed).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use postino_db::api_tokens::{self, TokenCaller};
use postino_domain::{ApiArea, ApiScope};

use crate::AppState;
use crate::error::WebError;

/// The token behind a request: who it speaks for and its scope right now
/// (already narrowed to its owner's role). Handlers read it as an extension.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub TokenCaller);

/// The area of an OpenAPI tag. Unknown tags are the admin area, so a new
/// resource is closed to narrow tokens until someone decides otherwise.
pub(crate) fn area_of_tag(tag: &str) -> ApiArea {
    match tag {
        "lists" | "subscribers" | "imports" => ApiArea::Subscribers,
        "templates" | "campaigns" => ApiArea::Campaigns,
        _ => ApiArea::Admin,
    }
}

/// Every API operation's area, keyed by method and path template (as in the
/// OpenAPI document, relative to `/api/v1`).
#[derive(Debug, Default)]
pub(crate) struct ScopeTable(HashMap<(Method, String), ApiArea>);

impl ScopeTable {
    pub(crate) fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut table = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                // One tag per operation; none or several is a mistake,
                // closed to all but admin until it is untangled.
                let area = match operation.tags.as_deref() {
                    Some([tag]) => area_of_tag(tag),
                    _ => ApiArea::Admin,
                };
                table.insert((method, path.clone()), area);
            }
        }
        Self(table)
    }

    /// The area of `method` on `template`; admin for anything not in the
    /// document (there should be nothing).
    pub(crate) fn area(&self, method: &Method, template: &str) -> ApiArea {
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        let path = template.strip_prefix("/api/v1").unwrap_or(template);
        self.0
            .get(&(method, path.to_owned()))
            .copied()
            .unwrap_or(ApiArea::Admin)
    }
}

/// What a refusal says: the scope that would have been allowed.
fn needed(area: ApiArea, changing: bool) -> &'static str {
    match (area, changing) {
        (ApiArea::Admin, _) => "admin",
        (_, false) => "read",
        (ApiArea::Subscribers, true) => "subscribers, write or admin",
        (ApiArea::Campaigns, true) => "campaigns, write or admin",
    }
}

/// Refuses any request without a live API token (401), and any the token's
/// scope does not allow (403) before the handler runs or a body is read.
pub(crate) async fn require_token(
    State((state, table)): State<(AppState, Arc<ScopeTable>)>,
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
    let caller = api_tokens::authenticate(&mut conn, presented)
        .await?
        .ok_or(WebError::Unauthorized)?;
    drop(conn);
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let area = table.area(req.method(), template);
    let changing = !matches!(*req.method(), Method::GET | Method::HEAD);
    if !caller.scope.permits(area, changing) {
        return Err(WebError::Forbidden(format!(
            "this token's scope is {}; this request needs {}",
            caller.scope,
            needed(area, changing)
        )));
    }
    req.extensions_mut().insert(Caller(caller));
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

/// The scopes a caller may give a new token: those its own scope covers.
pub(crate) fn grantable(caller: &TokenCaller, wanted: ApiScope) -> bool {
    caller.scope.covers(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_in_the_api_document_has_a_deliberate_area() {
        // A tag added later lands here and must be placed on purpose.
        let doc = crate::openapi();
        let tags: Vec<String> = doc.tags.iter().flatten().map(|t| t.name.clone()).collect();
        for tag in &tags {
            let expected = match tag.as_str() {
                "lists" | "subscribers" | "imports" => ApiArea::Subscribers,
                "templates" | "campaigns" => ApiArea::Campaigns,
                "smtp-servers" | "limits" | "dkim-keys" | "tokens" => ApiArea::Admin,
                other => panic!("tag {other:?} has no area decided in auth.rs"),
            };
            assert_eq!(area_of_tag(tag), expected, "{tag}");
        }
        let table = ScopeTable::from_openapi(&doc);
        assert_eq!(
            table.area(&Method::GET, "/api/v1/lists/{id}"),
            ApiArea::Subscribers
        );
        assert_eq!(table.area(&Method::POST, "/api/v1/tokens"), ApiArea::Admin);
        assert_eq!(table.area(&Method::GET, "/api/v1/nowhere"), ApiArea::Admin);
    }
}
