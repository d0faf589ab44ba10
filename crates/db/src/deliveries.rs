//! The delivery queue: one row per recipient per campaign. The scheduler
//! fills it here; the sender drains it. Priority rows (test sends, see
//! [`crate::test_sends`]) share the table and are left out of everything
//! here that describes a campaign.

use chrono::{DateTime, Utc};
use postino_domain::{CampaignStatus, DeliveryStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// What one enqueue step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnqueueStep {
    /// The highest subscriber key this step considered; the next step starts
    /// after it. `None` when no eligible subscriber was left: enqueue is done.
    pub last: Option<i64>,
    /// Deliveries created (fewer than considered when some existed already).
    pub inserted: u64,
}

/// Enqueues the next `limit` eligible recipients of a campaign after
/// subscriber key `after`, and records progress on the campaign.
///
/// Eligible is the `campaign_audience` function (see its migration): enabled
/// subscribers with a membership on one of the campaign's lists that is
/// confirmed, or unconfirmed on a single opt-in list. Blocklisted
/// subscribers, unsubscribed memberships and unconfirmed ones on double
/// opt-in lists are never enqueued. A subscriber on several target lists
/// gets one delivery (DISTINCT here, and the unique key on (campaign_id,
/// subscriber_id) whoever else enqueues at the same time).
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn enqueue_step(
    conn: &mut PgConnection,
    campaign_id: i64,
    after: i64,
    limit: i64,
) -> Result<EnqueueStep, DbError> {
    // The candidates are memberships from the cursor on, in subscriber
    // order, merged with the subscribers' primary key from the same cursor,
    // so each step costs the same however far into a million-member
    // audience it is.
    let row = sqlx::query!(
        r#"WITH candidates AS (
               SELECT DISTINCT a.subscriber_id
               FROM campaign_audience($1, $2) a
               ORDER BY a.subscriber_id
               LIMIT $3
           ), inserted AS (
               INSERT INTO deliveries (campaign_id, subscriber_id)
               SELECT $1, c.subscriber_id FROM candidates c
               ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
               RETURNING 1
           ), progress AS (
               UPDATE campaigns SET
                   enqueue_cursor = COALESCE((SELECT max(subscriber_id) FROM candidates), enqueue_cursor),
                   enqueued_at = CASE WHEN NOT EXISTS (SELECT 1 FROM candidates) THEN now() ELSE enqueued_at END
               WHERE id = $1
           )
           SELECT (SELECT max(subscriber_id) FROM candidates) AS "last",
                  (SELECT count(*) FROM inserted) AS "inserted!""#,
        campaign_id,
        after,
        limit,
    )
    .fetch_one(conn)
    .await?;
    Ok(EnqueueStep {
        last: row.last,
        inserted: u64::try_from(row.inserted).unwrap_or(0),
    })
}

/// Deliveries of one campaign by state, and how fast they are going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting to be sent (including retries not yet due).
    pub queued: i64,
    /// Claimed by a sender right now.
    pub sending: i64,
    /// Accepted by the relay.
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
    /// Not sent on purpose (unsubscribed meanwhile, campaign cancelled).
    pub skipped: i64,
    /// Sent in the last 60 seconds.
    pub sent_last_minute: i64,
}

/// Counts for one campaign: its recipients' deliveries, not its test sends.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn counts(conn: &mut PgConnection, campaign_id: i64) -> Result<DeliveryCounts, DbError> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'queued') AS "queued!",
                  count(*) FILTER (WHERE status = 'sending') AS "sending!",
                  count(*) FILTER (WHERE status = 'sent') AS "sent!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!",
                  count(*) FILTER (WHERE status = 'skipped') AS "skipped!",
                  count(*) FILTER (WHERE status = 'sent' AND sent_at > now() - interval '60 seconds') AS "sent_last_minute!"
           FROM deliveries WHERE campaign_id = $1 AND kind = 'campaign'"#,
        campaign_id
    )
    .fetch_one(conn)
    .await?;
    Ok(DeliveryCounts {
        queued: row.queued,
        sending: row.sending,
        sent: row.sent,
        failed: row.failed,
        skipped: row.skipped,
        sent_last_minute: row.sent_last_minute,
    })
}

/// Puts deliveries whose lease expired (their worker died) back in the
/// queue, or marks them skipped if their campaign was cancelled meanwhile
/// (a test send goes back to the queue whatever its campaign's state).
/// Each counts the lost lease; one that has now lost
/// [`postino_domain::MAX_LOST_LEASES`] is failed with the reason, so a
/// delivery that kills senders stops doing so. Returns how many went back
/// to the queue.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn requeue_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64, DbError> {
    let row = sqlx::query!(
        r#"WITH expired AS (
               UPDATE deliveries d SET
                   status = CASE WHEN c.status = 'cancelled' AND d.kind = 'campaign' THEN 'skipped'
                                 WHEN d.lost_leases + 1 >= $2 THEN 'failed'
                                 ELSE 'queued' END,
                   last_reply = CASE WHEN c.status = 'cancelled' AND d.kind = 'campaign' THEN 'campaign cancelled'
                                     WHEN d.lost_leases + 1 >= $2 THEN
                                         'not tried again: a sender stopped ' || (d.lost_leases + 1)
                                         || ' times while this delivery was in its hands'
                                     ELSE d.last_reply END,
                   last_code = CASE WHEN d.lost_leases + 1 >= $2 THEN NULL ELSE d.last_code END,
                   lost_leases = d.lost_leases + 1,
                   lease_until = NULL,
                   updated_at = now()
               FROM campaigns c
               WHERE d.status = 'sending' AND d.lease_until < $1 AND c.id = d.campaign_id
               RETURNING d.status
           )
           SELECT count(*) FILTER (WHERE status = 'queued') AS "requeued!" FROM expired"#,
        now,
        i32::from(postino_domain::MAX_LOST_LEASES),
    )
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(row.requeued).unwrap_or(0))
}

/// One delivery with its recipient, for "who did not get it, and why".
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// The recipient's internal key, which orders the pages.
    pub subscriber_id: i64,
    /// The recipient's public id.
    pub subscriber: Uuid,
    /// The recipient's address.
    pub email: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// The last SMTP reply code, if any.
    pub last_code: Option<i32>,
    /// The last SMTP reply, connection error or reason for skipping.
    pub last_reply: Option<String>,
    /// When it is (or was) due.
    pub run_at: DateTime<Utc>,
    /// When the relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A page of a campaign's deliveries in recipient order, optionally in one
/// state, after recipient key `after`. Walks the (campaign, subscriber)
/// unique index, so every page costs the same.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails, [`DbError::Corrupt`] for an
/// unknown stored status.
pub async fn page(
    conn: &mut PgConnection,
    campaign_id: i64,
    status: Option<DeliveryStatus>,
    after: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT d.subscriber_id AS "subscriber_id!", s.uuid, s.email, d.status, d.attempts,
                  d.last_code, d.last_reply, d.run_at, d.sent_at, d.updated_at
           FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
           WHERE d.campaign_id = $1 AND d.subscriber_id > $2 AND d.kind = 'campaign'
             AND ($3::text IS NULL OR d.status = $3)
           ORDER BY d.subscriber_id
           LIMIT $4"#,
        campaign_id,
        after,
        status.map(DeliveryStatus::as_str),
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DeliveryRow {
                subscriber_id: r.subscriber_id,
                subscriber: r.uuid,
                email: r.email,
                status: r.status.parse()?,
                attempts: r.attempts,
                last_code: r.last_code,
                last_reply: r.last_reply,
                run_at: r.run_at,
                sent_at: r.sent_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// What [`retry_failed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// This many failed deliveries are queued again.
    Requeued(u64),
    /// The campaign is in a state that sends nothing (draft, scheduled,
    /// cancelled); nothing changed.
    NotSending(CampaignStatus),
}

/// Puts a campaign's failed deliveries back in the queue as new (no
/// attempts, due now), except those to subscribers blocklisted since, and
/// reopens the campaign if it had finished. Only for a running, paused or
/// finished campaign. Run it in a transaction: the campaign row is locked
/// so a concurrent cancel cannot interleave.
///
/// # Errors
///
/// [`DbError::NotFound`] for no such campaign, [`DbError::Database`] if a
/// statement fails.
pub async fn retry_failed(conn: &mut PgConnection, campaign_id: i64) -> Result<Retried, DbError> {
    let status: CampaignStatus = sqlx::query_scalar!(
        "SELECT status FROM campaigns WHERE id = $1 FOR UPDATE",
        campaign_id
    )
    .fetch_one(&mut *conn)
    .await?
    .parse()?;
    if !matches!(
        status,
        CampaignStatus::Running | CampaignStatus::Paused | CampaignStatus::Finished
    ) {
        return Ok(Retried::NotSending(status));
    }
    let requeued = sqlx::query!(
        r#"UPDATE deliveries d SET status = 'queued', attempts = 0, first_attempt_at = NULL,
                  run_at = now(), lease_until = NULL, updated_at = now()
           FROM subscribers s
           WHERE d.campaign_id = $1 AND d.status = 'failed' AND d.kind = 'campaign'
             AND s.id = d.subscriber_id AND s.status = 'enabled'"#,
        campaign_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if requeued > 0 {
        sqlx::query!(
            r#"UPDATE campaigns SET status = 'running', finished_at = NULL, updated_at = now()
               WHERE id = $1 AND status = 'finished'"#,
            campaign_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(Retried::Requeued(requeued))
}

/// Campaign messages sent on each of the last `days` days (UTC), oldest
/// first, with a zero for days without any. Test sends are not counted.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn sent_per_day(
    conn: &mut PgConnection,
    days: i32,
) -> Result<Vec<(chrono::NaiveDate, i64)>, DbError> {
    let since = Utc::now() - chrono::Duration::days(i64::from(days.max(1) - 1));
    // A message sent in the window belongs to a campaign that had not
    // finished before it, so only those campaigns' rows are read (through the
    // (campaign_id, subscriber_id) index) instead of the whole ledger, which
    // has no index on sent_at: one would tax the sender's every write.
    let rows = sqlx::query!(
        r#"WITH recent AS (
               SELECT id FROM campaigns
               WHERE status <> 'draft' AND (finished_at IS NULL OR finished_at >= date_trunc('day', $1::timestamptz))
           ),
           sent AS (
               SELECT date_trunc('day', d.sent_at) AS day, count(*) AS n
               FROM deliveries d
               WHERE d.campaign_id IN (SELECT id FROM recent) AND d.kind = 'campaign'
                 AND d.status = 'sent' AND d.sent_at >= date_trunc('day', $1::timestamptz)
               GROUP BY 1
           )
           SELECT g.day::date AS "day!", COALESCE(s.n, 0) AS "sent!"
           FROM generate_series(date_trunc('day', $1::timestamptz), date_trunc('day', now()), interval '1 day') AS g(day)
           LEFT JOIN sent s ON s.day = g.day
           ORDER BY g.day"#,
        since,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.sent)).collect())
}

/// One slot of a campaign's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePoint {
    /// Start of the slot.
    pub at: DateTime<Utc>,
    /// Delivered in the slot.
    pub sent: i64,
    /// Given up on in the slot (bounced, refused, or retried too long).
    pub failed: i64,
}

/// A campaign's outcomes over time, in slots of equal length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Length of a slot.
    pub slot_secs: i64,
    /// Every slot from the first outcome to the last, empty ones included.
    pub points: Vec<TimelinePoint>,
}

/// Slot lengths a timeline may use: whole minutes, hours or days, so the
/// slots start at times people read easily.
const SLOTS: [i64; 9] = [
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
];

/// The most slots a timeline has, so a chart stays readable on a phone.
pub const TIMELINE_MAX_SLOTS: i64 = 60;

/// The shortest slot that covers `span_secs` in at most
/// [`TIMELINE_MAX_SLOTS`] slots (days for anything longer).
#[must_use]
pub fn timeline_slot(span_secs: i64) -> i64 {
    SLOTS
        .into_iter()
        .find(|slot| span_secs / slot < TIMELINE_MAX_SLOTS)
        .unwrap_or(86_400)
}

/// When `campaign_id`'s deliveries were delivered or given up on, in slots
/// sized to the span from `from` to `to` (the campaign's start and its end,
/// or now). Outcomes outside that span (a retry that ended after a resume)
/// widen it.
///
/// It reads the campaign's rows through the (campaign_id, subscriber_id)
/// index once: about 0.25 s for a million recipients (BENCHMARKS.md), so
/// pages draw it once rather than poll it.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn timeline(
    conn: &mut PgConnection,
    campaign_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Timeline, DbError> {
    let rows = sqlx::query!(
        r#"SELECT date_trunc('minute', COALESCE(sent_at, updated_at)) AS "at!",
                  count(*) FILTER (WHERE status = 'sent') AS "sent!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!"
           FROM deliveries
           WHERE campaign_id = $1 AND kind = 'campaign' AND status IN ('sent', 'failed')
           GROUP BY 1 ORDER BY 1"#,
        campaign_id
    )
    .fetch_all(conn)
    .await?;
    let minutes: Vec<TimelinePoint> = rows
        .into_iter()
        .map(|r| TimelinePoint {
            at: r.at,
            sent: r.sent,
            failed: r.failed,
        })
        .collect();
    Ok(into_slots(&minutes, from, to))
}

/// Gathers per-minute counts into equal slots covering `from..=to` and every
/// point, with zeros where nothing happened.
fn into_slots(minutes: &[TimelinePoint], from: DateTime<Utc>, to: DateTime<Utc>) -> Timeline {
    let first = minutes.first().map_or(from, |p| p.at.min(from)).timestamp();
    let last = minutes.last().map_or(to, |p| p.at.max(to)).timestamp();
    let slot_secs = timeline_slot(last - first);
    let origin = first - first.rem_euclid(slot_secs);
    let count = (last - origin) / slot_secs + 1;
    let mut points: Vec<TimelinePoint> = (0..count)
        .map(|i| TimelinePoint {
            at: DateTime::from_timestamp(origin + i * slot_secs, 0).unwrap_or(from),
            sent: 0,
            failed: 0,
        })
        .collect();
    for p in minutes {
        let i = (p.at.timestamp() - origin) / slot_secs;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| points.get_mut(i)) {
            slot.sent += p.sent;
            slot.failed += p.failed;
        }
    }
    Timeline { slot_secs, points }
}

#[cfg(test)]
mod timeline_tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    #[test]
    fn slots_grow_with_the_span_and_stay_few() {
        assert_eq!(timeline_slot(0), 60);
        assert_eq!(timeline_slot(30 * 60), 60);
        assert_eq!(timeline_slot(2 * 3600), 300);
        assert_eq!(timeline_slot(20 * 3600), 1800);
        assert_eq!(timeline_slot(3 * 86_400), 3 * 3600);
        assert_eq!(timeline_slot(400 * 86_400), 86_400);
        for span in [0, 59, 3599, 86_399, 7 * 86_400] {
            assert!(span / timeline_slot(span) < TIMELINE_MAX_SLOTS, "{span}");
        }
    }

    #[test]
    fn minutes_are_summed_into_slots_with_empty_ones_between() {
        let minutes = [
            TimelinePoint {
                at: at(0),
                sent: 5,
                failed: 1,
            },
            TimelinePoint {
                at: at(1),
                sent: 7,
                failed: 0,
            },
            TimelinePoint {
                at: at(119),
                sent: 2,
                failed: 3,
            },
        ];
        let t = into_slots(&minutes, at(0), at(119));
        assert_eq!(t.slot_secs, 300);
        assert_eq!(t.points.iter().map(|p| p.sent).sum::<i64>(), 14);
        assert_eq!(t.points.iter().map(|p| p.failed).sum::<i64>(), 4);
        assert_eq!(t.points.first().unwrap().sent, 12);
        assert_eq!(t.points.last().unwrap().failed, 3);
        assert!(
            t.points
                .windows(2)
                .all(|w| (w[1].at - w[0].at).num_seconds() == 300)
        );
        assert!(t.points.first().unwrap().at <= at(0));
    }

    #[test]
    fn a_campaign_with_no_outcomes_yet_has_empty_slots_over_its_span() {
        let t = into_slots(&[], at(0), at(10));
        assert_eq!(t.slot_secs, 60);
        assert_eq!(t.points.len(), 11);
        assert!(t.points.iter().all(|p| p.sent == 0 && p.failed == 0));
    }
}
