//! `/settings/smtp`: the relays mail goes through, with the same checks and
//! database functions as `/api/v1/smtp-servers`. A relay's password goes
//! into the form and never comes back out of it.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::smtp_servers::{self, SmtpServer};
use postino_domain::{Role, SendWindow, ServerGroup, SmtpServerName, SmtpSettings, TlsMode};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::form::{Errors, optional_rate, optional_whole, rate_text, whole};
use crate::AppState;
use crate::api::smtp_servers::{self as api, ConnectionCheck, SmtpServerBody};
use crate::dashboard::page::PageId;
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, grouped, render};
use crate::error::WebError;

#[derive(Template)]
#[template(path = "dashboard/settings/smtp.html")]
struct SmtpPage {
    layout: Layout,
    tab: &'static str,
    servers: Vec<ServerRow>,
    form: SmtpForm,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "dashboard/settings/smtp_edit.html")]
struct EditPage {
    layout: Layout,
    tab: &'static str,
    id: Uuid,
    form: SmtpForm,
    test: Option<TestOutcome>,
}

#[derive(Template)]
#[template(path = "dashboard/settings/smtp_test.html")]
struct TestPartial {
    test: TestOutcome,
}

/// A connection test's result in words.
pub(crate) struct TestOutcome {
    ok: bool,
    summary: String,
    detail: String,
}

impl From<ConnectionCheck> for TestOutcome {
    fn from(c: ConnectionCheck) -> Self {
        if c.ok {
            let extras: Vec<&str> = [
                (c.encrypted, "encrypted"),
                (c.authenticated, "authenticated"),
            ]
            .into_iter()
            .filter_map(|(done, step)| done.then_some(step))
            .collect();
            let summary = if extras.is_empty() {
                "Connected".to_owned()
            } else {
                format!("Connected, {}", extras.join(" and "))
            };
            Self {
                ok: true,
                summary,
                detail: format!(
                    "The server answered as “{}”. Nothing was sent.",
                    c.server_name.unwrap_or_default()
                ),
            }
        } else {
            Self {
                ok: false,
                summary: "Could not use this server".to_owned(),
                detail: c.error.unwrap_or_default(),
            }
        }
    }
}

/// A relay as its table row shows it.
struct ServerRow {
    id: Uuid,
    name: String,
    enabled: bool,
    address: String,
    tls: &'static str,
    max_connections: String,
    weight: u32,
    group: String,
    rate: String,
}

impl From<SmtpServer> for ServerRow {
    fn from(s: SmtpServer) -> Self {
        let mut rate = Vec::new();
        if let Some(r) = s.policy.messages_per_second {
            rate.push(format!("{} per second", rate_text(r)));
        }
        if let Some(w) = s.policy.window {
            rate.push(format!(
                "{} per {}",
                grouped(i64::from(w.messages)),
                window_text(w.secs)
            ));
        }
        Self {
            id: s.uuid,
            name: s.name,
            enabled: s.enabled,
            address: format!("{}:{}", s.settings.host, s.settings.port),
            tls: tls_label(s.settings.tls),
            max_connections: grouped(i64::from(s.settings.max_connections)),
            weight: s.policy.weight,
            group: s.policy.group.as_str().to_owned(),
            rate: if rate.is_empty() {
                "No limit".to_owned()
            } else {
                rate.join(", ")
            },
        }
    }
}

fn tls_label(tls: TlsMode) -> &'static str {
    match tls {
        TlsMode::None => "None",
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Tls => "TLS",
    }
}

fn window_text(secs: u32) -> String {
    match secs {
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{} seconds", grouped(i64::from(s))),
    }
}

/// The relay form's fields as typed. The password is write-only: it is
/// read from a post and never rendered back, and no `Debug` could print it.
#[derive(Clone, Deserialize)]
pub(crate) struct SmtpForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Ticked on the edit page to remove the stored password.
    #[serde(default)]
    clear_password: Option<String>,
    #[serde(default)]
    hello_name: String,
    #[serde(default)]
    max_connections: String,
    #[serde(default)]
    messages_per_connection: String,
    #[serde(default)]
    timeout_secs: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    messages_per_second: String,
    #[serde(default)]
    window_messages: String,
    #[serde(default)]
    window_secs: String,
    /// Whether the stored relay has a password (edit page only).
    #[serde(skip)]
    has_password: bool,
    #[serde(skip)]
    errors: Errors,
}

impl Default for SmtpForm {
    fn default() -> Self {
        let d = SmtpSettings::default();
        Self {
            name: String::new(),
            host: String::new(),
            port: "587".to_owned(),
            tls: TlsMode::Starttls.as_str().to_owned(),
            username: String::new(),
            password: String::new(),
            clear_password: None,
            hello_name: d.hello_name,
            max_connections: d.max_connections.to_string(),
            messages_per_connection: d.messages_per_connection.to_string(),
            timeout_secs: d.timeout_secs.to_string(),
            enabled: Some("on".to_owned()),
            weight: "1".to_owned(),
            group: ServerGroup::default_group().as_str().to_owned(),
            messages_per_second: String::new(),
            window_messages: String::new(),
            window_secs: String::new(),
            has_password: false,
            errors: Errors::default(),
        }
    }
}

impl From<&SmtpServer> for SmtpForm {
    fn from(s: &SmtpServer) -> Self {
        let f = &s.settings;
        let p = &s.policy;
        Self {
            name: s.name.clone(),
            host: f.host.clone(),
            port: f.port.to_string(),
            tls: f.tls.as_str().to_owned(),
            username: f.username.clone(),
            password: String::new(),
            clear_password: None,
            hello_name: f.hello_name.clone(),
            max_connections: f.max_connections.to_string(),
            messages_per_connection: f.messages_per_connection.to_string(),
            timeout_secs: f.timeout_secs.to_string(),
            enabled: s.enabled.then(|| "on".to_owned()),
            weight: p.weight.to_string(),
            group: p.group.as_str().to_owned(),
            messages_per_second: p.messages_per_second.map(rate_text).unwrap_or_default(),
            window_messages: p.window.map(|w| w.messages.to_string()).unwrap_or_default(),
            window_secs: p.window.map(|w| w.secs.to_string()).unwrap_or_default(),
            has_password: s.has_password,
            errors: Errors::default(),
        }
    }
}

impl SmtpForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    fn is_enabled(&self) -> bool {
        self.enabled.is_some()
    }

    /// The API's request body, or the form with what is wrong. The API's
    /// own checks run on the body afterwards.
    fn body(&mut self) -> Option<SmtpServerBody> {
        let e = &mut self.errors;
        let name = SmtpServerName::parse(&self.name)
            .map_err(|err| e.add("name", err.reason))
            .ok();
        let port = whole::<u16>(e, "port", &self.port);
        let tls = self
            .tls
            .parse::<TlsMode>()
            .map_err(|_| e.add("tls", "choose how the connection is secured"))
            .ok();
        let max_connections = whole(e, "max_connections", &self.max_connections);
        let messages_per_connection =
            whole(e, "messages_per_connection", &self.messages_per_connection);
        let timeout_secs = whole(e, "timeout_secs", &self.timeout_secs);
        let weight = whole(e, "weight", &self.weight);
        let group = match self.group.trim() {
            "" => Some(None),
            raw => ServerGroup::parse(raw)
                .map_err(|err| e.add("group", err.reason))
                .ok()
                .map(Some),
        };
        let messages_per_second =
            optional_rate(e, "messages_per_second", &self.messages_per_second);
        let window_messages = optional_whole::<u32>(e, "window_messages", &self.window_messages);
        let window_secs = optional_whole::<u32>(e, "window_secs", &self.window_secs);
        let window = match (window_messages, window_secs) {
            (Some(None), Some(None)) => Some(None),
            (Some(Some(messages)), Some(Some(secs))) => Some(Some(SendWindow { messages, secs })),
            (Some(None), Some(Some(_))) => {
                e.add("window_messages", "give how many messages per window");
                None
            }
            (Some(Some(_)), Some(None)) => {
                e.add("window_secs", "give the window's length in seconds");
                None
            }
            _ => None,
        };
        // Blank keeps the stored password; the box removes it.
        let password = if self.clear_password.is_some() {
            Some(SecretString::from(String::new()))
        } else if self.password.is_empty() {
            None
        } else {
            Some(SecretString::from(std::mem::take(&mut self.password)))
        };
        self.password.clear();
        Some(SmtpServerBody {
            name: name?,
            host: self.host.clone(),
            port: Some(port?),
            tls: Some(tls?),
            username: Some(self.username.trim().to_owned()),
            password,
            hello_name: Some(self.hello_name.trim().to_owned()),
            max_connections: Some(max_connections?),
            messages_per_connection: Some(messages_per_connection?),
            timeout_secs: Some(timeout_secs?),
            enabled: Some(self.is_enabled()),
            weight: Some(weight?),
            group: group?,
            messages_per_second: messages_per_second?,
            window: window?,
        })
    }

    /// Takes the API's complaints about the body onto the form's fields.
    fn take_errors(&mut self, e: WebError) -> Result<(), PageError> {
        self.errors = Errors::from_web(e, |field| match field {
            "window.messages" => "window_messages",
            "window.secs" => "window_secs",
            other => other,
        })?;
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// Fixed messages only: the query string is not echoed into the page.
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "created" => Some("The SMTP server was added. Test its connection before you send."),
        "saved" => Some("Your changes were saved. Senders use them within a minute."),
        "deleted" => Some("The SMTP server was deleted."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: SmtpForm,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let servers = smtp_servers::all(&mut conn).await?;
    let page = SmtpPage {
        layout: signed_in.layout("settings", "SMTP servers"),
        tab: "smtp",
        servers: servers.into_iter().map(ServerRow::from).collect(),
        form,
        notice,
    };
    Ok(render(status, &page))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        SmtpForm::default(),
        notice(&query.notice),
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<SmtpForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let body = form.body();
    let result = match body {
        Some(body) if form.errors.is_empty() => {
            let mut conn = state.db.acquire().await?;
            api::create(&mut conn, &state, body).await.map(|_| ())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        form.take_errors(e)?;
    }
    if !form.errors.is_empty() {
        return page(
            &state,
            &signed_in,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            None,
        )
        .await;
    }
    Ok(Redirect::to("/settings/smtp?notice=created").into_response())
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    let server = smtp_servers::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    let page = EditPage {
        layout: signed_in.layout("settings", "Edit SMTP server"),
        tab: "smtp",
        id,
        form: SmtpForm::from(&server),
        test: None,
    };
    Ok(render(StatusCode::OK, &page))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    PageForm(mut form): PageForm<SmtpForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    let stored = smtp_servers::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    form.has_password = stored.has_password;
    let result = match form.body() {
        Some(body) if form.errors.is_empty() => {
            api::replace(&mut conn, &state, id, body).await.map(|_| ())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        form.take_errors(e)?;
    }
    if !form.errors.is_empty() {
        let page = EditPage {
            layout: signed_in.layout("settings", "Edit SMTP server"),
            tab: "smtp",
            id,
            form,
            test: None,
        };
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    Ok(Redirect::to("/settings/smtp?notice=saved").into_response())
}

/// Deletes a relay. htmx gets an empty 200, so the row it targets goes; a
/// plain form is sent back to the table.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    api::delete(&mut conn, id).await?;
    if headers.contains_key("hx-request") {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(Redirect::to("/settings/smtp?notice=deleted").into_response())
}

/// Runs the API's connection test. htmx gets the result alone, to show in
/// place; a plain form gets the relay's page with the result on it.
pub(crate) async fn test(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let outcome = TestOutcome::from(api::check_connection(&state, id).await?);
    if headers.contains_key("hx-request") {
        return Ok(render(StatusCode::OK, &TestPartial { test: outcome }));
    }
    let mut conn = state.db.acquire().await?;
    let server = smtp_servers::get(&mut conn, id)
        .await
        .map_err(postino_service::Error::not_found("SMTP server"))?;
    let page = EditPage {
        layout: signed_in.layout("settings", "Edit SMTP server"),
        tab: "smtp",
        id,
        form: SmtpForm::from(&server),
        test: Some(outcome),
    };
    Ok(render(StatusCode::OK, &page))
}
