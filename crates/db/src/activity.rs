//! One subscriber's history, newest first: the campaigns sent to them, their
//! bounces and the changes they made themselves. Each read is bounded, so a
//! subscriber with years of mail costs what a new one does.

use chrono::{DateTime, Utc};
use postino_domain::DeliveryStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// One campaign's delivery to the subscriber.
#[derive(Debug, Clone)]
pub struct DeliveryEntry {
    /// The campaign's public id.
    pub campaign: Uuid,
    /// The campaign's name.
    pub campaign_name: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// The last SMTP reply code, if any.
    pub last_code: Option<i32>,
    /// The last SMTP reply, connection error or reason for skipping.
    pub last_reply: Option<String>,
    /// When the relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A bounce or complaint recorded for the subscriber.
#[derive(Debug, Clone)]
pub struct BounceEntry {
    /// `hard`, `soft` or `complaint`.
    pub kind: String,
    /// Where it came from, e.g. `smtp` for a relay's reply to our attempt.
    pub source: String,
    /// The SMTP code, if there was one.
    pub code: Option<i32>,
    /// The reply as received.
    pub reply: String,
    /// The campaign it answered, while that campaign exists.
    pub campaign_name: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A change the subscriber made, such as unsubscribing from a message's link.
#[derive(Debug, Clone)]
pub struct EventEntry {
    /// `unsubscribed` or `blocklisted`.
    pub kind: String,
    /// How: `link`, `one-click`, …
    pub source: String,
    /// The list it concerned, while that list exists.
    pub list_name: Option<String>,
    /// The campaign it came from, while that campaign exists.
    pub campaign_name: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// The subscriber's `limit` most recent deliveries.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails, [`DbError::Corrupt`] for an
/// unknown stored status.
pub async fn deliveries(
    conn: &mut PgConnection,
    subscriber_id: i64,
    limit: i64,
) -> Result<Vec<DeliveryEntry>, DbError> {
    // deliveries_subscriber finds their rows; there are as many as campaigns
    // they were sent, so sorting them is cheap.
    let rows = sqlx::query!(
        r#"SELECT c.uuid, c.name, d.status, d.attempts, d.last_code, d.last_reply,
                  d.sent_at, d.updated_at
           FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
           WHERE d.subscriber_id = $1 AND d.kind = 'campaign'
           ORDER BY d.id DESC
           LIMIT $2"#,
        subscriber_id,
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DeliveryEntry {
                campaign: r.uuid,
                campaign_name: r.name,
                status: r.status.parse()?,
                attempts: r.attempts,
                last_code: r.last_code,
                last_reply: r.last_reply,
                sent_at: r.sent_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// The subscriber's `limit` most recent bounces and complaints.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn bounces(
    conn: &mut PgConnection,
    subscriber_id: i64,
    limit: i64,
) -> Result<Vec<BounceEntry>, DbError> {
    Ok(sqlx::query_as!(
        BounceEntry,
        r#"SELECT b.kind, b.source, b.code, b.reply, c.name AS "campaign_name?", b.created_at
           FROM bounces b LEFT JOIN campaigns c ON c.id = b.campaign_id
           WHERE b.subscriber_id = $1
           ORDER BY b.id DESC
           LIMIT $2"#,
        subscriber_id,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// The subscriber's `limit` most recent subscription events.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn events(
    conn: &mut PgConnection,
    subscriber_id: i64,
    limit: i64,
) -> Result<Vec<EventEntry>, DbError> {
    Ok(sqlx::query_as!(
        EventEntry,
        r#"SELECT e.kind, e.source, l.name AS "list_name?", c.name AS "campaign_name?", e.created_at
           FROM subscription_events e
           LEFT JOIN lists l ON l.id = e.list_id
           LEFT JOIN campaigns c ON c.id = e.campaign_id
           WHERE e.subscriber_id = $1
           ORDER BY e.id DESC
           LIMIT $2"#,
        subscriber_id,
        limit
    )
    .fetch_all(conn)
    .await?)
}
