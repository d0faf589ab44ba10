//! CSRF protection: every request that changes something must echo its
//! session's token, in the `X-CSRF-Token` header (htmx sends it from the
//! page's `hx-headers`) or in a `csrf_token` form field (plain forms).
//!
//! The session cookie is also `SameSite=Lax`, which already stops most
//! cross-site posts; the token covers what SameSite does not (older
//! browsers, sibling subdomains).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};

/// The header htmx sends the token in.
pub(crate) const HEADER: &str = "x-csrf-token";
/// The form field plain forms send it in.
pub(crate) const FIELD: &str = "csrf_token";

/// Whether `method` may change something, and so needs the token.
pub(crate) fn needs_token(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares in time independent of where the strings differ, so response
/// times reveal nothing about the token.
pub(crate) fn same(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `csrf_token` field of a urlencoded form body.
pub(crate) fn field(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == FIELD)
        .map(|(_, value)| value.into_owned())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// Checks `req` against `expected` and hands it back, its body intact, when
/// the token matches; `None` when it does not (or the body is over `limit`).
pub(crate) async fn verify(req: Request, expected: &str, limit: usize) -> Option<Request> {
    if let Some(presented) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return same(presented, expected).then_some(req);
    }
    if !is_form(req.headers()) {
        return None;
    }
    // The form has to be read to find its field; it is put back for the
    // handler. The body limit applies here as it would in the handler.
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.ok()?;
    let presented = field(&bytes)?;
    same(&presented, expected).then(|| Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly() {
        assert!(same("abc123", "abc123"));
        assert!(!same("abc124", "abc123"));
        assert!(!same("abc12", "abc123"));
        assert!(!same("", ""));
    }

    #[test]
    fn the_field_is_found_in_a_form_body() {
        assert_eq!(
            field(b"name=x&csrf_token=t%2B1&b=2").as_deref(),
            Some("t+1")
        );
        assert_eq!(field(b"name=x"), None);
    }

    #[test]
    fn only_reading_methods_go_without_a_token() {
        assert!(!needs_token(&Method::GET));
        assert!(needs_token(&Method::POST));
        assert!(needs_token(&Method::DELETE));
        assert!(needs_token(&Method::PATCH));
    }
}
