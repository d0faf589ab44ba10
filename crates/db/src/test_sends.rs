//! Test sends: a campaign sent to a few typed-in addresses, to see it
//! arrive. They are deliveries of kind `test` in the sender's priority lane
//! (see [`crate::sending::claim_priority`]), so they go through the
//! campaign's relay group, under the same limits and with the same DKIM key
//! as its bulk mail, and nothing but the sender speaks SMTP. Each is tried
//! once: a refusal is recorded as the answer, never retried, bounced or
//! counted against the campaign.
//!
//! The caller enqueues and then reads [`results`] until every one is
//! settled or it stops waiting; one still queued then is sent whenever a
//! sender takes it.

use std::time::Duration;

use postino_domain::{DeliveryStatus, EmailAddress};
use sqlx::PgConnection;

use crate::{DbError, wake};

/// One test send as it stands.
#[derive(Debug, Clone)]
pub struct TestSend {
    /// Delivery key.
    pub id: i64,
    /// The address it goes to.
    pub email: String,
    /// Queued or sending until a sender settles it as sent or failed.
    pub status: DeliveryStatus,
    /// The SMTP reply code, once the relay answered.
    pub code: Option<i32>,
    /// The SMTP reply, the connection error, or why it could not be sent.
    pub reply: Option<String>,
}

/// Queues a test send of campaign `campaign_id` to each of `emails` (in
/// any state: drafts are what is mostly tested) and wakes the senders.
/// Returns the deliveries' keys, in the order of `emails`. Inside a
/// transaction, the senders are woken when it commits.
///
/// # Errors
///
/// [`DbError::MissingReference`] for a campaign that does not exist,
/// [`DbError::Database`] if a statement fails.
pub async fn enqueue(
    conn: &mut PgConnection,
    campaign_id: i64,
    emails: &[EmailAddress],
) -> Result<Vec<i64>, DbError> {
    let emails: Vec<&str> = emails.iter().map(EmailAddress::as_str).collect();
    // Keys are drawn in insertion order, which is the order of the
    // addresses, so sorting the keys puts them back in that order.
    let mut ids = sqlx::query_scalar!(
        r#"INSERT INTO deliveries (campaign_id, kind, email)
           SELECT $1, 'test', u.email
           FROM unnest($2::text[]) WITH ORDINALITY AS u(email, n)
           ORDER BY u.n
           RETURNING id"#,
        campaign_id,
        &emails as &[&str],
    )
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    wake::notify(conn, wake::SENDER).await?;
    Ok(ids)
}

/// The test sends `ids` as they stand, in the order of `ids`; a key that is
/// not a test send (or whose campaign was deleted since) is left out.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails, [`DbError::Corrupt`] for an
/// unknown stored status.
pub async fn results(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<TestSend>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT d.id, d.email AS "email!", d.status, d.last_code, d.last_reply
           FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n)
           JOIN deliveries d ON d.id = u.id
           WHERE d.kind = 'test'
           ORDER BY u.n"#,
        ids,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(TestSend {
                id: r.id,
                email: r.email,
                status: r.status.parse()?,
                code: r.last_code,
                reply: r.last_reply,
            })
        })
        .collect()
}

/// Deletes test sends settled more than `age` ago: their answer was read
/// when they were sent, and they are nobody's delivery history. Returns how
/// many went.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn delete_settled(conn: &mut PgConnection, age: Duration) -> Result<u64, DbError> {
    // deliveries_priority_age holds priority rows only, so this reads none
    // of the bulk queue.
    let done = sqlx::query!(
        r#"DELETE FROM deliveries
           WHERE kind = 'test' AND status IN ('sent', 'failed', 'skipped')
             AND updated_at < now() - make_interval(secs => $1)"#,
        age.as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
