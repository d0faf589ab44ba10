//! The dashboard's cookies: the session, the login form's CSRF token (the
//! login page has no session yet to hold one), and the mark of a browser
//! that signed in before.

use axum::http::{HeaderMap, HeaderValue, header};

/// Holds the session's secret.
pub(crate) const SESSION: &str = "postino_session";
/// Holds the login form's CSRF token until the form is sent.
pub(crate) const LOGIN_CSRF: &str = "postino_login_csrf";
/// Marks a browser that signed in before; sent only to `/login`.
pub(crate) const KNOWN_DEVICE: &str = "postino_device";

/// The value of cookie `name` in the request, if sent.
pub(crate) fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value. Always `HttpOnly` (no script needs these) and
/// `Secure` whenever Postino is served over HTTPS; `max_age` 0 deletes it.
pub(crate) fn set(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
    secure: bool,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// Whether `root_url` is HTTPS, so cookies must be `Secure`.
pub(crate) fn secure_for(root_url: &str) -> bool {
    root_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("postino_session=xyz"),
        );
        assert_eq!(get(&headers, "b"), Some("2"));
        assert_eq!(get(&headers, SESSION), Some("xyz"));
        assert_eq!(get(&headers, "c"), None);
    }

    #[test]
    fn cookies_are_secure_only_behind_https() {
        assert!(secure_for("https://news.example.com"));
        assert!(secure_for("HTTPS://news.example.com"));
        assert!(!secure_for("http://127.0.0.1:8080"));
        let value = set(SESSION, "v", "/", "Lax", 60, true).unwrap();
        assert_eq!(
            value,
            "postino_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
