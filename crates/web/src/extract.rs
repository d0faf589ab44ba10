//! Extractors whose rejections are [`WebError`]s naming the field at fault,
//! instead of axum's plain-text ones.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{FieldError, WebError};

/// A JSON request body. Type errors and domain validation failures become a
/// 422 naming the JSON path of the field; unparseable JSON a 400; a body over
/// the limit a 413; a missing or wrong content type a 415.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == mime::APPLICATION
                    && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
            });
        if !is_json {
            return Err(WebError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                WebError::PayloadTooLarge
            } else {
                WebError::Malformed(rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises `bytes`, reporting where in the document a value was refused.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WebError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, message) = field_and_message(&path, &inner.to_string());
                WebError::Invalid(vec![FieldError::new(field, message)])
            }
            // serde_json reports some type mismatches (a number where an enum
            // is expected) as syntax errors; the document itself is fine.
            _ if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                let field = if path == "." { String::new() } else { path };
                WebError::Invalid(vec![FieldError::new(field, "has the wrong type")])
            }
            _ => WebError::Malformed(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| WebError::Malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde reports a missing field at the parent's path ("." at the top) with
/// the field's name in the message; move it into the path.
fn field_and_message(path: &str, raw: &str) -> (String, String) {
    let message = raw.split(" at line ").next().unwrap_or(raw).to_owned();
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return (field, "is required".to_owned());
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        // JSON reports an unknown key at its parent's path; query strings at
        // the key's own path.
        let field = if parent.is_empty() {
            name.to_owned()
        } else if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return (field, "is not a field of this request".to_owned());
    }
    (parent.to_owned(), message)
}

/// Query parameters, with the same error reporting as [`ApiJson`].
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let (field, message) = field_and_message(&path, &err.into_inner().to_string());
                WebError::Invalid(vec![FieldError::new(field, message)])
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// A UUID path parameter; anything else is a 404, since nothing can live there.
#[derive(Debug)]
pub(crate) struct IdPath(pub(crate) uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| WebError::NotFound("resource"))?;
        uuid::Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| WebError::NotFound("resource"))
    }
}

/// Two UUID path parameters, as in `/subscribers/{id}/lists/{list_id}`.
#[derive(Debug)]
pub(crate) struct IdPath2(pub(crate) uuid::Uuid, pub(crate) uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath2 {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| WebError::NotFound("resource"))?;
        match (uuid::Uuid::parse_str(&a), uuid::Uuid::parse_str(&b)) {
            (Ok(a), Ok(b)) => Ok(IdPath2(a, b)),
            _ => Err(WebError::NotFound("resource")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: postino_domain::EmailAddress,
        lists: Vec<uuid::Uuid>,
    }

    fn fields(err: WebError) -> Vec<(String, String)> {
        match err {
            WebError::Invalid(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"lists": []}"#).unwrap_err();
        assert_eq!(
            fields(err),
            [("email".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn a_domain_refusal_names_the_field_and_the_reason() {
        let err = parse_json::<Body>(br#"{"email": "nope", "lists": []}"#).unwrap_err();
        let f = fields(err);
        assert_eq!(f[0].0, "email");
        assert!(f[0].1.contains("must contain an @"), "{}", f[0].1);
    }

    #[test]
    fn a_bad_array_element_is_named_by_index() {
        let err = parse_json::<Body>(br#"{"email": "a@b.co", "lists": ["x"]}"#).unwrap_err();
        assert_eq!(fields(err)[0].0, "lists[0]");
    }

    #[test]
    fn unknown_fields_are_named() {
        let err =
            parse_json::<Body>(br#"{"email": "a@b.co", "lists": [], "emial": 1}"#).unwrap_err();
        assert_eq!(fields(err)[0].0, "emial");
    }

    #[test]
    fn broken_json_is_malformed_not_invalid() {
        assert!(matches!(
            parse_json::<Body>(b"{\"email\":"),
            Err(WebError::Malformed(_))
        ));
    }
}
