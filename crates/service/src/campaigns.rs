//! Campaigns: drafts and the checks they pass when saved, lifecycle moves,
//! previews, progress.

use chrono::{DateTime, Utc};
use postino_compose::dkim::{DkimSigners, SignedBy};
use postino_compose::{
    Addressee, CampaignIdentity, CampaignSource, OutgoingMessage, Recipient, Rendered,
};
use postino_db::campaigns::{self, Campaign, CampaignFields};
use postino_db::dkim_keys;
use postino_db::{DbError, PgConnection, deliveries, lists, subscribers, templates};
use postino_domain::campaigns::{header_text, parse_subject};
use postino_domain::{BodyFormat, CampaignStatus, CustomHeader, EmailAddress, Tags};
use postino_sandbox::{Sandbox, Template};
use uuid::Uuid;

use crate::dkim::{Signing, signers_for};
use crate::{Context, Error, FieldError, Result};

/// Largest body or template accepted.
const MAX_BODY_BYTES: usize = 512 * 1024;

/// A campaign's content; on update, absent fields (`None`) stay as they
/// are, and `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct CampaignDraft {
    /// Internal name, 1 to 200 characters.
    pub name: Option<String>,
    /// Subject template, one line.
    pub subject: Option<String>,
    /// Sender's display name, one line.
    pub from_name: Option<String>,
    /// Sender's address.
    pub from_email: Option<EmailAddress>,
    /// Where replies go; `Some(None)` removes it.
    pub reply_to: Option<Option<EmailAddress>>,
    /// Body template.
    pub body: Option<String>,
    /// How the body is written.
    pub body_format: Option<BodyFormat>,
    /// Plain-text alternative; `Some(None)` generates it from the HTML.
    pub text_body: Option<Option<String>>,
    /// Layout id; `Some(None)` sends the body without a layout.
    pub template: Option<Option<Uuid>>,
    /// Target lists.
    pub lists: Option<Vec<Uuid>>,
    /// Tags.
    pub tags: Option<Tags>,
    /// Extra headers; reserved ones are refused.
    pub headers: Option<Vec<CustomHeader>>,
    /// Pin it to one SMTP server group; "" unpins it.
    pub smtp_group: Option<String>,
}

/// A campaign with what DKIM does for its From domain.
#[derive(Debug, Clone)]
pub struct Described {
    /// The campaign.
    pub campaign: Campaign,
    /// Whether its messages are signed, and with which key.
    pub dkim: Signing,
}

/// The campaign `id`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Campaign> {
    campaigns::get(conn, id)
        .await
        .map_err(Error::not_found("campaign"))
}

/// `campaign` with what the enabled DKIM keys do for it.
///
/// # Errors
///
/// A database failure.
pub async fn describe(conn: &mut PgConnection, campaign: Campaign) -> Result<Described> {
    let keys = dkim_keys::enabled(conn).await?;
    let dkim = Signing::for_sender(&keys, &campaign.fields.from_email);
    Ok(Described { campaign, dkim })
}

/// Every campaign, newest first, described.
///
/// # Errors
///
/// A database failure.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Described>> {
    let items = campaigns::all(conn).await?;
    let keys = dkim_keys::enabled(conn).await?;
    Ok(items
        .into_iter()
        .map(|campaign| {
            let dkim = Signing::for_sender(&keys, &campaign.fields.from_email);
            Described { campaign, dkim }
        })
        .collect())
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
    body: CampaignDraft,
) -> Result<(Checked, Template)> {
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
        return Err(Error::Invalid(errors));
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
        .await?;
    let from_email = from_email.ok_or_else(|| Error::invalid("from_email", "is required"))?;
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
pub(crate) async fn compile_stored(
    conn: &mut PgConnection,
    sandbox: &Sandbox,
    c: &Campaign,
) -> Result<(Template, Option<String>)> {
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
        .await?;
    Ok((compiled, layout))
}

/// Checks `draft` and stores it as a new draft campaign.
///
/// # Errors
///
/// [`Error::Invalid`] naming every field at fault (templates are compiled
/// now, not at send time).
pub async fn create_draft(
    ctx: &Context,
    conn: &mut PgConnection,
    draft: CampaignDraft,
) -> Result<Campaign> {
    let (checked, _) = check(conn, &ctx.templates, None, draft).await?;
    Ok(campaigns::create(conn, &checked.fields, &checked.list_ids).await?)
}

/// Changes the content of campaign `id`, if its status still allows edits.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] when it is no longer editable,
/// [`Error::Invalid`] naming every field at fault.
pub async fn update_content(
    ctx: &Context,
    conn: &mut PgConnection,
    id: Uuid,
    draft: CampaignDraft,
) -> Result<Campaign> {
    let current = get(conn, id).await?;
    if !current.status.is_editable() {
        return Err(not_in_state(&current, "edit"));
    }
    let (checked, _) = check(conn, &ctx.templates, Some(&current), draft).await?;
    Ok(campaigns::update(conn, current.id, &checked.fields, &checked.list_ids).await?)
}

fn not_in_state(c: &Campaign, doing: &str) -> Error {
    Error::conflict(
        "status",
        format!("cannot {doing} a campaign that is {}", c.status),
    )
}

/// Deletes campaign `id` with its deliveries, unless it is sending or
/// paused (cancel it first).
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] while it is running or paused.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    let current = get(conn, id).await?;
    if matches!(
        current.status,
        CampaignStatus::Running | CampaignStatus::Paused
    ) {
        return Err(not_in_state(&current, "delete"));
    }
    campaigns::delete(conn, current.id).await?;
    Ok(())
}

/// Moves campaign `id` to status `to` (with `send_at` when scheduling),
/// under the lifecycle's rules: an illegal move is a conflict naming the
/// current state. Run it in a transaction; the scheduler is woken on commit.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] for an illegal move or a
/// concurrent change, [`Error::Invalid`] for a bad `send_at` or a campaign
/// not ready to send.
pub async fn move_to(
    ctx: &Context,
    conn: &mut PgConnection,
    id: Uuid,
    to: CampaignStatus,
    send_at: Option<DateTime<Utc>>,
) -> Result<Campaign> {
    let current = get(conn, id).await?;
    if to == CampaignStatus::Finished || !current.status.can_transition_to(to) {
        return Err(Error::conflict(
            "status",
            format!("a campaign that is {} cannot become {to}", current.status),
        ));
    }
    match (to, send_at) {
        (CampaignStatus::Scheduled, None) => {
            return Err(Error::invalid(
                "send_at",
                "is required to schedule a campaign",
            ));
        }
        (CampaignStatus::Scheduled, Some(at)) if at <= Utc::now() => {
            return Err(Error::invalid(
                "send_at",
                "must be in the future; to send now, set status running",
            ));
        }
        (CampaignStatus::Scheduled, _) => {}
        (_, Some(_)) => return Err(Error::invalid("send_at", "is only used when scheduling")),
        _ => {}
    }
    if matches!(to, CampaignStatus::Scheduled | CampaignStatus::Running)
        && current.status != CampaignStatus::Paused
    {
        ready_to_send(
            conn,
            &ctx.templates,
            &current,
            ctx.campaigns.require_unsubscribe_link,
        )
        .await?;
    }
    if !campaigns::transition(conn, current.id, current.status, to, send_at).await? {
        return Err(Error::conflict(
            "status",
            "the campaign changed state meanwhile; reload it and try again",
        ));
    }
    if to == CampaignStatus::Running {
        campaigns::wake_scheduler(conn, postino_db::wake::SCHEDULER).await?;
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
) -> Result<()> {
    if c.lists.is_empty() {
        return Err(Error::invalid(
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
            return Err(Error::invalid(
                "body",
                "add an unsubscribe link ({{ unsubscribe_url }}) to the body or its template before sending",
            ));
        }
    }
    Ok(())
}

/// The message one subscriber would get.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Rendered subject.
    pub subject: String,
    /// Rendered HTML part, if the campaign has one.
    pub html: Option<String>,
    /// Rendered text part.
    pub text: String,
    /// The header block, unfolded, as (name, value).
    pub headers: Vec<(String, String)>,
    /// The whole MIME message, DKIM-signed as the sender would sign it.
    pub mime: String,
    /// Whether it was DKIM-signed, and with which key.
    pub dkim: Signing,
}

/// Renders the message for `recipient`, builds its MIME form and
/// DKIM-signs it, exactly as the sender would (bar the delivery's VERP
/// return path). Says which key signed it, if any.
async fn render_message(
    ctx: &Context,
    campaign: &Campaign,
    compiled: &Template,
    signers: &DkimSigners,
    recipient: &Recipient,
    to: &EmailAddress,
) -> Result<(Rendered, OutgoingMessage, Option<SignedBy>)> {
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
    let unsubscribe_url = ctx.addressing.unsubscribe_url(identity.uuid, recipient.id);
    let rendered = compiled.render(recipient, &unsubscribe_url).await?;
    let mut message = ctx
        .addressing
        .build(&rendered, &identity, to)
        .map_err(Error::internal)?;
    let signed = signers
        .sign(&campaign.fields.from_email, &mut message)
        .map_err(Error::internal)?;
    Ok((rendered, message, signed))
}

/// The merge fields of subscriber `s`.
#[must_use]
pub fn recipient_of(s: &postino_db::subscribers::Subscriber) -> Recipient {
    Recipient {
        id: s.uuid,
        email: s.email.to_string(),
        name: s.name.as_str().to_owned(),
        attributes: s.attributes.as_map().clone(),
        created_at: s.created_at,
    }
}

/// Renders the stored `campaign` for one subscriber (a sample one when
/// `None`).
///
/// # Errors
///
/// [`Error::Invalid`] for an unknown subscriber or a template that fails
/// for them.
pub async fn preview_stored(
    ctx: &Context,
    conn: &mut PgConnection,
    campaign: &Campaign,
    subscriber: Option<Uuid>,
) -> Result<Preview> {
    let (compiled, _) = compile_stored(conn, &ctx.templates, campaign).await?;
    render_preview(ctx, conn, campaign, &compiled, subscriber).await
}

/// Checks `draft` as if it were saved over `base` and renders it for one
/// subscriber (a sample one when `None`), storing nothing: the dashboard's
/// live preview, with the same field errors a save gives.
///
/// # Errors
///
/// [`Error::Invalid`] naming every field at fault.
pub async fn preview_unsaved(
    ctx: &Context,
    conn: &mut PgConnection,
    base: Option<&Campaign>,
    draft: CampaignDraft,
    subscriber: Option<Uuid>,
) -> Result<Preview> {
    let (checked, compiled) = check(conn, &ctx.templates, base, draft).await?;
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
    render_preview(ctx, conn, &unsaved, &compiled, subscriber).await
}

/// Renders `campaign` for one subscriber, or a sample one when `None`.
async fn render_preview(
    ctx: &Context,
    conn: &mut PgConnection,
    campaign: &Campaign,
    compiled: &Template,
    subscriber: Option<Uuid>,
) -> Result<Preview> {
    let (recipient, to) = match subscriber {
        Some(uuid) => match subscribers::get(conn, uuid).await {
            Ok(s) => (recipient_of(&s), s.email),
            Err(DbError::NotFound) => {
                return Err(Error::invalid(
                    "subscriber",
                    format!("no subscriber has id {uuid}"),
                ));
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            let sample = Recipient::sample();
            let to = EmailAddress::parse(&sample.email).map_err(Error::internal)?;
            (sample, to)
        }
    };
    let from = &campaign.fields.from_email;
    let (signers, unusable) = signers_for(conn, &ctx.addressing, from).await?;
    let (rendered, message, signed) =
        render_message(ctx, campaign, compiled, &signers, &recipient, &to).await?;
    let mime = String::from_utf8_lossy(&message.bytes).into_owned();
    Ok(Preview {
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: header_lines(&mime),
        mime,
        dkim: Signing::outcome(signed.as_ref(), &unusable, from),
    })
}

/// The header block of a MIME message, unfolded.
fn header_lines(mime: &str) -> Vec<(String, String)> {
    let head = mime.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = lines.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            lines.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    lines
}

/// Progress of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Its status.
    pub status: CampaignStatus,
    /// Deliveries enqueued so far (everyone, once `enqueued` is true).
    pub total: i64,
    /// Whether the whole audience has been enqueued.
    pub enqueued: bool,
    /// Waiting to be sent.
    pub queued: i64,
    /// Being sent now.
    pub sending: i64,
    /// Delivered.
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
    /// Not sent on purpose.
    pub skipped: i64,
    /// Messages sent in the last minute.
    pub rate_per_minute: i64,
    /// Seconds until the queue is empty at the current rate; `None` when idle.
    pub eta_seconds: Option<i64>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// `campaign`'s deliveries by state, its sending rate and the time left.
///
/// # Errors
///
/// A database failure.
pub async fn progress(conn: &mut PgConnection, campaign: &Campaign) -> Result<Progress> {
    let c = deliveries::counts(conn, campaign.id).await?;
    let pending = c.queued + c.sending;
    let eta_seconds =
        (c.sent_last_minute > 0 && pending > 0).then(|| pending * 60 / c.sent_last_minute);
    Ok(Progress {
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

/// When `campaign`'s messages were delivered or given up on, in slots from
/// its start to its end (or now); no slots before it starts.
///
/// # Errors
///
/// A database failure.
pub async fn timeline(conn: &mut PgConnection, c: &Campaign) -> Result<deliveries::Timeline> {
    let Some(started) = c.started_at else {
        return Ok(deliveries::Timeline {
            slot_secs: deliveries::timeline_slot(0),
            points: Vec::new(),
        });
    };
    let end = c.finished_at.unwrap_or_else(Utc::now);
    Ok(deliveries::timeline(conn, c.id, started, end).await?)
}
