//! `/campaigns`: the table of campaigns, and the editor for one campaign
//! with its live preview. Content is checked and stored by the same use
//! cases as `/api/v1/campaigns`, so the rules cannot drift apart.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use postino_db::campaigns::{self, Campaign};
use postino_db::{PgConnection, dkim_keys, lists, smtp_servers, templates};
use postino_domain::{CampaignStatus, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::form::CampaignForm;
use super::lookup::load;
use super::preview::PreviewPart;
use super::progress::Progress;
use super::timeline::TimelineChart;
use crate::AppState;
use crate::dashboard::page::{Layout, PageError, PageId, SignedIn, render};
use postino_service::campaigns as service;
use postino_service::dkim::Signing;

#[derive(Template)]
#[template(path = "dashboard/campaigns/index.html")]
struct CampaignsPage {
    layout: Layout,
    rows: Vec<Row>,
    has_lists: bool,
    notice: Option<&'static str>,
}

/// A campaign as its table row shows it.
struct Row {
    id: Uuid,
    name: String,
    subject: String,
    status: &'static str,
    /// For running campaigns only.
    progress: Option<Progress>,
    when: String,
}

#[derive(Template)]
#[template(path = "dashboard/campaigns/page.html")]
pub(crate) struct CampaignPage {
    pub(crate) layout: Layout,
    /// `None` while it is being written for the first time.
    pub(crate) id: Option<Uuid>,
    pub(crate) form: CampaignForm,
    /// Every list, to tick the ones it goes to.
    pub(crate) lists: Vec<(Uuid, String)>,
    /// Every layout, to choose one.
    pub(crate) layouts: Vec<(Uuid, String)>,
    /// The SMTP server groups it may be pinned to.
    pub(crate) groups: Vec<String>,
    /// `draft` for a new one.
    pub(crate) status: &'static str,
    pub(crate) status_reason: Option<String>,
    /// When a scheduled campaign starts, in UTC.
    pub(crate) send_at: Option<String>,
    /// Whether it may be scheduled from here (a draft, for an editor).
    pub(crate) can_schedule: bool,
    /// Whether the form may be saved: an editor, and a status that allows
    /// changes.
    pub(crate) editable: bool,
    pub(crate) actions: Vec<Action>,
    /// The preview as first shown (later ones come from htmx).
    pub(crate) preview: Option<PreviewPart>,
    pub(crate) progress: Option<Progress>,
    /// Once it has started: what went out when.
    pub(crate) timeline: Option<TimelineChart>,
    pub(crate) dkim: Option<String>,
    pub(crate) notice: Option<&'static str>,
    /// A refused action, in words.
    pub(crate) problem: Option<String>,
    /// Whether to offer retrying its failures (an editor, some failed, a
    /// status that allows it).
    pub(crate) can_retry: bool,
    /// Whether to offer deleting it (an editor, not sending or paused).
    pub(crate) can_delete: bool,
}

/// A button that moves the campaign on.
pub(crate) struct Action {
    pub(crate) status: &'static str,
    pub(crate) label: &'static str,
    pub(crate) danger: bool,
}

/// The buttons a campaign in `status` offers (scheduling has its own form).
fn actions(status: CampaignStatus) -> Vec<Action> {
    let action = |status: &'static str, label, danger| Action {
        status,
        label,
        danger,
    };
    match status {
        CampaignStatus::Draft => vec![action("running", "Start sending", false)],
        CampaignStatus::Scheduled => vec![
            action("running", "Start now", false),
            action("draft", "Unschedule", false),
            action("cancelled", "Cancel", true),
        ],
        CampaignStatus::Running => vec![
            action("paused", "Pause", false),
            action("cancelled", "Cancel", true),
        ],
        CampaignStatus::Paused => vec![
            action("running", "Resume", false),
            action("cancelled", "Cancel", true),
        ],
        CampaignStatus::Finished | CampaignStatus::Cancelled => Vec::new(),
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
        "created" => Some("The campaign was saved as a draft."),
        "saved" => Some("Your changes were saved."),
        "running" => Some("Sending has started."),
        "paused" => Some("Sending is paused. Resume it whenever you are ready."),
        "cancelled" => Some("The campaign was cancelled; nothing more will be sent."),
        "draft" => Some("The campaign is a draft again."),
        "scheduled" => Some("The campaign is scheduled: it starts by itself at the time shown."),
        "retried" => Some("The failed recipients are queued again; sending resumes for them now."),
        "nothing-to-retry" => Some("There was nothing to retry: no recipient is marked failed."),
        _ => None,
    }
}

fn when(c: &Campaign) -> String {
    let (label, at) = match (c.finished_at, c.started_at) {
        (Some(at), _) => ("Ended", at),
        (None, Some(at)) => ("Started", at),
        _ => ("Created", c.created_at),
    };
    format!("{label} {}", at.format("%-d %b %Y, %H:%M UTC"))
}

pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let all = campaigns::all(&mut conn).await?;
    let mut rows = Vec::with_capacity(all.len());
    for c in all {
        let progress = if c.status == CampaignStatus::Running {
            Some(Progress::of(&mut conn, &c).await?)
        } else {
            None
        };
        rows.push(Row {
            id: c.uuid,
            name: c.fields.name.clone(),
            subject: c.fields.subject.clone(),
            status: c.status.as_str(),
            progress,
            when: when(&c),
        });
    }
    let has_lists = !lists::all(&mut conn).await?.is_empty();
    let page = CampaignsPage {
        layout: signed_in.layout("campaigns", "Campaigns"),
        rows,
        has_lists,
        notice: (query.notice == "deleted").then_some("The campaign was deleted."),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn list_choices(conn: &mut PgConnection) -> Result<Vec<(Uuid, String)>, PageError> {
    Ok(lists::all(conn)
        .await?
        .into_iter()
        .map(|l| (l.uuid, l.name.as_str().to_owned()))
        .collect())
}

async fn layout_choices(conn: &mut PgConnection) -> Result<Vec<(Uuid, String)>, PageError> {
    Ok(templates::all(conn)
        .await?
        .into_iter()
        .map(|l| (l.uuid, l.name))
        .collect())
}

/// The groups of the configured SMTP servers, and the one `form` names even
/// if no server is in it any more, so what is stored is shown.
async fn group_choices(
    conn: &mut PgConnection,
    form: &CampaignForm,
) -> Result<Vec<String>, PageError> {
    let mut groups: Vec<String> = smtp_servers::all(conn)
        .await?
        .into_iter()
        .map(|s| s.policy.group.as_str().to_owned())
        .collect();
    if !form.smtp_group.trim().is_empty() {
        groups.push(form.smtp_group.trim().to_owned());
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// The editor for a campaign not stored yet.
async fn new_page(
    conn: &mut PgConnection,
    signed_in: &SignedIn,
    form: CampaignForm,
) -> Result<CampaignPage, PageError> {
    Ok(CampaignPage {
        layout: signed_in.layout("campaigns", "New campaign"),
        id: None,
        lists: list_choices(conn).await?,
        layouts: layout_choices(conn).await?,
        groups: group_choices(conn, &form).await?,
        form,
        status: CampaignStatus::Draft.as_str(),
        status_reason: None,
        send_at: None,
        can_schedule: false,
        editable: true,
        actions: Vec::new(),
        preview: None,
        progress: None,
        timeline: None,
        dkim: None,
        notice: None,
        problem: None,
        can_retry: false,
        can_delete: false,
    })
}

pub(crate) async fn new(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut conn = state.db.acquire().await?;
    let page = new_page(&mut conn, &signed_in, CampaignForm::starter()).await?;
    Ok(render(StatusCode::OK, &page))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut form = CampaignForm::parse(&body);
    let mut conn = state.db.acquire().await?;
    if let Some(request) = form.request() {
        match service::create_draft(&state.service, &mut conn, request).await {
            Ok(c) => {
                return Ok(
                    Redirect::to(&format!("/campaigns/{}?notice=created", c.uuid)).into_response(),
                );
            }
            Err(e) => form.absorb(e)?,
        }
    }
    let page = new_page(&mut conn, &signed_in, form).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The page of a stored campaign, its form showing `form` (what was typed,
/// when a save was refused) or the stored content.
pub(crate) async fn campaign_page(
    state: &AppState,
    signed_in: &SignedIn,
    c: &Campaign,
    form: Option<CampaignForm>,
) -> Result<CampaignPage, PageError> {
    let mut conn = state.db.acquire().await?;
    let can_edit = signed_in.0.user.role.allows(Role::Editor);
    // The first preview is of what is stored; a template error in it (a
    // layout changed since) is shown beside the field, as when typing.
    let mut shown = form.unwrap_or_else(|| CampaignForm::of(c));
    let preview = match service::preview_stored(&state.service, &mut conn, c, None).await {
        Ok(p) => Some(PreviewPart::from(p)),
        Err(e) => {
            shown.absorb(e)?;
            None
        }
    };
    let progress = if matches!(
        c.status,
        CampaignStatus::Running | CampaignStatus::Paused | CampaignStatus::Finished
    ) || c.started_at.is_some()
    {
        Some(Progress::of(&mut conn, c).await?)
    } else {
        None
    };
    let failed = match &progress {
        Some(p) => p.failed_count,
        None => 0,
    };
    let timeline = TimelineChart::of(&mut conn, c).await?;
    let keys = dkim_keys::enabled(&mut conn).await?;
    Ok(CampaignPage {
        layout: signed_in.layout("campaigns", &c.fields.name),
        id: Some(c.uuid),
        lists: list_choices(&mut conn).await?,
        layouts: layout_choices(&mut conn).await?,
        groups: group_choices(&mut conn, &shown).await?,
        form: shown,
        status: c.status.as_str(),
        status_reason: c.status_reason.clone(),
        send_at: c
            .send_at
            .filter(|_| c.status == CampaignStatus::Scheduled)
            .map(|t| t.format("%-d %b %Y, %H:%M UTC").to_string()),
        can_schedule: can_edit && c.status == CampaignStatus::Draft,
        editable: can_edit && c.status.is_editable(),
        actions: if can_edit {
            actions(c.status)
        } else {
            Vec::new()
        },
        preview,
        progress,
        timeline,
        dkim: Some(Signing::for_sender(&keys, &c.fields.from_email).note),
        notice: None,
        problem: None,
        can_retry: can_edit
            && failed > 0
            && matches!(
                c.status,
                CampaignStatus::Running | CampaignStatus::Paused | CampaignStatus::Finished
            ),
        can_delete: can_edit
            && !matches!(c.status, CampaignStatus::Running | CampaignStatus::Paused),
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let c = load(&state, id).await?;
    let mut page = campaign_page(&state, &signed_in, &c, None).await?;
    page.notice = notice(&query.notice);
    Ok(render(StatusCode::OK, &page))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    body: Bytes,
) -> Result<Response, PageError> {
    signed_in.require(Role::Editor)?;
    let mut form = CampaignForm::parse(&body);
    if let Some(request) = form.request() {
        let mut tx = state.db.begin().await?;
        match service::update_content(&state.service, &mut tx, id, request).await {
            Ok(_) => {
                tx.commit().await?;
                return Ok(Redirect::to(&format!("/campaigns/{id}?notice=saved")).into_response());
            }
            Err(postino_service::Error::Conflict { message, .. }) => {
                let c = load(&state, id).await?;
                let mut page = campaign_page(&state, &signed_in, &c, None).await?;
                page.problem = Some(format!("Nothing was saved: {message}."));
                return Ok(render(StatusCode::CONFLICT, &page));
            }
            Err(e) => form.absorb(e)?,
        }
    }
    let c = load(&state, id).await?;
    let page = campaign_page(&state, &signed_in, &c, Some(form)).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The campaign's page with the reason an action was refused.
pub(crate) async fn refused(
    state: &AppState,
    signed_in: &SignedIn,
    id: Uuid,
    message: &str,
) -> Result<Response, PageError> {
    let c = load(state, id).await?;
    let mut page = campaign_page(state, signed_in, &c, None).await?;
    page.problem = Some(format!("That did not happen: {message}."));
    Ok(render(StatusCode::CONFLICT, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(status: CampaignStatus) -> Vec<&'static str> {
        actions(status).into_iter().map(|a| a.status).collect()
    }

    #[test]
    fn each_status_offers_only_the_moves_the_api_allows() {
        assert_eq!(offered(CampaignStatus::Draft), ["running"]);
        assert_eq!(offered(CampaignStatus::Running), ["paused", "cancelled"]);
        assert_eq!(offered(CampaignStatus::Paused), ["running", "cancelled"]);
        assert!(offered(CampaignStatus::Finished).is_empty());
        for status in [
            CampaignStatus::Draft,
            CampaignStatus::Scheduled,
            CampaignStatus::Running,
            CampaignStatus::Paused,
        ] {
            for a in actions(status) {
                let to = a.status.parse::<CampaignStatus>().unwrap();
                assert!(status.can_transition_to(to), "{status} -> {to}");
            }
        }
    }
}
