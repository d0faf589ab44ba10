//! `/api/v1/smtp-servers`: the relays the sender delivers through.
//!
//! A relay's password goes in and never comes out: responses carry only
//! `has_password`, and the request body holds the password in a
//! `SecretString`, so no `Debug` of the body can print it. It is stored
//! sealed (`compose::PasswordVault`) and opened only to authenticate.
//!
//! Nor can it be sent elsewhere: a change of host, port or user name, or to
//! a weaker TLS mode, must come with the password (or remove it), so that
//! whoever may edit a relay cannot point it at a server of theirs and have
//! the connection test hand them the stored credentials.
//!
//! The connection test reaches whatever host it is given, so it reports
//! every failure to open a session with one message (what differed would
//! map the ports of internal hosts), and `http.allow_private_relay_hosts =
//! false` refuses relays on loopback, private and link-local addresses.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postino_compose::PasswordVault;
use postino_db::PgConnection;
use postino_db::smtp_servers::{self, NewSmtpServer, SmtpServer};
use postino_domain::{
    SendWindow, ServerGroup, ServerPolicy, SmtpServerName, SmtpSettings, TlsMode,
};
use postino_smtp::CheckError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, IdPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, replace_server, delete_server))
        .routes(routes!(test_server))
}

/// An SMTP relay. Its password is never shown; `has_password` says whether
/// one is stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SmtpServerResponse {
    id: Uuid,
    name: String,
    /// Whether the sender delivers through it.
    enabled: bool,
    /// Host name or IP address.
    host: String,
    port: u16,
    tls: TlsMode,
    /// AUTH user name; empty means no AUTH.
    username: String,
    /// Whether a password is stored.
    has_password: bool,
    /// Name sent in EHLO.
    hello_name: String,
    /// Most connections open to this relay at once.
    max_connections: u32,
    /// Messages sent over one connection before it is reopened.
    messages_per_connection: u32,
    /// Seconds to wait for a connection or any one reply.
    timeout_secs: u64,
    /// Share of the traffic against the other relays of its group.
    weight: u32,
    /// The group campaigns can be pinned to.
    group: String,
    /// Most messages per second through it, across every sender; null for none.
    messages_per_second: Option<f64>,
    /// A sliding-window cap (say 50,000 per 3,600 s); null for none.
    window: Option<SendWindow>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SmtpServer> for SmtpServerResponse {
    fn from(s: SmtpServer) -> Self {
        let f = s.settings;
        Self {
            id: s.uuid,
            name: s.name,
            enabled: s.enabled,
            host: f.host,
            port: f.port,
            tls: f.tls,
            username: f.username,
            has_password: s.has_password,
            hello_name: f.hello_name,
            max_connections: f.max_connections,
            messages_per_connection: f.messages_per_connection,
            timeout_secs: f.timeout_secs,
            weight: s.policy.weight,
            group: s.policy.group.as_str().to_owned(),
            messages_per_second: s.policy.messages_per_second,
            window: s.policy.window,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Every relay, by name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SmtpServersResponse {
    items: Vec<SmtpServerResponse>,
}

/// A whole relay: `POST` creates one, `PUT` replaces every field. Optional
/// fields that are omitted or null take their defaults, except `password`
/// on `PUT`, which then keeps the stored one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmtpServerBody {
    /// Unique, 1 to 100 characters.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    pub(crate) name: SmtpServerName,
    /// Host name or IP address.
    pub(crate) host: String,
    /// TCP port.
    #[schema(default = json!(SmtpSettings::default().port), minimum = 1, maximum = 65535)]
    pub(crate) port: Option<u16>,
    /// `starttls` for port 587, `tls` for 465; `none` only for a relay on
    /// the same host.
    #[schema(default = json!(SmtpSettings::default().tls))]
    pub(crate) tls: Option<TlsMode>,
    /// AUTH user name; empty means no AUTH.
    #[schema(default = "")]
    pub(crate) username: Option<String>,
    /// AUTH password; never returned. On `PUT`, omit it or send null to keep
    /// the stored one, or send "" to remove it. A `PUT` that changes `host`,
    /// `port` or `username`, or lowers `tls`, must send it (a 422 naming
    /// `password` otherwise): a stored password never follows the relay to
    /// another server.
    #[schema(value_type = Option<String>, write_only)]
    pub(crate) password: Option<SecretString>,
    /// Name sent in EHLO.
    #[schema(default = json!(SmtpSettings::default().hello_name))]
    pub(crate) hello_name: Option<String>,
    /// Most connections open to this relay at once, 1 to 1000.
    #[schema(default = json!(SmtpSettings::default().max_connections), minimum = 1, maximum = 1000)]
    pub(crate) max_connections: Option<u32>,
    /// Messages sent over one connection before it is reopened.
    #[schema(default = json!(SmtpSettings::default().messages_per_connection), minimum = 1)]
    pub(crate) messages_per_connection: Option<u32>,
    /// Seconds to wait for a connection or any one reply, 1 to 3600.
    #[schema(default = json!(SmtpSettings::default().timeout_secs), minimum = 1, maximum = 3600)]
    pub(crate) timeout_secs: Option<u64>,
    /// Whether the sender delivers through it.
    #[schema(default = true)]
    pub(crate) enabled: Option<bool>,
    /// Share of the traffic against the other relays of its group, 1 to
    /// 1000: weight 3 beside weight 1 takes three messages in four.
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub(crate) weight: Option<u32>,
    /// The group campaigns can be pinned to: 1 to 64 letters, digits, dots,
    /// dashes or underscores.
    #[schema(value_type = Option<String>, default = "default")]
    pub(crate) group: Option<ServerGroup>,
    /// Most messages per second through it, across every sender; null for none.
    #[schema(exclusive_minimum = 0)]
    pub(crate) messages_per_second: Option<f64>,
    /// A sliding-window cap, as relays impose (50,000 per 3,600 s); null for none.
    pub(crate) window: Option<SendWindow>,
}

/// A request body checked and completed with defaults.
struct Relay {
    name: SmtpServerName,
    enabled: bool,
    settings: SmtpSettings,
    policy: ServerPolicy,
    /// The body named a password (possibly empty); otherwise `PUT` keeps the
    /// stored one.
    password_given: bool,
}

impl Relay {
    fn as_new<'a>(&'a self, sealed_password: Option<&'a [u8]>) -> NewSmtpServer<'a> {
        NewSmtpServer {
            name: self.name.as_str(),
            enabled: self.enabled,
            settings: &self.settings,
            policy: &self.policy,
            sealed_password,
        }
    }

    /// The password sealed for storage; `None` when it is empty (no AUTH
    /// password).
    fn sealed_password(&self, vault: &PasswordVault) -> Result<Option<Vec<u8>>, WebError> {
        if self.settings.password.expose_secret().is_empty() {
            return Ok(None);
        }
        vault
            .seal(&self.settings.password)
            .map(Some)
            .map_err(|e| WebError::Internal(Box::new(e)))
    }
}

/// How strongly a TLS mode protects the password on the wire.
fn tls_strength(tls: TlsMode) -> u8 {
    match tls {
        TlsMode::None => 0,
        TlsMode::Starttls => 1,
        TlsMode::Tls => 2,
    }
}

/// What changed in `new` that makes keeping `stored`'s password unsafe: it
/// would be sent to another server or account, or with weaker protection.
fn password_must_follow(stored: &SmtpSettings, new: &SmtpSettings) -> Option<&'static str> {
    if !stored.host.eq_ignore_ascii_case(&new.host) {
        Some("host")
    } else if stored.port != new.port {
        Some("port")
    } else if stored.username != new.username {
        Some("username")
    } else if tls_strength(new.tls) < tls_strength(stored.tls) {
        Some("tls")
    } else {
        None
    }
}

impl TryFrom<SmtpServerBody> for Relay {
    type Error = WebError;

    fn try_from(body: SmtpServerBody) -> Result<Self, WebError> {
        let d = SmtpSettings::default();
        let password_given = body.password.is_some();
        let settings = SmtpSettings {
            host: body.host.trim().to_owned(),
            port: body.port.unwrap_or(d.port),
            tls: body.tls.unwrap_or(d.tls),
            username: body.username.unwrap_or(d.username),
            password: body.password.unwrap_or(d.password),
            hello_name: body.hello_name.unwrap_or(d.hello_name),
            max_connections: body.max_connections.unwrap_or(d.max_connections),
            messages_per_connection: body
                .messages_per_connection
                .unwrap_or(d.messages_per_connection),
            timeout_secs: body.timeout_secs.unwrap_or(d.timeout_secs),
        };
        // `what` is the field's name in this body as well as in `[smtp]`.
        settings
            .validate()
            .map_err(|e| WebError::invalid(e.what, e.reason))?;
        let policy = ServerPolicy {
            weight: body.weight.unwrap_or(1),
            group: body.group.unwrap_or_default(),
            messages_per_second: body.messages_per_second,
            window: body.window,
        };
        policy
            .validate()
            .map_err(|e| WebError::invalid(e.what, e.reason))?;
        Ok(Self {
            name: body.name,
            enabled: body.enabled.unwrap_or(true),
            settings,
            policy,
            password_given,
        })
    }
}

/// What a connection test found. A relay that cannot be reached or refuses
/// the credentials is reported here, not as an HTTP error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionCheck {
    /// Connected, greeted, secured and authenticated as configured.
    pub(crate) ok: bool,
    /// The connection was encrypted (STARTTLS or TLS).
    pub(crate) encrypted: bool,
    /// Credentials were sent and accepted.
    pub(crate) authenticated: bool,
    /// The name the relay gave in its EHLO reply; null when `ok` is false.
    pub(crate) server_name: Option<String>,
    /// Which step failed and why; null when `ok` is true.
    pub(crate) error: Option<String>,
}

/// List every SMTP server, by name.
#[utoipa::path(get, path = "/smtp-servers", tag = "smtp-servers",
    responses((status = 200, description = "OK", body = SmtpServersResponse)))]
async fn list_servers(
    State(state): State<AppState>,
) -> Result<Json<SmtpServersResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let servers = smtp_servers::all(&mut conn).await?;
    Ok(Json(SmtpServersResponse {
        items: servers.into_iter().map(SmtpServerResponse::from).collect(),
    }))
}

/// Add an SMTP server.
#[utoipa::path(post, path = "/smtp-servers", tag = "smtp-servers", request_body = SmtpServerBody,
    responses((status = 201, description = "Created", body = SmtpServerResponse),
              (status = 409, description = "Another SMTP server has this name", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_server(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SmtpServerBody>,
) -> Result<(StatusCode, Json<SmtpServerResponse>), WebError> {
    let mut conn = state.db.acquire().await?;
    let server = create(&mut conn, &state, body).await?;
    Ok((StatusCode::CREATED, Json(server.into())))
}

/// Get one SMTP server.
#[utoipa::path(get, path = "/smtp-servers/{id}", tag = "smtp-servers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = SmtpServerResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_server(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<SmtpServerResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let server = smtp_servers::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    Ok(Json(server.into()))
}

/// Replace an SMTP server's settings. A missing or null `password` keeps the
/// stored one; an empty one removes it. Changing `host`, `port` or
/// `username`, or lowering `tls`, needs the password again.
#[utoipa::path(put, path = "/smtp-servers/{id}", tag = "smtp-servers", params(("id" = Uuid, Path)),
    request_body = SmtpServerBody,
    responses((status = 200, description = "OK", body = SmtpServerResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Another SMTP server has this name", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn replace_server(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<SmtpServerBody>,
) -> Result<Json<SmtpServerResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let server = replace(&mut conn, &state, id, body).await?;
    Ok(Json(server.into()))
}

/// Delete an SMTP server.
#[utoipa::path(delete, path = "/smtp-servers/{id}", tag = "smtp-servers", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn delete_server(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connect to an SMTP server with its stored settings, greet, secure and
/// authenticate as the sender would, then quit; nothing is sent.
#[utoipa::path(post, path = "/smtp-servers/{id}/test", tag = "smtp-servers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The test ran; `ok` says whether it passed", body = ConnectionCheck),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn test_server(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ConnectionCheck>, WebError> {
    Ok(Json(check_connection(&state, id).await?))
}

/// Checks a body and stores it as a new relay; the API and the dashboard
/// both add relays through here.
pub(crate) async fn create(
    conn: &mut PgConnection,
    state: &AppState,
    body: SmtpServerBody,
) -> Result<SmtpServer, WebError> {
    let relay = Relay::try_from(body)?;
    refuse_private_host(state, &relay.settings).await?;
    let sealed = relay.sealed_password(&state.service.addressing.relay_passwords)?;
    Ok(smtp_servers::create(conn, &relay.as_new(sealed.as_deref())).await?)
}

/// Checks a body and replaces relay `id`'s settings with it; a body without
/// a password keeps the stored one, unless it moves the relay (see
/// [`password_must_follow`]).
pub(crate) async fn replace(
    conn: &mut PgConnection,
    state: &AppState,
    id: Uuid,
    body: SmtpServerBody,
) -> Result<SmtpServer, WebError> {
    let relay = Relay::try_from(body)?;
    let stored = smtp_servers::get(conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    if !relay.password_given
        && stored.has_password
        && let Some(changed) = password_must_follow(&stored.settings, &relay.settings)
    {
        return Err(WebError::invalid(
            "password",
            format!(
                "enter the password again (or send an empty one to remove it): the {changed} \
                 changed, and the stored password is only ever sent to the server it was \
                 entered for"
            ),
        ));
    }
    refuse_private_host(state, &relay.settings).await?;
    let sealed = relay.sealed_password(&state.service.addressing.relay_passwords)?;
    smtp_servers::update(
        conn,
        stored.id,
        &relay.as_new(sealed.as_deref()),
        !relay.password_given,
    )
    .await
    .map_err(postino_service::Error::not_found("SMTP server"))
    .map_err(WebError::from)
}

/// Whether `ip` is an address of this host or of a private network: the
/// ones `http.allow_private_relay_hosts = false` keeps relays off.
fn is_private(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // Shared address space (carrier-grade NAT), RFC 6598.
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                // Unique local fc00::/7 and link-local fe80::/10.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// With `http.allow_private_relay_hosts` off, refuses a relay whose host
/// is, or resolves to, a loopback, private or link-local address (or does
/// not resolve at all, which cannot be told apart).
async fn refuse_private_host(state: &AppState, settings: &SmtpSettings) -> Result<(), WebError> {
    if state.settings.allow_private_relay_hosts {
        return Ok(());
    }
    let refused = || {
        WebError::invalid(
            "host",
            "must be a public mail server: this installation does not connect to loopback, \
             private or link-local addresses (http.allow_private_relay_hosts)",
        )
    };
    let addresses: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((settings.host.as_str(), settings.port))
            .await
            .map_err(|_| WebError::invalid("host", "cannot be resolved to an address"))?
            .collect();
    if addresses.is_empty() || addresses.iter().any(|a| is_private(a.ip())) {
        return Err(refused());
    }
    Ok(())
}

/// Deletes relay `id`.
pub(crate) async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), WebError> {
    let stored = smtp_servers::get(conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    smtp_servers::delete(conn, stored.id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))
        .map_err(WebError::from)
}

/// Connects to relay `id` with its stored settings, greets, secures and
/// authenticates as the sender would, then quits; nothing is sent.
pub(crate) async fn check_connection(
    state: &AppState,
    id: Uuid,
) -> Result<ConnectionCheck, WebError> {
    // The connection goes back to the pool before the SMTP conversation,
    // which may wait on a slow relay for many seconds.
    let server = {
        let mut conn = state.db.acquire().await?;
        smtp_servers::get(&mut conn, id)
            .await
            .map_err(postino_service::Error::not_found("SMTP server"))?
    };
    let failed = |error: String| ConnectionCheck {
        ok: false,
        encrypted: false,
        authenticated: false,
        server_name: None,
        error: Some(error),
    };
    let mut settings = server.settings.clone();
    refuse_private_host(state, &settings).await?;
    settings.password = match state
        .service
        .addressing
        .relay_passwords
        .open(server.sealed_password.as_ref().map(|s| s.0.as_slice()))
    {
        Ok(password) => password,
        Err(e) => return Ok(failed(e.to_string())),
    };
    // A relay that never answers (a firewall dropping the port) must still
    // get an `ok: false` answer, not the request timeout's bare 408.
    let budget = Duration::from_secs(state.settings.request_timeout_secs.saturating_sub(1).max(1));
    let outcome = tokio::time::timeout(budget, postino_smtp::check(&settings)).await;
    let address = format!("{}:{}", settings.host, settings.port);
    Ok(match outcome {
        Ok(Ok(checked)) => ConnectionCheck {
            ok: true,
            encrypted: checked.encrypted,
            authenticated: checked.authenticated,
            server_name: Some(checked.server_name),
            error: None,
        },
        Ok(Err(CheckError::Auth { username, detail })) => {
            failed(format!("authentication as {username:?} failed: {detail}"))
        }
        // Refused, unreachable, timed out, not SMTP, TLS: one answer for
        // all, so the test cannot be used to tell open ports from closed
        // ones. The detail goes to the log for the operator.
        Ok(Err(CheckError::Connect { detail, .. })) => {
            tracing::info!(relay.id = %server.uuid, %address, error = %detail, "SMTP connection test failed");
            failed(connect_failed(&address))
        }
        Err(_) => {
            tracing::info!(relay.id = %server.uuid, %address, "SMTP connection test timed out");
            failed(connect_failed(&address))
        }
    })
}

/// What the connection test says for every failure to open a session.
fn connect_failed(address: &str) -> String {
    format!(
        "could not open an SMTP session with {address}: check the host, port and TLS mode, \
         and that the server accepts connections from this one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn a_request_body_never_prints_its_password() {
        let body: SmtpServerBody = parse_json(
            br#"{"name": "Relay", "host": "smtp.example.net", "password": "hunter2-pw"}"#,
        )
        .unwrap();
        assert!(!format!("{body:?}").contains("hunter2"), "{body:?}");
        let relay = Relay::try_from(body).unwrap();
        assert!(relay.password_given);
        assert!(!format!("{:?}", relay.settings).contains("hunter2"));
    }

    #[test]
    fn a_stored_password_never_follows_the_relay_elsewhere() {
        let stored = SmtpSettings {
            host: "smtp.example.net".to_owned(),
            port: 587,
            tls: TlsMode::Starttls,
            username: "mailer".to_owned(),
            ..SmtpSettings::default()
        };
        let with = |f: &dyn Fn(&mut SmtpSettings)| {
            let mut s = stored.clone();
            f(&mut s);
            password_must_follow(&stored, &s)
        };
        assert_eq!(with(&|_| {}), None);
        assert_eq!(with(&|s| s.host = "SMTP.example.NET".to_owned()), None);
        assert_eq!(with(&|s| s.max_connections = 2), None);
        assert_eq!(with(&|s| s.tls = TlsMode::Tls), None);
        assert_eq!(with(&|s| s.host = "evil.example".to_owned()), Some("host"));
        assert_eq!(with(&|s| s.port = 2525), Some("port"));
        assert_eq!(with(&|s| s.username = "other".to_owned()), Some("username"));
        assert_eq!(with(&|s| s.tls = TlsMode::None), Some("tls"));
    }

    #[test]
    fn private_and_local_addresses_are_told_apart_from_public_ones() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.10", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
