//! The REST API under `/api/v1`, and the OpenAPI document generated from it.
//!
//! Every route is registered through utoipa-axum's `routes!`, so the OpenAPI
//! document *is* the route table: the auth test walks it to prove no route
//! answers without a token.
//!
//! CSV import jobs live in `imports`, CSV exports of lists and searches in
//! `exports`, a campaign's per-recipient outcomes in `deliveries`, the SMTP
//! relays the sender uses in `smtp_servers`, the keys that DKIM-sign mail
//! in `dkim_keys`.

pub(crate) mod campaigns;
pub(crate) mod deliveries;
pub(crate) mod dkim_keys;
pub(crate) mod exports;
pub(crate) mod imports;
pub(crate) mod limits;
mod lists;
pub(crate) mod smtp_servers;
pub(crate) mod subscribers;
pub(crate) mod templates;
mod tokens;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postino API",
        description = "Manage lists, subscribers, templates, campaigns, SMTP servers, DKIM keys and API tokens. Authenticate with \
                       `Authorization: Bearer <token>`; create a first token with \
                       `postino token create --name NAME`. Errors are RFC 9457 problem documents.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only"),
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "lists", description = "Mailing lists"),
        (name = "subscribers", description = "Subscribers and their list memberships"),
        (name = "templates", description = "Layouts that wrap campaign bodies"),
        (name = "campaigns", description = "Campaigns: content, lifecycle, previews, test sends, progress"),
        (name = "imports", description = "CSV imports: upload, progress, error reports, cancel"),
        (name = "smtp-servers", description = "SMTP relays the sender delivers through; passwords are write-only"),
        (name = "limits", description = "How fast Postino may send: overall, per recipient domain, and the throttles it set itself"),
        (name = "dkim-keys", description = "DKIM keys per sending domain, with the DNS records to publish; private keys are write-only"),
        (name = "tokens", description = "API tokens"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes (paths relative to `/api/v1`) with their OpenAPI document.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lists::router())
        .merge(subscribers::router())
        .merge(templates::router())
        .merge(campaigns::router())
        .merge(deliveries::router())
        .merge(tokens::router())
        .merge(imports::router())
        .merge(exports::router())
        .merge(smtp_servers::router())
        .merge(limits::router())
        .merge(dkim_keys::router())
}
