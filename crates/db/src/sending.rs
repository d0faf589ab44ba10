//! The sender's side of the delivery queue: claim due deliveries under a
//! lease, and record what became of them in batches.
//!
//! There are two claims. [`claim`] takes bulk work, campaign recipients'
//! copies, an equal share per running campaign. [`claim_priority`] takes
//! the priority lane (test sends), whatever the campaign's state; the
//! sender runs it before every bulk claim, and the bulk claim never takes
//! a priority row, so a test send never waits behind a campaign's queue.
//!
//! A claim is identified by the delivery's attempt number: a result is
//! written only while the delivery is still `sending` under that attempt, so
//! a worker whose lease expired (and whose delivery someone else claimed)
//! cannot overwrite the newer claim's outcome.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postino_domain::DeliveryKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A campaign as the sender caches it: recompiled when `updated_at` moves.
/// The running ones come from [`running_campaigns`]; a priority claim names
/// the campaigns of its deliveries, whatever their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunningCampaign {
    /// Internal key.
    pub id: i64,
    /// Last change to the campaign.
    pub updated_at: DateTime<Utc>,
}

/// The campaigns senders may claim for now.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn running_campaigns(conn: &mut PgConnection) -> Result<Vec<RunningCampaign>, DbError> {
    let rows = sqlx::query_as!(
        RunningCampaign,
        "SELECT id, updated_at FROM campaigns WHERE status = 'running' ORDER BY id"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// One claimed delivery with what rendering it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Delivery key.
    pub id: i64,
    /// Campaign key.
    pub campaign_id: i64,
    /// Bulk or priority, which decides how a refusal is settled.
    pub kind: DeliveryKind,
    /// This claim's attempt number (1 for the first).
    pub attempt: i32,
    /// When it was due: with `id`, its place in the campaign's queue.
    pub run_at: DateTime<Utc>,
    /// When the first attempt was claimed, for the give-up age.
    pub first_attempt_at: DateTime<Utc>,
    /// Where it goes, as stored (validated on the way in).
    pub email: String,
    /// The subscriber whose merge fields it is rendered with; `None` for a
    /// test send to an address no subscriber has (rendered with the sample
    /// subscriber).
    pub subscriber: Option<ClaimedSubscriber>,
    /// The list it goes out through, for `List-Id`. For a campaign
    /// recipient, the first target list they are eligible through; `None`
    /// when they are on none any more (unsubscribed after enqueue) or are
    /// blocklisted: the delivery is to be skipped. For a test send, the
    /// campaign's first list, if it has one.
    pub list_uuid: Option<Uuid>,
    /// Senders that died holding it before; more than 0 makes it a suspect.
    pub lost_leases: i16,
}

/// The subscriber a claimed delivery is for, as templates see them.
#[derive(Debug, Clone)]
pub struct ClaimedSubscriber {
    /// Public id.
    pub uuid: Uuid,
    /// Display name.
    pub name: String,
    /// Attributes (a JSON object).
    pub attributes: serde_json::Value,
    /// When the subscriber was created.
    pub created_at: DateTime<Utc>,
}

/// A claimed priority delivery and the version of its campaign, which may
/// be in any state (test sends are mostly of drafts), so the sender can
/// compile it without waiting for it to run.
#[derive(Debug, Clone)]
pub struct PriorityClaimed {
    /// The claim.
    pub claimed: Claimed,
    /// Its campaign, keyed by its last change.
    pub campaign: RunningCampaign,
}

/// Where to resume claiming a campaign's queue: after the last delivery
/// claimed, by due time and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimFrom {
    /// Campaign key.
    pub campaign: i64,
    /// Due time and key of the last delivery claimed; `None` starts at the
    /// head of the queue.
    pub after: Option<(DateTime<Utc>, i64)>,
}

/// Claims up to `per_campaign` due bulk deliveries of each campaign, marking
/// them `sending` until `lease` from now, and with `suspect` also the first due
/// suspect of any of them (a delivery a dead sender held, see
/// [`crate::deliveries::requeue_expired`]). Suspects come only that way,
/// one at a time, so the caller can keep at most one in flight. Rows other senders hold are skipped,
/// not waited for. Taking an equal share from each running campaign keeps a
/// large campaign from starving a small one started after it.
///
/// Resuming after the last claim matters on a large queue: the claimed rows
/// leave dead entries at the head of the queue index until vacuum, and a
/// claim from the head would walk all of them every time. A resumed claim
/// misses rows put back before its position (released by a paused or
/// stopping sender); the caller starts from the head again whenever a
/// resumed claim comes back short, which picks them up.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn claim(
    conn: &mut PgConnection,
    from: &[ClaimFrom],
    per_campaign: i64,
    lease: Duration,
    suspect: bool,
) -> Result<Vec<Claimed>, DbError> {
    let campaigns: Vec<i64> = from.iter().map(|f| f.campaign).collect();
    let after_run_at: Vec<DateTime<Utc>> = from
        .iter()
        .map(|f| f.after.map_or(DateTime::<Utc>::UNIX_EPOCH, |(t, _)| t))
        .collect();
    let after_id: Vec<i64> = from
        .iter()
        .map(|f| f.after.map_or(0, |(_, id)| id))
        .collect();
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT q.id
               FROM unnest($1::bigint[], $4::timestamptz[], $5::bigint[]) AS c(id, after_run_at, after_id)
               CROSS JOIN LATERAL (
                   SELECT d.id FROM deliveries d
                   WHERE d.campaign_id = c.id AND d.status = 'queued' AND d.run_at <= now()
                     AND (d.run_at, d.id) > (c.after_run_at, c.after_id)
                     AND d.lost_leases = 0 AND d.kind = 'campaign'
                   ORDER BY d.run_at, d.id
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED
               ) q
           ), suspect AS (
               -- Uses deliveries_suspects, which is empty unless a sender died.
               SELECT d.id FROM deliveries d
               WHERE $6 AND d.campaign_id = ANY($1) AND d.status = 'queued'
                 AND d.lost_leases > 0 AND d.run_at <= now() AND d.kind = 'campaign'
               ORDER BY d.run_at, d.id
               LIMIT 1
               FOR UPDATE SKIP LOCKED
           ), picked AS (
               SELECT id FROM due UNION ALL SELECT id FROM suspect
           ), claimed AS (
               UPDATE deliveries d SET
                   status = 'sending',
                   lease_until = now() + make_interval(secs => $3),
                   attempts = d.attempts + 1,
                   first_attempt_at = COALESCE(d.first_attempt_at, now()),
                   updated_at = now()
               FROM picked WHERE d.id = picked.id
               RETURNING d.id, d.campaign_id, d.subscriber_id, d.attempts, d.first_attempt_at, d.run_at,
                         d.lost_leases
           )
           SELECT c.id AS "id!", c.campaign_id AS "campaign_id!", c.attempts AS "attempt!",
                  c.run_at AS "run_at!",
                  c.first_attempt_at AS "first_attempt_at!",
                  s.uuid AS subscriber_uuid, s.email, s.name, s.attributes,
                  s.created_at AS subscribed_at,
                  -- Still in the audience at send time, and through which
                  -- list: from just below their key, only their memberships.
                  (SELECT a.list_uuid FROM campaign_audience(c.campaign_id, s.id - 1) a
                   WHERE a.subscriber_id = s.id
                   ORDER BY a.list_id
                   LIMIT 1) AS list_uuid,
                  c.lost_leases AS "lost_leases!"
           FROM claimed c JOIN subscribers s ON s.id = c.subscriber_id
           ORDER BY c.id"#,
        &campaigns,
        per_campaign,
        lease.as_secs_f64(),
        &after_run_at,
        &after_id,
        suspect,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            id: r.id,
            campaign_id: r.campaign_id,
            kind: DeliveryKind::Campaign,
            attempt: r.attempt,
            run_at: r.run_at,
            first_attempt_at: r.first_attempt_at,
            email: r.email,
            subscriber: Some(ClaimedSubscriber {
                uuid: r.subscriber_uuid,
                name: r.name,
                attributes: r.attributes,
                created_at: r.subscribed_at,
            }),
            list_uuid: r.list_uuid,
            lost_leases: r.lost_leases,
        })
        .collect())
}

/// Claims up to `limit` due priority deliveries (test sends), oldest first,
/// of campaigns in any state, marking them `sending` until `lease` from
/// now; with `suspect` also the first due priority suspect (see [`claim`]).
/// A test send to an address some subscriber has is rendered with that
/// subscriber's merge fields, whatever their status: the unsubscribe and
/// blocklist rules are for campaign mail.
///
/// It reads the `deliveries_priority` index, which holds only queued
/// priority rows, so it costs the same beside a queue of a million bulk
/// rows as beside an empty one.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails, [`DbError::Corrupt`] for
/// an unknown stored kind.
pub async fn claim_priority(
    conn: &mut PgConnection,
    limit: i64,
    lease: Duration,
    suspect: bool,
) -> Result<Vec<PriorityClaimed>, DbError> {
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT d.id FROM deliveries d
               WHERE d.status = 'queued' AND d.kind <> 'campaign' AND d.run_at <= now()
                 AND d.lost_leases = 0
               ORDER BY d.run_at, d.id
               LIMIT $1
               FOR UPDATE SKIP LOCKED
           ), suspect AS (
               SELECT d.id FROM deliveries d
               WHERE $3 AND d.status = 'queued' AND d.kind <> 'campaign' AND d.run_at <= now()
                 AND d.lost_leases > 0
               ORDER BY d.run_at, d.id
               LIMIT 1
               FOR UPDATE SKIP LOCKED
           ), picked AS (
               SELECT id FROM due UNION ALL SELECT id FROM suspect
           ), claimed AS (
               UPDATE deliveries d SET
                   status = 'sending',
                   lease_until = now() + make_interval(secs => $2),
                   attempts = d.attempts + 1,
                   first_attempt_at = COALESCE(d.first_attempt_at, now()),
                   updated_at = now()
               FROM picked WHERE d.id = picked.id
               RETURNING d.id, d.campaign_id, d.kind, d.subscriber_id, d.email, d.attempts,
                         d.first_attempt_at, d.run_at, d.lost_leases
           )
           SELECT c.id AS "id!", c.campaign_id AS "campaign_id!", c.kind AS "kind!",
                  c.attempts AS "attempt!", c.run_at AS "run_at!",
                  c.first_attempt_at AS "first_attempt_at!",
                  COALESCE(c.email, s.email) AS "email!",
                  s.uuid AS "subscriber_uuid?", s.name AS "name?", s.attributes AS "attributes?",
                  s.created_at AS "subscribed_at?",
                  (SELECT l.uuid FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
                   WHERE cl.campaign_id = c.campaign_id
                   ORDER BY l.id
                   LIMIT 1) AS list_uuid,
                  c.lost_leases AS "lost_leases!",
                  k.updated_at AS "campaign_updated_at!"
           FROM claimed c
           JOIN campaigns k ON k.id = c.campaign_id
           LEFT JOIN subscribers s ON s.id = COALESCE(
               c.subscriber_id,
               (SELECT x.id FROM subscribers x WHERE lower(x.email) = lower(c.email)))
           ORDER BY c.run_at, c.id"#,
        limit,
        lease.as_secs_f64(),
        suspect,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let subscriber = match (r.subscriber_uuid, r.name, r.attributes, r.subscribed_at) {
                (Some(uuid), Some(name), Some(attributes), Some(created_at)) => {
                    Some(ClaimedSubscriber {
                        uuid,
                        name,
                        attributes,
                        created_at,
                    })
                }
                _ => None,
            };
            Ok(PriorityClaimed {
                claimed: Claimed {
                    id: r.id,
                    campaign_id: r.campaign_id,
                    kind: r.kind.parse()?,
                    attempt: r.attempt,
                    run_at: r.run_at,
                    first_attempt_at: r.first_attempt_at,
                    email: r.email,
                    subscriber,
                    list_uuid: r.list_uuid,
                    lost_leases: r.lost_leases,
                },
                campaign: RunningCampaign {
                    id: r.campaign_id,
                    updated_at: r.campaign_updated_at,
                },
            })
        })
        .collect()
}

/// What became of one claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The relay accepted it.
    Sent {
        /// Reply code.
        code: u16,
        /// Reply text (often with the relay's queue id).
        reply: String,
    },
    /// Refused for now; try again at `retry_at`.
    Retry {
        /// Reply code, if the server answered.
        code: Option<u16>,
        /// Reply text or connection error.
        reply: String,
        /// When it is due again.
        retry_at: DateTime<Utc>,
    },
    /// Given up on. `bounce` records a hard bounce (a permanent refusal by
    /// the server); without it, retries ran out or the message could not be
    /// built.
    Failed {
        /// Reply code, if any.
        code: Option<u16>,
        /// Why.
        reply: String,
        /// Whether this was a permanent refusal to count as a hard bounce.
        bounce: bool,
    },
    /// Not sent on purpose (unsubscribed after enqueue, blocklisted).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Not attempted: the campaign was paused, or the worker is stopping.
    /// Goes back to the queue as it was (skipped instead if the campaign
    /// was cancelled meanwhile, unless it is a test send).
    Released,
    /// Not attempted because a limit on its recipient's domain is reached:
    /// back to the queue like [`Outcome::Released`], due again at `until`.
    Deferred {
        /// When it is due again.
        until: DateTime<Utc>,
    },
}

/// A result to record for one claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Delivery key.
    pub id: i64,
    /// The claim's attempt number.
    pub attempt: i32,
    /// What happened.
    pub outcome: Outcome,
}

/// What [`record`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordReport {
    /// Deliveries updated (claims that had expired and moved on are not).
    pub updated: u64,
    /// Hard bounces recorded.
    pub bounces: u64,
    /// Subscribers blocklisted because of them.
    pub blocklisted: u64,
}

/// Writes a batch of results: one statement for every delivery, one for
/// hard bounces, one for blocklisting, one for released claims. Run it in a
/// transaction so a batch lands whole.
///
/// A subscriber is blocklisted once they have `blocklist_after` hard bounces.
///
/// # Errors
///
/// [`DbError::Database`] if a statement fails.
pub async fn record(
    conn: &mut PgConnection,
    results: &[Recorded],
    blocklist_after: i64,
) -> Result<RecordReport, DbError> {
    let mut ids = Vec::with_capacity(results.len());
    let mut attempts = Vec::with_capacity(results.len());
    let mut statuses = Vec::with_capacity(results.len());
    let mut codes: Vec<Option<i32>> = Vec::with_capacity(results.len());
    let mut replies = Vec::with_capacity(results.len());
    let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(results.len());
    let mut bounced = Vec::new();
    let mut released = Vec::new();
    let mut released_attempts = Vec::new();
    let mut released_until: Vec<Option<DateTime<Utc>>> = Vec::new();
    for r in results {
        let (status, code, reply, run_at) = match &r.outcome {
            Outcome::Sent { code, reply } => ("sent", Some(*code), reply.as_str(), None),
            Outcome::Retry {
                code,
                reply,
                retry_at,
            } => ("queued", *code, reply.as_str(), Some(*retry_at)),
            Outcome::Failed {
                code,
                reply,
                bounce,
            } => {
                if *bounce {
                    bounced.push(r.id);
                }
                ("failed", *code, reply.as_str(), None)
            }
            Outcome::Skipped { reason } => ("skipped", None, reason.as_str(), None),
            Outcome::Released => {
                released.push(r.id);
                released_attempts.push(r.attempt);
                released_until.push(None);
                continue;
            }
            Outcome::Deferred { until } => {
                released.push(r.id);
                released_attempts.push(r.attempt);
                released_until.push(Some(*until));
                continue;
            }
        };
        ids.push(r.id);
        attempts.push(r.attempt);
        statuses.push(status);
        codes.push(code.map(i32::from));
        replies.push(reply);
        run_ats.push(run_at);
    }
    let mut report = RecordReport::default();
    if !ids.is_empty() {
        let done = sqlx::query!(
            r#"UPDATE deliveries d SET
                   status = u.status,
                   last_code = u.code,
                   last_reply = u.reply,
                   run_at = COALESCE(u.run_at, d.run_at),
                   sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE d.sent_at END,
                   lease_until = NULL,
                   updated_at = now()
               FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::text[], $6::timestamptz[])
                    AS u(id, attempt, status, code, reply, run_at)
               WHERE d.id = u.id AND d.status = 'sending' AND d.attempts = u.attempt"#,
            &ids,
            &attempts,
            &statuses as &[&str],
            &codes as &[Option<i32>],
            &replies as &[&str],
            &run_ats as &[Option<DateTime<Utc>>],
        )
        .execute(&mut *conn)
        .await?;
        report.updated += done.rows_affected();
    }
    if !bounced.is_empty() {
        let row = sqlx::query!(
            r#"WITH bounced AS (
                   INSERT INTO bounces (subscriber_id, campaign_id, delivery_id, kind, source, code, reply)
                   SELECT d.subscriber_id, d.campaign_id, d.id, 'hard', 'smtp', d.last_code, COALESCE(d.last_reply, '')
                   FROM deliveries d WHERE d.id = ANY($1) AND d.status = 'failed' AND d.kind = 'campaign'
                   RETURNING subscriber_id
               ), blocked AS (
                   UPDATE subscribers s SET status = 'blocklisted', updated_at = now()
                   WHERE s.id IN (SELECT subscriber_id FROM bounced)
                     AND s.status = 'enabled'
                     AND (SELECT count(*) FROM bounces b WHERE b.subscriber_id = s.id AND b.kind = 'hard')
                         + (SELECT count(*) FROM bounced n WHERE n.subscriber_id = s.id) >= $2
                   RETURNING s.id
               ), events AS (
                   INSERT INTO subscription_events (subscriber_id, kind, source)
                   SELECT id, 'blocklisted', 'bounces' FROM blocked
               )
               SELECT (SELECT count(*) FROM bounced) AS "bounces!",
                      (SELECT count(*) FROM blocked) AS "blocklisted!""#,
            &bounced,
            blocklist_after,
        )
        .fetch_one(&mut *conn)
        .await?;
        report.bounces = u64::try_from(row.bounces).unwrap_or(0);
        report.blocklisted = u64::try_from(row.blocklisted).unwrap_or(0);
    }
    if !released.is_empty() {
        let done = sqlx::query!(
            r#"UPDATE deliveries d SET
                   status = CASE WHEN c.status = 'cancelled' AND d.kind = 'campaign' THEN 'skipped'
                                 ELSE 'queued' END,
                   last_reply = CASE WHEN c.status = 'cancelled' AND d.kind = 'campaign' THEN 'campaign cancelled'
                                     ELSE d.last_reply END,
                   attempts = d.attempts - 1,
                   first_attempt_at = CASE WHEN d.attempts = 1 THEN NULL ELSE d.first_attempt_at END,
                   run_at = COALESCE(u.run_at, d.run_at),
                   lease_until = NULL,
                   updated_at = now()
               FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS u(id, attempt, run_at), campaigns c
               WHERE d.id = u.id AND d.status = 'sending' AND d.attempts = u.attempt
                 AND c.id = d.campaign_id"#,
            &released,
            &released_attempts,
            &released_until as &[Option<DateTime<Utc>>],
        )
        .execute(&mut *conn)
        .await?;
        report.updated += done.rows_affected();
    }
    Ok(report)
}
