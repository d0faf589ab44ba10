//! Campaigns and their target lists.

use chrono::{DateTime, Utc};
use postino_domain::{BodyFormat, CampaignStatus, CustomHeader, EmailAddress, ServerGroup, Tags};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// The content and addressing of a campaign, already validated.
#[derive(Debug, Clone)]
pub struct CampaignFields {
    /// Internal name.
    pub name: String,
    /// Subject template.
    pub subject: String,
    /// Sender's display name.
    pub from_name: String,
    /// Sender's address.
    pub from_email: EmailAddress,
    /// Where replies go.
    pub reply_to: Option<EmailAddress>,
    /// Body template.
    pub body: String,
    /// How the body is written.
    pub body_format: BodyFormat,
    /// Plain-text alternative template, if not generated.
    pub text_body: Option<String>,
    /// Layout (internal key).
    pub template_id: Option<i64>,
    /// Labels.
    pub tags: Tags,
    /// Extra headers.
    pub headers: Vec<CustomHeader>,
    /// The relay group it is pinned to; any enabled relay when `None`.
    pub smtp_group: Option<ServerGroup>,
}

/// A campaign as stored.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Content and addressing.
    pub fields: CampaignFields,
    /// The layout's public id.
    pub template_uuid: Option<Uuid>,
    /// Target lists (public ids).
    pub lists: Vec<Uuid>,
    /// Lifecycle state.
    pub status: CampaignStatus,
    /// Why it is in that state, when the sender put it there (an
    /// automatic pause); cleared by the next change of state.
    pub status_reason: Option<String>,
    /// When it is due, if scheduled.
    pub send_at: Option<DateTime<Utc>>,
    /// When sending started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// When every recipient had been enqueued.
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

struct CampaignRow {
    id: i64,
    uuid: Uuid,
    name: String,
    subject: String,
    from_name: String,
    from_email: String,
    reply_to: Option<String>,
    body: String,
    body_format: String,
    text_body: Option<String>,
    template_id: Option<i64>,
    template_uuid: Option<Uuid>,
    tags: Vec<String>,
    headers: Value,
    status: String,
    status_reason: Option<String>,
    smtp_group: Option<String>,
    send_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    enqueued_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    lists: Option<Vec<Uuid>>,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = DbError;
    fn try_from(r: CampaignRow) -> Result<Self, DbError> {
        let headers: Vec<CustomHeader> = serde_json::from_value(r.headers).map_err(|e| {
            DbError::Corrupt(postino_domain::DomainError {
                what: "headers",
                reason: e.to_string(),
            })
        })?;
        Ok(Campaign {
            id: r.id,
            uuid: r.uuid,
            fields: CampaignFields {
                name: r.name,
                subject: r.subject,
                from_name: r.from_name,
                from_email: EmailAddress::parse(&r.from_email)?,
                reply_to: r.reply_to.as_deref().map(EmailAddress::parse).transpose()?,
                body: r.body,
                body_format: r.body_format.parse()?,
                text_body: r.text_body,
                template_id: r.template_id,
                tags: Tags::parse(&r.tags)?,
                headers,
                smtp_group: r
                    .smtp_group
                    .as_deref()
                    .map(ServerGroup::parse)
                    .transpose()?,
            },
            template_uuid: r.template_uuid,
            lists: r.lists.unwrap_or_default(),
            status: r.status.parse()?,
            status_reason: r.status_reason,
            send_at: r.send_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            enqueued_at: r.enqueued_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn headers_json(headers: &[CustomHeader]) -> Value {
    serde_json::to_value(headers).unwrap_or(Value::Array(vec![]))
}

/// Creates a draft campaign targeting `list_ids`.
///
/// # Errors
///
/// [`DbError::MissingReference`] if a list or the layout was deleted meanwhile.
pub async fn create(
    conn: &mut PgConnection,
    f: &CampaignFields,
    list_ids: &[i64],
) -> Result<Campaign, DbError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO campaigns (uuid, name, subject, from_name, from_email, reply_to, body,
                                  body_format, text_body, template_id, tags, headers, smtp_group)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id"#,
        Uuid::now_v7(),
        f.name,
        f.subject,
        f.from_name,
        f.from_email.as_str(),
        f.reply_to.as_ref().map(EmailAddress::as_str),
        f.body,
        f.body_format.as_str(),
        f.text_body,
        f.template_id,
        f.tags.as_slice(),
        headers_json(&f.headers),
        f.smtp_group.as_ref().map(ServerGroup::as_str),
    )
    .fetch_one(&mut *conn)
    .await?;
    set_lists(conn, id, list_ids).await?;
    get_by_id(conn, id).await
}

async fn set_lists(
    conn: &mut PgConnection,
    campaign_id: i64,
    list_ids: &[i64],
) -> Result<(), DbError> {
    sqlx::query!(
        "DELETE FROM campaign_lists WHERE campaign_id = $1",
        campaign_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO campaign_lists (campaign_id, list_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        campaign_id,
        list_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a campaign's content and lists.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such campaign.
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    f: &CampaignFields,
    list_ids: &[i64],
) -> Result<Campaign, DbError> {
    sqlx::query!(
        r#"UPDATE campaigns SET name = $2, subject = $3, from_name = $4, from_email = $5, reply_to = $6,
               body = $7, body_format = $8, text_body = $9, template_id = $10, tags = $11, headers = $12,
               smtp_group = $13, updated_at = now()
           WHERE id = $1"#,
        id,
        f.name,
        f.subject,
        f.from_name,
        f.from_email.as_str(),
        f.reply_to.as_ref().map(EmailAddress::as_str),
        f.body,
        f.body_format.as_str(),
        f.text_body,
        f.template_id,
        f.tags.as_slice(),
        headers_json(&f.headers),
        f.smtp_group.as_ref().map(ServerGroup::as_str),
    )
    .execute(&mut *conn)
    .await?;
    set_lists(conn, id, list_ids).await?;
    get_by_id(conn, id).await
}

/// One campaign by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such campaign.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<Campaign, DbError> {
    let id = sqlx::query_scalar!("SELECT id FROM campaigns WHERE uuid = $1", uuid)
        .fetch_one(&mut *conn)
        .await?;
    get_by_id(conn, id).await
}

/// One campaign by internal key.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such campaign.
pub async fn get_by_id(conn: &mut PgConnection, id: i64) -> Result<Campaign, DbError> {
    let row = sqlx::query_as!(
        CampaignRow,
        r#"SELECT c.id, c.uuid, c.name, c.subject, c.from_name, c.from_email, c.reply_to, c.body,
                  c.body_format, c.text_body, c.template_id, t.uuid AS "template_uuid?", c.tags, c.headers,
                  c.status, c.status_reason, c.smtp_group, c.send_at, c.started_at, c.finished_at, c.enqueued_at, c.created_at, c.updated_at,
                  ARRAY(SELECT l.uuid FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
                        WHERE cl.campaign_id = c.id ORDER BY l.id) AS "lists"
           FROM campaigns c LEFT JOIN templates t ON t.id = c.template_id
           WHERE c.id = $1"#,
        id
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Every campaign, newest first.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Campaign>, DbError> {
    let rows = sqlx::query_as!(
        CampaignRow,
        r#"SELECT c.id, c.uuid, c.name, c.subject, c.from_name, c.from_email, c.reply_to, c.body,
                  c.body_format, c.text_body, c.template_id, t.uuid AS "template_uuid?", c.tags, c.headers,
                  c.status, c.status_reason, c.smtp_group, c.send_at, c.started_at, c.finished_at, c.enqueued_at, c.created_at, c.updated_at,
                  ARRAY(SELECT l.uuid FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
                        WHERE cl.campaign_id = c.id ORDER BY l.id) AS "lists"
           FROM campaigns c LEFT JOIN templates t ON t.id = c.template_id
           ORDER BY c.id DESC"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}

/// Deletes a campaign and its deliveries.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such campaign.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    let result = sqlx::query!("DELETE FROM campaigns WHERE id = $1", id)
        .execute(conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Moves a campaign from `from` to `to`, only if it is still in `from`
/// (another request or the scheduler may have moved it meanwhile).
/// Returns whether it moved. Cancelling also skips its queued deliveries.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: CampaignStatus,
    to: CampaignStatus,
    send_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let moved = sqlx::query!(
        r#"UPDATE campaigns SET status = $3,
               send_at = CASE WHEN $3 = 'scheduled' THEN $4 ELSE send_at END,
               started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
               finished_at = CASE WHEN $3 IN ('finished', 'cancelled') THEN now() ELSE finished_at END,
               status_reason = NULL, updated_at = now()
           WHERE id = $1 AND status = $2"#,
        id,
        from.as_str(),
        to.as_str(),
        send_at,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if moved && to == CampaignStatus::Cancelled {
        // Test sends of a cancelled campaign still go: someone is waiting
        // for them, and they are not the campaign's mail.
        sqlx::query!(
            r#"UPDATE deliveries SET status = 'skipped', last_reply = 'campaign cancelled', updated_at = now()
               WHERE campaign_id = $1 AND status = 'queued' AND kind = 'campaign'"#,
            id
        )
        .execute(conn)
        .await?;
    }
    Ok(moved)
}

/// Pauses a running campaign on the sender's own judgement, saying why.
/// Returns whether it was running. `updated_at` is left alone: the content
/// did not change.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn pause_with_reason(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE campaigns SET status = 'paused', status_reason = $2 WHERE id = $1 AND status = 'running'",
        id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts scheduled campaigns whose time has come. Returns their keys.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn start_due(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE campaigns SET status = 'running', started_at = COALESCE(started_at, now()), updated_at = now()
           WHERE status = 'scheduled' AND send_at <= $1
           RETURNING id"#,
        now
    )
    .fetch_all(conn)
    .await?)
}

/// Running campaigns whose audience is not fully enqueued yet, with their
/// enqueue cursor.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn pending_enqueue(conn: &mut PgConnection) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT id, enqueue_cursor FROM campaigns
           WHERE status = 'running' AND enqueued_at IS NULL ORDER BY id"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.enqueue_cursor)).collect())
}

/// Marks finished every running campaign that is fully enqueued and has
/// nothing queued or in flight. Returns their keys. A test send waiting in
/// the priority lane does not hold a campaign open.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn finish_done(conn: &mut PgConnection) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE campaigns c SET status = 'finished', finished_at = now(), updated_at = now()
           WHERE c.status = 'running' AND c.enqueued_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.campaign_id = c.id AND d.status IN ('queued', 'sending')
                               AND d.kind = 'campaign')
           RETURNING c.id"#
    )
    .fetch_all(conn)
    .await?)
}

/// The names of a campaign's lists, for pages shown to subscribers.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn list_names(conn: &mut PgConnection, campaign: Uuid) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT l.name FROM campaigns c
           JOIN campaign_lists cl ON cl.campaign_id = c.id JOIN lists l ON l.id = cl.list_id
           WHERE c.uuid = $1 ORDER BY l.id"#,
        campaign
    )
    .fetch_all(conn)
    .await?)
}

/// Asks the scheduler to act now rather than at its next tick; delivered
/// when the caller's transaction commits. The same as
/// [`crate::wake::notify`], kept for the callers that name the channel.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn wake_scheduler(conn: &mut PgConnection, channel: &str) -> Result<(), DbError> {
    crate::wake::notify(conn, channel).await
}

/// What recipients did once a campaign reached them: how many people
/// bounced (any kind) and how many unsubscribed through its message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reactions {
    /// Distinct subscribers with a bounce recorded against the campaign.
    pub bounced: i64,
    /// Distinct subscribers who unsubscribed from the campaign's message.
    pub unsubscribed: i64,
}

/// [`Reactions`] to campaign `campaign_id`.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn reactions(conn: &mut PgConnection, campaign_id: i64) -> Result<Reactions, DbError> {
    // Counted for the finished page only (not on every progress poll), so
    // the unindexed scan of subscription_events stays rare.
    let row = sqlx::query!(
        r#"SELECT (SELECT count(DISTINCT subscriber_id) FROM bounces
                   WHERE campaign_id = $1) AS "bounced!",
                  (SELECT count(DISTINCT subscriber_id) FROM subscription_events
                   WHERE campaign_id = $1 AND kind = 'unsubscribed') AS "unsubscribed!""#,
        campaign_id
    )
    .fetch_one(conn)
    .await?;
    Ok(Reactions {
        bounced: row.bounced,
        unsubscribed: row.unsubscribed,
    })
}
