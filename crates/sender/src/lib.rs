//! The sender: drains the delivery queue through SMTP.
//!
//! One claimer takes due deliveries of running campaigns in batches (`FOR
//! UPDATE SKIP LOCKED`, an equal share per campaign) under a lease, and
//! spreads them by weight over the relays of each campaign's group that are
//! in rotation. Before every bulk claim, and whenever a notification says
//! one was queued, it claims priority mail (test sends, of campaigns in any
//! state), which the workers take ahead of bulk jobs: through the same
//! relays, under the same limits, signed with the same keys, but never
//! waiting behind a campaign. Each relay has a lane: a bounded queue and its workers. Each
//! worker owns one SMTP session, so a relay sees at most its
//! `max_connections` sessions (shared out between the sender processes
//! alive); it takes a job only when the relay's rate limits allow, passes
//! the recipient's domain gate, renders the message from the campaign
//! compiled once, sends it, and passes the result on. A recorder writes
//! results in batches, one transaction each.
//!
//! Rate limits are sliding windows counted in PostgreSQL, so they hold
//! across processes. A relay that cannot be reached is taken out of
//! rotation by its circuit breaker; its jobs go to the others. A campaign
//! whose attempts fail in a burst, or that no relay will ever take (bad
//! credentials, an empty group), pauses itself and says why.
//!
//! Crash safety comes from the lease: a claim that is never recorded (the
//! process died) expires, and the scheduler puts the delivery back in the
//! queue. Duplicates are bounded by what was claimed and unrecorded at the
//! crash. Nothing coordinates senders but rows and locks, so any number of
//! sender processes can share one database.
//!
//! # Layout
//!
//! - [`SenderSettings`] — `[sender]`: batch sizes, lease, retry policy, bounces.
//! - [`run`] — the sender until shut down: reload, claim, dispatch.
//! - `claimer` — priority and bulk claims, and the campaigns they need.
//! - `wakeup` — the notification that priority mail is waiting.
//! - `lanes` — one lane per relay: workers, queues, weighted dispatch.
//! - `relay` — what one relay's workers share: settings, limits, breaker.
//! - `worker` — one SMTP session, one message at a time; how replies settle.
//! - `job` — a claimed delivery with its campaign, rendered in batches.
//! - `shared` — what the claimer and all workers share.
//! - `policy` — the global rate, domain rules, this process's share.
//! - `rates` — sliding-window limits shared through PostgreSQL.
//! - `domains` — the per-domain gate: in flight, per minute, deferrals.
//! - `breaker` — a relay's circuit breaker.
//! - `alarm` — failure bursts that pause a campaign.
//! - `prepared` — compiled campaigns and the set of running ones.
//! - `recorder` — batched result writes.
//! - `dkim` — the DKIM keys the workers sign with, reread with the relays.
//!
//! Each module imports only those below it: `lanes` the workers it
//! spawns, `worker` the relay, job and shared state it works with, and
//! none of those back.
//!
//! Dependency rule: depends on `postino-db`, `postino-compose`,
//! `postino-smtp` and `postino-domain`; meets the web and scheduler roles in
//! database rows only.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod alarm;
mod breaker;
mod claimer;
mod dkim;
mod domains;
mod job;
mod lanes;
mod policy;
mod prepared;
mod rates;
mod recorder;
mod relay;
mod settings;
mod shared;
mod wakeup;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use postino_compose::Addressing;
use postino_db::heartbeats::{self, Role};
use postino_db::sending::{Outcome, Recorded};
use postino_db::smtp_servers::SmtpServer;
use postino_db::{DbError, PgPool, campaigns, sending, smtp_servers};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use settings::SenderSettings;

use alarm::{Alarm, AlarmSettings};
use breaker::BreakerSettings;
use claimer::Claimer;
use domains::Domains;
use lanes::{Lanes, Wiring};
use postino_sandbox::Sandbox;
use prepared::Running;
use rates::Rates;
use shared::{Shared, Suspect, Throttle};
use wakeup::Wakeup;

/// How often the running set is reread even while the workers are busy,
/// which bounds how long a paused campaign keeps sending.
const RUNNING_REFRESH: Duration = Duration::from_millis(500);
/// How long the claimer waits for room in the lanes before looking again.
const ROOM_POLL: Duration = Duration::from_millis(5);
/// How long a priority job no lane of this process can take now (full, or
/// no connection slot here) waits before it is claimed again.
const PRIORITY_RETRY: Duration = Duration::from_secs(1);

async fn refresh_running(pool: &PgPool, shared: &Shared) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    let running = sending::running_campaigns(&mut conn).await?;
    shared.running.set(running.iter().map(|c| c.id));
    Ok(())
}

/// Writes the pauses workers and the claimer asked for.
async fn apply_pauses(pool: &PgPool, pauses: &mut mpsc::UnboundedReceiver<(i64, String)>) {
    while let Ok((campaign, reason)) = pauses.try_recv() {
        let paused = match pool.acquire().await {
            Ok(mut conn) => campaigns::pause_with_reason(&mut conn, campaign, &reason).await,
            Err(e) => Err(e.into()),
        };
        match paused {
            Ok(true) => {
                tracing::warn!(campaign, reason = %reason, "campaign paused itself");
                metrics::counter!("postino_campaign_auto_pauses_total").increment(1);
            }
            Ok(false) => {}
            Err(e) => tracing::error!(campaign, error = %e, "cannot pause a failing campaign"),
        }
    }
}

/// Sleeps `d`, or less if shutdown or priority mail comes first; says
/// whether to go on.
async fn pause(shutdown: &CancellationToken, wakeup: &Wakeup, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(d) => true,
        () = wakeup.wait() => true,
    }
}

/// Rereads the DKIM keys, the policy and the relays, rebuilding the lanes
/// on a change. Logs what fails: the sender goes on with what it had.
async fn reload(
    pool: &PgPool,
    me: Uuid,
    settings: &SenderSettings,
    lanes: &mut Lanes,
    wiring: &Wiring<'_>,
) {
    let shared = wiring.shared;
    dkim::reload(pool, &shared.dkim, &shared.addressing.dkim_vault).await;
    if let Err(e) = reload_policy(pool, me, settings, lanes, wiring).await {
        tracing::error!(error = %e, "cannot read the sending policy or the SMTP servers");
        return;
    }
    let counted = match pool.acquire().await {
        Ok(mut conn) => heartbeats::reloaded(&mut conn, me, Role::Sender).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = counted {
        tracing::warn!(error = %e, "cannot count a reload in the heartbeat");
    }
}

/// Counts one look at the queue, which took `claimed` deliveries.
async fn beat(pool: &PgPool, me: Uuid, claimed: usize) {
    let claimed = i64::try_from(claimed).unwrap_or(i64::MAX);
    let counted = match pool.acquire().await {
        Ok(mut conn) => heartbeats::pass(&mut conn, me, Role::Sender, claimed).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = counted {
        tracing::warn!(error = %e, "cannot count a pass in the heartbeat");
    }
}

/// Claims priority mail, rereads the policy first if it brought a campaign
/// just compiled, and hands each job to a lane of its group. Returns how
/// many deliveries it claimed.
async fn priority_pass(
    pool: &PgPool,
    me: Uuid,
    claimer: &mut Claimer,
    lanes: &mut Lanes,
    wiring: &Wiring<'_>,
    settings: &SenderSettings,
) -> Result<usize, DbError> {
    let room = lanes.priority_room();
    let taken = claimer::claim_priority(pool, claimer, wiring.shared, room, settings).await?;
    let claimed = taken.claimed();
    if taken.fresh {
        reload(pool, me, settings, lanes, wiring).await;
    }
    for recorded in taken.settled {
        let _ = wiring.results.send(recorded).await;
    }
    for job in taken.jobs {
        let group = job.campaign.smtp_group.clone();
        // Somebody is waiting for the answer: a group no relay will take
        // mail for, or whose every relay is out of rotation, is the answer.
        let unroutable = if lanes.is_hopeless(group.as_ref()) {
            Some(lanes.why_unroutable(group.as_ref()))
        } else if lanes.has_workers_for(group.as_ref()) && !lanes.can_route(group.as_ref()) {
            Some(format!(
                "not sent: every SMTP server that could take it is failing; {}",
                lanes.why_unroutable(group.as_ref())
            ))
        } else {
            None
        };
        let recorded = match unroutable {
            Some(reply) => job.settled(Outcome::Failed {
                code: None,
                reply,
                bounce: false,
            }),
            None => match lanes.dispatch(job) {
                None => continue,
                // Full here, or no connection slot in this process: later,
                // or another sender.
                Some(job) => job.settled(Outcome::Deferred {
                    until: Utc::now()
                        + chrono::Duration::from_std(PRIORITY_RETRY)
                            .unwrap_or_else(|_| chrono::Duration::seconds(1)),
                }),
            },
        };
        let _ = wiring.results.send(recorded).await;
    }
    Ok(claimed)
}

/// Rereads the policy and the relays, rebuilding the lanes on a change.
async fn reload_policy(
    pool: &PgPool,
    me: Uuid,
    settings: &SenderSettings,
    lanes: &mut Lanes,
    wiring: &Wiring<'_>,
) -> Result<(), DbError> {
    let (found, rules) = policy::load(pool, me, settings).await?;
    wiring.shared.domains.set_rules(rules);
    wiring
        .shared
        .processes
        .store(found.processes, Ordering::Relaxed);
    metrics::gauge!("postino_sender_processes").set(f64::from(found.processes));
    metrics::gauge!("postino_rate_limit_messages_per_second", "scope" => "global")
        .set(found.global.unwrap_or(0.0));
    let servers = load_servers(pool, &wiring.shared.addressing.relay_passwords).await?;
    lanes.update(&servers, &found, wiring).await;
    lanes.report();
    Ok(())
}

/// Runs the sender until `shutdown` is cancelled. On shutdown, workers finish
/// the message in hand, unsent claims go back to the queue, and every result
/// is written before this returns.
///
/// # Errors
///
/// A message naming the setting at fault, before anything starts.
pub async fn run(
    pool: PgPool,
    settings: SenderSettings,
    addressing: Addressing,
    templates: Sandbox,
    shutdown: CancellationToken,
) -> Result<(), String> {
    settings.validate()?;
    let retry = settings
        .retry_policy()
        .map_err(|e| format!("sender.{}: {}", e.what, e.reason))?;
    let capacity = usize::try_from(settings.batch_size).unwrap_or(500).max(1);
    let (pauses_tx, mut pauses_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        addressing,
        templates,
        retry,
        running: Running::default(),
        pool: pool.clone(),
        rates: Rates::new(pool.clone()),
        domains: Arc::new(Domains::new()),
        alarm: Alarm::new(AlarmSettings {
            failures: settings.pause_after_failures,
            ratio: settings.pause_failure_ratio,
            window: settings.failure_window,
        }),
        pauses: pauses_tx,
        throttle: Throttle {
            calm: settings.throttle_calm,
            floor_per_minute: settings.throttle_floor_per_minute,
            slowed: Mutex::new(HashMap::new()),
        },
        processes: AtomicU32::new(1),
        dkim: dkim::Keys::default(),
        suspect: Suspect::default(),
    });
    let (results_tx, results_rx) = mpsc::channel::<Recorded>(settings.record_batch * 4);
    let recorder = tokio::spawn(recorder::run(
        pool.clone(),
        results_rx,
        recorder::Batching {
            max: settings.record_batch,
            interval: settings.record_interval,
            blocklist_after: i64::from(settings.blocklist_after_bounces),
        },
    ));
    let wiring = Wiring {
        results: &results_tx,
        shared: &shared,
        shutdown: &shutdown,
        breaker: BreakerSettings {
            failures: settings.breaker_failures,
            cooldown: settings.breaker_cooldown,
            cooldown_max: settings.breaker_cooldown_max,
        },
        capacity,
    };

    let me = Uuid::new_v4();
    let wakeup = wakeup::listen(&pool, &shutdown);
    let mut lanes = Lanes::default();
    let mut claimer = Claimer::default();
    let mut reloaded: Option<Instant> = None;
    let mut running_read = Instant::now();
    // When the priority lane was last looked at; `None` looks at once.
    let mut priority_read: Option<Instant> = None;
    let mut warned_no_relay = false;
    while !shutdown.is_cancelled() {
        if reloaded.is_none_or(|t| t.elapsed() >= settings.reload_servers) {
            reloaded = Some(Instant::now());
            reload(&pool, me, &settings, &mut lanes, &wiring).await;
        }
        apply_pauses(&pool, &mut pauses_rx).await;
        if !lanes.has_workers() {
            if !warned_no_relay {
                tracing::warn!(
                    "no SMTP server is enabled for this sender; nothing is sent until one is"
                );
                warned_no_relay = true;
            }
            if !pause(&shutdown, &wakeup, settings.idle_poll).await {
                break;
            }
            continue;
        }
        warned_no_relay = false;
        let (lanes_capacity, room) = lanes.room();
        let bulk_due = room >= lanes_capacity.div_ceil(2) && room > 0;
        // The priority lane first, on every bulk pass, on a wake-up, and
        // at least every idle_poll while the lanes are too full for bulk.
        let woken = wakeup.take();
        let mut claimed = None;
        if bulk_due || woken || priority_read.is_none_or(|t| t.elapsed() >= settings.idle_poll) {
            priority_read = Some(Instant::now());
            match priority_pass(&pool, me, &mut claimer, &mut lanes, &wiring, &settings).await {
                Ok(n) => {
                    if n > 0 {
                        // There may be more than there was room for.
                        priority_read = None;
                    }
                    claimed = Some(n);
                }
                Err(e) => tracing::error!(error = %e, "cannot claim priority deliveries"),
            }
        }
        if !bulk_due {
            if let Some(n) = claimed {
                beat(&pool, me, n).await;
            }
            if running_read.elapsed() >= RUNNING_REFRESH {
                running_read = Instant::now();
                if let Err(e) = refresh_running(&pool, &shared).await {
                    tracing::error!(error = %e, "cannot read running campaigns");
                }
            }
            let wait = if room == 0 && lanes_capacity == 0 {
                // Every relay is out of rotation.
                settings.idle_poll
            } else {
                ROOM_POLL
            };
            if !pause(&shutdown, &wakeup, wait).await {
                break;
            }
            continue;
        }
        running_read = Instant::now();
        let claimed = claimed.unwrap_or(0);
        match claimer::claim(&pool, &mut claimer, &lanes, &shared, room, &settings).await {
            Ok(_) if claimer.policy_stale => {
                claimer.policy_stale = false;
                reloaded = None;
                beat(&pool, me, claimed).await;
            }
            Ok(jobs) if jobs.is_empty() => {
                beat(&pool, me, claimed).await;
                if priority_read.is_some() && !pause(&shutdown, &wakeup, settings.idle_poll).await {
                    break;
                }
            }
            Ok(jobs) => {
                beat(&pool, me, claimed + jobs.len()).await;
                for job in jobs {
                    if let Some(unplaced) = lanes.dispatch(job) {
                        let _ = results_tx.send(unplaced.released()).await;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim deliveries");
                if !pause(&shutdown, &wakeup, settings.idle_poll).await {
                    break;
                }
            }
        }
    }
    for job in lanes.stop().await {
        let _ = results_tx.send(job.released()).await;
    }
    drop(results_tx);
    let _ = recorder.await;
    apply_pauses(&pool, &mut pauses_rx).await;
    if let Ok(mut conn) = pool.acquire().await
        && let Err(e) = postino_db::policy::leave(&mut conn, me).await
    {
        tracing::warn!(error = %e, "cannot say this sender is leaving");
    }
    Ok(())
}

/// The enabled relays with their passwords opened. A relay whose password
/// cannot be opened (the encryption secret changed) is left out, so its
/// mail goes through the others or waits, rather than being sent without
/// AUTH and refused.
async fn load_servers(
    pool: &PgPool,
    vault: &postino_compose::PasswordVault,
) -> Result<Vec<SmtpServer>, DbError> {
    let mut conn = pool.acquire().await?;
    let mut usable = Vec::new();
    for mut server in smtp_servers::enabled(&mut conn).await? {
        match vault.open(server.sealed_password.as_ref().map(|s| s.0.as_slice())) {
            Ok(password) => {
                server.settings.password = password;
                usable.push(server);
            }
            Err(e) => {
                tracing::error!(relay = %server.name, error = %e, "SMTP server left out");
            }
        }
    }
    Ok(usable)
}
