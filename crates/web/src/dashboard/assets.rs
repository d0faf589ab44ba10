//! `/static/...`: the dashboard's CSS and JavaScript, compiled into the
//! binary so a deployment is one file and can never serve assets from a
//! different version than its pages.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every asset: (path under /static, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "css/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../web/css/app.css"),
    ),
    (
        "img/favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../../web/img/favicon.svg"),
    ),
    (
        "js/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/js/app.js"),
    ),
    (
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/vendor/htmx.min.js"),
    ),
];

pub(crate) async fn serve(Path(path): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Short, because the names carry no version: a new release is picked up
    // within five minutes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
