//! What every dashboard page shares: the layout's data, rendering an askama
//! template to a response, form bodies, and [`PageError`].
//!
//! The dashboard answers people, not programs, so its failures are HTML pages
//! rather than the API's problem documents; [`PageError`] is that mapping,
//! kept beside the templates it renders. Server-side failures still carry an
//! `ErrorReport` so the request middleware logs them once.

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use postino_db::sessions::Session;
use postino_domain::Role;
use serde::de::DeserializeOwned;

use crate::error::{ErrorReport, WebError};

/// The signed-in user's session, put in the request by the session layer.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(pub(crate) Session);

impl SignedIn {
    /// Refuses the request unless the user's role includes `needed`. Every
    /// handler that changes something calls this itself: hiding a button is
    /// a courtesy, this is the rule.
    pub(crate) fn require(&self, needed: Role) -> Result<(), PageError> {
        if self.0.user.role.allows(needed) {
            Ok(())
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// The layout data for a page of `section`.
    pub(crate) fn layout(&self, section: &'static str, title: &str) -> Layout {
        let user = &self.0.user;
        let user_name = if user.name.trim().is_empty() {
            user.email.as_str().to_owned()
        } else {
            user.name.clone()
        };
        Layout {
            title: title.to_owned(),
            section,
            initial: user_name
                .chars()
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default(),
            user_name,
            user_email: user.email.as_str().to_owned(),
            role: user.role.as_str(),
            csrf_token: self.0.csrf_token.clone(),
            can_edit: user.role.allows(Role::Editor),
            is_admin: user.role.allows(Role::Admin),
        }
    }
}

/// What `dashboard/base.html` shows around every signed-in page.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The page's title.
    pub(crate) title: String,
    /// Which navigation entry is current.
    pub(crate) section: &'static str,
    /// Who is signed in, as they are greeted.
    pub(crate) user_name: String,
    /// The first letter of their name, for the avatar.
    pub(crate) initial: String,
    /// Their login address.
    pub(crate) user_email: String,
    /// Their role's name.
    pub(crate) role: &'static str,
    /// The token every form and htmx request echoes.
    pub(crate) csrf_token: String,
    /// Whether to show what editors may do (create, edit, delete).
    pub(crate) can_edit: bool,
    /// Whether to show what only admins may do (settings).
    pub(crate) is_admin: bool,
}

/// `n` with thousands separated by commas, as people read counts: 1,240.
pub(crate) fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Renders `template` with `status`.
pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::internal(&e).into_response(),
    }
}

/// An `application/x-www-form-urlencoded` body; one that does not parse is
/// a 400 page (the dashboard's own forms always send every field).
#[derive(Debug)]
pub(crate) struct PageForm<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::BadForm)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(PageForm)
            .map_err(|_| PageError::BadForm)
    }
}

/// A dashboard request failed.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The user's role does not allow this (403).
    Forbidden,
    /// A changing request without this session's CSRF token (403).
    BadCsrf,
    /// The form body could not be read (400).
    BadForm,
    /// Nothing lives at this address, or the thing named is gone (404).
    NotFound(&'static str),
    /// Input a form cannot show beside its fields (422): one page lists
    /// every problem.
    Invalid(Vec<postino_service::FieldError>),
    /// The change clashes with the current state (409).
    Conflict(String),
    /// The database cannot be reached (503); the cause goes to the log.
    Unavailable(ErrorReport),
    /// A bug or an unexpected failure (500); the cause goes to the log.
    Internal(ErrorReport),
}

impl PageError {
    /// An unexpected failure, with its cause chain for the log.
    pub(crate) fn internal(e: &dyn std::error::Error) -> Self {
        PageError::Internal(ErrorReport(e.to_string() + &chain_of(e)))
    }
}

/// Every way a use case fails, as the dashboard shows it.
impl From<postino_service::Error> for PageError {
    fn from(e: postino_service::Error) -> Self {
        use postino_service::Error;
        match e {
            Error::Invalid(errors) => PageError::Invalid(errors),
            Error::NotFound(what) => PageError::NotFound(what),
            Error::Conflict { message, .. } => PageError::Conflict(message),
            Error::Unavailable(ref cause) => {
                PageError::Unavailable(ErrorReport(e.to_string() + ": " + &cause.to_string()))
            }
            Error::Internal(ref cause) => PageError::Internal(ErrorReport(
                e.to_string() + ": " + &chain_of_cause(&**cause),
            )),
        }
    }
}

/// The API's errors, for the capabilities whose use cases still live in
/// the API's modules (subscribers, imports, relays, DKIM keys, limits).
impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        match e {
            WebError::Invalid(errors) => PageError::Invalid(
                errors
                    .into_iter()
                    .map(|e| postino_service::FieldError::new(e.field, e.message))
                    .collect(),
            ),
            WebError::Malformed(_) | WebError::UnsupportedMediaType | WebError::PayloadTooLarge => {
                PageError::BadForm
            }
            WebError::Unauthorized | WebError::Forbidden(_) => PageError::Forbidden,
            WebError::NotFound(what) => PageError::NotFound(what),
            WebError::Conflict { message, .. } => PageError::Conflict(message),
            WebError::Unavailable(ref cause) => {
                PageError::Unavailable(ErrorReport(e.to_string() + ": " + &cause.to_string()))
            }
            WebError::Internal(ref cause) => PageError::Internal(ErrorReport(
                e.to_string() + ": " + &chain_of_cause(&**cause),
            )),
        }
    }
}

impl From<postino_db::DbError> for PageError {
    fn from(e: postino_db::DbError) -> Self {
        postino_service::Error::from(e).into()
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        postino_service::Error::from(e).into()
    }
}

/// Two UUID path parameters of a page, as in
/// `/subscribers/{id}/lists/{list}/remove`; anything else is the 404 page.
#[derive(Debug)]
pub(crate) struct PageId2(pub(crate) uuid::Uuid, pub(crate) uuid::Uuid);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PageId2 {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| PageError::NotFound("page"))?;
        match (uuid::Uuid::parse_str(&a), uuid::Uuid::parse_str(&b)) {
            (Ok(a), Ok(b)) => Ok(PageId2(a, b)),
            _ => Err(PageError::NotFound("page")),
        }
    }
}

/// A UUID path parameter of a page; anything else is the dashboard's 404
/// page, since nothing can live there.
#[derive(Debug)]
pub(crate) struct PageId(pub(crate) uuid::Uuid);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PageId {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| PageError::NotFound("page"))?;
        uuid::Uuid::parse_str(&raw)
            .map(PageId)
            .map_err(|_| PageError::NotFound("page"))
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message, report) = match self {
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "You cannot do that",
                "Your role does not allow this change. Ask an admin if you need it.".to_owned(),
                None,
            ),
            PageError::BadCsrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this session's own page, so nothing was changed. \
                 Go back, reload the page and try again."
                    .to_owned(),
                None,
            ),
            PageError::BadForm => (
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "Some of its fields were missing or garbled, so nothing was changed. \
                 Go back, reload the page and try again."
                    .to_owned(),
                None,
            ),
            PageError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("This {what} does not exist, or it was just deleted."),
                None,
            ),
            PageError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Some of what you entered cannot be used",
                format!(
                    "Nothing was changed: {}.",
                    errors
                        .iter()
                        .map(|e| if e.field.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{}: {}", e.field, e.message)
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                None,
            ),
            PageError::Conflict(message) => (
                StatusCode::CONFLICT,
                "That clashes with something else",
                format!("Nothing was changed: {message}."),
                None,
            ),
            PageError::Unavailable(report) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Postino cannot reach its database",
                "Nothing was changed. Try again in a moment.".to_owned(),
                Some(report),
            ),
            PageError::Internal(report) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side",
                "It has been logged. Try again; if it keeps happening, tell your admin.".to_owned(),
                Some(report),
            ),
        };
        let html = ErrorPage { heading, message }
            .render()
            .unwrap_or_else(|_| heading.to_owned());
        let mut response = (status, Html(html)).into_response();
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        response
    }
}

/// The causes of `e` after `e` itself, each after a colon.
fn chain_of(e: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `e` and its causes, joined by colons.
fn chain_of_cause(e: &(dyn std::error::Error + Send + Sync)) -> String {
    e.to_string() + &chain_of(e)
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1240), "1,240");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(grouped(-12345), "-12,345");
    }
}
