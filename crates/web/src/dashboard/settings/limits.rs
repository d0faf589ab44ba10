//! `/settings/limits`: how fast Postino may send, overall and per recipient
//! domain, and the throttles the sender set itself — through the same
//! functions as `/api/v1/sending-limits` and `/api/v1/domain-limits`.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postino_db::policy::{self, DomainThrottle};
use postino_domain::{DomainLimit, Role};
use serde::Deserialize;

use super::form::{Errors, optional_rate, optional_whole, rate_text};
use crate::AppState;
use crate::api::limits::{self as api, DomainLimitBody};
use crate::dashboard::page::{Layout, PageError, PageForm, SignedIn, grouped, render};

#[derive(Template)]
#[template(path = "dashboard/settings/limits.html")]
struct LimitsPage {
    layout: Layout,
    tab: &'static str,
    rate: RateForm,
    domains: Vec<DomainRow>,
    domain_form: DomainForm,
    /// The domain whose limits the form edits, if any.
    editing: Option<String>,
    throttles: Vec<ThrottleRow>,
    notice: Option<&'static str>,
}

struct DomainRow {
    domain: String,
    max_connections: String,
    messages_per_minute: String,
}

impl From<DomainLimit> for DomainRow {
    fn from(l: DomainLimit) -> Self {
        Self {
            domain: l.domain,
            max_connections: l
                .max_connections
                .map_or_else(|| "No limit".to_owned(), |n| grouped(i64::from(n))),
            messages_per_minute: l
                .messages_per_minute
                .map_or_else(|| "No limit".to_owned(), |n| grouped(i64::from(n))),
        }
    }
}

struct ThrottleRow {
    domain: String,
    now: String,
    ceiling: String,
    slowed_at: String,
    lifts: String,
}

impl From<DomainThrottle> for ThrottleRow {
    fn from(t: DomainThrottle) -> Self {
        let steps = steps_to_lift(t.messages_per_minute, t.ceiling);
        Self {
            domain: t.domain,
            now: grouped(i64::from(t.messages_per_minute)),
            ceiling: grouped(i64::from(t.ceiling)),
            slowed_at: t.slowed_at.format("%-d %b %Y, %H:%M UTC").to_string(),
            lifts: if steps == 1 {
                "after the next quiet period".to_owned()
            } else {
                format!("after {steps} quiet periods in a row")
            },
        }
    }
}

/// How many quiet periods lift a throttle: the sender raises it by half
/// after each (at least by one) up to its ceiling, and lifts it one period
/// after reaching it (see `postino_db::policy::raise_throttles`).
fn steps_to_lift(mut now: u32, ceiling: u32) -> u32 {
    let mut steps = 1;
    while now < ceiling && steps < 1000 {
        now = ceiling.min(now.saturating_add((now / 2).max(1)));
        steps += 1;
    }
    steps
}

/// The overall limit's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RateForm {
    #[serde(default)]
    messages_per_second: String,
    /// Set by the "Remove the limit" button.
    #[serde(default)]
    clear: Option<String>,
    #[serde(skip)]
    errors: Errors,
}

/// A domain's limits as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DomainForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    max_connections: String,
    #[serde(default)]
    messages_per_minute: String,
    #[serde(skip)]
    errors: Errors,
}

impl DomainForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

impl RateForm {
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LimitsQuery {
    #[serde(default)]
    notice: String,
    /// A domain whose limits to load into the form.
    #[serde(default)]
    edit: String,
}

fn notice(key: &str) -> Option<&'static str> {
    match key {
        "rate" => Some("The overall limit was saved. Senders apply it within a minute."),
        "cleared" => {
            Some("The overall limit was removed; the configuration file's applies, if any.")
        }
        "domain" => Some("The domain's limits were saved."),
        "deleted" => Some("The domain's limits were removed."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    rate: Option<RateForm>,
    domain_form: Option<DomainForm>,
    edit: &str,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let stored_rate = policy::global_rate(&mut conn).await?;
    let limits = policy::domain_limits(&mut conn).await?;
    let throttles = policy::throttles(&mut conn).await?;
    let editing = limits.iter().find(|l| l.domain == edit).cloned();
    let domain_form = domain_form.unwrap_or_else(|| match &editing {
        Some(l) => DomainForm {
            domain: l.domain.clone(),
            max_connections: l.max_connections.map(|n| n.to_string()).unwrap_or_default(),
            messages_per_minute: l
                .messages_per_minute
                .map(|n| n.to_string())
                .unwrap_or_default(),
            errors: Errors::default(),
        },
        None => DomainForm::default(),
    });
    let page = LimitsPage {
        layout: signed_in.layout("settings", "Sending limits"),
        tab: "limits",
        rate: rate.unwrap_or_else(|| RateForm {
            messages_per_second: stored_rate.map(rate_text).unwrap_or_default(),
            ..RateForm::default()
        }),
        domains: limits.into_iter().map(DomainRow::from).collect(),
        domain_form,
        editing: editing.map(|l| l.domain),
        throttles: throttles.into_iter().map(ThrottleRow::from).collect(),
        notice,
    };
    Ok(render(status, &page))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<LimitsQuery>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    page(
        &state,
        &signed_in,
        StatusCode::OK,
        None,
        None,
        &query.edit,
        notice(&query.notice),
    )
    .await
}

/// Sets or clears the overall messages per second.
pub(crate) async fn set_rate(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<RateForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let rate = if form.clear.is_some() {
        Some(None)
    } else {
        // Saving an empty box means no limit, as the button does.
        optional_rate(
            &mut form.errors,
            "messages_per_second",
            &form.messages_per_second,
        )
    };
    if let Some(rate) = rate {
        let mut conn = state.db.acquire().await?;
        match api::set_global_rate(&mut conn, rate).await {
            Ok(()) => {
                let key = if rate.is_some() { "rate" } else { "cleared" };
                return Ok(Redirect::to(&format!("/settings/limits?notice={key}")).into_response());
            }
            Err(e) => form.errors = Errors::from_web(e, |f| f)?,
        }
    }
    page(
        &state,
        &signed_in,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(form),
        None,
        "",
        None,
    )
    .await
}

/// Adds or replaces one domain's limits.
pub(crate) async fn put_domain(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageForm(mut form): PageForm<DomainForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let e = &mut form.errors;
    let max_connections = optional_whole::<u32>(e, "max_connections", &form.max_connections);
    let messages_per_minute =
        optional_whole::<u32>(e, "messages_per_minute", &form.messages_per_minute);
    if let (Some(max_connections), Some(messages_per_minute)) =
        (max_connections, messages_per_minute)
    {
        let body = DomainLimitBody {
            max_connections,
            messages_per_minute,
        };
        let mut conn = state.db.acquire().await?;
        match api::store_domain_limit(&mut conn, &form.domain, body).await {
            Ok(_) => return Ok(Redirect::to("/settings/limits?notice=domain").into_response()),
            Err(e) => {
                form.errors = Errors::from_web(e, |f| f)?;
                // The domain rule asks for one of two limits; say so in words.
                if form
                    .errors
                    .get("max_connections")
                    .is_some_and(|m| m.contains("set max_connections"))
                {
                    form.errors = Errors::default();
                    form.errors.add(
                        "max_connections",
                        "set messages in flight, messages per minute, or both",
                    );
                }
            }
        }
    }
    page(
        &state,
        &signed_in,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(form),
        "",
        None,
    )
    .await
}

pub(crate) async fn delete_domain(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    signed_in.require(Role::Admin)?;
    let mut conn = state.db.acquire().await?;
    api::remove_domain_limit(&mut conn, &domain).await?;
    if headers.contains_key("hx-request") {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(Redirect::to("/settings/limits?notice=deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::steps_to_lift;

    #[test]
    fn a_throttle_lifts_after_raising_by_half_to_its_ceiling_and_one_more_quiet_period() {
        assert_eq!(steps_to_lift(100, 100), 1);
        // 50 -> 75 -> 100, then lifted.
        assert_eq!(steps_to_lift(50, 100), 3);
        // 1 -> 2 -> 3 -> 4, then lifted.
        assert_eq!(steps_to_lift(1, 4), 4);
    }
}
