//! `/api/v1/campaigns`: campaigns, their lifecycle, previews, test sends and
//! progress.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use postino_domain::{
    BodyFormat, CampaignStatus, CustomHeader, DeliveryStatus, EmailAddress, Tags,
};
use postino_service::campaigns::{self as service, CampaignDraft, Described, Preview, Progress};
use postino_service::test_sends;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::api::dkim_keys::DkimSigning;
use crate::error::{Problem, WebError};
use crate::extract::{ApiJson, IdPath};

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

impl From<Described> for CampaignResponse {
    fn from(d: Described) -> Self {
        let Described { campaign: c, dkim } = d;
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
            dkim: dkim.into(),
        }
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
struct CampaignBody {
    /// Internal name, 1 to 200 characters.
    name: Option<String>,
    /// Subject template, one line.
    subject: Option<String>,
    /// Sender's display name, one line.
    from_name: Option<String>,
    #[schema(value_type = Option<String>, format = Email)]
    from_email: Option<EmailAddress>,
    /// Where replies go; `null` removes it (replies go to the sender).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Email)]
    reply_to: Option<Option<EmailAddress>>,
    /// Body template, checked when saved.
    body: Option<String>,
    body_format: Option<BodyFormat>,
    /// Plain-text alternative; generated from the HTML when absent, and
    /// again once set to `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    text_body: Option<Option<String>>,
    /// Layout id; `null` sends the body without a layout.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    template: Option<Option<Uuid>>,
    /// Target lists.
    lists: Option<Vec<Uuid>>,
    #[schema(value_type = Option<Vec<String>>)]
    tags: Option<Tags>,
    /// Extra headers; reserved ones (From, Subject, List-Unsubscribe, …) are refused.
    headers: Option<Vec<CustomHeader>>,
    /// Pin it to one SMTP server group; "" unpins it (any enabled server).
    smtp_group: Option<String>,
}

impl From<CampaignBody> for CampaignDraft {
    fn from(b: CampaignBody) -> Self {
        Self {
            name: b.name,
            subject: b.subject,
            from_name: b.from_name,
            from_email: b.from_email,
            reply_to: b.reply_to,
            body: b.body,
            body_format: b.body_format,
            text_body: b.text_body,
            template: b.template,
            lists: b.lists,
            tags: b.tags,
            headers: b.headers,
            smtp_group: b.smtp_group,
        }
    }
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

impl From<Preview> for PreviewResponse {
    fn from(p: Preview) -> Self {
        Self {
            subject: p.subject,
            html: p.html,
            text: p.text,
            headers: p
                .headers
                .into_iter()
                .map(|(name, value)| HeaderLine { name, value })
                .collect(),
            mime: p.mime,
            dkim: p.dkim.into(),
        }
    }
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

impl From<Progress> for StatsResponse {
    fn from(p: Progress) -> Self {
        Self {
            status: p.status,
            total: p.total,
            enqueued: p.enqueued,
            queued: p.queued,
            sending: p.sending,
            sent: p.sent,
            failed: p.failed,
            skipped: p.skipped,
            rate_per_minute: p.rate_per_minute,
            eta_seconds: p.eta_seconds,
            started_at: p.started_at,
            finished_at: p.finished_at,
        }
    }
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

/// List campaigns.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", responses((status = 200, description = "OK", body = CampaignsResponse)))]
async fn list_campaigns(
    State(state): State<AppState>,
) -> Result<Json<CampaignsResponse>, WebError> {
    let mut conn = state.db.acquire().await?;
    let items = service::all(&mut conn).await?;
    Ok(Json(CampaignsResponse {
        items: items.into_iter().map(CampaignResponse::from).collect(),
    }))
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
    let campaign = service::create_draft(&state.service, &mut tx, body.into()).await?;
    let response = service::describe(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(response.into())))
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
    let campaign = service::get(&mut conn, id).await?;
    Ok(Json(service::describe(&mut conn, campaign).await?.into()))
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
    let campaign = service::update_content(&state.service, &mut tx, id, body.into()).await?;
    let response = service::describe(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok(Json(response.into()))
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
    service::delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let campaign = service::move_to(&state.service, &mut tx, id, body.status, send_at).await?;
    let response = service::describe(&mut tx, campaign).await?;
    tx.commit().await?;
    Ok(Json(response.into()))
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
    let campaign = service::get(&mut conn, id).await?;
    let preview =
        service::preview_stored(&state.service, &mut conn, &campaign, body.subscriber).await?;
    Ok(Json(preview.into()))
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
    let report = test_sends::send(&state.service, &state.db, id, &body.emails).await?;
    Ok(Json(TestSendResponse {
        results: report
            .results
            .into_iter()
            .map(|r| TestSendResult {
                email: r.email,
                accepted: r.accepted,
                code: r.code,
                reply: r.reply,
                status: r.status,
            })
            .collect(),
        dkim: report.dkim.into(),
    }))
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
    let campaign = service::get(&mut conn, id).await?;
    Ok(Json(service::progress(&mut conn, &campaign).await?.into()))
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
    let campaign = service::get(&mut conn, id).await?;
    let t = service::timeline(&mut conn, &campaign).await?;
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
