//! Sections of the navigation whose pages are not built yet. They say so
//! and point to the API, which already does everything they will do, rather
//! than leaving a dead link.

use askama::Template;
use axum::Extension;
use axum::extract::MatchedPath;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{Layout, PageError, SignedIn, render};

#[derive(Template)]
#[template(path = "dashboard/placeholder.html")]
struct PlaceholderPage {
    layout: Layout,
    what: &'static str,
}

pub(crate) async fn show(
    Extension(signed_in): Extension<SignedIn>,
    path: MatchedPath,
) -> Result<Response, PageError> {
    let (section, title, what) = match path.as_str() {
        "/subscribers" => (
            "subscribers",
            "Subscribers",
            "search, edit, blocklist and export subscribers",
        ),
        "/templates" => (
            "templates",
            "Templates",
            "manage the layouts campaigns are wrapped in",
        ),
        _ => ("import", "Import", "import subscribers from a CSV file"),
    };
    let page = PlaceholderPage {
        layout: signed_in.layout(section, title),
        what,
    };
    Ok(render(StatusCode::OK, &page))
}
