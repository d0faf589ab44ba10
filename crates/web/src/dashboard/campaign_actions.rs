//! What the campaign page does besides saving: the live preview as you
//! type, test sends, and moving the campaign through its lifecycle (start,
//! pause, resume, cancel, schedule), each through the API's own functions.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use postino_db::campaigns::Campaign;
use postino_db::subscribers;
use postino_domain::{CampaignStatus, EmailAddress, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::campaign_form::{CampaignForm, FIELDS};
use super::campaigns::{campaign_page, load};
use super::page::{PageError, PageForm, SignedIn, render};
use crate::AppState;
use crate::api::campaigns::{self as api, PreviewResponse};
use crate::error::WebError;
use crate::extract::IdPath;

/// A rendered preview as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct PreviewPart {
    pub(crate) subject: String,
    /// The HTML, for the sandboxed frame; `None` for plain-text campaigns.
    pub(crate) html: Option<String>,
    pub(crate) text: String,
    pub(crate) dkim: String,
}

impl From<PreviewResponse> for PreviewPart {
    fn from(p: PreviewResponse) -> Self {
        Self {
            subject: p.subject,
            html: p.html,
            text: p.text,
            dkim: p.dkim.note,
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/campaign_preview.html")]
struct PreviewFragment {
    preview: Option<PreviewPart>,
    form: CampaignForm,
    fields: [&'static str; 13],
}

/// Renders what is typed in the editor, storing nothing. A viewer may look
/// too: it changes nothing.
async fn preview(
    state: &AppState,
    base: Option<&Campaign>,
    body: &[u8],
) -> Result<Response, PageError> {
    let mut form = CampaignForm::parse(body);
    let mut conn = state.db.acquire().await?;
    let subscriber = match form.preview_email.trim() {
        "" => None,
        raw => match EmailAddress::parse(raw) {
            Ok(email) => match subscribers::find_by_email(&mut conn, &email).await? {
                Some(s) => Some(s.uuid),
                None => {
                    form.absorb(WebError::invalid(
                        "preview_email",
                        "no subscriber has this address; the preview uses a sample person",
                    ))?;
                    None
                }
            },
            Err(e) => {
                form.absorb(WebError::invalid("preview_email", e.reason))?;
                None
            }
        },
    };
    let mut preview = None;
    if let Some(request) = form.request() {
        match api::preview_unsaved(&mut conn, state, base, request, subscriber).await {
            Ok(p) => preview = Some(PreviewPart::from(p)),
            Err(e) => form.absorb(e)?,
        }
    }
    let fragment = PreviewFragment {
        preview,
        form,
        fields: FIELDS,
    };
    Ok(render(StatusCode::OK, &fragment))
}

/// Previews are part of writing: only those who may write ask for them (a
/// viewer sees the stored campaign's preview with its page).
pub(crate) async fn preview_new(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    preview(&state, None, &body).await
}

pub(crate) async fn preview_existing(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    IdPath(id): IdPath,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let c = load(&state, id).await?;
    preview(&state, Some(&c), &body).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TestForm {
    /// One or more addresses, separated by commas or spaces.
    #[serde(default)]
    emails: String,
}

/// One address's outcome, as the page shows it.
struct TestLine {
    email: String,
    accepted: bool,
    reply: String,
}

#[derive(Template)]
#[template(path = "dashboard/campaign_test_result.html")]
struct TestResult {
    lines: Vec<TestLine>,
    dkim: Option<String>,
    problem: Option<String>,
}

/// Sends the stored campaign to a few addresses now; the outcome replaces
/// the form's result area (htmx), so refusals are answered with 200 too.
pub(crate) async fn test_send(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    IdPath(id): IdPath,
    PageForm(form): PageForm<TestForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut emails = Vec::new();
    let mut problem = None;
    for raw in form
        .emails
        .split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
    {
        match EmailAddress::parse(raw) {
            Ok(e) => emails.push(e),
            Err(e) => {
                problem = Some(format!("“{}” {}", raw.trim(), e.reason));
                break;
            }
        }
    }
    let mut result = TestResult {
        lines: Vec::new(),
        dkim: None,
        problem,
    };
    if result.problem.is_none() {
        match api::send_test(&state, id, &emails).await {
            Ok(r) => {
                result.dkim = Some(r.dkim.note);
                result.lines = r
                    .results
                    .into_iter()
                    .map(|t| TestLine {
                        email: t.email,
                        accepted: t.accepted,
                        reply: match t.code {
                            Some(code) => format!("{code} {}", t.reply),
                            None => t.reply,
                        },
                    })
                    .collect();
            }
            Err(WebError::Invalid(errors)) => {
                result.problem = Some(
                    errors
                        .into_iter()
                        .map(|e| match e.field.as_str() {
                            "emails" => format!("Addresses: {}.", e.message),
                            field => format!("{field}: {}.", e.message),
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Err(WebError::Conflict { message, .. }) => {
                result.problem = Some(format!("Nothing was sent: {message}."));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(render(StatusCode::OK, &result))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    status: String,
}

/// Start, pause, resume or cancel, under the API's rules; a refusal is
/// shown on the campaign's page in words.
pub(crate) async fn change_status(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    IdPath(id): IdPath,
    PageForm(form): PageForm<StatusForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let to = form
        .status
        .parse::<CampaignStatus>()
        .map_err(|_| PageError::BadForm)?;
    apply(&state, &signed_in, id, to, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScheduleForm {
    /// As a `datetime-local` input sends it: `2026-12-01T09:30`.
    #[serde(default)]
    send_at: String,
    /// Minutes the browser's clock is behind UTC at that time (JavaScript's
    /// `getTimezoneOffset`); 0 without JavaScript, so the time is UTC.
    #[serde(default)]
    tz_offset: i64,
}

/// Schedules a draft to start by itself at a local time.
pub(crate) async fn schedule(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    IdPath(id): IdPath,
    PageForm(form): PageForm<ScheduleForm>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(form.send_at.trim(), f).ok());
    let at = local.and_then(|t| {
        (form.tz_offset.abs() <= 24 * 60).then(|| t.and_utc() + TimeDelta::minutes(form.tz_offset))
    });
    let Some(at) = at else {
        let c = load(&state, id).await?;
        let mut page = campaign_page(&state, &signed_in, &c, None).await?;
        page.problem = Some("Choose the date and time it should start.".to_owned());
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    apply(&state, &signed_in, id, CampaignStatus::Scheduled, Some(at)).await
}

/// Moves the campaign, then shows its page: with a notice when it moved,
/// with the reason in words when it could not.
async fn apply(
    state: &AppState,
    signed_in: &SignedIn,
    id: Uuid,
    to: CampaignStatus,
    send_at: Option<DateTime<Utc>>,
) -> Result<Response, PageError> {
    let mut tx = state.db.begin().await?;
    let refusal = match api::move_to(&mut tx, state, id, to, send_at).await {
        Ok(_) => {
            tx.commit().await?;
            return Ok(
                Redirect::to(&format!("/campaigns/{id}?notice={}", to.as_str())).into_response(),
            );
        }
        Err(WebError::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
        Err(WebError::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(e) => return Err(e.into()),
    };
    drop(tx);
    let c = load(state, id).await?;
    let mut page = campaign_page(state, signed_in, &c, None).await?;
    page.problem = Some(format!("That did not happen: {}.", refusal.1));
    Ok(render(refusal.0, &page))
}
