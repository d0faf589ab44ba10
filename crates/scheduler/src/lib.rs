//! The scheduler: on every tick it starts campaigns that are due, expands
//! running campaigns' audiences into per-recipient deliveries in chunks,
//! puts deliveries whose lease expired back in the queue, marks campaigns
//! finished once nothing is left to send, and clears out old test sends and
//! the heartbeats of processes long gone. Each tick counts in its
//! heartbeat row.
//!
//! Only one scheduler acts at a time, across every process sharing the
//! database: a tick first takes a PostgreSQL advisory lock and does nothing
//! if another scheduler holds it. Correctness does not rest on the lock
//! alone: enqueueing is idempotent (a unique key on campaign and subscriber),
//! so even two schedulers acting at once cannot create a second delivery.
//!
//! # Layout
//!
//! - [`SchedulerSettings`] — tick interval and enqueue chunk size.
//! - [`tick`] — one pass, for tests and the loop.
//! - [`run`] — ticks until shut down.
//!
//! Dependency rule: depends on `postino-db` only; meets the web and sender
//! roles in database rows, never by calling them.

use std::time::Duration;

use chrono::Utc;
use postino_db::heartbeats::{self, Role};
use postino_db::{DbError, PgPool, campaigns, deliveries, test_sends, wake};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The advisory lock key that elects the acting scheduler ("postino" in ASCII).
const LEADER_LOCK: i64 = 0x0070_6f73_7469_6e6f;

/// Scheduler tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Milliseconds between ticks.
    pub tick_ms: u64,
    /// Most recipients enqueued per transaction. A campaign's first step is
    /// small (so senders start at once) and each next one doubles up to this.
    pub chunk_size: i64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            chunk_size: 50_000,
        }
    }
}

/// The first enqueue step's size: small, so the first deliveries are
/// queued within milliseconds of a campaign starting.
const FIRST_STEP: i64 = 1_000;

/// How long a settled test send is kept: its answer was read long before.
const TEST_SENDS_KEPT: Duration = Duration::from_secs(86_400);

/// How long a silent process keeps its heartbeat row.
const HEARTBEATS_KEPT: Duration = Duration::from_secs(3_600);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// False when another scheduler held the lock and this tick did nothing.
    pub acted: bool,
    /// Campaigns started because their time came.
    pub started: usize,
    /// Deliveries created.
    pub enqueued: u64,
    /// Deliveries put back in the queue after their lease expired.
    pub requeued: u64,
    /// Campaigns marked finished.
    pub finished: usize,
}

/// One scheduler pass.
///
/// # Errors
///
/// [`DbError`] if the database fails; the next tick tries again.
pub async fn tick(pool: &PgPool, settings: &SchedulerSettings) -> Result<TickReport, DbError> {
    // A session-level lock on a connection held for the whole tick: released
    // when the tick ends, or by PostgreSQL if this process dies mid-tick.
    let mut leader = pool.acquire().await?;
    let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut *leader)
        .await?;
    if !acquired {
        return Ok(TickReport::default());
    }
    let result = tick_as_leader(pool, settings).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LEADER_LOCK)
        .execute(&mut *leader)
        .await;
    if unlocked.is_err() {
        // Closing the connection is what releases the lock for certain.
        leader.detach();
    }
    result
}

async fn tick_as_leader(
    pool: &PgPool,
    settings: &SchedulerSettings,
) -> Result<TickReport, DbError> {
    let mut report = TickReport {
        acted: true,
        ..TickReport::default()
    };
    let mut conn = pool.acquire().await?;
    report.started = campaigns::start_due(&mut conn, Utc::now()).await?.len();
    report.requeued = deliveries::requeue_expired(&mut conn, Utc::now()).await?;
    let max_step = settings.chunk_size.max(1);
    for (campaign_id, mut cursor) in campaigns::pending_enqueue(&mut conn).await? {
        // Each step commits on its own, so senders start on the first chunk
        // while later ones are still being enqueued.
        let mut limit = FIRST_STEP.min(max_step);
        loop {
            let step = deliveries::enqueue_step(&mut conn, campaign_id, cursor, limit).await?;
            limit = (limit * 2).min(max_step);
            report.enqueued += step.inserted;
            match step.last {
                Some(last) => cursor = last,
                None => break,
            }
            // Stop early if someone paused or cancelled the campaign meanwhile.
            let still_running: bool =
                sqlx::query_scalar("SELECT status = 'running' FROM campaigns WHERE id = $1")
                    .bind(campaign_id)
                    .fetch_one(&mut *conn)
                    .await?;
            if !still_running {
                break;
            }
        }
    }
    report.finished = campaigns::finish_done(&mut conn).await?.len();
    test_sends::delete_settled(&mut conn, TEST_SENDS_KEPT).await?;
    heartbeats::forget_silent(&mut conn, HEARTBEATS_KEPT).await?;
    heartbeats::pass(&mut conn, heartbeats::this_process(), Role::Scheduler, 0).await?;
    Ok(report)
}

/// Ticks every `tick_ms`, and at once when notified on
/// [`postino_db::wake::SCHEDULER`], until `shutdown` is cancelled.
pub async fn run(pool: PgPool, settings: SchedulerSettings, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_millis(settings.tick_ms.max(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Without a listener (say the connection drops) the interval still
    // drives the scheduler; notifications only make it prompt.
    let mut listener = match wake::Listener::listen(&pool, wake::SCHEDULER).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "scheduler cannot listen for wake-ups; ticking only");
            None
        }
    };
    loop {
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            ok = woken => {
                if !ok {
                    listener = None;
                }
            }
        }
        match tick(&pool, &settings).await {
            Ok(report)
                if report.started + report.finished > 0
                    || report.enqueued + report.requeued > 0 =>
            {
                tracing::info!(
                    started = report.started,
                    enqueued = report.enqueued,
                    requeued = report.requeued,
                    finished = report.finished,
                    "scheduler tick"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
        }
    }
}
