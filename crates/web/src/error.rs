//! [`WebError`]: every way a request can fail, and the one place that turns
//! each into an HTTP response (an RFC 9457 problem document).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postino_db::DbError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem with one field of the request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: a JSON path such as `email` or `lists[2]`, or a
    /// query parameter name.
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A request failed. Handlers return `Result<_, WebError>` and use `?`.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The body or a parameter is well-formed but has invalid values (422).
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// The body is not parseable at all (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The body is not JSON (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body exceeds the configured limit (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// No valid bearer token (401).
    #[error("unauthorized")]
    Unauthorized,
    /// The token is valid but its scope does not allow this (403); says
    /// which scope would.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing addressed does not exist (404); names what was looked for.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with existing data (409).
    #[error("conflict on {field}")]
    Conflict {
        /// The field whose value clashes.
        field: String,
        /// What clashes.
        message: String,
    },
    /// The database cannot be reached right now (503).
    #[error("service unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A bug or an unexpected failure (500); details go to the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl WebError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// Every way a use case fails, as the API answers it.
impl From<postino_service::Error> for WebError {
    fn from(e: postino_service::Error) -> Self {
        use postino_service::Error;
        match e {
            Error::Invalid(errors) => WebError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, e.message))
                    .collect(),
            ),
            Error::NotFound(what) => WebError::NotFound(what),
            Error::Conflict { field, message } => WebError::Conflict { field, message },
            Error::Unavailable(e) => WebError::Unavailable(e),
            Error::Internal(e) => WebError::Internal(e),
        }
    }
}

impl From<DbError> for WebError {
    fn from(e: DbError) -> Self {
        postino_service::Error::from(e).into()
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        postino_service::Error::from(e).into()
    }
}

/// The JSON body of every error response (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The fields at fault, for validation problems and conflicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// A server-side failure's cause chain, attached to the response so the
/// logging middleware can record it once; it never reaches the client.
#[derive(Debug, Clone)]
pub struct ErrorReport(pub String);

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let report = match &self {
            WebError::Unavailable(_) | WebError::Internal(_) => Some(ErrorReport(chain(&self))),
            _ => None,
        };
        let (status, slug, detail, errors) = match self {
            WebError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                match errors.as_slice() {
                    [one] if !one.field.is_empty() => format!("{}: {}", one.field, one.message),
                    _ => "some fields are invalid; see errors".to_owned(),
                },
                errors,
            ),
            WebError::Malformed(detail) => {
                (StatusCode::BAD_REQUEST, "malformed-request", detail, vec![])
            }
            WebError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be JSON, sent with Content-Type: application/json".to_owned(),
                vec![],
            ),
            WebError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "the request body is larger than this server accepts".to_owned(),
                vec![],
            ),
            WebError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid API token is required: send Authorization: Bearer <token>".to_owned(),
                vec![],
            ),
            WebError::Forbidden(detail) => (StatusCode::FORBIDDEN, "forbidden", detail, vec![]),
            WebError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no such {what}"),
                vec![],
            ),
            WebError::Conflict { field, message } => (
                StatusCode::CONFLICT,
                "conflict",
                message.clone(),
                if field.is_empty() {
                    vec![]
                } else {
                    vec![FieldError::new(field, message)]
                },
            ),
            WebError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is not reachable right now; try again shortly".to_owned(),
                vec![],
            ),
            WebError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal-error",
                "something went wrong on our side; it has been logged".to_owned(),
                vec![],
            ),
        };
        let problem = Problem {
            kind: format!("urn:postino:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"postino\""),
            );
        }
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        response
    }
}
