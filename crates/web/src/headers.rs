//! Security headers on every response: API, dashboard, public pages, static
//! assets, the API reference, errors and fallbacks alike.
//!
//! Applied as the outermost layer, so nothing answered by this router (a
//! 404 fallback, a 408 timeout, a 413) goes out without them. A handler that
//! sets one of these headers itself keeps its own value.
//!
//! One policy for every HTML page: scripts only from this server (the
//! dashboard's htmx, and Swagger UI at `/api/docs`, are both served by
//! Postino; neither needs inline scripts or `eval`), inline styles allowed
//! (the public pages carry a `<style>` and Swagger UI sets `style`
//! attributes; styles cannot run code), images from here or `data:` URIs
//! (Swagger UI's icons), never framed, forms only to this server. JSON and
//! CSV answers carry the same headers; a browser applies the policy only
//! when one is opened as a page.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy of every response.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    // Browsers must not guess a type: an uploaded CSV is never run as a script.
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    // For browsers that predate frame-ancestors (clickjacking).
    (header::X_FRAME_OPTIONS, "DENY"),
    // Links out of Postino (a subscriber's tracked click, the docs) never
    // carry a dashboard URL, which can hold ids and search terms.
    (header::REFERRER_POLICY, "same-origin"),
];

/// Adds the security headers a response does not set itself.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
