//! CSRF protection: every request that changes something must echo its
//! session's token, in the `X-CSRF-Token` header (htmx sends it from the
//! page's `hx-headers`) or in a `csrf_token` form field (plain forms).
//!
//! A multipart form (a file upload) must send the field as its *first*
//! part; browsers send fields in page order, so the form puts its hidden
//! input first. Only that part is read here and the rest of the body
//! streams on to the handler untouched: a large upload is never buffered,
//! and the token stays out of the URL, where it would linger in the address
//! bar and in proxies' logs.
//!
//! The session cookie is also `SameSite=Lax`, which already stops most
//! cross-site posts; the token covers what SameSite does not (older
//! browsers, sibling subdomains).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use bytes::Bytes;
use futures_util::StreamExt;

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
    crate::auth::constant_time_eq(presented, expected)
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

/// How much of a multipart body is read looking for its first part: far
/// more than a token field needs, and little enough to hold in memory.
const MULTIPART_HEAD: usize = 8 * 1024;

/// The boundary of a `multipart/form-data` body.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime: mime::Mime = value.parse().ok()?;
    if mime.type_() != mime::MULTIPART || mime.subtype() != mime::FORM_DATA {
        return None;
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of the first part of a multipart body when that part is the
/// plain field `csrf_token`; `None` otherwise, or when `head` does not hold
/// the whole part.
pub(crate) fn first_part_token(head: &[u8], boundary: &str) -> Option<String> {
    let opening = format!("--{boundary}\r\n");
    let rest = head.strip_prefix(opening.as_bytes())?;
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&rest[..headers_end]).ok()?;
    let is_token = headers.split("\r\n").any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            return false;
        }
        let mut params = value.split(';').map(str::trim);
        params
            .next()
            .is_some_and(|kind| kind.eq_ignore_ascii_case("form-data"))
            && params.clone().any(|p| p == format!("name=\"{FIELD}\""))
            && !params.any(|p| p.to_ascii_lowercase().starts_with("filename"))
    });
    if !is_token {
        return None;
    }
    let value = &rest[headers_end + 4..];
    let end = find(value, format!("\r\n--{boundary}").as_bytes())?;
    String::from_utf8(value[..end].to_vec()).ok()
}

/// Checks the first part of a multipart body, then hands the request back
/// with the bytes read put in front of the rest of its body.
async fn verify_multipart(req: Request, boundary: &str, expected: &str) -> Option<Request> {
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let closing = format!("\r\n--{boundary}");
    while head.len() < MULTIPART_HEAD && find(&head, closing.as_bytes()).is_none() {
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(_)) => return None,
            None => break,
        }
    }
    let presented = first_part_token(&head, boundary)?;
    if !same(&presented, expected) {
        return None;
    }
    let head = futures_util::stream::once(async move { Ok(Bytes::from(head)) });
    Some(Request::from_parts(
        parts,
        Body::from_stream(head.chain(stream)),
    ))
}

/// Checks `req` against `expected` and hands it back, its body intact, when
/// the token matches; `None` when it does not (or the body is over `limit`).
pub(crate) async fn verify(req: Request, expected: &str, limit: usize) -> Option<Request> {
    if let Some(presented) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return same(presented, expected).then_some(req);
    }
    if let Some(boundary) = multipart_boundary(req.headers()) {
        return verify_multipart(req, &boundary, expected).await;
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
    fn a_multipart_token_counts_only_as_the_first_plain_part() {
        let first = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\
                      tok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; \
                      filename=\"a.csv\"\r\n\r\nemail\r\n--XyZ--\r\n";
        assert_eq!(first_part_token(first, "XyZ").as_deref(), Some("tok"));
        // Not the first part.
        let second = b"--XyZ\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n\
                       subscribe\r\n--XyZ\r\nContent-Disposition: form-data; \
                       name=\"csrf_token\"\r\n\r\ntok\r\n--XyZ--\r\n";
        assert_eq!(first_part_token(second, "XyZ"), None);
        // A file named like the field is not the field.
        let file = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"; \
                     filename=\"t.txt\"\r\n\r\ntok\r\n--XyZ--\r\n";
        assert_eq!(first_part_token(file, "XyZ"), None);
        // Cut off before the part ends.
        let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok";
        assert_eq!(first_part_token(cut, "XyZ"), None);
    }

    #[test]
    fn only_reading_methods_go_without_a_token() {
        assert!(!needs_token(&Method::GET));
        assert!(needs_token(&Method::POST));
        assert!(needs_token(&Method::DELETE));
        assert!(needs_token(&Method::PATCH));
    }
}
