//! `/login` and `/logout`.
//!
//! Lockout policy: after [`LOCK_AFTER`] failed logins in a row, an account
//! refuses every login, even with the right password, for [`LOCK_FOR`]; each
//! further failure once the lock ends locks it again, and a successful login
//! clears the count. Attempts are counted before the password is checked, so
//! parallel guesses cannot slip past the limit. Unknown addresses cost the same password hash as known
//! ones, so response times do not reveal who has an account.
//!
//! Besides, a client address that failed `http.login_failures_per_ip` times
//! in 15 minutes, whichever accounts it tried, is refused before anything
//! is looked up (see `login_limit`).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use postino_db::users::LoginAttempt;
use postino_db::{DbError, sessions, users};
use postino_domain::{EmailAddress, Password};
use serde::Deserialize;

use super::cookies;
use super::login_limit::LoginLimiter;
use super::page::{PageError, PageForm, SignedIn, render};
use super::session::safe_next;
use crate::AppState;
use crate::error::WebError;

/// Failed logins in a row after which an account locks.
pub(crate) const LOCK_AFTER: i32 = 10;
/// How long a lock lasts.
pub(crate) const LOCK_FOR: Duration = Duration::minutes(15);
/// How long a session lasts; people sign in again once a day or so.
const SESSION_TTL: Duration = Duration::hours(12);
/// How long the login form stays usable.
const LOGIN_FORM_TTL_SECS: i64 = 3600;

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    email: String,
    next: String,
    csrf_token: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
}

/// The login form. A new form token is issued on every visit, in a cookie
/// only this path receives and in the form, which must send both back.
/// Someone already signed in goes straight on.
pub(crate) async fn show(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(secret) = cookies::get(&headers, cookies::SESSION) {
        let mut conn = state.db.acquire().await?;
        if sessions::find(&mut conn, secret).await?.is_some() {
            return Ok(Redirect::to(safe_next(&query.next)).into_response());
        }
    }
    let token = sessions::random_token();
    let page = LoginPage {
        email: String::new(),
        next: safe_next(&query.next).to_owned(),
        csrf_token: token.clone(),
        error: None,
    };
    let mut response = render(StatusCode::OK, &page);
    set_login_cookie(&state, &mut response, &token, LOGIN_FORM_TTL_SECS);
    Ok(response)
}

fn set_login_cookie(state: &AppState, response: &mut Response, token: &str, max_age: i64) {
    let secure = cookies::secure_for(&state.settings.root_url);
    if let Some(value) = cookies::set(
        cookies::LOGIN_CSRF,
        token,
        "/login",
        "Strict",
        max_age,
        secure,
    ) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// Checks the password and starts a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<LoginLimiter>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookies::get(&headers, cookies::LOGIN_CSRF).unwrap_or_default();
    if !super::csrf::same(&form.csrf_token, expected) {
        return Err(PageError::BadCsrf);
    }
    let client = client_ip(&headers, peer, &state.settings.client_ip_header);
    // Counted against the client address, when there is one.
    let failed = || {
        if let Some(ip) = client {
            limiter.failed(ip, Instant::now());
        }
    };
    let next = safe_next(&form.next).to_owned();
    let again = |status: StatusCode, error: String| {
        // A fresh form token for the next try.
        let token = sessions::random_token();
        let page = LoginPage {
            email: form.email.clone(),
            next: next.clone(),
            csrf_token: token.clone(),
            error: Some(error),
        };
        let mut response = render(status, &page);
        set_login_cookie(&state, &mut response, &token, LOGIN_FORM_TTL_SECS);
        response
    };
    let wrong = || {
        again(
            StatusCode::UNAUTHORIZED,
            "That e-mail address and password do not match an account.".to_owned(),
        )
    };

    if let Some(wait) = client.and_then(|ip| limiter.blocked(ip, Instant::now())) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        tracing::warn!(client = ?client, "sign-in refused: too many failures from this address");
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins came from your network. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        ));
    }

    let mut conn = state.db.acquire().await?;
    let record = match EmailAddress::parse(form.email.trim()) {
        Ok(email) => match users::login_record(&mut conn, &email).await {
            Ok(record) => Some(record),
            Err(DbError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let Some(record) = record else {
        drop(conn);
        verify(form.password.clone(), None).await?;
        failed();
        return Ok(wrong());
    };
    let attempt =
        users::count_login_attempt(&mut conn, record.user.id, LOCK_AFTER, LOCK_FOR).await?;
    let locks_at = match attempt {
        LoginAttempt::Locked => {
            // Set by a parallel attempt if not yet in the record read above.
            let until = record
                .locked_until
                .filter(|until| *until > Utc::now())
                .unwrap_or_else(|| Utc::now() + LOCK_FOR);
            failed();
            return Ok(again(StatusCode::TOO_MANY_REQUESTS, locked_message(until)));
        }
        LoginAttempt::Allowed { locks_at } => locks_at,
    };
    // The hash takes tens of milliseconds; a burst of logins must not hold
    // pooled connections that long.
    drop(conn);
    let good = match Password::parse(&form.password) {
        Ok(password) => verify(password.expose().to_owned(), Some(record.password_hash)).await?,
        Err(_) => false,
    };
    if !good {
        failed();
        return Ok(match locks_at {
            Some(until) => again(StatusCode::TOO_MANY_REQUESTS, locked_message(until)),
            None => wrong(),
        });
    }

    let mut conn = state.db.acquire().await?;
    users::record_successful_login(&mut conn, record.user.id).await?;
    // A session this browser held before is ended, not left behind for
    // whoever had its cookie; every login starts a fresh one.
    if let Some(previous) = cookies::get(&headers, cookies::SESSION) {
        sessions::delete(&mut conn, previous).await?;
    }
    sessions::delete_expired(&mut conn).await?;
    let (secret, _) = sessions::create(&mut conn, record.user.id, SESSION_TTL).await?;
    tracing::info!(user.id = record.user.id, "signed in");
    let mut response = Redirect::to(&next).into_response();
    let secure = cookies::secure_for(&state.settings.root_url);
    if let Some(value) = cookies::set(
        cookies::SESSION,
        secret.expose(),
        "/",
        "Lax",
        SESSION_TTL.num_seconds(),
        secure,
    ) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    set_login_cookie(&state, &mut response, "", 0);
    Ok(response)
}

fn locked_message(until: DateTime<Utc>) -> String {
    let minutes = (until - Utc::now()).num_minutes().max(0) + 1;
    format!(
        "Too many failed logins: this account is locked for {minutes} more minute{}. \
         Try again later, or ask an admin to reset your password.",
        if minutes == 1 { "" } else { "s" }
    )
}

/// Checks `password` against `hash` off the async threads (argon2 takes tens
/// of milliseconds on purpose). Without a hash it checks against a stand-in,
/// so an unknown address takes as long as a known one.
async fn verify(password: String, hash: Option<String>) -> Result<bool, PageError> {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let stand_in = hash.is_none();
        let hash = hash.unwrap_or_else(|| {
            STAND_IN
                .get_or_init(|| password_auth::generate_hash("no account has this password"))
                .clone()
        });
        let matches = password_auth::verify_password(password, &hash).is_ok();
        matches && !stand_in
    })
    .await
    .map_err(|e| PageError::Internal(WebError::Internal(Box::new(e))))
}

/// Ends the session and forgets its cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(signed_in): axum::Extension<SignedIn>,
) -> Result<Response, PageError> {
    if let Some(secret) = cookies::get(&headers, cookies::SESSION) {
        let mut conn = state.db.acquire().await?;
        sessions::delete(&mut conn, secret).await?;
    }
    tracing::info!(user.id = signed_in.0.user.id, "signed out");
    let mut response = Redirect::to("/login").into_response();
    let secure = cookies::secure_for(&state.settings.root_url);
    if let Some(value) = cookies::set(cookies::SESSION, "", "/", "Lax", 0, secure) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    Ok(response)
}
/// The connecting address, when the server was started to record it (it
/// always is; a router served without it counts no address).
pub(crate) struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// The client's address: the last one in `header` (what the reverse proxy
/// in front of Postino added) when a header is configured, else the
/// connecting address.
fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, header: &str) -> Option<IpAddr> {
    if header.is_empty() {
        return peer;
    }
    headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| last.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_peer_or_the_last_address_the_proxy_added() {
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        assert_eq!(client_ip(&headers, peer, ""), peer);
        assert_eq!(
            client_ip(&headers, peer, "X-Forwarded-For"),
            Some(IpAddr::from([198, 51, 100, 7]))
        );
        assert_eq!(client_ip(&HeaderMap::new(), peer, "X-Real-IP"), None);
    }
}
