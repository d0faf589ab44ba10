//! `/api/v1/campaigns`: campaigns, their lifecycle, previews, test sends and
//! progress.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use postino_compose::dkim::{DkimSigners, SignedBy};
use postino_compose::{
    Addressee, CampaignIdentity, CampaignSource, Recipient, Rendered, TemplateError,
};
use postino_db::campaigns::{self, Campaign, CampaignFields};
use postino_db::dkim_keys::{self, DkimKey};
use postino_db::{DbError, PgConnection, deliveries, lists, subscribers, templates, test_sends};
use postino_domain::campaigns::{header_text, parse_subject};
use postino_domain::{
    BodyFormat, CampaignStatus, CustomHeader, DeliveryStatus, EmailAddress, Tags,
};
use postino_sandbox::{Sandbox, Template};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::api::dkim_keys::{DkimSigning, signers_for};
use crate::error::{FieldError, Problem, WebError};
use crate::extract::{ApiJson, IdPath};

/// Most addresses one test send may go to.
const MAX_TEST_RECIPIENTS: usize = 10;
/// The scheduler listens here.
const SCHEDULER_CHANNEL: &str = postino_db::wake::SCHEDULER;
/// Largest body or template accepted.
const MAX_BODY_BYTES: usize = 512 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(change_status))
        .routes(routes!(preview))
        .routes(routes!(test_send))
        .routes(routes!(stats))
        .routes(routes!(timeline))
}

/// A campaign.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CampaignResponse {
    id: Uuid,
    name: String,
    subject: String,
    from_name: String,
    from_email: String,
    reply_to: Option<String>,
    body: String,
    body_format: BodyFormat,
    text_body: Option<String>,
    /// The layout's id.
    template: Option<Uuid>,
    lists: Vec<Uuid>,
    tags: Vec<String>,
    headers: Vec<CustomHeader>,
    /// The SMTP server group it is pinned to; null sends through any
    /// enabled server.
    smtp_group: Option<String>,
    status: CampaignStatus,
    /// Why it is in its status when the sender put it there, such as an
    /// automatic pause after a burst of failures; null otherwise.
    status_reason: Option<String>,
    send_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Whether its messages are DKIM-signed, and with which key; when not,
    /// why (no enabled key for the From domain).
    dkim: DkimSigning,
}

impl CampaignResponse {
    /// The campaign as shown, with what the enabled DKIM `keys` (newest
    /// first) do for its From domain.
    fn new(c: Campaign, keys: &[DkimKey]) -> Self {
        let dkim = DkimSigning::for_sender(keys, &c.fields.from_email);
        let f = c.fields;
        Self {
            id: c.uuid,
            name: f.name,
            subject: f.subject,
            from_name: f.from_name,
            from_email: f.from_email.into(),
            reply_to: f.reply_to.map(String::from),
            body: f.body,
            body_format: f.body_format,
            text_body: f.text_body,
            template: c.template_uuid,
            lists: c.lists,
            tags: f.tags.into(),
            headers: f.headers,
            smtp_group: f.smtp_group.map(String::from),
            status: c.status,
            status_reason: c.status_reason,
            send_at: c.send_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            dkim,
        }
    }

    async fn load(conn: &mut PgConnection, c: Campaign) -> Result<Self, WebError> {
        let keys = dkim_keys::enabled(conn).await?;
        Ok(Self::new(c, &keys))
    }
}

/// Every campaign, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CampaignsResponse {
    items: Vec<CampaignResponse>,
}

/// A campaign's content; on update, absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignBody {
    /// Internal name, 1 to 200 characters.
    pub(crate) name: Option<String>,
    /// Subject template, one line.
    pub(crate) subject: Option<String>,
    /// Sender's display name, one line.
    pub(crate) from_name: Option<String>,
    #[schema(value_type = Option<String>, format = Email)]
    pub(crate) from_email: Option<EmailAddress>,
    /// Where replies go; `null` removes it (replies go to the sender).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Email)]
    pub(crate) reply_to: Option<Option<EmailAddress>>,
    /// Body template, checked when saved.
    pub(crate) body: Option<String>,
    pub(crate) body_format: Option<BodyFormat>,
    /// Plain-text alternative; generated from the HTML when absent, and
    /// again once set to `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) text_body: Option<Option<String>>,
    /// Layout id; `null` sends the body without a layout.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub(crate) template: Option<Option<Uuid>>,
    /// Target lists.
    pub(crate) lists: Option<Vec<Uuid>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub(crate) tags: Option<Tags>,
    /// Extra headers; reserved ones (From, Subject, List-Unsubscribe, …) are refused.
    pub(crate) headers: Option<Vec<CustomHeader>>,
    /// Pin it to one SMTP server group; "" unpins it (any enabled server).
    pub(crate) smtp_group: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`: clear it) from one left out
/// (`None`, through `#[serde(default)]`: keep it).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A move in the campaign's lifecycle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusChange {
    status: CampaignStatus,
    /// For `scheduled`: when to start, RFC 3339 with a time zone offset.
    send_at: Option<DateTime<FixedOffset>>,
}

/// Whom to render a preview for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    /// A subscriber's id; a sample subscriber when absent.
    subscriber: Option<Uuid>,
}

/// A header of the rendered message.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeaderLine {
    name: String,
    value: String,
}

/// The message one subscriber would get.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PreviewResponse {
    pub(crate) subject: String,
    pub(crate) html: Option<String>,
    pub(crate) text: String,
    headers: Vec<HeaderLine>,
    /// The whole MIME message, DKIM-signed as the sender would sign it.
    mime: String,
    /// Whether it was DKIM-signed, and with which key.
    pub(crate) dkim: DkimSigning,
}

/// Addresses for a test send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestSendRequest {
    /// 1 to 10 addresses.
    #[schema(value_type = Vec<String>)]
    emails: Vec<EmailAddress>,
}

/// What the SMTP server said for one test address.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestSendResult {
    pub(crate) email: String,
    pub(crate) accepted: bool,
    /// SMTP reply code, when the server answered.
    pub(crate) code: Option<u16>,
    /// SMTP reply text, the connection error, or why it is not sent yet.
    pub(crate) reply: String,
    /// `sent` or `failed` once the sender tried it; `queued` or `sending`
    /// if it had not answered in time, in which case it goes out when a
    /// sender takes it.
    pub(crate) status: DeliveryStatus,
}

impl TestSendResult {
    fn of(t: &test_sends::TestSend) -> Self {
        let reply = match t.status {
            DeliveryStatus::Queued => format!(
                "not sent yet: no sender has taken it in {} s; it stays queued and goes out when one does",
                TEST_SEND_WAIT.as_secs()
            ),
            DeliveryStatus::Sending => format!(
                "not answered yet: a sender has been sending it for up to {} s; the reply will be recorded",
                TEST_SEND_WAIT.as_secs()
            ),
            _ => t.reply.clone().unwrap_or_default(),
        };
        Self {
            email: t.email.clone(),
            accepted: t.status == DeliveryStatus::Sent,
            code: t.code.and_then(|c| u16::try_from(c).ok()),
            reply,
            status: t.status,
        }
    }
}

/// Results of a test send.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestSendResponse {
    pub(crate) results: Vec<TestSendResult>,
    /// Whether the messages were DKIM-signed, and with which key: a test
    /// send to a mailbox of your own shows whether receivers verify it.
    pub(crate) dkim: DkimSigning,
}

/// Progress of a campaign.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsResponse {
    pub(crate) status: CampaignStatus,
    /// Deliveries enqueued so far (everyone, once `enqueued` is true).
    pub(crate) total: i64,
    /// Whether the whole audience has been enqueued.
    pub(crate) enqueued: bool,
    pub(crate) queued: i64,
    pub(crate) sending: i64,
    pub(crate) sent: i64,
    pub(crate) failed: i64,
    pub(crate) skipped: i64,
    /// Messages sent in the last minute.
    pub(crate) rate_per_minute: i64,
    /// Seconds until the queue is empty at the current rate; null when idle.
    pub(crate) eta_seconds: Option<i64>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
}

/// One slot of a campaign's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineSlot {
    /// Start of the slot.
    at: DateTime<Utc>,
    /// Delivered in the slot.
    sent: i64,
    /// Given up on in the slot.
    failed: i64,
}

/// A campaign's outcomes over time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineResponse {
    /// Length of every slot: the shortest of a minute up to a day that fits
    /// the whole sending in at most 60 slots (days beyond two months).
    slot_seconds: i64,
    /// From its start to its end (or now), empty slots included; empty
    /// before it starts.
    slots: Vec<TimelineSlot>,
}

pub(crate) fn campaign_not_found(e: DbError) -> WebError {
    match e {
        DbError::NotFound => WebError::NotFound("campaign"),
        other => other.into(),
    }
}

fn template_error(e: TemplateError) -> WebError {
    let TemplateError {
        field,
        line,
        reason,
    } = e;
    let line = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    WebError::invalid(field, line + &reason)
}

/// A sandboxed compile or render that failed: the template's fault is the
/// user's to fix (422); a sandbox that cannot run is ours (500).
pub(crate) fn sandbox_error(e: postino_sandbox::Error) -> WebError {
    match e {
        postino_sandbox::Error::Template(t) => template_error(t),
        e @ postino_sandbox::Error::Unavailable(_) => WebError::Internal(Box::new(e)),
    }
}

/// A campaign's content with every field present, checked.
struct Checked {
    fields: CampaignFields,
    list_ids: Vec<i64>,
    /// The same lists' public ids, for rendering before anything is stored.
    lists: Vec<Uuid>,
}

/// Merges `body` over `base` (absent fields keep the base's values), checks
/// every field and compiles the templates. Returns all field errors at once.
async fn check(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    base: Option<&Campaign>,
    body: CampaignBody,
) -> Result<(Checked, Template), WebError> {
    let mut errors = Vec::new();
    let mut require = |field: &str, value: Option<String>| -> String {
        value.unwrap_or_else(|| {
            errors.push(FieldError::new(field, "is required"));
            String::new()
        })
    };
    let base_f = base.map(|c| &c.fields);
    let name = require("name", body.name.or_else(|| base_f.map(|f| f.name.clone())));
    let subject = require(
        "subject",
        body.subject.or_else(|| base_f.map(|f| f.subject.clone())),
    );
    let content = require("body", body.body.or_else(|| base_f.map(|f| f.body.clone())));
    let from_email = body
        .from_email
        .or_else(|| base_f.map(|f| f.from_email.clone()));
    if from_email.is_none() {
        errors.push(FieldError::new("from_email", "is required"));
    }
    let from_name = body
        .from_name
        .or_else(|| base_f.map(|f| f.from_name.clone()))
        .unwrap_or_default();
    let reply_to = body
        .reply_to
        .unwrap_or_else(|| base_f.and_then(|f| f.reply_to.clone()));
    let body_format = body
        .body_format
        .or_else(|| base_f.map(|f| f.body_format))
        .unwrap_or_default();
    let text_body = body
        .text_body
        .unwrap_or_else(|| base_f.and_then(|f| f.text_body.clone()));
    let tags = body
        .tags
        .or_else(|| base_f.map(|f| f.tags.clone()))
        .unwrap_or_default();
    let headers = body
        .headers
        .or_else(|| base_f.map(|f| f.headers.clone()))
        .unwrap_or_default();
    let list_uuids = body
        .lists
        .or_else(|| base.map(|c| c.lists.clone()))
        .unwrap_or_default();
    let template_uuid = body
        .template
        .unwrap_or_else(|| base.and_then(|c| c.template_uuid));
    let smtp_group = match body.smtp_group.as_deref().map(str::trim) {
        None => base_f.and_then(|f| f.smtp_group.clone()),
        Some("") => None,
        Some(g) => match postino_domain::ServerGroup::parse(g) {
            Ok(g) => Some(g),
            Err(e) => {
                errors.push(FieldError::new("smtp_group", e.reason));
                None
            }
        },
    };

    let name = match postino_domain::ListName::parse(&name) {
        Ok(n) => n.as_str().to_owned(),
        Err(e) => {
            errors.push(FieldError::new("name", e.reason));
            name
        }
    };
    if let Err(e) = parse_subject(&subject) {
        errors.push(FieldError::new("subject", e.reason));
    }
    if let Err(e) = header_text(&from_name, "from name", 0, 200) {
        errors.push(FieldError::new("from_name", e.reason));
    }
    if content.len() > MAX_BODY_BYTES
        || text_body.as_ref().is_some_and(|t| t.len() > MAX_BODY_BYTES)
    {
        errors.push(FieldError::new("body", "must be at most 512 KiB"));
    }
    if headers.len() > 20 {
        errors.push(FieldError::new("headers", "at most 20 custom headers"));
    }
    let found = lists::resolve(conn, &list_uuids).await?;
    let mut list_ids = Vec::with_capacity(list_uuids.len());
    for (i, uuid) in list_uuids.iter().enumerate() {
        match found.iter().find(|(u, _, _)| u == uuid) {
            Some(&(_, id, _)) => list_ids.push(id),
            None => errors.push(FieldError::new(
                format!("lists[{i}]"),
                format!("no list has id {uuid}"),
            )),
        }
    }
    let layout = match template_uuid {
        Some(uuid) => match templates::get(conn, uuid).await {
            Ok(l) => Some(l),
            Err(DbError::NotFound) => {
                errors.push(FieldError::new(
                    "template",
                    format!("no template has id {uuid}"),
                ));
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(WebError::Invalid(errors));
    }
    let compiled = sandbox
        .compile(&CampaignSource {
            uuid: base.map_or(Uuid::nil(), |c| c.uuid),
            name: &name,
            subject: &subject,
            body: &content,
            format: body_format,
            text_body: text_body.as_deref(),
            layout: layout.as_ref().map(|l| l.body.as_str()),
        })
        .await
        .map_err(sandbox_error)?;
    let from_email = from_email.ok_or_else(|| WebError::invalid("from_email", "is required"))?;
    Ok((
        Checked {
            fields: CampaignFields {
                name,
                subject,
                from_name: from_name.trim().to_owned(),
                from_email,
                reply_to,
                body: content,
                body_format,
                text_body,
                template_id: layout.as_ref().map(|l| l.id),
                tags,
                headers,
                smtp_group,
            },
            list_ids,
            lists: list_uuids,
        },
        compiled,
    ))
}

/// Compiles a stored campaign (it was checked when saved).
async fn compile_stored(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    c: &Campaign,
) -> Result<(Template, Option<String>), WebError> {
    let layout = match c.fields.template_id {
        Some(id) => Some(templates::get_by_id(conn, id).await?.body),
        None => None,
    };
    let f = &c.fields;
    let compiled = sandbox
        .compile(&CampaignSource {
            uuid: c.uuid,
            name: &f.name,
            subject: &f.subject,
            body: &f.body,
            format: f.body_format,
            text_body: f.text_body.as_deref(),
            layout: layout.as_deref(),
        })
        .await
        .map_err(sandbox_error)?;
    Ok((compiled, layout))
}

/// List campaigns.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", responses((status = 200, description = "OK", body = CampaignsResponse)))]
async fn list_campaigns(
    State(state): State<AppState>,
) -> Result<Json<CampaignsResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = campaigns::all(&mut conn).await?;
    let keys = dkim_keys::enabled(&mut conn).await?;
    Ok(Json(CampaignsResponse {
        items: items
            .into_iter()
            .map(|c| CampaignResponse::new(c, &keys))
            .collect(),
    }))
}

/// Checks `body` and stores it as a new draft: the API's create and the
/// dashboard's editor share this.
pub(crate) async fn create_draft(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    body: CampaignBody,
) -> Result<Campaign, WebError> {
    let (checked, _) = check(conn, sandbox, None, body).await?;
    Ok(campaigns::create(conn, &checked.fields, &checked.list_ids).await?)
}

/// Changes the content of campaign `id`, if its status still allows edits.
pub(crate) async fn update_content(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    id: Uuid,
    body: CampaignBody,
) -> Result<Campaign, WebError> {
    let current = campaigns::get(conn, id).await.map_err(campaign_not_found)?;
    if !current.status.is_editable() {
        return Err(not_in_state(&current, "edit"));
    }
    let (checked, _) = check(conn, sandbox, Some(&current), body).await?;
    Ok(campaigns::update(conn, current.id, &checked.fields, &checked.list_ids).await?)
}

/// Create a draft campaign. Templates are checked now, not at send time.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CampaignBody,
    responses((status = 201, description = "Created", body = CampaignResponse),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn create_campaign(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<(StatusCode, Json<CampaignResponse>), WebError> {
    let mut tx = state.db.begin().await?;
    let campaign = create_draft(&mut tx, &state.templates, body).await?;
    let response = CampaignResponse::load(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(response)))
}

/// Get a campaign.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = CampaignResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn get_campaign(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<CampaignResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let campaign = campaigns::get(&mut conn, id)
        .await
        .map_err(campaign_not_found)?;
    Ok(Json(CampaignResponse::load(&mut conn, campaign).await?))
}

fn not_in_state(c: &Campaign, doing: &str) -> WebError {
    WebError::Conflict {
        field: "status".to_owned(),
        message: format!("cannot {doing} a campaign that is {}", c.status),
    }
}

/// Change a campaign's content (draft, scheduled or paused campaigns only).
#[utoipa::path(patch, path = "/campaigns/{id}", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = CampaignBody,
    responses((status = 200, description = "OK", body = CampaignResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn update_campaign(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Json<CampaignResponse>, WebError> {
    let mut tx = state.db.begin().await?;
    let campaign = update_content(&mut tx, &state.templates, id, body).await?;
    let response = CampaignResponse::load(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok(Json(response))
}

/// Delete a campaign that is not sending (draft, scheduled, finished or cancelled).
#[utoipa::path(delete, path = "/campaigns/{id}", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Done; no content"),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
async fn delete_campaign(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, WebError> {
    let mut conn = state.db.acquire().await?;
    delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes campaign `id` with its deliveries, unless it is sending or
/// paused (cancel it first).
pub(crate) async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), WebError> {
    let current = campaigns::get(conn, id).await.map_err(campaign_not_found)?;
    if matches!(
        current.status,
        CampaignStatus::Running | CampaignStatus::Paused
    ) {
        return Err(not_in_state(&current, "delete"));
    }
    campaigns::delete(conn, current.id).await?;
    Ok(())
}

/// Move a campaign through its lifecycle: schedule (with `send_at`), start
/// (`running`), pause, resume (`running`), cancel, or back to `draft` from
/// `scheduled`. An illegal move is a 409 naming the current state.
#[utoipa::path(put, path = "/campaigns/{id}/status", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = StatusChange,
    responses((status = 200, description = "OK", body = CampaignResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn change_status(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<StatusChange>,
) -> Result<Json<CampaignResponse>, WebError> {
    let mut tx = state.db.begin().await?;
    let send_at = body.send_at.map(|t| t.with_timezone(&Utc));
    let campaign = move_to(&mut tx, &state, id, body.status, send_at).await?;
    let response = CampaignResponse::load(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok(Json(response))
}

/// Moves campaign `id` to status `to` (with `send_at` when scheduling),
/// under the lifecycle's rules: an illegal move is a conflict naming the
/// current state. Run it in a transaction; the scheduler is woken on commit.
pub(crate) async fn move_to(
    conn: &mut PgConnection,
    state: &AppState,
    id: Uuid,
    to: CampaignStatus,
    send_at: Option<DateTime<Utc>>,
) -> Result<Campaign, WebError> {
    let current = campaigns::get(conn, id).await.map_err(campaign_not_found)?;
    if to == CampaignStatus::Finished || !current.status.can_transition_to(to) {
        return Err(WebError::Conflict {
            field: "status".to_owned(),
            message: format!("a campaign that is {} cannot become {to}", current.status),
        });
    }
    match (to, send_at) {
        (CampaignStatus::Scheduled, None) => {
            return Err(WebError::invalid(
                "send_at",
                "is required to schedule a campaign",
            ));
        }
        (CampaignStatus::Scheduled, Some(at)) if at <= Utc::now() => {
            return Err(WebError::invalid(
                "send_at",
                "must be in the future; to send now, set status running",
            ));
        }
        (CampaignStatus::Scheduled, _) => {}
        (_, Some(_)) => return Err(WebError::invalid("send_at", "is only used when scheduling")),
        _ => {}
    }
    if matches!(to, CampaignStatus::Scheduled | CampaignStatus::Running)
        && current.status != CampaignStatus::Paused
    {
        ready_to_send(
            conn,
            &state.templates,
            &current,
            state.campaigns.require_unsubscribe_link,
        )
        .await?;
    }
    if !campaigns::transition(conn, current.id, current.status, to, send_at).await? {
        return Err(WebError::Conflict {
            field: "status".to_owned(),
            message: "the campaign changed state meanwhile; reload it and try again".to_owned(),
        });
    }
    if to == CampaignStatus::Running {
        campaigns::wake_scheduler(conn, SCHEDULER_CHANNEL).await?;
    }
    Ok(campaigns::get_by_id(conn, current.id).await?)
}

/// A campaign may start only with lists, a body that renders, and (unless
/// turned off) an unsubscribe link in what recipients see.
async fn ready_to_send(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    c: &Campaign,
    require_unsubscribe: bool,
) -> Result<(), WebError> {
    if c.lists.is_empty() {
        return Err(WebError::invalid(
            "lists",
            "a campaign needs at least one list before it can start",
        ));
    }
    let (_, layout) = compile_stored(conn, sandbox, c).await?;
    if require_unsubscribe {
        let mentions = |s: &str| s.contains("unsubscribe_url");
        let visible = mentions(&c.fields.body)
            || layout.as_deref().is_some_and(mentions)
            || c.fields.text_body.as_deref().is_some_and(mentions);
        if !visible {
            return Err(WebError::invalid(
                "body",
                "add an unsubscribe link ({{ unsubscribe_url }}) to the body or its template before sending",
            ));
        }
    }
    Ok(())
}

/// Renders the message for `recipient`, builds its MIME form and
/// DKIM-signs it, exactly as the sender would (bar the delivery's VERP
/// return path). Says which key signed it, if any.
async fn render_message(
    state: &AppState,
    campaign: &Campaign,
    compiled: &Template,
    signers: &DkimSigners,
    recipient: &Recipient,
    to: &EmailAddress,
) -> Result<(Rendered, postino_compose::OutgoingMessage, Option<SignedBy>), WebError> {
    let identity = CampaignIdentity {
        uuid: campaign.uuid,
        from_name: campaign.fields.from_name.clone(),
        from_email: campaign.fields.from_email.clone(),
        reply_to: campaign.fields.reply_to.clone(),
        headers: campaign.fields.headers.clone(),
    };
    let to = Addressee {
        recipient,
        to,
        list: campaign.lists.first().copied(),
        delivery: None,
    };
    let unsubscribe_url = state
        .addressing
        .unsubscribe_url(identity.uuid, recipient.id);
    let rendered = compiled
        .render(recipient, &unsubscribe_url)
        .await
        .map_err(sandbox_error)?;
    let mut message = state
        .addressing
        .build(&rendered, &identity, to)
        .map_err(|e| WebError::Internal(Box::new(e)))?;
    let signed = signers
        .sign(&campaign.fields.from_email, &mut message)
        .map_err(|e| WebError::Internal(Box::new(e)))?;
    Ok((rendered, message, signed))
}

fn recipient_of(s: &postino_db::subscribers::Subscriber) -> Recipient {
    Recipient {
        id: s.uuid,
        email: s.email.to_string(),
        name: s.name.as_str().to_owned(),
        attributes: s.attributes.as_map().clone(),
        created_at: s.created_at,
    }
}

/// Render the campaign for one subscriber (or a sample one): subject, HTML,
/// text, headers and the raw MIME message.
#[utoipa::path(post, path = "/campaigns/{id}/preview", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = PreviewRequest,
    responses((status = 200, description = "OK", body = PreviewResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn preview(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let campaign = campaigns::get(&mut conn, id)
        .await
        .map_err(campaign_not_found)?;
    Ok(Json(
        preview_stored(&mut conn, &state, &campaign, body.subscriber).await?,
    ))
}

/// Renders the stored `campaign` for one subscriber (a sample one when
/// `None`).
pub(crate) async fn preview_stored(
    conn: &mut PgConnection,
    state: &AppState,
    campaign: &Campaign,
    subscriber: Option<Uuid>,
) -> Result<PreviewResponse, WebError> {
    let (compiled, _) = compile_stored(conn, &state.templates, campaign).await?;
    render_preview(conn, state, campaign, &compiled, subscriber).await
}

/// Checks `body` as if it were saved over `base` and renders it for one
/// subscriber (a sample one when `None`), storing nothing: the dashboard's
/// live preview, with the same field errors the API gives.
pub(crate) async fn preview_unsaved(
    conn: &mut PgConnection,
    state: &AppState,
    base: Option<&Campaign>,
    body: CampaignBody,
    subscriber: Option<Uuid>,
) -> Result<PreviewResponse, WebError> {
    let (checked, compiled) = check(conn, &state.templates, base, body).await?;
    let now = Utc::now();
    let unsaved = Campaign {
        id: base.map_or(0, |c| c.id),
        uuid: base.map_or(Uuid::nil(), |c| c.uuid),
        fields: checked.fields,
        template_uuid: None,
        lists: checked.lists,
        status: CampaignStatus::Draft,
        status_reason: None,
        send_at: None,
        started_at: None,
        finished_at: None,
        enqueued_at: None,
        created_at: now,
        updated_at: now,
    };
    render_preview(conn, state, &unsaved, &compiled, subscriber).await
}

/// Renders `campaign` for one subscriber, or a sample one when `None`.
async fn render_preview(
    conn: &mut PgConnection,
    state: &AppState,
    campaign: &Campaign,
    compiled: &Template,
    subscriber: Option<Uuid>,
) -> Result<PreviewResponse, WebError> {
    let (recipient, to) = match subscriber {
        Some(uuid) => match subscribers::get(conn, uuid).await {
            Ok(s) => (recipient_of(&s), s.email),
            Err(DbError::NotFound) => {
                return Err(WebError::invalid(
                    "subscriber",
                    format!("no subscriber has id {uuid}"),
                ));
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            let sample = Recipient::sample();
            let to =
                EmailAddress::parse(&sample.email).map_err(|e| WebError::Internal(Box::new(e)))?;
            (sample, to)
        }
    };
    let from = &campaign.fields.from_email;
    let (signers, unusable) = signers_for(conn, state, from).await?;
    let (rendered, message, signed) =
        render_message(state, campaign, compiled, &signers, &recipient, &to).await?;
    let mime = String::from_utf8_lossy(&message.bytes).into_owned();
    Ok(PreviewResponse {
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: header_lines(&mime),
        mime,
        dkim: DkimSigning::outcome(signed.as_ref(), &unusable, from),
    })
}

/// The header block of a MIME message, unfolded.
fn header_lines(mime: &str) -> Vec<HeaderLine> {
    let head = mime.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines: Vec<HeaderLine> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            lines.push(HeaderLine {
                name: name.to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    lines
}

/// Send the real message to a few addresses now, ahead of any campaign
/// traffic but through the campaign's relay group and its limits, and report
/// each server reply (waiting up to 15 s for them). Merge fields use the
/// subscriber with that address if there is one, else a sample subscriber.
#[utoipa::path(post, path = "/campaigns/{id}/test", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body = TestSendRequest,
    responses((status = 200, description = "OK", body = TestSendResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid request; errors name each field", body = Problem, content_type = "application/problem+json")))]
async fn test_send(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<TestSendRequest>,
) -> Result<Json<TestSendResponse>, WebError> {
    Ok(Json(send_test(&state, id, &body.emails).await?))
}

/// How long a test send waits for the sender's answers before replying
/// with what it has.
const TEST_SEND_WAIT: Duration = Duration::from_secs(15);
/// How often it looks for them meanwhile.
const TEST_SEND_POLL: Duration = Duration::from_millis(100);

/// Queues campaign `id` for the test addresses `emails` in the sender's
/// priority lane and reports each server's reply, waiting up to
/// [`TEST_SEND_WAIT`] for them. The sender alone speaks SMTP: it sends
/// them ahead of any bulk work, through the campaign's relay group, under
/// the same limits, signed with the same key. A connection is held only
/// while asking, not while waiting.
pub(crate) async fn send_test(
    state: &AppState,
    id: Uuid,
    emails: &[EmailAddress],
) -> Result<TestSendResponse, WebError> {
    if emails.is_empty() || emails.len() > MAX_TEST_RECIPIENTS {
        return Err(WebError::invalid(
            "emails",
            format!("give 1 to {MAX_TEST_RECIPIENTS} addresses"),
        ));
    }
    let (ids, dkim) = {
        let mut conn = state.db.acquire().await?;
        let campaign = campaigns::get(&mut conn, id)
            .await
            .map_err(campaign_not_found)?;
        if postino_db::smtp_servers::enabled(&mut conn)
            .await?
            .is_empty()
        {
            return Err(WebError::Conflict {
                field: String::new(),
                message: "no SMTP server is enabled: add one under /api/v1/smtp-servers".to_owned(),
            });
        }
        let from = &campaign.fields.from_email;
        let (signers, unusable) = signers_for(&mut conn, state, from).await?;
        let dkim = DkimSigning::outcome(signers.key_for(from.domain()), &unusable, from);
        (
            test_sends::enqueue(&mut conn, campaign.id, emails).await?,
            dkim,
        )
    };
    let deadline = tokio::time::Instant::now() + TEST_SEND_WAIT;
    let sends = loop {
        let sends = {
            let mut conn = state.db.acquire().await?;
            test_sends::results(&mut conn, &ids).await?
        };
        let waiting = sends
            .iter()
            .any(|t| matches!(t.status, DeliveryStatus::Queued | DeliveryStatus::Sending));
        if !waiting || tokio::time::Instant::now() >= deadline {
            break sends;
        }
        tokio::time::sleep(TEST_SEND_POLL).await;
    };
    let results = emails
        .iter()
        .zip(&ids)
        .map(|(email, id)| match sends.iter().find(|t| t.id == *id) {
            Some(t) => TestSendResult::of(t),
            None => TestSendResult {
                email: email.to_string(),
                accepted: false,
                code: None,
                reply: "not sent: the campaign was deleted meanwhile".to_owned(),
                status: DeliveryStatus::Failed,
            },
        })
        .collect();
    Ok(TestSendResponse { results, dkim })
}

/// Progress: deliveries by state, sending rate, time left.
#[utoipa::path(get, path = "/campaigns/{id}/stats", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = StatsResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn stats(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<StatsResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let campaign = campaigns::get(&mut conn, id)
        .await
        .map_err(campaign_not_found)?;
    Ok(Json(progress(&mut conn, &campaign).await?))
}

/// When its messages were delivered or given up on, in slots.
#[utoipa::path(get, path = "/campaigns/{id}/timeline", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = TimelineResponse),
              (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn timeline(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<TimelineResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let c = campaigns::get(&mut conn, id)
        .await
        .map_err(campaign_not_found)?;
    let Some(started) = c.started_at else {
        return Ok(Json(TimelineResponse {
            slot_seconds: deliveries::timeline_slot(0),
            slots: Vec::new(),
        }));
    };
    let end = c.finished_at.unwrap_or_else(Utc::now);
    let t = deliveries::timeline(&mut conn, c.id, started, end).await?;
    Ok(Json(TimelineResponse {
        slot_seconds: t.slot_secs,
        slots: t
            .points
            .into_iter()
            .map(|p| TimelineSlot {
                at: p.at,
                sent: p.sent,
                failed: p.failed,
            })
            .collect(),
    }))
}

/// `campaign`'s deliveries by state, its sending rate and the time left.
pub(crate) async fn progress(
    conn: &mut PgConnection,
    campaign: &Campaign,
) -> Result<StatsResponse, WebError> {
    let c = deliveries::counts(conn, campaign.id).await?;
    let pending = c.queued + c.sending;
    let eta_seconds =
        (c.sent_last_minute > 0 && pending > 0).then(|| pending * 60 / c.sent_last_minute);
    Ok(StatsResponse {
        status: campaign.status,
        total: c.queued + c.sending + c.sent + c.failed + c.skipped,
        enqueued: campaign.enqueued_at.is_some(),
        queued: c.queued,
        sending: c.sending,
        sent: c.sent,
        failed: c.failed,
        skipped: c.skipped,
        rate_per_minute: c.sent_last_minute,
        eta_seconds,
        started_at: campaign.started_at,
        finished_at: campaign.finished_at,
    })
}
