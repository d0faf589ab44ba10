//! `/subscribers/{id}`: one subscriber: who they are, their attributes,
//! their lists, and what happened to the mail sent to them (deliveries,
//! bounces, unsubscribes). Editors also get the edit form and the
//! blocklist and delete buttons, which `subscriber_actions` handles.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use postino_db::activity;
use postino_db::lists;
use postino_db::subscribers::Subscriber;
use postino_domain::{Attributes, EmailAddress, Role, SubscriberName};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::dashboard::page::{Layout, PageError, SignedIn, render};
use postino_service::subscribers as service;

/// How much of their history the page shows; the rest is in the API.
const HISTORY: i64 = 20;

#[derive(Template)]
#[template(path = "dashboard/subscribers/page.html")]
struct SubscriberPage {
    layout: Layout,
    id: Uuid,
    email: String,
    name: String,
    status: &'static str,
    created: String,
    updated: String,
    /// Top-level keys with their values as text.
    attributes: Vec<(String, String)>,
    memberships: Vec<MembershipRow>,
    /// Lists they are not on, for "add to list".
    addable: Vec<(Uuid, String)>,
    deliveries: Vec<DeliveryRow>,
    bounces: Vec<BounceRow>,
    events: Vec<EventRow>,
    form: EditForm,
    notice: Option<&'static str>,
    /// A refused membership change, in words.
    problem: Option<String>,
}

struct MembershipRow {
    list: Uuid,
    name: String,
    status: &'static str,
    joined: String,
    changed: String,
}

struct DeliveryRow {
    campaign: Uuid,
    campaign_name: String,
    status: &'static str,
    attempts: i32,
    when: String,
    reply: String,
}

struct BounceRow {
    kind: String,
    source: String,
    reply: String,
    campaign: String,
    when: String,
}

struct EventRow {
    kind: String,
    source: String,
    list: String,
    campaign: String,
    when: String,
}

/// When something happened, to the minute.
fn at(t: DateTime<Utc>) -> String {
    t.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// The edit form's fields as typed, and what is wrong with them.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct EditForm {
    #[serde(default)]
    pub(crate) email: String,
    #[serde(default)]
    pub(crate) name: String,
    /// A JSON object; empty means none.
    #[serde(default)]
    pub(crate) attributes: String,
    #[serde(skip)]
    errors: Vec<(&'static str, String)>,
}

/// The form's checked values.
pub(crate) struct Edited {
    pub(crate) email: EmailAddress,
    pub(crate) name: SubscriberName,
    pub(crate) attributes: Attributes,
}

impl EditForm {
    fn of(s: &Subscriber) -> Self {
        let attributes = if s.attributes.as_map().is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(s.attributes.as_map()).unwrap_or_default()
        };
        Self {
            email: s.email.as_str().to_owned(),
            name: s.name.as_str().to_owned(),
            attributes,
            errors: Vec::new(),
        }
    }

    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Names a problem found after parsing (an address already taken).
    pub(crate) fn with_error(mut self, field: &'static str, message: impl Into<String>) -> Self {
        self.errors.push((field, message.into()));
        self
    }

    /// The checked values, or the form with every problem named.
    pub(crate) fn parse(mut self) -> Result<Edited, Box<Self>> {
        let email = EmailAddress::parse(&self.email)
            .map_err(|e| ("email", format!("This address {}.", e.reason)));
        let name = SubscriberName::parse(&self.name).map_err(|e| ("name", e.reason));
        let attributes = parse_attributes(&self.attributes).map_err(|m| ("attributes", m));
        match (email, name, attributes) {
            (Ok(email), Ok(name), Ok(attributes)) => Ok(Edited {
                email,
                name,
                attributes,
            }),
            (email, name, attributes) => {
                self.errors = [email.err(), name.err(), attributes.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                Err(Box::new(self))
            }
        }
    }
}

/// The attributes box: a JSON object, or nothing for none.
fn parse_attributes(raw: &str) -> Result<Attributes, String> {
    if raw.trim().is_empty() {
        return Ok(Attributes::default());
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "This is not valid JSON (line {}, column {}). Write an object such as \
             {{\"city\": \"Rome\", \"plan\": \"pro\"}}, with the keys in double quotes.",
            e.line(),
            e.column()
        )
    })?;
    if !value.is_object() {
        return Err(
            "Write a JSON object, between { and }, such as {\"city\": \"Rome\"}.".to_owned(),
        );
    }
    Attributes::parse(value).map_err(|e| format!("Attributes {}.", e.reason))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// Fixed messages only: the query string is not echoed into the page.
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "saved" => Some("Your changes were saved."),
        "created" => Some("The subscriber was added."),
        "blocklisted" => Some(
            "They are blocklisted: no campaign will reach them, and they were \
             unsubscribed from every list.",
        ),
        "enabled" => Some(
            "They are no longer blocklisted. Their lists still say unsubscribed; \
             add them again only if they asked to.",
        ),
        "added" => Some("They were added to the list."),
        "unsubscribed" => Some("They were unsubscribed from the list."),
        "removed" => Some("They were taken off the list."),
        _ => None,
    }
}

/// What a page is drawn with besides the subscriber.
pub(crate) struct Extras {
    pub(crate) status: StatusCode,
    /// The edit form as sent back, when it had problems.
    pub(crate) form: Option<EditForm>,
    pub(crate) notice: Option<&'static str>,
    pub(crate) problem: Option<String>,
}

/// The page for subscriber `id`.
pub(crate) async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    id: Uuid,
    extras: Extras,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let s = service::get(&mut conn, id).await?;
    let deliveries = activity::deliveries(&mut conn, s.id, HISTORY).await?;
    let bounces = activity::bounces(&mut conn, s.id, HISTORY).await?;
    let events = activity::events(&mut conn, s.id, HISTORY).await?;
    let addable = if signed_in.require(Role::Editor).is_ok() {
        lists::choices(&mut conn)
            .await?
            .into_iter()
            .filter(|(list, _, _)| !s.memberships.iter().any(|m| m.list_uuid == *list))
            .map(|(list, name, _)| (list, name))
            .collect()
    } else {
        Vec::new()
    };
    let page = SubscriberPage {
        layout: signed_in.layout("subscribers", s.email.as_str()),
        id,
        email: s.email.as_str().to_owned(),
        name: s.name.as_str().to_owned(),
        status: s.status.as_str(),
        created: at(s.created_at),
        updated: at(s.updated_at),
        attributes: s
            .attributes
            .as_map()
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
        memberships: s
            .memberships
            .iter()
            .map(|m| MembershipRow {
                list: m.list_uuid,
                name: m.list_name.clone(),
                status: m.status.as_str(),
                joined: at(m.created_at),
                changed: at(m.updated_at),
            })
            .collect(),
        addable,
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                campaign: d.campaign,
                campaign_name: d.campaign_name,
                status: d.status.as_str(),
                attempts: d.attempts,
                when: at(d.sent_at.unwrap_or(d.updated_at)),
                reply: match (d.last_code, d.last_reply) {
                    (Some(code), Some(reply)) => format!("{code} {reply}"),
                    (None, Some(reply)) => reply,
                    (Some(code), None) => code.to_string(),
                    (None, None) => String::new(),
                },
            })
            .collect(),
        bounces: bounces
            .into_iter()
            .map(|b| BounceRow {
                kind: b.kind,
                source: b.source,
                reply: match b.code {
                    Some(code) if !b.reply.starts_with(&code.to_string()) => {
                        format!("{code} {}", b.reply)
                    }
                    _ => b.reply,
                },
                campaign: b.campaign_name.unwrap_or_default(),
                when: at(b.created_at),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| EventRow {
                kind: e.kind,
                source: e.source,
                list: e.list_name.unwrap_or_default(),
                campaign: e.campaign_name.unwrap_or_default(),
                when: at(e.created_at),
            })
            .collect(),
        form: extras.form.unwrap_or_else(|| EditForm::of(&s)),
        notice: extras.notice,
        problem: extras.problem,
    };
    Ok(render(extras.status, &page))
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    crate::dashboard::page::PageId(id): crate::dashboard::page::PageId,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let extras = Extras {
        status: StatusCode::OK,
        form: None,
        notice: notice(&query.notice),
        problem: None,
    };
    page(&state, &signed_in, id, extras).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_an_object_or_nothing() {
        assert!(parse_attributes("  ").unwrap().as_map().is_empty());
        assert_eq!(
            parse_attributes(r#"{"city": "Rome"}"#).unwrap().as_map()["city"],
            "Rome"
        );
        let broken = parse_attributes("{city: Rome}").unwrap_err();
        assert!(broken.contains("line 1, column 2"), "{broken}");
        assert!(
            parse_attributes("[1, 2]")
                .unwrap_err()
                .contains("JSON object")
        );
    }
}
