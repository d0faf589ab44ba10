//! The dashboard: server-rendered pages for marketers, with htmx for
//! partial updates.
//!
//! # Layout
//!
//! - `login`: `/login` and `/logout`, the throttle after failed sign-ins;
//!   `login_limit` the failed sign-ins counted per client address.
//! - `session`: the layer in front of every signed-in page (session cookie,
//!   redirect to login, CSRF check on every changing request).
//! - `csrf`, `cookies`: the token check and the cookies, small and explicit.
//! - `page`: the layout data, rendering, form bodies, role checks and
//!   [`page::PageError`], the dashboard's HTML error pages.
//! - `overview`, `lists`: the pages; `chart` draws their SVG bar charts.
//! - `subscribers/`: the searchable table and its CSV export (`index`),
//!   the search form read into the service's filter (`search`), acting on
//!   the rows ticked in it (`bulk`), one subscriber's page (`profile`),
//!   editing, blocklisting, lists and deleting (`actions`), adding one by
//!   hand (`new`).
//! - `imports`: the CSV upload form and recent imports; `import_job` one
//!   import's live progress, summary, bad rows and error report.
//! - `layouts`: `/templates`, the layouts campaigns are wrapped in, with a
//!   live preview.
//! - `campaigns/`: the table, the editor and one campaign's page, its
//!   live preview, test sends, lifecycle moves, progress, timeline and
//!   deliveries (see its own docs).
//! - `settings`: the admins' pages: SMTP servers, DKIM keys, sending
//!   limits, API tokens, users.
//! - `assets`: `/static`, the CSS and JavaScript compiled into the binary.
//!
//! Every change goes through `postino-service`, the same use cases the REST
//! API calls; this module never imports `crate::api`. Handlers read forms,
//! check the user's role and render pages; a use case's error becomes an
//! HTML page through [`page::PageError`], never the API's problem JSON.

mod assets;
mod campaigns;
mod chart;
mod cookies;
mod csrf;
mod import_job;
mod imports;
mod layouts;
mod lists;
mod login;
mod login_limit;
mod overview;
mod page;
mod session;
mod settings;
mod subscribers;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::AppState;
use login_limit::LoginLimiter;

/// The dashboard's routes.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let failures_per_ip = state.settings.login_failures_per_ip;
    let signed_in = Router::new()
        .route("/", get(overview::show))
        .route("/lists", get(lists::index).post(lists::create))
        .route("/lists/{id}", post(lists::update))
        .route("/lists/{id}/edit", get(lists::edit))
        .route("/lists/{id}/delete", post(lists::delete))
        .route(
            "/subscribers",
            get(subscribers::index::index).post(subscribers::new::create),
        )
        .route("/subscribers/new", get(subscribers::new::new))
        .route(
            "/subscribers/{id}/export.json",
            get(subscribers::actions::export),
        )
        .route("/subscribers/export.csv", get(subscribers::index::export))
        .route("/subscribers/bulk", post(subscribers::bulk::apply))
        .route(
            "/subscribers/{id}",
            get(subscribers::profile::show).post(subscribers::actions::update),
        )
        .route(
            "/subscribers/{id}/status",
            post(subscribers::actions::set_status),
        )
        .route(
            "/subscribers/{id}/lists",
            post(subscribers::actions::add_to_list),
        )
        .route(
            "/subscribers/{id}/lists/{list}/unsubscribe",
            post(subscribers::actions::unsubscribe),
        )
        .route(
            "/subscribers/{id}/lists/{list}/remove",
            post(subscribers::actions::remove_from_list),
        )
        .route(
            "/subscribers/{id}/delete",
            post(subscribers::actions::delete),
        )
        .route(
            "/campaigns",
            get(campaigns::editor::index).post(campaigns::editor::create),
        )
        .route("/campaigns/new", get(campaigns::editor::new))
        .route("/campaigns/preview", post(campaigns::actions::preview_new))
        .route(
            "/campaigns/{id}",
            get(campaigns::editor::show).post(campaigns::editor::update),
        )
        .route(
            "/campaigns/{id}/preview",
            post(campaigns::actions::preview_existing),
        )
        .route("/campaigns/{id}/test", post(campaigns::actions::test_send))
        .route(
            "/campaigns/{id}/status",
            post(campaigns::actions::change_status),
        )
        .route(
            "/campaigns/{id}/schedule",
            post(campaigns::actions::schedule),
        )
        .route("/campaigns/{id}/progress", get(campaigns::progress::show))
        .route(
            "/campaigns/{id}/deliveries",
            get(campaigns::deliveries::index),
        )
        .route(
            "/campaigns/{id}/deliveries/retry",
            post(campaigns::deliveries::retry),
        )
        .route("/campaigns/{id}/delete", post(campaigns::actions::delete))
        .route("/templates", get(layouts::index).post(layouts::create))
        .route("/templates/new", get(layouts::new))
        .route("/templates/preview", post(layouts::preview))
        .route("/templates/{id}", get(layouts::edit).post(layouts::update))
        .route("/templates/{id}/delete", post(layouts::delete))
        // The upload streams to disk under import.max_upload_bytes, counted
        // by the API's upload function; the dashboard's form limit must not
        // apply to it.
        .route(
            "/import",
            get(imports::index)
                .post(imports::create)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/import/{id}", get(import_job::show))
        .route("/import/{id}/progress", get(import_job::progress))
        .route("/import/{id}/errors.csv", get(import_job::errors_csv))
        .route("/import/{id}/cancel", post(import_job::cancel))
        .route("/logout", post(login::logout))
        .merge(settings::router())
        .route_layer(middleware::from_fn_with_state(
            state,
            session::require_session,
        ));
    let limiter = Arc::new(LoginLimiter::new(failures_per_ip));
    login::warm_up();
    Router::new()
        .route("/login", get(login::show).post(login::login))
        .layer(Extension(limiter))
        .merge(signed_in)
        .layer(middleware::from_fn(page_headers))
        .route("/static/{*path}", get(assets::serve))
}

/// The page for addresses that lead nowhere (outside the API, which answers
/// with problem documents).
pub(crate) async fn not_found() -> Response {
    page::PageError::NotFound("page").into_response()
}

/// Dashboard pages are never cached: they hold personal data. (The
/// security headers every response carries are set in `headers`.)
async fn page_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
