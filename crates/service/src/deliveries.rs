//! A campaign's per-recipient outcomes, and retrying the failures.

use postino_db::PgConnection;
use postino_db::deliveries::{self, DeliveryRow, Retried};
use postino_domain::{Cursor, DeliveryStatus, PageSize};
use uuid::Uuid;

use crate::{Error, Result, campaigns};

/// One page of campaign `id`'s deliveries after subscriber key `after`, and
/// the cursor of the next page if there is one.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such campaign.
pub async fn page(
    conn: &mut PgConnection,
    id: Uuid,
    status: Option<DeliveryStatus>,
    after: i64,
    limit: PageSize,
) -> Result<(Vec<DeliveryRow>, Option<String>)> {
    let campaign = campaigns::get(conn, id).await?;
    // One row more than asked says whether another page follows.
    let mut rows = deliveries::page(conn, campaign.id, status, after, limit.get() + 1).await?;
    let size = usize::try_from(limit.get()).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let next_cursor = more
        .then(|| rows.last().map(|r| Cursor::after(r.subscriber_id).encode()))
        .flatten();
    Ok((rows, next_cursor))
}

/// Queues campaign `id`'s failed deliveries again, as new, reopening the
/// campaign if it had finished; says how many went back. Recipients
/// blocklisted meanwhile are left out.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Conflict`] unless the campaign is running,
/// paused or finished.
pub async fn retry(conn: &mut PgConnection, id: Uuid) -> Result<u64> {
    let campaign = campaigns::get(conn, id).await?;
    match deliveries::retry_failed(conn, campaign.id).await? {
        Retried::Requeued(requeued) => Ok(requeued),
        Retried::NotSending(status) => Err(Error::conflict(
            "status",
            format!(
                "the campaign is {status}; only a running, paused or finished campaign can retry its failures"
            ),
        )),
    }
}
