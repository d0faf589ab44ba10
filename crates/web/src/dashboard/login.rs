//! `/login` and `/logout`.
//!
//! Every attempt does the same work and gets the same answer whether or not
//! the address has an account, and whatever the password (short, long,
//! wrong): one lookup, one throttle update, one argon2 check (against a
//! stand-in hash for unknown addresses, with a stand-in password when the
//! typed one is outside the allowed length, so a 1 MB password costs no
//! more than a short one).
//!
//! Throttling instead of a lock: failures are counted per *typed address*
//! (real or not) in PostgreSQL. The first [`FREE_TRIES`] are free; after
//! that each attempt must wait twice as long as the one before, from 1
//! second up to [`MAX_DELAY`]. A refused attempt is not counted, so knocking
//! during the wait does not lengthen it. A browser that signed in to the
//! account before (its `postino_device` cookie, [`KNOWN_DEVICE_TTL`]) skips
//! the throttle, so an attacker failing on purpose slows down only
//! strangers, never the account's owner on their usual browser.
//!
//! Besides, a client address that failed `http.login_failures_per_ip` times
//! in 15 minutes, whichever addresses it tried, is refused before anything
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
use postino_db::sign_in::{self, Attempt};
use postino_db::{DbError, sessions, users};
use postino_domain::{EmailAddress, Password};
use serde::Deserialize;

use super::cookies;
use super::login_limit::LoginLimiter;
use super::page::{PageError, PageForm, SignedIn, render};
use super::session::safe_next;
use crate::AppState;

/// Failed sign-ins in a row on one address before it is slowed down:
/// enough for typos, too few for guessing.
pub(crate) const FREE_TRIES: i32 = 5;
/// The longest wait between attempts on one address: at most 96 guesses a
/// day against one account, and a bearable wait for its owner on a new
/// browser.
pub(crate) const MAX_DELAY: Duration = Duration::minutes(15);
/// How long a browser that signed in is remembered as known.
const KNOWN_DEVICE_TTL: Duration = Duration::days(90);
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

    // The same steps for every address and password, known or not; only
    // the outcome differs.
    let key = sign_in::address_key(&form.email);
    let mut conn = state.db.acquire().await?;
    let record = match EmailAddress::parse(form.email.trim()) {
        Ok(email) => match users::login_record(&mut conn, &email).await {
            Ok(record) => Some(record),
            Err(DbError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    // Only a browser holding this account's cookie skips the throttle. A
    // cookie sent is looked up whatever the address, so a forged one costs
    // the same for a real address as for a made-up one.
    let device_owner = match cookies::get(&headers, cookies::KNOWN_DEVICE) {
        Some(secret) => sign_in::device_owner(&mut conn, secret).await?,
        None => None,
    };
    let known_device =
        matches!((&record, device_owner), (Some(r), Some(owner)) if r.user.id == owner);
    if !known_device
        && let Attempt::Wait { until } = sign_in::reserve_attempt(&mut conn, &key, delay).await?
    {
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            throttled_message(until),
        ));
    }
    // The hash takes tens of milliseconds; a burst of logins must not hold
    // pooled connections that long.
    drop(conn);
    let (user, hash) = match record {
        Some(record) => (Some(record.user), Some(record.password_hash)),
        None => (None, None),
    };
    let good = verify(&form.password, hash).await?;
    let Some(user) = user.filter(|_| good) else {
        failed();
        return Ok(wrong());
    };

    let mut conn = state.db.acquire().await?;
    users::record_successful_login(&mut conn, user.id).await?;
    sign_in::clear(&mut conn, &key).await?;
    // A session this browser held before is ended, not left behind for
    // whoever had its cookie; every login starts a fresh one.
    if let Some(previous) = cookies::get(&headers, cookies::SESSION) {
        sessions::delete(&mut conn, previous).await?;
    }
    sessions::delete_expired(&mut conn).await?;
    let (secret, _) = sessions::create(&mut conn, user.id, SESSION_TTL).await?;
    let device = sign_in::remember_device(&mut conn, user.id, KNOWN_DEVICE_TTL).await?;
    tracing::info!(user.id = user.id, "signed in");
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
    if let Some(value) = cookies::set(
        cookies::KNOWN_DEVICE,
        device.expose(),
        "/login",
        "Strict",
        KNOWN_DEVICE_TTL.num_seconds(),
        secure,
    ) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    set_login_cookie(&state, &mut response, "", 0);
    Ok(response)
}

/// How long the next attempt on an address waits after `failures` in a
/// row: nothing for the first [`FREE_TRIES`], then 1 s, 2 s, 4 s, …, up to
/// [`MAX_DELAY`].
pub(crate) fn delay(failures: i32) -> Duration {
    let over = failures - FREE_TRIES;
    if over < 0 {
        return Duration::zero();
    }
    // 2^10 s is past the cap already; keep the shift small.
    let seconds = 1_i64 << over.min(10);
    Duration::seconds(seconds).min(MAX_DELAY)
}

fn throttled_message(until: DateTime<Utc>) -> String {
    let seconds = (until - Utc::now()).num_seconds().max(1);
    let wait = if seconds < 60 {
        format!("{seconds} second{}", if seconds == 1 { "" } else { "s" })
    } else {
        let minutes = (seconds + 59) / 60;
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    };
    format!(
        "Too many failed sign-ins with this address. Try again in {wait}, \
         or from a browser you have signed in with before."
    )
}

/// Stands in for a typed password outside the allowed length, so that such
/// a password costs the same single hash as any other and can never match.
const STAND_IN_PASSWORD: &str = "no account has this password";

/// The stand-in hash unknown addresses are checked against: made with the
/// same parameters as real ones, so the check takes as long.
fn stand_in_hash() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| password_auth::generate_hash(STAND_IN_PASSWORD))
}

/// Computes the stand-in hash now, off the async threads, so the first
/// unknown address signing in does not pay for it (which would tell it
/// apart).
pub(crate) fn warm_up() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(stand_in_hash);
    }
}

/// Checks `typed` against `hash` off the async threads (argon2 takes tens
/// of milliseconds on purpose). Always exactly one argon2 check: without a
/// hash against the stand-in, and a password of a length no account can
/// have as the stand-in password; neither can succeed.
async fn verify(typed: &str, hash: Option<String>) -> Result<bool, PageError> {
    let password = Password::parse(typed).ok();
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some() && password.is_some();
        let candidate = password.as_ref().map_or(STAND_IN_PASSWORD, |p| p.expose());
        let hash = hash.as_deref().unwrap_or_else(|| stand_in_hash());
        let matches = password_auth::verify_password(candidate, hash).is_ok();
        matches && real
    })
    .await
    .map_err(|e| PageError::internal(&e))
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
/// connecting address. A request without the header, or whose last value is
/// not an address, is counted against the connecting address: failing open
/// (no address, no limit) would let anyone skip the per-address limit by
/// sending garbage.
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
        .or(peer)
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
        assert_eq!(client_ip(&HeaderMap::new(), peer, "X-Real-IP"), peer);
    }

    #[test]
    fn a_missing_or_garbage_header_counts_against_the_connecting_address() {
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        for garbage in ["", "not an address", "203.0.113.9, nonsense", "999.1.1.1"] {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_str(garbage).unwrap());
            assert_eq!(
                client_ip(&headers, peer, "X-Forwarded-For"),
                peer,
                "{garbage:?}"
            );
        }
        assert_eq!(client_ip(&HeaderMap::new(), peer, "X-Forwarded-For"), peer);
    }

    #[test]
    fn waits_grow_from_one_second_to_the_cap_after_the_free_tries() {
        assert_eq!(delay(FREE_TRIES - 1), Duration::zero());
        assert_eq!(delay(FREE_TRIES), Duration::seconds(1));
        assert_eq!(delay(FREE_TRIES + 1), Duration::seconds(2));
        assert_eq!(delay(FREE_TRIES + 3), Duration::seconds(8));
        assert_eq!(delay(FREE_TRIES + 20), MAX_DELAY);
        assert_eq!(delay(i32::MAX), MAX_DELAY);
    }
}
