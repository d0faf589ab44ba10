//! The session layer in front of every signed-in page: finds the session
//! from its cookie, sends visitors without one to the login page, refuses
//! what the user's role may never do (a viewer changing anything, anyone
//! but an admin in settings), and refuses changing requests that lack the
//! session's CSRF token.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::sessions;
use postino_domain::Role;

use super::page::{PageError, SignedIn};
use super::{cookies, csrf};
use crate::AppState;

/// Applied as a route layer to the signed-in router, so no page can be added
/// without it.
pub(crate) async fn require_session(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let session = match cookies::get(req.headers(), cookies::SESSION) {
        Some(secret) => match find(&state, secret).await {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        return to_login(&req);
    };
    // Handlers check the role too; this floor holds for any route added
    // later, and refuses before a body is read.
    if !session
        .user
        .role
        .allows(role_needed(req.method(), req.uri().path()))
    {
        return PageError::Forbidden.into_response();
    }
    let mut req = if csrf::needs_token(req.method()) {
        match csrf::verify(req, &session.csrf_token, state.settings.max_body_bytes).await {
            Some(req) => req,
            None => return PageError::BadCsrf.into_response(),
        }
    } else {
        req
    };
    req.extensions_mut().insert(SignedIn(session));
    next.run(req).await
}

async fn find(state: &AppState, secret: &str) -> Result<Option<sessions::Session>, PageError> {
    let mut conn = state.db.acquire().await?;
    Ok(sessions::find(&mut conn, secret).await?)
}

/// To the login page, which comes back here afterwards. htmx requests get
/// `HX-Redirect`, since htmx would otherwise swap the login page into
/// whatever element asked.
fn to_login(req: &Request) -> Response {
    let back = if req.method() == axum::http::Method::GET {
        req.uri()
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str)
    } else {
        "/"
    };
    let location = login_url(back);
    if req.headers().contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    let mut response = Redirect::to(&location).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The least role a request needs: settings are for admins, changes for
/// editors (signing out aside), reading for everyone.
fn role_needed(method: &Method, path: &str) -> Role {
    if path == "/settings" || path.starts_with("/settings/") {
        Role::Admin
    } else if csrf::needs_token(method) && path != "/logout" {
        Role::Editor
    } else {
        Role::Viewer
    }
}

/// `/login`, remembering `back` when it is worth returning to.
pub(crate) fn login_url(back: &str) -> String {
    let back = safe_next(back);
    if back == "/" {
        return "/login".to_owned();
    }
    let encoded: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    format!("/login?next={encoded}")
}

/// `next` when it is a path on this site, else `/`: a login link must never
/// send people to another site (an open redirect helps phishing).
pub(crate) fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !next.starts_with("/login")
        && !next.starts_with("/logout");
    if local { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_followed_after_login() {
        assert_eq!(safe_next("/lists?x=1"), "/lists?x=1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/a\r\nLocation: x"), "/");
        assert_eq!(safe_next("/logout"), "/");
        assert_eq!(safe_next(""), "/");
    }

    #[test]
    fn settings_need_an_admin_changes_an_editor_and_reading_anyone() {
        assert_eq!(role_needed(&Method::GET, "/settings"), Role::Admin);
        assert_eq!(role_needed(&Method::POST, "/settings/users"), Role::Admin);
        assert_eq!(role_needed(&Method::GET, "/settingsx"), Role::Viewer);
        assert_eq!(role_needed(&Method::POST, "/lists"), Role::Editor);
        assert_eq!(role_needed(&Method::POST, "/logout"), Role::Viewer);
        assert_eq!(role_needed(&Method::GET, "/campaigns/x"), Role::Viewer);
    }

    #[test]
    fn the_login_url_carries_the_page_to_return_to() {
        assert_eq!(login_url("/lists?a=b"), "/login?next=%2Flists%3Fa%3Db");
        assert_eq!(login_url("/"), "/login");
    }
}
